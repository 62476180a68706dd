/*
 * test_smtp_parse - verbs, HELO arguments, MAIL/RCPT paths and
 * parameters, and the framing of message data: only CRLF.CRLF ends a
 * message, every SMTP smuggling variant is flagged and read past, and
 * the scanner gives the same result however the input is split.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"
#include "tap.h"

/* tables leave unused trailing fields out */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ---------------------------------------------------------------- verbs */

static const struct {
	const char	*name;
	const char	*line;
	const char	*verb;		/* NULL: no verb */
	const char	*args;
} verb_cases[] = {
	{ "verb and argument", "HELO example.org", "HELO", "example.org" },
	{ "verb alone", "QUIT", "QUIT", "" },
	{ "MAIL keeps FROM: in args", "MAIL FROM:<a@b.c>", "MAIL",
	    "FROM:<a@b.c>" },
	{ "lower case verb", "noop", "noop", "" },
	{ "8-letter verb", "STARTTLS", "STARTTLS", "" },
	{ "only the first space separates", "HELO  x", "HELO", " x" },
	{ "trailing space: empty args", "RSET ", "RSET", "" },
	{ "9-letter verb refused", "ABCDEFGHI", NULL, NULL },
	{ "empty line", "", NULL, NULL },
	{ "digits are no verb", "123 x", NULL, NULL },
	{ "tab after verb", "HELO\tx", NULL, NULL },
	{ "colon after verb", "MAIL:x", NULL, NULL },
	{ "leading space", " HELO x", NULL, NULL },
};

static void
test_verbs(void)
{
	char		 buf[128];
	char		*args;
	const char	*v;
	size_t		 i;

	for (i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
		strlcpy(buf, verb_cases[i].line, sizeof(buf));
		args = NULL;
		v = smtp_verb(buf, &args);
		is_str(v, verb_cases[i].verb, "smtp_verb: %s",
		    verb_cases[i].name);
		if (verb_cases[i].verb != NULL)
			is_str(args, verb_cases[i].args, "smtp_verb: %s: args",
			    verb_cases[i].name);
	}
}

/* ----------------------------------------------------------------- helo */

static const struct {
	const char	*arg;
	int		 want;
} helo_cases[] = {
	{ "example.org", 0 },
	{ "mail.example.org", 0 },
	{ "localhost", 0 },
	{ "client_1.example", 0 },	/* underscores tolerated */
	{ "a-b.example", 0 },
	{ "[1.2.3.4]", 0 },
	{ "[192.0.2.255]", 0 },
	{ "[IPv6:::1]", 0 },
	{ "[IPv6:2001:db8::1]", 0 },
	{ "[ipv6:2001:db8::1]", 0 },
	{ "", -1 },
	{ "exa mple.org", -1 },
	{ "a/b", -1 },
	{ "a@b", -1 },
	{ "foo..example", -1 },		/* empty label */
	{ ".example", -1 },
	{ "[1.2.3]", -1 },
	{ "[1.2.3.4", -1 },
	{ "1.2.3.4]", -1 },
	{ "[256.1.1.1]", -1 },
	{ "[IPv6:zz::1]", -1 },
	{ "[::1]", -1 },		/* IPv6 literal needs the tag */
	{ "[]", -1 },
	{ "\xc3\xa9xample.org", -1 },
};

static void
test_helo(void)
{
	char	long_name[300];
	size_t	i;

	for (i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++)
		is_int(smtp_check_helo(helo_cases[i].arg), helo_cases[i].want,
		    "smtp_check_helo \"%s\"", helo_cases[i].arg);
	memset(long_name, 'a', 255);
	long_name[255] = '\0';
	is_int(smtp_check_helo(long_name), 0, "smtp_check_helo: 255 octets");
	memset(long_name, 'a', 256);
	long_name[256] = '\0';
	is_int(smtp_check_helo(long_name), -1,
	    "smtp_check_helo: 256 octets refused");
}

/* ----------------------------------------------------------------- MAIL */

struct mail_case {
	const char	*name;
	const char	*args;
	enum sp_result	 want;
	const char	*addr;		/* when SP_OK */
	size_t		 domain;
	long long	 size;
	int		 body;
};

