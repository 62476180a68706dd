/*
 * tls - the server side of TLS (STARTTLS, RFC 3207) over OpenSSL 3: a
 * context made from the certificate, key, protocols, ciphers and DH
 * parameters of the configuration, and on it the handshake, reads,
 * writes and the close of one session, each bounded by a deadline in
 * milliseconds (the socket is non-blocking while TLS is on: a peer that
 * drips a record never extends a wait).  This is the only file of
 * greygate that includes OpenSSL headers.  It never opens a file after
 * the context is made: the master makes it as root and the workers
 * inherit it, so that they never open the key.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

struct tls_ctx {
	SSL_CTX		*ctx;		/* OpenSSL's context */
};

struct tls_conn {
	SSL		*ssl;		/* the session */
	int		 fd;		/* its socket, non-blocking */
};

static const struct {
	const char	*name;		/* as in tls_protocols */
	int		 version;	/* OpenSSL's */
} protocols[] = {
	{ "TLSv1", TLS1_VERSION },
	{ "TLSv1.1", TLS1_1_VERSION },
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
};

/* tls_protocol_valid - a name tls_protocols accepts: 0, else -1 */
int
tls_protocol_valid(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		if (strcmp(protocols[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* tls_why - OpenSSL's first queued error as text, the queue emptied */
static const char *
tls_why(char *buf, size_t len)
{
	unsigned long	e, first = 0;
	const char	*r;

	while ((e = ERR_get_error()) != 0)
		if (first == 0)
			first = e;
	if (first == 0) {
		(void)snprintf(buf, len, "unknown error");
		return buf;
	}
	if (ERR_SYSTEM_ERROR(first))
		(void)snprintf(buf, len, "%s", strerror(ERR_GET_REASON(first)));
	else if ((r = ERR_reason_error_string(first)) != NULL)
		(void)snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(first, buf, len);
	return buf;
}

/*
 * tls_ctx_new - a context for the server side, or NULL with the reason
 * in err; the reason names the file that is wrong.
 */
struct tls_ctx *
tls_ctx_new(const struct tls_params *p, char *err, size_t errlen)
{
	struct tls_ctx	*t;
	SSL_CTX		*ctx;
	EVP_PKEY	*dh = NULL, *key = NULL;
	BIO		*bio;
	char		 why[256];
	int		 i, lo = -1, hi = -1;
	size_t		 k;

	ERR_clear_error();
	for (k = 0; k < p->nprotocols; k++) {
		if ((i = tls_protocol_valid(p->protocols[k])) == -1) {
			(void)snprintf(err, errlen, "tls_protocols: unknown "
			    "protocol \"%s\"", p->protocols[k]);
			return NULL;
		}
		if (lo == -1 || i < lo)
			lo = i;
		if (hi == -1 || i > hi)
			hi = i;
	}
	if (lo == -1) {
		(void)snprintf(err, errlen, "tls_protocols is empty");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		(void)snprintf(err, errlen, "SSL_CTX_new: %s",
		    tls_why(why, sizeof(why)));
		return NULL;
	}
	(void)SSL_CTX_set_min_proto_version(ctx, protocols[lo].version);
	(void)SSL_CTX_set_max_proto_version(ctx, protocols[hi].version);
	/*
	 * The server's cipher order; no renegotiation (a client could make
	 * the worker redo handshakes at will); an EOF without close_notify
	 * is an EOF, as over plaintext.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* one process per session: a session cache would never be hit */
	(void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1) {
		(void)snprintf(err, errlen, "tls_cert_file %s: %s",
		    p->cert_file, tls_why(why, sizeof(why)));
		goto fail;
	}
	/* read apart from its use, so that a mismatch is told as one */
	if ((bio = BIO_new_file(p->key_file, "r")) != NULL) {
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (key == NULL) {
		(void)snprintf(err, errlen, "tls_key_file %s: %s",
		    p->key_file, tls_why(why, sizeof(why)));
		goto fail;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
		(void)snprintf(err, errlen, "tls_key_file %s does not match "
		    "the certificate of tls_cert_file %s", p->key_file,
		    p->cert_file);
		ERR_clear_error();
		EVP_PKEY_free(key);
		goto fail;
	}
	i = SSL_CTX_use_PrivateKey(ctx, key);
	EVP_PKEY_free(key);	/* the context holds its own reference */
	if (i != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		(void)snprintf(err, errlen, "tls_key_file %s: %s",
		    p->key_file, tls_why(why, sizeof(why)));
		goto fail;
	}
	if (p->ciphers[0] != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, p->ciphers) != 1) {
		(void)snprintf(err, errlen, "tls_ciphers \"%s\": %s",
		    p->ciphers, tls_why(why, sizeof(why)));
		goto fail;
	}
	if (p->dh_file[0] != '\0') {
		if ((bio = BIO_new_file(p->dh_file, "r")) != NULL) {
			dh = PEM_read_bio_Parameters(bio, NULL);
			BIO_free(bio);
		}
		if (dh == NULL) {
			(void)snprintf(err, errlen, "tls_dh %s: %s", p->dh_file,
			    tls_why(why, sizeof(why)));
			goto fail;
		}
		/* the context owns dh once this succeeds */
		if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
			EVP_PKEY_free(dh);
			(void)snprintf(err, errlen, "tls_dh %s: %s", p->dh_file,
			    tls_why(why, sizeof(why)));
			goto fail;
		}
	} else
		(void)SSL_CTX_set_dh_auto(ctx, 1);
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto fail;
	}
	t->ctx = ctx;
	return t;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* now_ms - a monotonic clock in milliseconds */
static long long
now_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * tls_wait - wait until the socket is ready for what OpenSSL wants (err
 * is SSL_get_error's), never past end: 1 ready, 0 timeout, -1 error.
 */
static int
tls_wait(int fd, int err, long long end)
{
	struct pollfd	pfd;
	long long	left;
	int		n;

	pfd.fd = fd;
	pfd.events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	for (;;) {
		if ((left = end - now_ms()) <= 0)
			return 0;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > 86400000 ? 86400000 : (int)left);
		if (n == -1 && errno == EINTR)
			return -1;	/* the caller looks at its flags */
		if (n != 0)
			return n;
	}
}

/*
 * tls_accept - the server's handshake on the connected socket fd, in at
 * most timeout_ms.  Returns the session, or NULL with the reason in err
 * (errno ETIMEDOUT when the time ran out, EINTR on a signal).
 */
struct tls_conn *
tls_accept(struct tls_ctx *t, int fd, int timeout_ms, char *err,
    size_t errlen)
{
	struct tls_conn	*c;
	long long	 end = now_ms() + timeout_ms;
	char		 why[256];
	int		 fl, r, e, w, saved;

	ERR_clear_error();
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		(void)snprintf(err, errlen, "fcntl: %s", strerror(errno));
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->ssl = SSL_new(t->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		(void)snprintf(err, errlen, "SSL_new: %s",
		    tls_why(why, sizeof(why)));
		if (c != NULL)
			SSL_free(c->ssl);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->fd = fd;
	for (;;) {
		errno = 0;
		if ((r = SSL_accept(c->ssl)) == 1)
			return c;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if ((w = tls_wait(fd, e, end)) > 0)
				continue;
			saved = w == 0 ? ETIMEDOUT : errno;
			(void)snprintf(err, errlen, "%s", w == 0 ?
			    "handshake timeout" : strerror(errno));
		} else if (e == SSL_ERROR_SYSCALL) {
			saved = errno ? errno : ECONNRESET;
			(void)snprintf(err, errlen, "%s", errno ?
			    strerror(errno) : "connection closed during the "
			    "handshake");
			ERR_clear_error();
		} else {
			saved = EPROTO;
			(void)snprintf(err, errlen, "%s",
			    tls_why(why, sizeof(why)));
		}
		SSL_free(c->ssl);
		free(c);
		errno = saved;
		return NULL;
	}
}

/*
 * tls_read - at most len decrypted octets, waiting at most timeout_ms:
 * >0 octets, 0 at the end of the stream, -1 with errno (ETIMEDOUT, EINTR
 * on a signal, EPROTO on a TLS error).
 */
ssize_t
tls_read(struct tls_conn *c, void *buf, size_t len, int timeout_ms)
{
	long long	end = now_ms() + timeout_ms;
	int		r, e, w, n = len > 1 << 30 ? 1 << 30 : (int)len;

	for (;;) {
		errno = 0;
		if ((r = SSL_read(c->ssl, buf, n)) > 0)
			return r;
		e = SSL_get_error(c->ssl, r);
		switch (e) {
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			if ((w = tls_wait(c->fd, e, end)) > 0)
				continue;
			if (w == 0)
				errno = ETIMEDOUT;
			return -1;
		case SSL_ERROR_SYSCALL:
			ERR_clear_error();
			if (errno == 0)
				return 0;
			return -1;
		default:
			ERR_clear_error();
			errno = EPROTO;
			return -1;
		}
	}
}

/*
 * tls_write - all of len octets in at most timeout_ms: len, or -1 with
 * errno.
 */
ssize_t
tls_write(struct tls_conn *c, const void *buf, size_t len, int timeout_ms)
{
	long long	 end = now_ms() + timeout_ms;
	const char	*p = buf;
	size_t		 off = 0;
	int		 r, e, w, n;

	while (off < len) {
		n = len - off > 1 << 30 ? 1 << 30 : (int)(len - off);
		errno = 0;
		if ((r = SSL_write(c->ssl, p + off, n)) > 0) {
			off += (size_t)r;
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if ((w = tls_wait(c->fd, e, end)) > 0)
				continue;
			if (w == 0)
				errno = ETIMEDOUT;
			else if (errno == EINTR)
				continue;	/* the deadline still holds */
			return -1;
		}
		ERR_clear_error();
		if (errno == 0)
			errno = e == SSL_ERROR_SYSCALL ? EPIPE : EPROTO;
		return -1;
	}
	return (ssize_t)len;
}

/* tls_pending - decrypted octets ready to be read without waiting */
int
tls_pending(struct tls_conn *c)
{
	return SSL_pending(c->ssl) > 0;
}

/*
 * tls_peek - up to len of the octets already decrypted, left to be
 * read; 0 when there are none (never waits for the network)
 */
ssize_t
tls_peek(struct tls_conn *c, void *buf, size_t len)
{
	int	n = SSL_pending(c->ssl), r;

	if (n <= 0)
		return 0;
	if ((size_t)n > len)
		n = (int)len;
	r = SSL_peek(c->ssl, buf, n);
	return r > 0 ? r : 0;
}

/* tls_close - a close_notify if it can go at once, then free */
void
tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c);
}

const char *
tls_protocol(const struct tls_conn *c)
{
	return SSL_get_version(c->ssl);
}

const char *
tls_cipher(const struct tls_conn *c)
{
	return SSL_get_cipher_name(c->ssl);
}
