/*
 * worker - a pre-forked process: drops privileges, then accepts one
 * connection at a time and runs its session to the end.  It reports its
 * state in the shared scoreboard so the master can size the pool, and
 * leaves after max_sessions_per_worker sessions or when told to.  A
 * SIGTERM never cuts a session short; a SIGINT (end of shutdown_timeout)
 * answers 421 and closes.  Idle workers wait on the listeners through
 * epoll with EPOLLEXCLUSIVE, so that a new connection wakes one idle
 * worker rather than all of them (a thundering herd costs more CPU than
 * the session itself).
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"
#include "session.h"
#include "worker.h"

static volatile sig_atomic_t worker_stop;	/* SIGTERM: leave when idle */
static volatile sig_atomic_t worker_abort;	/* SIGINT: end the session */
static struct pp_conn	worker_pp = { -1, "" };	/* to the policy process */
static const char	*worker_spool;		/* spool_dir seen from here */

static void
worker_sig(int sig)
{
	if (sig == SIGTERM)
		worker_stop = 1;
	else if (sig == SIGINT)
		worker_abort = worker_stop = 1;
}

/* worker_count_client - sessions in progress from this address */
int
worker_count_client(const struct scoreboard *sb, int nslots,
    const struct ipaddr *ip)
{
	int	i, n = 0;

	for (i = 0; i < nslots; i++)
		if (sb->slots[i].pid != 0 && sb->slots[i].state == SLOT_BUSY &&
		    ipaddr_equal(&sb->slots[i].client, ip))
			n++;
	return n;
}

/*
 * worker_want_more - the pool is short of idle workers: wake the master
 * (it otherwise looks once a second).  The write never blocks; a full
 * pipe already says it.
 */
static void
worker_want_more(const struct config *cfg, struct scoreboard *sb)
{
	int	i, live = 0, idle = 0;

	for (i = 0; i < sb->nslots; i++) {
		if (sb->slots[i].pid == 0)
			continue;
		live++;
		if (sb->slots[i].state == SLOT_IDLE ||
		    sb->slots[i].state == SLOT_STARTING)
			idle++;
	}
	/* a full pipe (EAGAIN) means the master is woken already; without
	 * the byte the master still grows the pool at its next tick */
	if (idle < cfg->min_spare_workers && live < cfg->max_workers &&
	    write(sb->wake_fd, "", 1) == -1 && errno != EAGAIN)
		log_warn("wake master");
}

/* worker_serve - one accepted connection, start to end */
static void
worker_serve(const struct config *cfg, struct scoreboard *sb, int me,
    int fd, const struct sockaddr *sa, sigset_t *sessmask)
{
	struct session	 s;
	struct ipaddr	 ip;
	struct slot	*slot = &sb->slots[me];
	char		 addr[64];
	int		 one = 1;
	static const char toomany[] =
	    "421 4.7.0 Too many connections from your address\r\n";

	if (ipaddr_from_sockaddr(sa, &ip) == -1) {
		close(fd);
		return;
	}
	/* accept4(2) on Linux: the new socket is blocking whatever the listener */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	slot->client = ip;
	slot->state = SLOT_BUSY;
	worker_want_more(cfg, sb);
	ipaddr_ntop(&ip, addr, sizeof(addr));
	setproctitle("worker: %s", addr);

	if (cfg->max_connections_per_ip > 0 && worker_count_client(sb,
	    sb->nslots, &ip) > cfg->max_connections_per_ip) {
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
		s.reply_horizon = &sb->reply_horizon;
		slot->replay_until = 0;
		s.replaying = &slot->replay_until;
		s.tls_ctx = cfg->tls_ctx;	/* loaded by the master */
		sigprocmask(SIG_SETMASK, sessmask, NULL);
		session_run(&s);
		if (!worker_abort)
			slot->replay_until = 0;	/* else: exiting, spared */
		slot->messages += s.messages;
		slot->tls_sessions += s.tls;
		session_free(&s);
	}
	close(fd);
	slot->sessions++;
}

void
worker_main(const struct config *cfg, const struct listeners *ls,
    struct scoreboard *sb, int me, const struct privs *pv)
{
	struct epoll_event	 ev, evs[MAX_LISTEN];
	struct sockaddr_storage	 ss;
	struct sigaction	 sa;
	sigset_t		 blocked, waitmask, sessmask;
	socklen_t		 slen;
	size_t			 i;
	int			 ep, fd, k, n, served = 0;

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

	worker_spool = cfg->spool_dir;
	if (pv->drop) {
		privdrop_apply(cfg->chroot, pv->uid, pv->gid);
		worker_spool = config_spool_in_chroot(cfg);
	}
	worker_pp.name = sb->policy_name;

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
	while (!worker_stop && served < cfg->max_sessions_per_worker) {
		if (sb->slots[me].state != SLOT_IDLE) {
			sb->slots[me].state = SLOT_IDLE;
			setproctitle("worker: idle");
		}
		n = epoll_pwait(ep, evs, MAX_LISTEN, -1, &waitmask);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_pwait");
		}
		for (k = 0; k < n && !worker_stop; k++) {
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
			worker_serve(cfg, sb, me, fd, (struct sockaddr *)&ss,
			    &sessmask);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			served++;
			break;
		}
	}
	exit(0);
}
