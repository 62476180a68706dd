/*
 * master - the process that stays root: it binds the listeners, keeps the
 * pidfile, forks the workers and sizes the pool between min_spare_workers
 * and max_spare_workers idle workers (up to max_workers), reaps and
 * replaces workers, and acts on signals.  It never reads a byte from a
 * client.  It believes nothing a child says about pids: it signals only
 * the pids fork() returned to it, kept in its own table.  Each worker
 * reports its state over a channel of its own (chan.c), checked message
 * by message; a worker that sends nonsense is logged and replaced.  What
 * workers read (the policy socket's name, the refusal horizon) is on a
 * board they can map read-only and nothing else.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "master.h"
#include "policyd.h"
#include "worker.h"

#define MAX_POLICYD	8	/* in service, and old ones draining */
#define HORIZON_MAX	(7 * 86400)	/* a refusal kept a week at most... */
#define FDS_MASTER	64	/* the master's own, beyond the channels */
#define FDS_WORKER	64	/* a worker's, whatever max_workers */

static volatile sig_atomic_t sig_term, sig_hup, sig_chld, sig_usr1,
    sig_usr2;

/* a worker, as the master knows it: what fork() said, what was checked */
struct wslot {
	pid_t		 pid;		/* from fork(), 0 when free */
	int		 fd;		/* channel, -1 once closed */
	int		 state;		/* enum slot_state, last good report */
	unsigned int	 gen;		/* configuration generation */
	int		 condemned;	/* sent nonsense: killed */
	struct ipaddr	 client;	/* of the session in progress */
	unsigned long	 sessions;	/* sessions served */
	unsigned long	 messages;	/* messages delivered */
	unsigned long	 tls_sessions;	/* sessions that started TLS */
	unsigned long	 max_sessions;	/* max_sessions_per_worker at fork */
	time_t		 replay_since;	/* said SLOT_REPLAYING then, our clock */
};

/* a policy process and its channel */
struct pdslot {
	pid_t		 pid;		/* from fork(), 0 when free */
	int		 fd;		/* channel, -1 once closed */
};

static struct wslot	 ws[MAX_SLOTS];
static int		 nslots;	/* slots ever used: scans stop here */
static struct pdslot	 pds[MAX_POLICYD];
static struct board	*board;		/* read-write here only */
static int		 board_fd = -1;	/* children map it read-only */
static struct pidfh	*master_pfh;	/* closed in workers */
static unsigned int	 generation;
static unsigned long	 retired_sessions, retired_messages, retired_tls;
static int		 replace;	/* workers that died: spawn anew */
static pid_t		 policyd_pid;	/* the policy process in service */
static time_t		 policyd_after;	/* back-off after its death */
static time_t		 spawn_after;	/* back-off after deaths at start */

static void
master_sig(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		sig_term = 1;
		break;
	case SIGHUP:
		sig_hup = 1;
		break;
	case SIGCHLD:
		sig_chld = 1;
		break;
	case SIGUSR1:
		sig_usr1 = 1;
		break;
	case SIGUSR2:
		sig_usr2 = 1;
		break;
	}
}

