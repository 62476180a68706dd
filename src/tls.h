/*
 * tls - the server side of TLS for STARTTLS, over OpenSSL.  The only
 * module that includes OpenSSL headers: the rest of greygate sees two
 * opaque types.
 */
#ifndef GREYGATE_TLS_H
#define GREYGATE_TLS_H

#include <sys/types.h>
#include <stddef.h>

struct tls_ctx;			/* certificate, key, protocols, ciphers */
struct tls_conn;		/* one TLS session on a socket */

/* what a context is made of: the config keys of the same names */
struct tls_params {
	const char	*cert_file;	/* PEM, the chain after the cert */
	const char	*key_file;	/* PEM private key */
	const char	*const *protocols; /* "TLSv1.2", "TLSv1.3", ... */
	size_t		 nprotocols;
	const char	*ciphers;	/* TLSv1.2 cipher list, "": default */
	const char	*dh_file;	/* PEM DH parameters, "": automatic */
};

int		 tls_protocol_valid(const char *);
struct tls_ctx	*tls_ctx_new(const struct tls_params *, char *, size_t);
void		 tls_ctx_free(struct tls_ctx *);
struct tls_conn	*tls_accept(struct tls_ctx *, int, int, char *, size_t);
ssize_t		 tls_read(struct tls_conn *, void *, size_t, int);
ssize_t		 tls_write(struct tls_conn *, const void *, size_t, int);
int		 tls_pending(struct tls_conn *);
ssize_t		 tls_peek(struct tls_conn *, void *, size_t);
void		 tls_close(struct tls_conn *);
const char	*tls_protocol(const struct tls_conn *);
const char	*tls_cipher(const struct tls_conn *);

#endif
