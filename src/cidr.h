/*
 * cidr - IPv4/IPv6 addresses and CIDR networks, parsed strictly.
 */
#ifndef GREYGATE_CIDR_H
#define GREYGATE_CIDR_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* network address, host bits zero */
	unsigned int	 prefix;	/* prefix length in bits */
};

struct ipaddr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* v4 in the first 4 bytes */
};

int	cidr_parse(const char *, struct cidr *, char *, size_t);
int	cidr_match(const struct cidr *, const struct ipaddr *);
int	cidr_match_list(const struct cidr *, size_t, const struct ipaddr *);
int	ipaddr_parse(const char *, struct ipaddr *);
int	ipaddr_from_sockaddr(const struct sockaddr *, struct ipaddr *);
int	ipaddr_equal(const struct ipaddr *, const struct ipaddr *);
const char *ipaddr_ntop(const struct ipaddr *, char *, size_t);
socklen_t ipaddr_sockaddr(const struct ipaddr *, int, struct sockaddr_storage *);

#endif
