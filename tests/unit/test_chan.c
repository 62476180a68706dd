/*
 * test_chan - the master's gate for what workers say on their channels,
 * the horizon the policy process sends, one client per IPv6 network for
 * max_connections_per_ip, the read-only board, and the policy process's
 * checks of requests and reply texts (pp_check_request, pp_reply_valid).
 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "policy_proto.h"
#include "tap.h"

static struct chan_view
view(void)
{
	struct chan_view v;

	memset(&v, 0, sizeof(v));
	v.slot = 3;
	v.pid = 4242;
	v.state = SLOT_IDLE;
	v.sessions = 5;
	v.messages = 7;
	v.max_sessions = 10;
	return v;
}

static struct chan_msg
good(void)
{
	struct chan_msg m;

	memset(&m, 0, sizeof(m));
	m.magic = CHAN_MAGIC;
	m.seq = 1;
	m.state = SLOT_BUSY;
	m.family = AF_INET;
	m.addr[0] = 127;
	m.addr[3] = 1;
	m.slot = 3;
	m.pid = 4242;
	m.sessions = 5;
	m.messages = 7;
	return m;
}

static void
refused(struct chan_msg m, size_t len, const char *want, const char *name)
{
	struct chan_view v = view();
	struct chan_msg	 out;
	const char	*why = NULL;

	is_int(chan_check(&m, len, &v, &out, &why), -1, "refused: %s", name);
	is_str(why, want, "refused: %s: reason", name);
}

static void
test_chan_check(void)
{
	struct chan_view v = view();
	struct chan_msg	 m = good(), out;
	const char	*why = NULL;
	char		 big[sizeof(m) + 1];

	is_int(chan_check(&m, sizeof(m), &v, &out, &why), 0, "a busy report");
	is_int(out.state, SLOT_BUSY, "state kept");
	m.state = SLOT_IDLE;
	m.family = 0;
	memset(m.addr, 0, sizeof(m.addr));
	m.sessions = 6;
	m.messages = 9;
	is_int(chan_check(&m, sizeof(m), &v, &out, &why), 0,
	    "idle after a session with two messages");

	refused(good(), sizeof(m) - 1, "wrong size", "short");
	memset(big, 0, sizeof(big));
	memcpy(big, &m, sizeof(m));
	is_int(chan_check(big, sizeof(big), &v, &out, &why), -1,
	    "refused: long");
	m = good();
	m.magic = 0;
	refused(m, sizeof(m), "bad magic", "magic");
	m = good();
	m.slot = 100000000;
	refused(m, sizeof(m), "wrong slot", "slot 100000000");
	m.slot = -1;
	refused(m, sizeof(m), "wrong slot", "slot -1");
	m = good();
	m.pid = 1;
	refused(m, sizeof(m), "wrong pid", "pid 1");
	m.pid = -1;
	refused(m, sizeof(m), "wrong pid", "pid -1");
	m = good();
	m.state = SLOT_FREE;
	refused(m, sizeof(m), "unknown state", "state FREE");
	m.state = SLOT_STARTING;
	refused(m, sizeof(m), "unknown state", "state STARTING");
	m.state = 77;
	refused(m, sizeof(m), "unknown state", "state 77");
	m = good();
	m.family = AF_UNIX;
	refused(m, sizeof(m), "bad address family", "busy, AF_UNIX");
	m = good();
	m.state = SLOT_IDLE;
	refused(m, sizeof(m), "bad address family", "idle with a client");
	m = good();
	m.ask = 2;
	refused(m, sizeof(m), "bad flags", "ask 2");
	m = good();
	m.pad = 1;
	refused(m, sizeof(m), "bad flags", "pad");
	m = good();
	m.sessions = UINT64_MAX;
	refused(m, sizeof(m), "impossible session count", "sessions max");
	m.sessions = 4;
	refused(m, sizeof(m), "impossible session count",
	    "sessions going back");
	m.sessions = 7;
	refused(m, sizeof(m), "impossible session count", "two at once");
	m = good();
	m.messages = UINT64_MAX;
	refused(m, sizeof(m), "impossible message count", "messages max");
	m.messages = 6;
	refused(m, sizeof(m), "impossible message count",
	    "messages going back");
	v.sessions = 10;
	m = good();
	m.sessions = 11;
	is_int(chan_check(&m, sizeof(m), &v, &out, &why), -1,
	    "refused: past max_sessions_per_worker");
}

static void
test_horizon(void)
{
	struct chan_horizon h;
	const char	*why = NULL;
	time_t		 until = 0;

	memset(&h, 0, sizeof(h));
	h.magic = CHAN_MAGIC;
	h.until = 1000 + 3600;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), 0,
	    "horizon an hour ahead");
	is_int(until, 4600, "horizon kept");
	h.until = 1000 + 3600 + 61;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), -1,
	    "refused: horizon too far");
	h.until = CHAN_HORIZON_FOREVER;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), 0,
	    "horizon forever (a shared store: always ask)");
	ok(until == (time_t)CHAN_HORIZON_FOREVER, "forever kept");
	h.until = CHAN_HORIZON_FOREVER - 1;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), -1,
	    "refused: far, but not forever");
	h.until = -1;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), -1,
	    "refused: negative horizon");
	h.until = 1000;
	is_int(chan_check_horizon(&h, 3, 1000, 3600, &until, &why), -1,
	    "refused: short horizon");
	h.magic = 1;
	is_int(chan_check_horizon(&h, sizeof(h), 1000, 3600, &until, &why), -1,
	    "refused: horizon magic");
}

static void
test_same_client(void)
{
	struct ipaddr	a, b;

	ipaddr_parse("2001:db8:1:2::1", &a);
	ipaddr_parse("2001:db8:1:2:ffff::9", &b);
	is_int(chan_same_client(&a, &b, 64), 1, "one /64: one client");
	ipaddr_parse("2001:db8:1:3::1", &b);
	is_int(chan_same_client(&a, &b, 64), 0, "another /64: another");
	is_int(chan_same_client(&a, &b, 48), 1, "one /48 with prefix 48");
	ipaddr_parse("2001:db8:1:2::1", &b);
	is_int(chan_same_client(&a, &b, 128), 1, "the same address at 128");
	ipaddr_parse("2001:db8:1:2::2", &b);
	is_int(chan_same_client(&a, &b, 128), 0, "two addresses at 128");
	is_int(chan_same_client(&a, &b, 60), 1, "prefix 60");
	ipaddr_parse("2001:db8:1:12::1", &b);
	is_int(chan_same_client(&a, &b, 60), 0, "prefix 60: another nibble");
	ipaddr_parse("192.0.2.1", &a);
	ipaddr_parse("192.0.2.2", &b);
	is_int(chan_same_client(&a, &b, 64), 0, "IPv4: the address");
	ipaddr_parse("192.0.2.1", &b);
	is_int(chan_same_client(&a, &b, 64), 1, "IPv4: the same address");
	ipaddr_parse("::ffff:192.0.2.1", &b);
	is_int(chan_same_client(&a, &b, 64), a.family == b.family,
	    "IPv4-mapped as the parser sees it");
}

static void
test_board(void)
{
	struct board		*rw;
	const struct board	*ro;
	int			 fd;

	fd = board_create(&rw);
	ok(fd != -1, "board created");
	if (fd == -1)
		return;
	(void)strlcpy(rw->policy_name, "@x", sizeof(rw->policy_name));
	rw->reply_horizon = 42;
	ro = board_map(fd);
	ok(ro != NULL, "board mapped read-only");
	if (ro == NULL)
		return;
	is_str(ro->policy_name, "@x", "the master's writes are seen");
	is_int(ro->reply_horizon, 42, "horizon seen");
	is_int(mprotect((void *)(uintptr_t)ro, sizeof(*ro),
	    PROT_READ | PROT_WRITE), -1, "mprotect cannot make it writable");
	ok(mmap(NULL, sizeof(*ro), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0) == MAP_FAILED, "no new writable mapping");
	is_int(write(fd, "x", 1), -1, "write(2) to the memfd refused");
	close(fd);
}

static void
req(int op, const char *sender, const char *rcpt, const char *text,
    int want, const char *name)
{
	struct pp_request rq;
	struct ipaddr	  ip;
	const char	 *why = "";

	ipaddr_parse("192.0.2.1", &ip);
	pp_request_init(&rq, op, &ip, sender, rcpt, text);
	is_int(pp_check_request(&rq, &why), want, "%s (%s)", name, why);
}

static void
test_requests(void)
{
	struct pp_request rq;
	struct ipaddr	  ip;
	const char	 *why = "";

	req(PP_CHECK, "a@example.com", "b@example.org", "", 0, "a check");
	req(PP_CHECK, "", "b@example.org", "", 0, "null sender");
	req(PP_CHECK, "a@example.com", "postmaster", "", 0, "postmaster");
	req(PP_CHECK, "a b@example.com", "b@example.org", "", -1,
	    "a sender that does not parse");
	req(PP_CHECK, "a@example.com", "", "", -1, "no recipient");
	req(PP_CHECK, "a@example.com", "b\r\n@example.org", "", -1,
	    "CRLF in a recipient");
	req(PP_CHECK, "a@example.com", "b@example.org", "550 x", -1,
	    "a check with a text");
	req(PP_REPLY_GET, "a@example.com", "b@example.org", "", 0, "a get");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org",
	    "550 5.1.1 <b@example.org>: unknown", 0, "a put");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org", "450 4.2.0 busy",
	    0, "a put of a 450");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org", "250 2.1.5 OK",
	    -1, "a put of a 250");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org",
	    "550 no\r\n250 injected", -1, "a put with CRLF");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org", "550-x", -1,
	    "a put of a continuation line");
	req(PP_REPLY_PUT, "a@example.com", "b@example.org", "", -1,
	    "a put without text");
	req(PP_LOG, "a@example.com", "", "session=1 action=pass", 0, "a log");
	req(PP_LOG, "", "", "session=1\nforged", -1, "a log with a newline");
	req(PP_LOG, "", "", "session=1 \x1b[2J", -1, "a log with ESC");
	req(PP_LOG, "", "b@example.org", "x", -1, "a log with a recipient");
	req(PP_LOG, "", "", "", -1, "an empty log line");
	req(PP_CHECK, "j\xc3\xb6rg@example.com", "b\xc3\xbc@example.org", "",
	    0, "UTF-8 addresses (SMTPUTF8)");
	req(PP_VERIFY_GET, "", "b@example.org", "", 0, "a verify get");
	req(PP_VERIFY_GET, "", "b@example.org", "250 x", -1,
	    "a verify get with a text");
	req(PP_VERIFY_PUT, "", "b@example.org", "250 2.1.5 Ok", 0,
	    "a verify put of a 250");
	req(PP_VERIFY_PUT, "", "b@example.org", "550 5.1.1 unknown", 0,
	    "a verify put of a 550");
	req(PP_VERIFY_PUT, "", "b@example.org", "", 0,
	    "a verify put of no answer");
	req(PP_VERIFY_PUT, "", "b@example.org", "450 4.2.0 busy", -1,
	    "a verify put of a 450");
	req(PP_VERIFY_PUT, "", "b@example.org", "250 ok\r\n250 x", -1,
	    "a verify put with CRLF");
	req(PP_VERIFY_PUT, "", "", "250 ok", -1, "a verify put without recipient");

	ipaddr_parse("192.0.2.1", &ip);
	pp_request_init(&rq, PP_CHECK, &ip, "a@example.com", "b@example.org",
	    NULL);
	rq.addr[7] = 1;
	is_int(pp_check_request(&rq, &why), -1, "IPv4 with junk after it");
	rq.addr[7] = 0;
	rq.family = AF_UNIX;
	is_int(pp_check_request(&rq, &why), -1, "client not an address");
	rq.family = AF_INET;
	rq.pad = 1;
	is_int(pp_check_request(&rq, &why), -1, "padding");
	rq.pad = 0;
	rq.op = 99;
	is_int(pp_check_request(&rq, &why), -1, "unknown op");
}

static void
test_reply_valid(void)
{
	char	long_[STORE_REPLY_MAX + 2];

	is_int(pp_reply_valid("550 5.1.1 no such user"), 0, "550");
	is_int(pp_reply_valid("421 4.3.2 bye"), 0, "421");
	is_int(pp_reply_valid("550 "), 0, "550 and a space");
	is_int(pp_reply_valid("550"), -1, "no space");
	is_int(pp_reply_valid("250 2.1.5 OK"), -1, "250");
	is_int(pp_reply_valid("354 go"), -1, "354");
	is_int(pp_reply_valid("5x0 no"), -1, "not three digits");
	is_int(pp_reply_valid("550-more"), -1, "continuation");
	is_int(pp_reply_valid("550 a\r\n250 b"), -1, "CRLF");
	is_int(pp_reply_valid("550 a\tb"), -1, "TAB");
	is_int(pp_reply_valid("550 caf\xc3\xa9"), -1, "8-bit");
	memset(long_, 'x', sizeof(long_) - 1);
	memcpy(long_, "550 ", 4);
	long_[sizeof(long_) - 1] = '\0';
	is_int(pp_reply_valid(long_), -1, "longer than STORE_REPLY_MAX");
	long_[STORE_REPLY_MAX] = '\0';
	is_int(pp_reply_valid(long_), 0, "STORE_REPLY_MAX exactly");
}

int
main(void)
{
	test_chan_check();
	test_horizon();
	test_same_client();
	test_board();
	test_requests();
	test_reply_valid();
	return tap_done();
}
