/*
 * linebuf - a bounded line reader.  In strict mode (client side) a line
 * ends in CRLF and nothing else: a bare CR, a bare LF or a NUL is
 * reported, never silently repaired, and a line longer than the limit is
 * discarded whole up to its CRLF so the session can answer and go on.  In
 * lenient mode (upstream replies) LF alone also ends a line.  The buffer
 * never grows: memory stays bounded whatever a peer sends.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linebuf.h"

int
linebuf_init(struct linebuf *lb, size_t size, int lenient)
{
	memset(lb, 0, sizeof(*lb));
	if ((lb->buf = malloc(size)) == NULL)
		return -1;
	lb->size = size;
	lb->lenient = lenient;
	return 0;
}

void
linebuf_free(struct linebuf *lb)
{
	free(lb->buf);
	lb->buf = NULL;
	lb->size = lb->start = lb->end = 0;
}

void
linebuf_reset(struct linebuf *lb)
{
	lb->start = lb->end = 0;
	lb->skipping = 0;
}

size_t
linebuf_pending(const struct linebuf *lb)
{
	return lb->end - lb->start;
}

const char *
linebuf_data(const struct linebuf *lb)
{
	return lb->buf + lb->start;
}

void
linebuf_consume(struct linebuf *lb, size_t n)
{
	if (n > lb->end - lb->start)
		n = lb->end - lb->start;
	lb->start += n;
	if (lb->start == lb->end)
		lb->start = lb->end = 0;
}

/* linebuf_compact - make room at the end of the buffer */
static void
linebuf_compact(struct linebuf *lb)
{
	if (lb->start == 0)
		return;
	memmove(lb->buf, lb->buf + lb->start, lb->end - lb->start);
	lb->end -= lb->start;
	lb->start = 0;
}

/* linebuf_feed - append bytes (tests, fuzzers); -1 when they do not fit */
int
linebuf_feed(struct linebuf *lb, const void *data, size_t len)
{
	if (lb->size - lb->end < len)
		linebuf_compact(lb);
	if (lb->size - lb->end < len)
		return -1;
	memcpy(lb->buf + lb->end, data, len);
	lb->end += len;
	return 0;
}

/*
 * linebuf_read - one read(2) into the free space.  Returns what read(2)
 * returned, EINTR included (a read that does not block is never
 * interrupted: after poll(2) said readable, EINTR does not happen); -1
 * with errno ENOBUFS when the buffer is full.
 */
static ssize_t
fd_read(void *arg, void *buf, size_t len)
{
	return read(*(int *)arg, buf, len);
}

ssize_t
linebuf_read(struct linebuf *lb, int fd)
{
	return linebuf_fill(lb, fd_read, &fd);
}

/* linebuf_wait - wait until fd is readable: 1 ready, 0 timeout, -1 error */
int
linebuf_wait(int fd, int timeout_ms)
{
	struct pollfd	pfd;
	int		n;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n == -1 && errno == EINTR);
	return n;
}

/*
 * linebuf_rcvtimeo - bound the blocking reads of socket fd to seconds
 * (at least 1: 0 would mean no bound) with SO_RCVTIMEO; *cur is the
 * value in force, and the call is made only when it changes.  0 or -1.
 */
int
linebuf_rcvtimeo(int fd, int seconds, int *cur)
{
	struct timeval	tv;

	if (seconds < 1) {
		errno = EINVAL;
		return -1;
	}
	if (seconds == *cur)
		return 0;
	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		return -1;
	*cur = seconds;
	return 0;
}

/* linebuf_skip - discard an over-long line up to and including its CRLF */
static enum lb_result
linebuf_skip(struct linebuf *lb)
{
	char	*p, *e = lb->buf + lb->end;

	for (p = lb->buf + lb->start; p < e; p++) {
		if (*p == '\n' && (lb->lenient ||
		    (p > lb->buf + lb->start && p[-1] == '\r'))) {
			lb->skipping = 0;
			linebuf_consume(lb, (size_t)(p + 1 - (lb->buf +
			    lb->start)));
			return LB_TOOLONG;
		}
	}
	/* keep a trailing CR: its LF may come with the next read */
	if (e > lb->buf + lb->start && e[-1] == '\r')
		linebuf_consume(lb, linebuf_pending(lb) - 1);
	else
		linebuf_consume(lb, linebuf_pending(lb));
	return LB_NEED;
}

/*
 * linebuf_getline - the next line, at most maxlen octets including its
 * end.  The line is NUL-terminated in place without its line end; it
 * stays valid until the next call.
 */
enum lb_result
linebuf_getline(struct linebuf *lb, size_t maxlen, char **line, size_t *len)
{
	char	*s, *p, *e;
	size_t	 n;

	if (lb->skipping)
		return linebuf_skip(lb);
	s = lb->buf + lb->start;
	e = lb->buf + lb->end;
	for (p = s; p < e && (size_t)(p - s) < maxlen; p++) {
		if (*p == '\n') {
			if (!lb->lenient)
				return LB_BARE;
			n = (size_t)(p - s);
			if (n > 0 && p[-1] == '\r')
				n--;
			s[n] = '\0';
			*line = s;
			*len = n;
			linebuf_consume(lb, (size_t)(p + 1 - s));
			return LB_LINE;
		}
		if (lb->lenient)
			continue;
		if (*p == '\0')
			return LB_NUL;
		if (*p != '\r')
			continue;
		/*
		 * Need the next byte, even when this CR is the last octet
		 * allowed: CRLF makes the line too long, anything else a
		 * bare CR, whatever the split of the client's writes.
		 */
		if (p + 1 == e)
			return LB_NEED;
		if (p[1] != '\n')
			return LB_BARE;
		if ((size_t)(p + 2 - s) > maxlen) {
			linebuf_consume(lb, (size_t)(p + 2 - s));
			return LB_TOOLONG;
		}
		*p = '\0';
		*line = s;
		*len = (size_t)(p - s);
		linebuf_consume(lb, (size_t)(p + 2 - s));
		return LB_LINE;
	}
	if ((size_t)(e - s) >= maxlen) {
		lb->skipping = 1;
		return linebuf_skip(lb);
	}
	return LB_NEED;
}

/*
 * linebuf_fill - one call of rd(arg, space, room) into the free space,
 * as linebuf_read does with read(2): for a reader that is not a file
 * descriptor (the session's plaintext or TLS connection).
 */
ssize_t
linebuf_fill(struct linebuf *lb, ssize_t (*rd)(void *, void *, size_t),
    void *arg)
{
	ssize_t	n;

	if (lb->end == lb->size)
		linebuf_compact(lb);
	if (lb->end == lb->size) {
		errno = ENOBUFS;
		return -1;
	}
	n = rd(arg, lb->buf + lb->end, lb->size - lb->end);
	if (n > 0)
		lb->end += (size_t)n;
	return n;
}
