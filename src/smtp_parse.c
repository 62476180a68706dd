/*
 * smtp_parse - the grammar of RFC 5321 commands as greygate accepts them:
 * strict where the original was lax (a space after "FROM:", a missing
 * angle bracket, an invalid address are refused), and the framing of
 * message data, where only CRLF.CRLF ends a message.  Everything here is
 * a pure function of its input, so it is unit-tested and fuzzed without
 * sockets.  It must never write beyond the buffers it is given.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include "smtp_parse.h"

/*
 * smtp_verb - split "VERB args" in place.  Returns the verb (letters
 * only, at most 8), *args points after the single separating space or at
 * "" when there is none.  NULL when the line has no verb.
 */
const char *
smtp_verb(char *line, char **args)
{
	char	*p = line;

	while (isalpha((unsigned char)*p))
		p++;
	if (p == line || p - line > 8)
		return NULL;
	if (*p == '\0')
		*args = p;
	else if (*p == ' ') {
		*p = '\0';
		*args = p + 1;
	} else
		return NULL;
	return line;
}

/*
 * While an SMTPUTF8 transaction is parsed (smtp_parse_mail_ext,
 * smtp_parse_rcpt_ext), octets of 0x80 and above may appear in local
 * parts and domains (RFC 6531 3.3); the whole path must then be valid
 * UTF-8.  Set only for the duration of one call.
 */
static int	parse_utf8;

static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)
	    != NULL) || (parse_utf8 && c >= 0x80);
}

/* utf8_valid - is p[0..len) well-formed UTF-8 (no overlong, surrogate)? */
static int
utf8_valid(const unsigned char *p, size_t len)
{
	size_t		i = 0, n, k;
	unsigned long	cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		for (k = 1; k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* smtp_check_domain - RFC 5321 Domain: sub-domain *("." sub-domain) */
int
smtp_check_domain(const char *d, size_t len)
{
	size_t	i, label = 0;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0 || d[i - 1] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)d[i]) && d[i] != '-' &&
		    !(parse_utf8 && (unsigned char)d[i] >= 0x80))
			return -1;
		if (label == 0 && d[i] == '-')
			return -1;
		if (++label > 63)
			return -1;
	}
	if (label == 0 || d[len - 1] == '-')
		return -1;
	return 0;
}

/* check_literal - "[1.2.3.4]" or "[IPv6:...]" */
static int
check_literal(const char *s, size_t len)
{
	char		buf[64];
	unsigned char	addr[16];

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >=
	    sizeof(buf))
		return -1;
	memcpy(buf, s + 1, len - 2);
	buf[len - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, addr) == 1 ? 0 : -1;
	return inet_pton(AF_INET, buf, addr) == 1 ? 0 : -1;
}

/*
 * smtp_check_helo - a HELO/EHLO argument: a domain or an address literal.
 * Underscores are tolerated: too many real clients use them.
 */
int
smtp_check_helo(const char *arg)
{
	size_t	i, len = strlen(arg);

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return -1;
	if (arg[0] == '[')
		return check_literal(arg, len);
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)arg[i]) && arg[i] != '-' &&
		    arg[i] != '.' && arg[i] != '_')
			return -1;
		/* no empty label: ".example", "foo..example" */
		if (arg[i] == '.' && (i == 0 || arg[i - 1] == '.'))
			return -1;
	}
	return 0;
}

/*
 * parse_localpart - Dot-string or Quoted-string; returns its length in s,
 * or 0 when invalid.
 */
static size_t
parse_localpart(const char *s)
{
	const char	*p = s;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (*p < 32 || *p > 126)
					return 0;
			} else if ((*p < 32 || *p > 126) && !(parse_utf8 &&
			    (unsigned char)*p >= 0x80))
				return 0;
		}
		p++;
	} else {
		for (;;) {
			if (!is_atext((unsigned char)*p))
				return 0;
			while (is_atext((unsigned char)*p))
				p++;
			if (*p != '.')
				break;
			p++;
		}
	}
	return (size_t)(p - s);
}

/*
 * smtp_parse_path - "<[@route,@route:]mailbox>", "<>" when nullok, or
 * "<postmaster>" when nullok is -1 (RCPT).  *end points after the '>'.
 */
