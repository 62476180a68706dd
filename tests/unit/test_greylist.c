/*
 * test_greylist - the triplet rules with the clock passed in: sender
 * normalisation (case, +extension, SRS0/SRS1, BATV, the null sender,
 * odd input that must neither crash nor overrun), client networks for
 * IPv4 and IPv6 prefixes, and greylist_check/greylist_peek scenarios
 * (first sight, early and late retries, both edges of the window,
 * expiry, auto_whitelist): one table run against every backend built
 * in, a temporary SQLite store and, when redis-server can be started,
 * a Redis store on a loopback port (whose decide op applies the rules
 * in a Lua script: the same table proves it gives the same answers).
 * Against Redis also: two handles deciding one triplet at the same
 * moment count every pass once, and a stopped server is GL_ERROR.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cidr.h"
#include "greylist.h"
#include "store.h"
#include "tap.h"
#include "redis_server.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/*
 * The scenarios' time zero: the real time, so that the Redis TTLs taken
 * from the records' expiries are in the future as they are in service.
 */
#define T0		t0
#define DELAY		300
#define WINDOW		172800
#define EXPIRE		3024000

static char	tmpdir[256], dbpath[320], spec[330];
static time_t	t0;
static const char *be = "sqlite";	/* the backend under test */
static struct redis_server rs = { -1, 0, "", "" };
static int	nfresh;			/* Redis: a new prefix per store */

static const struct {
	const char	*in;
	const char	*want;
} sender_cases[] = {
	{ "", "" },					/* null sender */
	{ "alice@example.org", "alice@example.org" },
	{ "Alice@Example.ORG", "alice@example.org" },
	{ "ALICE@EXAMPLE.ORG", "alice@example.org" },
	{ "alice+list@example.org", "alice@example.org" },
	{ "alice+a+b@example.org", "alice@example.org" },
	{ "Alice+Tag@Example.org", "alice@example.org" },
	{ "alice+@example.org", "alice@example.org" },
	{ "+tag@example.org", "+tag@example.org" },	/* nothing before + */
	{ "\"a+b\"@example.org", "\"a+b\"@example.org" }, /* quoted */
	{ "a.b-c_d@sub.example.org", "a.b-c_d@sub.example.org" },
	/* SRS0=HHH=TT=domain=local@forwarder */
	{ "SRS0=HHH=TT=example.com=alice@forwarder.net", "alice@example.com" },
	{ "srs0=x4Zq=Q2=Example.COM=Alice@fwd.example", "alice@example.com" },
	{ "SRS0+HHH=TT=example.com=alice@fwd.example", "alice@example.com" },
	{ "SRS0-HHH=TT=example.com=alice@fwd.example", "alice@example.com" },
	{ "SRS0=HHH=TT=example.com=alice+x@fwd.example", "alice@example.com" },
	{ "SRS0=HHH=TT=example.com=a=b@fwd.example", "a=b@example.com" },
	/* SRS1=HHH=forwarder==HHH=TT=domain=local@forwarder2 */
	{ "SRS1=HHH=forwarder.net==HHH=TT=example.com=alice@second.example",
	    "alice@example.com" },
	{ "srs1=abc=fwd.example=+def=tt=Example.com=Bob@x.example",
	    "bob@example.com" },
	/* malformed SRS: left as it is, lower-cased */
	{ "SRS0=HHH@fwd.example", "srs0=hhh@fwd.example" },
	{ "SRS0=HHH=TT@fwd.example", "srs0=hhh=tt@fwd.example" },
	{ "SRS0=HHH=TT==alice@fwd.example", "srs0=hhh=tt==alice@fwd.example" },
	{ "SRS0=HHH=TT=example.com=@fwd.example",
	    "srs0=hhh=tt=example.com=@fwd.example" },
	{ "SRS0xHHH=TT=example.com=alice@fwd.example",
	    "srs0xhhh=tt=example.com=alice@fwd.example" },
	{ "SRS1=HHH=fwd.net=HHH=TT=example.com=alice@x",
	    "srs1=hhh=fwd.net=hhh=tt=example.com=alice@x" },
	{ "SRS1=HHH=fwd.net==HHH=TT=example.com@x",
	    "srs1=hhh=fwd.net==hhh=tt=example.com@x" },
	{ "srs0", "srs0" },
	{ "srs0=", "srs0=" },
	{ "srs1=", "srs1=" },
	{ "srs0=@", "srs0=@" },
	/* BATV */
	{ "prvs=0123456789=bob@example.net", "bob@example.net" },
	{ "PRVS=1234ABCDEF=Bob@Example.NET", "bob@example.net" },
	{ "prvs=0123456789=bob+list@example.net", "bob@example.net" },
	{ "prvs=bob/0123456789@example.net", "bob@example.net" },
	{ "msprvs1=17abcdefg=bob@example.net", "bob@example.net" },
	{ "btv1==0123456789==bob@example.net", "bob@example.net" },
	{ "prvs==bob@example.net", "prvs==bob@example.net" },
	{ "prvs=tag=@example.net", "prvs=tag=@example.net" },
	{ "prvs=@example.net", "prvs=@example.net" },
	{ "prvs=/tag@example.net", "prvs=/tag@example.net" },
	{ "prvs=bob/@example.net", "prvs=bob/@example.net" },
	{ "prvs=", "prvs=" },
	{ "btv1==", "btv1==" },
	{ "btv1====", "btv1====" },
	/* nested: BATV inside SRS, SRS of SRS */
	{ "SRS0=HHH=TT=example.com=prvs=0123456789=bob@fwd.example",
	    "bob@example.com" },
	{ "prvs=0123456789=SRS0=HHH=TT=example.com=bob@fwd.example",
	    "bob@example.com" },
	/* odd input: kept, lower-cased, never crashes */
	{ "postmaster", "postmaster" },
	{ "User+x", "user" },
	{ "@", "@" },
	{ "@@", "@@" },
	{ "user@", "user@" },
	{ "@example.org", "@example.org" },
	{ "a@b@C.org", "a@b@c.org" },
	{ "+", "+" },
	{ "=", "=" },
	{ "\xc3\xa9T\xc3\xa9@Example.org", "\xc3\xa9t\xc3\xa9@example.org" },
};

