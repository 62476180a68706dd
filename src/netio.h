/*
 * netio - the client connection's reads and writes, plaintext or TLS
 * alike, for the session.
 */
#ifndef GREYGATE_NETIO_H
#define GREYGATE_NETIO_H

#include <sys/types.h>
#include <stddef.h>

#include "tls.h"

struct netio {
	int		 fd;		/* the client socket, -1: none */
	struct tls_conn	*tls;		/* NULL: plaintext */
	int		 rcvtimeo;	/* SO_RCVTIMEO in force, 0: none */
	int		 timeout;	/* seconds the next read may wait */
	int		 sndtimeo;	/* seconds a write may take */
};

void	netio_init(struct netio *, int, int);
ssize_t	netio_read(void *, void *, size_t);
ssize_t	netio_write(struct netio *, const void *, size_t);
int	netio_ready(struct netio *);
ssize_t	netio_peek(struct netio *, void *, size_t);
int	netio_starttls(struct netio *, struct tls_ctx *, int, char *, size_t);
const char *netio_tls_name(const struct netio *, char *, size_t);
void	netio_close(struct netio *);

#endif