/* bind_one - one listening socket; -1 with errno on failure */
static int
bind_one(const char *addr, int port, int backlog)
{
	struct sockaddr_storage	 ss;
	struct ipaddr		 ip;
	socklen_t		 slen;
	int			 fd, one = 1, saved;

	if (ipaddr_parse(addr, &ip) == -1) {
		errno = EINVAL;
		return -1;
	}
	slen = ipaddr_sockaddr(&ip, port, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ip.family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1 ||
	    listen(fd, backlog) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * master_bind - every listen address.  The default ::1 is skipped with a
 * warning on a host without IPv6; any other failure stops the start.
 */
void
master_bind(const struct config *c, struct listeners *ls)
{
	size_t	i;
	int	fd;

	ls->n = 0;
	for (i = 0; i < c->listen.n; i++) {
		if (ls->n == MAX_LISTEN)
			fatalx("too many listen addresses (at most %d)",
			    MAX_LISTEN);
		fd = bind_one(c->listen.v[i], c->port, c->backlog);
		if (fd == -1) {
			if (c->listen_default && strchr(c->listen.v[i], ':') &&
			    (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
				log_warnx("no IPv6 on this host: not listening "
				    "on %s", c->listen.v[i]);
				continue;
			}
			fatal("cannot listen on %s port %d", c->listen.v[i],
			    c->port);
		}
		log_info("listening on %s port %d", c->listen.v[i], c->port);
		ls->fd[ls->n++] = fd;
	}
	if (ls->n == 0)
		fatalx("no address to listen on");
}

/*
 * master_nofile - RLIMIT_NOFILE raised to what max_workers needs: a
 * channel per worker here, a connection per worker in the policy
 * process.  0, or -1 and why it cannot be.
 */
int
master_nofile(const struct config *c, char *err, size_t errlen)
{
	struct rlimit	rl;
	rlim_t		need = (rlim_t)c->max_workers + FDS_MASTER;

	if (need < FDS_WORKER)
		need = FDS_WORKER;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		(void)snprintf(err, errlen, "getrlimit: %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	/* root may raise the hard limit too */
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		rl.rlim_max = need;
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		(void)snprintf(err, errlen, "max_workers %d needs %llu open "
		    "files and the limit cannot be raised above %llu (%s): "
		    "lower max_workers or raise the limit (ulimit -n)",
		    c->max_workers, (unsigned long long)need,
		    (unsigned long long)rl.rlim_max, strerror(errno));
		return -1;
	}
	return 0;
}

/* close_inherited - in a new child: the master's ends of every channel */
static void
close_inherited(void)
{
	int	i;

	for (i = 0; i < nslots; i++)
		if (ws[i].fd != -1)
			close(ws[i].fd);
	for (i = 0; i < MAX_POLICYD; i++)
		if (pds[i].fd != -1)
			close(pds[i].fd);
	if (master_pfh != NULL)
		pidfile_close(master_pfh);
}

/* ... or refusal_expire, when longer: what a horizon may reach */
static time_t	horizon_ttl = HORIZON_MAX;

/* horizon_update - a horizon the policy process sent, checked */
static void
horizon_update(int i, const void *buf, size_t n)
{
	const char	*why;
	time_t		 until;

	if (chan_check_horizon(buf, n, time(NULL), horizon_ttl, &until,
	    &why) == -1) {
		log_warnx("policy process %ld: bad message on its channel "
		    "(%s): ignored", (long)pds[i].pid, why);
		return;
	}
	if (until > board->reply_horizon)
		board->reply_horizon = until;
}

/*
 * policyd_spawn - a policy process on a socket of its own, published on
 * the board once it has opened the store.  At start, a store that
 * cannot be opened stops greygated; later, the master tries again.
 * 0 when it runs, -1 when not.
 */
static int
policyd_spawn(const struct config *c, const struct listeners *ls,
    const struct privs *pv, int starting)
{
	struct pollfd	 pfd;
	char		 name[PP_NAME_MAX], msg[512];
	pid_t		 pid;
	ssize_t		 n = -1;
	size_t		 i;
	int		 lfd, p[2], st, k;
	const char	*why;
	time_t		 until;

	horizon_ttl = c->greylist.refusal_expire > HORIZON_MAX ?
	    (time_t)c->greylist.refusal_expire : HORIZON_MAX;
	for (k = 0; k < MAX_POLICYD; k++)
		if (pds[k].pid == 0)
			break;
	if (k == MAX_POLICYD) {
		log_warnx("too many policy processes draining: not starting "
		    "another");
		policyd_after = time(NULL) + 5;
		return -1;
	}
	if ((lfd = pp_listen(name, sizeof(name))) == -1) {
		if (starting)
			fatal("policy socket");
		log_warn("policy socket");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) == -1) {
		close(lfd);
		if (starting)
			fatal("socketpair");
		log_warn("socketpair");
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		if (starting)
			fatal("fork");
		log_warn("fork");
		close(lfd);
		close(p[0]);
		close(p[1]);
		return -1;
	case 0:
		close(p[0]);
		for (i = 0; i < ls->n; i++)
			close(ls->fd[i]);
		close_inherited();
		if (board_fd != -1)
			close(board_fd);
		policyd_main(c, lfd, p[1], pv);
		/* NOTREACHED */
	}
	close(lfd);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 30 * 1000) == 1)
		n = recv(p[0], msg, sizeof(msg) - 1, 0);
	/* ready: the refusals an earlier policy process remembered */
	if (n > 0 && chan_check_horizon(msg, (size_t)n, time(NULL),
	    horizon_ttl, &until, &why) == 0) {
		if (until > board->reply_horizon)
			board->reply_horizon = until;
		(void)strlcpy(board->policy_name, name,
		    sizeof(board->policy_name));
		(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
		pds[k].pid = pid;
		pds[k].fd = p[0];
		policyd_pid = pid;
		log_debug("policy process %ld started", (long)pid);
		return 0;
	}
	close(p[0]);
	msg[n > 0 ? n : 0] = '\0';
	log_clean(msg, msg, sizeof(msg));
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, &st, 0);
	if (starting)
		fatalx("greylist store: %s", n > 0 ? msg :
		    "the policy process did not start");
	log_warnx("policy process not started: %s", n > 0 ? msg :
	    "no answer");
	policyd_after = time(NULL) + 5;
	return -1;
}

