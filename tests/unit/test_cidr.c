/*
 * test_cidr - strict addresses and CIDR networks: host bits masked,
 * prefix-style networks of the original refused with a hint, matching
 * by bits (never by string prefix), IPv4-mapped IPv6 clients seen as
 * IPv4.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "tap.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct {
	const char	*in;
	int		 ok;		/* 0 valid, -1 refused */
	const char	*net;		/* valid: network address */
	unsigned int	 prefix;
	const char	*err;		/* refused: exact message */
} parse_cases[] = {
	{ "192.168.1.0/24", 0, "192.168.1.0", 24 },
	{ "192.168.1.77/24", 0, "192.168.1.0", 24 },	/* host bits */
	{ "10.1.2.3", 0, "10.1.2.3", 32 },
	{ "10.1.2.3/32", 0, "10.1.2.3", 32 },
	{ "0.0.0.0/0", 0, "0.0.0.0", 0 },
	{ "1.2.3.4/0", 0, "0.0.0.0", 0 },
	{ "127.0.0.1/8", 0, "127.0.0.0", 8 },
	{ "192.168.1.255/25", 0, "192.168.1.128", 25 },
	{ "192.168.1.255/31", 0, "192.168.1.254", 31 },
	{ "172.16.255.1/12", 0, "172.16.0.0", 12 },
	{ "::1", 0, "::1", 128 },
	{ "::1/128", 0, "::1", 128 },
	{ "::/0", 0, "::", 0 },
	{ "2001:db8::1/0", 0, "::", 0 },
	{ "2001:db8::1/32", 0, "2001:db8::", 32 },
	{ "2001:db8:abcd:1234::1/48", 0, "2001:db8:abcd::", 48 },
	{ "2001:db8::ff/121", 0, "2001:db8::80", 121 },
	{ "2001:db8::ffff/127", 0, "2001:db8::fffe", 127 },
	{ "fe80::1:2:3:4/64", 0, "fe80::", 64 },

	{ "192.168.2", -1, NULL, 0, "192.168.2 is not a valid address or "
	    "CIDR network; did you mean 192.168.2.0/24?" },
	{ "192.168.2.", -1, NULL, 0, "192.168.2. is not a valid address or "
	    "CIDR network; did you mean 192.168.2.0/24?" },
	{ "192.168", -1, NULL, 0, "192.168 is not a valid address or CIDR "
	    "network; did you mean 192.168.0.0/16?" },
	{ "10", -1, NULL, 0, "10 is not a valid address or CIDR network; "
	    "did you mean 10.0.0.0/8?" },
	{ "10.", -1, NULL, 0, "10. is not a valid address or CIDR network; "
	    "did you mean 10.0.0.0/8?" },
	{ "1.2.3.4/33", -1, NULL, 0, "1.2.3.4/33: prefix length out of "
	    "range (0-32)" },
	{ "::1/129", -1, NULL, 0, "::1/129: prefix length out of range "
	    "(0-128)" },
	{ "1.2.3.4/", -1, NULL, 0, "1.2.3.4/ is not a valid address or CIDR "
	    "network" },
	{ "1.2.3.4/-1", -1, NULL, 0, "1.2.3.4/-1 is not a valid address or "
	    "CIDR network" },
	{ "1.2.3.4/+8", -1, NULL, 0, "1.2.3.4/+8 is not a valid address or "
	    "CIDR network" },
	{ "1.2.3.4/ 8", -1, NULL, 0, "1.2.3.4/ 8 is not a valid address or "
	    "CIDR network" },
	{ "1.2.3.4/24x", -1, NULL, 0, "1.2.3.4/24x is not a valid address or "
	    "CIDR network" },
	{ "1.2.3.4/0024", -1, NULL, 0, "1.2.3.4/0024 is not a valid address "
	    "or CIDR network" },
	{ "1.2.3.4/8/8", -1, NULL, 0, "1.2.3.4/8/8 is not a valid address or "
	    "CIDR network" },
	{ "192.168.2/24", -1, NULL, 0, "192.168.2/24 is not a valid address "
	    "or CIDR network" },
	{ "256.1.1.1", -1, NULL, 0, "256.1.1.1 is not a valid address or "
	    "CIDR network" },
	{ "1.2.3.4.5", -1, NULL, 0, "1.2.3.4.5 is not a valid address or "
	    "CIDR network" },
	{ "300", -1, NULL, 0, "300 is not a valid address or CIDR network" },
	{ "garbage", -1, NULL, 0, "garbage is not a valid address or CIDR "
	    "network" },
	{ "localhost", -1, NULL, 0, "localhost is not a valid address or "
	    "CIDR network" },
	{ "", -1, NULL, 0, " is not a valid address or CIDR network" },
	{ " 1.2.3.4", -1, NULL, 0, " 1.2.3.4 is not a valid address or CIDR "
	    "network" },
	{ "1.2.3.4 ", -1, NULL, 0, "1.2.3.4  is not a valid address or CIDR "
	    "network" },
	{ "2001:db8:::1", -1, NULL, 0, "2001:db8:::1 is not a valid address "
	    "or CIDR network" },
};