static const struct mail_case mail_cases[] = {
	{ "plain path", "FROM:<a@b.example>", SP_OK, "a@b.example", 2, -1,
	    0 },
	{ "lower case FROM", "from:<User@Example.ORG>", SP_OK,
	    "User@Example.ORG", 5, -1, 0 },
	{ "null sender", "FROM:<>", SP_OK, "", 0, -1, 0 },
	{ "null sender with SIZE", "FROM:<> SIZE=10", SP_OK, "", 0, 10, 0 },
	{ "source route, one hop", "FROM:<@r1.example:a@b.example>", SP_OK,
	    "a@b.example", 2, -1, 0 },
	{ "source route, two hops",
	    "FROM:<@r1.example,@r2.example:a@b.example>", SP_OK,
	    "a@b.example", 2, -1, 0 },
	{ "quoted local part", "FROM:<\"john doe\"@b.example>", SP_OK,
	    "\"john doe\"@b.example", 11, -1, 0 },
	{ "quoted local part with escape", "FROM:<\"a\\\"b\"@b.example>",
	    SP_OK, "\"a\\\"b\"@b.example", 7, -1, 0 },
	/* a '>' inside a quoted local part does not close the path */
	{ "quoted local part with '>'", "FROM:<\"a>b\"@b.example>", SP_OK,
	    "\"a>b\"@b.example", 6, -1, 0 },
	{ "dotted local part", "FROM:<first.last+tag@b.example>", SP_OK,
	    "first.last+tag@b.example", 15, -1, 0 },
	{ "atext specials", "FROM:<a!#$%&'*+-/=?^_`{|}~@b.example>", SP_OK,
	    "a!#$%&'*+-/=?^_`{|}~@b.example", 21, -1, 0 },
	{ "IPv4 literal domain", "FROM:<a@[192.0.2.1]>", SP_OK,
	    "a@[192.0.2.1]", 2, -1, 0 },
	{ "IPv6 literal domain", "FROM:<a@[IPv6:2001:db8::1]>", SP_OK,
	    "a@[IPv6:2001:db8::1]", 2, -1, 0 },
	{ "trailing space", "FROM:<a@b.example> ", SP_OK, "a@b.example", 2,
	    -1, 0 },
	{ "SIZE", "FROM:<a@b.example> SIZE=1000", SP_OK, "a@b.example", 2,
	    1000, 0 },
	{ "SIZE=0", "FROM:<a@b.example> SIZE=0", SP_OK, "a@b.example", 2, 0,
	    0 },
	{ "size lower case", "FROM:<a@b.example> size=42", SP_OK,
	    "a@b.example", 2, 42, 0 },
	{ "BODY=7BIT", "FROM:<a@b.example> BODY=7BIT", SP_OK, "a@b.example",
	    2, -1, 7 },
	{ "BODY=8BITMIME", "FROM:<a@b.example> BODY=8BITMIME", SP_OK,
	    "a@b.example", 2, -1, 8 },
	{ "body=8bitmime lower case", "FROM:<a@b.example> body=8bitmime",
	    SP_OK, "a@b.example", 2, -1, 8 },
	{ "SIZE and BODY", "FROM:<a@b.example> SIZE=5 BODY=8BITMIME", SP_OK,
	    "a@b.example", 2, 5, 8 },
	{ "BODY and SIZE", "FROM:<a@b.example> BODY=7BIT SIZE=6", SP_OK,
	    "a@b.example", 2, 6, 7 },

	{ "space after the colon", "FROM: <a@b.example>", SP_SYNTAX },
	{ "no angle brackets", "FROM:a@b.example", SP_SYNTAX },
	{ "no closing bracket", "FROM:<a@b.example", SP_SYNTAX },
	{ "no opening bracket", "FROM:a@b.example>", SP_SYNTAX },
	{ "no FROM:", "<a@b.example>", SP_SYNTAX },
	{ "FROM without colon", "FROM <a@b.example>", SP_SYNTAX },
	{ "TO: instead of FROM:", "TO:<a@b.example>", SP_SYNTAX },
	{ "empty", "", SP_SYNTAX },
	{ "no domain", "FROM:<a>", SP_SYNTAX },
	{ "no local part", "FROM:<@b.example>", SP_SYNTAX },
	{ "empty domain", "FROM:<a@>", SP_SYNTAX },
	{ "two at signs", "FROM:<a@b@c.example>", SP_SYNTAX },
	{ "junk after path", "FROM:<a@b.example>x", SP_SYNTAX },
	{ "param without space", "FROM:<a@b.example>SIZE=1", SP_SYNTAX },
	{ "domain starts with hyphen", "FROM:<a@-b.example>", SP_SYNTAX },
	{ "label ends with hyphen", "FROM:<a@b-.example>", SP_SYNTAX },
	{ "empty label", "FROM:<a@b..example>", SP_SYNTAX },
	{ "leading dot in domain", "FROM:<a@.b.example>", SP_SYNTAX },
	{ "trailing dot in domain", "FROM:<a@b.example.>", SP_SYNTAX },
	{ "underscore in domain", "FROM:<a@b_c.example>", SP_SYNTAX },
	{ "space in domain", "FROM:<a@b example>", SP_SYNTAX },
	{ "bad IPv4 literal", "FROM:<a@[192.0.2]>", SP_SYNTAX },
	{ "bad IPv6 literal", "FROM:<a@[IPv6:zz]>", SP_SYNTAX },
	{ "leading dot in local part", "FROM:<.a@b.example>", SP_SYNTAX },
	{ "trailing dot in local part", "FROM:<a.@b.example>", SP_SYNTAX },
	{ "double dot in local part", "FROM:<a..b@b.example>", SP_SYNTAX },
	{ "space in local part", "FROM:<a b@b.example>", SP_SYNTAX },
	{ "unterminated quote", "FROM:<\"ab@b.example>", SP_SYNTAX },
	{ "route without colon", "FROM:<@r1.example,a@b.example>",
	    SP_SYNTAX },
	{ "empty route domain", "FROM:<@:a@b.example>", SP_SYNTAX },
	{ "bad route domain", "FROM:<@-r.example:a@b.example>", SP_SYNTAX },
	{ "8-bit local part", "FROM:<\xc3\xa9@b.example>", SP_SYNTAX },
	{ "8-bit domain", "FROM:<a@\xc3\xa9.example>", SP_SYNTAX },
	{ "8-bit in quoted local part", "FROM:<\"\xc3\xa9\"@b.example>",
	    SP_SYNTAX },
	{ "control char in local part", "FROM:<a\x01@b.example>", SP_SYNTAX },
	{ "postmaster without domain is no sender", "FROM:<postmaster>",
	    SP_SYNTAX },

	{ "duplicate SIZE", "FROM:<a@b.example> SIZE=1 SIZE=2",
	    SP_PARAM_BAD },
	{ "duplicate BODY", "FROM:<a@b.example> BODY=7BIT BODY=7BIT",
	    SP_PARAM_BAD },
	{ "SIZE not a number", "FROM:<a@b.example> SIZE=abc", SP_PARAM_BAD },
	{ "SIZE negative", "FROM:<a@b.example> SIZE=-1", SP_PARAM_BAD },
	{ "SIZE empty", "FROM:<a@b.example> SIZE=", SP_PARAM_BAD },
	{ "SIZE without value", "FROM:<a@b.example> SIZE", SP_PARAM_BAD },
	{ "SIZE 20 digits", "FROM:<a@b.example> SIZE=99999999999999999999",
	    SP_PARAM_BAD },
	{ "SIZE over long long", "FROM:<a@b.example> SIZE=9999999999999999999",
	    SP_PARAM_BAD },
	{ "BODY=BINARYMIME", "FROM:<a@b.example> BODY=BINARYMIME",
	    SP_PARAM_BAD },
	{ "BODY without value", "FROM:<a@b.example> BODY", SP_PARAM_BAD },
	{ "param with bad keyword", "FROM:<a@b.example> S_ZE=1",
	    SP_PARAM_BAD },
	{ "unknown param", "FROM:<a@b.example> FOO=bar", SP_PARAM_UNKNOWN },
	{ "AUTH param", "FROM:<a@b.example> AUTH=<>", SP_PARAM_UNKNOWN },
	{ "SMTPUTF8", "FROM:<a@b.example> SMTPUTF8", SP_PARAM_UNKNOWN },
	{ "unknown after SIZE", "FROM:<a@b.example> SIZE=1 RET=HDRS",
	    SP_PARAM_UNKNOWN },
};

