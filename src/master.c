/*
 * master - the process that stays root: it binds the listeners, keeps the
 * pidfile, forks the workers and sizes the pool between min_spare_workers
 * and max_spare_workers idle workers (up to max_workers) from a
 * scoreboard in shared memory, reaps and replaces workers, and acts on
 * signals.  It never reads a byte from a client.
 */
#include <sys/mman.h>
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

#include "log.h"
#include "master.h"
#include "policyd.h"
#include "worker.h"

static volatile sig_atomic_t sig_term, sig_hup, sig_chld, sig_usr1,
    sig_usr2;

static struct scoreboard *sb;
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
 * policyd_spawn - a policy process on a socket of its own, published in
 * the scoreboard once it has opened the store.  At start, a store that
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
	int		 lfd, p[2], st;

	if ((lfd = pp_listen(name, sizeof(name))) == -1) {
		if (starting)
			fatal("policy socket");
		log_warn("policy socket");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		close(lfd);
		if (starting)
			fatal("pipe");
		log_warn("pipe");
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
		if (master_pfh != NULL)
			pidfile_close(master_pfh);
		policyd_horizon(&sb->reply_horizon);
		policyd_main(c, lfd, p[1], pv);
		/* NOTREACHED */
	}
	close(lfd);
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 30 * 1000) == 1)
		n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	if (n == 2 && memcmp(msg, "OK", 2) == 0) {
		(void)strlcpy(sb->policy_name, name, sizeof(sb->policy_name));
		policyd_pid = pid;
		log_debug("policy process %ld started", (long)pid);
		return 0;
	}
	msg[n > 0 ? n : 0] = '\0';
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

/* spawn - fork one worker into a free slot */
static void
spawn(struct config *c, struct listeners *ls, const struct privs *pv)
{
	pid_t	pid;
	int	i;

	for (i = 0; i < MAX_SLOTS; i++)
		if (sb->slots[i].pid == 0)
			break;
	if (i == MAX_SLOTS)
		return;
	memset(&sb->slots[i], 0, sizeof(sb->slots[i]));
	sb->slots[i].state = SLOT_STARTING;
	if (i >= sb->nslots)
		sb->nslots = i + 1;
	sb->slots[i].gen = generation;
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		sb->slots[i].state = SLOT_FREE;
		return;
	case 0:
		if (master_pfh != NULL)
			pidfile_close(master_pfh);
		worker_main(c, ls, sb, i, pv);
		/* NOTREACHED */
	default:
		sb->slots[i].pid = pid;
		log_debug("worker %ld started", (long)pid);
	}
}

/* reap - collect dead workers; an unexpected death is logged */
static void
reap(void)
{
	const char	*what;
	pid_t		 pid;
	int		 st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < sb->nslots; i++)
			if (sb->slots[i].pid == pid)
				break;
		what = i < sb->nslots ? "worker" : "policy process";
		if (WIFSIGNALED(st))
			log_warnx("%s %ld died on signal %d", what, (long)pid,
			    WTERMSIG(st));
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			log_warnx("%s %ld exited with status %d", what,
			    (long)pid, WEXITSTATUS(st));
		if (pid == policyd_pid) {
			/* workers answer per on_error until the next one */
			policyd_pid = 0;
			sb->policy_name[0] = '\0';
			policyd_after = time(NULL) + 1;
		}
		if (i == sb->nslots)
			continue;
		if ((WIFSIGNALED(st) || WEXITSTATUS(st) != 0) &&
		    sb->slots[i].gen == generation) {
			/* replaced, but not in a loop if it dies at start */
			replace++;
			if (sb->slots[i].state == SLOT_STARTING)
				spawn_after = time(NULL) + 1;
		}
		retired_sessions += sb->slots[i].sessions;
		retired_messages += sb->slots[i].messages;
		retired_tls += sb->slots[i].tls_sessions;
		memset(&sb->slots[i], 0, sizeof(sb->slots[i]));
	}
}

/* signal_old - ask every worker of an older generation (or all) to go */
static void
signal_workers(int sig, int all)
{
	int	i;

	for (i = 0; i < sb->nslots; i++)
		if (sb->slots[i].pid != 0 && (all ||
		    sb->slots[i].gen != generation))
			(void)kill(sb->slots[i].pid, sig);
}