static void
test_parse(void)
{
	struct cidr	 c;
	struct ipaddr	 want;
	char		 err[256], longin[128];
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		err[0] = '\0';
		r = cidr_parse(parse_cases[i].in, &c, err, sizeof(err));
		is_int(r, parse_cases[i].ok, "cidr_parse \"%s\"",
		    parse_cases[i].in);
		if (parse_cases[i].ok == -1) {
			is_str(err, parse_cases[i].err, "cidr_parse \"%s\": "
			    "message", parse_cases[i].in);
			continue;
		}
		if (r != 0)
			continue;
		if (ipaddr_parse(parse_cases[i].net, &want) == -1) {
			ok(0, "bad test network %s", parse_cases[i].net);
			continue;
		}
		is_int(c.family, want.family, "cidr_parse \"%s\": family",
		    parse_cases[i].in);
		is_int(c.prefix, parse_cases[i].prefix, "cidr_parse \"%s\": "
		    "prefix", parse_cases[i].in);
		ok(memcmp(c.addr, want.addr, sizeof(c.addr)) == 0,
		    "cidr_parse \"%s\": network %s", parse_cases[i].in,
		    parse_cases[i].net);
	}
	memset(longin, '1', sizeof(longin) - 1);
	longin[sizeof(longin) - 1] = '\0';
	is_int(cidr_parse(longin, &c, err, sizeof(err)), -1,
	    "cidr_parse: 127 digits refused");
	/* a short error buffer is never overrun */
	memset(err, 'X', sizeof(err));
	is_int(cidr_parse("192.168.2", &c, err, 10), -1,
	    "cidr_parse with a 10-octet error buffer");
	is_int(strlen(err), 9, "message truncated to the buffer");
	is_int(err[10], 'X', "nothing written past the buffer");
}

static const struct {
	const char	*net;
	const char	*ip;
	int		 want;
} match_cases[] = {
	{ "192.168.1.0/24", "192.168.1.0", 1 },
	{ "192.168.1.0/24", "192.168.1.1", 1 },
	{ "192.168.1.0/24", "192.168.1.255", 1 },
	{ "192.168.1.0/24", "192.168.0.255", 0 },
	{ "192.168.1.0/24", "192.168.2.0", 0 },
	/* by bits, not by string prefix */
	{ "192.168.2.0/24", "192.168.20.1", 0 },
	{ "192.168.1.128/25", "192.168.1.127", 0 },
	{ "192.168.1.128/25", "192.168.1.128", 1 },
	{ "192.168.1.128/25", "192.168.1.255", 1 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "172.16.0.0/12", "172.31.255.255", 1 },
	{ "172.16.0.0/12", "172.32.0.0", 0 },
	{ "1.2.3.4/32", "1.2.3.4", 1 },
	{ "1.2.3.4/32", "1.2.3.5", 0 },
	{ "1.2.3.4", "1.2.3.4", 1 },
	{ "0.0.0.0/0", "255.255.255.255", 1 },
	{ "0.0.0.0/0", "0.0.0.0", 1 },
	{ "0.0.0.0/0", "::1", 0 },			/* family mismatch */
	{ "::/0", "1.2.3.4", 0 },			/* family mismatch */
	{ "::/0", "2001:db8::1", 1 },
	{ "::1", "::1", 1 },
	{ "::1", "::2", 0 },
	{ "::1/128", "::", 0 },
	{ "2001:db8::/32", "2001:db8::1", 1 },
	{ "2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8::/32", "2001:db9::", 0 },
	{ "2001:db8::/32", "2001:db7:ffff::", 0 },
	{ "2001:db8::80/121", "2001:db8::80", 1 },
	{ "2001:db8::80/121", "2001:db8::ff", 1 },
	{ "2001:db8::80/121", "2001:db8::7f", 0 },
	{ "2001:db8::80/121", "2001:db8::100", 0 },
	{ "2001:db8:1::/64", "2001:db8:1:0:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8:1::/64", "2001:db8:1:1::", 0 },
	{ "127.0.0.1/8", "::ffff:127.0.0.1", 0 },	/* parsed as IPv6 */
	{ "::ffff:0:0/96", "1.2.3.4", 0 },
};