/* build - "FROM:<" local "@" domain ">" with generated parts */
static void
build(char *buf, size_t len, size_t local, size_t domain)
{
	size_t	i, off;

	off = (size_t)snprintf(buf, len, "FROM:<");
	for (i = 0; i < local; i++)
		buf[off++] = 'l';
	buf[off++] = '@';
	/* labels of 50: "xxxx...x." */
	for (i = 0; i < domain; i++)
		buf[off++] = (i % 51 == 50) ? '.' : 'd';
	if (buf[off - 1] == '.')
		buf[off - 1] = 'e';
	buf[off++] = '>';
	buf[off] = '\0';
}

static void
test_mail(void)
{
	const struct mail_case	*tc;
	struct smtp_mail	 m;
	enum sp_result		 r;
	char			 buf[1024];
	size_t			 i;

	for (i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		tc = &mail_cases[i];
		r = smtp_parse_mail(tc->args, &m);
		is_int(r, tc->want, "smtp_parse_mail: %s", tc->name);
		if (tc->want != SP_OK || r != SP_OK)
			continue;
		is_str(m.path.addr, tc->addr, "smtp_parse_mail: %s: address",
		    tc->name);
		is_int(m.path.domain, tc->domain, "smtp_parse_mail: %s: "
		    "domain offset", tc->name);
		is_int(m.size, tc->size, "smtp_parse_mail: %s: SIZE",
		    tc->name);
		is_int(m.body, tc->body, "smtp_parse_mail: %s: BODY",
		    tc->name);
	}

	/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 */
	build(buf, sizeof(buf), 64, 20);
	is_int(smtp_parse_mail(buf, &m), SP_OK, "local part of 64 octets");
	is_int(strlen(m.path.addr), 64 + 1 + 20, "  stored whole");
	build(buf, sizeof(buf), 65, 20);
	is_int(smtp_parse_mail(buf, &m), SP_SYNTAX,
	    "local part of 65 octets refused");
	build(buf, sizeof(buf), 1, 254);
	is_int(smtp_parse_mail(buf, &m), SP_OK, "path of 256 octets accepted");
	is_int(strlen(m.path.addr), 256, "  stored whole");
	build(buf, sizeof(buf), 2, 254);
	is_int(smtp_parse_mail(buf, &m), SP_SYNTAX,
	    "path of 257 octets refused");
	build(buf, sizeof(buf), 1, 256);
	is_int(smtp_parse_mail(buf, &m), SP_SYNTAX,
	    "domain of 256 octets refused");
	snprintf(buf, sizeof(buf), "FROM:<a@%0*d.example>", 64, 0);
	is_int(smtp_parse_mail(buf, &m), SP_SYNTAX,
	    "domain label of 64 octets refused");
	snprintf(buf, sizeof(buf), "FROM:<a@%0*d.example>", 63, 0);
	is_int(smtp_parse_mail(buf, &m), SP_OK,
	    "domain label of 63 octets accepted");
}

