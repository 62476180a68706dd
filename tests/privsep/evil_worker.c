/*
 * evil_worker - a compromised worker, for tests/bats/compromised.bats.
 * Run as root, it becomes USER (the workers' uid) before it writes
 * anything, so that it can do no more than a worker could:
 *
 *   evil_worker chan WORKER_PID MASTER_PID USER KIND SLOT
 *	takes the worker's channel to the master (pidfd_getfd: the very
 *	descriptor the worker holds), becomes USER and writes one message
 *	of KIND on it: garbage, short, long, magic, pid=N, slot=N,
 *	state=N, family, sessions, messages, flags
 *   evil_worker policy NAME USER KIND [CLIENT SENDER RCPT]
 *	becomes USER, connects to the policy socket NAME ("@...") and
 *	sends one request of KIND: garbage, short, long, version, op,
 *	family, v4pad, nonul, sender, rcpt, checktext, put250, putcrlf,
 *	putlong, putok, lognl, logrcpt, log.  Prints "status N" for an
 *	answer, "closed" when the policy process hung up.
 *
 * Exit 0 when the write went out, 1 otherwise, 2 on bad usage.
 */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "master.h"
#include "policy_proto.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd	438
#endif

static void
become(const char *user)
{
	struct passwd	*pw;

	if ((pw = getpwnam(user)) == NULL)
		errx(2, "no user %s", user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		err(2, "become %s", user);
}

/* steal - the worker's SOCK_SEQPACKET descriptor whose peer is master */
static int
steal(pid_t worker, pid_t master)
{
	struct ucred	cr;
	socklen_t	len;
	int		pfd, fd, i, type;

	if ((pfd = (int)syscall(SYS_pidfd_open, worker, 0)) == -1)
		err(2, "pidfd_open %ld", (long)worker);
	for (i = 0; i < 1024; i++) {
		if ((fd = (int)syscall(SYS_pidfd_getfd, pfd, i, 0)) == -1)
			continue;
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		    type == SOCK_SEQPACKET) {
			len = sizeof(cr);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr,
			    &len) == 0 && cr.pid == master) {
				close(pfd);
				return fd;
			}
		}
		close(fd);
	}
	errx(2, "worker %ld has no channel to %ld", (long)worker,
	    (long)master);
}

static int
chan(int argc, char *argv[])
{
	struct chan_msg	 m;
	char		 buf[4096];
	const char	*kind;
	size_t		 len = sizeof(m);
	void		*p = &m;
	int		 fd;

	if (argc != 7)
		return 2;
	fd = steal((pid_t)atol(argv[2]), (pid_t)atol(argv[3]));
	become(argv[4]);
	kind = argv[5];
	memset(&m, 0, sizeof(m));
	m.magic = CHAN_MAGIC;
	m.seq = 1;
	m.state = SLOT_IDLE;
	m.pid = (int32_t)atol(argv[2]);
	m.slot = (int32_t)atol(argv[6]);	/* from "worker N started" */
	if (strcmp(kind, "garbage") == 0) {
		arc4random_buf(buf, sizeof(m));
		p = buf;
	} else if (strcmp(kind, "short") == 0)
		len = 3;
	else if (strcmp(kind, "long") == 0) {
		arc4random_buf(buf, sizeof(buf));
		p = buf;
		len = sizeof(buf);
	} else if (strcmp(kind, "magic") == 0)
		m.magic = 0xdeadbeef;
	else if (strncmp(kind, "pid=", 4) == 0)
		m.pid = (int32_t)atol(kind + 4);
	else if (strncmp(kind, "slot=", 5) == 0)
		m.slot = (int32_t)atol(kind + 5);
	else if (strncmp(kind, "state=", 6) == 0)
		m.state = (uint8_t)atoi(kind + 6);
	else if (strcmp(kind, "family") == 0) {
		m.state = SLOT_BUSY;
		m.family = 77;
	} else if (strcmp(kind, "sessions") == 0)
		m.sessions = UINT64_MAX;
	else if (strcmp(kind, "messages") == 0)
		m.messages = UINT64_MAX;
	else if (strcmp(kind, "flags") == 0)
		m.ask = 9;
	else
		return 2;
	if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len) {
		warn("send");
		return 1;
	}
	printf("sent %s (%zu octets)\n", kind, len);
	return 0;
}