static void
test_norm_sender(void)
{
	char	 out[GREYLIST_ADDR_MAX], small[9], *big;
	size_t	 i;

	for (i = 0; i < sizeof(sender_cases) / sizeof(sender_cases[0]); i++) {
		memset(out, 'X', sizeof(out));
		is_int(greylist_norm_sender(sender_cases[i].in, out,
		    sizeof(out)), 0, "norm_sender \"%s\"", sender_cases[i].in);
		is_str(out, sender_cases[i].want, "norm_sender \"%s\": key",
		    sender_cases[i].in);
	}

	/* bounded output: truncated, terminated, nothing past the buffer */
	memset(small, 'X', sizeof(small));
	is_int(greylist_norm_sender("Alice@Example.org", small, 8), -1,
	    "norm_sender: 8-octet buffer too short");
	is_int(strlen(small), 7, "norm_sender: truncated to the buffer");
	is_int(small[8], 'X', "norm_sender: nothing written past it");
	memset(small, 'X', sizeof(small));
	is_int(greylist_norm_sender("", small, 1), 0,
	    "norm_sender: null sender fits one octet");
	is_str(small, "", "norm_sender: null sender in one octet");
	is_int(greylist_norm_sender("a@b", small, 1), -1,
	    "norm_sender: one octet for a@b");
	is_str(small, "", "norm_sender: empty when nothing fits");
	is_int(greylist_norm_sender("a@b", small, 0), -1,
	    "norm_sender: zero-length buffer");
	is_int(small[0], '\0', "norm_sender: zero-length buffer untouched");
	is_int(greylist_norm_sender("a@b", small, 4), 0,
	    "norm_sender: exact fit");
	is_str(small, "a@b", "norm_sender: exact fit key");
	/* SRS unwraps to something shorter that fits the buffer */
	is_int(greylist_norm_sender("SRS0=HHH=TT=ex.co=al@fwd.example", small,
	    sizeof(small)), 0, "norm_sender: long SRS, short result");
	is_str(small, "al@ex.co", "norm_sender: long SRS unwrapped");

	if ((big = malloc(5000)) == NULL) {
		ok(0, "malloc");
		return;
	}
	memset(big, 'A', 4999);
	big[4999] = '\0';
	big[2500] = '@';
	is_int(greylist_norm_sender(big, out, sizeof(out)), -1,
	    "norm_sender: 5000 octets refused");
	is_int(strlen(out), sizeof(out) - 1, "norm_sender: buffer filled, "
	    "terminated");
	memcpy(big, "SRS0=", 5);
	memset(big + 5, '=', 2000);
	is_int(greylist_norm_sender(big, out, sizeof(out)), -1,
	    "norm_sender: 2000 '=' in SRS refused");
	memcpy(big, "prvs=", 5);
	memset(big + 5, '/', 2490);
	is_int(greylist_norm_sender(big, out, sizeof(out)), -1,
	    "norm_sender: 2490 '/' in BATV refused");
	free(big);
}

static const struct {
	const char	*in;
	const char	*want;
} rcpt_cases[] = {
	{ "bob@example.net", "bob@example.net" },
	{ "Bob@Example.NET", "bob@example.net" },
	{ "bob+tag@example.net", "bob+tag@example.net" },	/* kept */
	{ "Postmaster", "postmaster" },
	{ "prvs=0123456789=bob@example.net",
	    "prvs=0123456789=bob@example.net" },
	{ "", "" },
};

