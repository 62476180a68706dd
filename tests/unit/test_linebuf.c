/*
 * test_linebuf - the bounded line reader: strict CRLF framing for
 * clients, lenient framing for upstream replies, over-long lines
 * discarded whole, bare CR/LF and NUL reported, never repaired.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "linebuf.h"
#include "tap.h"

struct bytes {
	const char	*p;
	size_t		 n;
};

#define B(s)	{ (s), sizeof(s) - 1 }
#define MAXFEEDS 6

static const struct lb_case {
	const char	*name;
	int		 lenient;
	size_t		 maxlen;
	struct bytes	 feeds[MAXFEEDS];
	const char	*want;		/* events, "|" between feeds */
} cases[] = {
	/* strict mode (client side), maxlen 10 octets incl. CRLF */
	{ "crlf line", 0, 10, { B("abc\r\n") }, "LINE(abc) NEED" },
	{ "two lines in one feed", 0, 10, { B("abc\r\ndef\r\n") },
	    "LINE(abc) LINE(def) NEED" },
	{ "empty line", 0, 10, { B("\r\n") }, "LINE() NEED" },
	{ "exactly max length accepted", 0, 10, { B("12345678\r\n") },
	    "LINE(12345678) NEED" },
	{ "max+1 refused, next line read", 0, 10,
	    { B("123456789\r\nnext\r\n") }, "TOOLONG LINE(next) NEED" },
	{ "max+1 split before LF", 0, 10, { B("123456789\r"), B("\nok\r\n") },
	    "NEED | TOOLONG LINE(ok) NEED" },
	/* found by fuzz_linebuf: the verdict on a CR in the last octet
	 * allowed must not depend on where the client's writes split */
	{ "bare CR as last allowed octet, one feed", 0, 10,
	    { B("123456789\rx\r\nok\r\n") }, "BARE" },
	{ "bare CR as last allowed octet, split after it", 0, 10,
	    { B("123456789\r"), B("x\r\nok\r\n") }, "NEED | BARE" },
	{ "much too long in one feed", 0, 10,
	    { B("1234567890abcdefghij\r\nok\r\n") }, "TOOLONG LINE(ok) NEED" },
	{ "over-long split across feeds", 0, 10,
	    { B("1234567890"), B("abcdef"), B("ghi\r"), B("\nok\r\n") },
	    "NEED | NEED | NEED | TOOLONG LINE(ok) NEED" },
	{ "over-long, CRLF in its own feed", 0, 10,
	    { B("1234567890abc"), B("\r\n"), B("ok\r\n") },
	    "NEED | TOOLONG NEED | LINE(ok) NEED" },
	{ "over-long, lone CR inside is skipped", 0, 10,
	    { B("1234567890a\rb\r\nok\r\n") }, "TOOLONG LINE(ok) NEED" },
	{ "two over-long lines", 0, 10,
	    { B("1234567890ab\r\n1234567890ab\r\nok\r\n") },
	    "TOOLONG TOOLONG LINE(ok) NEED" },
	{ "bare CR", 0, 10, { B("ab\rcd\r\n") }, "BARE" },
	{ "bare LF", 0, 10, { B("ab\ncd\r\n") }, "BARE" },
	{ "bare LF at start", 0, 10, { B("\n") }, "BARE" },
	{ "CR CR LF", 0, 10, { B("ab\r\r\n") }, "BARE" },
	{ "bare LF after a good line", 0, 10, { B("ok\r\nx\ny\r\n") },
	    "LINE(ok) BARE" },
	{ "CR at buffer end, LF in next feed", 0, 10, { B("abc\r"), B("\n") },
	    "NEED | LINE(abc) NEED" },
	{ "CR at buffer end, then not LF", 0, 10, { B("abc\r"), B("x\r\n") },
	    "NEED | BARE" },
	{ "exactly max, CR at buffer end", 0, 10,
	    { B("12345678\r"), B("\n") }, "NEED | LINE(12345678) NEED" },
	{ "NUL", 0, 10, { B("a\0b\r\n") }, "NUL" },
	{ "NUL at start", 0, 10, { B("\0\r\n") }, "NUL" },
	{ "partial line needs more", 0, 10, { B("abc") }, "NEED" },
	{ "partial then rest", 0, 10, { B("abc"), B("def\r\n") },
	    "NEED | LINE(abcdef) NEED" },
	{ "one byte at a time", 0, 10,
	    { B("a"), B("b"), B("\r"), B("\n"), B("c") },
	    "NEED | NEED | NEED | LINE(ab) NEED | NEED" },
	{ "8-bit bytes are data", 0, 10, { B("\xc3\xa9t\xc3\xa9\r\n") },
	    "LINE(\\xc3\\xa9t\\xc3\\xa9) NEED" },

	/* lenient mode (upstream replies) */
	{ "lenient: LF alone", 1, 10, { B("abc\n") }, "LINE(abc) NEED" },
	{ "lenient: CRLF stripped", 1, 10, { B("abc\r\n") },
	    "LINE(abc) NEED" },
	{ "lenient: mixed endings", 1, 10, { B("a\nb\r\nc\n") },
	    "LINE(a) LINE(b) LINE(c) NEED" },
	{ "lenient: CR inside kept", 1, 10, { B("a\rb\n") },
	    "LINE(a\\rb) NEED" },
	{ "lenient: empty line", 1, 10, { B("\n") }, "LINE() NEED" },
	{ "lenient: exactly max with LF", 1, 10, { B("123456789\n") },
	    "LINE(123456789) NEED" },
	{ "lenient: exactly max with CRLF", 1, 10, { B("12345678\r\n") },
	    "LINE(12345678) NEED" },
	{ "lenient: max+1 refused, next read", 1, 10,
	    { B("1234567890\nok\n") }, "TOOLONG LINE(ok) NEED" },
	{ "lenient: over-long across feeds", 1, 10,
	    { B("1234567890ab"), B("cd\n250 ok\n") },
	    "NEED | TOOLONG LINE(250 ok) NEED" },
	{ "lenient: CR then LF in next feed", 1, 10, { B("abc\r"), B("\n") },
	    "NEED | LINE(abc) NEED" },
};

