/*
 * greylist - the greylisting rules: how a (client network, sender,
 * recipient) triplet is keyed and what its history in the store means
 * at a given time.  Pure functions of their arguments, the store and the
 * "now" passed in: this module never reads the clock, never logs and
 * never turns a store failure into a pass; it answers GL_ERROR and the
 * caller applies on_error.  Normalisation only ever shortens a key and
 * writes within the caller's buffer whatever the input.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "greylist.h"

/* A piece of the caller's string: normalisation works on views. */
struct span {
	const char	*p;		/* first octet */
	size_t		 n;		/* length */
};

static const char *span_chr(const struct span *, int);
static int	span_skip(struct span *, const char *);
static int	span_cut(struct span *, int, struct span *);
static int	unwrap_batv(struct span *);
static int	unwrap_srs_body(struct span, struct span *, struct span *);
static int	unwrap_srs(struct span *, struct span *);
static int	put_lower(char *, size_t, size_t *, const struct span *);
static enum gl_result gl_of(int);
static enum gl_result greylist_decide(struct store *,
		    const struct greylist_params *, const char *, const char *,
		    const char *, time_t, int);

/* greylist_client_net - the address masked to its family's prefix */
int
greylist_client_net(const struct ipaddr *ip, int v4prefix, int v6prefix,
    char *buf, size_t len)
{
	struct ipaddr	 m;
	char		 a[INET6_ADDRSTRLEN];
	int		 prefix, bytes, i, r;

	if (len > 0)
		buf[0] = '\0';
	if (ip->family == AF_INET) {
		prefix = v4prefix;
		bytes = 4;
	} else if (ip->family == AF_INET6) {
		prefix = v6prefix;
		bytes = 16;
	} else
		return -1;
	if (prefix < 0 || prefix > bytes * 8)
		return -1;

	m = *ip;
	for (i = 0; i < bytes; i++) {
		if (prefix >= (i + 1) * 8)
			continue;
		if (prefix <= i * 8)
			m.addr[i] = 0;
		else
			m.addr[i] &= (uint8_t)(0xff << (8 - (prefix - i * 8)));
	}
	ipaddr_ntop(&m, a, sizeof(a));
	r = snprintf(buf, len, "%s/%d", a, prefix);
	if (r < 0 || (size_t)r >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

static const char *
span_chr(const struct span *s, int c)
{
	return memchr(s->p, c, s->n);
}

/* span_skip - drop a case-insensitive prefix; 1 if it was there */
static int
span_skip(struct span *s, const char *pre)
{
	size_t	l = strlen(pre);

	if (s->n < l || strncasecmp(s->p, pre, l) != 0)
		return 0;
	s->p += l;
	s->n -= l;
	return 1;
}

/* span_cut - split s at the first c: head before it, s after it */
static int
span_cut(struct span *s, int c, struct span *head)
{
	const char	*e = span_chr(s, c);

	if (e == NULL)
		return 0;
	head->p = s->p;
	head->n = (size_t)(e - s->p);
	s->n -= head->n + 1;
	s->p = e + 1;
	return 1;
}

/*
 * unwrap_batv - BATV and its relatives sign the local part:
 * prvs=TAG=local (current), prvs=local/TAG (old Exim), msprvs1=TAG=local,
 * btv1==TAG==local.  The tag changes with every message, so it must not
 * be in the key.
 */
static int
unwrap_batv(struct span *local)
{
	struct span	 s = *local, tag;
	size_t		 i;

	if (span_skip(&s, "prvs=") || span_skip(&s, "msprvs1=")) {
		if (span_cut(&s, '=', &tag)) {
			if (tag.n == 0 || s.n == 0)
				return 0;
			*local = s;
			return 1;
		}
		for (i = s.n; i > 0; i--)
			if (s.p[i - 1] == '/')
				break;
		if (i <= 1 || i == s.n)
			return 0;
		local->p = s.p;
		local->n = i - 1;
		return 1;
	}
	if (span_skip(&s, "btv1==")) {
		for (i = 1; i + 2 < s.n; i++) {
			if (s.p[i] == '=' && s.p[i + 1] == '=') {
				local->p = s.p + i + 2;
				local->n = s.n - i - 2;
				return 1;
			}
		}
	}
	return 0;
}

/* unwrap_srs_body - "HHH=TT=domain=local" into its domain and local */
static int
unwrap_srs_body(struct span s, struct span *local, struct span *domain)
{
	struct span	 hash, tt, d;

	if (!span_cut(&s, '=', &hash) || !span_cut(&s, '=', &tt) ||
	    !span_cut(&s, '=', &d) || d.n == 0 || s.n == 0)
		return 0;
	*domain = d;
	*local = s;
	return 1;
}

/*
 * unwrap_srs - a forwarder's SRS address back to the original sender:
 * SRS0=HHH=TT=domain=local@forwarder and
 * SRS1=HHH=forwarder==HHH=TT=domain=local@forwarder2 (the separator after
 * SRS0/SRS1 may also be + or -).
 */
static int
unwrap_srs(struct span *local, struct span *domain)
{
	struct span	 s = *local, hash, fwd;

	if (span_skip(&s, "srs0")) {
		if (s.n == 0 || strchr("=+-", s.p[0]) == NULL)
			return 0;
		s.p++;
		s.n--;
		return unwrap_srs_body(s, local, domain);
	}
	if (span_skip(&s, "srs1")) {
		if (s.n == 0 || strchr("=+-", s.p[0]) == NULL)
			return 0;
		s.p++;
		s.n--;
		if (!span_cut(&s, '=', &hash) || !span_cut(&s, '=', &fwd) ||
		    fwd.n == 0 || s.n == 0 || strchr("=+-", s.p[0]) == NULL)
			return 0;
		s.p++;
		s.n--;
		return unwrap_srs_body(s, local, domain);
	}
	return 0;
}

/* put_lower - append s lower-cased at *off; -1 (and stop) when full */
static int
put_lower(char *out, size_t outlen, size_t *off, const struct span *s)
{
	size_t	i;

	for (i = 0; i < s->n; i++) {
		if (*off + 1 >= outlen)
			return -1;
		out[(*off)++] = (char)tolower((unsigned char)s->p[i]);
	}
	return 0;
}

/* greylist_norm_sender - see greylist.h */
int
greylist_norm_sender(const char *in, char *out, size_t outlen)
{
	static const struct span at = { "@", 1 };
	struct span	 local, domain = { "", 0 };
	const char	*plus, *a;
	size_t		 off = 0;
	int		 has_at, i, r;

	if (outlen == 0)
		return -1;
	local.p = in;
	local.n = strlen(in);
	if ((a = strrchr(in, '@')) != NULL) {
		local.n = (size_t)(a - in);
		domain.p = a + 1;
		domain.n = strlen(a + 1);
	}
	has_at = a != NULL;

	/* wrappers can nest (BATV inside SRS, SRS of SRS): a few rounds */
	for (i = 0; i < 4; i++) {
		if (unwrap_batv(&local))
			continue;
		if (unwrap_srs(&local, &domain)) {
			has_at = 1;
			continue;
		}
		break;
	}
	/* "+extension", but not in a quoted local part nor as all of it */
	if (local.n > 0 && local.p[0] != '"' &&
	    (plus = span_chr(&local, '+')) != NULL && plus > local.p)
		local.n = (size_t)(plus - local.p);

	r = put_lower(out, outlen, &off, &local);
	if (r == 0 && has_at) {
		r = put_lower(out, outlen, &off, &at);
		if (r == 0)
			r = put_lower(out, outlen, &off, &domain);
	}
	out[off] = '\0';
	return r;
}

/* greylist_norm_rcpt - see greylist.h */
int
greylist_norm_rcpt(const char *in, char *out, size_t outlen)
{
	struct span	 s;
	size_t		 off = 0;
	int		 r;

	if (outlen == 0)
		return -1;
	s.p = in;
	s.n = strlen(in);
	r = put_lower(out, outlen, &off, &s);
	out[off] = '\0';
	return r;
}

/* gl_of - a backend's decide answer as a verdict; anything else fails */
static enum gl_result
gl_of(int r)
{
	switch (r) {
	case GL_PASS:
	case GL_WHITELIST:
	case GL_GREYLIST:
		return (enum gl_result)r;
	default:
		return GL_ERROR;
	}
}

/*
 * greylist_decide - the rules of greylist_check; with write 0 the
 * verdict only, for greygatectl check.  A first sight in the future
 * (the clock was set back) counts as no sight at all.  A backend with a
 * decide operation (Redis: several MX hosts share the store, so the
 * reads and writes of one decision must be one atomic step) applies
 * these same rules itself; test_greylist runs one table of scenarios
 * against every backend built in to keep the two in step.
 */
static enum gl_result
greylist_decide(struct store *st, const struct greylist_params *p,
    const char *net, const char *sender, const char *rcpt, time_t now,
    int write)
{
	struct store_rec c, t;
	time_t		 age;
	long		 n;
	int		 rc;

	if (st->ops->decide != NULL) {
		/* a shared store: the same rules, atomically, in the store */
		st->err[0] = '\0';
		return gl_of(st->ops->decide(st, p, net, sender, rcpt, now,
		    write, NULL, 0));
	}
	if ((rc = store_client_get(st, net, &c)) == -1)
		return GL_ERROR;
	if (rc == 1 && now <= c.expires) {
		if (write) {
			c.last_seen = now;
			c.passes++;
			c.expires = now + p->expire;
			if (store_client_put(st, net, &c) == -1)
				return GL_ERROR;
		}
		return GL_WHITELIST;
	}

	if ((rc = store_triplet_get(st, net, sender, rcpt, &t)) == -1)
		return GL_ERROR;
	if (rc == 1 && t.passes == 0) {
		age = now - t.first_seen;
		if (age >= 0 && age < p->delay)
			return GL_GREYLIST;	/* too early: unchanged */
		if (age < 0 || age > p->retry_window)
			rc = 0;			/* too late: start again */
	} else if (rc == 1 && now > t.expires)
		rc = 0;				/* the pass expired */

	if (rc == 0) {
		if (write) {
			t.first_seen = t.last_seen = now;
			t.passes = 0;
			t.expires = now + p->retry_window;
			if (store_triplet_put(st, net, sender, rcpt, &t) == -1)
				return GL_ERROR;
		}
		return GL_GREYLIST;
	}

	if (!write)
		return GL_PASS;
	t.passes++;
	t.last_seen = now;
	t.expires = now + p->expire;
	if (store_triplet_put(st, net, sender, rcpt, &t) == -1)
		return GL_ERROR;
	if (p->auto_whitelist > 0) {
		if ((n = store_triplet_count_passed(st, net, now)) == -1)
			return GL_ERROR;
		if (n >= p->auto_whitelist) {
			c.first_seen = c.last_seen = now;
			c.passes = n;
			c.expires = now + p->expire;
			if (store_client_put(st, net, &c) == -1)
				return GL_ERROR;
		}
	}
	return GL_PASS;
}

enum gl_result
greylist_check(struct store *st, const struct greylist_params *p,
    const char *net, const char *sender, const char *rcpt, time_t now)
{
	return greylist_decide(st, p, net, sender, rcpt, now, 1);
}

int
greylist_check_cached(struct store *st, const struct greylist_params *p,
    const char *net, const char *sender, const char *rcpt, time_t now,
    char *buf, size_t buflen, enum gl_result *res)
{
	int	r;

	if (st->ops->decide != NULL && buflen > 0) {
		st->err[0] = '\0';
		r = st->ops->decide(st, p, net, sender, rcpt, now, 1, buf,
		    buflen);
		if (r == STORE_DECIDE_REPLY)
			return 1;
		/* a failed lookup and a failed decision are one error */
		if ((*res = gl_of(r)) == GL_ERROR)
			return -1;
		return 0;
	}
	if ((r = store_reply_get(st, STORE_REPLY_NET, sender, rcpt, now, buf,
	    buflen)) != 0)
		return r;
	*res = greylist_decide(st, p, net, sender, rcpt, now, 1);
	return 0;
}

enum gl_result
greylist_peek(struct store *st, const struct greylist_params *p,
    const char *net, const char *sender, const char *rcpt, time_t now)
{
	return greylist_decide(st, p, net, sender, rcpt, now, 0);
}

const char *
greylist_result_name(enum gl_result r)
{
	switch (r) {
	case GL_PASS:
		return "pass";
	case GL_WHITELIST:
		return "whitelist";
	case GL_GREYLIST:
		return "greylist";
	case GL_ERROR:
		return "error";
	}
	return "unknown";
}
