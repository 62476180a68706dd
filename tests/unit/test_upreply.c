/*
 * test_upreply - the upstream's replies made into the client's answer:
 * always complete (the final line kept), every line at most 512 octets,
 * the whole bounded, text cleaned; and the end-of-data answer from the
 * recipients' replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upreply.h"
#include "tap.h"

static const struct reply_case {
	const char	*name;
	const char	*lines[6];	/* fed in order, NULL ends */
	int		 want;		/* upreply_add of the last line */
	const char	*text;		/* the reply, when complete */
} cases[] = {
	{ "one line", { "250 2.0.0 OK" }, 1, "250 2.0.0 OK\r\n" },
	{ "code alone", { "354" }, 1, "354\r\n" },
	{ "multi-line", { "250-a", "250-b", "250 c" }, 1,
	    "250-a\r\n250-b\r\n250 c\r\n" },
	{ "continuation not yet ended", { "250-a", "250-b" }, 0, "" },
	{ "bare code as continuation", { "250-", "250 end" }, 1,
	    "250-\r\n250 end\r\n" },
	{ "code changes", { "250-a", "251 b" }, -1, NULL },
	{ "not a reply", { "hello" }, -1, NULL },
	{ "code out of range", { "650 x" }, -1, NULL },
	{ "bad separator", { "250x" }, -1, NULL },
	{ "short", { "25" }, -1, NULL },
	{ "control octets cleaned", { "550 5.1.1 a\rb\x01" "c\td" }, 1,
	    "550 5.1.1 a?b?c d\r\n" },
	{ "8-bit cleaned", { "550 5.1.1 \xc3\xa9t\xc3\xa9" }, 1,
	    "550 5.1.1 ??t??\r\n" },
};

static void
test_cases(void)
{
	struct up_reply	 r;
	size_t		 i, j;
	int		 got = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		upreply_init(&r);
		for (j = 0; j < 6 && cases[i].lines[j] != NULL; j++)
			got = upreply_add(&r, cases[i].lines[j],
			    strlen(cases[i].lines[j]));
		is_int(got, cases[i].want, "%s", cases[i].name);
		if (cases[i].want == 1) {
			is_str(r.text, cases[i].text, "%s: text",
			    cases[i].name);
			is_int(r.len, strlen(cases[i].text), "%s: len",
			    cases[i].name);
		}
	}
	upreply_init(&r);
	(void)upreply_add(&r, "250 ok", 6);
	is_int(upreply_add(&r, "250 again", 9), -1,
	    "nothing after the final line");
}

/* check_whole - r is one complete reply: lines, codes, bounds */
static int
check_whole(const struct up_reply *r, int code)
{
	const char	*p = r->text, *e = r->text + r->len, *eol;
	char		 sep;

	if (r->len >= sizeof(r->text) || r->len < 5 || strlen(r->text) !=
	    r->len || e[-2] != '\r' || e[-1] != '\n')
		return 0;
	while (p < e) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			return 0;
		if (eol + 2 - p > UP_REPLY_LINE || eol - p < 3 ||
		    atoi(p) != code)
			return 0;
		sep = eol - p > 3 ? p[3] : ' ';
		if ((eol + 2 == e) != (sep == ' ') || (sep != ' ' &&
		    sep != '-'))
			return 0;
		p = eol + 2;
	}
	return 1;
}

static void
test_long(void)
{
	struct up_reply	 r;
	char		 line[4096];
	size_t		 i, n;
	int		 got = 0;

	/* 64 KiB in 100-octet lines, the final one distinct */
	upreply_init(&r);
	for (i = 0; i < 655; i++) {
		n = (size_t)snprintf(line, sizeof(line), "250-%095zu", i);
		got = upreply_add(&r, line, n);
	}
	is_int(got, 0, "long reply: not complete before its final line");
	got = upreply_add(&r, "250 2.0.0 Ok: queued as LAST", 28);
	is_int(got, 1, "long reply: complete");
	ok(check_whole(&r, 250), "long reply: one whole reply");
	ok(r.len + 1 <= UP_REPLY_MAX, "long reply: bounded (%zu)", r.len);
	ok(strstr(r.text, "250 2.0.0 Ok: queued as LAST\r\n") != NULL &&
	    strcmp(r.text + r.len - 30, "250 2.0.0 Ok: queued as LAST\r\n") ==
	    0, "long reply: the final line kept, last");
	ok(strncmp(r.text, "250-00000", 9) == 0,
	    "long reply: the first line kept, first");
	is_int(r.lines, 656, "long reply: every line counted");
	ok(r.dropped > 0 && r.dropped < 656, "long reply: middle lines "
	    "dropped (%zu)", r.dropped);

	/* one line of 3000 octets: cut to 512 with its CRLF */
	memset(line, 'x', sizeof(line));
	memcpy(line, "550 5.7.1 ", 10);
	upreply_init(&r);
	is_int(upreply_add(&r, line, 3000), 1, "over-long line: complete");
	is_int(r.len, UP_REPLY_LINE, "over-long line: cut to 512 octets");
	ok(check_whole(&r, 550), "over-long line: one whole reply");

	/* many over-long continuation lines and an over-long final one */
	upreply_init(&r);
	line[3] = '-';
	for (i = 0; i < 100; i++)
		(void)upreply_add(&r, line, 3000);
	line[3] = ' ';
	is_int(upreply_add(&r, line, 3000), 1, "over-long lines: complete");
	ok(check_whole(&r, 550), "over-long lines: one whole reply");
	ok(r.len < UP_REPLY_MAX, "over-long lines: bounded (%zu)", r.len);
}

static void
test_rcpts(void)
{
	struct up_reply	 f5, f4, none, ans;

	upreply_init(&none);
	upreply_set(&f5, "550 5.1.1 No such user");
	upreply_set(&f4, "452 4.2.2 Mailbox full");

	is_int(upreply_rcpts(3, 3, &none, &none, &ans), UP_RCPTS_ALL_OK,
	    "rcpts: all accepted");
	is_int(upreply_rcpts(0, 2, &f5, &none, &ans), UP_RCPTS_REFUSED,
	    "rcpts: all 5xx");
	is_str(ans.text, "550 5.1.1 No such user\r\n",
	    "rcpts: all 5xx: the first 5xx");
	is_int(upreply_rcpts(0, 2, &f5, &f4, &ans), UP_RCPTS_REFUSED,
	    "rcpts: 5xx and 4xx");
	is_str(ans.text, "452 4.2.2 Mailbox full\r\n",
	    "rcpts: 5xx and 4xx: a 4xx, never a bounce");
	is_int(upreply_rcpts(0, 1, &none, &f4, &ans), UP_RCPTS_REFUSED,
	    "rcpts: all 4xx");
	is_int(ans.code, 452, "rcpts: all 4xx: the first 4xx");
	is_int(upreply_rcpts(1, 3, &f5, &f4, &ans), UP_RCPTS_PARTIAL,
	    "rcpts: some accepted");
	is_str(ans.text, "451 4.3.0 Try again later\r\n",
	    "rcpts: some accepted: 451 4.3.0");
	is_int(upreply_rcpts(1, 2, &f5, &none, &ans), UP_RCPTS_PARTIAL,
	    "rcpts: some accepted, the rest 5xx");
	is_int(ans.code, 451, "rcpts: some accepted, the rest 5xx: 451");
}

int
main(void)
{
	test_cases();
	test_long();
	test_rcpts();
	return tap_done();
}
