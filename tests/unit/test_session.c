/*
 * test_session - the SMTP state machine without sockets: client octets
 * go into the session's line buffer, session_input() runs, and the
 * queued replies are compared with the contract.  Delivery is a fake
 * that records the envelope and the transcript and answers what the
 * test chose.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "tap.h"
#include "ehlo_caps.h"

#ifndef FAKE_CAPS_MORE
#define FAKE_CAPS_MORE 0
#endif

/* the upstream takes 8BITMIME (and, for these tests, DSN and SMTPUTF8) */
static unsigned int
fake_caps(const struct config *c, const char *dir)
{
	(void)c;
	(void)dir;
	return CAP_KNOWN | CAP_8BITMIME | FAKE_CAPS_MORE;
}

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define EHLO_REPLY							\
	"250-test.example Hello client.example [127.0.0.1]\r\n"		\
	"250-PIPELINING\r\n"						\
	"250-SIZE 26214400\r\n"						\
	"250-8BITMIME\r\n"						\
	"250 ENHANCEDSTATUSCODES\r\n"
#define HELO_REPLY	"250 test.example Hello client.example [127.0.0.1]\r\n"
#define QUIT_REPLY	"221 2.0.0 test.example closing connection\r\n"
#define R354		"354 End data with <CR><LF>.<CR><LF>\r\n"
#define R_BARE		"554 5.6.0 Message contains bare CR or LF\r\n"
#define R_NUL		"554 5.6.0 Message contains NUL character\r\n"
#define R_PIPE		"503 5.5.0 Improper use of pipelining\r\n"
#define R_UNAVAIL	"451 4.4.1 Upstream server unavailable, try again " \
			"later\r\n"

/* ------------------------------------------------------------ the fake */

static struct fake {
	int		 called;
	char		 helo_line[512];
	char		 helo[512];
	int		 esmtp;
	char		 from[512];
	long long	 size;
	int		 body;
	char		 rcpts[16][512];
	size_t		 nrcpt;
	char		*data;
	size_t		 len, cap;
	int		 spilled;	/* the transcript was in a file */
	/* what it answers */
	enum up_status	 status;
	const char	*reply;		/* NULL: the reply is left empty */
} fk;

static int
fake_collect(void *arg, const char *p, size_t n)
{
	struct fake	*f = arg;

	if (f->len + n > f->cap) {
		f->cap = (f->len + n) * 2;
		if ((f->data = realloc(f->data, f->cap)) == NULL)
			exit(99);
	}
	memcpy(f->data + f->len, p, n);
	f->len += n;
	return 0;
}

static void
fake_deliver(const struct config *cfg, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	size_t	i;

	(void)cfg;
	fk.called++;
	strlcpy(fk.helo_line, env->helo_line ? env->helo_line : "(null)",
	    sizeof(fk.helo_line));
	strlcpy(fk.helo, env->helo ? env->helo : "(null)", sizeof(fk.helo));
	fk.esmtp = env->esmtp;
	strlcpy(fk.from, env->from ? env->from : "(null)", sizeof(fk.from));
	fk.size = env->size;
	fk.body = env->body;
	fk.nrcpt = env->nrcpt;
	for (i = 0; i < env->nrcpt && i < 16; i++)
		strlcpy(fk.rcpts[i], env->rcpts[i], sizeof(fk.rcpts[i]));
	fk.len = 0;
	fk.spilled = transcript_spilled(tx);
	if (transcript_replay(tx, fake_collect, &fk) == -1)
		fk.len = (size_t)-1;
	memset(res, 0, sizeof(*res));
	res->status = fk.status;
	res->why = "fake";
	if (fk.reply != NULL) {
		res->reply.len = strlcpy(res->reply.text, fk.reply,
		    sizeof(res->reply.text));
		res->reply.code = atoi(fk.reply);
	}
}

static void
fake_reset(enum up_status st, const char *reply)
{
	free(fk.data);
	memset(&fk, 0, sizeof(fk));
	fk.status = st;
	fk.reply = reply;
}

/* ------------------------------------------------------------- helpers */

static char	outbuf[1 << 20];
static size_t	outlen;

/* mkcfg - a configuration from text added to a test base */
static struct config *
mkcfg(const char *extra)
{
	char		 path[64], err[1024];
	struct config	*c;
	FILE		*f;
	int		 fd;

	strlcpy(path, "/tmp/greygate-test-session.XXXXXX", sizeof(path));
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		exit(99);
	}
	fprintf(f, "servername = \"test.example\"\nserverid = \"testid\"\n"
	    "policy = \"accept\"\nspool_dir = \"/tmp\"\n%s\n", extra);
	fclose(f);
	c = config_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL) {
		printf("Bail out! config: %s\n", err);
		exit(1);
	}
	return c;
}

static void
start(struct session *s, const struct config *c, const char *ip)
{
	struct ipaddr	client;

	if (ipaddr_parse(ip, &client) == -1 ||
	    session_init(s, c, -1, &client) == -1) {
		printf("Bail out! session_init %s\n", ip);
		exit(1);
	}
	s->deliver = fake_deliver;
	s->caps = fake_caps;
}

/*
 * feedn - give the session octets in chunks of at most chunk, run it
 * after each, and return every reply queued meanwhile.
 */
static const char *
feedn(struct session *s, const char *p, size_t n, size_t chunk)
{
	size_t	k;

	s->outlen = 0;
	outlen = 0;
	while (n > 0) {
		k = n < chunk ? n : chunk;
		if (linebuf_feed(&s->in, p, k) == -1)
			return "FEED FAILED";
		session_input(s);
		if (outlen + s->outlen >= sizeof(outbuf))
			return "TOO MUCH OUTPUT";
		memcpy(outbuf + outlen, s->out, s->outlen);
		outlen += s->outlen;
		s->outlen = 0;
		p += k;
		n -= k;
	}
	outbuf[outlen] = '\0';
	return outbuf;
}

#define FEED(s, lit)		feedn((s), (lit), sizeof(lit) - 1, 65536)
#define FEED1(s, lit)		feedn((s), (lit), sizeof(lit) - 1, 1)
#define FEEDS(s, str)		feedn((s), (str), strlen(str), 65536)

/*
 * reach - bring a fresh session into a state, by EHLO or HELO; every
 * step must be answered 250 (the EHLO reply depends on the config)
 */
static int
reach(struct session *s, enum state st, int esmtp)
{
	if (st == S_CONNECTED)
		return 1;
	if (strncmp(esmtp ? FEED(s, "EHLO client.example\r\n") :
	    FEED(s, "HELO client.example\r\n"), "250", 3) != 0)
		return 0;
	if (st == S_HELO)
		return s->state == S_HELO;
	if (strcmp(FEED(s, "MAIL FROM:<a@example.org>\r\n"),
	    "250 2.1.0 OK\r\n") != 0)
		return 0;
	if (st == S_MAIL)
		return 1;
	if (strcmp(FEED(s, "RCPT TO:<c@example.net>\r\n"),
	    "250 2.1.5 OK\r\n") != 0)
		return 0;
	return st == S_RCPT;
}

static const char *
stname(enum state st)
{
	return session_state_name(st);
}

/* ------------------------------------------------ every command, state */

struct outcome {
	const char	*reply;		/* the whole output */
	int		 prefix;	/* compare only the start of it */
	enum state	 to;
};

