/*
 * test_xclient - xtext and the XCLIENT/XFORWARD commands built from an
 * upstream's EHLO reply, without sockets.
 */
#include <stdio.h>
#include <string.h>

#include "xclient.h"
#include "tap.h"

#define EHLO_BOTH							\
	"250-mx.example\r\n250-PIPELINING\r\n"				\
	"250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN\r\n"	\
	"250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"	\
	"250 8BITMIME\r\n"
#define EHLO_XF								\
	"250-mx.example\r\n250-XFORWARD NAME ADDR PROTO HELO IDENT\r\n"	\
	"250 8BITMIME\r\n"
#define EHLO_XC_SOME	"250-mx.example\r\n250 XCLIENT ADDR HELO\r\n"
#define EHLO_NONE	"250-mx.example\r\n250 XCLIENTS ADDR\r\n"

static const struct {
	const char	*in, *out;
} xt[] = {
	{ "client.example", "client.example" },
	{ "a+b=c", "a+2Bb+3Dc" },
	{ "sp ace", "sp+20ace" },
	{ "\xc3\xa9", "+C3+A9" },
	{ "[UNAVAILABLE]", "[UNAVAILABLE]" },
	{ "", "" },
};

static const struct {
	const char		*name;
	enum upstream_client_info mode;
	const char		*ehlo;
	int			 v6, port, esmtp;
	const char		*helo, *hostname;
	enum xc_kind		 kind;
	const char		*cmd;
} cases[] = {
	{ "auto prefers XCLIENT", UCI_AUTO, EHLO_BOTH, 0, 4321, 1,
	    "client.example", "c.example", XC_XCLIENT,
	    "XCLIENT NAME=c.example ADDR=192.0.2.1 PORT=4321 "
	    "HELO=client.example PROTO=ESMTP\r\n" },
	{ "unknown name and port", UCI_AUTO, EHLO_BOTH, 0, 0, 0, "", "",
	    XC_XCLIENT, "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 "
	    "PORT=[UNAVAILABLE] HELO=[UNAVAILABLE] PROTO=SMTP\r\n" },
	{ "xforward forced", UCI_XFORWARD, EHLO_BOTH, 0, 25, 1, "h", "",
	    XC_XFORWARD, "XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.1 "
	    "PORT=25 HELO=h PROTO=ESMTP IDENT=sess1\r\n" },
	{ "auto without XCLIENT: XFORWARD, announced attributes only",
	    UCI_AUTO, EHLO_XF, 0, 25, 1, "h", "n.example", XC_XFORWARD,
	    "XFORWARD NAME=n.example ADDR=192.0.2.1 HELO=h PROTO=ESMTP "
	    "IDENT=sess1\r\n" },
	{ "xclient forced, upstream has only XFORWARD", UCI_XCLIENT, EHLO_XF,
	    0, 25, 1, "h", "", XC_NONE, NULL },
	{ "only ADDR and HELO announced", UCI_AUTO, EHLO_XC_SOME, 1, 25, 1,
	    "h+x", "", XC_XCLIENT, "XCLIENT ADDR=IPV6:2001:db8::1 "
	    "HELO=h+2Bx\r\n" },
	{ "off", UCI_OFF, EHLO_BOTH, 0, 25, 1, "h", "", XC_NONE, NULL },
	{ "a longer keyword is not XCLIENT", UCI_AUTO, EHLO_NONE, 0, 25, 1,
	    "h", "", XC_NONE, NULL },
};

int
main(void)
{
	struct client_info	 ci;
	char			 buf[1024];
	enum xc_kind		 k;
	size_t			 i;

	for (i = 0; i < sizeof(xt) / sizeof(xt[0]); i++) {
		(void)xtext_encode(xt[i].in, buf, sizeof(buf));
		is_str(buf, xt[i].out, "xtext_encode %zu", i);
	}
	is_int(xtext_encode("abcdef", buf, 4), 0, "xtext_encode: too small");
	is_str(buf, "", "xtext_encode: too small gives \"\"");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ci, 0, sizeof(ci));
		(void)strlcpy(ci.addr, cases[i].v6 ? "2001:db8::1" :
		    "192.0.2.1", sizeof(ci.addr));
		ci.v6 = cases[i].v6;
		ci.port = cases[i].port;
		ci.esmtp = cases[i].esmtp;
		ci.helo = cases[i].helo;
		ci.ident = "sess1";
		(void)strlcpy(ci.name, cases[i].hostname, sizeof(ci.name));
		ci.named = 1;
		buf[0] = '\0';
		k = xclient_command(cases[i].mode, cases[i].ehlo, &ci, buf,
		    sizeof(buf));
		is_int(k, cases[i].kind, "%s: kind", cases[i].name);
		if (cases[i].cmd != NULL)
			is_str(buf, cases[i].cmd, "%s: command", cases[i].name);
	}
	memset(&ci, 0, sizeof(ci));
	(void)strlcpy(ci.addr, "192.0.2.1", sizeof(ci.addr));
	ci.helo = "h";
	is_int(xclient_command(UCI_AUTO, EHLO_BOTH, &ci, buf, 20), XC_NONE,
	    "a command that does not fit is not sent");
	return tap_done();
}