/* spawn - fork one worker into a free slot, with a channel of its own */
static void
spawn(struct config *c, struct listeners *ls, const struct privs *pv)
{
	pid_t	pid;
	int	i, sv[2];

	for (i = 0; i < MAX_SLOTS; i++)
		if (ws[i].pid == 0)
			break;
	if (i == MAX_SLOTS)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return;
	case 0:
		close(sv[0]);
		close_inherited();
		worker_main(c, ls, board_fd, i, sv[1], pv);
		/* NOTREACHED */
	}
	close(sv[1]);
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	memset(&ws[i], 0, sizeof(ws[i]));
	ws[i].pid = pid;
	ws[i].fd = sv[0];
	ws[i].state = SLOT_STARTING;
	ws[i].gen = generation;
	ws[i].max_sessions = (unsigned long)c->max_sessions_per_worker;
	if (i >= nslots)
		nslots = i + 1;
	log_debug("worker %ld started (slot %d)", (long)pid, i);
}

/* chan_close - a worker's channel is done with */
static void
chan_close(int i)
{
	if (ws[i].fd != -1)
		close(ws[i].fd);
	ws[i].fd = -1;
}

/* condemn - a worker said something impossible: log it, replace it */
static void
condemn(int i, const char *why)
{
	log_warnx("worker %ld (slot %d): bad message on its channel (%s): "
	    "killing it", (long)ws[i].pid, i, why);
	(void)kill(ws[i].pid, SIGKILL);	/* our own child, from fork() */
	ws[i].condemned = 1;
	ws[i].state = SLOT_BUSY;	/* neither idle nor starting */
	memset(&ws[i].client, 0, sizeof(ws[i].client));
	chan_close(i);
}

/* client_count - sessions in progress from ip's client network */
static unsigned int
client_count(const struct config *c, const struct ipaddr *ip)
{
	unsigned int	n = 0;
	int		i;

	for (i = 0; i < nslots; i++)
		if (ws[i].pid != 0 && !ws[i].condemned &&
		    ws[i].state >= SLOT_BUSY &&
		    chan_same_client(&ws[i].client, ip,
		    c->greylist.ipv6_prefix))
			n++;
	return n;
}

/*
 * chan_read - what worker i says on its channel; 1 when it took a
 * session (the pool may need another idle worker)
 */