/* ----------------------------------------------------------------- RCPT */

static const struct {
	const char	*name;
	const char	*args;
	enum sp_result	 want;
	const char	*addr;
	size_t		 domain;
} rcpt_cases[] = {
	{ "plain", "TO:<c@d.example>", SP_OK, "c@d.example", 2 },
	{ "lower case to:", "to:<c@d.example>", SP_OK, "c@d.example", 2 },
	{ "postmaster without domain", "TO:<postmaster>", SP_OK, "postmaster",
	    0 },
	{ "Postmaster any case", "TO:<PostMaster>", SP_OK, "postmaster", 0 },
	{ "postmaster with domain", "TO:<postmaster@d.example>", SP_OK,
	    "postmaster@d.example", 11 },
	{ "source route", "TO:<@r.example:c@d.example>", SP_OK, "c@d.example",
	    2 },
	{ "source route of two", "TO:<@a.example,@b.example:c@d.example>",
	    SP_OK, "c@d.example", 2 },
	{ "null path refused", "TO:<>", SP_SYNTAX },
	{ "other local part without domain", "TO:<root>", SP_SYNTAX },
	{ "postmasterx without domain", "TO:<postmasterx>", SP_SYNTAX },
	{ "space after the colon", "TO: <c@d.example>", SP_SYNTAX },
	{ "no brackets", "TO:c@d.example", SP_SYNTAX },
	{ "FROM: instead of TO:", "FROM:<c@d.example>", SP_SYNTAX },
	{ "8-bit", "TO:<c@d\xe9.example>", SP_SYNTAX },
	{ "junk after path", "TO:<c@d.example>x", SP_SYNTAX },
	{ "NOTIFY is unknown", "TO:<c@d.example> NOTIFY=NEVER",
	    SP_PARAM_UNKNOWN },
	{ "SIZE is unknown on RCPT", "TO:<c@d.example> SIZE=10",
	    SP_PARAM_UNKNOWN },
	{ "ORCPT is unknown", "TO:<c@d.example> ORCPT=rfc822;c@d.example",
	    SP_PARAM_UNKNOWN },
};

