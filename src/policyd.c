/*
 * policyd - the policy process: the only process of greygated that opens
 * the greylist store.  It runs as the unprivileged user (never in the
 * workers' chroot), answers the workers' questions over the policy
 * socket one at a time, writes greylist_log, and deletes expired entries
 * between questions, never while a client waits on one.  It trusts
 * nothing it reads: a malformed message closes that connection.  A store
 * failure is answered PP_ERROR, so that the worker applies on_error;
 * it is never turned into a pass here.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

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
#include "greylist.h"
#include "log.h"
#include "policy_proto.h"
#include "policyd.h"
#include "privdrop.h"

#define MAX_CLIENTS	(4096 + 16)
#define EXPIRE_EVERY	1		/* seconds between expiry steps */
#define EXPIRE_CHUNK	10000		/* triplets looked at per step */

static volatile sig_atomic_t pd_stop, pd_reopen;

static const struct config *pd_cfg;
static struct store	*pd_store;
static FILE		*pd_log;
static int		 pd_failing;	/* the store is failing: logged once */
static int		 pd_intx;	/* a write transaction is open */
static struct timespec	 pd_txstart;	/* since when */
static int		 pd_chan = -1;	/* to the master */
static time_t		 pd_horizon;	/* last told to the master */
static uid_t		 pd_wuid;	/* the workers' uid */
static time_t		 pd_warn_at;	/* refusals logged this second */
static int		 pd_warn_n;
static time_t		 pd_accept_after; /* EMFILE: accept again then */

static int	verify_answer(const struct pp_request *, struct pp_response *,
		    const char *, time_t);

#define TX_MAX_MS	20		/* commit at least this often */
#define TX_IDLE_MS	2		/* and after this long without a question */

static void
policyd_sig(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		pd_stop = 1;
	else
		pd_reopen = 1;
}

/* open_log - greylist_log, appended to, one line a transaction */
static void
open_log(void)
{
	int	fd;

	if (pd_log != NULL) {
		fclose(pd_log);
		pd_log = NULL;
	}
	if (pd_cfg->greylist_log[0] == '\0')
		return;
	fd = open(pd_cfg->greylist_log, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0640);
	if (fd == -1 || (pd_log = fdopen(fd, "a")) == NULL) {
		log_warn("greylist_log %s", pd_cfg->greylist_log);
		if (fd != -1)
			close(fd);
		return;
	}
	setvbuf(pd_log, NULL, _IOLBF, 0);
}

/* store_failed - log a store failure once per outage */
static void
store_failed(void)
{
	if (!pd_failing)
		log_warnx("greylist store failing: %s; answering as "
		    "on_error says until it recovers", store_errstr(pd_store));
	pd_failing = 1;
}

static void
store_ok(void)
{
	if (pd_failing)
		log_info("greylist store recovered");
	pd_failing = 0;
}

/* keys - the triplet of a request, normalised; -1 if it cannot be */
static int
keys(const struct pp_request *rq, char *net, char *from, char *to)
{
	struct ipaddr	ip;

	if (pp_client_ip(rq, &ip) == -1 ||
	    greylist_client_net(&ip, pd_cfg->greylist.ipv4_prefix,
	    pd_cfg->greylist.ipv6_prefix, net, GREYLIST_NET_MAX) == -1 ||
	    greylist_norm_sender(rq->sender, from, GREYLIST_ADDR_MAX) == -1 ||
	    greylist_norm_rcpt(rq->rcpt, to, GREYLIST_ADDR_MAX) == -1)
		return -1;
	return 0;
}

/*
 * horizon_extend - a refusal is remembered until t: the master publishes
 * that time on its board, after which no upstream refusal is
 * remembered, so that workers need not ask about one before it (the
 * common case: nothing refused in the last hour).  It only ever moves
 * later; a stale one costs a question, never a missed refusal.
 */
