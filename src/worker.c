/*
 * worker - a pre-forked process: drops privileges, then accepts one
 * connection at a time and runs its session to the end.  It reports its
 * state to the master over its own channel, so the master can size the
 * pool and count a client's sessions, reads the policy socket's name and
 * the refusal horizon from the master's read-only board, and leaves
 * after max_sessions_per_worker sessions, when told to, or when the
 * master dies (EOF on the channel; PR_SET_PDEATHSIG as a backstop).  A
 * SIGTERM never cuts a session short; a SIGINT (end of shutdown_timeout)
 * answers 421 and closes.  Idle workers wait on the listeners through
 * epoll with EPOLLEXCLUSIVE, so that a new connection wakes one idle
 * worker rather than all of them (a thundering herd costs more CPU than
 * the session itself).
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "privdrop.h"
#include "session.h"
#include "worker.h"

static volatile sig_atomic_t worker_stop;	/* SIGTERM: leave when idle */
static volatile sig_atomic_t worker_abort;	/* SIGINT: end the session */
static struct pp_conn	worker_pp = { -1, "" };	/* to the policy process */
static const char	*worker_spool;		/* spool_dir seen from here */
static const struct board *worker_board;	/* read-only */
static const struct listeners *worker_ls;
static pid_t		 worker_master;		/* getppid() at start */
static int		 worker_chan = -1;	/* to the master */
static int		 worker_slot;
static int		 worker_state = SLOT_STARTING;
static uint32_t		 worker_seq;
static struct ipaddr	 worker_client;		/* of the session */
static unsigned long	 worker_sessions, worker_messages, worker_tls;

static void
worker_sig(int sig)
{
	if (sig == SIGTERM)
		worker_stop = 1;
	else if (sig == SIGINT)
		worker_abort = worker_stop = 1;
}

/*
 * worker_exit - leave.  When the master is gone, the port is let go
 * first: shutdown(2) of a listening socket stops it in every process
 * that shares it, so the first worker to leave frees the port for a new
 * master, even while others finish their sessions.
 */
static void __attribute__((noreturn))
worker_exit(void)
{
	size_t	i;

	if (worker_ls != NULL && getppid() != worker_master)
		for (i = 0; i < worker_ls->n; i++)
			(void)shutdown(worker_ls->fd[i], SHUT_RDWR);
	exit(0);
}

/*
 * worker_tell - report the state to the master; with ask, wait (5 s at
 * most) for the number of sessions in progress from the client's
 * network, this one included.  That number, 0 when not asked, or -1 when
 * the master did not answer in time (the session is then served) or is
 * gone (the worker then leaves after this session).
 */
static int
worker_tell(int state, int ask)
{
	struct chan_msg		m;
	struct chan_reply	r;
	struct pollfd		pfd;
	ssize_t			n;
	int			i;

	memset(&m, 0, sizeof(m));
	m.magic = CHAN_MAGIC;
	m.seq = ++worker_seq;
	m.state = (uint8_t)state;
	m.ask = ask != 0;
	m.slot = worker_slot;
	m.pid = (int32_t)getpid();
	if (state >= SLOT_BUSY) {
		m.family = (uint8_t)worker_client.family;
		memcpy(m.addr, worker_client.addr, sizeof(m.addr));
	}
	m.sessions = worker_sessions;
	m.messages = worker_messages;
	m.tls_sessions = worker_tls;
	worker_state = state;
	do
		n = send(worker_chan, &m, sizeof(m), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(m)) {
		worker_stop = 1;
		return -1;
	}
	if (!ask)
		return 0;
	pfd.fd = worker_chan;
	pfd.events = POLLIN;
	for (i = 0; i < 50; i++) {
		if (poll(&pfd, 1, 100) == 0)
			continue;
		n = recv(worker_chan, &r, sizeof(r), MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			worker_stop = 1;	/* the master is gone */
			return -1;
		}
		/* an answer that came too late for an earlier question */
		if (n == (ssize_t)sizeof(r) && r.magic == CHAN_MAGIC &&
		    r.seq == m.seq)
			return r.count > INT_MAX ? INT_MAX : (int)r.count;
	}
	log_warnx("the master did not answer within 5 s");
	return -1;
}

/*
 * worker_set_state - the state of the session in progress changed (a
 * state the master reads, up to SLOT_STATE_MAX); -1 if the master is gone
 */
int
worker_set_state(int state)
{
	if (state < SLOT_IDLE || state > SLOT_STATE_MAX)
		return -1;
	return worker_tell(state, 0);
}

/*
 * worker_replaying - a replay starts (1) or has ended (0): at shutdown
 * the master spares a replaying worker until the replay's deadline
 */
static void
worker_replaying(int on)
{
	(void)worker_tell(on ? SLOT_REPLAYING : SLOT_BUSY, 0);
}

