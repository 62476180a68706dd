/*
 * netio - one read/write interface over the client socket, so that the
 * session does not care whether TLS is on.  Plaintext reads are one
 * blocking read(2) under SO_RCVTIMEO, writes send(2) under the
 * SO_SNDTIMEO the worker set; once netio_starttls has made the
 * handshake, both go through tls.c, each bounded by the same limits.
 * It never decides anything about SMTP.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "linebuf.h"
#include "netio.h"

void
netio_init(struct netio *io, int fd, int sndtimeo)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
	io->sndtimeo = sndtimeo > 0 ? sndtimeo : 1;
	io->timeout = 1;
}

/*
 * netio_read - read(2)'s contract (for linebuf_fill), waiting at most
 * io->timeout seconds: -1 with errno EAGAIN (plaintext) or ETIMEDOUT
 * (TLS) when nothing came, EINTR on a signal.
 */
ssize_t
netio_read(void *arg, void *buf, size_t len)
{
	struct netio	*io = arg;

	if (io->tls != NULL)
		return tls_read(io->tls, buf, len, io->timeout * 1000);
	if (linebuf_rcvtimeo(io->fd, io->timeout, &io->rcvtimeo) == -1)
		return -1;
	return read(io->fd, buf, len);
}

/* netio_write - all of len octets, or -1 */
ssize_t
netio_write(struct netio *io, const void *buf, size_t len)
{
	const char	*p = buf;
	size_t		 off = 0;
	ssize_t		 w;

	if (io->tls != NULL)
		return tls_write(io->tls, buf, len, io->sndtimeo * 1000);
	while (off < len) {
		w = send(io->fd, p + off, len - off, MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	return (ssize_t)len;
}

/* netio_ready - input is there now, decrypted or on the socket: 1, else 0 */
int
netio_ready(struct netio *io)
{
	if (io->fd == -1)
		return 0;
	if (io->tls != NULL && tls_pending(io->tls))
		return 1;
	return linebuf_wait(io->fd, 0) > 0;
}

/*
 * netio_peek - up to len octets of what is there now, left to be read
 * again; 0 when nothing is (never waits).  Under TLS only what is
 * already decrypted counts.
 */
ssize_t
netio_peek(struct netio *io, void *buf, size_t len)
{
	ssize_t	k;

	if (io->fd == -1)
		return 0;
	if (io->tls != NULL)
		return tls_peek(io->tls, buf, len);
	do {
		k = recv(io->fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
	} while (k == -1 && errno == EINTR);
	return k > 0 ? k : 0;
}

/*
 * netio_starttls - the server's handshake, in at most seconds; 0, or -1
 * with the reason in err.  The socket is non-blocking from here on.
 */
int
netio_starttls(struct netio *io, struct tls_ctx *ctx, int seconds, char *err,
    size_t errlen)
{
	if (io->tls != NULL) {
		(void)snprintf(err, errlen, "TLS already active");
		return -1;
	}
	if ((io->tls = tls_accept(ctx, io->fd, seconds * 1000, err,
	    errlen)) == NULL)
		return -1;
	return 0;
}

/* netio_tls_name - "PROTOCOL/CIPHER" for the logs, or "none" */
const char *
netio_tls_name(const struct netio *io, char *buf, size_t len)
{
	if (io->tls == NULL)
		return "none";
	(void)snprintf(buf, len, "%s/%s", tls_protocol(io->tls),
	    tls_cipher(io->tls));
	return buf;
}

/* netio_close - end TLS (the socket is the worker's to close) */
void
netio_close(struct netio *io)
{
	tls_close(io->tls);
	io->tls = NULL;
}