static void
test_rcpt(void)
{
	struct smtp_path	p;
	enum sp_result		r;
	size_t			i;

	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		r = smtp_parse_rcpt(rcpt_cases[i].args, &p);
		is_int(r, rcpt_cases[i].want, "smtp_parse_rcpt: %s",
		    rcpt_cases[i].name);
		if (rcpt_cases[i].want != SP_OK || r != SP_OK)
			continue;
		is_str(p.addr, rcpt_cases[i].addr, "smtp_parse_rcpt: %s: "
		    "address", rcpt_cases[i].name);
		is_int(p.domain, rcpt_cases[i].domain, "smtp_parse_rcpt: %s: "
		    "domain offset", rcpt_cases[i].name);
		is_int(p.route, strncmp(rcpt_cases[i].args, "TO:<@", 5) == 0,
		    "smtp_parse_rcpt: %s: route flag", rcpt_cases[i].name);
	}
}

/* ------------------------------------------------------ DSN, SMTPUTF8 */

static const struct {
	const char	*name;
	int		 rcpt;		/* RCPT, else MAIL */
	unsigned int	 flags;
	const char	*args;
	enum sp_result	 want;
	const char	*kept;		/* parameters kept */
} ext_cases[] = {
	{ "RET and ENVID kept", 0, SP_DSN,
	    "FROM:<a@b.example> RET=HDRS ENVID=x+2By", SP_OK,
	    " RET=HDRS ENVID=x+2By" },
	{ "RET without DSN", 0, 0, "FROM:<a@b.example> RET=FULL",
	    SP_PARAM_UNKNOWN, "" },
	{ "RET twice", 0, SP_DSN, "FROM:<a@b.example> RET=FULL RET=HDRS",
	    SP_PARAM_BAD, NULL },
	{ "RET bad", 0, SP_DSN, "FROM:<a@b.example> RET=ALL", SP_PARAM_BAD,
	    NULL },
	{ "ENVID bad xtext", 0, SP_DSN, "FROM:<a@b.example> ENVID=a+zz",
	    SP_PARAM_BAD, NULL },
	{ "SMTPUTF8 and a UTF-8 sender", 0, SP_UTF8,
	    "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", SP_OK, "" },
	{ "UTF-8 sender without SMTPUTF8", 0, SP_UTF8,
	    "FROM:<j\xc3\xb6rg@b.example>", SP_SYNTAX, NULL },
	{ "SMTPUTF8 not announced", 0, 0, "FROM:<a@b.example> SMTPUTF8",
	    SP_PARAM_UNKNOWN, NULL },
	{ "bad UTF-8", 0, SP_UTF8, "FROM:<j\xc3@b.example> SMTPUTF8",
	    SP_SYNTAX, NULL },
	{ "NOTIFY and ORCPT kept", 1, SP_DSN,
	    "TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example",
	    SP_OK, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example" },
	{ "NOTIFY=NEVER", 1, SP_DSN, "TO:<c@d.example> NOTIFY=NEVER", SP_OK,
	    " NOTIFY=NEVER" },
	{ "NOTIFY NEVER with more", 1, SP_DSN,
	    "TO:<c@d.example> NOTIFY=NEVER,DELAY", SP_PARAM_BAD, NULL },
	{ "NOTIFY twice the same", 1, SP_DSN,
	    "TO:<c@d.example> NOTIFY=DELAY,DELAY", SP_PARAM_BAD, NULL },
	{ "ORCPT without type", 1, SP_DSN, "TO:<c@d.example> ORCPT=c@d",
	    SP_PARAM_BAD, NULL },
	{ "NOTIFY without DSN", 1, 0, "TO:<c@d.example> NOTIFY=NEVER",
	    SP_PARAM_UNKNOWN, NULL },
	{ "UTF-8 recipient", 1, SP_UTF8, "TO:<j\xc3\xb6rg@d\xc3\xa9.example>",
	    SP_OK, "" },
	{ "UTF-8 recipient without SMTPUTF8", 1, 0,
	    "TO:<j\xc3\xb6rg@d.example>", SP_SYNTAX, NULL },
};

static void
test_ext(void)
{
	struct smtp_mail	m;
	struct smtp_path	p;
	char			kept[SMTP_PARAMS_MAX];
	enum sp_result		r;
	size_t			i;

	for (i = 0; i < sizeof(ext_cases) / sizeof(ext_cases[0]); i++) {
		if (ext_cases[i].rcpt) {
			r = smtp_parse_rcpt_ext(ext_cases[i].args, &p,
			    ext_cases[i].flags, kept, sizeof(kept));
		} else {
			r = smtp_parse_mail_ext(ext_cases[i].args, &m,
			    ext_cases[i].flags);
			(void)strlcpy(kept, m.params, sizeof(kept));
		}
		is_int(r, ext_cases[i].want, "ext: %s", ext_cases[i].name);
		if (r == SP_OK && ext_cases[i].kept != NULL)
			is_str(kept, ext_cases[i].kept, "ext: %s: kept",
			    ext_cases[i].name);
	}
}

/* ----------------------------------------------------------------- data */

struct sink {
	char	*buf;
	size_t	 len, cap;
	int	 fail_after;	/* fail when len would exceed it, -1 never */
};

static int
sink_add(void *arg, const char *p, size_t n)
{
	struct sink	*s = arg;

	if (s->fail_after >= 0 && s->len + n > (size_t)s->fail_after)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

struct bytes {
	const char	*p;
	size_t		 n;
};

#define B(s)	{ (s), sizeof(s) - 1 }
#define TAIL	"\r\n.\r\n"

struct data_case {
	const char	*name;
	struct bytes	 in;
	int		 ret;		/* 1 end of data, 0 more needed */
	unsigned int	 flags;
	struct bytes	 stored;	/* exactly what the sink got */
	size_t		 end;		/* input used when ret == 1 */
	size_t		 maxline, maxsize;
};

#define MSG	"Subject: t\r\n\r\nfoo"
#define SMUGGLE(name, seq, fl) { "smuggling " name, B(MSG seq "bar" TAIL), 1, \
	fl, B(MSG seq "bar\r\n"), sizeof(MSG seq "bar" TAIL) - 1, 1000,	\
	100000 }

static const struct data_case data_cases[] = {
	{ "plain message", B("Subject: t\r\n\r\nbody\r\n.\r\n"), 1, 0,
	    B("Subject: t\r\n\r\nbody\r\n"), 23, 1000, 100000 },
	{ "dot-stuffed lines kept stuffed",
	    B("a\r\n..b\r\n...\r\n.\r\n"), 1, 0, B("a\r\n..b\r\n...\r\n"),
	    16, 1000, 100000 },
	{ "message starting with a stuffed dot", B("..x\r\n.\r\n"), 1, 0,
	    B("..x\r\n"), 8, 1000, 100000 },
	{ "empty message", B(".\r\n"), 1, 0, B(""), 3, 1000, 100000 },
	{ "one empty line", B("\r\n.\r\n"), 1, 0, B("\r\n"), 5, 1000,
	    100000 },
	{ "bytes after the end are not used", B("a\r\n.\r\nQUIT\r\n"), 1, 0,
	    B("a\r\n"), 6, 1000, 100000 },
	{ "no end yet", B("a\r\nb\r\n"), 0, 0, B("a\r\nb\r\n"), 0, 1000,
	    100000 },
	{ "dot at end held back", B("a\r\n."), 0, 0, B("a\r\n"), 0, 1000,
	    100000 },
	{ "dot CR at end held back", B("a\r\n.\r"), 0, 0, B("a\r\n"), 0, 1000,
	    100000 },
	{ "8-bit data passes", B("caf\xc3\xa9\r\n.\r\n"), 1, DS_8BIT,
	    B("caf\xc3\xa9\r\n"), 10, 1000, 100000 },
	{ "dot space is data", B("a\r\n. \r\n.\r\n"), 1, 0, B("a\r\n. \r\n"),
	    10, 1000, 100000 },

	SMUGGLE("\\n.\\n", "\n.\n", DS_BARE),
	SMUGGLE("\\n.\\r", "\n.\r", DS_BARE),
	SMUGGLE("\\r.\\n", "\r.\n", DS_BARE),
	SMUGGLE("\\r.\\r", "\r.\r", DS_BARE),
	SMUGGLE("\\n.\\r\\n", "\n.\r\n", DS_BARE),
	SMUGGLE("\\r.\\r\\n", "\r.\r\n", DS_BARE),
	SMUGGLE("\\r\\n\\0.\\r\\n", "\r\n\0.\r\n", DS_NUL),
	SMUGGLE("\\r\\n.\\r\\r\\n", "\r\n.\r\r\n", DS_BARE),
	SMUGGLE("\\r\\n.\\n", "\r\n.\n", DS_BARE),
	SMUGGLE("\\r\\n.\\r", "\r\n.\r", DS_BARE),
	SMUGGLE("\\r\\n.\\rX", "\r\n.\rX", DS_BARE),
	SMUGGLE("\\n\\n.\\n\\n", "\n\n.\n\n", DS_BARE),
	/* "\r\r\n.\r\n" holds a real CRLF.CRLF: it ends, flagged */
	{ "bare CR before a real end", B(MSG "\r\r\n.\r\nbar" TAIL), 1,
	    DS_BARE, B(MSG "\r\r\n"), sizeof(MSG "\r\r\n.\r\n") - 1, 1000,
	    100000 },
	{ "smuggling at the very start \\n.\\r\\n", B("\n.\r\nx" TAIL), 1,
	    DS_BARE, B("\n.\r\nx\r\n"), 10, 1000, 100000 },
	{ "smuggling .\\n at the start", B(".\nx" TAIL), 1, DS_BARE,
	    B(".\nx\r\n"), 8, 1000, 100000 },
	{ "NUL inside a line", B("a\0b" TAIL), 1, DS_NUL, B("a\0b\r\n"), 8,
	    1000, 100000 },

	/* maxline 10 octets incl. CRLF */
	{ "line of exactly maxline", B("12345678" TAIL), 1, 0,
	    B("12345678\r\n"), 13, 10, 100000 },
	{ "line of maxline+1", B("123456789" TAIL), 1, DS_LONGLINE,
	    B("123456789\r\n"), 14, 10, 100000 },
	/* RFC 5321 4.5.3.1.6: the transparency dot is not counted */
	{ "stuffed line of exactly maxline", B("..2345678" TAIL), 1, 0,
	    B("..2345678\r\n"), 14, 10, 100000 },
	{ "stuffed line of maxline+1", B("..23456789" TAIL), 1, DS_LONGLINE,
	    B("..23456789\r\n"), 15, 10, 100000 },
	{ "stuffed line, bare CR after the dot", B(".\r345678" TAIL), 1,
	    DS_BARE, B(".\r345678\r\n"), 13, 10, 100000 },
	{ "long line then short", B("1234567890abc\r\nok" TAIL), 1,
	    DS_LONGLINE, B("1234567890abc\r\nok\r\n"), 22, 10, 100000 },

	/* maxsize 20 */
	{ "size exactly maxsize", B("123456789012345678" TAIL), 1, 0,
	    B("123456789012345678\r\n"), 23, 1000, 20 },
};

static void
scan_all(const struct data_case *tc, int bytewise, int *ret, size_t *end,
    struct datascan *ds, struct sink *sk)
{
	size_t	off = 0, used, n;
	int	r = 0;

	smtp_data_init(ds, tc->maxline, tc->maxsize);
	memset(sk, 0, sizeof(*sk));
	sk->fail_after = -1;
	*end = 0;
	while (off < tc->in.n) {
		n = bytewise ? 1 : tc->in.n - off;
		used = (size_t)-1;
		r = smtp_data_scan(ds, tc->in.p + off, n, &used, sink_add, sk);
		if (r == -1 || used > n)
			break;
		off += used;
		if (r == 1)
			break;
	}
	*ret = r;
	*end = r == 1 ? off : 0;
}

static void
test_data(void)
{
	const struct data_case	*tc;
	struct datascan		 ds, ds1;
	struct sink		 sk, sk1;
	size_t			 i, end, end1;
	int			 ret, ret1;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		tc = &data_cases[i];
		scan_all(tc, 0, &ret, &end, &ds, &sk);
		is_int(ret, tc->ret, "data: %s: returns %d", tc->name,
		    tc->ret);
		is_int(ds.flags, tc->flags, "data: %s: flags", tc->name);
		is_mem(sk.buf, sk.len, tc->stored.p, tc->stored.n,
		    "data: %s: stored octets", tc->name);
		is_int(end, tc->end, "data: %s: ends at %zu", tc->name,
		    tc->end);

		scan_all(tc, 1, &ret1, &end1, &ds1, &sk1);
		is_int(ret1, tc->ret, "data: %s: byte-wise: returns %d",
		    tc->name, tc->ret);
		is_int(ds1.flags, tc->flags, "data: %s: byte-wise: flags",
		    tc->name);
		is_mem(sk1.buf, sk1.len, tc->stored.p, tc->stored.n,
		    "data: %s: byte-wise: stored octets", tc->name);
		is_int(end1, tc->end, "data: %s: byte-wise: ends at %zu",
		    tc->name, tc->end);
		free(sk.buf);
		free(sk1.buf);
	}
}