static void
horizon_extend(time_t t)
{
	struct chan_horizon	h;

	if (pd_horizon >= t)
		return;
	pd_horizon = t;
	if (pd_chan == -1)
		return;
	memset(&h, 0, sizeof(h));
	h.magic = CHAN_MAGIC;
	h.until = (int64_t)t;
	(void)send(pd_chan, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * refused - a request that fails its checks, or a stored text that does:
 * logged (at most 10 lines a second, so that a worker cannot flood the
 * log), never acted on
 */
static void
refused(const char *what, const char *why)
{
	time_t	now = time(NULL);

	if (now != pd_warn_at) {
		if (pd_warn_n > 10)
			log_warnx("%d more refused policy requests",
			    pd_warn_n - 10);
		pd_warn_at = now;
		pd_warn_n = 0;
	}
	if (++pd_warn_n <= 10)
		log_warnx("%s refused: %s", what, why);
}

/* policyd_answer - one request, one response; pure but for the store */
void
policyd_answer(const struct pp_request *rq, struct pp_response *rp,
    time_t now)
{
	struct greylist_params	 gp;
	enum gl_result		 gl;
	char			 net[GREYLIST_NET_MAX];
	char			 from[GREYLIST_ADDR_MAX], to[GREYLIST_ADDR_MAX];
	char			 ts[32];
	struct tm		 tm;
	int			 r;

	const char		*why;
	char			 line[PP_TEXT_MAX];

	memset(rp, 0, sizeof(*rp));
	rp->version = PP_VERSION;
	rp->op = rq->op;
	rp->id = rq->id;
	rp->status = PP_ERROR;
	if (pp_check_request(rq, &why) == -1) {
		refused("policy request", why);
		return;
	}
	if (rq->op == PP_LOG) {
		/* made safe the way the workers' own log lines are */
		log_clean(line, rq->text, sizeof(line));
		if (pd_log != NULL && localtime_r(&now, &tm) != NULL &&
		    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S%z", &tm) > 0)
			fprintf(pd_log, "%s %s\n", ts, line);
		rp->status = PP_OK;
		return;
	}
	if (keys(rq, net, from, to) == -1)
		return;
	if (!pd_intx) {
		/* the writes of the next few ms go in one transaction */
		if (store_begin(pd_store) == -1) {
			store_failed();
			return;
		}
		pd_intx = 1;
		clock_gettime(CLOCK_MONOTONIC, &pd_txstart);
	}
	switch (rq->op) {
	case PP_VERIFY_GET:
	case PP_VERIFY_PUT:
		if (verify_answer(rq, rp, to, now) == -1) {
			rp->status = PP_ERROR;
			store_failed();
			return;
		}
		break;
	case PP_REPLY_PUT:
		/* whatever the client network: senders retry from others */
		if (store_reply_put(pd_store, STORE_REPLY_NET, from, to,
		    rq->text, now + pd_cfg->greylist.refusal_expire) == -1) {
			store_failed();
			return;
		}
		horizon_extend(now + pd_cfg->greylist.refusal_expire);
		rp->status = PP_OK;
		break;
	case PP_REPLY_GET:
		r = store_reply_get(pd_store, STORE_REPLY_NET, from, to, now,
		    rp->text, sizeof(rp->text));
		if (r == -1) {
			store_failed();
			return;
		}
		if (r == 1 && pp_reply_valid(rp->text) == -1) {
			/* the store (a shared Redis) is not to be believed */
			refused("stored reply text", "not one 4xx/5xx line");
			r = 0;
			rp->text[0] = '\0';
		}
		rp->status = r == 1 ? PP_FOUND : PP_NOTFOUND;
		break;
	case PP_CHECK:
		/* a remembered upstream refusal first, then the rules */
		gp.delay = pd_cfg->greylist.delay;
		gp.retry_window = pd_cfg->greylist.retry_window;
		gp.expire = pd_cfg->greylist.expire;
		gp.auto_whitelist = pd_cfg->greylist.auto_whitelist;
		r = greylist_check_cached(pd_store, &gp, net, from, to, now,
		    rp->text, sizeof(rp->text), &gl);
		if (r == -1) {
			store_failed();
			return;
		}
		if (r == 1 && pp_reply_valid(rp->text) == -1) {
			refused("stored reply text", "not one 4xx/5xx line");
			rp->text[0] = '\0';
			r = 0;
			gl = greylist_check(pd_store, &gp, net, from, to, now);
		}
		if (r == 1) {
			rp->status = PP_FOUND;
			break;
		}
		switch (gl) {
		case GL_PASS:
			rp->status = PP_PASS;
			break;
		case GL_WHITELIST:
			rp->status = PP_WHITELIST;
			break;
		case GL_GREYLIST:
			rp->status = PP_GREYLIST;
			break;
		case GL_ERROR:
		default:
			store_failed();
			return;
		}
		break;
	default:
		return;
	}
	store_ok();
}

/*
 * Probes in flight, by recipient: a second worker asking about the same
 * recipient meanwhile is told PP_BUSY and goes on to greylisting, so
 * that one recipient is probed once at a time.  A slot is freed by the
 * answer (PP_VERIFY_PUT) or after VERIFY_INFLIGHT seconds.
 */
#define VERIFY_SLOTS	64
#define VERIFY_INFLIGHT	60

static struct {
	char	 rcpt[GREYLIST_ADDR_MAX];	/* normalised, "" free */
	time_t	 until;
} pd_probes[VERIFY_SLOTS];

/* probe_claim - 1: the caller probes; 0: another one does (or full) */
static int
probe_claim(const char *to, time_t now)
{
	size_t	i, freeslot = VERIFY_SLOTS;

	for (i = 0; i < VERIFY_SLOTS; i++) {
		if (pd_probes[i].rcpt[0] != '\0' && pd_probes[i].until < now)
			pd_probes[i].rcpt[0] = '\0';
		if (pd_probes[i].rcpt[0] == '\0') {
			if (freeslot == VERIFY_SLOTS)
				freeslot = i;
		} else if (strcmp(pd_probes[i].rcpt, to) == 0)
			return 0;
	}
	if (freeslot == VERIFY_SLOTS)
		return 0;	/* bounded: no more at once */
	(void)strlcpy(pd_probes[freeslot].rcpt, to, GREYLIST_ADDR_MAX);
	pd_probes[freeslot].until = now + VERIFY_INFLIGHT;
	return 1;
}

static void
probe_done(const char *to)
{
	size_t	i;

	for (i = 0; i < VERIFY_SLOTS; i++)
		if (strcmp(pd_probes[i].rcpt, to) == 0)
			pd_probes[i].rcpt[0] = '\0';
}

/*
 * verify_answer - PP_VERIFY_GET and PP_VERIFY_PUT: the verification
 * cache, kept as replies of STORE_VERIFY_NET.  -1 on a store error.
 */
static int
verify_answer(const struct pp_request *rq, struct pp_response *rp,
    const char *to, time_t now)
{
	time_t	exp;
	int	r;

	if (rq->op == PP_VERIFY_GET) {
		r = store_reply_get(pd_store, STORE_VERIFY_NET, "", to, now,
		    rp->text, sizeof(rp->text));
		if (r == -1)
			return -1;
		if (r == 1 && pp_verify_valid(rp->text) == -1) {
			/* the store (a shared Redis) is not to be believed */
			refused("stored verification text",
			    "not one 2xx/5xx line");
			r = 0;
			rp->text[0] = '\0';
		}
		rp->status = r == 1 ? PP_FOUND : probe_claim(to, now) ?
		    PP_NOTFOUND : PP_BUSY;
		return 0;
	}
	probe_done(to);
	rp->status = PP_OK;
	if (rq->text[0] != '2' && rq->text[0] != '5')
		return 0;	/* no answer: nothing kept */
	exp = now + (rq->text[0] == '2' ? pd_cfg->verify_positive_expire :
	    pd_cfg->verify_negative_expire);
	return store_reply_put(pd_store, STORE_VERIFY_NET, "", to, rq->text,
	    exp);
}

/*
 * commit - end the open transaction: when no question waits (idle) or
 * once it is TX_MAX_MS old.  A crash loses at most those decisions: a
 * sender is then greylisted once more, nothing worse.
 */
static void
commit(int idle)
{
	struct timespec	now;
	long		ms;

	if (!pd_intx)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - pd_txstart.tv_sec) * 1000 +
	    (now.tv_nsec - pd_txstart.tv_nsec) / 1000000;
	if (!idle && ms < TX_MAX_MS)
		return;
	pd_intx = 0;
	if (store_commit(pd_store) == -1)
		store_failed();
}

/* peer_ok - only the workers' user and root may ask */
static int
peer_ok(int fd)
{
	struct ucred	cr;
	socklen_t	len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return 0;
	return cr.uid == 0 || cr.uid == pd_wuid;
}

/* serve - one readable client; -1 when it must be closed */
static int
serve(int fd)
{
	struct pp_request	rq;
	struct pp_response	rp;
	char			buf[sizeof(rq) + 1];
	ssize_t			n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	if (pp_decode_request(buf, (size_t)n, &rq) == -1) {
		log_warnx("malformed policy request (%zd octets): closing",
		    n);
		return -1;
	}
	policyd_answer(&rq, &rp, time(NULL));
	if (send(fd, &rp, sizeof(rp), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(rp))
		return -1;
	return 0;
}

/* master_event - the master's channel: EOF when the master is gone */
static void
master_event(struct pollfd *p)
{
	char	buf[64];
	ssize_t	n;

	while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		continue;	/* the master says nothing: ignored */
	if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		log_info("the master is gone: stopping");
		pd_stop = 1;
		pd_chan = -1;
		p->fd = -1;
	}
}

/*
 * policyd_main - the process.  chan, its channel to the master, gets a
 * first chan_horizon when the store is open (or the text of why it
 * cannot be), then every later horizon; the master waits for the first
 * at start.  EOF on it (or PR_SET_PDEATHSIG) means the master is gone:
 * the policy process then stops as on SIGTERM.
 */
void
policyd_main(const struct config *c, int lfd, int chan,
    const struct privs *pv)
{
	static struct pollfd	 pfd[MAX_CLIENTS];
	struct sigaction	 sa;
	struct store_options	 so;
	sigset_t		 none;
	struct timespec		 tick = { 1, 0 };
	struct timespec		 linger = { 0, TX_IDLE_MS * 1000000L };
	char			 err[512];
	time_t			 last_expire = 0, now, stop_at = 0, until;
	long			 n;
	size_t			 nfd = 2, i;
	int			 fd;
	pid_t			 master = getppid();

	pd_cfg = c;
	log_procname("policy");
	setproctitle("policy");
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = policyd_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	pd_wuid = pv->drop ? pv->wuid : geteuid();
	if (pv->drop) {
		privdrop_apply(NULL, pv->uid, pv->gid);
		privdrop_child();
	}
	/* after the uid changed: that clears PR_SET_PDEATHSIG */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != master)
		exit(1);
	(void)umask(027);	/* the store holds addresses: not for all */
	config_store_options(c, &so);
	if ((pd_store = store_open_with(c->greylist.store, &so, err,
	    sizeof(err))) == NULL) {
		log_warnx("greylist store: %s", err);
		if (chan != -1)
			(void)send(chan, err, strlen(err), MSG_NOSIGNAL);
		exit(1);
	}
	/* refusals an earlier policy process remembered, before any worker */
	if (store_reply_horizon(pd_store, time(NULL), &until) == -1) {
		log_warnx("greylist store: %s", store_errstr(pd_store));
		until = time(NULL) + pd_cfg->greylist.refusal_expire;
	}
	/* a store that others write too (Redis): the workers always ask */
	if ((int64_t)until > (int64_t)time(NULL) + HORIZON_TTL_MAX)
		until = (time_t)CHAN_HORIZON_FOREVER;
	/* the first horizon says: ready */
	pd_horizon = until;
	if (chan != -1) {
		struct chan_horizon h;

		memset(&h, 0, sizeof(h));
		h.magic = CHAN_MAGIC;
		h.until = (int64_t)until;
		(void)send(chan, &h, sizeof(h), MSG_NOSIGNAL);
		pd_chan = chan;
	}
	open_log();

	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = chan;
	pfd[1].events = POLLIN;
	for (;;) {
		if (pd_reopen) {
			pd_reopen = 0;
			open_log();
		}
		if (pd_stop && pfd[0].fd != -1) {
			/* let the workers still talking to us finish */
			close(lfd);
			pfd[0].fd = -1;
			stop_at = time(NULL) + c->shutdown_timeout + 5;
		}
		if (pd_stop && (nfd == 2 || time(NULL) >= stop_at))
			break;
		/* EMFILE, ENFILE: the listener waits a little */
		if (pfd[0].fd != -1)
			pfd[0].events = time(NULL) >= pd_accept_after ?
			    POLLIN : 0;
		/*
		 * An open transaction waits a little for the next question:
		 * a commit per question would cost more than the question.
		 */
		n = ppoll(pfd, nfd, pd_intx ? &linger : &tick, NULL);
		if (n == -1 && errno != EINTR)
			fatal("poll");
		if (n == 0 && pd_intx) {
			commit(1);
			continue;
		}
		now = time(NULL);
		if (n <= 0 || now - last_expire >= EXPIRE_EVERY) {
			commit(1);
			if (now - last_expire >= EXPIRE_EVERY) {
				last_expire = now;
				if ((n = store_expire_some(pd_store, now,
				    EXPIRE_CHUNK)) == -1)
					store_failed();
				else if (n > 0)
					log_debug("expired %ld entries", n);
			}
			continue;
		}
		if (pfd[1].revents != 0)
			master_event(&pfd[1]);
		if (pfd[0].fd != -1 && (pfd[0].revents & POLLIN)) {
			while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) !=
			    -1) {
				if (!peer_ok(fd) || nfd == MAX_CLIENTS) {
					close(fd);
					continue;
				}
				pfd[nfd].fd = fd;
				pfd[nfd].events = POLLIN;
				pfd[nfd].revents = 0;
				nfd++;
			}
			if (errno == EMFILE || errno == ENFILE) {
				/* not a spin at 100 % CPU: a pause, logged */
				if (pd_accept_after < now)
					log_warnx("policy socket: accept: %s; "
					    "pausing for a second",
					    strerror(errno));
				pd_accept_after = now + 1;
			}
		}
		for (i = 2; i < nfd; i++) {
			if (pfd[i].revents == 0)
				continue;
			if ((pfd[i].revents & POLLIN) && serve(pfd[i].fd) == 0)
				continue;
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR |
			    POLLNVAL)))
				continue;
			close(pfd[i].fd);
			pfd[i--] = pfd[--nfd];
		}
		commit(0);
	}
	commit(1);
	store_close(pd_store);
	if (pd_log != NULL)
		fclose(pd_log);
	exit(0);
}
