/*
 * upstream - the SMTP client that replays a transaction to the real server.
 */
#ifndef GREYGATE_UPSTREAM_H
#define GREYGATE_UPSTREAM_H

#include <stddef.h>

#include "config.h"
#include "transcript.h"
#include "upreply.h"
#include "xclient.h"

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
	void		*arg;		/* for refused, alive, answer, ehlo_seen */
	/* right before the final dot: is the client still there? NULL: yes */
	int		(*alive)(void *);
	/* the result is known (before QUIT): answer the client; may be NULL */
	void		(*answer)(void *, const struct up_result *);
	struct client_info *client;	/* for XCLIENT/XFORWARD; may be NULL */
	/* told of the upstream's EHLO reply text; may be NULL */
	void		(*ehlo_seen)(void *, const char *);
	const char	*mail_params;	/* DSN parameters of MAIL, or NULL */
	char		**rcpt_params;	/* per recipient, or NULL */
	int		 smtputf8;	/* MAIL had SMTPUTF8 */
	int		 eightbit;	/* the data holds 8-bit octets */
};

struct up_result {
	enum up_status	 status;
	struct up_reply	 reply;		/* the reply to relay or log */
	const char	*why;		/* for the log when unavailable */
	const char	*client_info;	/* "xclient", "xforward", "none" */
};

/* what a probe of the upstream found (upstream_probe) */
struct up_probe {
	int		 reached;	/* 220 and a 2xx to EHLO */
	char		 ehlo[UP_REPLY_MAX]; /* that EHLO reply's text */
	int		 code;		/* reply to RCPT, 0: not asked/failed */
	char		 reply[UP_REPLY_MAX]; /* its text, all lines */
	const char	*why;		/* failure, for the log */
	const char	*client_info;	/* "xclient", "xforward", "none" */
};

void	upstream_probe(const struct config *, struct client_info *,
	    const char *, const char *, int, struct up_probe *);
void	upstream_deliver(const struct config *, const struct envelope *,
	    struct transcript *, struct up_result *);

#endif