static int
chan_read(const struct config *c, int i)
{
	struct chan_view	 v;
	struct chan_msg		 m;
	struct chan_reply	 r;
	char			 buf[sizeof(m) + 1];
	const char		*why;
	ssize_t			 n;
	int			 busy = 0;

	while (ws[i].fd != -1) {
		n = recv(ws[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* the worker is leaving; reap() collects it */
			chan_close(i);
			break;
		}
		v.slot = i;
		v.pid = ws[i].pid;
		v.state = ws[i].state;
		v.sessions = ws[i].sessions;
		v.messages = ws[i].messages;
		v.tls_sessions = ws[i].tls_sessions;
		v.max_sessions = ws[i].max_sessions;
		if (chan_check(buf, (size_t)n, &v, &m, &why) == -1) {
			condemn(i, why);
			break;
		}
		if (m.state == SLOT_REPLAYING && ws[i].state != SLOT_REPLAYING)
			ws[i].replay_since = time(NULL);
		ws[i].state = m.state;
		ws[i].sessions = (unsigned long)m.sessions;
		ws[i].messages = (unsigned long)m.messages;
		ws[i].tls_sessions = (unsigned long)m.tls_sessions;
		memset(&ws[i].client, 0, sizeof(ws[i].client));
		if (m.state >= SLOT_BUSY) {
			ws[i].client.family = m.family;
			memcpy(ws[i].client.addr, m.addr,
			    sizeof(ws[i].client.addr));
			busy = 1;
		}
		if (m.ask) {
			memset(&r, 0, sizeof(r));
			r.magic = CHAN_MAGIC;
			r.seq = m.seq;
			r.count = client_count(c, &ws[i].client);
			(void)send(ws[i].fd, &r, sizeof(r), MSG_DONTWAIT |
			    MSG_NOSIGNAL);
		}
	}
	return busy;
}

/* pd_read - what a policy process says on its channel */
static void
pd_read(int k)
{
	char	buf[sizeof(struct chan_horizon) + 1];
	ssize_t	n;

	while (pds[k].fd != -1) {
		n = recv(pds[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			close(pds[k].fd);
			pds[k].fd = -1;
			break;
		}
		horizon_update(k, buf, (size_t)n);
	}
}

/* reap - collect dead children; an unexpected death is logged */
static void
reap(void)
{
	const char	*what;
	pid_t		 pid;
	int		 st, i, k;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < nslots; i++)
			if (ws[i].pid == pid)
				break;
		for (k = 0; k < MAX_POLICYD; k++)
			if (pds[k].pid == pid)
				break;
		what = i < nslots ? "worker" : "policy process";
		if (i < nslots && ws[i].condemned)
			;	/* logged when it was killed */
		else if (WIFSIGNALED(st))
			log_warnx("%s %ld died on signal %d", what, (long)pid,
			    WTERMSIG(st));
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			log_warnx("%s %ld exited with status %d", what,
			    (long)pid, WEXITSTATUS(st));
		if (k < MAX_POLICYD) {
			if (pds[k].fd != -1) {
				pd_read(k);
				if (pds[k].fd != -1)
					close(pds[k].fd);
			}
			pds[k].pid = 0;
			pds[k].fd = -1;
		}
		if (pid == policyd_pid) {
			/* workers answer per on_error until the next one */
			policyd_pid = 0;
			board->policy_name[0] = '\0';
			policyd_after = time(NULL) + 1;
		}
		if (i == nslots)
			continue;
		if ((WIFSIGNALED(st) || WEXITSTATUS(st) != 0) &&
		    ws[i].gen == generation) {
			/* replaced, but not in a loop if it dies at start */
			replace++;
			if (ws[i].state == SLOT_STARTING)
				spawn_after = time(NULL) + 1;
		}
		retired_sessions += ws[i].sessions;
		retired_messages += ws[i].messages;
		retired_tls += ws[i].tls_sessions;
		chan_close(i);
		memset(&ws[i], 0, sizeof(ws[i]));
		ws[i].fd = -1;
	}
}

/* signal_workers - every worker of an older generation (or all) */
static void
signal_workers(int sig, int all)
{
	int	i;

	for (i = 0; i < nslots; i++)
		if (ws[i].pid > 0 && (all || ws[i].gen != generation))
			(void)kill(ws[i].pid, sig);
}

/* maintain - keep the idle workers between the spare bounds */
static void
maintain(struct config *c, struct listeners *ls, const struct privs *pv,
    int starting)
{
	int	i, live = 0, idle = 0, want;

	for (i = 0; i < nslots; i++) {
		if (ws[i].pid == 0)
			continue;
		live++;
		if (ws[i].gen == generation && !ws[i].condemned &&
		    (ws[i].state == SLOT_IDLE ||
		    ws[i].state == SLOT_STARTING))
			idle++;
	}
	want = starting ? c->start_workers : c->min_spare_workers;
	if (want < 1)
		want = 1;
	if (policyd_pid == 0 && time(NULL) >= policyd_after)
		(void)policyd_spawn(c, ls, pv, starting);
	if (!starting && time(NULL) < spawn_after)
		return;
	/* a worker that died is replaced even when enough are idle */
	want = idle + replace > want ? idle + replace : want;
	replace = 0;
	while (idle < want && live < c->max_workers) {
		spawn(c, ls, pv);
		idle++;
		live++;
	}
	if (idle > c->max_spare_workers) {
		for (i = 0; i < nslots && idle > c->max_spare_workers; i++)
			if (ws[i].pid > 0 && !ws[i].condemned &&
			    ws[i].state == SLOT_IDLE &&
			    ws[i].gen == generation) {
				(void)kill(ws[i].pid, SIGTERM);
				ws[i].gen = generation - 1;
				idle--;
			}
	}
}

