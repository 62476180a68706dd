/*
 * fuzz_linebuf - the line reader, strict (client) and lenient (upstream)
 * mode, fed the same octets twice: in the chunks the input chooses and
 * one octet at a time.  Both runs must report the same events and lines,
 * every line must respect the limit and the mode's rules, and nothing
 * may be read or written outside the buffer.
 *
 * Input: byte 0 picks the mode (bit 0) and the limit (maxlen 3..258);
 * then, repeatedly, one length byte and up to that many octets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define EV_MAX	4096

struct ev {
	enum lb_result	 r;
	size_t		 len;
	uint32_t	 sum;		/* of the line's octets */
};

static uint32_t
sum(const char *p, size_t n)
{
	uint32_t	h = 2166136261u;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	return h;
}

/* drain - every event available now; 1 when a strict error stopped it */
static int
drain(struct linebuf *lb, size_t maxlen, struct ev *ev, size_t *nev)
{
	enum lb_result	 r;
	char		*line;
	size_t		 len;

	for (;;) {
		r = linebuf_getline(lb, maxlen, &line, &len);
		if (r == LB_NEED)
			return 0;
		if (r == LB_LINE) {
			if (line[len] != '\0' || memchr(line, '\n', len))
				abort();
			if (!lb->lenient && (len + 2 > maxlen ||
			    memchr(line, '\r', len) || memchr(line, '\0', len)))
				abort();
			if (lb->lenient && len + 1 > maxlen)
				abort();
		} else
			len = 0;
		if (r == LB_BARE || r == LB_NUL) {
			if (lb->lenient)
				abort();
		}
		if (*nev < EV_MAX) {
			ev[*nev].r = r;
			ev[*nev].len = len;
			ev[*nev].sum = r == LB_LINE ? sum(line, len) : 0;
			(*nev)++;
		}
		if (r == LB_BARE || r == LB_NUL)
			return 1;	/* the session closes here */
	}
}

/* run - feed the stream in chunks (0: as the input says, else 1 octet) */
static size_t
run(const uint8_t *data, size_t size, int lenient, size_t maxlen,
    int bytewise, struct ev *ev)
{
	struct linebuf	 lb;
	size_t		 nev = 0, i = 0, n, k;

	if (linebuf_init(&lb, maxlen * 2, lenient) == -1)
		abort();
	while (i < size) {
		/* a chunk always fits: a drained buffer holds <= maxlen */
		n = data[i++] % maxlen + 1;
		if (n > size - i)
			n = size - i;
		while (n > 0) {
			k = bytewise ? 1 : n;
			if (linebuf_feed(&lb, data + i, k) == -1)
				abort();
			i += k;
			n -= k;
			if (drain(&lb, maxlen, ev, &nev)) {
				linebuf_free(&lb);
				return nev;
			}
			/* at most maxlen octets wait (a line whose last
			 * allowed octet is CR): the next chunk always fits */
			if (linebuf_pending(&lb) > maxlen)
				abort();
		}
	}
	linebuf_free(&lb);
	return nev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ev a[EV_MAX], b[EV_MAX];
	size_t		 na, nb, i, maxlen;
	int		 lenient;

	if (size < 1)
		return 0;
	lenient = data[0] & 1;
	maxlen = 3 + (size_t)(data[0] >> 1) * 4;	/* 3 .. 511 */
	na = run(data + 1, size - 1, lenient, maxlen, 0, a);
	nb = run(data + 1, size - 1, lenient, maxlen, 1, b);
	if (na != nb)
		abort();
	for (i = 0; i < na; i++)
		if (a[i].r != b[i].r || a[i].len != b[i].len ||
		    a[i].sum != b[i].sum)
			abort();
	return 0;
}
