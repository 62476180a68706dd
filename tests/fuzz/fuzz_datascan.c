/*
 * fuzz_datascan - the message data framing, which decides where a
 * message ends (SMTP smuggling lives here).  The same octets are scanned
 * in one chunk and in chunks chosen by the input; both must end at the
 * same octet with the same flags and (under the size limit) pass the
 * sink the same octets.
 * Beyond that, what reaches the sink is exactly the input up to the
 * final ".CRLF" (nothing added, nothing repaired), it never contains
 * CRLF.CRLF, and without DS_BARE/DS_LONGLINE every line fits the limit.
 *
 * Input: byte 0 the line limit (3..258), byte 1 the size limit
 * (64 * (1 + b)), byte 2 seeds the chunk sizes; then the data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct out {
	char	*p;
	size_t	 len, cap;
};

static int
collect(void *arg, const char *p, size_t n)
{
	struct out	*o = arg;

	if (n == 0)
		abort();	/* the scanner never passes empty pieces */
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	return 0;
}

/* scan - returns the end offset (one past ".\r\n") or 0 when not ended */
static size_t
scan(const uint8_t *d, size_t n, size_t maxline, size_t maxsize,
    unsigned int seed, struct datascan *ds, struct out *o)
{
	size_t	off = 0, k, used;
	int	r;

	smtp_data_init(ds, maxline, maxsize);
	while (off < n) {
		if (seed == 0)
			k = n - off;
		else {
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 16) % 17 + 1;
			if (k > n - off)
				k = n - off;
		}
		r = smtp_data_scan(ds, (const char *)d + off, k, &used,
		    collect, o);
		if (used > k || r == -1)
			abort();
		if (r == 1)
			return off + used;
		if (used != k)
			abort();
		off += k;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct datascan	 a, b;
	struct out	 oa = { 0 }, ob = { 0 };
	size_t		 maxline, maxsize, ea, eb, i, line;
	unsigned int	 seed;

	if (size < 3)
		return 0;
	maxline = 3 + data[0];
	maxsize = 64 * (1 + (size_t)data[1]);
	seed = data[2] | 1u;
	data += 3;
	size -= 3;

	ea = scan(data, size, maxline, maxsize, 0, &a, &oa);
	eb = scan(data, size, maxline, maxsize, seed, &b, &ob);
	if (ea != eb || a.flags != b.flags || a.size != b.size)
		abort();
	/* past the size limit the sink gets a prefix that depends on the
	 * chunks; the message is refused with 552 whatever it holds */
	if (!(a.flags & DS_TOOBIG) && (oa.len != ob.len ||
	    (oa.len && memcmp(oa.p, ob.p, oa.len) != 0)))
		abort();

	/* what the sink got is the input as received */
	if (oa.len > size || (oa.len && memcmp(oa.p, data, oa.len) != 0))
		abort();
	if (ea != 0) {
		if (ea < 3 || memcmp(data + ea - 3, ".\r\n", 3) != 0)
			abort();
		if (!(a.flags & DS_TOOBIG) && oa.len != ea - 3)
			abort();
		if (ea > 3 && (ea < 5 || data[ea - 5] != '\r' ||
		    data[ea - 4] != '\n'))
			abort();
	} else if (!(a.flags & DS_TOOBIG) && oa.len + 2 < size)
		abort();	/* at most ".\r" held back */
	if (!(a.flags & DS_TOOBIG) && a.size != oa.len)
		abort();
	if ((a.flags & DS_TOOBIG) ? a.size <= maxsize : a.size > maxsize)
		abort();
	/* the end of data never travels inside the message */
	for (i = 0; i + 5 <= oa.len; i++)
		if (memcmp(oa.p + i, "\r\n.\r\n", 5) == 0)
			abort();
	if (oa.len >= 3 && memcmp(oa.p, ".\r\n", 3) == 0)
		abort();
	if (!(a.flags & (DS_BARE | DS_NUL)))
		for (i = 0; i < oa.len; i++)
			if (oa.p[i] == '\0' || (oa.p[i] == '\n' &&
			    (i == 0 || oa.p[i - 1] != '\r')) ||
			    (oa.p[i] == '\r' && i + 1 < oa.len &&
			    oa.p[i + 1] != '\n'))
				abort();
	if (!(a.flags & (DS_BARE | DS_LONGLINE | DS_TOOBIG)))
		for (i = 0, line = 0; i < oa.len; i++)
			if (++line, oa.p[i] == '\n') {
				/* the transparency dot is not part of the
				 * line (RFC 5321 4.5.3.1.6) */
				if (line > maxline + (oa.p[i + 1 - line] == '.'))
					abort();
				line = 0;
			}
	free(oa.p);
	free(ob.p);
	return 0;
}