static void
counters(void)
{
	unsigned long	sessions = retired_sessions, messages =
	    retired_messages, tls = retired_tls;
	int		i, live = 0, idle = 0, busy = 0;

	for (i = 0; i < nslots; i++) {
		if (ws[i].pid == 0)
			continue;
		live++;
		idle += ws[i].state == SLOT_IDLE;
		busy += ws[i].state >= SLOT_BUSY;
		sessions += ws[i].sessions;
		messages += ws[i].messages;
		tls += ws[i].tls_sessions;
	}
	log_info("counters: workers=%d idle=%d busy=%d sessions=%lu "
	    "messages=%lu tls_sessions=%lu", live, idle, busy, sessions,
	    messages, tls);
}

static int
live_workers(void)
{
	int	i, n = 0;

	for (i = 0; i < nslots; i++)
		n += ws[i].pid != 0;
	return n;
}

/* reload - SIGHUP: a bad file changes nothing */
static struct config *
reload(struct config *c, const struct listeners *ls, const struct privs *pv)
{
	struct config	*nc;
	char		 err[1024];
	pid_t		 old = policyd_pid;

	if ((nc = config_load(c->path, err, sizeof(err))) == NULL) {
		log_warnx("configuration error, keeping the old one: %s", err);
		return c;
	}
	/* the certificate and key, read again (renewal) while still root */
	if (config_tls_load(nc, err, sizeof(err)) == -1) {
		log_warnx("TLS error, keeping the old configuration and "
		    "certificate: %s", err);
		config_free(nc);
		return c;
	}
	if (master_nofile(nc, err, sizeof(err)) == -1) {
		log_warnx("configuration refused, keeping the old one: %s",
		    err);
		config_free(nc);
		return c;
	}
	if (nc->port != c->port || nc->listen.n != c->listen.n ||
	    strcmp(nc->user, c->user) || strcmp(nc->group, c->group) ||
	    strcmp(nc->worker_user, c->worker_user) ||
	    strcmp(nc->worker_group, c->worker_group) ||
	    strcmp(nc->chroot, c->chroot) || strcmp(nc->pidfile, c->pidfile))
		log_warnx("listen, port, user, group, worker_user, "
		    "worker_group, chroot and pidfile changes take effect at "
		    "the next restart");
	/* those keep their old values until then */
	nc->port = c->port;
	memcpy(nc->user, c->user, sizeof(nc->user));
	memcpy(nc->group, c->group, sizeof(nc->group));
	memcpy(nc->worker_user, c->worker_user, sizeof(nc->worker_user));
	memcpy(nc->worker_group, c->worker_group, sizeof(nc->worker_group));
	memcpy(nc->chroot, c->chroot, sizeof(nc->chroot));
	memcpy(nc->pidfile, c->pidfile, sizeof(nc->pidfile));
	generation++;
	signal_workers(SIGTERM, 0);
	/* a new policy process with the new rules; the old one drains */
	if (policyd_spawn(nc, ls, pv, 0) == 0 && old != 0)
		(void)kill(old, SIGTERM);
	log_info("reloaded configuration from %s", nc->path);
	config_free(c);
	return nc;
}

/*
 * kill_unless_replaying - SIGKILL every worker but those replaying a
 * message upstream: a replay cut short may deliver a message whose
 * client never hears of it, which then comes again.  A replay has its
 * own deadline (replay_timeout), counted here from when the worker said
 * it started, by the master's clock; past it (and a margin) nothing is
 * spared.  1 when a worker was spared.
 */
static int
kill_unless_replaying(const struct config *c)
{
	time_t	now = time(NULL);
	int	i, spared = 0;

	for (i = 0; i < nslots; i++) {
		if (ws[i].pid == 0)
			continue;
		if (ws[i].state == SLOT_REPLAYING && !ws[i].condemned &&
		    now <= ws[i].replay_since + c->replay_timeout + 5) {
			spared = 1;
			continue;
		}
		(void)kill(ws[i].pid, SIGKILL);	/* our own child */
	}
	return spared;
}