static void
test_norm_rcpt(void)
{
	char	 out[GREYLIST_ADDR_MAX], small[6];
	size_t	 i;

	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		is_int(greylist_norm_rcpt(rcpt_cases[i].in, out, sizeof(out)),
		    0, "norm_rcpt \"%s\"", rcpt_cases[i].in);
		is_str(out, rcpt_cases[i].want, "norm_rcpt \"%s\": key",
		    rcpt_cases[i].in);
	}
	memset(small, 'X', sizeof(small));
	is_int(greylist_norm_rcpt("Bob@Example.net", small, 5), -1,
	    "norm_rcpt: short buffer");
	is_str(small, "bob@", "norm_rcpt: truncated");
	is_int(small[5], 'X', "norm_rcpt: nothing written past it");
	is_int(greylist_norm_rcpt("x", small, 0), -1,
	    "norm_rcpt: zero-length buffer");
}

static const struct {
	const char	*ip;
	int		 v4, v6;
	int		 rc;
	const char	*want;
} net_cases[] = {
	{ "192.0.2.77", 24, 64, 0, "192.0.2.0/24" },
	{ "192.0.2.1", 24, 64, 0, "192.0.2.0/24" },
	{ "192.0.2.254", 24, 64, 0, "192.0.2.0/24" },
	{ "192.0.3.1", 24, 64, 0, "192.0.3.0/24" },
	{ "192.0.2.77", 32, 64, 0, "192.0.2.77/32" },
	{ "192.0.2.77", 16, 64, 0, "192.0.0.0/16" },
	{ "192.0.2.77", 25, 64, 0, "192.0.2.0/25" },
	{ "192.0.2.200", 25, 64, 0, "192.0.2.128/25" },
	{ "198.51.100.255", 20, 64, 0, "198.51.96.0/20" },
	{ "203.0.113.9", 8, 64, 0, "203.0.0.0/8" },
	{ "203.0.113.9", 1, 64, 0, "128.0.0.0/1" },
	{ "203.0.113.9", 0, 64, 0, "0.0.0.0/0" },
	{ "2001:db8:1:2:3:4:5:6", 24, 64, 0, "2001:db8:1:2::/64" },
	{ "2001:db8:1::99", 24, 64, 0, "2001:db8:1::/64" },
	{ "2001:db8:1::ffff:1", 24, 64, 0, "2001:db8:1::/64" },
	{ "2001:db8:1:2:3:4:5:6", 24, 48, 0, "2001:db8:1::/48" },
	{ "2001:db8:1:2ff::1", 24, 56, 0, "2001:db8:1:200::/56" },
	{ "2001:db8:1:2:3:4:5:6", 24, 128, 0, "2001:db8:1:2:3:4:5:6/128" },
	{ "2001:db8:1:2:3:4:5:6", 24, 0, 0, "::/0" },
	{ "::1", 24, 64, 0, "::/64" },
	{ "192.0.2.77", 33, 64, -1, "" },
	{ "192.0.2.77", -1, 64, -1, "" },
	{ "2001:db8::1", 24, 129, -1, "" },
	{ "2001:db8::1", 24, -8, -1, "" },
};

static void
test_client_net(void)
{
	struct ipaddr	 ip;
	char		 buf[GREYLIST_NET_MAX];
	size_t		 i;

	for (i = 0; i < sizeof(net_cases) / sizeof(net_cases[0]); i++) {
		if (ipaddr_parse(net_cases[i].ip, &ip) == -1) {
			ok(0, "bad test address %s", net_cases[i].ip);
			continue;
		}
		memset(buf, 'X', sizeof(buf));
		is_int(greylist_client_net(&ip, net_cases[i].v4,
		    net_cases[i].v6, buf, sizeof(buf)), net_cases[i].rc,
		    "client_net %s /%d /%d", net_cases[i].ip, net_cases[i].v4,
		    net_cases[i].v6);
		is_str(buf, net_cases[i].want, "client_net %s /%d /%d: text",
		    net_cases[i].ip, net_cases[i].v4, net_cases[i].v6);
	}
	ipaddr_parse("192.0.2.77", &ip);
	memset(buf, 'X', sizeof(buf));
	is_int(greylist_client_net(&ip, 24, 64, buf, 12), -1,
	    "client_net: 12 octets too short for 192.0.2.0/24");
	is_str(buf, "", "client_net: empty on failure");
	is_int(buf[12], 'X', "client_net: nothing written past it");
	is_int(greylist_client_net(&ip, 24, 64, buf, 13), 0,
	    "client_net: 13 octets are enough");
	ip.family = AF_UNIX;
	is_int(greylist_client_net(&ip, 24, 64, buf, sizeof(buf)), -1,
	    "client_net: unknown family");
	/* the longest text there is fits GREYLIST_NET_MAX */
	ipaddr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &ip);
	is_int(greylist_client_net(&ip, 24, 128, buf, sizeof(buf)), 0,
	    "client_net: widest IPv6 fits GREYLIST_NET_MAX");
}

/*
 * Scenarios: each runs on a fresh store.  A step is one RCPT at
 * T0 + at; after it, with passes >= 0, the stored triplet must have
 * that many passes and (exp >= 0) expire at T0 + exp.
 */
