/*
 * xclient - tells the upstream who the real client is, so that its own
 * restrictions, logs and Received headers see the client and not
 * greygate's address: Postfix's XCLIENT (the upstream then acts as if
 * the client had connected itself) or XFORWARD (it only records it).
 * Only the attributes the upstream announced are sent, xtext-encoded
 * (RFC 3461), "[UNAVAILABLE]" where greygate does not know a value.
 * The builder is a pure function of its inputs; the reverse lookup of
 * the client's name is the only I/O, bounded by a timeout.  Nothing
 * here may let a client choose an attribute it does not own: every
 * value is greygate's own or encoded.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "xclient.h"

#define UNAVAIL	"[UNAVAILABLE]"

/*
 * xtext_encode - RFC 3461 xtext of in: "!" to "~" but "+" and "=" as
 * they are, every other octet "+XX".  The length written, or 0 when out
 * is too small (out is then "").
 */
size_t
xtext_encode(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t		 n = 0;

	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=') {
			if (n + 1 >= size)
				goto toolong;
			out[n++] = (char)*p;
		} else {
			if (n + 3 >= size)
				goto toolong;
			out[n++] = '+';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= size)
		goto toolong;
	out[n] = '\0';
	return n;
toolong:
	if (size > 0)
		out[0] = '\0';
	return 0;
}

/*
 * ehlo_line - the keyword line kw of an EHLO reply ("250-XCLIENT NAME
 * ADDR"), its parameters in *params (up to the CRLF); NULL when absent.
 */
static const char *
ehlo_line(const char *text, const char *kw, size_t *plen)
{
	const char	*p = text, *eol;
	size_t		 kl = strlen(kw);

	for (; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
		if ((size_t)(eol - p) < 4 + kl ||
		    strncasecmp(p + 4, kw, kl) != 0)
			continue;
		if (p + 4 + kl == eol) {
			*plen = 0;
			return eol;
		}
		if (p[4 + kl] != ' ')
			continue;
		*plen = (size_t)(eol - (p + 5 + kl));
		return p + 5 + kl;
	}
	return NULL;
}

/* has_attr - is attr among the space-separated words of params? */
static int
has_attr(const char *params, size_t len, const char *attr)
{
	size_t	al = strlen(attr), i = 0, w;

	while (i < len) {
		while (i < len && params[i] == ' ')
			i++;
		for (w = i; w < len && params[w] != ' '; w++)
			;
		if (w - i == al && strncasecmp(params + i, attr, al) == 0)
			return 1;
		i = w;
	}
	return 0;
}

/* add - " NAME=xtext(value)" to buf; -1 when it does not fit */
static int
add(char *buf, size_t size, size_t *off, const char *name,
    const char *value)
{
	char	x[3 * XC_NAME_MAX + 1];
	int	n;

	if (*value == '\0')
		value = UNAVAIL;
	if (xtext_encode(value, x, sizeof(x)) == 0)
		(void)strlcpy(x, UNAVAIL, sizeof(x));
	n = snprintf(buf + *off, size - *off, " %s=%s", name, x);
	if (n < 0 || (size_t)n >= size - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

/*
 * xclient_command - the XCLIENT or XFORWARD command (CRLF included) for
 * the client in ci, given the upstream's EHLO reply text and the mode:
 * XCLIENT when announced (auto, xclient), else XFORWARD when announced
 * (auto, xforward).  XC_NONE when neither applies or it does not fit.
 */
enum xc_kind
xclient_command(enum upstream_client_info mode, const char *ehlo,
    const struct client_info *ci, char *buf, size_t size)
{
	static const char *attrs[] = { "NAME", "ADDR", "PORT", "HELO",
	    "PROTO", "IDENT" };
	const char	*params = NULL, *val;
	char		 addr[80], port[16];
	size_t		 plen = 0, off, i;
	enum xc_kind	 kind = XC_NONE;
	int		 n;

	if (mode == UCI_OFF || ehlo == NULL)
		return XC_NONE;
	if (mode != UCI_XFORWARD &&
	    (params = ehlo_line(ehlo, "XCLIENT", &plen)) != NULL)
		kind = XC_XCLIENT;
	else if (mode != UCI_XCLIENT &&
	    (params = ehlo_line(ehlo, "XFORWARD", &plen)) != NULL)
		kind = XC_XFORWARD;
	else
		return XC_NONE;
	(void)snprintf(addr, sizeof(addr), "%s%s", ci->v6 ? "IPV6:" : "",
	    ci->addr);
	if (ci->port > 0)
		(void)snprintf(port, sizeof(port), "%d", ci->port);
	else
		port[0] = '\0';
	n = snprintf(buf, size, "%s", kind == XC_XCLIENT ? "XCLIENT" :
	    "XFORWARD");
	if (n < 0 || (size_t)n >= size)
		return XC_NONE;
	off = (size_t)n;
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (!has_attr(params, plen, attrs[i]) ||
		    (kind == XC_XCLIENT && i == 5))
			continue;
		switch (i) {
		case 0:
			val = ci->name;
			break;
		case 1:
			val = addr;
			break;
		case 2:
			val = port;
			break;
		case 3:
			val = ci->helo != NULL ? ci->helo : "";
			break;
		case 4:
			val = ci->esmtp ? "ESMTP" : "SMTP";
			break;
		default:
			val = ci->ident != NULL ? ci->ident : "";
			break;
		}
		if (add(buf, size, &off, attrs[i], val) == -1)
			return XC_NONE;
	}
	if (off == strlen(kind == XC_XCLIENT ? "XCLIENT" : "XFORWARD"))
		return XC_NONE;		/* no attribute we know */
	if (off + 3 > size)
		return XC_NONE;
	memcpy(buf + off, "\r\n", 3);
	return kind;
}

const char *
xclient_kind_name(enum xc_kind k)
{
	return k == XC_XCLIENT ? "xclient" : k == XC_XFORWARD ? "xforward" :
	    "none";
}

/*
 * xclient_lookup_name - the client's name, forward-confirmed (its name
 * resolves back to its address), once per session; "" when there is
 * none or the lookup fails.  The resolver waits timeout seconds per
 * try, one try (the session must not hang on a slow DNS).
 */
void
xclient_lookup_name(struct client_info *ci, int timeout)
{
	struct sockaddr_storage	 ss;
	struct addrinfo		 hints, *res, *ai;
	struct ipaddr		 ip, got;
	char			 host[NI_MAXHOST];
	socklen_t		 slen;

	if (ci->named)
		return;
	ci->named = 1;
	ci->name[0] = '\0';
	if (ipaddr_parse(ci->addr, &ip) == -1)
		return;
	if ((_res.options & RES_INIT) == 0)
		(void)res_init();
	_res.retrans = timeout > 0 ? timeout : 1;
	_res.retry = 1;
	slen = ipaddr_sockaddr(&ip, 0, &ss);
	if (getnameinfo((struct sockaddr *)&ss, slen, host, sizeof(host),
	    NULL, 0, NI_NAMEREQD) != 0)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = ip.family;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (ipaddr_from_sockaddr(ai->ai_addr, &got) == 0 &&
		    ipaddr_equal(&got, &ip)) {
			(void)strlcpy(ci->name, host, sizeof(ci->name));
			break;
		}
	freeaddrinfo(res);
}

/* xclient_info_from_fd - the client's port, from its socket */
void
xclient_info_from_fd(struct client_info *ci, int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	ci->port = 0;
	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET)
		ci->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		ci->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}