static const struct {
	const char	*cmd;
	struct outcome	 in[4];		/* CONNECTED, HELO, MAIL, RCPT */
} cmd_table[] = {
	{ "HELO client.example", {
	    { HELO_REPLY, 0, S_HELO }, { HELO_REPLY, 0, S_HELO },
	    { HELO_REPLY, 0, S_HELO }, { HELO_REPLY, 0, S_HELO } } },
	{ "EHLO client.example", {
	    { EHLO_REPLY, 0, S_HELO }, { EHLO_REPLY, 0, S_HELO },
	    { EHLO_REPLY, 0, S_HELO }, { EHLO_REPLY, 0, S_HELO } } },
	{ "MAIL FROM:<b@example.org>", {
	    { "503 5.5.1 Error: send HELO/EHLO first\r\n", 0, S_CONNECTED },
	    { "250 2.1.0 OK\r\n", 0, S_MAIL },
	    { "503 5.5.1 Error: nested MAIL command\r\n", 0, S_MAIL },
	    { "503 5.5.1 Error: nested MAIL command\r\n", 0, S_RCPT } } },
	{ "RCPT TO:<d@example.net>", {
	    { "503 5.5.1 Error: need MAIL command\r\n", 0, S_CONNECTED },
	    { "503 5.5.1 Error: need MAIL command\r\n", 0, S_HELO },
	    { "250 2.1.5 OK\r\n", 0, S_RCPT },
	    { "250 2.1.5 OK\r\n", 0, S_RCPT } } },
	{ "DATA", {
	    { "503 5.5.1 ", 1, S_CONNECTED },
	    { "503 5.5.1 ", 1, S_HELO },
	    { "503 5.5.1 Error: need RCPT command\r\n", 0, S_MAIL },
	    { R354, 0, S_DATA } } },
	{ "RSET", {
	    { "250 2.0.0 OK\r\n", 0, S_CONNECTED },
	    { "250 2.0.0 OK\r\n", 0, S_HELO },
	    { "250 2.0.0 OK\r\n", 0, S_HELO },
	    { "250 2.0.0 OK\r\n", 0, S_HELO } } },
	{ "NOOP", {
	    { "250 2.0.0 OK\r\n", 0, S_CONNECTED },
	    { "250 2.0.0 OK\r\n", 0, S_HELO },
	    { "250 2.0.0 OK\r\n", 0, S_MAIL },
	    { "250 2.0.0 OK\r\n", 0, S_RCPT } } },
	{ "VRFY postmaster", {
	    { "252 2.5.0 Cannot VRFY user\r\n", 0, S_CONNECTED },
	    { "252 2.5.0 Cannot VRFY user\r\n", 0, S_HELO },
	    { "252 2.5.0 Cannot VRFY user\r\n", 0, S_MAIL },
	    { "252 2.5.0 Cannot VRFY user\r\n", 0, S_RCPT } } },
	{ "QUIT", {
	    { QUIT_REPLY, 0, S_QUIT }, { QUIT_REPLY, 0, S_QUIT },
	    { QUIT_REPLY, 0, S_QUIT }, { QUIT_REPLY, 0, S_QUIT } } },
#define NOTIMPL(verb) { verb, {						\
	    { "502 5.5.1 Command not implemented\r\n", 0, S_CONNECTED },\
	    { "502 5.5.1 Command not implemented\r\n", 0, S_HELO },	\
	    { "502 5.5.1 Command not implemented\r\n", 0, S_MAIL },	\
	    { "502 5.5.1 Command not implemented\r\n", 0, S_RCPT } } }
	NOTIMPL("EXPN staff"),
	NOTIMPL("HELP"),
	NOTIMPL("TURN"),
	NOTIMPL("ETRN example.org"),
	NOTIMPL("AUTH PLAIN"),
	NOTIMPL("STARTTLS"),
	{ "FOO bar", {
	    { "500 5.5.2 Command unrecognized\r\n", 0, S_CONNECTED },
	    { "500 5.5.2 Command unrecognized\r\n", 0, S_HELO },
	    { "500 5.5.2 Command unrecognized\r\n", 0, S_MAIL },
	    { "500 5.5.2 Command unrecognized\r\n", 0, S_RCPT } } },
};

static void
test_commands(const struct config *c)
{
	static const enum state	 from[4] = { S_CONNECTED, S_HELO, S_MAIL,
	    S_RCPT };
	const struct outcome	*o;
	struct session		 s;
	char			 line[128];
	const char		*got;
	size_t			 i, j;
	int			 errs, want_err;

	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++) {
		for (j = 0; j < 4; j++) {
			o = &cmd_table[i].in[j];
			start(&s, c, "127.0.0.1");
			if (!reach(&s, from[j], 1)) {
				ok(0, "%s in %s: could not reach the state",
				    cmd_table[i].cmd, stname(from[j]));
				session_free(&s);
				continue;
			}
			errs = s.errors;
			snprintf(line, sizeof(line), "%s\r\n",
			    cmd_table[i].cmd);
			got = FEEDS(&s, line);
			if (o->prefix)
				is_prefix(got, o->reply, "%s in %s: reply",
				    cmd_table[i].cmd, stname(from[j]));
			else
				is_str(got, o->reply, "%s in %s: reply",
				    cmd_table[i].cmd, stname(from[j]));
			is_str(stname(s.state), stname(o->to), "%s in %s: "
			    "state", cmd_table[i].cmd, stname(from[j]));
			want_err = o->reply[0] == '4' || o->reply[0] == '5';
			is_int(s.errors - errs, want_err, "%s in %s: %s",
			    cmd_table[i].cmd, stname(from[j]), want_err ?
			    "counted as an error" : "not an error");
			session_free(&s);
		}
	}
}

/* -------------------------------------------------- syntax and details */

struct bytes {
	const char	*p;
	size_t		 n;
};

#define B(s)	{ (s), sizeof(s) - 1 }

