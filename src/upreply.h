/*
 * upreply - the upstream's replies made into the client's answer: each
 * reply read line by line into one complete, bounded SMTP reply, and the
 * answer to the end of data computed from every recipient's reply.
 */
#ifndef GREYGATE_UPREPLY_H
#define GREYGATE_UPREPLY_H

#include <stddef.h>

#define UP_REPLY_MAX	4096	/* a relayed reply, all lines */
#define UP_REPLY_LINE	512	/* one relayed line, CRLF included */

struct up_reply {
	int	 code;			/* three-digit code, 0: none yet */
	int	 done;			/* the final line is in */
	size_t	 len;			/* octets in text */
	size_t	 lines;			/* lines received */
	size_t	 dropped;		/* middle lines left out */
	char	 text[UP_REPLY_MAX];	/* kept lines, each with CRLF */
};

/* what the recipients' replies of a replay say about the message */
enum up_rcpts {
	UP_RCPTS_ALL_OK,	/* every recipient accepted: send the data */
	UP_RCPTS_REFUSED,	/* every one refused: relay the answer */
	UP_RCPTS_PARTIAL	/* some refused: 451 4.3.0, nothing sent */
};

void	upreply_init(struct up_reply *);
int	upreply_add(struct up_reply *, const char *, size_t);
void	upreply_set(struct up_reply *, const char *);
int	upstream_parse_line(const char *, size_t, int *, int *);
enum up_rcpts upreply_rcpts(size_t, size_t, const struct up_reply *,
	    const struct up_reply *, struct up_reply *);

#endif