/* ev_add - append one event, control octets escaped */
static void
ev_add(char *ev, size_t evlen, const char *what, const char *line,
    size_t len)
{
	size_t	i;
	char	tmp[16];

	if (ev[0] != '\0' && ev[strlen(ev) - 1] != ' ')
		strlcat(ev, " ", evlen);
	strlcat(ev, what, evlen);
	if (line == NULL)
		return;
	strlcat(ev, "(", evlen);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\r')
			snprintf(tmp, sizeof(tmp), "\\r");
		else if (c == '\n')
			snprintf(tmp, sizeof(tmp), "\\n");
		else if (c < 32 || c > 126)
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else
			snprintf(tmp, sizeof(tmp), "%c", c);
		strlcat(ev, tmp, evlen);
	}
	strlcat(ev, ")", evlen);
}

static void
run_case(const struct lb_case *tc)
{
	struct linebuf	 lb;
	char		 ev[512], *line;
	size_t		 len, i;
	int		 stop = 0, nl_ok = 1;
	enum lb_result	 r;

	if (linebuf_init(&lb, 64, tc->lenient) == -1) {
		ok(0, "%s: linebuf_init", tc->name);
		return;
	}
	ev[0] = '\0';
	for (i = 0; i < MAXFEEDS && tc->feeds[i].p != NULL && !stop; i++) {
		if (i > 0)
			strlcat(ev, " | ", sizeof(ev));
		if (linebuf_feed(&lb, tc->feeds[i].p, tc->feeds[i].n) == -1) {
			ev_add(ev, sizeof(ev), "FEEDFAIL", NULL, 0);
			break;
		}
		for (;;) {
			line = NULL;
			len = 0;
			r = linebuf_getline(&lb, tc->maxlen, &line, &len);
			if (r == LB_LINE) {
				if (line[len] != '\0')
					nl_ok = 0;
				ev_add(ev, sizeof(ev), "LINE", line, len);
				continue;
			}
			if (r == LB_NEED) {
				ev_add(ev, sizeof(ev), "NEED", NULL, 0);
				break;
			}
			if (r == LB_TOOLONG) {
				ev_add(ev, sizeof(ev), "TOOLONG", NULL, 0);
				continue;
			}
			ev_add(ev, sizeof(ev), r == LB_BARE ? "BARE" :
			    r == LB_NUL ? "NUL" : "???", NULL, 0);
			stop = 1;	/* the session closes here */
			break;
		}
	}
	is_str(ev, tc->want, "%s", tc->name);
	ok(nl_ok, "%s: lines are NUL-terminated", tc->name);
	linebuf_free(&lb);
}

/* a line of n octets: n - 2 letters and CRLF */
static char *
mkline(size_t n)
{
	char	*s = malloc(n + 1);

	memset(s, 'x', n - 2);
	memcpy(s + n - 2, "\r\n", 3);
	return s;
}

static void
test_default_limit(void)
{
	struct linebuf	 lb;
	char		*s, *line;
	size_t		 len;

	/* the real command limit: 512 octets including CRLF */
	linebuf_init(&lb, 2048, 0);
	s = mkline(512);
	linebuf_feed(&lb, s, 512);
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_LINE,
	    "512-octet command line accepted at max_command_line 512");
	is_int(len, 510, "its length without CRLF");
	free(s);
	s = mkline(513);
	linebuf_feed(&lb, s, 513);
	linebuf_feed(&lb, "QUIT\r\n", 6);
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_TOOLONG,
	    "513-octet command line refused");
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_LINE,
	    "next line after the refused one");
	is_str(line, "QUIT", "next line is read intact");
	free(s);

	/* a 5000-octet line through a 2048-octet buffer, in pieces */
	linebuf_reset(&lb);
	s = mkline(5000);
	is_int(linebuf_feed(&lb, s, 2000), 0, "feed 2000 octets");
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_NEED,
	    "over-long line: need more");
	is_int(linebuf_pending(&lb), 0, "discarded octets are not kept");
	is_int(linebuf_feed(&lb, s + 2000, 2000), 0, "feed 2000 more");
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_NEED,
	    "still need more");
	is_int(linebuf_feed(&lb, s + 4000, 1000), 0, "feed the rest");
	linebuf_feed(&lb, "NOOP\r\n", 6);
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_TOOLONG,
	    "5000-octet line refused once");
	is_int(linebuf_getline(&lb, 512, &line, &len), LB_LINE,
	    "then the next line");
	is_str(line, "NOOP", "next line intact after a long one");
	free(s);
	linebuf_free(&lb);
}

