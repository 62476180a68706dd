/*
 * store - the backend-neutral half of the greylist store: picks a
 * backend from the store specification ("sqlite:PATH", "redis://...")
 * and forwards every operation through its vtable.  It holds no policy
 * and no data of its own, never reads the clock and never logs: errors
 * go back to the caller, which applies on_error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define SPEC_SQLITE	"sqlite:"
#define SPEC_REDIS	"redis://"

/* store_open - dispatch on the spec prefix */
struct store *
store_open(const char *spec, char *err, size_t errlen)
{
	if (strncmp(spec, SPEC_SQLITE, strlen(SPEC_SQLITE)) == 0) {
		if (spec[strlen(SPEC_SQLITE)] == '\0') {
			snprintf(err, errlen, "%s: sqlite store needs a path",
			    spec);
			return NULL;
		}
		return store_sqlite_open(spec + strlen(SPEC_SQLITE), err,
		    errlen);
	}
	if (strncmp(spec, SPEC_REDIS, strlen(SPEC_REDIS)) == 0) {
		snprintf(err, errlen, "%s: redis store not built in", spec);
		return NULL;
	}
	snprintf(err, errlen, "%s: unknown store (use sqlite:PATH or "
	    "redis://HOST:PORT/DB)", spec);
	return NULL;
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
		return "REPLY";
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