struct step {
	const char	*ip;		/* client address */
	const char	*from;		/* as the client wrote it */
	const char	*to;
	time_t		 at;		/* seconds after T0 */
	enum gl_result	 want;
	long		 passes;	/* stored afterwards, -1: no check */
	time_t		 exp;		/* stored expiry - T0, -1: no check */
	int		 peek;		/* greylist_peek instead of check */
};

#define A	"192.0.2.10"
#define S	"alice@example.org"
#define R	"bob@example.net"
#define NOCHK	-1, -1

static const struct step s_first[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
};
static const struct step s_early[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, 1, GL_GREYLIST, 0, WINDOW },		/* unchanged */
	{ A, S, R, DELAY - 1, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, DELAY, GL_PASS, 1, DELAY + EXPIRE },	/* clock not reset */
};
static const struct step s_at_delay[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, DELAY, GL_PASS, 1, DELAY + EXPIRE },
	{ A, S, R, DELAY + 1, GL_PASS, 2, DELAY + 1 + EXPIRE },
};
static const struct step s_at_window[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, WINDOW, GL_PASS, 1, WINDOW + EXPIRE },
};
static const struct step s_late[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, WINDOW + 1, GL_GREYLIST, 0, WINDOW + 1 + WINDOW },
	{ A, S, R, WINDOW + 1 + DELAY - 1, GL_GREYLIST, 0, WINDOW + 1 +
	    WINDOW },
	{ A, S, R, WINDOW + 1 + DELAY, GL_PASS, 1, WINDOW + 1 + DELAY +
	    EXPIRE },
};
static const struct step s_refresh[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, DELAY, GL_PASS, 1, DELAY + EXPIRE },
	/* exactly at expiry the pass is still live, and is refreshed */
	{ A, S, R, DELAY + EXPIRE, GL_PASS, 2, DELAY + 2 * EXPIRE },
	{ A, S, R, DELAY + 2 * EXPIRE, GL_PASS, 3, DELAY + 3 * EXPIRE },
};
static const struct step s_expired[] = {
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, DELAY, GL_PASS, 1, DELAY + EXPIRE },
	{ A, S, R, DELAY + EXPIRE + 1, GL_GREYLIST, 0, DELAY + EXPIRE + 1 +
	    WINDOW },
	{ A, S, R, DELAY + EXPIRE + 1 + DELAY, GL_PASS, 1, DELAY + EXPIRE +
	    1 + DELAY + EXPIRE },
};
static const struct step s_keys[] = {
	{ A, S, R, 0, GL_GREYLIST, NOCHK },
	/* another sender, recipient or net is another triplet */
	{ A, "carol@example.org", R, DELAY, GL_GREYLIST, NOCHK },
	{ A, S, "dave@example.net", DELAY, GL_GREYLIST, NOCHK },
	{ "192.0.3.10", S, R, DELAY, GL_GREYLIST, NOCHK },
	/* the same triplet however the sender is spelled */
	{ A, "Alice+Lists@EXAMPLE.org", "BOB@example.NET", DELAY, GL_PASS,
	    1, DELAY + EXPIRE },
	{ A, "SRS0=hh=TT=example.org=alice@fwd.example", R, DELAY + 1,
	    GL_PASS, 2, -1 },
	{ A, "prvs=0123456789=alice@example.org", R, DELAY + 2, GL_PASS, 3,
	    -1 },
};
static const struct step s_neighbour[] = {
	{ "192.0.2.1", S, R, 0, GL_GREYLIST, NOCHK },
	{ "192.0.2.254", S, R, DELAY, GL_PASS, 1, -1 },
	{ "192.0.3.1", S, R, DELAY, GL_GREYLIST, NOCHK },
	{ "2001:db8:1::1", S, R, 0, GL_GREYLIST, NOCHK },
	{ "2001:db8:1::ffff:1", S, R, DELAY, GL_PASS, 1, -1 },
	{ "2001:db8:2::1", S, R, DELAY, GL_GREYLIST, NOCHK },
};
/* auto_whitelist 3 */
static const struct step s_awl[] = {
	{ A, S, "r1@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r2@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r3@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r4@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r1@example.net", DELAY, GL_PASS, 1, -1 },
	{ A, S, "r1@example.net", DELAY + 1, GL_PASS, 2, -1 }, /* same */
	{ A, S, "r2@example.net", DELAY, GL_PASS, 1, -1 },
	{ A, "new@example.org", R, DELAY + 2, GL_GREYLIST, NOCHK },
	{ A, S, "r3@example.net", DELAY + 3, GL_PASS, 1, -1 },
	/* three different triplets passed: the /24 is whitelisted */
	{ A, "new@example.org", R, DELAY + 4, GL_WHITELIST, -1, -1 },
	{ A, S, "r4@example.net", DELAY + 4, GL_WHITELIST, 0, WINDOW },
	{ "192.0.2.200", "x@y.example", "z@example.net", DELAY + 5,
	    GL_WHITELIST, NOCHK },
	{ "192.0.3.200", "x@y.example", "z@example.net", DELAY + 5,
	    GL_GREYLIST, NOCHK },
	/* the client record lives expire after its last use */
	{ A, "x@y.example", "z@example.net", DELAY + 5 + EXPIRE,
	    GL_WHITELIST, NOCHK },
	{ A, "x@y.example", "z@example.net", DELAY + 5 + 2 * EXPIRE + 1,
	    GL_GREYLIST, NOCHK },
};
/* auto_whitelist 1: one pass whitelists the net */
static const struct step s_awl1[] = {
	{ A, S, R, 0, GL_GREYLIST, NOCHK },
	{ A, S, R, DELAY, GL_PASS, 1, -1 },
	{ A, "other@example.org", R, DELAY + 1, GL_WHITELIST, NOCHK },
};
/* auto_whitelist 0: never */
static const struct step s_awl0[] = {
	{ A, S, "r1@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r2@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r3@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r1@example.net", DELAY, GL_PASS, NOCHK },
	{ A, S, "r2@example.net", DELAY, GL_PASS, NOCHK },
	{ A, S, "r3@example.net", DELAY, GL_PASS, NOCHK },
	{ A, S, "r4@example.net", DELAY + 1, GL_GREYLIST, NOCHK },
};
/* expired passes do not count towards auto_whitelist (2) */
static const struct step s_awl_expired[] = {
	{ A, S, "r1@example.net", 0, GL_GREYLIST, NOCHK },
	{ A, S, "r1@example.net", DELAY, GL_PASS, NOCHK },
	{ A, S, "r2@example.net", DELAY + EXPIRE, GL_GREYLIST, NOCHK },
	{ A, S, "r2@example.net", DELAY + EXPIRE + DELAY, GL_PASS, NOCHK },
	{ A, S, "r3@example.net", DELAY + EXPIRE + DELAY + 1, GL_GREYLIST,
	    NOCHK },
};
static const struct step s_clock_back[] = {
	{ A, S, R, 1000, GL_GREYLIST, 0, 1000 + WINDOW },
	{ A, S, R, 500, GL_GREYLIST, 0, 500 + WINDOW },	/* re-recorded */
	{ A, S, R, 500 + DELAY, GL_PASS, 1, -1 },
};
static const struct step s_peek[] = {
	{ A, S, R, 0, GL_GREYLIST, -2, -1, 1 },		/* -2: no record */
	{ A, S, R, 0, GL_GREYLIST, 0, WINDOW },
	{ A, S, R, DELAY, GL_PASS, 0, WINDOW, 1 },	/* nothing written */
	{ A, S, R, WINDOW + 1, GL_GREYLIST, 0, WINDOW, 1 },
	{ A, S, R, DELAY, GL_PASS, 1, DELAY + EXPIRE },
	{ A, S, R, DELAY + EXPIRE + 1, GL_GREYLIST, 1, DELAY + EXPIRE, 1 },
	{ A, S, R, DELAY + 10, GL_PASS, 1, DELAY + EXPIRE, 1 },
	{ A, "other@example.org", R, DELAY + 11, GL_GREYLIST, -2, -1, 1 },
};

