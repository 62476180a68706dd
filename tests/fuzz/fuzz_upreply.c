/*
 * fuzz_upreply - the upstream reply parser: octets as an upstream might
 * send them, framed by the lenient line reader as upstream.c does, each
 * line given to upreply_add.  Every reply it calls complete must be one
 * whole SMTP reply that a client can read: every line of the same code,
 * "DDD-" but the last, "DDD " or "DDD" last, each at most 512 octets
 * with CRLF, printable, the whole under UP_REPLY_MAX, and its final line
 * the upstream's final line (cleaned and cut, never dropped).
 *
 * Input: the octets, fed in chunks whose sizes byte 0 seeds.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"
#include "upreply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define LINE_MAX_UP	2048	/* upstream.c's UP_LINE_MAX */

/* check - r is one complete reply whose last line comes from last */
static void
check(const struct up_reply *r, const char *last, size_t lastlen)
{
	const char	*p = r->text, *e = r->text + r->len, *eol, *fin = NULL;
	size_t		 i, n, lines = 0;

	if (!r->done || r->len >= sizeof(r->text) || r->len < 5 ||
	    strlen(r->text) != r->len || e[-2] != '\r' || e[-1] != '\n')
		abort();
	while (p < e) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			abort();
		n = (size_t)(eol - p);
		if (n + 2 > UP_REPLY_LINE || n < 3 || (p[0] - '0') * 100 +
		    (p[1] - '0') * 10 + (p[2] - '0') != r->code)
			abort();
		for (i = 0; i < n; i++)
			if (!isprint((unsigned char)p[i]))
				abort();
		if (eol + 2 == e) {
			if (n > 3 && p[3] != ' ')
				abort();
			fin = p;
		} else if (n < 4 || p[3] != '-')
			abort();
		lines++;
		p = eol + 2;
	}
	if (lines + r->dropped != r->lines || fin == NULL)
		abort();
	/* the final line is the upstream's, cut to 510 octets */
	n = lastlen > UP_REPLY_LINE - 2 ? UP_REPLY_LINE - 2 : lastlen;
	if ((size_t)(e - 2 - fin) != n)
		abort();
	for (i = 0; i < n; i++)
		if (isprint((unsigned char)last[i]) && last[i] != ' ' &&
		    fin[i] != last[i])
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linebuf	 lb;
	struct up_reply	 r;
	char		*line;
	size_t		 i = 1, n, len;
	unsigned int	 seed;
	int		 got;

	if (size < 1)
		return 0;
	seed = data[0];
	if (linebuf_init(&lb, 8192, 1) == -1)
		abort();
	upreply_init(&r);
	while (i < size) {
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 700;
		if (n > size - i)
			n = size - i;
		if (linebuf_feed(&lb, data + i, n) == -1)
			abort();	/* drained below: always room */
		i += n;
		for (;;) {
			switch (linebuf_getline(&lb, LINE_MAX_UP, &line,
			    &len)) {
			case LB_LINE:
				break;
			case LB_NEED:
				goto more;
			default:
				upreply_init(&r);	/* unavailable */
				continue;
			}
			got = upreply_add(&r, line, len);
			if (got == 1) {
				check(&r, line, len);
				upreply_init(&r);
			} else if (got == -1)
				upreply_init(&r);
			else if (r.done || r.len + UP_REPLY_LINE >=
			    sizeof(r.text))
				abort();	/* no room for its final line */
		}
more:		;
	}
	linebuf_free(&lb);
	return 0;
}