static const struct {
	const char	*name;
	enum state	 from;
	int		 esmtp;
	struct bytes	 line;
	const char	*reply;
	int		 prefix;
	enum state	 to;
} syntax_table[] = {
	{ "HELO without argument", S_CONNECTED, 1, B("HELO\r\n"),
	    "501 5.5.4 Syntax: HELO hostname\r\n", 0, S_CONNECTED },
	{ "EHLO without argument", S_CONNECTED, 1, B("EHLO\r\n"),
	    "501 5.5.4 Syntax: EHLO hostname\r\n", 0, S_CONNECTED },
	{ "lower-case ehlo without argument", S_CONNECTED, 1, B("ehlo\r\n"),
	    "501 5.5.4 Syntax: EHLO hostname\r\n", 0, S_CONNECTED },
	{ "EHLO with a bad name", S_CONNECTED, 1, B("EHLO bad/name\r\n"),
	    "501 5.5.4 Syntax: EHLO hostname\r\n", 0, S_CONNECTED },
	{ "HELO with a bad name keeps the transaction", S_MAIL, 1,
	    B("HELO a b\r\n"), "501 5.5.4 Syntax: HELO hostname\r\n", 0,
	    S_MAIL },
	{ "EHLO with an address literal", S_CONNECTED, 1,
	    B("EHLO [192.0.2.1]\r\n"), "250-test.example Hello [192.0.2.1] "
	    "[127.0.0.1]\r\n", 1, S_HELO },
	{ "verbs are case-insensitive", S_CONNECTED, 1,
	    B("hElO client.example\r\n"), HELO_REPLY, 0, S_HELO },
	{ "mail from: lower case", S_HELO, 1,
	    B("mail from:<a@example.org>\r\n"), "250 2.1.0 OK\r\n", 0,
	    S_MAIL },
	{ "MAIL null sender", S_HELO, 1, B("MAIL FROM:<>\r\n"),
	    "250 2.1.0 OK\r\n", 0, S_MAIL },
	{ "MAIL space after the colon", S_HELO, 1,
	    B("MAIL FROM: <a@example.org>\r\n"),
	    "501 5.1.7 Bad sender address syntax\r\n", 0, S_HELO },
	{ "MAIL without brackets", S_HELO, 1, B("MAIL FROM:a@example.org\r\n"),
	    "501 5.1.7 Bad sender address syntax\r\n", 0, S_HELO },
	{ "MAIL without argument", S_HELO, 1, B("MAIL\r\n"),
	    "501 5.1.7 Bad sender address syntax\r\n", 0, S_HELO },
	{ "MAIL 8-bit address", S_HELO, 1,
	    B("MAIL FROM:<\xe9@example.org>\r\n"),
	    "501 5.1.7 Bad sender address syntax\r\n", 0, S_HELO },
	{ "MAIL unknown parameter", S_HELO, 1,
	    B("MAIL FROM:<a@example.org> FOO=1\r\n"),
	    "555 5.5.4 Unsupported parameter\r\n", 0, S_HELO },
	{ "MAIL SIZE over the limit", S_HELO, 1,
	    B("MAIL FROM:<a@example.org> SIZE=26214401\r\n"),
	    "552 5.3.4 Message size exceeds fixed limit\r\n", 0, S_HELO },
	{ "MAIL SIZE at the limit", S_HELO, 1,
	    B("MAIL FROM:<a@example.org> SIZE=26214400\r\n"),
	    "250 2.1.0 OK\r\n", 0, S_MAIL },
	{ "MAIL bad SIZE", S_HELO, 1,
	    B("MAIL FROM:<a@example.org> SIZE=x\r\n"), "501 5.5.4 ", 1,
	    S_HELO },
	{ "MAIL BODY=8BITMIME", S_HELO, 1,
	    B("MAIL FROM:<a@example.org> BODY=8BITMIME\r\n"),
	    "250 2.1.0 OK\r\n", 0, S_MAIL },
	{ "MAIL SIZE after HELO", S_HELO, 0,
	    B("MAIL FROM:<a@example.org> SIZE=10\r\n"),
	    "555 5.5.4 Unsupported parameter\r\n", 0, S_HELO },
	{ "MAIL plain after HELO", S_HELO, 0,
	    B("MAIL FROM:<a@example.org>\r\n"), "250 2.1.0 OK\r\n", 0,
	    S_MAIL },
	{ "RCPT bad address", S_MAIL, 1, B("RCPT TO:<bad>\r\n"),
	    "501 5.1.3 Bad recipient address syntax\r\n", 0, S_MAIL },
	{ "RCPT space after the colon", S_MAIL, 1,
	    B("RCPT TO: <c@example.net>\r\n"),
	    "501 5.1.3 Bad recipient address syntax\r\n", 0, S_MAIL },
	{ "RCPT null path", S_MAIL, 1, B("RCPT TO:<>\r\n"),
	    "501 5.1.3 Bad recipient address syntax\r\n", 0, S_MAIL },
	{ "RCPT parameter", S_MAIL, 1,
	    B("RCPT TO:<c@example.net> NOTIFY=NEVER\r\n"),
	    "555 5.5.4 Unsupported parameter\r\n", 0, S_MAIL },
	{ "RCPT postmaster", S_MAIL, 1, B("RCPT TO:<Postmaster>\r\n"),
	    "250 2.1.5 OK\r\n", 0, S_RCPT },
	{ "RSET with argument", S_HELO, 1, B("RSET x\r\n"),
	    "501 5.5.4 Syntax error\r\n", 0, S_HELO },
	{ "QUIT with argument", S_HELO, 1, B("QUIT x\r\n"),
	    "501 5.5.4 Syntax error\r\n", 0, S_HELO },
	{ "DATA with argument", S_RCPT, 1, B("DATA x\r\n"),
	    "501 5.5.4 Syntax error\r\n", 0, S_RCPT },
	{ "NOOP with junk is fine", S_HELO, 1, B("NOOP junk\r\n"),
	    "250 2.0.0 OK\r\n", 0, S_HELO },
	{ "VRFY without argument", S_HELO, 1, B("VRFY\r\n"),
	    "501 5.5.4 Syntax error\r\n", 0, S_HELO },
	{ "BDAT not implemented", S_HELO, 1, B("BDAT 10 LAST\r\n"),
	    "502 5.5.1 Command not implemented\r\n", 0, S_HELO },
	{ "empty line", S_HELO, 1, B("\r\n"),
	    "500 5.5.2 Command unrecognized\r\n", 0, S_HELO },
	{ "9-letter verb", S_HELO, 1, B("STARTTLSX\r\n"),
	    "500 5.5.2 Command unrecognized\r\n", 0, S_HELO },
	{ "space before the verb", S_HELO, 1, B(" NOOP\r\n"),
	    "500 5.5.2 Command unrecognized\r\n", 0, S_HELO },
	{ "bare LF", S_HELO, 1, B("NOOP\n"),
	    "500 5.5.2 Bad line ending\r\n", 0, S_QUIT },
	{ "bare CR", S_HELO, 1, B("NO\rOP\r\n"),
	    "500 5.5.2 Bad line ending\r\n", 0, S_QUIT },
	{ "CR CR LF", S_CONNECTED, 1, B("NOOP\r\r\n"),
	    "500 5.5.2 Bad line ending\r\n", 0, S_QUIT },
	{ "bare LF before HELO", S_CONNECTED, 1, B("HELO x\n"),
	    "500 5.5.2 Bad line ending\r\n", 0, S_QUIT },
	{ "bare LF in a transaction", S_RCPT, 1, B("DATA\n"),
	    "500 5.5.2 Bad line ending\r\n", 0, S_QUIT },
	{ "NUL", S_HELO, 1, B("NO\0OP\r\n"),
	    "500 5.5.2 NUL character in command\r\n", 0, S_QUIT },
	{ "NUL in MAIL", S_HELO, 1, B("MAIL FROM:<a\0@example.org>\r\n"),
	    "500 5.5.2 NUL character in command\r\n", 0, S_QUIT },
};

static void
test_syntax(const struct config *c)
{
	struct session	 s;
	const char	*got;
	size_t		 i;

	for (i = 0; i < sizeof(syntax_table) / sizeof(syntax_table[0]); i++) {
		start(&s, c, "127.0.0.1");
		if (!reach(&s, syntax_table[i].from, syntax_table[i].esmtp)) {
			ok(0, "%s: could not reach the state",
			    syntax_table[i].name);
			session_free(&s);
			continue;
		}
		got = feedn(&s, syntax_table[i].line.p, syntax_table[i].line.n,
		    65536);
		if (syntax_table[i].prefix)
			is_prefix(got, syntax_table[i].reply, "%s: reply",
			    syntax_table[i].name);
		else
			is_str(got, syntax_table[i].reply, "%s: reply",
			    syntax_table[i].name);
		is_str(stname(s.state), stname(syntax_table[i].to),
		    "%s: state", syntax_table[i].name);
		if (s.state == S_QUIT)
			is_str(FEED(&s, "NOOP\r\n"), "",
			    "%s: nothing answered after the close",
			    syntax_table[i].name);
		session_free(&s);
	}
}

