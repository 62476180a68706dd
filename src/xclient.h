/*
 * xclient - who the real client is, for the upstream: XCLIENT and
 * XFORWARD commands (Postfix's protocols), xtext-encoded.
 */
#ifndef GREYGATE_XCLIENT_H
#define GREYGATE_XCLIENT_H

#include <stddef.h>

#include "config.h"

#define XC_NAME_MAX	256	/* a host name, NUL included */

/* what greygate knows of the client; filled by the session */
struct client_info {
	char		 addr[64];	/* numeric address */
	int		 v6;		/* it is IPv6 */
	int		 port;		/* client port, 0: unknown */
	const char	*helo;		/* HELO/EHLO name, "" unknown */
	int		 esmtp;		/* it used EHLO */
	const char	*ident;		/* session id, for XFORWARD IDENT */
	char		 name[XC_NAME_MAX]; /* verified name, "" unknown */
	int		 named;		/* name looked up already */
};

enum xc_kind {
	XC_NONE,		/* nothing to send */
	XC_XCLIENT,		/* an XCLIENT command */
	XC_XFORWARD		/* an XFORWARD command */
};

size_t		 xtext_encode(const char *, char *, size_t);
enum xc_kind	 xclient_command(enum upstream_client_info, const char *,
		    const struct client_info *, char *, size_t);
const char	*xclient_kind_name(enum xc_kind);
void		 xclient_lookup_name(struct client_info *, int);
void		 xclient_info_from_fd(struct client_info *, int);

#endif
