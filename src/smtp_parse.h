/*
 * smtp_parse - pure parsing of SMTP command lines, paths, parameters and
 * message data framing.  No I/O, no state beyond what is passed in.
 */
#ifndef GREYGATE_SMTP_PARSE_H
#define GREYGATE_SMTP_PARSE_H

#include <stddef.h>

#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, without brackets */
#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255

enum sp_result {
	SP_OK,
	SP_SYNTAX,		/* bad path or command syntax */
	SP_PARAM_UNKNOWN,	/* unsupported ESMTP parameter */
	SP_PARAM_BAD		/* known parameter, bad value */
};

struct smtp_path {
	char	 addr[SMTP_PATH_MAX + 1];	/* mailbox, "" for <> */
	size_t	 domain;			/* offset of the domain, 0 if none */
	int	 route;				/* had a source route (dropped) */
};

#define SMTP_PARAMS_MAX	640	/* DSN parameters kept, NUL included */

/* the extensions smtp_parse_mail_ext, smtp_parse_rcpt_ext accept */
#define SP_DSN		0x01	/* RFC 3461 RET ENVID, NOTIFY ORCPT */
#define SP_UTF8		0x02	/* RFC 6531 SMTPUTF8, UTF-8 paths */

struct smtp_mail {
	struct smtp_path path;		/* reverse-path */
	long long	 size;		/* SIZE=, -1 when absent */
	int		 body;		/* 0 absent, 7 or 8 */
	int		 smtputf8;	/* SMTPUTF8 given */
	char		 params[SMTP_PARAMS_MAX]; /* " RET=.. ENVID=..", as
					   written, or "" */
};

/* message data framing (RFC 5321 4.1.1.4 / 4.5.2), see smtp_data_scan */
#define DS_BARE		0x01	/* bare CR or LF seen */
#define DS_NUL		0x02	/* NUL seen */
#define DS_LONGLINE	0x04	/* a line over the limit */
#define DS_TOOBIG	0x08	/* over max_message_size */
#define DS_SINKERR	0x10	/* the sink failed: later octets dropped */
#define DS_8BIT		0x20	/* an octet of 0x80 or above */

struct datascan {
	int	 state;		/* position in the line */
	size_t	 linelen;	/* octets of the current line so far */
	size_t	 maxline;	/* limit incl. CRLF */
	size_t	 maxsize;	/* message limit */
	size_t	 size;		/* octets of the message so far */
	unsigned int flags;	/* DS_* */
};

typedef int (*datasink_fn)(void *, const char *, size_t);

const char *smtp_verb(char *, char **);
int	smtp_check_helo(const char *);
enum sp_result smtp_parse_mail(const char *, struct smtp_mail *);
enum sp_result smtp_parse_rcpt(const char *, struct smtp_path *);
enum sp_result smtp_parse_mail_ext(const char *, struct smtp_mail *,
	    unsigned int);
enum sp_result smtp_parse_rcpt_ext(const char *, struct smtp_path *,
	    unsigned int, char *, size_t);
enum sp_result smtp_parse_path(const char *, struct smtp_path *, int,
	    const char **);
int	smtp_check_domain(const char *, size_t);
int	smtp_check_mailbox(const char *);
int	smtp_parse_bare(const char *, int, int, struct smtp_path *);
void	smtp_data_init(struct datascan *, size_t, size_t);
int	smtp_data_scan(struct datascan *, const char *, size_t, size_t *,
	    datasink_fn, void *);

#endif