static void
test_greeting(const struct config *c)
{
	struct session	s;

	start(&s, c, "127.0.0.1");
	session_greeting(&s);
	is_mem(s.out, s.outlen, "220 test.example ESMTP testid\r\n", 31,
	    "greeting");
	is_str(stname(s.state), "CONNECTED", "greeted: CONNECTED");
	session_free(&s);

	start(&s, c, "2001:db8::7");
	is_str(FEED(&s, "HELO x.example\r\n"),
	    "250 test.example Hello x.example [2001:db8::7]\r\n",
	    "HELO reply names an IPv6 client");
	session_free(&s);
}

/* --------------------------------------------------------------- limits */

static char *
repeat(char ch, size_t n, const char *head, const char *tail)
{
	size_t	 h = strlen(head), t = strlen(tail);
	char	*s = malloc(h + n + t + 1);

	memcpy(s, head, h);
	memset(s + h, ch, n);
	memcpy(s + h + n, tail, t + 1);
	return s;
}

static void
test_line_length(const struct config *c)
{
	struct session	 s;
	char		*l;

	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 1), "setup: HELO");
	l = repeat('x', 600, "NOOP ", "\r\n");
	is_str(FEEDS(&s, l), "500 5.5.2 Line too long\r\n",
	    "line too long: 500 5.5.2");
	is_str(stname(s.state), "HELO", "line too long: session goes on");
	is_int(s.errors, 1, "line too long: counted as an error");
	is_str(FEED(&s, "NOOP\r\n"), "250 2.0.0 OK\r\n",
	    "line too long: next command answered");
	free(l);

	/* exactly max_command_line (512 incl. CRLF), and one more */
	l = repeat('x', 505, "NOOP ", "\r\n");
	is_int(strlen(l), 512, "512-octet line built");
	is_str(FEEDS(&s, l), "250 2.0.0 OK\r\n", "512-octet command accepted");
	free(l);
	l = repeat('x', 506, "NOOP ", "\r\n");
	is_str(FEEDS(&s, l), "500 5.5.2 Line too long\r\n",
	    "513-octet command refused");
	free(l);

	/* a long line dribbled in pieces, then a good one in the same feed */
	l = repeat('y', 3000, "MAIL FROM:<", "@example.org>\r\nNOOP\r\n");
	is_str(feedn(&s, l, strlen(l), 97), "500 5.5.2 Line too long\r\n"
	    "250 2.0.0 OK\r\n", "long line in pieces: one 500, then NOOP");
	is_str(stname(s.state), "HELO", "long MAIL line started nothing");
	free(l);
	session_free(&s);
}

static void
test_max_errors(void)
{
	struct config	*c;
	struct session	 s;
	int		 i;

	c = mkcfg("max_errors = 3\n");
	start(&s, c, "127.0.0.1");
	is_str(FEED(&s, "FOO\r\n"), "500 5.5.2 Command unrecognized\r\n",
	    "max_errors 3: first error");
	is_str(FEED(&s, "MAIL FROM:<a@example.org>\r\n"),
	    "503 5.5.1 Error: send HELO/EHLO first\r\n",
	    "max_errors 3: second error");
	is_str(FEED(&s, "BAR\r\n"), "500 5.5.2 Command unrecognized\r\n"
	    "421 4.7.0 Too many errors\r\n", "max_errors 3: third gets 421");
	is_str(stname(s.state), "QUIT", "max_errors: closed");
	session_free(&s);

	/* pipelined after EHLO: processing stops at the 421 */
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 1), "setup: HELO");
	is_str(FEED(&s, "FOO\r\nFOO\r\nFOO\r\nNOOP\r\n"),
	    "500 5.5.2 Command unrecognized\r\n"
	    "500 5.5.2 Command unrecognized\r\n"
	    "500 5.5.2 Command unrecognized\r\n"
	    "421 4.7.0 Too many errors\r\n",
	    "max_errors pipelined: nothing after the 421");
	is_str(stname(s.state), "QUIT", "max_errors pipelined: closed");
	session_free(&s);
	config_free(c);

	/* the default, 10 */
	c = mkcfg("");
	start(&s, c, "127.0.0.1");
	for (i = 1; i < 10; i++)
		FEED(&s, "FOO\r\n");
	is_str(stname(s.state), "CONNECTED", "9 errors of 10: still open");
	is_str(FEED(&s, "FOO\r\n"), "500 5.5.2 Command unrecognized\r\n"
	    "421 4.7.0 Too many errors\r\n", "10th error: 421 4.7.0");
	session_free(&s);
	config_free(c);
}

static void
test_max_recipients(void)
{
	struct config	*c;
	struct session	 s;

	c = mkcfg("max_recipients = 2\n");
	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 1), "setup: RCPT");
	is_str(FEED(&s, "RCPT TO:<d@example.net>\r\n"), "250 2.1.5 OK\r\n",
	    "max_recipients 2: second");
	is_str(FEED(&s, "RCPT TO:<e@example.net>\r\n"),
	    "452 4.5.3 Too many recipients\r\n", "third: 452 4.5.3");
	is_int(s.errors, 0, "452 4.5.3 is not the client's error");
	is_str(stname(s.state), "RCPT", "still in the transaction");
	is_str(FEED(&s, "DATA\r\n"), R354, "DATA after 452");
	is_str(FEED(&s, "x\r\n.\r\n"), "250 2.0.0 Ok\r\n", "delivered");
	is_int(fk.nrcpt, 2, "two recipients delivered");
	is_str(fk.rcpts[1], "d@example.net", "the second recipient");
	session_free(&s);
	config_free(c);
}

/* ---------------------------------------------------- relay and policy */

