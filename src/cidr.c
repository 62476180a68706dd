/*
 * cidr - strict parsing and matching of addresses and CIDR networks.
 * The original matched networks by string prefix ("192.168.2" matched
 * 192.168.20.1): this module refuses such input and says what to write
 * instead.  Pure functions, no I/O.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

/* ipaddr_parse - a numeric IPv4 or IPv6 address; 0 on success */
int
ipaddr_parse(const char *s, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->addr) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip->addr) == 1) {
		ip->family = AF_INET6;
		return 0;
	}
	return -1;
}

/* ipaddr_from_sockaddr - IPv4-mapped IPv6 addresses become IPv4 */
int
ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *ip)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const struct sockaddr_in6 *s6;

	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->addr,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) {
			ip->family = AF_INET;
			memcpy(ip->addr, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			ip->family = AF_INET6;
			memcpy(ip->addr, s6->sin6_addr.s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

int
ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	return a->family == b->family &&
	    memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* ipaddr_sockaddr - address and port as a sockaddr; returns its length */
socklen_t
ipaddr_sockaddr(const struct ipaddr *ip, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, ip->addr, 4);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	memcpy(&sin6->sin6_addr, ip->addr, 16);
	return sizeof(*sin6);
}

const char *
ipaddr_ntop(const struct ipaddr *ip, char *buf, size_t len)
{
	if (inet_ntop(ip->family, ip->addr, buf, len) == NULL)
		snprintf(buf, len, "unknown");
	return buf;
}

/*
 * looks_like_prefix - "10", "192.168", "192.168.2" or "192.168.2.": the
 * original's string-prefix networks.  Writes the CIDR the user meant.
 */
static int
looks_like_prefix(const char *s, char *hint, size_t hintlen)
{
	unsigned int	 oct[4];
	int		 n = 0, len;
	const char	*p = s;
	char		*end;
	unsigned long	 v;

	while (*p != '\0' && n < 4) {
		if (!isdigit((unsigned char)*p))
			return 0;
		v = strtoul(p, &end, 10);
		if (v > 255 || end - p > 3)
			return 0;
		oct[n++] = (unsigned int)v;
		p = end;
		if (*p == '.')
			p++;
		else if (*p != '\0')
			return 0;
	}
	if (*p != '\0' || n == 0 || n == 4)
		return 0;
	len = n * 8;
	while (n < 4)
		oct[n++] = 0;
	snprintf(hint, hintlen, "%u.%u.%u.%u/%d", oct[0], oct[1], oct[2],
	    oct[3], len);
	return 1;
}

/*
 * cidr_parse - "ADDR" or "ADDR/LEN"; host bits are cleared.  On error,
 * returns -1 and writes a human reason to err.
 */
int
cidr_parse(const char *s, struct cidr *c, char *err, size_t errlen)
{
	char		 buf[INET6_ADDRSTRLEN + 8], hint[32];
	char		*slash;
	const char	*errstr = NULL;
	struct ipaddr	 ip;
	long		 len = -1, max;
	char		*end;
	unsigned int	 i, bits;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf))
		goto bad;
	memcpy(buf, s, strlen(s) + 1);
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash == '\0' || !isdigit((unsigned char)*slash))
			goto bad;
		len = strtol(slash, &end, 10);
		if (*end != '\0' || end - slash > 3)
			goto bad;
	}
	if (ipaddr_parse(buf, &ip) == -1) {
		if (slash == NULL && looks_like_prefix(buf, hint,
		    sizeof(hint))) {
			snprintf(err, errlen, "%s is not a valid address or "
			    "CIDR network; did you mean %s?", s, hint);
			return -1;
		}
		goto bad;
	}
	max = ip.family == AF_INET ? 32 : 128;
	if (len == -1)
		len = max;
	if (len < 0 || len > max) {
		errstr = "prefix length out of range";
		snprintf(err, errlen, "%s: %s (0-%ld)", s, errstr, max);
		return -1;
	}
	c->family = ip.family;
	c->prefix = (unsigned int)len;
	for (i = 0; i < 16; i++) {
		bits = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
		if (bits >= 8)
			c->addr[i] = ip.addr[i];
		else if (bits > 0)
			c->addr[i] = ip.addr[i] & (uint8_t)(0xff << (8 - bits));
	}
	return 0;
bad:
	snprintf(err, errlen, "%s is not a valid address or CIDR network", s);
	return -1;
}

/* cidr_match - is ip inside network c? */
int
cidr_match(const struct cidr *c, const struct ipaddr *ip)
{
	unsigned int	i, bits;
	uint8_t		mask;

	if (c->family != ip->family)
		return 0;
	for (i = 0; i < 16 && i * 8 < c->prefix; i++) {
		bits = c->prefix - i * 8;
		mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((ip->addr[i] & mask) != c->addr[i])
			return 0;
	}
	return 1;
}

int
cidr_match_list(const struct cidr *list, size_t n, const struct ipaddr *ip)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (cidr_match(&list[i], ip))
			return 1;
	return 0;
}
