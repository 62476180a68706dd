/*
 * transcript - holds a message exactly as the client sent it, in memory
 * up to a threshold and beyond it in an unlinked temporary file, so that
 * a worker's memory stays bounded whatever the size of the message.  It
 * never interprets the octets it holds.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transcript.h"

#define TRANSCRIPT_KEEP	(64 * 1024)	/* memory kept between messages */
#define TRANSCRIPT_IO	(64 * 1024)	/* replay chunk from the spill file */

void
transcript_init(struct transcript *t, size_t threshold, const char *dir)
{
	memset(t, 0, sizeof(*t));
	t->threshold = threshold;
	t->dir = dir;
	t->fd = -1;
}

void
transcript_reset(struct transcript *t)
{
	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
	if (t->cap > TRANSCRIPT_KEEP) {
		free(t->mem);
		t->mem = NULL;
		t->cap = 0;
	}
	t->len = t->total = 0;
	t->error = 0;
}

void
transcript_free(struct transcript *t)
{
	transcript_reset(t);
	free(t->mem);
	t->mem = NULL;
	t->cap = 0;
}

int
transcript_spilled(const struct transcript *t)
{
	return t->fd != -1;
}

/* write_all - write(2) until done; a spill file is a local file */
static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* transcript_spill - move the memory part into a new unlinked file */
static int
transcript_spill(struct transcript *t)
{
	char	path[PATH_MAX];
	int	fd;

	fd = open(t->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (snprintf(path, sizeof(path), "%s/greygate.XXXXXXXXXX",
		    t->dir) >= (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
			return -1;
		(void)unlink(path);
	}
	if (write_all(fd, t->mem, t->len) == -1) {
		close(fd);
		return -1;
	}
	t->fd = fd;
	t->len = 0;
	return 0;
}

/*
 * transcript_append - add octets (a datasink_fn).  On failure the error
 * is remembered and -1 returned: the session answers 451, nothing lost.
 */
int
transcript_append(void *arg, const char *p, size_t n)
{
	struct transcript	*t = arg;
	size_t			 ncap;
	char			*nmem;

	if (t->error)
		return -1;
	if (t->fd == -1 && t->total + n > t->threshold) {
		if (transcript_spill(t) == -1) {
			t->error = errno;
			return -1;
		}
	}
	if (t->fd != -1) {
		if (write_all(t->fd, p, n) == -1) {
			t->error = errno;
			return -1;
		}
	} else {
		if (t->len + n > t->cap) {
			ncap = t->cap ? t->cap : 16384;
			while (ncap < t->len + n)
				ncap *= 2;
			if ((nmem = realloc(t->mem, ncap)) == NULL) {
				t->error = errno;
				return -1;
			}
			t->mem = nmem;
			t->cap = ncap;
		}
		memcpy(t->mem + t->len, p, n);
		t->len += n;
	}
	t->total += n;
	return 0;
}

/* transcript_replay - hand the octets to out in order; -1 if out failed */
int
transcript_replay(struct transcript *t, int (*out)(void *, const char *,
    size_t), void *arg)
{
	char	*buf;
	off_t	 off = 0;
	ssize_t	 r;
	int	 rv = 0;

	if (t->fd == -1)
		return t->len ? out(arg, t->mem, t->len) : 0;
	if ((buf = malloc(TRANSCRIPT_IO)) == NULL)
		return -1;
	while ((size_t)off < t->total) {
		r = pread(t->fd, buf, TRANSCRIPT_IO, off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0 || out(arg, buf, (size_t)r) == -1) {
			rv = -1;
			break;
		}
		off += r;
	}
	free(buf);
	return rv;
}
