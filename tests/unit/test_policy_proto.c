/*
 * test_policy_proto - the worker/policy-process wire format: encoding,
 * strict decoding of every malformed message, and pp_call's handling of
 * stale answers, garbage, silence and a vanished peer.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "policy_proto.h"
#include "tap.h"

static void
mkreq(struct pp_request *rq)
{
	struct ipaddr	ip;

	(void)ipaddr_parse("192.0.2.1", &ip);
	ok(pp_request_init(rq, PP_CHECK, &ip, "a@b.example", "c@d.example",
	    NULL) == 0, "request built");
}

static void
test_request(void)
{
	struct pp_request	 rq, out;
	struct ipaddr		 ip;
	char			 big[600], buf[sizeof(rq) + 8];
	static const struct {
		const char	*name;
		size_t		 off;		/* octet to change */
		unsigned char	 val;
		ssize_t		 len;		/* -1: sizeof */
	} bad[] = {
		{ "short message", 0, PP_VERSION, sizeof(struct pp_request) - 1 },
		{ "long message", 0, PP_VERSION, sizeof(struct pp_request) + 1 },
		{ "empty message", 0, PP_VERSION, 0 },
		{ "version 0", offsetof(struct pp_request, version), 0, -1 },
		{ "version 2", offsetof(struct pp_request, version), 2, -1 },
		{ "op 0", offsetof(struct pp_request, op), 0, -1 },
		{ "op past the last", offsetof(struct pp_request, op),
		    PP_OP_MAX + 1, -1 },
		{ "family 0", offsetof(struct pp_request, family), 0, -1 },
		{ "family AF_UNIX", offsetof(struct pp_request, family),
		    AF_UNIX, -1 },
	};
	size_t	i;

	mkreq(&rq);
	ok(pp_decode_request(&rq, sizeof(rq), &out) == 0, "round trip");
	is_str(out.sender, "a@b.example", "sender kept");
	is_str(out.rcpt, "c@d.example", "recipient kept");
	ok(pp_client_ip(&out, &ip) == 0 && ip.family == AF_INET &&
	    memcmp(ip.addr, "\xc0\x00\x02\x01", 4) == 0, "client kept");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mkreq(&rq);
		memset(buf, 0, sizeof(buf));
		memcpy(buf, &rq, sizeof(rq));
		buf[bad[i].off] = (char)bad[i].val;
		is_int(pp_decode_request(buf, bad[i].len == -1 ? sizeof(rq) :
		    (size_t)bad[i].len, &out), -1, "refused: %s", bad[i].name);
	}

	/* strings without their NUL */
	mkreq(&rq);
	memset(rq.sender, 'x', sizeof(rq.sender));
	is_int(pp_decode_request(&rq, sizeof(rq), &out), -1,
	    "refused: sender without NUL");
	mkreq(&rq);
	memset(rq.rcpt, 'x', sizeof(rq.rcpt));
	is_int(pp_decode_request(&rq, sizeof(rq), &out), -1,
	    "refused: recipient without NUL");
	mkreq(&rq);
	memset(rq.text, 'x', sizeof(rq.text));
	is_int(pp_decode_request(&rq, sizeof(rq), &out), -1,
	    "refused: text without NUL");

	/* a PP_LOG needs no client */
	ok(pp_request_init(&rq, PP_LOG, NULL, "", "", "a log line") == 0 &&
	    pp_decode_request(&rq, sizeof(rq), &out) == 0,
	    "a log request without a client");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	is_int(pp_request_init(&rq, PP_CHECK, NULL, big, "", NULL), -1,
	    "a sender too long for the message is refused");
	is_int(pp_request_init(&rq, PP_CHECK, NULL, "", big, NULL), -1,
	    "a recipient too long for the message is refused");
}