#define SCEN(n, aw, s)	{ n, aw, s, sizeof(s) / sizeof(s[0]) }
static const struct {
	const char	*name;
	int		 auto_whitelist;
	const struct step *steps;
	size_t		 n;
} scenarios[] = {
	SCEN("first sight", 0, s_first),
	SCEN("early retry", 0, s_early),
	SCEN("exactly at delay", 0, s_at_delay),
	SCEN("exactly at retry_window", 0, s_at_window),
	SCEN("after retry_window", 0, s_late),
	SCEN("pass refreshes expire", 0, s_refresh),
	SCEN("expired pass", 0, s_expired),
	SCEN("triplet keys", 0, s_keys),
	SCEN("neighbours", 0, s_neighbour),
	SCEN("auto_whitelist 3", 3, s_awl),
	SCEN("auto_whitelist 1", 1, s_awl1),
	SCEN("auto_whitelist 0", 0, s_awl0),
	SCEN("auto_whitelist and expiry", 2, s_awl_expired),
	SCEN("clock set back", 0, s_clock_back),
	SCEN("peek", 0, s_peek),
};

static void
tmp_rm(const char *name)
{
	char	p[400];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	unlink(p);
}

static void
db_rm(void)
{
	tmp_rm("gl.db");
	tmp_rm("gl.db-wal");
	tmp_rm("gl.db-shm");
}

