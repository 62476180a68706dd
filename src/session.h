/*
 * session - one SMTP session: the state machine and its I/O loop.
 */
#ifndef GREYGATE_SESSION_H
#define GREYGATE_SESSION_H

#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "cidr.h"
#include "config.h"
#include "linebuf.h"
#include "netio.h"
#include "policy_proto.h"
#include "smtp_parse.h"
#include "transcript.h"
#include "upstream.h"
#include "verify.h"

enum state {
	S_CONNECTED = 0x01,	/* greeted, no HELO yet */
	S_HELO = 0x02,		/* HELO/EHLO done, no transaction */
	S_MAIL = 0x04,		/* MAIL accepted, no recipient yet */
	S_RCPT = 0x08,		/* at least one recipient accepted */
	S_DATA = 0x10,		/* reading message data */
	S_QUIT = 0x20		/* closing */
};

/* a recipient upstream refused during a replay, and its reply */
struct refusal {
	size_t		 rcpt;		/* index in rcpts */
	char		 text[STORE_REPLY_MAX + 1]; /* first line, no CRLF */
};

typedef void (*deliver_fn)(const struct config *, const struct envelope *,
    struct transcript *, struct up_result *);

struct session {
	const struct config *cfg;	/* configuration in force */
	int		 fd;		/* client socket, -1 in tests */
	char		 id[17];	/* session id for the logs */
	struct ipaddr	 client;	/* client address */
	char		 client_str[64]; /* and as text */
	enum state	 state;		/* where the dialogue is */
	int		 esmtp;		/* EHLO answered: may pipeline */
	char		 helo[SMTP_DOMAIN_MAX + 1]; /* HELO/EHLO name */
	char		 helo_line[SMTP_DOMAIN_MAX + 16]; /* as sent */
	char		 verb[16];	/* verb of the command, as typed */
	struct smtp_mail mail;		/* MAIL FROM of the transaction */
	char		**rcpts;	/* accepted recipients */
	size_t		 nrcpt;
	size_t		 rcptcap;
	size_t		 nrefused;	/* recipients refused */
	struct transcript tx;		/* the message */
	struct datascan	 ds;		/* framing of the message */
	struct linebuf	 in;		/* client input */
	char		*out;		/* replies not yet sent */
	size_t		 outlen;
	size_t		 outcap;
	int		 errors;	/* 4xx/5xx replies so far */
	int		 dead;		/* output failed: stop */
	unsigned long	 messages;	/* delivered in this session */
	time_t		 started;	/* for session_timeout */
	struct netio	 io;		/* reads and writes of fd */
	struct tls_ctx	*tls_ctx;	/* STARTTLS offered, NULL: not */
	int		 starttls;	/* 220 sent: handshake next */
	int		 tls;		/* TLS is on */
	deliver_fn	 deliver;	/* upstream_deliver, or a fake */
	volatile sig_atomic_t *abort;	/* set by the worker's SIGINT */
	struct pp_conn	*pp;		/* the policy process, NULL: none */
	const volatile time_t *reply_horizon; /* no refusal remembered
					   after it; NULL: always ask */
	unsigned char	*rcpt_null;	/* per recipient: decide at DATA */
	struct refusal	*refused;	/* upstream refusals of a replay */
	size_t		 nrefusal;
	/* told 1 when a replay starts, 0 when it has ended (not while
	   stopping: the mark stays until the worker exits); may be NULL */
	void		(*replaying)(int);
	int		 answered;	/* the end of data has its answer */
	const char	*tolist;	/* its recipients, for the log */
	struct client_info ci;		/* the client, for XCLIENT/XFORWARD */
	unsigned int	 ann;		/* CAP_* announced in the EHLO reply */
	/* what the upstream takes (ehlo_caps_current, or a fake) */
	unsigned int	(*caps)(const struct config *, const char *);
	char		**rcpt_params;	/* per recipient: DSN parameters */
	/* recipient verification (verify_rcpt, or a fake) */
	enum verify_result (*verify)(struct session *, const char *, int,
			    char *, size_t, const char **);
	const char	*ci_used;	/* what the last replay sent, or NULL */
};

int	session_init(struct session *, const struct config *, int,
	    const struct ipaddr *);
void	session_free(struct session *);
void	session_greeting(struct session *);
void	session_input(struct session *);
void	session_run(struct session *);
void	session_reply(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
const char *session_state_name(enum state);
void	session_client_fill(struct session *);

#endif