enum sp_result
smtp_parse_path(const char *s, struct smtp_path *path, int nullok,
    const char **end)
{
	const char	*p, *close, *at, *d;
	size_t		 llen, len;

	memset(path, 0, sizeof(*path));
	if (*s != '<')
		return SP_SYNTAX;
	if ((close = strchr(s, '>')) == NULL)
		return SP_SYNTAX;
	p = s + 1;
	*end = close + 1;
	if (p == close)
		return nullok == 1 ? SP_OK : SP_SYNTAX;
	/* source route: accepted and ignored (RFC 5321 4.1.1.3) */
	if (*p == '@') {
		path->route = 1;	/* relay control must see it */
		while (*p == '@') {
			for (d = ++p; *p != ',' && *p != ':' && p < close; p++)
				;
			if (p >= close || smtp_check_domain(d,
			    (size_t)(p - d)) == -1)
				return SP_SYNTAX;
			if (*p++ == ':')
				break;
			if (*p != '@')
				return SP_SYNTAX;
		}
	}
	if (nullok == -1 && (size_t)(close - p) == 10 &&
	    strncasecmp(p, "postmaster", 10) == 0) {
		memcpy(path->addr, "postmaster", 11);
		return SP_OK;
	}
	if ((llen = parse_localpart(p)) == 0 || llen > SMTP_LOCAL_MAX)
		return SP_SYNTAX;
	at = p + llen;
	if (*at != '@')
		return SP_SYNTAX;
	/* a quoted local part may contain '>': the path ends later */
	if (*p == '"') {
		if ((close = strchr(at, '>')) == NULL)
			return SP_SYNTAX;
	} else if (at >= close)
		return SP_SYNTAX;
	*end = close + 1;
	d = at + 1;
	len = (size_t)(close - d);
	if (*d == '[' ? check_literal(d, len) : smtp_check_domain(d, len))
		return SP_SYNTAX;
	len = (size_t)(close - p);
	if (len > SMTP_PATH_MAX)
		return SP_SYNTAX;
	if (parse_utf8 && !utf8_valid((const unsigned char *)p, len))
		return SP_SYNTAX;
	memcpy(path->addr, p, len);
	path->addr[len] = '\0';
	path->domain = (size_t)(d - p);
	return SP_OK;
}

/* utf8_in - does s hold an octet of 0x80 or above? */
static int
utf8_in(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* xtext_valid - RFC 3461 xtext: "!".."~" but "=", and "+" HEX HEX */
static int
xtext_valid(const char *v, size_t len, int utf8)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (v[i] == '+') {
			if (i + 2 >= len)
				return 0;
			if (!isxdigit((unsigned char)v[i + 1]) ||
			    !isxdigit((unsigned char)v[i + 2]) ||
			    islower((unsigned char)v[i + 1]) ||
			    islower((unsigned char)v[i + 2]))
				return 0;
			i += 2;
		} else if ((v[i] < '!' || v[i] > '~' || v[i] == '=') &&
		    !(utf8 && (unsigned char)v[i] >= 0x80))
			return 0;
	}
	return 1;
}

