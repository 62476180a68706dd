/*
 * store - the backend-neutral half of the greylist store: picks a
 * backend from the store specification ("sqlite:PATH", "redis://...")
 * and forwards every operation through its vtable.  It holds no policy
 * and no data of its own, never reads the clock and never logs: errors
 * go back to the caller, which applies on_error.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define SPEC_SQLITE	"sqlite:"
#define SPEC_REDIS	"redis://"
#define SPEC_REDIS_UNIX	"redis+unix://"
#define REDIS_DB_MAX	1000000

static int	spec_number(const char *, size_t, long, long *);

/* store_open - dispatch on the spec prefix */
struct store *
store_open(const char *spec, char *err, size_t errlen)
{
	return store_open_with(spec, NULL, err, errlen);
}

struct store *
store_open_with(const char *spec, const struct store_options *opts,
    char *err, size_t errlen)
{
	struct store_redis_addr	a;

	if (strncmp(spec, SPEC_SQLITE, strlen(SPEC_SQLITE)) == 0) {
		if (spec[strlen(SPEC_SQLITE)] == '\0') {
			snprintf(err, errlen, "%s: sqlite store needs a path",
			    spec);
			return NULL;
		}
		return store_sqlite_open(spec + strlen(SPEC_SQLITE), err,
		    errlen);
	}
	if (strncmp(spec, SPEC_REDIS, strlen(SPEC_REDIS)) == 0 ||
	    strncmp(spec, SPEC_REDIS_UNIX, strlen(SPEC_REDIS_UNIX)) == 0) {
		if (store_redis_spec(spec, &a, err, errlen) == -1)
			return NULL;
#ifdef HAVE_REDIS
		return store_redis_open(&a, opts, err, errlen);
#else
		(void)opts;
		snprintf(err, errlen, "%s: this greygate was built without "
		    "the Redis store (configure --with-redis, needs hiredis)",
		    spec);
		return NULL;
#endif
	}
	snprintf(err, errlen, "%s: unknown store (use sqlite:PATH, "
	    "redis://HOST:PORT/DB or redis+unix:///PATH)", spec);
	return NULL;
}

int
store_redis_built(void)
{
#ifdef HAVE_REDIS
	return 1;
#else
	return 0;
#endif
}

/* spec_number - the decimal digits s[0..n) as a number 0..max; 0/-1 */
static int
spec_number(const char *s, size_t n, long max, long *v)
{
	size_t	i;

	*v = 0;
	if (n == 0 || n > 9)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return *v <= max ? 0 : -1;
}

/* store_redis_spec - see store.h */
int
store_redis_spec(const char *spec, struct store_redis_addr *a, char *err,
    size_t errlen)
{
	const char	*p, *e, *q;
	size_t		 n;
	long		 v;

	memset(a, 0, sizeof(*a));
	a->port = STORE_REDIS_PORT;
	if (strchr(spec, '@') != NULL) {
		snprintf(err, errlen, "redis store: no credentials in the "
		    "spec, use redis_username and redis_password");
		return -1;
	}
	if (strncmp(spec, SPEC_REDIS_UNIX, strlen(SPEC_REDIS_UNIX)) == 0) {
		p = spec + strlen(SPEC_REDIS_UNIX);
		if (*p != '/') {
			snprintf(err, errlen, "%s: redis+unix needs an "
			    "absolute socket path (redis+unix:///PATH)", spec);
			return -1;
		}
		n = (q = strchr(p, '?')) != NULL ? (size_t)(q - p) :
		    strlen(p);
		if (n >= sizeof(a->path)) {
			snprintf(err, errlen, "%s: socket path too long", spec);
			return -1;
		}
		memcpy(a->path, p, n);
		a->path[n] = '\0';
		if (q != NULL) {
			if (strncmp(q, "?db=", 4) != 0 || spec_number(q + 4,
			    strlen(q + 4), REDIS_DB_MAX, &v) == -1) {
				snprintf(err, errlen, "%s: after the path only "
				    "?db=N (0-%d)", spec, REDIS_DB_MAX);
				return -1;
			}
			a->db = (int)v;
		}
		return 0;
	}
	if (strncmp(spec, SPEC_REDIS, strlen(SPEC_REDIS)) != 0) {
		snprintf(err, errlen, "%s: not a redis store", spec);
		return -1;
	}
	p = spec + strlen(SPEC_REDIS);
	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL || e == p + 1) {
			snprintf(err, errlen, "%s: unterminated [IPv6] host",
			    spec);
			return -1;
		}
		n = (size_t)(e - p - 1);
		p++;
		e++;
	} else {
		e = p + strcspn(p, ":/");
		n = (size_t)(e - p);
	}
	if (n == 0 || n >= sizeof(a->host)) {
		snprintf(err, errlen, "%s: redis store needs a host "
		    "(redis://HOST:PORT/DB)", spec);
		return -1;
	}
	memcpy(a->host, p, n);
	a->host[n] = '\0';
	for (q = a->host; *q != '\0'; q++) {
		if (!isalnum((unsigned char)*q) && strchr(".-_:", *q) == NULL) {
			snprintf(err, errlen, "%s: bad host name", spec);
			return -1;
		}
	}
	p = e;
	if (*p == ':') {
		p++;
		n = strcspn(p, "/");
		if (spec_number(p, n, 65535, &v) == -1 || v == 0) {
			snprintf(err, errlen, "%s: port must be 1-65535",
			    spec);
			return -1;
		}
		a->port = (int)v;
		p += n;
	}
	if (*p == '/' && p[1] != '\0') {
		if (spec_number(p + 1, strlen(p + 1), REDIS_DB_MAX, &v) ==
		    -1) {
			snprintf(err, errlen, "%s: database must be a number "
			    "0-%d", spec, REDIS_DB_MAX);
			return -1;
		}
		a->db = (int)v;
	} else if (*p != '\0' && strcmp(p, "/") != 0) {
		snprintf(err, errlen, "%s: expected redis://HOST:PORT/DB",
		    spec);
		return -1;
	}
	return 0;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st);
	free(st);
}