/* maintain - keep the idle workers between the spare bounds */
static void
maintain(struct config *c, struct listeners *ls, const struct privs *pv,
    int starting)
{
	int	i, live = 0, idle = 0, want;

	for (i = 0; i < sb->nslots; i++) {
		if (sb->slots[i].pid == 0)
			continue;
		live++;
		if (sb->slots[i].gen == generation &&
		    (sb->slots[i].state == SLOT_IDLE ||
		    sb->slots[i].state == SLOT_STARTING))
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
		for (i = 0; i < sb->nslots && idle > c->max_spare_workers; i++)
			if (sb->slots[i].pid != 0 && sb->slots[i].state ==
			    SLOT_IDLE && sb->slots[i].gen == generation) {
				(void)kill(sb->slots[i].pid, SIGTERM);
				sb->slots[i].gen = generation - 1;
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

	for (i = 0; i < sb->nslots; i++) {
		if (sb->slots[i].pid == 0)
			continue;
		live++;
		idle += sb->slots[i].state == SLOT_IDLE;
		busy += sb->slots[i].state == SLOT_BUSY;
		sessions += sb->slots[i].sessions;
		messages += sb->slots[i].messages;
		tls += sb->slots[i].tls_sessions;
	}
	log_info("counters: workers=%d idle=%d busy=%d sessions=%lu "
	    "messages=%lu tls_sessions=%lu", live, idle, busy, sessions,
	    messages, tls);
}

static int
live_workers(void)
{
	int	i, n = 0;

	for (i = 0; i < sb->nslots; i++)
		n += sb->slots[i].pid != 0;
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
	if (nc->port != c->port || nc->listen.n != c->listen.n ||
	    strcmp(nc->user, c->user) || strcmp(nc->group, c->group) ||
	    strcmp(nc->chroot, c->chroot) || strcmp(nc->pidfile, c->pidfile))
		log_warnx("listen, port, user, group, chroot and pidfile "
		    "changes take effect at the next restart");
	/* those keep their old values until then */
	nc->port = c->port;
	memcpy(nc->user, c->user, sizeof(nc->user));
	memcpy(nc->group, c->group, sizeof(nc->group));
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
 * own deadline; past it (and a margin) nothing is spared.  1 when a
 * worker was spared.
 */
static int
kill_unless_replaying(void)
{
	time_t	now = time(NULL), until;
	int	i, spared = 0;

	for (i = 0; i < sb->nslots; i++) {
		if (sb->slots[i].pid == 0)
			continue;
		until = sb->slots[i].replay_until;
		if (until != 0 && now <= until + 5) {
			spared = 1;
			continue;
		}
		(void)kill(sb->slots[i].pid, SIGKILL);
	}
	return spared;
}

/* shutdown - stop accepting, let sessions end, then end them */
static void
master_shutdown(struct config *c, struct listeners *ls)
{
	struct timespec	 ts = { 0, 100 * 1000 * 1000 };
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
			deadline = time(NULL) + (kill_unless_replaying() ? 1 :
			    3600);
		}
		nanosleep(&ts, NULL);
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
		nanosleep(&ts, NULL);
		reap();
	}
}

/* master_run - the master's loop; returns the exit status */
int
master_run(struct config *c, struct listeners *ls, const struct privs *pv,
    struct pidfh *pfh)
{
	struct sigaction	sa;
	struct timespec		tick = { 1, 0 };
	struct pollfd		wpfd;
	sigset_t		blocked, empty;
	char			drain[256];
	int			wake[2];

	sb = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED)
		fatal("mmap scoreboard");

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

	/*
	 * A worker that takes a connection while fewer than
	 * min_spare_workers are idle writes a byte here, so the pool grows
	 * at once under a burst instead of once a second.
	 */
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe2");
	sb->wake_fd = wake[1];
	wpfd.fd = wake[0];
	wpfd.events = POLLIN;

	master_pfh = pfh;
	setproctitle("master");
	maintain(c, ls, pv, 1);
	while (!sig_term) {
		if (ppoll(&wpfd, 1, &tick, &empty) == 1)
			while (read(wake[0], drain, sizeof(drain)) > 0)
				continue;
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