static struct store *
fresh_store(void)
{
	struct store_options o = { NULL, NULL, NULL };
	struct store	*st;
	char		 err[512], prefix[32];

	if (strcmp(be, "redis") == 0) {
		/* a fresh key space in the same server */
		snprintf(prefix, sizeof(prefix), "test%d:", nfresh++);
		o.redis_prefix = prefix;
		if ((st = store_open_with(rs.spec, &o, err, sizeof(err))) ==
		    NULL) {
			printf("Bail out! %s\n", err);
			redis_cleanup(&rs);
			exit(1);
		}
		return st;
	}
	db_rm();
	if ((st = store_open(spec, err, sizeof(err))) == NULL) {
		printf("Bail out! %s\n", err);
		db_rm();
		rmdir(tmpdir);
		exit(1);
	}
	return st;
}

/* keys - the triplet as greygated builds it from what the client sent */
static int
keys(const struct step *s, char *net, char *from, char *to)
{
	struct ipaddr	ip;

	if (ipaddr_parse(s->ip, &ip) == -1 ||
	    greylist_client_net(&ip, 24, 64, net, GREYLIST_NET_MAX) == -1 ||
	    greylist_norm_sender(s->from, from, GREYLIST_ADDR_MAX) == -1 ||
	    greylist_norm_rcpt(s->to, to, GREYLIST_ADDR_MAX) == -1)
		return -1;
	return 0;
}

static const char *
res(enum gl_result r)
{
	return greylist_result_name(r);
}

static void
test_rules(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 0 };
	struct store_rec r;
	struct store	*st;
	const struct step *s;
	char		 net[GREYLIST_NET_MAX], from[GREYLIST_ADDR_MAX];
	char		 to[GREYLIST_ADDR_MAX];
	enum gl_result	 got;
	size_t		 i, j;
	int		 found;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		st = fresh_store();
		p.auto_whitelist = scenarios[i].auto_whitelist;
		for (j = 0; j < scenarios[i].n; j++) {
			s = &scenarios[i].steps[j];
			if (keys(s, net, from, to) == -1) {
				ok(0, "%s: %s %zu: bad keys", be,
				    scenarios[i].name, j);
				continue;
			}
			if (s->peek)
				got = greylist_peek(st, &p, net, from, to,
				    T0 + s->at);
			else
				got = greylist_check(st, &p, net, from, to,
				    T0 + s->at);
			ok(got == s->want, "%s: %s %zu: %s %s <%s> <%s> at "
			    "+%lld: %s", be, scenarios[i].name, j, s->peek ?
			    "peek" :
			    "check", s->ip, s->from, s->to, (long long)s->at,
			    res(s->want));
			if (got != s->want)
				printf("#   got %s: %s\n", res(got),
				    store_errstr(st));
			if (s->passes == -1)
				continue;
			memset(&r, 0, sizeof(r));
			found = store_triplet_get(st, net, from, to, &r);
			if (s->passes == -2) {
				is_int(found, 0, "%s: %s %zu: no triplet "
				    "stored", be, scenarios[i].name, j);
				continue;
			}
			is_int(found, 1, "%s: %s %zu: triplet stored", be,
			    scenarios[i].name, j);
			is_int(r.passes, s->passes, "%s: %s %zu: passes", be,
			    scenarios[i].name, j);
			if (s->exp >= 0)
				is_int(r.expires, T0 + s->exp,
				    "%s: %s %zu: expires", be,
				    scenarios[i].name, j);
		}
		store_close(st);
	}
}

/* The client record: written with the count, refreshed on use. */
static void
test_client_record(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 2 };
	struct store_rec r;
	struct store	*st;
	const char	*net = "192.0.2.0/24";

	st = fresh_store();
	greylist_check(st, &p, net, S, "r1@example.net", T0);
	greylist_check(st, &p, net, S, "r2@example.net", T0);
	greylist_check(st, &p, net, S, "r1@example.net", T0 + DELAY);
	is_int(store_client_get(st, net, &r), 0, "client: none after one "
	    "pass");
	greylist_check(st, &p, net, S, "r2@example.net", T0 + DELAY + 1);
	is_int(store_client_get(st, net, &r), 1, "client: written after two");
	is_int(r.first_seen, T0 + DELAY + 1, "client: first_seen");
	is_int(r.last_seen, T0 + DELAY + 1, "client: last_seen");
	is_int(r.passes, 2, "client: passes = passed triplets");
	is_int(r.expires, T0 + DELAY + 1 + EXPIRE, "client: expires");
	is_int(greylist_peek(st, &p, net, "a@b", "c@d", T0 + DELAY + 50),
	    GL_WHITELIST, "client: peek says whitelist");
	store_client_get(st, net, &r);
	is_int(r.last_seen, T0 + DELAY + 1, "client: peek writes nothing");
	is_int(greylist_check(st, &p, net, "a@b", "c@d", T0 + DELAY + 100),
	    GL_WHITELIST, "client: check says whitelist");
	store_client_get(st, net, &r);
	is_int(r.last_seen, T0 + DELAY + 100, "client: last_seen refreshed");
	is_int(r.passes, 3, "client: passes counted");
	is_int(r.expires, T0 + DELAY + 100 + EXPIRE, "client: expiry "
	    "refreshed");
	is_int(store_triplet_get(st, net, "a@b", "c@d", &r), 0,
	    "client: a whitelisted triplet is not recorded");
	store_close(st);
}