static void
test_response(void)
{
	struct pp_response	rp, out;

	memset(&rp, 0, sizeof(rp));
	rp.version = PP_VERSION;
	rp.op = PP_REPLY_GET;
	rp.status = PP_FOUND;
	(void)strlcpy(rp.text, "550 5.1.1 no", sizeof(rp.text));
	ok(pp_decode_response(&rp, sizeof(rp), &out) == 0 &&
	    strcmp(out.text, "550 5.1.1 no") == 0, "response round trip");
	rp.status = 0;
	is_int(pp_decode_response(&rp, sizeof(rp), &out), -1,
	    "refused: status 0");
	rp.status = PP_STATUS_MAX + 1;
	is_int(pp_decode_response(&rp, sizeof(rp), &out), -1,
	    "refused: status past the last");
	rp.status = PP_OK;
	memset(rp.text, 'x', sizeof(rp.text));
	is_int(pp_decode_response(&rp, sizeof(rp), &out), -1,
	    "refused: text without NUL");
	is_int(pp_decode_response(&rp, sizeof(rp) - 1, &out), -1,
	    "refused: short response");
}

/* a fake policy process on the other end of a socketpair */
enum fake { F_GOOD, F_STALE_FIRST, F_GARBAGE, F_SILENT, F_CLOSE };

static pid_t
fake(int fd, enum fake how)
{
	struct pp_request	rq;
	struct pp_response	rp;
	pid_t			pid;

	if ((pid = fork()) != 0)
		return pid;
	if (recv(fd, &rq, sizeof(rq), 0) != (ssize_t)sizeof(rq))
		_exit(1);
	memset(&rp, 0, sizeof(rp));
	rp.version = PP_VERSION;
	rp.op = rq.op;
	rp.status = PP_PASS;
	rp.id = rq.id;
	switch (how) {
	case F_STALE_FIRST:
		rp.id = rq.id - 1;
		rp.status = PP_GREYLIST;
		(void)send(fd, &rp, sizeof(rp), 0);
		rp.id = rq.id;
		rp.status = PP_PASS;
		/* FALLTHROUGH */
	case F_GOOD:
		(void)send(fd, &rp, sizeof(rp), 0);
		break;
	case F_GARBAGE:
		(void)send(fd, "garbage", 7, 0);
		break;
	case F_SILENT:
		sleep(3);
		break;
	case F_CLOSE:
		break;
	}
	_exit(0);
}

static void
test_call(void)
{
	static const struct {
		const char	*name;
		enum fake	 how;
		int		 want;
		int		 status;
	} t[] = {
		{ "an answer", F_GOOD, 0, PP_PASS },
		{ "a stale answer is skipped", F_STALE_FIRST, 0, PP_PASS },
		{ "garbage", F_GARBAGE, -1, 0 },
		{ "no answer within the timeout", F_SILENT, -1, 0 },
		{ "the peer closes", F_CLOSE, -1, 0 },
	};
	struct pp_request	 rq;
	struct pp_response	 rp;
	size_t			 i;
	pid_t			 pid;
	int			 sv[2], r, st;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == -1) {
			ok(0, "socketpair");
			return;
		}
		pid = fake(sv[1], t[i].how);
		close(sv[1]);
		mkreq(&rq);
		memset(&rp, 0, sizeof(rp));
		r = pp_call(sv[0], &rq, &rp, 500);
		is_int(r, t[i].want, "pp_call: %s", t[i].name);
		if (t[i].want == 0)
			is_int(rp.status, t[i].status, "pp_call: %s: status",
			    t[i].name);
		close(sv[0]);
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, &st, 0);
	}
}

static void
test_listen(void)
{
	struct pp_conn		 pc;
	struct pp_request	 rq;
	struct pp_response	 rp;
	char			 name[PP_NAME_MAX];
	int			 lfd, fd;

	lfd = pp_listen(name, sizeof(name));
	ok(lfd != -1 && name[0] == '@', "pp_listen: %s", name);
	fd = pp_connect(name);
	ok(fd != -1, "pp_connect to it");
	if (fd != -1)
		close(fd);
	close(lfd);
	is_int(pp_connect(name), -1, "pp_connect once it is closed");
	is_int(pp_connect("no-at-sign"), -1, "pp_connect: a bad name");

	pc.fd = -1;
	pc.name = "";
	mkreq(&rq);
	is_int(pp_ask(&pc, &rq, &rp), -1, "pp_ask with no policy process");
	is_int(pp_ask(NULL, &rq, &rp), -1, "pp_ask with no connection");
	pc.name = name;
	is_int(pp_ask(&pc, &rq, &rp), -1, "pp_ask to a closed socket");
	is_int(pc.fd, -1, "pp_ask leaves no connection behind");
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_request();
	test_response();
	test_call();
	test_listen();
	return tap_done();
}