static void
test_match(void)
{
	struct cidr	c;
	struct ipaddr	ip;
	char		err[256];
	size_t		i;

	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		if (cidr_parse(match_cases[i].net, &c, err, sizeof(err)) ==
		    -1 || ipaddr_parse(match_cases[i].ip, &ip) == -1) {
			ok(0, "bad test case %s %s", match_cases[i].net,
			    match_cases[i].ip);
			continue;
		}
		is_int(cidr_match(&c, &ip), match_cases[i].want,
		    "cidr_match %s %s", match_cases[i].ip,
		    match_cases[i].net);
	}
}

static void
test_list(void)
{
	struct cidr	list[3];
	struct ipaddr	ip;
	char		err[256];

	cidr_parse("127.0.0.0/8", &list[0], err, sizeof(err));
	cidr_parse("::1", &list[1], err, sizeof(err));
	cidr_parse("192.0.2.0/24", &list[2], err, sizeof(err));
	ipaddr_parse("192.0.2.200", &ip);
	is_int(cidr_match_list(list, 3, &ip), 1, "cidr_match_list: last");
	ipaddr_parse("::1", &ip);
	is_int(cidr_match_list(list, 3, &ip), 1, "cidr_match_list: v6");
	ipaddr_parse("198.51.100.1", &ip);
	is_int(cidr_match_list(list, 3, &ip), 0, "cidr_match_list: none");
	is_int(cidr_match_list(list, 0, &ip), 0, "cidr_match_list: empty");
}

static void
test_sockaddr(void)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr_un	 sun;
	struct ipaddr		 ip, want;
	struct cidr		 c;
	char			 buf[64], err[256];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	is_int(ipaddr_from_sockaddr((struct sockaddr *)&sin6, &ip), 0,
	    "ipaddr_from_sockaddr: IPv4-mapped");
	is_int(ip.family, AF_INET, "IPv4-mapped becomes AF_INET");
	is_str(ipaddr_ntop(&ip, buf, sizeof(buf)), "192.0.2.1",
	    "IPv4-mapped address text");
	ipaddr_parse("192.0.2.1", &want);
	is_int(ipaddr_equal(&ip, &want), 1, "equal to the IPv4 address");
	cidr_parse("192.0.2.0/24", &c, err, sizeof(err));
	is_int(cidr_match(&c, &ip), 1, "IPv4-mapped client matches an IPv4 "
	    "network");
	cidr_parse("127.0.0.1/8", &c, err, sizeof(err));
	is_int(cidr_match(&c, &ip), 0, "and not another one");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
	is_int(ipaddr_from_sockaddr((struct sockaddr *)&sin6, &ip), 0,
	    "ipaddr_from_sockaddr: IPv6");
	is_int(ip.family, AF_INET6, "IPv6 stays AF_INET6");
	is_str(ipaddr_ntop(&ip, buf, sizeof(buf)), "2001:db8::5",
	    "IPv6 address text");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::192.0.2.1", &sin6.sin6_addr);
	ipaddr_from_sockaddr((struct sockaddr *)&sin6, &ip);
	is_int(ip.family, AF_INET6, "IPv4-compatible (not mapped) stays "
	    "IPv6");

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr);
	is_int(ipaddr_from_sockaddr((struct sockaddr *)&sin, &ip), 0,
	    "ipaddr_from_sockaddr: IPv4");
	is_int(ip.family, AF_INET, "IPv4 is AF_INET");
	is_str(ipaddr_ntop(&ip, buf, sizeof(buf)), "198.51.100.7",
	    "IPv4 address text");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	is_int(ipaddr_from_sockaddr((struct sockaddr *)&sun, &ip), -1,
	    "ipaddr_from_sockaddr: AF_UNIX refused");

	is_int(ipaddr_parse("::ffff:1.2.3.4", &ip), 0, "ipaddr_parse mapped");
	is_int(ip.family, AF_INET6, "ipaddr_parse keeps mapped as IPv6");
	is_int(ipaddr_parse("1.2.3", &ip), -1, "ipaddr_parse 1.2.3 refused");
	is_int(ipaddr_parse("example.org", &ip), -1,
	    "ipaddr_parse name refused");
}

int
main(void)
{
	test_parse();
	test_match();
	test_list();
	test_sockaddr();
	return tap_done();
}
