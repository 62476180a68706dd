/*
 * store - the greylist store: one interface, one file per backend
 * (store_sqlite.c, store_redis.c).
 *
 * Three kinds of record, all keyed by strings the caller has already
 * normalised (see greylist.h):
 *
 *	STORE_TRIPLET	(net, sender, rcpt) -> struct store_rec
 *			passes 0: still grey; passes >= 1: passed ("white")
 *	STORE_CLIENT	net -> struct store_rec (auto-whitelisted network)
 *	STORE_REPLY	(net, sender, rcpt) -> upstream reply text + expires
 *			(the partial-rejection cache, SPEC 3.4)
 *
 * Times are time_t values supplied by the caller; the store never reads
 * the clock.  A record is live while now <= expires and expired once
 * now > expires.  The store keeps expired rows until store_expire()
 * removes them, so get returns them too (except store_reply_get, which
 * takes now): the rules in greylist.c decide what an expired row means.
 * The Redis store is the exception: each key has a TTL from its
 * record's expires, so Redis drops a row once the real clock passes
 * it (an expired row means no row to the rules, so they agree).
 *
 * Every operation that can fail returns -1 on a store error and leaves
 * a message in store_errstr(); the caller applies on_error.  Functions
 * that look something up return 1 when found and 0 when not.  A store
 * handle is not thread-safe; one process opens it and talks to it.
 */
#ifndef GREYGATE_STORE_H
#define GREYGATE_STORE_H

#include <stddef.h>
#include <time.h>

#define STORE_REPLY_MAX	512	/* reply text kept, octets, NUL excluded */
/* the net of every remembered refusal: keyed by (sender, rcpt) alone */
#define STORE_REPLY_NET	"*"
#define STORE_ERR_MAX	512	/* store_errstr() length, NUL included */

enum store_kind {
	STORE_TRIPLET,		/* (net, sender, rcpt), grey or passed */
	STORE_CLIENT,		/* net, auto-whitelisted */
	STORE_REPLY		/* (net, sender, rcpt), upstream rejection */
};

/* A triplet or a client record. */
struct store_rec {
	time_t		 first_seen;	/* first sight (of this grey period) */
	time_t		 last_seen;	/* last pass or use */
	long		 passes;	/* 0: still grey */
	time_t		 expires;	/* live while now <= expires */
};

/* One row as store_list() shows it; pointers valid during the callback. */
struct store_entry {
	enum store_kind	 kind;		/* which table */
	const char	*net;		/* client network, "192.0.2.0/24" */
	const char	*sender;	/* normalised sender; NULL for CLIENT */
	const char	*rcpt;		/* normalised rcpt; NULL for CLIENT */
	struct store_rec rec;		/* REPLY: only expires is set */
	const char	*reply;		/* REPLY: upstream reply, else NULL */
};

/* Rows present, expired or not, per kind. */
struct store_stats {
	long		 grey;		/* triplets with passes == 0 */
	long		 white;		/* triplets with passes >= 1 */
	long		 clients;	/* auto-whitelisted networks */
	long		 replies;	/* cached upstream rejections */
};

/* store_list() callback: return 0 to go on, -1 to stop (list returns -1) */
typedef int	(*store_list_cb)(const struct store_entry *, void *);

struct store;
struct greylist_params;		/* greylist.h */

/*
 * What a backend needs besides its spec; the Redis store reads these,
 * SQLite none.  NULL pointers and "" mean the default.
 */
struct store_options {
	const char	*redis_prefix;	/* key prefix; NULL: "greygate:" */
	const char	*redis_username; /* ACL user (Redis 6+); "": none */
	const char	*redis_password; /* AUTH password; "": none */
};

/*
 * Recipient verifications (verify.c) are kept as replies of this
 * pseudo-network and the null sender: (STORE_VERIFY_NET, "", rcpt).
 */
#define STORE_VERIFY_NET	"verify"

#define STORE_DECIDE_REPLY	100	/* decide: a cached reply instead */
#define STORE_REDIS_PREFIX	"greygate:"
#define STORE_REDIS_PORT	6379

/* A Redis store specification, parsed (store_redis_spec). */
struct store_redis_addr {
	char		 host[256];	/* name or address; "" for a socket */
	int		 port;		/* TCP port */
	char		 path[108];	/* unix socket; "" for TCP */
	int		 db;		/* SELECT db, 0-1000000 */
};

/*
 * The backend vtable.  Every function has the meaning and return
 * convention of the store_*() wrapper of the same name below; a backend
 * records its error text with store_seterr().
 */
struct store_ops {
	const char	*name;		/* "sqlite", "redis" */
	int	(*triplet_get)(struct store *, const char *, const char *,
		    const char *, struct store_rec *);
	int	(*triplet_put)(struct store *, const char *, const char *,
		    const char *, const struct store_rec *);
	long	(*triplet_count_passed)(struct store *, const char *, time_t);
	int	(*client_get)(struct store *, const char *, struct store_rec *);
	int	(*client_put)(struct store *, const char *,
		    const struct store_rec *);
	int	(*reply_get)(struct store *, const char *, const char *,
		    const char *, time_t, char *, size_t);
	int	(*reply_put)(struct store *, const char *, const char *,
		    const char *, const char *, time_t);
	int	(*del)(struct store *, enum store_kind, const char *,
		    const char *, const char *);
	int	(*reply_horizon)(struct store *, time_t, time_t *);
	long	(*expire)(struct store *, time_t);
	/* may be NULL: store_expire_some() then expires everything */
	long	(*expire_some)(struct store *, time_t, long);
	int	(*list)(struct store *, store_list_cb, void *);
	int	(*stats)(struct store *, struct store_stats *);
	void	(*close)(struct store *);	/* frees be, not the store */
	int	(*begin)(struct store *);	/* may be NULL: no batching */
	int	(*commit)(struct store *);
	/*
	 * May be NULL: greylist.c then applies the rules through the
	 * record operations above.  A backend shared by several processes
	 * (Redis) decides the whole triplet atomically here, with the
	 * semantics of greylist_check (write 1) and greylist_peek
	 * (write 0): the enum gl_result value, GL_ERROR on failure.  With
	 * reply non-NULL it first looks up a live cached upstream reply
	 * of the triplet, as store_reply_get does: when there is one it
	 * copies it into reply, decides nothing and answers
	 * STORE_DECIDE_REPLY (one round trip where two would do).
	 */
	int	(*decide)(struct store *, const struct greylist_params *,
		    const char *, const char *, const char *, time_t, int,
		    char *, size_t);
};