/* every split point of every case gives the same result */
static void
test_data_splits(void)
{
	const struct data_case	*tc;
	struct datascan		 ds;
	struct sink		 sk;
	size_t			 i, cut, off, used, n, bad = 0;
	int			 r;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		tc = &data_cases[i];
		for (cut = 1; cut < tc->in.n; cut++) {
			smtp_data_init(&ds, tc->maxline, tc->maxsize);
			memset(&sk, 0, sizeof(sk));
			sk.fail_after = -1;
			off = 0;
			r = 0;
			while (off < tc->in.n) {
				n = off < cut ? cut - off : tc->in.n - off;
				r = smtp_data_scan(&ds, tc->in.p + off, n,
				    &used, sink_add, &sk);
				off += used;
				if (r != 0)
					break;
			}
			if (r != tc->ret || ds.flags != tc->flags ||
			    sk.len != tc->stored.n || (sk.len > 0 &&
			    memcmp(sk.buf, tc->stored.p, sk.len) != 0) ||
			    (r == 1 && off != tc->end)) {
				if (bad++ < 5)
					printf("# %s: differs when split at "
					    "%zu\n", tc->name, cut);
			}
			free(sk.buf);
		}
	}
	is_int(bad, 0, "data: every case split at every point gives the "
	    "same result");
}

