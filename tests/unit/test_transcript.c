/*
 * test_transcript - a message kept in memory up to the threshold, then
 * in an unlinked spill file; replay gives back exactly the octets
 * appended, in order; failures are reported, never silent.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transcript.h"
#include "tap.h"

struct buf {
	char	*p;
	size_t	 len, cap;
	int	 calls;		/* out() calls */
	size_t	 maxchunk;	/* largest chunk seen */
	int	 fail_at;	/* fail this call (1-based), 0 never */
};

static int
out(void *arg, const char *p, size_t n)
{
	struct buf	*b = arg;

	b->calls++;
	if (b->fail_at && b->calls == b->fail_at)
		return -1;
	if (n > b->maxchunk)
		b->maxchunk = n;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			exit(99);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* a small xorshift generator: the same data on every run */
static unsigned int
rnd(unsigned int *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static char	spooldir[64];

static void
test_memory(void)
{
	struct transcript	t;
	struct buf		b;

	transcript_init(&t, 4096, spooldir);
	is_int(transcript_spilled(&t), 0, "new transcript: in memory");
	memset(&b, 0, sizeof(b));
	is_int(transcript_replay(&t, out, &b), 0, "replay of nothing");
	is_int(b.len, 0, "replay of nothing gives nothing");
	is_int(b.calls, 0, "and does not call out");

	is_int(transcript_append(&t, "hello ", 6), 0, "append 6");
	is_int(transcript_append(&t, "world\r\n", 7), 0, "append 7");
	is_int(transcript_append(&t, "", 0), 0, "append 0");
	is_int(transcript_spilled(&t), 0, "13 octets: still in memory");
	is_int(t.total, 13, "total 13");
	memset(&b, 0, sizeof(b));
	is_int(transcript_replay(&t, out, &b), 0, "replay from memory");
	is_mem(b.p, b.len, "hello world\r\n", 13, "replay gives the octets");
	free(b.p);

	/* exactly at the threshold: still memory; one more spills */
	transcript_reset(&t);
	is_int(t.total, 0, "reset: total 0");
	{
		char	big[4096];

		memset(big, 'a', sizeof(big));
		big[0] = 'A';
		is_int(transcript_append(&t, big, 4095), 0, "append 4095");
		is_int(transcript_append(&t, big, 1), 0, "append 1 (4096)");
		is_int(transcript_spilled(&t), 0,
		    "exactly the threshold: in memory");
		is_int(transcript_append(&t, "Z", 1), 0, "append 1 more");
		is_int(transcript_spilled(&t), 1, "threshold+1: spilled");
		is_int(t.total, 4097, "total 4097");
		memset(&b, 0, sizeof(b));
		is_int(transcript_replay(&t, out, &b), 0,
		    "replay after the spill");
		is_int(b.len, 4097, "replay length");
		ok(b.len == 4097 && memcmp(b.p, big, 4095) == 0 &&
		    b.p[4095] == 'A' && b.p[4096] == 'Z',
		    "replay after the spill: octets in order");
		free(b.p);
	}

	transcript_reset(&t);
	is_int(transcript_spilled(&t), 0, "reset: back in memory");
	is_int(t.total, 0, "reset: total 0");
	is_int(t.error, 0, "reset: no error");
	memset(&b, 0, sizeof(b));
	transcript_replay(&t, out, &b);
	is_int(b.len, 0, "reset: replay gives nothing");
	is_int(transcript_append(&t, "next", 4), 0, "append after reset");
	memset(&b, 0, sizeof(b));
	transcript_replay(&t, out, &b);
	is_mem(b.p, b.len, "next", 4, "only the new message is replayed");
	free(b.p);
	transcript_free(&t);
}

/* about 1 MB in random pieces, threshold 4096 */
static void
test_large(void)
{
	struct transcript	 t;
	struct buf		 b;
	char			*data;
	size_t			 total = 1024 * 1024 + 123, off = 0, n;
	unsigned int		 seed = 12345, i;
	int			 failed = 0, spilled_at = -1, pieces = 0;

	data = malloc(total);
	for (i = 0; i < total; i++)
		data[i] = (char)(rnd(&seed) & 0xff);
	transcript_init(&t, 4096, spooldir);
	while (off < total) {
		n = rnd(&seed) % 9000;
		if (pieces % 7 == 0)
			n = rnd(&seed) % 3;	/* tiny pieces too */
		if (n > total - off)
			n = total - off;
		if (transcript_append(&t, data + off, n) == -1)
			failed++;
		off += n;
		pieces++;
		if (spilled_at == -1 && transcript_spilled(&t))
			spilled_at = (int)off;
	}
	is_int(failed, 0, "1 MB in %d pieces: every append succeeds",
	    pieces);
	ok(spilled_at > 4096 && spilled_at < 4096 + 9000,
	    "spilled as soon as the threshold was crossed (at %d)",
	    spilled_at);
	is_int(transcript_spilled(&t), 1, "1 MB: spilled");
	is_int(t.total, total, "total is every octet");
	memset(&b, 0, sizeof(b));
	is_int(transcript_replay(&t, out, &b), 0, "replay 1 MB");
	is_int(b.len, total, "replay length");
	ok(b.len == total && memcmp(b.p, data, total) == 0,
	    "replay gives identical octets");
	ok(b.maxchunk <= 64 * 1024, "replay in bounded chunks (%zu)",
	    b.maxchunk);

	/* replay twice: the same again */
	b.len = 0;
	is_int(transcript_replay(&t, out, &b), 0, "second replay");
	ok(b.len == total && memcmp(b.p, data, total) == 0,
	    "second replay identical");

	/* out() failing stops the replay with -1 */
	b.len = 0;
	b.calls = 0;
	b.fail_at = 2;
	is_int(transcript_replay(&t, out, &b), -1, "out failure: -1");
	is_int(b.calls, 2, "no call after the failure");
	free(b.p);

	/* reset after a spill: memory again, nothing left over */
	transcript_reset(&t);
	is_int(transcript_spilled(&t), 0, "reset after a spill: in memory");
	transcript_append(&t, "small", 5);
	memset(&b, 0, sizeof(b));
	transcript_replay(&t, out, &b);
	is_mem(b.p, b.len, "small", 5, "only the new message after reset");
	free(b.p);
	transcript_free(&t);
	free(data);
}

/* the memory part fails from the start: failure is reported */
static void
test_memory_fail(void)
{
	struct transcript	t;
	struct buf		b;

	transcript_init(&t, 4096, spooldir);
	memset(&b, 0, sizeof(b));
	b.fail_at = 1;
	transcript_append(&t, "abc", 3);
	is_int(transcript_replay(&t, out, &b), -1,
	    "out failure from memory: -1");
	transcript_free(&t);
}

static void
test_no_spool(void)
{
	struct transcript	 t;
	char			 big[5000];

	memset(big, 'x', sizeof(big));
	transcript_init(&t, 4096, "/nonexistent/greygate-spool");
	is_int(transcript_append(&t, big, 1000), 0,
	    "missing spool dir: below the threshold is fine");
	is_int(transcript_append(&t, big, sizeof(big)), -1,
	    "missing spool dir: crossing the threshold fails");
	is_int(t.error, ENOENT, "error is ENOENT");
	is_int(transcript_spilled(&t), 0, "not spilled");
	is_int(transcript_append(&t, "x", 1), -1,
	    "later appends fail too (nothing silently lost)");
	transcript_reset(&t);
	is_int(t.error, 0, "reset clears the error");
	is_int(transcript_append(&t, "x", 1), 0, "small append after reset");
	transcript_free(&t);

	/* a spool "dir" that is a file */
	transcript_init(&t, 4096, "/etc/hostname");
	is_int(transcript_append(&t, big, sizeof(big)), -1,
	    "spool dir that is a file: fails");
	ok(t.error != 0, "and sets an error (%d)", t.error);
	transcript_free(&t);
}

/* spill files are unlinked: the spool dir stays empty */
static void
test_unlinked(void)
{
	struct transcript	 t;
	char			 big[5000], cmd[128];
	FILE			*p;
	int			 n = -1;

	memset(big, 'y', sizeof(big));
	transcript_init(&t, 4096, spooldir);
	transcript_append(&t, big, sizeof(big));
	is_int(transcript_spilled(&t), 1, "spilled into the spool dir");
	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", spooldir);
	if ((p = popen(cmd, "r")) != NULL) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	is_int(n, 0, "the spill file has no name in the spool dir");
	transcript_free(&t);
}

int
main(void)
{
	strlcpy(spooldir, "/tmp/greygate-test-spool.XXXXXX", sizeof(spooldir));
	if (mkdtemp(spooldir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_memory();
	test_large();
	test_memory_fail();
	test_no_spool();
	test_unlinked();
	rmdir(spooldir);
	return tap_done();
}