static void
test_buffer_ops(void)
{
	struct linebuf	 lb;
	char		*line;
	size_t		 len;

	linebuf_init(&lb, 16, 0);
	is_int(linebuf_pending(&lb), 0, "empty buffer: nothing pending");
	is_int(linebuf_feed(&lb, "abcdefgh", 8), 0, "feed 8");
	is_int(linebuf_pending(&lb), 8, "8 pending");
	is_mem(linebuf_data(&lb), 8, "abcdefgh", 8, "data is what was fed");
	linebuf_consume(&lb, 3);
	is_int(linebuf_pending(&lb), 5, "consume 3: 5 pending");
	is_mem(linebuf_data(&lb), 5, "defgh", 5, "data starts after them");
	is_int(linebuf_feed(&lb, "ijklmnop", 8), 0,
	    "feed 8 more: fits after compaction");
	is_int(linebuf_pending(&lb), 13, "13 pending");
	is_mem(linebuf_data(&lb), 13, "defghijklmnop", 13,
	    "data in order after compaction");
	is_int(linebuf_feed(&lb, "qrst", 4), -1,
	    "feed beyond the buffer size refused");
	is_int(linebuf_pending(&lb), 13, "refused feed adds nothing");
	linebuf_consume(&lb, 100);
	is_int(linebuf_pending(&lb), 0, "consume more than pending: empty");
	is_int(linebuf_feed(&lb, "0123456789abcdef", 16), 0,
	    "whole buffer usable again");
	linebuf_reset(&lb);
	is_int(linebuf_pending(&lb), 0, "reset empties the buffer");

	/* a line, then data left for the caller (message data after DATA) */
	linebuf_feed(&lb, "DATA\r\nSubj", 10);
	is_int(linebuf_getline(&lb, 10, &line, &len), LB_LINE, "DATA line");
	is_int(len, 4, "DATA length");
	is_int(linebuf_pending(&lb), 4, "rest stays pending");
	is_mem(linebuf_data(&lb), 4, "Subj", 4, "rest is the data");

	/* reset also forgets a line being discarded */
	linebuf_reset(&lb);
	linebuf_feed(&lb, "0123456789ab", 12);
	is_int(linebuf_getline(&lb, 10, &line, &len), LB_NEED,
	    "over-long line being skipped");
	linebuf_reset(&lb);
	linebuf_feed(&lb, "ok\r\n", 4);
	is_int(linebuf_getline(&lb, 10, &line, &len), LB_LINE,
	    "after reset the next line is a line");
	is_str(line, "ok", "and intact");
	linebuf_free(&lb);
}

/* linebuf_rcvtimeo and linebuf_read on a socket: a bounded blocking read */
static void
test_rcvtimeo(void)
{
	struct linebuf	 lb;
	struct timeval	 tv;
	struct timespec	 t0, t1;
	socklen_t	 tlen = sizeof(tv);
	ssize_t		 n;
	double		 took;
	int		 sv[2], cur = 0, e;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 ||
	    linebuf_init(&lb, 64, 0) == -1) {
		ok(0, "socketpair, linebuf_init");
		return;
	}
	errno = 0;
	is_int(linebuf_rcvtimeo(sv[0], 0, &cur), -1, "rcvtimeo 0 refused");
	is_int(errno, EINVAL, "with EINVAL");
	is_int(cur, 0, "nothing in force");
	is_int(linebuf_rcvtimeo(sv[0], 1, &cur), 0, "rcvtimeo 1 s");
	is_int(cur, 1, "1 s in force");
	tv.tv_sec = 0;
	(void)getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &tlen);
	is_int((int)tv.tv_sec, 1, "SO_RCVTIMEO says 1 s");
	cur = 1;	/* the same value again: no system call, closed fd or not */
	is_int(linebuf_rcvtimeo(-1, 1, &cur), 0, "an unchanged value is kept");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = linebuf_read(&lb, sv[0]);
	e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	is_int((int)n, -1, "a silent peer: the read times out");
	ok(e == EAGAIN || e == EWOULDBLOCK, "with EAGAIN");
	ok(took >= 0.9 && took < 10, "after about 1 s (%.2f s)", took);

	if (write(sv[1], "x\r\n", 3) != 3)
		ok(0, "write");
	is_int((int)linebuf_read(&lb, sv[0]), 3, "bytes waiting are read");
	close(sv[1]);
	is_int((int)linebuf_read(&lb, sv[0]), 0, "then end of file");
	close(sv[0]);
	linebuf_free(&lb);
}

int
main(void)
{
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_default_limit();
	test_buffer_ops();
	test_rcvtimeo();
	return tap_done();
}