struct store {
	const struct store_ops *ops;	/* backend functions */
	void		*be;		/* backend state */
	char		 err[STORE_ERR_MAX]; /* last error, "" if none */
};

/*
 * store_open - open the store named by spec: "sqlite:PATH" (the file and
 * its schema are created when missing), "redis://HOST[:PORT][/DB]" or
 * "redis+unix:///PATH[?db=N]" (when built with hiredis; see
 * store_redis_spec).  NULL on failure with the reason in err.  The
 * Redis store opens even while the server is unreachable: every
 * operation then fails (-1) until a reconnection succeeds.
 * store_open_with takes the options above (opts may be NULL).
 */
struct store	*store_open(const char *spec, char *err, size_t errlen);
struct store	*store_open_with(const char *spec,
		    const struct store_options *opts, char *err,
		    size_t errlen);
/*
 * store_redis_spec - parse a Redis store spec: 0, or -1 with the reason
 * in err.  Accepted: redis://HOST, redis://HOST:PORT, redis://HOST:PORT/DB
 * (HOST a name, an IPv4 address or [IPv6]; PORT 6379 by default; DB 0
 * by default) and redis+unix:///PATH or redis+unix:///PATH?db=N.
 * Credentials in the spec (user:pass@) are refused: they belong in
 * redis_username and redis_password.  Works whether or not the Redis
 * store is built in.
 */
int		 store_redis_spec(const char *spec, struct store_redis_addr *,
		    char *err, size_t errlen);
/* store_redis_built - 1 when the Redis store is built in, else 0 */
int		 store_redis_built(void);
void		 store_close(struct store *);
const char	*store_errstr(const struct store *);

/* triplets: get 1/0/-1; put (insert or replace) 0/-1 */
int	store_triplet_get(struct store *, const char *net, const char *sender,
	    const char *rcpt, struct store_rec *);
int	store_triplet_put(struct store *, const char *net, const char *sender,
	    const char *rcpt, const struct store_rec *);
/* store_triplet_count_passed - live triplets (passes >= 1) of net, or -1 */
long	store_triplet_count_passed(struct store *, const char *net,
	    time_t now);

/* client networks: get 1/0/-1; put (insert or replace) 0/-1 */
int	store_client_get(struct store *, const char *net, struct store_rec *);
int	store_client_put(struct store *, const char *net,
	    const struct store_rec *);

/*
 * The rejected-recipient cache.  put keeps at most STORE_REPLY_MAX
 * octets of reply (0/-1); get copies a live reply into buf (1), says 0
 * when there is none or it expired before now, -1 on error.  A buffer
 * of STORE_REPLY_MAX + 1 octets always holds the whole reply.
 */
int	store_reply_put(struct store *, const char *net, const char *sender,
	    const char *rcpt, const char *reply, time_t expires);
int	store_reply_get(struct store *, const char *net, const char *sender,
	    const char *rcpt, time_t now, char *buf, size_t buflen);

/*
 * store_reply_horizon - in *until, the latest expiry of the live replies
 * (0 when there is none): 0, or -1 on error.  A backend that cannot tell
 * says TIME_MAX-like "always": every reply must then be asked for.
 */
int	store_reply_horizon(struct store *, time_t now, time_t *until);
/*
 * store_delete - remove one record: 1 removed, 0 absent, -1 error.
 * sender and rcpt are ignored (may be NULL) for STORE_CLIENT.
 */
int	store_delete(struct store *, enum store_kind, const char *net,
	    const char *sender, const char *rcpt);
/* store_expire - remove every row with expires < now; the count, or -1 */
long	store_expire(struct store *, time_t now);
/*
 * store_expire_some - a bounded share of store_expire(): rows with
 * expires < now among about limit keys after where the last call ended,
 * around again after the last.  Called often, it keeps the store tidy
 * at a cost per call that does not grow with the store.  The count, or
 * -1.
 */
long	store_expire_some(struct store *, time_t now, long limit);
/*
 * store_list - call cb for every row of every kind (triplets, then
 * clients, then replies, each sorted by key).  cb must not use the
 * store.  0 when done, -1 on error or when cb stopped it.
 */
int	store_list(struct store *, store_list_cb cb, void *arg);
int	store_stats(struct store *, struct store_stats *);
/*
 * store_begin, store_commit - group the writes of many decisions into one
 * transaction (the policy process commits every few milliseconds under
 * load, at once when idle).  0/-1; a no-op for a backend without them.
 */
int	store_begin(struct store *);
int	store_commit(struct store *);

/* store_entry_label - "GREY", "WHITE", "CLIENT" or "REPLY" */
const char	*store_entry_label(const struct store_entry *);

/* For backends only. */
void	store_seterr(struct store *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
struct store	*store_sqlite_open(const char *path, char *err, size_t errlen);
struct store	*store_redis_open(const struct store_redis_addr *,
		    const struct store_options *, char *err, size_t errlen);

#endif
