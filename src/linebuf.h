/*
 * linebuf - a bounded CRLF line reader over a file descriptor.
 */
#ifndef GREYGATE_LINEBUF_H
#define GREYGATE_LINEBUF_H

#include <sys/types.h>
#include <stddef.h>

enum lb_result {
	LB_LINE,		/* a complete line is returned */
	LB_NEED,		/* no complete line buffered: read more */
	LB_TOOLONG,		/* an over-long line was discarded whole */
	LB_BARE,		/* bare CR or bare LF (strict mode) */
	LB_NUL			/* NUL byte in a line (strict mode) */
};

struct linebuf {
	char	*buf;		/* storage */
	size_t	 size;		/* bytes allocated */
	size_t	 start;		/* first unconsumed byte */
	size_t	 end;		/* one past the last buffered byte */
	int	 skipping;	/* discarding the rest of an over-long line */
	int	 lenient;	/* accept LF alone as a line end (upstream) */
};

int	linebuf_init(struct linebuf *, size_t, int);
void	linebuf_free(struct linebuf *);
void	linebuf_reset(struct linebuf *);
enum lb_result linebuf_getline(struct linebuf *, size_t, char **, size_t *);
size_t	linebuf_pending(const struct linebuf *);
const char *linebuf_data(const struct linebuf *);
void	linebuf_consume(struct linebuf *, size_t);
int	linebuf_feed(struct linebuf *, const void *, size_t);
ssize_t	linebuf_read(struct linebuf *, int);
ssize_t	linebuf_fill(struct linebuf *, ssize_t (*)(void *, void *, size_t),
	    void *);
int	linebuf_wait(int, int);
int	linebuf_rcvtimeo(int, int, int *);

#endif