const char *
store_errstr(const struct store *st)
{
	return st->err;
}

void
store_seterr(struct store *st, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

int
store_triplet_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, struct store_rec *r)
{
	st->err[0] = '\0';
	return st->ops->triplet_get(st, net, sender, rcpt, r);
}

int
store_triplet_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const struct store_rec *r)
{
	st->err[0] = '\0';
	return st->ops->triplet_put(st, net, sender, rcpt, r);
}

long
store_triplet_count_passed(struct store *st, const char *net, time_t now)
{
	st->err[0] = '\0';
	return st->ops->triplet_count_passed(st, net, now);
}

int
store_client_get(struct store *st, const char *net, struct store_rec *r)
{
	st->err[0] = '\0';
	return st->ops->client_get(st, net, r);
}

int
store_client_put(struct store *st, const char *net, const struct store_rec *r)
{
	st->err[0] = '\0';
	return st->ops->client_put(st, net, r);
}

int
store_reply_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const char *reply, time_t expires)
{
	st->err[0] = '\0';
	return st->ops->reply_put(st, net, sender, rcpt, reply, expires);
}

int
store_reply_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, time_t now, char *buf, size_t buflen)
{
	st->err[0] = '\0';
	return st->ops->reply_get(st, net, sender, rcpt, now, buf, buflen);
}

int
store_delete(struct store *st, enum store_kind kind, const char *net,
    const char *sender, const char *rcpt)
{
	st->err[0] = '\0';
	if (kind != STORE_CLIENT && (sender == NULL || rcpt == NULL)) {
		store_seterr(st, "delete: a triplet needs sender and "
		    "recipient");
		return -1;
	}
	return st->ops->del(st, kind, net, sender, rcpt);
}

int
store_reply_horizon(struct store *st, time_t now, time_t *until)
{
	st->err[0] = '\0';
	if (st->ops->reply_horizon == NULL) {
		/* the latest time_t: the workers always ask */
		*until = (time_t)((~(unsigned long long)0) >> 1);
		return 0;
	}
	return st->ops->reply_horizon(st, now, until);
}

long
store_expire(struct store *st, time_t now)
{
	st->err[0] = '\0';
	return st->ops->expire(st, now);
}

long
store_expire_some(struct store *st, time_t now, long limit)
{
	st->err[0] = '\0';
	if (st->ops->expire_some == NULL)
		return st->ops->expire(st, now);
	return st->ops->expire_some(st, now, limit);
}

int
store_list(struct store *st, store_list_cb cb, void *arg)
{
	st->err[0] = '\0';
	return st->ops->list(st, cb, arg);
}

int
store_stats(struct store *st, struct store_stats *s)
{
	st->err[0] = '\0';
	memset(s, 0, sizeof(*s));
	return st->ops->stats(st, s);
}

const char *
store_entry_label(const struct store_entry *e)
{
	switch (e->kind) {
	case STORE_TRIPLET:
		return e->rec.passes > 0 ? "WHITE" : "GREY";
	case STORE_CLIENT:
		return "CLIENT";
	case STORE_REPLY:
		/* recipient verifications: a kind of their own */
		return strcmp(e->net, STORE_VERIFY_NET) == 0 ? "VERIFY" :
		    "REPLY";
	}
	return "UNKNOWN";
}

int
store_begin(struct store *st)
{
	st->err[0] = '\0';
	return st->ops->begin ? st->ops->begin(st) : 0;
}

int
store_commit(struct store *st)
{
	st->err[0] = '\0';
	return st->ops->commit ? st->ops->commit(st) : 0;
}