/* over max_message_size: flagged, read to the end, never stored past */
static void
test_data_toobig(void)
{
	static const char	 in[] = "12345678\r\n12345678\r\n12345678\r\n"
	    "12345678\r\n.\r\n";
	struct datascan		 ds;
	struct sink		 sk;
	size_t			 used, off, n = sizeof(in) - 1;
	int			 r, bytewise;

	for (bytewise = 0; bytewise <= 1; bytewise++) {
		smtp_data_init(&ds, 1000, 25);
		memset(&sk, 0, sizeof(sk));
		sk.fail_after = -1;
		off = 0;
		r = 0;
		while (off < n) {
			r = smtp_data_scan(&ds, in + off, bytewise ? 1 :
			    n - off, &used, sink_add, &sk);
			off += used;
			if (r != 0)
				break;
		}
		is_int(r, 1, "too big%s: read to the end", bytewise ?
		    " byte-wise" : "");
		is_int(off, n, "too big%s: ends at the real end", bytewise ?
		    " byte-wise" : "");
		is_int(ds.flags, DS_TOOBIG, "too big%s: DS_TOOBIG", bytewise ?
		    " byte-wise" : "");
		ok(sk.len <= 25, "too big%s: nothing stored past the limit "
		    "(%zu stored)", bytewise ? " byte-wise" : "", sk.len);
		ok(sk.len == 0 || memcmp(sk.buf, in, sk.len) == 0,
		    "too big%s: what was stored is the start of the message",
		    bytewise ? " byte-wise" : "");
		is_int(ds.size, n - 3, "too big%s: size counts every octet",
		    bytewise ? " byte-wise" : "");
		free(sk.buf);
	}
}

/* a failing sink: -1, never a silent loss */
static void
test_data_sink_error(void)
{
	static const char	 in[] = "abcdef\r\n.\r\n";
	struct datascan		 ds;
	struct sink		 sk;
	size_t			 used = 12345;
	int			 r;

	smtp_data_init(&ds, 1000, 100000);
	memset(&sk, 0, sizeof(sk));
	sk.fail_after = 0;
	r = smtp_data_scan(&ds, in, sizeof(in) - 1, &used, sink_add, &sk);
	is_int(r, -1, "sink failure returns -1");
	/* the sink fails on the first store, "abcdef\r\n" before the
	 * '.': those 8 octets are used, the caller scans on from there */
	is_int((long)used, 8, "sink failure reports the input used (8)");
	free(sk.buf);
}

int
main(void)
{
	test_verbs();
	test_helo();
	test_mail();
	test_rcpt();
	test_ext();
	test_data();
	test_data_splits();
	test_data_toobig();
	test_data_sink_error();
	return tap_done();
}