static int
policy(int argc, char *argv[])
{
	struct pp_request	 rq;
	struct pp_response	 rp;
	struct ipaddr		 ip;
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	char			 buf[8192];
	const char		*kind, *client = "127.0.0.1";
	const char		*sender = "alice@example.com";
	const char		*rcpt = "bob@example.org";
	size_t			 len = sizeof(rq), n;
	void			*p = &rq;
	ssize_t			 r;
	int			 fd;

	if (argc != 5 && argc != 8)
		return 2;
	become(argv[3]);
	kind = argv[4];
	if (argc == 8) {
		client = argv[5];
		sender = argv[6];
		rcpt = argv[7];
	}
	if (ipaddr_parse(client, &ip) == -1)
		errx(2, "bad client %s", client);
	if (pp_request_init(&rq, PP_REPLY_PUT, &ip, sender, rcpt,
	    "550 5.1.1 refused") == -1)
		errx(2, "request");
	rq.id = 7;
	if (strcmp(kind, "garbage") == 0) {
		arc4random_buf(buf, sizeof(rq));
		p = buf;
	} else if (strcmp(kind, "short") == 0)
		len = 5;
	else if (strcmp(kind, "long") == 0) {
		arc4random_buf(buf, sizeof(buf));
		p = buf;
		len = sizeof(buf);
	} else if (strcmp(kind, "version") == 0)
		rq.version = 99;
	else if (strcmp(kind, "op") == 0)
		rq.op = 200;
	else if (strcmp(kind, "family") == 0)
		rq.family = 99;
	else if (strcmp(kind, "v4pad") == 0)
		memset(rq.addr + 4, 0xff, 12);
	else if (strcmp(kind, "nonul") == 0)
		memset(rq.sender, 'a', sizeof(rq.sender));
	else if (strcmp(kind, "sender") == 0)
		(void)strlcpy(rq.sender, "not an\naddress", sizeof(rq.sender));
	else if (strcmp(kind, "rcpt") == 0)
		(void)strlcpy(rq.rcpt, "", sizeof(rq.rcpt));
	else if (strcmp(kind, "checktext") == 0) {
		rq.op = PP_CHECK;
		(void)strlcpy(rq.text, "550 x", sizeof(rq.text));
	} else if (strcmp(kind, "put250") == 0)
		(void)strlcpy(rq.text, "250 2.1.5 OK", sizeof(rq.text));
	else if (strcmp(kind, "putcrlf") == 0)
		(void)strlcpy(rq.text, "550 5.1.1 no\r\n250 2.1.5 injected",
		    sizeof(rq.text));
	else if (strcmp(kind, "putlong") == 0) {
		memset(rq.text, 'x', sizeof(rq.text) - 1);
		memcpy(rq.text, "550 ", 4);
		rq.text[sizeof(rq.text) - 1] = '\0';
	} else if (strcmp(kind, "putok") == 0)
		;	/* a well-formed refusal: the control */
	else if (strcmp(kind, "lognl") == 0) {
		rq.op = PP_LOG;
		rq.rcpt[0] = '\0';
		(void)strlcpy(rq.text, "session=evil action=pass\n"
		    "2026-01-01T00:00:00+0000 forged=line", sizeof(rq.text));
	} else if (strcmp(kind, "logrcpt") == 0) {
		rq.op = PP_LOG;
		(void)strlcpy(rq.text, "session=evil forged=rcpt",
		    sizeof(rq.text));
	} else if (strcmp(kind, "log") == 0) {
		rq.op = PP_LOG;
		rq.rcpt[0] = '\0';
		(void)strlcpy(rq.text, "session=evil control=line",
		    sizeof(rq.text));
	} else
		return 2;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = strlen(argv[2]);
	if (n < 2 || argv[2][0] != '@' || n > sizeof(sun.sun_path))
		errx(2, "bad socket name %s", argv[2]);
	memcpy(sun.sun_path + 1, argv[2] + 1, n - 1);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET, 0)) == -1)
		err(2, "socket");
	if (connect(fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) == -1)
		err(1, "connect %s", argv[2]);
	if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len) {
		warn("send");
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 5000) != 1) {
		printf("no answer\n");
		return 0;
	}
	r = recv(fd, &rp, sizeof(rp), 0);
	if (r <= 0)
		printf("closed\n");
	else if (r != (ssize_t)sizeof(rp))
		printf("short answer\n");
	else
		printf("status %d\n", rp.status);
	return 0;
}

int
main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "chan") == 0)
		return chan(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "policy") == 0)
		return policy(argc, argv);
	fprintf(stderr, "usage: evil_worker chan WORKER MASTER USER KIND SLOT\n"
	    "       evil_worker policy NAME USER KIND [CLIENT SENDER RCPT]\n");
	return 2;
}