/* The policy process's question: a cached upstream reply, else the rules. */
static void
test_check_cached(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 0 };
	struct store_rec r;
	struct store	*st;
	const char	*net = "192.0.2.0/24";
	char		 buf[STORE_REPLY_MAX + 1];
	enum gl_result	 got = GL_ERROR;

	st = fresh_store();
	/* refusals are kept by (sender, rcpt), whatever the network */
	is_int(store_reply_put(st, STORE_REPLY_NET, S, R,
	    "550 5.1.1 no such user", T0 + 3600), 0, "%s: cached: a reply put",
	    be);
	buf[0] = '\0';
	is_int(greylist_check_cached(st, &p, "198.51.100.0/24", S, R, T0, buf,
	    sizeof(buf), &got), 1, "%s: cached: from another network too",
	    be);
	buf[0] = '\0';
	is_int(greylist_check_cached(st, &p, net, S, R, T0, buf, sizeof(buf),
	    &got), 1, "%s: cached: the reply wins", be);
	is_str(buf, "550 5.1.1 no such user", "%s: cached: its text", be);
	is_int(store_triplet_get(st, net, S, R, &r), 0,
	    "%s: cached: nothing decided", be);
	is_int(greylist_check_cached(st, &p, net, S, "other@example.net", T0,
	    buf, sizeof(buf), &got), 0, "%s: cached: none for another "
	    "recipient", be);
	is_int(got, GL_GREYLIST, "%s: cached: then the rules", be);
	is_int(greylist_check_cached(st, &p, net, S, R, T0 + 3601, buf,
	    sizeof(buf), &got), 0, "%s: cached: an expired reply does not "
	    "count", be);
	is_int(got, GL_GREYLIST, "%s: cached: first sight", be);
	is_int(store_triplet_get(st, net, S, R, &r), 1,
	    "%s: cached: the triplet recorded", be);
	is_int(greylist_check_cached(st, &p, net, S, R, T0 + 3601 + DELAY,
	    buf, sizeof(buf), &got), 0, "%s: cached: the retry", be);
	is_int(got, GL_PASS, "%s: cached: passes", be);
	store_close(st);
}

/* A store that fails: GL_ERROR, never a pass. */
static void
test_store_error(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 1 };
	struct store	*st;
	sqlite3		*db;
	const char	*net = "192.0.2.0/24";

	st = fresh_store();
	is_int(greylist_check(st, &p, net, S, R, T0), GL_GREYLIST,
	    "error: first sight before the failure");
	is_int(greylist_check(st, &p, net, S, R, T0 + DELAY), GL_PASS,
	    "error: a pass before the failure");
	if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "DROP TABLE client", NULL, NULL, NULL) !=
	    SQLITE_OK)
		ok(0, "drop table client: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	is_int(greylist_check(st, &p, net, S, R, T0 + DELAY + 1), GL_ERROR,
	    "error: client table gone: GL_ERROR, not GL_PASS");
	has_str(store_errstr(st), "no such table", "error: store says why");
	is_int(greylist_peek(st, &p, net, S, R, T0 + DELAY + 1), GL_ERROR,
	    "error: peek GL_ERROR too");
	if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE client (net TEXT PRIMARY KEY, "
	    "first_seen INTEGER, last_seen INTEGER, passes INTEGER, "
	    "expires INTEGER); DROP TABLE triplet", NULL, NULL, NULL) !=
	    SQLITE_OK)
		ok(0, "swap tables: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	is_int(greylist_check(st, &p, "198.51.100.0/24", S, R, T0), GL_ERROR,
	    "error: triplet table gone: GL_ERROR, not GL_GREYLIST");
	store_close(st);
}

/*
 * Several MX hosts at once: RACERS processes, each with its own
 * connection, decide the same grey triplet at the same moment.  Each
 * passes, each pass is counted (no lost update), and the net counts one
 * passed triplet for auto_whitelist.
 */
