/*
 * upstream - the SMTP client that replays a transaction to the real server.
 */
#ifndef GREYGATE_UPSTREAM_H
#define GREYGATE_UPSTREAM_H

#include <stddef.h>

#include "config.h"
#include "transcript.h"
#include "upreply.h"

#define UP_DOT_TIMEOUT	600	/* the dot's reply (RFC 5321 4.5.3.2.6) */

enum up_status {
	UP_DELIVERED,		/* upstream said 250 to the final dot */
	UP_REJECTED,		/* a 4xx/5xx to relay to the client */
	UP_PARTIAL,		/* some recipients refused: not sent */
	UP_UNAVAILABLE,		/* down, slow, closed or garbled */
	UP_CLIENT_GONE		/* the client left before the dot: aborted */
};

struct up_result;

struct envelope {
	const char	*helo_line;	/* the client's HELO/EHLO line */
	const char	*helo;		/* the name it gave */
	int		 esmtp;		/* it used EHLO */
	const char	*from;		/* reverse-path, "" for <> */
	long long	 size;		/* SIZE=, -1 if absent */
	int		 body;		/* BODY=: 0, 7 or 8 */
	char		**rcpts;	/* accepted recipients */
	size_t		 nrcpt;
	/* told of each recipient upstream refused, by index; may be NULL */
	void		(*refused)(void *, size_t, const struct up_reply *);
	void		*arg;		/* for refused, alive and answer */
	/* right before the final dot: is the client still there? NULL: yes */
	int		(*alive)(void *);
	/* the result is known (before QUIT): answer the client; may be NULL */
	void		(*answer)(void *, const struct up_result *);
};

struct up_result {
	enum up_status	 status;
	struct up_reply	 reply;		/* the reply to relay or log */
	const char	*why;		/* for the log when unavailable */
};

void	upstream_deliver(const struct config *, const struct envelope *,
	    struct transcript *, struct up_result *);

#endif