static const struct {
	const char	*name;
	const char	*conf;
	const char	*client;
	const char	*rcpt;
	const char	*reply;
} relay_table[] = {
	{ "outsider to any domain", "", "192.0.2.1", "x@example.net",
	    "550 5.7.1 Relaying denied\r\n" },
	{ "outsider to postmaster", "", "192.0.2.1", "postmaster",
	    "250 2.1.5 OK\r\n" },
	{ "outsider to postmaster@ a foreign domain", "", "192.0.2.1",
	    "postmaster@example.net", "550 5.7.1 Relaying denied\r\n" },
	{ "127.0.0.1 relays", "", "127.0.0.1", "x@example.net",
	    "250 2.1.5 OK\r\n" },
	{ "127.9.9.9 relays (127.0.0.1/8)", "", "127.9.9.9", "x@example.net",
	    "250 2.1.5 OK\r\n" },
	{ "::1 relays", "", "::1", "x@example.net", "250 2.1.5 OK\r\n" },
	{ "::2 does not", "", "::2", "x@example.net",
	    "550 5.7.1 Relaying denied\r\n" },
	{ "allowed_senders network", "allowed_senders = {\"192.0.2.0/24\"}",
	    "192.0.2.77", "x@example.net", "250 2.1.5 OK\r\n" },
	{ "allowed_sender_nets network",
	    "allowed_sender_nets = {\"198.51.100.0/24\"}", "198.51.100.9",
	    "x@example.net", "250 2.1.5 OK\r\n" },
	{ "string prefix is no network",
	    "allowed_senders = {\"192.168.2.0/24\"}", "192.168.20.1",
	    "x@example.net", "550 5.7.1 Relaying denied\r\n" },
#define DOMAINS "allowed_domains = {\".example.org\", \"Example.COM\"}"
	{ ".example.org matches sub.example.org", DOMAINS, "192.0.2.1",
	    "x@sub.example.org", "250 2.1.5 OK\r\n" },
	{ ".example.org matches a.b.example.org", DOMAINS, "192.0.2.1",
	    "x@a.b.example.org", "250 2.1.5 OK\r\n" },
	{ ".example.org matches example.org", DOMAINS, "192.0.2.1",
	    "x@example.org", "250 2.1.5 OK\r\n" },
	{ ".example.org does not match badexample.org", DOMAINS, "192.0.2.1",
	    "x@badexample.org", "550 5.7.1 Relaying denied\r\n" },
	{ ".example.org does not match example.org.evil.net", DOMAINS,
	    "192.0.2.1", "x@example.org.evil.net",
	    "550 5.7.1 Relaying denied\r\n" },
	{ "domains match in any case", DOMAINS, "192.0.2.1",
	    "x@EXAMPLE.com", "250 2.1.5 OK\r\n" },
	{ "example.com does not match sub.example.com", DOMAINS,
	    "192.0.2.1", "x@sub.example.com", "550 5.7.1 Relaying denied\r\n" },
	{ "policy reject", "policy = \"reject\"", "127.0.0.1",
	    "x@example.net", "550 5.7.1 Recipient rejected by policy\r\n" },
	{ "policy reject: relay control first", "policy = \"reject\"",
	    "192.0.2.1", "x@example.net", "550 5.7.1 Relaying denied\r\n" },
	{ "policy greylist: allowed_senders pass", "policy = \"greylist\"",
	    "127.0.0.1", "x@example.net", "250 2.1.5 OK\r\n" },
	{ "policy greylist: no store, tempfail",
	    "policy = \"greylist\"\n" DOMAINS, "192.0.2.1", "x@example.org",
	    "451 4.7.1 Greylisting unavailable, try again later\r\n" },
	{ "policy greylist: no store, on_error accept",
	    "policy = \"greylist\"\ngreylist {\non_error = \"accept\"\n}\n"
	    DOMAINS, "192.0.2.1", "x@example.org", "250 2.1.5 OK\r\n" },
	{ "policy greylist: whitelist_clients",
	    "policy = \"greylist\"\nwhitelist_clients = {\"192.0.2.0/24\"}\n"
	    DOMAINS, "192.0.2.1", "x@example.org", "250 2.1.5 OK\r\n" },
};

static void
test_relay(void)
{
	struct config	*c;
	struct session	 s;
	char		 line[256];
	size_t		 i;

	for (i = 0; i < sizeof(relay_table) / sizeof(relay_table[0]); i++) {
		c = mkcfg(relay_table[i].conf);
		start(&s, c, relay_table[i].client);
		FEED(&s, "EHLO client.example\r\n");
		FEED(&s, "MAIL FROM:<a@example.org>\r\n");
		snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n",
		    relay_table[i].rcpt);
		is_str(FEEDS(&s, line), relay_table[i].reply, "relay: %s",
		    relay_table[i].name);
		is_str(stname(s.state), relay_table[i].reply[0] == '2' ?
		    "RCPT" : "MAIL", "relay: %s: state", relay_table[i].name);
		/* refusals count as errors, deferrals do not */
		is_int(s.errors, relay_table[i].reply[0] == '5',
		    "relay: %s: error count", relay_table[i].name);
		session_free(&s);
		config_free(c);
	}

	/* every recipient refused: DATA says so */
	c = mkcfg("");
	start(&s, c, "192.0.2.1");
	FEED(&s, "EHLO client.example\r\n");
	FEED(&s, "MAIL FROM:<a@example.org>\r\n");
	is_str(FEED(&s, "RCPT TO:<x@example.net>\r\n"),
	    "550 5.7.1 Relaying denied\r\n", "relay denied");
	is_int(s.errors, 1, "relay denied counts as an error");
	is_str(FEED(&s, "DATA\r\n"), "554 5.5.1 No valid recipients\r\n",
	    "DATA after every RCPT was refused: 554 5.5.1");
	is_str(FEED(&s, "RCPT TO:<postmaster>\r\n"), "250 2.1.5 OK\r\n",
	    "then postmaster");
	is_str(FEED(&s, "DATA\r\n"), R354, "DATA with one good recipient");
	session_free(&s);
	config_free(c);
}

/* ------------------------------------------------------------ delivery */

static void
test_delivery(const struct config *c)
{
	static const char	 msg[] = "From: a@example.org\r\n"
	    "Subject: test\r\n\r\nbody line\r\n..starts with a dot\r\n"
	    "8-bit \xc3\xa9\r\n\r\n";
	static const char	 up[] = "250-first line\r\n"
	    "250 2.0.0 Ok: queued as ABC123\r\n";
	struct session		 s;
	char			 buf[1024];

	fake_reset(UP_DELIVERED, up);
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 1), "setup: HELO");
	is_str(FEED(&s, "MAIL FROM:<a@example.org> SIZE=1234 "
	    "BODY=8BITMIME\r\n"), "250 2.1.0 OK\r\n", "MAIL with SIZE, BODY");
	is_str(FEED(&s, "RCPT TO:<c@example.net>\r\n"), "250 2.1.5 OK\r\n",
	    "first RCPT");
	is_str(FEED(&s, "RCPT TO:<d@example.net>\r\n"), "250 2.1.5 OK\r\n",
	    "second RCPT");
	is_str(FEED(&s, "RCPT TO:<C@example.net>\r\n"), "250 2.1.5 OK\r\n",
	    "the first again, other case");
	is_str(FEED(&s, "DATA\r\n"), R354, "DATA");
	is_str(stname(s.state), "DATA", "in DATA");
	is_int(fk.called, 0, "nothing delivered before the end");
	snprintf(buf, sizeof(buf), "%s.\r\n", msg);
	is_str(FEEDS(&s, buf), up, "client gets upstream's reply verbatim");
	is_int(fk.called, 1, "delivered once");
	is_str(fk.helo_line, "EHLO client.example", "envelope: HELO line");
	is_str(fk.helo, "client.example", "envelope: HELO name");
	is_int(fk.esmtp, 1, "envelope: ESMTP");
	is_str(fk.from, "a@example.org", "envelope: sender");
	is_int(fk.size, 1234, "envelope: SIZE");
	is_int(fk.body, 8, "envelope: BODY");
	is_int(fk.nrcpt, 2, "envelope: a recipient given twice is sent once");
	is_str(fk.rcpts[0], "c@example.net", "envelope: first recipient");
	is_str(fk.rcpts[1], "d@example.net", "envelope: second recipient");
	is_mem(fk.data, fk.len, msg, sizeof(msg) - 1,
	    "transcript: the message exactly as sent, still dot-stuffed");
	is_str(stname(s.state), "HELO", "after the message: HELO");
	is_int(s.messages, 1, "one message in the session");
	is_int(s.nrcpt, 0, "transaction cleared");

	/* a second message in the same session, null sender */
	is_str(FEED(&s, "MAIL FROM:<>\r\n"), "250 2.1.0 OK\r\n",
	    "second MAIL, null sender");
	is_str(FEED(&s, "RCPT TO:<e@example.net>\r\n"), "250 2.1.5 OK\r\n",
	    "second transaction RCPT");
	is_str(FEED(&s, "DATA\r\n"), R354, "second DATA");
	fk.reply = "250 2.0.0 Ok: queued as DEF\r\n";
	is_str(FEED(&s, "second\r\n.\r\n"), "250 2.0.0 Ok: queued as DEF\r\n",
	    "second message delivered");
	is_int(fk.called, 2, "delivered twice");
	is_str(fk.from, "", "second envelope: null sender");
	is_int(fk.size, -1, "second envelope: no SIZE");
	is_int(fk.body, 0, "second envelope: no BODY");
	is_int(fk.nrcpt, 1, "second envelope: only its own recipient");
	is_str(fk.rcpts[0], "e@example.net", "second envelope: recipient");
	is_mem(fk.data, fk.len, "second\r\n", 8,
	    "second transcript: only the second message");
	is_int(s.messages, 2, "two messages in the session");

	/* the message fed one octet at a time */
	FEED(&s, "MAIL FROM:<a@example.org>\r\n");
	FEED(&s, "RCPT TO:<c@example.net>\r\n");
	FEED(&s, "DATA\r\n");
	fk.reply = up;
	is_str(feedn(&s, buf, strlen(buf), 1), up,
	    "message octet by octet: delivered");
	is_mem(fk.data, fk.len, msg, sizeof(msg) - 1,
	    "message octet by octet: same transcript");
	session_free(&s);

	/* after HELO, the envelope says so */
	fake_reset(UP_DELIVERED, "250 ok\r\n");
	start(&s, c, "127.0.0.1");
	FEED(&s, "helo Client.Example\r\n");
	FEED(&s, "MAIL FROM:<a@example.org>\r\n");
	FEED(&s, "RCPT TO:<c@example.net>\r\n");
	FEED(&s, "DATA\r\n");
	is_str(FEED(&s, ".\r\n"), "250 ok\r\n", "empty message delivered");
	is_str(fk.helo_line, "helo Client.Example",
	    "HELO line replayed as the client sent it");
	is_int(fk.esmtp, 0, "envelope: not ESMTP");
	is_int(fk.len, 0, "empty message: empty transcript");
	is_int(fk.spilled, 0, "small message: kept in memory");
	session_free(&s);

	/* a failed HELO/EHLO keeps the last good HELO line */
	fake_reset(UP_DELIVERED, "250 ok\r\n");
	start(&s, c, "127.0.0.1");
	FEED(&s, "EHLO client.example\r\n");
	is_prefix(FEED(&s, "HELO\r\n"), "501 5.5.4", "HELO without name");
	is_prefix(FEED(&s, "EHLO bad/name\r\n"), "501 5.5.4",
	    "EHLO with a bad name");
	FEED(&s, "MAIL FROM:<a@example.org>\r\n");
	FEED(&s, "RCPT TO:<c@example.net>\r\n");
	FEED(&s, "DATA\r\n");
	is_str(FEED(&s, "x\r\n.\r\n"), "250 ok\r\n", "delivered");
	is_str(fk.helo_line, "EHLO client.example",
	    "the last good EHLO line is replayed");
	is_int(fk.esmtp, 1, "still ESMTP");
	session_free(&s);
}