/* notify_valid - NEVER, or a list of SUCCESS, FAILURE, DELAY once each */
static int
notify_valid(const char *v, size_t len)
{
	static const char *kw[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned int	seen = 0;
	size_t		i = 0, w, k;

	if (len == 5 && strncasecmp(v, "NEVER", 5) == 0)
		return 1;
	while (i < len) {
		for (w = i; w < len && v[w] != ','; w++)
			;
		for (k = 0; k < 3; k++)
			if (w - i == strlen(kw[k]) &&
			    strncasecmp(v + i, kw[k], w - i) == 0)
				break;
		if (k == 3 || (seen & (1U << k)))
			return 0;
		seen |= 1U << k;
		if (w == len)
			return 1;
		i = w + 1;
	}
	return 0;
}

/* keep - append " KW=VAL" as the client wrote it to the kept params */
static int
keep(char *buf, size_t size, const char *p, size_t len)
{
	size_t	n;

	if (buf == NULL || (n = strlen(buf)) + 1 + len + 1 > size)
		return -1;
	buf[n] = ' ';
	memcpy(buf + n + 1, p, len);
	buf[n + 1 + len] = '\0';
	return 0;
}

/*
 * parse_params_ext - the ESMTP parameters: SIZE and BODY of MAIL (m
 * set), and with SP_DSN the DSN parameters (RFC 3461: RET and ENVID of
 * MAIL, NOTIFY and ORCPT of RCPT), with SP_UTF8 SMTPUTF8 of MAIL.  The
 * DSN and SMTPUTF8 parameters that pass are appended to kept, as
 * written, to be replayed unchanged.
 */
static enum sp_result
parse_params_ext(const char *p, struct smtp_mail *m, unsigned int flags,
    char *kept, size_t keptsize)
{
	unsigned int	 seen = 0;
	char		 kw[32];
	const char	*val, *e;
	size_t		 klen, vlen, i;
	char		*end;

	while (*p == ' ')
		p++;
	while (*p != '\0') {
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		val = memchr(p, '=', (size_t)(e - p));
		klen = (size_t)((val ? val : e) - p);
		if (klen == 0 || klen >= sizeof(kw))
			return SP_PARAM_BAD;
		for (i = 0; i < klen; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-')
				return SP_PARAM_BAD;
		memcpy(kw, p, klen);
		kw[klen] = '\0';
		if (val != NULL)
			val++;
		vlen = val ? (size_t)(e - val) : 0;
		if (m != NULL && strcasecmp(kw, "SIZE") == 0) {
			if (val == NULL || vlen == 0 || vlen > 19 ||
			    m->size != -1)
				return SP_PARAM_BAD;
			for (i = 0; i < vlen; i++)
				if (!isdigit((unsigned char)val[i]))
					return SP_PARAM_BAD;
			errno = 0;
			m->size = strtoll(val, &end, 10);
			if (errno != 0 || end != e)
				return SP_PARAM_BAD;
		} else if (m != NULL && strcasecmp(kw, "BODY") == 0) {
			if (val == NULL || m->body != 0)
				return SP_PARAM_BAD;
			if (vlen == 4 && strncasecmp(val, "7BIT", 4) == 0)
				m->body = 7;
			else if (vlen == 8 && strncasecmp(val, "8BITMIME", 8)
			    == 0)
				m->body = 8;
			else
				return SP_PARAM_BAD;
		} else if ((flags & SP_DSN) && m != NULL &&
		    strcasecmp(kw, "RET") == 0) {
			if (val == NULL || (seen & 1) || !((vlen == 4 &&
			    strncasecmp(val, "FULL", 4) == 0) || (vlen == 4 &&
			    strncasecmp(val, "HDRS", 4) == 0)) ||
			    keep(kept, keptsize, p, (size_t)(e - p)) == -1)
				return SP_PARAM_BAD;
			seen |= 1;
		} else if ((flags & SP_DSN) && m != NULL &&
		    strcasecmp(kw, "ENVID") == 0) {
			if (val == NULL || (seen & 2) || vlen == 0 ||
			    vlen > 100 || !xtext_valid(val, vlen, 0) ||
			    keep(kept, keptsize, p, (size_t)(e - p)) == -1)
				return SP_PARAM_BAD;
			seen |= 2;
		} else if ((flags & SP_UTF8) && m != NULL &&
		    strcasecmp(kw, "SMTPUTF8") == 0) {
			if (val != NULL || m->smtputf8)
				return SP_PARAM_BAD;
			m->smtputf8 = 1;
		} else if ((flags & SP_DSN) && m == NULL &&
		    strcasecmp(kw, "NOTIFY") == 0) {
			if (val == NULL || (seen & 4) || !notify_valid(val,
			    vlen) || keep(kept, keptsize, p,
			    (size_t)(e - p)) == -1)
				return SP_PARAM_BAD;
			seen |= 4;
		} else if ((flags & SP_DSN) && m == NULL &&
		    strcasecmp(kw, "ORCPT") == 0) {
			const char *semi = val ? memchr(val, ';', vlen) : NULL;

			if (val == NULL || (seen & 8) || semi == NULL ||
			    semi == val || vlen > 500 ||
			    (size_t)(e - semi) < 2 ||
			    !xtext_valid(semi + 1, (size_t)(e - semi - 1),
			    (flags & SP_UTF8) != 0) ||
			    keep(kept, keptsize, p, (size_t)(e - p)) == -1)
				return SP_PARAM_BAD;
			for (i = 0; val + i < semi; i++)
				if (!isalnum((unsigned char)val[i]) &&
				    val[i] != '-')
					return SP_PARAM_BAD;
			seen |= 8;
		} else
			return SP_PARAM_UNKNOWN;
		p = e;
		while (*p == ' ')
			p++;
	}
	return SP_OK;
}

/* smtp_parse_mail - the arguments of MAIL: "FROM:<path> [params]" */
enum sp_result
smtp_parse_mail(const char *args, struct smtp_mail *m)
{
	return smtp_parse_mail_ext(args, m, 0);
}

/*
 * smtp_parse_mail_ext - the same, with the extensions of flags: SP_DSN
 * (RET, ENVID kept in m->params), SP_UTF8 (SMTPUTF8; with it the path
 * may be UTF-8, as may the RCPTs that follow).  A UTF-8 reverse-path
 * needs the SMTPUTF8 parameter, which follows it: the path is parsed
 * again once the parameters are known.
 */
enum sp_result
smtp_parse_mail_ext(const char *args, struct smtp_mail *m,
    unsigned int flags)
{
	const char	*end;
	enum sp_result	 r;

	memset(m, 0, sizeof(*m));
	m->size = -1;
	if (strncasecmp(args, "FROM:", 5) != 0)
		return SP_SYNTAX;
	parse_utf8 = (flags & SP_UTF8) != 0;
	r = smtp_parse_path(args + 5, &m->path, 1, &end);
	parse_utf8 = 0;
	if (r != SP_OK)
		return r;
	if (*end != '\0' && *end != ' ')
		return SP_SYNTAX;
	if ((r = parse_params_ext(end, m, flags, m->params,
	    sizeof(m->params))) != SP_OK)
		return r;
	if (!m->smtputf8 && utf8_in(m->path.addr))
		return SP_SYNTAX;	/* 8-bit without SMTPUTF8 */
	return SP_OK;
}

/* smtp_parse_rcpt - the arguments of RCPT: "TO:<path>"; no parameters */
enum sp_result
smtp_parse_rcpt(const char *args, struct smtp_path *path)
{
	return smtp_parse_rcpt_ext(args, path, 0, NULL, 0);
}

/*
 * smtp_parse_rcpt_ext - the same with the extensions of flags: SP_DSN
 * (NOTIFY, ORCPT, kept in params as written), SP_UTF8 (the transaction
 * is SMTPUTF8: the path may be UTF-8).
 */
enum sp_result
smtp_parse_rcpt_ext(const char *args, struct smtp_path *path,
    unsigned int flags, char *params, size_t size)
{
	const char	*end;
	enum sp_result	 r;

	if (params != NULL && size > 0)
		params[0] = '\0';
	if (strncasecmp(args, "TO:", 3) != 0)
		return SP_SYNTAX;
	parse_utf8 = (flags & SP_UTF8) != 0;
	r = smtp_parse_path(args + 3, path, -1, &end);
	parse_utf8 = 0;
	if (r != SP_OK)
		return r;
	if (*end != '\0' && *end != ' ')
		return SP_SYNTAX;
	return parse_params_ext(end, NULL, flags, params, size);
}

/*
 * smtp_parse_bare - s, a path without its angle brackets, parsed as
 * smtp_parse_path would parse "<s>" (nullok as there; utf8: UTF-8
 * allowed as after SMTPUTF8).  0, or -1.
 */
int
smtp_parse_bare(const char *s, int nullok, int utf8, struct smtp_path *path)
{
	char		 buf[SMTP_PATH_MAX + 3];
	const char	*end;
	size_t		 len = strlen(s);
	int		 r;

	if (len > SMTP_PATH_MAX)
		return -1;
	buf[0] = '<';
	memcpy(buf + 1, s, len);
	buf[len + 1] = '>';
	buf[len + 2] = '\0';
	parse_utf8 = utf8 != 0;
	r = smtp_parse_path(buf, path, nullok, &end);
	parse_utf8 = 0;
	return r == SP_OK && *end == '\0' ? 0 : -1;
}

/* smtp_check_mailbox - "local@domain" as written in a config file */
int
smtp_check_mailbox(const char *s)
{
	struct smtp_path path;

	return smtp_parse_bare(s, 0, 0, &path);
}

/* data framing states */
enum {
	DS_BOL,		/* at the start of a line */
	DS_MID,		/* inside a line */
	DS_CR,		/* after a CR inside a line */
	DS_DOT,		/* "." at the start of a line */
	DS_DOTCR,	/* ".\r" at the start of a line */
	DS_END		/* CRLF.CRLF seen */
};

void
smtp_data_init(struct datascan *ds, size_t maxline, size_t maxsize)
{
	memset(ds, 0, sizeof(*ds));
	ds->state = DS_BOL;
	ds->maxline = maxline;
	ds->maxsize = maxsize;
}

/* ds_store - pass message octets to the sink while under the size limit */
static int
ds_store(struct datascan *ds, const char *p, size_t n, datasink_fn sink,
    void *arg)
{
	if (n == 0)
		return 0;
	ds->size += n;
	if (ds->size > ds->maxsize)
		ds->flags |= DS_TOOBIG;
	if (ds->flags & (DS_TOOBIG | DS_SINKERR))
		return 0;
	if (sink(arg, p, n) == -1) {
		/* reported once; the framing goes on to the real end */
		ds->flags |= DS_SINKERR;
		return -1;
	}
	return 0;
}

/*
 * smtp_data_scan - frame message data.  Octets are passed to sink exactly
 * as received (still dot-stuffed), up to and including the CRLF that
 * precedes the final ".CRLF", which is not passed.  Only CRLF.CRLF ends
 * the data: a bare CR or LF is flagged and never ends anything.  A "." or
 * ".\r" at the start of a line is held back until the next octet tells
 * whether it ends the data.  Returns 1 at the end of data, 0 when more is
 * needed, -1 when the sink failed; *used is the input consumed.  After
 * a failure (DS_SINKERR) the caller scans on from *used to the real end
 * of the data: the sink is not called again for this message.
 */
int
smtp_data_scan(struct datascan *ds, const char *buf, size_t len,
    size_t *used, datasink_fn sink, void *arg)
{
	const char	*p = buf, *e = buf + len, *from = buf;
	int		 c;

	while (p < e) {
		c = (unsigned char)*p;
		switch (ds->state) {
		case DS_BOL:
			if (c == '.') {
				if (ds_store(ds, from, (size_t)(p - from), sink,
				    arg) == -1) {
					*used = (size_t)(p - buf);
					return -1;
				}
				from = ++p;
				ds->state = DS_DOT;
				continue;
			}
			ds->state = DS_MID;
			continue;
		case DS_DOT:
			if (c == '\r') {
				from = ++p;
				ds->state = DS_DOTCR;
				continue;
			}
			/*
			 * A dot-stuffed line: the held dot is data, but not
			 * part of the line's length (RFC 5321 4.5.3.1.6).
			 */
			ds->state = DS_MID;
			ds->linelen = 0;
			if (ds_store(ds, ".", 1, sink, arg) == -1) {
				*used = (size_t)(p - buf);
				return -1;
			}
			continue;
		case DS_DOTCR:
			if (c == '\n') {
				ds->state = DS_END;
				*used = (size_t)(p + 1 - buf);
				return 1;
			}
			/* ".\r" not followed by LF: a bare CR */
			ds->flags |= DS_BARE;
			ds->state = DS_MID;
			ds->linelen = 1;	/* the CR; the dot is not counted */
			if (ds_store(ds, ".\r", 2, sink, arg) == -1) {
				*used = (size_t)(p - buf);
				return -1;
			}
			continue;
		case DS_CR:
			if (c == '\n') {
				if (++ds->linelen > ds->maxline)
					ds->flags |= DS_LONGLINE;
				ds->state = DS_BOL;
				ds->linelen = 0;
				p++;
				continue;
			}
			ds->flags |= DS_BARE;
			ds->state = DS_MID;
			continue;
		default:
			ds->linelen++;
			if (c == '\r')
				ds->state = DS_CR;
			else if (c == '\n')
				ds->flags |= DS_BARE;
			else if (c == '\0')
				ds->flags |= DS_NUL;
			else if (c >= 0x80)
				ds->flags |= DS_8BIT;
			p++;
			continue;
		}
	}
	*used = len;
	if (ds_store(ds, from, (size_t)(p - from), sink, arg) == -1)
		return -1;
	return 0;
}