#define RACERS	6
static void
test_redis_race(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 2 };
	struct store_options o = { NULL, NULL, NULL };
	struct store_rec r;
	struct store	*st, *mine;
	const char	*net = "192.0.2.0/24";
	char		 err[512], prefix[32];
	pid_t		 pid[RACERS];
	int		 go[2], i, status, passed = 0;
	char		 c;

	st = fresh_store();
	snprintf(prefix, sizeof(prefix), "test%d:", nfresh - 1);
	o.redis_prefix = prefix;
	is_int(greylist_check(st, &p, net, S, R, T0), GL_GREYLIST,
	    "redis race: first sight");
	if (pipe(go) == -1) {
		ok(0, "pipe");
		return;
	}
	fflush(stdout);
	for (i = 0; i < RACERS; i++) {
		if ((pid[i] = fork()) == 0) {
			close(go[1]);
			/* the parent's handle: only our copy of its socket */
			store_close(st);
			mine = store_open_with(rs.spec, &o, err, sizeof(err));
			if (mine == NULL || store_triplet_get(mine, net, S, R,
			    &r) != 1)
				_exit(3);
			/* all connected: wait for the start together */
			if (read(go[0], &c, 1) != 0)
				_exit(3);
			status = greylist_check(mine, &p, net, S, R,
			    T0 + DELAY);
			store_close(mine);
			_exit(status == GL_PASS ? 0 : 1);
		}
	}
	close(go[0]);
	usleep(200000);
	close(go[1]);		/* EOF: everyone goes */
	for (i = 0; i < RACERS; i++)
		if (pid[i] > 0 && waitpid(pid[i], &status, 0) == pid[i] &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0)
			passed++;
	is_int(passed, RACERS, "redis race: every racer passed");
	is_int(store_triplet_get(st, net, S, R, &r), 1, "redis race: stored");
	is_int(r.passes, RACERS, "redis race: every pass counted once");
	is_int(store_triplet_count_passed(st, net, T0 + DELAY), 1,
	    "redis race: one passed triplet for auto_whitelist");
	is_int(store_client_get(st, net, &r), 0,
	    "redis race: one triplet does not whitelist at 2");
	is_int(greylist_check(st, &p, net, S, "r2@example.net", T0),
	    GL_GREYLIST, "redis race: a second triplet");
	is_int(greylist_check(st, &p, net, S, "r2@example.net", T0 + DELAY),
	    GL_PASS, "redis race: passes");
	is_int(greylist_check(st, &p, net, "x@y.example", "z@example.net",
	    T0 + DELAY), GL_WHITELIST, "redis race: now the net is white");
	store_close(st);
}

/* A stopped server: GL_ERROR with a reason, never a pass; then back. */
static void
test_redis_down(void)
{
	struct greylist_params p = { DELAY, WINDOW, EXPIRE, 1 };
	struct store	*st;
	const char	*net = "192.0.2.0/24";
	int		 i, got = GL_ERROR;

	st = fresh_store();
	is_int(greylist_check(st, &p, net, S, R, T0), GL_GREYLIST,
	    "redis down: first sight before the outage");
	redis_stop(&rs);
	is_int(greylist_check(st, &p, net, S, R, T0 + DELAY), GL_ERROR,
	    "redis down: GL_ERROR, not GL_PASS");
	has_str(store_errstr(st), "redis 127.0.0.1:", "redis down: says "
	    "which server");
	is_int(greylist_peek(st, &p, net, S, R, T0 + DELAY), GL_ERROR,
	    "redis down: peek GL_ERROR too");
	has_str(store_errstr(st), "next attempt in", "redis down: in "
	    "back-off, no new attempt");
	if (redis_start(&rs, rs.port, NULL, NULL) == -1) {
		ok(0, "redis down: server restarted");
		store_close(st);
		return;
	}
	/* back-off: at most 5 s; the data went with the server */
	for (i = 0; i < 70 && got == GL_ERROR; i++) {
		got = greylist_check(st, &p, net, S, R, T0 + DELAY);
		if (got == GL_ERROR)
			usleep(100000);
	}
	is_int(got, GL_GREYLIST, "redis down: decisions resume after the "
	    "restart (the empty server has no record)");
	store_close(st);
}

static void
test_names(void)
{
	is_str(greylist_result_name(GL_PASS), "pass", "name pass");
	is_str(greylist_result_name(GL_WHITELIST), "whitelist",
	    "name whitelist");
	is_str(greylist_result_name(GL_GREYLIST), "greylist", "name greylist");
	is_str(greylist_result_name(GL_ERROR), "error", "name error");
}

int
main(void)
{
	const char	*t = getenv("TMPDIR");

	test_norm_sender();
	test_norm_rcpt();
	test_client_net();
	test_names();

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_greylist.XXXXXX",
	    t != NULL && t[0] != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/gl.db", tmpdir);
	snprintf(spec, sizeof(spec), "sqlite:%s", dbpath);
	t0 = time(NULL);
	printf("# backend sqlite\n");
	test_rules();
	test_client_record();
	test_check_cached();
	test_store_error();
	db_rm();
	if (rmdir(tmpdir) == -1)
		printf("# rmdir %s: %s\n", tmpdir, strerror(errno));

	be = "redis";
	if (!store_redis_built())
		printf("ok %d # SKIP redis: the Redis store is not built in\n",
		    ++tap_n);
	else if (redis_start(&rs, 0, NULL, NULL) == -1)
		printf("ok %d # SKIP redis: no redis-server to start\n",
		    ++tap_n);
	else {
		printf("# backend redis on port %d\n", rs.port);
		test_rules();
		test_client_record();
		test_check_cached();
		test_redis_race();
		test_redis_down();
		redis_cleanup(&rs);
	}
	return tap_done();
}