/* a message larger than spill_threshold goes through the spill file */
static void
test_delivery_spill(void)
{
	struct config	*c;
	struct session	 s;
	char		*msg;
	size_t		 n = 200000, i, col = 0;
	unsigned int	 seed = 7;

	c = mkcfg("spill_threshold = 4096\n");
	fake_reset(UP_DELIVERED, "250 2.0.0 big\r\n");
	msg = malloc(n + 8);
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		if (col == 70 || (seed >> 16) % 61 == 0) {
			msg[i++] = '\r';
			if (i < n)
				msg[i] = '\n';
			col = 0;
			continue;
		}
		/* dots inside lines only: a line "." would end the data */
		msg[i] = col > 0 && (seed >> 16) % 5 == 0 ? '.' :
		    'a' + (seed >> 16) % 26;
		col++;
	}
	/* end on a line end, then the terminator */
	n -= 2;
	while (msg[n - 1] == '\r' || msg[n - 1] == '\n')
		n--;
	memcpy(msg + n, "\r\n.\r\n", 6);
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 1), "setup: RCPT");
	is_str(FEED(&s, "DATA\r\n"), R354, "big message: DATA");
	is_str(feedn(&s, msg, n + 5, 1000), "250 2.0.0 big\r\n",
	    "big message: delivered");
	is_int(fk.spilled, 1, "big message: went through the spill file");
	is_int(fk.len, n + 2, "big message: transcript length");
	ok(fk.len == n + 2 && memcmp(fk.data, msg, n + 2) == 0,
	    "big message: transcript identical");
	free(msg);
	session_free(&s);
	config_free(c);
}

static const struct {
	const char	*name;
	enum up_status	 status;
	const char	*fake_reply;
	const char	*want;
} upstream_table[] = {
	{ "upstream accepts", UP_DELIVERED, "250 2.0.0 Ok: queued as X\r\n",
	    "250 2.0.0 Ok: queued as X\r\n" },
	{ "upstream rejects the data", UP_REJECTED,
	    "554-5.7.1 rejected\r\n554 5.7.1 spam\r\n",
	    "554-5.7.1 rejected\r\n554 5.7.1 spam\r\n" },
	{ "upstream tempfails the data", UP_REJECTED,
	    "452 4.3.1 full\r\n", "452 4.3.1 full\r\n" },
	{ "upstream unavailable (reply as upstream_deliver sets it)",
	    UP_UNAVAILABLE, R_UNAVAIL, R_UNAVAIL },
	/* UP_UNAVAILABLE with no reply text: the client still gets
	 * 451 4.4.1 */
	{ "upstream unavailable (no reply text)", UP_UNAVAILABLE, NULL,
	    R_UNAVAIL },
	{ "upstream refused some recipients", UP_PARTIAL,
	    "550 5.1.1 no such user\r\n", "451 4.3.0 Try again later\r\n" },
};

static void
test_upstream(const struct config *c)
{
	struct session	s;
	size_t		i;

	for (i = 0; i < sizeof(upstream_table) / sizeof(upstream_table[0]);
	    i++) {
		fake_reset(upstream_table[i].status,
		    upstream_table[i].fake_reply);
		start(&s, c, "127.0.0.1");
		ok(reach(&s, S_RCPT, 1), "setup: RCPT");
		FEED(&s, "DATA\r\n");
		is_str(FEED(&s, "hello\r\n.\r\n"), upstream_table[i].want,
		    "%s: reply", upstream_table[i].name);
		is_int(fk.called, 1, "%s: deliver called",
		    upstream_table[i].name);
		is_str(stname(s.state), "HELO", "%s: transaction over",
		    upstream_table[i].name);
		is_int(s.messages, upstream_table[i].status == UP_DELIVERED,
		    "%s: messages counted", upstream_table[i].name);
		is_str(FEED(&s, "NOOP\r\n"), "250 2.0.0 OK\r\n",
		    "%s: session goes on", upstream_table[i].name);
		session_free(&s);
	}
}

/* ------------------------------------------------------------ smuggling */