/* channels - read every channel that has something to say */
static int
channels(const struct config *c, int timeout_ms, const sigset_t *mask)
{
	static struct pollfd	 pfd[MAX_SLOTS + MAX_POLICYD];
	static int		 who[MAX_SLOTS + MAX_POLICYD];
	struct timespec		 ts;
	int			 i, n = 0, busy = 0;

	for (i = 0; i < MAX_POLICYD; i++)
		if (pds[i].fd != -1) {
			pfd[n].fd = pds[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = -1 - i;
		}
	for (i = 0; i < nslots; i++)
		if (ws[i].pid != 0 && ws[i].fd != -1) {
			pfd[n].fd = ws[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = i;
		}
	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	if (ppoll(pfd, (nfds_t)n, &ts, mask) <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		if (who[i] < 0)
			pd_read(-1 - who[i]);
		else
			busy |= chan_read(c, who[i]);
	}
	return busy;
}

/* shutdown - stop accepting, let sessions end, then end them */
static void
master_shutdown(struct config *c, struct listeners *ls)
{
	time_t		 deadline = time(NULL) + c->shutdown_timeout;
	size_t		 i;
	int		 aborted = 0;

	log_info("shutting down");
	/*
	 * shutdown(2) of a listening socket stops it in every process that
	 * shares it (Linux): a busy worker's copy no longer queues
	 * connections that nobody would serve.
	 */
	for (i = 0; i < ls->n; i++) {
		(void)shutdown(ls->fd[i], SHUT_RDWR);
		close(ls->fd[i]);
	}
	signal_workers(SIGTERM, 1);
	while (live_workers() > 0) {
		if (!aborted && time(NULL) >= deadline) {
			signal_workers(SIGINT, 1);
			deadline = time(NULL) + 2;
			aborted = 1;
		} else if (aborted && time(NULL) >= deadline) {
			/* a worker replaying is looked at again in a second */
			deadline = time(NULL) + (kill_unless_replaying(c) ? 1 :
			    3600);
		}
		(void)channels(c, 100, NULL);
		reap();
	}
	/* the workers are gone: now the policy process */
	if (policyd_pid != 0)
		(void)kill(policyd_pid, SIGTERM);
	deadline = time(NULL) + 5;
	while (policyd_pid != 0) {
		if (time(NULL) >= deadline) {
			(void)kill(policyd_pid, SIGKILL);
			deadline = time(NULL) + 3600;
		}
		(void)channels(c, 100, NULL);
		reap();
	}
}

/* master_run - the master's loop; returns the exit status */
int
master_run(struct config *c, struct listeners *ls, const struct privs *pv,
    struct pidfh *pfh)
{
	struct sigaction	sa;
	sigset_t		blocked, empty;
	int			i;

	for (i = 0; i < MAX_SLOTS; i++)
		ws[i].fd = -1;
	for (i = 0; i < MAX_POLICYD; i++)
		pds[i].fd = -1;
	if ((board_fd = board_create(&board)) == -1)
		fatal("board");

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = master_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGHUP);
	sigaddset(&blocked, SIGCHLD);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGUSR2);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	sigemptyset(&empty);

	master_pfh = pfh;
	setproctitle("master");
	maintain(c, ls, pv, 1);
	while (!sig_term) {
		/*
		 * A worker that takes a connection says so on its channel:
		 * the pool grows at once under a burst, not once a second.
		 */
		(void)channels(c, 1000, &empty);
		if (sig_chld) {
			sig_chld = 0;
			reap();
		}
		if (sig_hup) {
			sig_hup = 0;
			c = reload(c, ls, pv);
		}
		if (sig_usr1) {
			sig_usr1 = 0;
			counters();
		}
		if (sig_usr2) {
			sig_usr2 = 0;
			if (policyd_pid != 0)
				(void)kill(policyd_pid, SIGUSR2);
		}
		if (!sig_term)
			maintain(c, ls, pv, 0);
	}
	master_shutdown(c, ls);
	if (pfh != NULL)
		pidfile_remove(pfh);
	log_info("stopped");
	config_free(c);
	return 0;
}
