/*
 * transcript - the message data that will be replayed upstream.
 */
#ifndef GREYGATE_TRANSCRIPT_H
#define GREYGATE_TRANSCRIPT_H

#include <stddef.h>

struct transcript {
	char	*mem;		/* in-memory part, NULL once spilled */
	size_t	 len;		/* octets in mem */
	size_t	 cap;		/* allocated for mem */
	size_t	 total;		/* octets appended since the reset */
	size_t	 threshold;	/* spill beyond this many octets */
	int	 fd;		/* unlinked spill file, -1 if none */
	const char *dir;	/* where spill files are made */
	int	 error;		/* errno of a failed append, 0 if none */
};

void	transcript_init(struct transcript *, size_t, const char *);
void	transcript_reset(struct transcript *);
void	transcript_free(struct transcript *);
int	transcript_append(void *, const char *, size_t);
int	transcript_replay(struct transcript *,
	    int (*)(void *, const char *, size_t), void *);
int	transcript_spilled(const struct transcript *);

#endif