static const struct {
	const char	*name;
	struct bytes	 data;
	const char	*want;
} smuggle_table[] = {
#define SMUG(seq) "Subject: x\r\n\r\nfoo" seq "MAIL FROM:<evil@example.org>" \
	"\r\nRCPT TO:<x@example.net>\r\nDATA\r\nevil\r\n.\r\n"
	{ "\\n.\\n", B(SMUG("\n.\n")), R_BARE },
	{ "\\n.\\r", B(SMUG("\n.\r")), R_BARE },
	{ "\\r.\\n", B(SMUG("\r.\n")), R_BARE },
	{ "\\r.\\r", B(SMUG("\r.\r")), R_BARE },
	{ "\\n.\\r\\n", B(SMUG("\n.\r\n")), R_BARE },
	{ "\\r.\\r\\n", B(SMUG("\r.\r\n")), R_BARE },
	{ "\\r\\n.\\n", B(SMUG("\r\n.\n")), R_BARE },
	{ "\\r\\n.\\r", B(SMUG("\r\n.\r")), R_BARE },
	{ "\\r\\n.\\r\\r\\n", B(SMUG("\r\n.\r\r\n")), R_BARE },
	{ "\\r\\n\\0.\\r\\n", B(SMUG("\r\n\0.\r\n")), R_NUL },
	{ "bare LF in a header", B("Subject: x\nfoo\r\n.\r\n"), R_BARE },
	{ "NUL in the body", B("a\r\nb\0c\r\n.\r\n"), R_NUL },
};

static void
test_smuggling(const struct config *c)
{
	struct session	s;
	size_t		i;
	int		bytewise;

	for (i = 0; i < sizeof(smuggle_table) / sizeof(smuggle_table[0]);
	    i++) {
		for (bytewise = 0; bytewise <= 1; bytewise++) {
			fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
			start(&s, c, "127.0.0.1");
			ok(reach(&s, S_RCPT, 1), "setup: RCPT");
			FEED(&s, "DATA\r\n");
			is_str(feedn(&s, smuggle_table[i].data.p,
			    smuggle_table[i].data.n, bytewise ? 1 : 65536),
			    smuggle_table[i].want, "smuggling %s%s: one reply",
			    smuggle_table[i].name, bytewise ? " byte-wise" :
			    "");
			is_int(fk.called, 0, "smuggling %s%s: nothing "
			    "delivered", smuggle_table[i].name, bytewise ?
			    " byte-wise" : "");
			is_str(stname(s.state), "HELO", "smuggling %s%s: "
			    "transaction over", smuggle_table[i].name,
			    bytewise ? " byte-wise" : "");
			is_int(linebuf_pending(&s.in), 0, "smuggling %s%s: "
			    "read to the real end", smuggle_table[i].name,
			    bytewise ? " byte-wise" : "");
			is_int(s.errors, 0, "smuggling %s%s: end-of-data "
			    "replies are not counted", smuggle_table[i].name,
			    bytewise ? " byte-wise" : "");
			session_free(&s);
		}
	}
}

static void
test_data_limits(void)
{
	struct config	*c;
	struct session	 s;
	char		*m;

	c = mkcfg("max_message_size = 1024\n");
	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");

	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 1), "setup: RCPT");
	FEED(&s, "DATA\r\n");
	m = repeat('x', 999, "", "\r\n.\r\n");	/* 1001 octets incl. CRLF */
	is_str(FEEDS(&s, m), "554 5.6.0 Line too long\r\n",
	    "text line over max_text_line: 554 5.6.0");
	is_int(fk.called, 0, "long line: nothing delivered");
	free(m);
	FEED(&s, "MAIL FROM:<a@example.org>\r\n");
	FEED(&s, "RCPT TO:<c@example.net>\r\n");
	FEED(&s, "DATA\r\n");
	m = repeat('x', 998, "", "\r\n.\r\n");	/* exactly 1000 */
	is_str(FEEDS(&s, m), "250 2.0.0 Ok\r\n",
	    "text line of exactly max_text_line: delivered");
	free(m);
	session_free(&s);

	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 1), "setup: RCPT");
	FEED(&s, "DATA\r\n");
	m = repeat('x', 500, "", "\r\n");
	FEEDS(&s, m);
	FEEDS(&s, m);
	is_str(FEEDS(&s, m), "", "too big: no answer before the end");
	is_str(FEED(&s, ".\r\n"), "552 5.3.4 Message size exceeds fixed "
	    "limit\r\n", "too big: 552 5.3.4 at the end");
	is_int(fk.called, 0, "too big: nothing delivered");
	ok(s.tx.total <= 1024, "too big: nothing stored past the limit");
	is_str(stname(s.state), "HELO", "too big: transaction over");
	free(m);
	session_free(&s);
	config_free(c);
}

/* the spool cannot be written: 452 4.3.1, nothing delivered */
static void
test_spool_failure(void)
{
	struct config	*c;
	struct session	 s;
	char		*m;
	size_t		 chunk, i;

	c = mkcfg("spool_dir = \"/nonexistent/greygate-spool\"\n"
	    "spill_threshold = 4096\n");
	for (chunk = 65536; chunk >= 1000; chunk /= 64) {
		fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
		start(&s, c, "127.0.0.1");
		ok(reach(&s, S_RCPT, 1), "setup: RCPT");
		FEED(&s, "DATA\r\n");
		m = repeat('x', 10000, "", "\r\n.\r\n");
		for (i = 98; i < 10000; i += 100)	/* lines of 100 */
			memcpy(m + i, "\r\n", 2);
		alarm(10);
		/* smtp_data_scan() reports the input used when the sink
		 * fails, and the framing goes on to the real end */
		is_str(feedn(&s, m, strlen(m), chunk),
		    "452 4.3.1 Insufficient system storage\r\n",
		    "spool failure (chunks of %zu): 452 4.3.1", chunk);
		alarm(0);
		is_int(fk.called, 0, "spool failure: nothing delivered");
		is_str(stname(s.state), "HELO", "spool failure: transaction "
		    "over");
		is_str(FEED(&s, "NOOP\r\n"), "250 2.0.0 OK\r\n",
		    "spool failure: session goes on");
		free(m);
		session_free(&s);
	}
	config_free(c);
}

/* ----------------------------------------------------------- pipelining */