/* worker_chan_event - the channel is readable while idle */
static void
worker_chan_event(void)
{
	char	buf[64];
	ssize_t	n;

	while ((n = recv(worker_chan, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		continue;	/* an answer that came too late */
	if (n == 0 || (errno != EINTR && errno != EAGAIN))
		worker_exit();	/* the master is gone */
}

/* worker_serve - one accepted connection, start to end */
static void
worker_serve(const struct config *cfg, int fd, const struct sockaddr *sa,
    sigset_t *sessmask)
{
	struct session	 s;
	struct ipaddr	 ip;
	char		 addr[64];
	int		 one = 1, n;
	static const char toomany[] =
	    "421 4.7.0 Too many connections from your address\r\n";

	if (ipaddr_from_sockaddr(sa, &ip) == -1) {
		close(fd);
		return;
	}
	/* accept4(2) on Linux: the new socket is blocking whatever the listener */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	worker_client = ip;
	/* the master counts this client's sessions, and grows the pool */
	n = worker_tell(SLOT_BUSY, cfg->max_connections_per_ip > 0);
	ipaddr_ntop(&ip, addr, sizeof(addr));
	setproctitle("worker: %s", addr);

	if (cfg->max_connections_per_ip > 0 &&
	    n > cfg->max_connections_per_ip) {
		log_info("client=%s action=tempfail reason=too-many-connections",
		    addr);
		(void)send(fd, toomany, sizeof(toomany) - 1, MSG_NOSIGNAL);
	} else if (session_init(&s, cfg, fd, &ip) == -1) {
		log_warn("session_init");
	} else {
		s.tx.dir = worker_spool;	/* inside the chroot */
		{
			struct timeval tv = { cfg->inactivity_timeout, 0 };

			(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
			    sizeof(tv));
		}
		s.abort = &worker_abort;
		s.pp = &worker_pp;
		s.reply_horizon = &worker_board->reply_horizon;
		s.replaying = worker_replaying;
		s.tls_ctx = cfg->tls_ctx;	/* loaded by the master */
		sigprocmask(SIG_SETMASK, sessmask, NULL);
		session_run(&s);
		worker_messages += s.messages;
		worker_tls += s.tls != 0;
		session_free(&s);
	}
	close(fd);
	worker_sessions++;
	memset(&worker_client, 0, sizeof(worker_client));
}

/*
 * worker_secrets - what a worker must not keep: it never talks to the
 * store, so its password and address go
 */
static void
worker_secrets(const struct config *cfg)
{
	struct config	*c = (struct config *)(uintptr_t)cfg;

	explicit_bzero(c->greylist.redis_password,
	    sizeof(c->greylist.redis_password));
	explicit_bzero(c->greylist.redis_username,
	    sizeof(c->greylist.redis_username));
	explicit_bzero(c->greylist.store, sizeof(c->greylist.store));
}

void
worker_main(const struct config *cfg, const struct listeners *ls,
    int board_fd, int me, int chan, const struct privs *pv)
{
	struct epoll_event	 ev, evs[MAX_LISTEN + 1];
	struct sockaddr_storage	 ss;
	struct sigaction	 sa;
	struct timeval		 tv = { 2, 0 };
	sigset_t		 blocked, waitmask, sessmask;
	socklen_t		 slen;
	size_t			 i;
	int			 ep, fd, k, n;

	worker_master = getppid();
	worker_slot = me;
	worker_chan = chan;
	log_procname("worker");
	setproctitle("worker: starting");

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = worker_sig;		/* no SA_RESTART: interrupt */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);

	/* TERM and INT are delivered only where the worker can act on them */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	sigemptyset(&waitmask);
	sigemptyset(&sessmask);
	sigaddset(&sessmask, SIGTERM);

	worker_secrets(cfg);
	if ((worker_board = board_map(board_fd)) == NULL)
		fatal("board");
	close(board_fd);
	(void)setsockopt(chan, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	worker_spool = cfg->spool_dir;
	if (pv->drop) {
		privdrop_apply(cfg->chroot, pv->wuid, pv->wgid);
		worker_spool = config_spool_in_chroot(cfg);
		privdrop_child();
	}
	/* after the uid changed: that clears PR_SET_PDEATHSIG */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != worker_master)
		exit(0);	/* the master died meanwhile */
	worker_ls = ls;
	worker_pp.name = worker_board->policy_name;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	for (i = 0; i < ls->n; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ls->fd[i], &ev) == -1) {
			/* a kernel older than 4.5: every idle worker wakes */
			ev.events = EPOLLIN;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, ls->fd[i], &ev) == -1)
				fatal("epoll_ctl");
		}
	}
	/* EOF on the channel: the master is gone */
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = MAX_LISTEN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, chan, &ev) == -1)
		fatal("epoll_ctl");
	while (!worker_stop &&
	    worker_sessions < (unsigned long)cfg->max_sessions_per_worker) {
		if (worker_state != SLOT_IDLE) {
			if (worker_tell(SLOT_IDLE, 0) == -1)
				break;
			setproctitle("worker: idle");
		}
		n = epoll_pwait(ep, evs, MAX_LISTEN + 1, -1, &waitmask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_pwait");
		}
		for (k = 0; k < n && !worker_stop; k++) {
			if (evs[k].data.u32 == MAX_LISTEN) {
				worker_chan_event();
				continue;
			}
			if (evs[k].events & (EPOLLERR | EPOLLHUP))
				exit(0);	/* shut down by the master */
			if (!(evs[k].events & EPOLLIN))
				continue;
			i = evs[k].data.u32;
			slen = sizeof(ss);
			fd = accept4(ls->fd[i], (struct sockaddr *)&ss, &slen,
			    SOCK_CLOEXEC);
			if (fd == -1)
				continue;	/* another worker took it */
			worker_serve(cfg, fd, (struct sockaddr *)&ss,
			    &sessmask);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			break;
		}
	}
	worker_exit();
}