static void
test_pipelining(const struct config *c)
{
	struct session	s;

	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 1), "setup: HELO");
	is_str(FEED(&s, "MAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\n"
	    "DATA\r\n"), "250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n"
	    R354, "after EHLO: MAIL, RCPT, RCPT, DATA in one group");
	is_str(stname(s.state), "DATA", "pipelined group: in DATA");
	is_str(FEED(&s, "msg\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
	    "RCPT TO:<e@example.net>\r\nDATA\r\n"), "250 2.0.0 Ok\r\n"
	    "250 2.1.0 OK\r\n250 2.1.5 OK\r\n" R354,
	    "after EHLO: end of data and the next group together");
	is_int(fk.called, 1, "first message delivered");
	is_mem(fk.data, fk.len, "msg\r\n", 5, "first message intact");
	is_str(FEED(&s, "two\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok\r\n"
	    QUIT_REPLY, "end of data then QUIT");
	is_int(fk.called, 2, "second message delivered");
	is_str(stname(s.state), "QUIT", "closed");
	session_free(&s);

	/* bytes after DATA before the 354, even after EHLO */
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 1), "setup: HELO");
	is_str(FEED(&s, "MAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<c@example.net>\r\nDATA\r\nSubject: early\r\n"),
	    "250 2.1.0 OK\r\n250 2.1.5 OK\r\n" R_PIPE,
	    "after EHLO: data before the 354: 503 5.5.0");
	is_str(stname(s.state), "QUIT", "data before the 354: closed");
	session_free(&s);

	/* after HELO no pipelining */
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 0), "setup: HELO by HELO");
	is_str(FEED(&s, "MAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<c@example.net>\r\n"), R_PIPE,
	    "after HELO: two commands in one feed: 503 5.5.0");
	is_str(stname(s.state), "QUIT", "after HELO: closed");
	session_free(&s);

	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 0), "setup: HELO by HELO");
	is_str(FEED(&s, "RSET\r\nQUIT\r\n"), "250 2.0.0 OK\r\n" QUIT_REPLY,
	    "after HELO: pipelined QUIT is fine");
	is_str(stname(s.state), "QUIT", "pipelined QUIT: closed");
	session_free(&s);

	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_HELO, 0), "setup: HELO by HELO");
	is_str(FEED(&s, "RSET\r\nquit\r\n"), "250 2.0.0 OK\r\n" QUIT_REPLY,
	    "after HELO: pipelined lower-case quit is fine");
	session_free(&s);

	/* before EHLO is answered */
	start(&s, c, "127.0.0.1");
	is_str(FEED(&s, "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n"),
	    R_PIPE, "EHLO and MAIL in one feed: 503 5.5.0");
	is_str(stname(s.state), "QUIT", "EHLO pipelined: closed");
	session_free(&s);

	/* after HELO, end of data followed by a command */
	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 0), "setup: RCPT by HELO");
	is_str(FEED(&s, "DATA\r\n"), R354, "after HELO: DATA");
	is_str(FEED(&s, "m\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok\r\n" QUIT_REPLY,
	    "after HELO: end of data then QUIT");
	is_int(fk.called, 1, "delivered before the QUIT");
	session_free(&s);

	fake_reset(UP_DELIVERED, "250 2.0.0 Ok\r\n");
	start(&s, c, "127.0.0.1");
	ok(reach(&s, S_RCPT, 0), "setup: RCPT by HELO");
	FEED(&s, "DATA\r\n");
	is_str(FEED(&s, "m\r\n.\r\nNOOP\r\n"), R_PIPE,
	    "after HELO: end of data then NOOP: 503 5.5.0");
	is_str(stname(s.state), "QUIT", "closed");
	session_free(&s);
}

/* ------------------------------------------------------------ STARTTLS */

/*
 * The verb without a handshake: a context pointer that is never
 * dereferenced (session_input only queues the 220; session_run shakes
 * hands) stands for a loaded certificate.
 */
static const struct {
	const char	*name;
	enum state	 from;
	int		 esmtp;		/* reached by EHLO, else HELO */
	int		 tls;		/* TLS already on */
	struct bytes	 in;
	const char	*reply;
	enum state	 to;
	int		 handshake;	/* the handshake comes next */
} starttls_table[] = {
	{ "before EHLO", S_CONNECTED, 1, 0, B("STARTTLS\r\n"),
	    "503 5.5.1 Error: send EHLO first\r\n", S_CONNECTED, 0 },
	{ "after HELO", S_HELO, 0, 0, B("STARTTLS\r\n"),
	    "503 5.5.1 Error: send EHLO first\r\n", S_HELO, 0 },
	{ "after EHLO", S_HELO, 1, 0, B("STARTTLS\r\n"),
	    "220 2.0.0 Ready to start TLS\r\n", S_HELO, 1 },
	{ "lower case", S_HELO, 1, 0, B("starttls\r\n"),
	    "220 2.0.0 Ready to start TLS\r\n", S_HELO, 1 },
	{ "in a transaction", S_MAIL, 1, 0, B("STARTTLS\r\n"),
	    "503 5.5.1 Error: MAIL transaction in progress\r\n", S_MAIL, 0 },
	{ "with an argument", S_HELO, 1, 0, B("STARTTLS now\r\n"),
	    "501 5.5.4 Syntax error\r\n", S_HELO, 0 },
	{ "over TLS", S_HELO, 1, 1, B("STARTTLS\r\n"),
	    "503 5.5.1 Error: TLS already active\r\n", S_HELO, 0 },
	{ "over TLS, before EHLO", S_CONNECTED, 1, 1, B("STARTTLS\r\n"),
	    "503 5.5.1 Error: TLS already active\r\n", S_CONNECTED, 0 },
	{ "a command behind it (CVE-2011-0411)", S_HELO, 1, 0,
	    B("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n"),
	    "554 5.5.1 Error: command pipelined after STARTTLS\r\n", S_QUIT,
	    0 },
	{ "a lone CR behind it", S_HELO, 1, 0, B("STARTTLS\r\n\r"),
	    "554 5.5.1 Error: command pipelined after STARTTLS\r\n", S_QUIT,
	    0 },
};

static void
test_starttls(const struct config *c)
{
	struct session	 s;
	const char	*got;
	size_t		 i;
	int		 dummy;

	for (i = 0; i < sizeof(starttls_table) / sizeof(starttls_table[0]);
	    i++) {
		start(&s, c, "127.0.0.1");
		s.tls_ctx = (struct tls_ctx *)&dummy;
		if (!reach(&s, starttls_table[i].from,
		    starttls_table[i].esmtp)) {
			ok(0, "STARTTLS %s: could not reach the state",
			    starttls_table[i].name);
			session_free(&s);
			continue;
		}
		s.tls = starttls_table[i].tls;
		got = feedn(&s, starttls_table[i].in.p, starttls_table[i].in.n,
		    65536);
		is_str(got, starttls_table[i].reply, "STARTTLS %s: reply",
		    starttls_table[i].name);
		is_str(stname(s.state), stname(starttls_table[i].to),
		    "STARTTLS %s: state", starttls_table[i].name);
		is_int(s.starttls, starttls_table[i].handshake,
		    "STARTTLS %s: %s", starttls_table[i].name,
		    starttls_table[i].handshake ? "handshake next" :
		    "no handshake");
		session_free(&s);
	}

	/* announced after EHLO in plaintext only */
	start(&s, c, "127.0.0.1");
	s.tls_ctx = (struct tls_ctx *)&dummy;
	is_str(FEED(&s, "EHLO client.example\r\n"),
	    "250-test.example Hello client.example [127.0.0.1]\r\n"
	    "250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n"
	    "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n",
	    "EHLO announces STARTTLS in plaintext");
	s.tls = 1;
	is_str(FEED(&s, "EHLO client.example\r\n"), EHLO_REPLY,
	    "EHLO over TLS does not");
	session_free(&s);

	/* after the 220 nothing more is read until the handshake */
	start(&s, c, "127.0.0.1");
	s.tls_ctx = (struct tls_ctx *)&dummy;
	(void)reach(&s, S_HELO, 1);
	(void)FEED(&s, "STARTTLS\r\n");
	is_str(FEED(&s, "NOOP\r\n"), "", "nothing answered before the "
	    "handshake");
	session_free(&s);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! timed out (session loops)\n";

	(void)sig;
	fflush(stdout);
	/* without the message the exit status still says it failed */
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) == -1)
		_exit(2);
	_exit(1);
}

int
main(void)
{
	struct config	*c;

	signal(SIGALRM, on_alarm);
	log_init(1, LOG_MAIL);
	c = mkcfg("");
	test_greeting(c);
	test_commands(c);
	test_syntax(c);
	test_line_length(c);
	test_max_errors();
	test_max_recipients();
	test_relay();
	test_delivery(c);
	test_delivery_spill();
	test_upstream(c);
	test_smuggling(c);
	test_data_limits();
	test_pipelining(c);
	test_spool_failure();
	test_starttls(c);
	config_free(c);
	fake_reset(UP_DELIVERED, NULL);
	return tap_done();
}
