/*
 * store_redis - the shared greylist store: one Redis server (or a
 * replicated pair behind one address) that the policy processes of
 * several MX hosts use together, through hiredis.  Each decision is one
 * Lua script run atomically by the server (EVALSHA, EVAL when the
 * server lost the script), so that two hosts deciding the same triplet
 * at the same moment agree and count a pass once.  Every key carries a
 * TTL taken from the record's expires, so Redis expires by itself and
 * store_expire is a no-op.  One connection, opened lazily; after a
 * failure the next attempt waits 100 ms, doubling to 5 s, and a
 * question asked meanwhile fails at once: never a wait longer than the
 * connect timeout.  This file never logs (the policy process logs an
 * outage once) and never reveals the password.
 *
 * Keys, under the prefix P ("greygate:" by default; TAB separates the
 * parts, no SMTP address can contain one):
 *	P t:NET<TAB>SENDER<TAB>RCPT	hash f l p x (first_seen, last_seen,
 *					passes, expires): a triplet
 *	P c:NET				hash f l p x: a whitelisted network
 *	P r:NET<TAB>SENDER<TAB>RCPT	hash m x (reply, expires)
 *	P n:NET				sorted set: the passed triplets of
 *					NET, SENDER<TAB>RCPT scored by
 *					expires (the auto_whitelist count)
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "greylist.h"
#include "store.h"

#define CONNECT_TIMEOUT_MS	500	/* a question never waits longer */
#define IO_TIMEOUT_MS		1000	/* one command, once connected */
#define BACKOFF_MIN_MS		100	/* after a failure, first wait */
#define BACKOFF_MAX_MS		5000	/* doubling up to this */
#define KEY_MAX			1400	/* P + kind + net + 2 addresses */
#define SCAN_COUNT		"1000"

/* Lua: shared helpers, prepended to every script */
#define LUA_KEEP							\
	"local function keep(k, x)\n"					\
	"  redis.call('PEXPIREAT', k, (tonumber(x) + 1) * 1000)\n"	\
	"end\n"								\
	"local function keepset(k)\n"					\
	"  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')\n"	\
	"  if top[2] then keep(k, top[2]) end\n"			\
	"end\n"

enum script {
	SCR_DECIDE,
	SCR_TPUT,
	SCR_CPUT,
	SCR_RPUT,
	SCR_TDEL,
	SCR_MAX
};

/*
 * The scripts.  SCR_DECIDE is greylist_decide (greylist.c) in Lua:
 * KEYS client, triplet, net set and optionally the triplet's cached
 * reply; ARGV now, delay, retry_window, expire, auto_whitelist, write
 * (1/0), SENDER<TAB>RCPT.  It answers 0 pass, 1 whitelist, 2 greylist,
 * or {100, text} for a live cached reply (then it decides nothing).  A key lives until its expires second is
 * over, so a record the rules would call expired is gone or ignored.
 */
static const char *const scripts[SCR_MAX] = {
	[SCR_DECIDE] = LUA_KEEP
	"local now = tonumber(ARGV[1])\n"
	"local delay, window = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"local expire, awl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local write, member = ARGV[6] == '1', ARGV[7]\n"
	"if KEYS[4] then\n"
	"  local r = redis.call('HMGET', KEYS[4], 'm', 'x')\n"
	"  if r[2] and tonumber(r[2]) >= now then return {100, r[1]} end\n"
	"end\n"
	"local c = redis.call('HMGET', KEYS[1], 'p', 'x')\n"
	"if c[2] and now <= tonumber(c[2]) then\n"
	"  if write then\n"
	"    redis.call('HSET', KEYS[1], 'l', now, 'p', tonumber(c[1]) + 1,\n"
	"      'x', now + expire)\n"
	"    keep(KEYS[1], now + expire)\n"
	"  end\n"
	"  return 1\n"
	"end\n"
	"local t = redis.call('HMGET', KEYS[2], 'f', 'p', 'x')\n"
	"local found = t[3] ~= false\n"
	"if found then\n"
	"  if tonumber(t[2]) == 0 then\n"
	"    local age = now - tonumber(t[1])\n"
	"    if age >= 0 and age < delay then return 2 end\n"
	"    if age < 0 or age > window then found = false end\n"
	"  elseif now > tonumber(t[3]) then\n"
	"    found = false\n"
	"  end\n"
	"end\n"
	"if not found then\n"
	"  if write then\n"
	"    redis.call('HSET', KEYS[2], 'f', now, 'l', now, 'p', 0,\n"
	"      'x', now + window)\n"
	"    keep(KEYS[2], now + window)\n"
	"    redis.call('ZREM', KEYS[3], member)\n"
	"  end\n"
	"  return 2\n"
	"end\n"
	"if not write then return 0 end\n"
	"redis.call('HSET', KEYS[2], 'l', now, 'p', tonumber(t[2]) + 1,\n"
	"  'x', now + expire)\n"
	"keep(KEYS[2], now + expire)\n"
	"redis.call('ZADD', KEYS[3], now + expire, member)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)\n"
	"keepset(KEYS[3])\n"
	"if awl > 0 then\n"
	"  local n = redis.call('ZCARD', KEYS[3])\n"
	"  if n >= awl then\n"
	"    redis.call('HSET', KEYS[1], 'f', now, 'l', now, 'p', n,\n"
	"      'x', now + expire)\n"
	"    keep(KEYS[1], now + expire)\n"
	"  end\n"
	"end\n"
	"return 0\n",
	/* KEYS triplet, net set; ARGV first, last, passes, expires, member */
	[SCR_TPUT] = LUA_KEEP
	"redis.call('HSET', KEYS[1], 'f', ARGV[1], 'l', ARGV[2],\n"
	"  'p', ARGV[3], 'x', ARGV[4])\n"
	"keep(KEYS[1], ARGV[4])\n"
	"if tonumber(ARGV[3]) >= 1 then\n"
	"  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])\n"
	"  keepset(KEYS[2])\n"
	"else\n"
	"  redis.call('ZREM', KEYS[2], ARGV[5])\n"
	"end\n"
	"return 0\n",
	/* KEYS client; ARGV first, last, passes, expires */
	[SCR_CPUT] = LUA_KEEP
	"redis.call('HSET', KEYS[1], 'f', ARGV[1], 'l', ARGV[2],\n"
	"  'p', ARGV[3], 'x', ARGV[4])\n"
	"keep(KEYS[1], ARGV[4])\n"
	"return 0\n",
	/* KEYS reply; ARGV text, expires */
	[SCR_RPUT] = LUA_KEEP
	"redis.call('HSET', KEYS[1], 'm', ARGV[1], 'x', ARGV[2])\n"
	"keep(KEYS[1], ARGV[2])\n"
	"return 0\n",
	/* KEYS triplet, net set; ARGV member: 1 deleted, 0 absent */
	[SCR_TDEL] = (
	"redis.call('ZREM', KEYS[2], ARGV[1])\n"
	"return redis.call('DEL', KEYS[1])\n"),
};

struct redis_be {
	struct store_redis_addr addr;		/* where */
	char		 where[300];		/* "HOST:PORT/DB", for errors */
	char		 prefix[128];		/* key prefix */
	char		 username[128];		/* ACL user, "" none */
	char		 password[256];		/* "" none; never shown */
	redisContext	*c;			/* NULL: not connected */
	char		 sha[SCR_MAX][48];	/* SCRIPT LOAD answers */
	struct timespec	 retry_at;		/* no attempt before */
	long		 backoff_ms;		/* next wait; 0: none yet */
	char		 down[256];		/* why the last attempt failed */
	int		 connecting;		/* in rd_connect: no retry */
};

/* A row gathered by SCAN for list and stats. */
struct rd_row {
	struct store_entry e;			/* what the callback sees */
	char		*key;			/* owns the strings of e */
	char		*reply;
};

static long	ms_until(const struct timespec *);
static void	rd_drop(struct store *, const char *);
static int	rd_connect(struct store *);
static redisReply *rd_argv(struct store *, int, const char **,
		    const size_t *);
static int	rd_reply_err(struct store *, redisReply *, const char *);
static redisReply *rd_eval(struct store *, enum script, int, int,
		    const char **);
static long	rd_eval_int(struct store *, enum script, int, int,
		    const char **, const char *);
static int	rd_key(struct store *, char *, char, const char *,
		    const char *, const char *);
static int	rd_member(char *, const char *, const char *);
static int	rd_rec_get(struct store *, const char *, struct store_rec *);
static int	rd_rec_put(struct store *, enum script, const char *,
		    const char *, const char *, const struct store_rec *);
static int	rd_triplet_get(struct store *, const char *, const char *,
		    const char *, struct store_rec *);
static int	rd_triplet_put(struct store *, const char *, const char *,
		    const char *, const struct store_rec *);
static long	rd_triplet_count_passed(struct store *, const char *, time_t);
static int	rd_client_get(struct store *, const char *, struct store_rec *);
static int	rd_client_put(struct store *, const char *,
		    const struct store_rec *);
static int	rd_reply_get(struct store *, const char *, const char *,
		    const char *, time_t, char *, size_t);
static int	rd_reply_put(struct store *, const char *, const char *,
		    const char *, const char *, time_t);
static int	rd_del(struct store *, enum store_kind, const char *,
		    const char *, const char *);
static long	rd_expire(struct store *, time_t);
static int	rd_row_cmp(const void *, const void *);
static int	rd_row_fill(struct rd_row *, enum store_kind, const char *,
		    const redisReply *);
static void	rd_rows_free(struct rd_row *, size_t);
static int	rd_scan(struct store *, struct rd_row **, size_t *);
static int	rd_list(struct store *, store_list_cb, void *);
static int	rd_stats(struct store *, struct store_stats *);
static void	rd_close(struct store *);
static int	rd_decide(struct store *, const struct greylist_params *,
		    const char *, const char *, const char *, time_t, int,
		    char *, size_t);

static const struct store_ops redis_ops = {
	.name = "redis",
	.triplet_get = rd_triplet_get,
	.triplet_put = rd_triplet_put,
	.triplet_count_passed = rd_triplet_count_passed,
	.client_get = rd_client_get,
	.client_put = rd_client_put,
	.reply_get = rd_reply_get,
	.reply_put = rd_reply_put,
	/* reply_horizon: none, another MX may add a reply: always ask */
	.del = rd_del,
	.expire = rd_expire,
	/* expire_some: none, Redis expires keys by itself */
	.list = rd_list,
	.stats = rd_stats,
	.close = rd_close,
	/* begin, commit: none, each decision is atomic alone */
	.decide = rd_decide,
};

struct store *
store_redis_open(const struct store_redis_addr *a,
    const struct store_options *o, char *err, size_t errlen)
{
	struct store	*st;
	struct redis_be	*be;
	const char	*prefix = STORE_REDIS_PREFIX;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (be = calloc(1, sizeof(*be))) == NULL) {
		free(st);
		snprintf(err, errlen, "redis store: out of memory");
		return NULL;
	}
	st->ops = &redis_ops;
	st->be = be;
	be->addr = *a;
	if (o != NULL && o->redis_prefix != NULL)
		prefix = o->redis_prefix;
	if (strlcpy(be->prefix, prefix, sizeof(be->prefix)) >=
	    sizeof(be->prefix) ||
	    (o != NULL && o->redis_username != NULL &&
	    strlcpy(be->username, o->redis_username, sizeof(be->username)) >=
	    sizeof(be->username)) ||
	    (o != NULL && o->redis_password != NULL &&
	    strlcpy(be->password, o->redis_password, sizeof(be->password)) >=
	    sizeof(be->password))) {
		snprintf(err, errlen, "redis store: prefix, username or "
		    "password too long");
		rd_close(st);
		free(st);
		return NULL;
	}
	if (a->path[0] != '\0')
		snprintf(be->where, sizeof(be->where), "%s?db=%d", a->path,
		    a->db);
	else
		snprintf(be->where, sizeof(be->where), "%s%s%s:%d/%d",
		    strchr(a->host, ':') ? "[" : "", a->host,
		    strchr(a->host, ':') ? "]" : "", a->port, a->db);
	/* a first attempt now; an unreachable server is not an error yet */
	(void)rd_connect(st);
	return st;
}

static void
rd_close(struct store *st)
{
	struct redis_be	*be = st->be;

	if (be == NULL)
		return;
	if (be->c != NULL)
		redisFree(be->c);
	explicit_bzero(be->password, sizeof(be->password));
	free(be);
	st->be = NULL;
}

/* ms_until - milliseconds from now (monotonic) to t, <= 0 once past */
static long
ms_until(const struct timespec *t)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (t->tv_sec - now.tv_sec) * 1000 +
	    (t->tv_nsec - now.tv_nsec) / 1000000;
}

/*
 * rd_drop - the connection is unusable: close it and wait before the
 * next attempt, 100 ms doubling to 5 s while attempts keep failing
 */
static void
rd_drop(struct store *st, const char *why)
{
	struct redis_be	*be = st->be;
	long		 ms;

	/* why may be the connection's own errstr: keep it first */
	if (why != be->down)
		(void)strlcpy(be->down, why, sizeof(be->down));
	if (be->c != NULL) {
		redisFree(be->c);
		be->c = NULL;
	}
	be->connecting = 0;
	ms = be->backoff_ms > 0 ? be->backoff_ms : BACKOFF_MIN_MS;
	be->backoff_ms = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
	clock_gettime(CLOCK_MONOTONIC, &be->retry_at);
	be->retry_at.tv_sec += ms / 1000;
	be->retry_at.tv_nsec += (ms % 1000) * 1000000L;
	if (be->retry_at.tv_nsec >= 1000000000L) {
		be->retry_at.tv_sec++;
		be->retry_at.tv_nsec -= 1000000000L;
	}
	store_seterr(st, "redis %s: %s", be->where, be->down);
}

/* rd_connect - connect, authenticate, select, load the scripts; 0/-1 */
static int
rd_connect(struct store *st)
{
	struct redis_be	*be = st->be;
	struct timeval	 ctv = { 0, CONNECT_TIMEOUT_MS * 1000L };
	struct timeval	 iotv = { IO_TIMEOUT_MS / 1000,
			    (IO_TIMEOUT_MS % 1000) * 1000L };
	redisReply	*r;
	const char	*argv[3];
	char		 db[16], why[256];
	long		 wait;
	int		 i;

	if (be->c != NULL)
		return 0;
	if (be->backoff_ms > 0 && (wait = ms_until(&be->retry_at)) > 0) {
		store_seterr(st, "redis %s: %s (next attempt in %ld ms)",
		    be->where, be->down, wait);
		return -1;
	}
	if (be->addr.path[0] != '\0')
		be->c = redisConnectUnixWithTimeout(be->addr.path, ctv);
	else
		be->c = redisConnectWithTimeout(be->addr.host, be->addr.port,
		    ctv);
	if (be->c == NULL || be->c->err) {
		rd_drop(st, be->c != NULL ? be->c->errstr :
		    "cannot allocate a connection");
		return -1;
	}
	be->connecting = 1;
	(void)fcntl(be->c->fd, F_SETFD, FD_CLOEXEC);
	if (redisSetTimeout(be->c, iotv) != REDIS_OK) {
		rd_drop(st, "cannot set the timeout");
		return -1;
	}
	if (be->password[0] != '\0') {
		/* Redis 6 ACLs: AUTH user pass; before: AUTH pass */
		argv[0] = "AUTH";
		i = 1;
		if (be->username[0] != '\0')
			argv[i++] = be->username;
		argv[i++] = be->password;
		if ((r = rd_argv(st, i, argv, NULL)) == NULL)
			return -1;
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "AUTH refused: %s", r->str);
			freeReplyObject(r);
			rd_drop(st, why);
			return -1;
		}
		freeReplyObject(r);
	}
	if (be->addr.db != 0) {
		snprintf(db, sizeof(db), "%d", be->addr.db);
		argv[0] = "SELECT";
		argv[1] = db;
		if ((r = rd_argv(st, 2, argv, NULL)) == NULL)
			return -1;
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "SELECT %s: %s", db,
			    r->str);
			freeReplyObject(r);
			rd_drop(st, why);
			return -1;
		}
		freeReplyObject(r);
	}
	for (i = 0; i < SCR_MAX; i++) {
		argv[0] = "SCRIPT";
		argv[1] = "LOAD";
		argv[2] = scripts[i];
		if ((r = rd_argv(st, 3, argv, NULL)) == NULL)
			return -1;
		if (r->type != REDIS_REPLY_STRING ||
		    strlcpy(be->sha[i], r->str, sizeof(be->sha[i])) >=
		    sizeof(be->sha[i])) {
			snprintf(why, sizeof(why), "SCRIPT LOAD: %s",
			    r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			freeReplyObject(r);
			rd_drop(st, why);
			return -1;
		}
		freeReplyObject(r);
	}
	be->connecting = 0;
	be->backoff_ms = 0;
	return 0;
}

/*
 * rd_argv - one command (connecting first if need be); the reply, which
 * may be an error reply, or NULL when the connection failed (dropped).
 * A connection that was already open and turns out closed (the server's
 * idle timeout, a restart) is replaced at once and the command sent
 * once more: that is no outage.  A timeout is not retried.  Only for
 * commands that may run twice (reads, AUTH, SELECT, SCRIPT LOAD): a
 * script goes through rd_argv_once.
 */
static redisReply *
rd_argv(struct store *st, int argc, const char **argv, const size_t *len)
{
	struct redis_be	*be = st->be;
	redisReply	*r;
	int		 fresh = 0, tries, eno;

	for (tries = 0; tries < 2; tries++) {
		if (be->c == NULL) {
			if (rd_connect(st) == -1)
				return NULL;
			fresh = 1;
		}
		errno = 0;
		if ((r = redisCommandArgv(be->c, argc, argv, len)) != NULL)
			return r;
		eno = errno;
		if (fresh || be->connecting || tries > 0 ||
		    (be->c->err != REDIS_ERR_EOF &&
		    be->c->err != REDIS_ERR_IO) ||
		    eno == EAGAIN || eno == EWOULDBLOCK || eno == EINTR)
			break;
		redisFree(be->c);
		be->c = NULL;
	}
	rd_drop(st, be->c != NULL && be->c->errstr[0] ? be->c->errstr :
	    "connection lost");
	return NULL;
}

/*
 * rd_closed - has the server closed this idle connection (its timeout,
 * a restart)?  A zero-timeout peek: the FIN is already there.
 */
static int
rd_closed(redisContext *c)
{
	struct pollfd	pfd;
	char		b;

	pfd.fd = c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
		return 1;
	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/*
 * rd_argv_once - a command that changes state (a script): sent at most
 * once.  A connection the server has already closed is replaced first;
 * but once the command is out, a lost connection means it may have run,
 * and it is not sent again (a pass would count twice): the caller gets
 * NULL and answers per on_error.
 */
static redisReply *
rd_argv_once(struct store *st, int argc, const char **argv)
{
	struct redis_be	*be = st->be;
	redisReply	*r;

	if (be->c != NULL && !be->connecting && rd_closed(be->c)) {
		redisFree(be->c);
		be->c = NULL;
	}
	if (be->c == NULL && rd_connect(st) == -1)
		return NULL;
	if (be->c != NULL && (r = redisCommandArgv(be->c, argc, argv,
	    NULL)) != NULL)
		return r;
	rd_drop(st, be->c != NULL && be->c->errstr[0] ? be->c->errstr :
	    "connection lost");
	return NULL;
}

/* rd_reply_err - an error reply or one of another type: -1, else 0 */
static int
rd_reply_err(struct store *st, redisReply *r, const char *what)
{
	struct redis_be	*be = st->be;

	if (r->type == REDIS_REPLY_ERROR) {
		store_seterr(st, "redis %s: %s: %s", be->where, what, r->str);
		return -1;
	}
	return 0;
}

/*
 * rd_eval - run a script with nkeys keys then the other arguments in
 * args: EVALSHA, and EVAL when the server does not know the script
 * (restarted, SCRIPT FLUSH).  The reply, an error reply, or NULL.
 */
static redisReply *
rd_eval(struct store *st, enum script s, int nkeys, int nargs,
    const char **args)
{
	struct redis_be	*be = st->be;
	redisReply	*r;
	const char	*argv[16];
	char		 nk[8];
	int		 i;

	if (be->c == NULL && rd_connect(st) == -1)
		return NULL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = be->sha[s];
	argv[2] = nk;
	for (i = 0; i < nargs && i < 13; i++)
		argv[3 + i] = args[i];
	if ((r = rd_argv_once(st, 3 + i, argv)) == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* NOSCRIPT: it did not run */
		freeReplyObject(r);
		argv[0] = "EVAL";
		argv[1] = scripts[s];
		r = rd_argv_once(st, 3 + i, argv);
	}
	return r;
}

/* rd_eval_int - a script answering an integer: it, or -1 */
static long
rd_eval_int(struct store *st, enum script s, int nkeys, int nargs,
    const char **args, const char *what)
{
	redisReply	*r;
	long		 v;

	if ((r = rd_eval(st, s, nkeys, nargs, args)) == NULL)
		return -1;
	if (rd_reply_err(st, r, what) == -1) {
		freeReplyObject(r);
		return -1;
	}
	if (r->type != REDIS_REPLY_INTEGER) {
		store_seterr(st, "redis %s: %s: unexpected reply",
		    ((struct redis_be *)st->be)->where, what);
		freeReplyObject(r);
		return -1;
	}
	v = (long)r->integer;
	freeReplyObject(r);
	return v;
}

/*
 * rd_key - the key of a record: P + kind + ":" + net, and for a triplet
 * or a reply TAB sender TAB rcpt.  0, or -1 when it would not fit.
 */
static int
rd_key(struct store *st, char *buf, char kind, const char *net,
    const char *sender, const char *rcpt)
{
	struct redis_be	*be = st->be;
	int		 n;

	if (sender != NULL)
		n = snprintf(buf, KEY_MAX, "%s%c:%s\t%s\t%s", be->prefix,
		    kind, net, sender, rcpt);
	else
		n = snprintf(buf, KEY_MAX, "%s%c:%s", be->prefix, kind, net);
	if (n < 0 || n >= KEY_MAX) {
		store_seterr(st, "redis: key too long");
		return -1;
	}
	return 0;
}

/* rd_member - SENDER TAB RCPT, the member of the net's set */
static int
rd_member(char *buf, const char *sender, const char *rcpt)
{
	int	n;

	n = snprintf(buf, KEY_MAX, "%s\t%s", sender, rcpt);
	return n < 0 || n >= KEY_MAX ? -1 : 0;
}

/* rd_rec_get - the hash f l p x at key into r: 1, 0 absent, -1 */
static int
rd_rec_get(struct store *st, const char *key, struct store_rec *r)
{
	redisReply	*rp;
	const char	*argv[] = { "HMGET", key, "f", "l", "p", "x" };
	size_t		 i;
	long long	 v[4];
	int		 rc = 1;

	if ((rp = rd_argv(st, 6, argv, NULL)) == NULL)
		return -1;
	if (rd_reply_err(st, rp, "HMGET") == -1) {
		freeReplyObject(rp);
		return -1;
	}
	if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 4) {
		store_seterr(st, "redis: HMGET: unexpected reply");
		freeReplyObject(rp);
		return -1;
	}
	for (i = 0; i < 4; i++) {
		if (rp->element[i]->type != REDIS_REPLY_STRING) {
			rc = 0;
			break;
		}
		v[i] = strtoll(rp->element[i]->str, NULL, 10);
	}
	freeReplyObject(rp);
	if (rc == 1) {
		r->first_seen = (time_t)v[0];
		r->last_seen = (time_t)v[1];
		r->passes = (long)v[2];
		r->expires = (time_t)v[3];
	}
	return rc;
}

/* rd_rec_put - a triplet (SCR_TPUT, member set) or client (SCR_CPUT) */
static int
rd_rec_put(struct store *st, enum script s, const char *key,
    const char *setkey, const char *member, const struct store_rec *r)
{
	char		 f[24], l[24], p[24], x[24];
	const char	*args[7];
	int		 n = 0;

	snprintf(f, sizeof(f), "%lld", (long long)r->first_seen);
	snprintf(l, sizeof(l), "%lld", (long long)r->last_seen);
	snprintf(p, sizeof(p), "%ld", r->passes);
	snprintf(x, sizeof(x), "%lld", (long long)r->expires);
	args[n++] = key;
	if (setkey != NULL)
		args[n++] = setkey;
	args[n++] = f;
	args[n++] = l;
	args[n++] = p;
	args[n++] = x;
	if (member != NULL)
		args[n++] = member;
	return rd_eval_int(st, s, setkey != NULL ? 2 : 1, n, args, "put") ==
	    -1 ? -1 : 0;
}

static int
rd_triplet_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, struct store_rec *r)
{
	char	key[KEY_MAX];

	if (rd_key(st, key, 't', net, sender, rcpt) == -1)
		return -1;
	return rd_rec_get(st, key, r);
}

static int
rd_triplet_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const struct store_rec *r)
{
	char	key[KEY_MAX], set[KEY_MAX], m[KEY_MAX];

	if (rd_key(st, key, 't', net, sender, rcpt) == -1 ||
	    rd_key(st, set, 'n', net, NULL, NULL) == -1 ||
	    rd_member(m, sender, rcpt) == -1)
		return -1;
	return rd_rec_put(st, SCR_TPUT, key, set, m, r);
}

/* live passed triplets of net: the net's set, scored by expires */
static long
rd_triplet_count_passed(struct store *st, const char *net, time_t now)
{
	redisReply	*r;
	char		 set[KEY_MAX], min[24];
	const char	*argv[4];
	long		 n;

	if (rd_key(st, set, 'n', net, NULL, NULL) == -1)
		return -1;
	snprintf(min, sizeof(min), "%lld", (long long)now);
	argv[0] = "ZCOUNT";
	argv[1] = set;
	argv[2] = min;
	argv[3] = "+inf";
	if ((r = rd_argv(st, 4, argv, NULL)) == NULL)
		return -1;
	if (rd_reply_err(st, r, "ZCOUNT") == -1) {
		freeReplyObject(r);
		return -1;
	}
	n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
	freeReplyObject(r);
	return n;
}

static int
rd_client_get(struct store *st, const char *net, struct store_rec *r)
{
	char	key[KEY_MAX];

	if (rd_key(st, key, 'c', net, NULL, NULL) == -1)
		return -1;
	return rd_rec_get(st, key, r);
}

static int
rd_client_put(struct store *st, const char *net, const struct store_rec *r)
{
	char	key[KEY_MAX];

	if (rd_key(st, key, 'c', net, NULL, NULL) == -1)
		return -1;
	return rd_rec_put(st, SCR_CPUT, key, NULL, NULL, r);
}

static int
rd_reply_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, time_t now, char *buf, size_t buflen)
{
	redisReply	*r;
	char		 key[KEY_MAX];
	const char	*argv[4];
	int		 rc = 0;

	if (rd_key(st, key, 'r', net, sender, rcpt) == -1)
		return -1;
	argv[0] = "HMGET";
	argv[1] = key;
	argv[2] = "m";
	argv[3] = "x";
	if ((r = rd_argv(st, 4, argv, NULL)) == NULL)
		return -1;
	if (rd_reply_err(st, r, "HMGET") == -1) {
		freeReplyObject(r);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    strtoll(r->element[1]->str, NULL, 10) >= (long long)now) {
		if (buflen > 0)
			(void)strlcpy(buf, r->element[0]->str, buflen);
		rc = 1;
	}
	freeReplyObject(r);
	return rc;
}

static int
rd_reply_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const char *reply, time_t expires)
{
	char		 key[KEY_MAX], text[STORE_REPLY_MAX + 1], x[24];
	const char	*args[3];

	if (rd_key(st, key, 'r', net, sender, rcpt) == -1)
		return -1;
	(void)strlcpy(text, reply, sizeof(text));
	snprintf(x, sizeof(x), "%lld", (long long)expires);
	args[0] = key;
	args[1] = text;
	args[2] = x;
	return rd_eval_int(st, SCR_RPUT, 1, 3, args, "reply put") == -1 ?
	    -1 : 0;
}

static int
rd_del(struct store *st, enum store_kind kind, const char *net,
    const char *sender, const char *rcpt)
{
	redisReply	*r;
	char		 key[KEY_MAX], set[KEY_MAX], m[KEY_MAX];
	const char	*args[3];
	long		 n;

	if (kind == STORE_TRIPLET) {
		if (rd_key(st, key, 't', net, sender, rcpt) == -1 ||
		    rd_key(st, set, 'n', net, NULL, NULL) == -1 ||
		    rd_member(m, sender, rcpt) == -1)
			return -1;
		args[0] = key;
		args[1] = set;
		args[2] = m;
		n = rd_eval_int(st, SCR_TDEL, 2, 3, args, "delete");
		return n == -1 ? -1 : n > 0;
	}
	if (rd_key(st, key, kind == STORE_CLIENT ? 'c' : 'r', net,
	    kind == STORE_CLIENT ? NULL : sender, rcpt) == -1)
		return -1;
	args[0] = "DEL";
	args[1] = key;
	if ((r = rd_argv(st, 2, args, NULL)) == NULL)
		return -1;
	if (rd_reply_err(st, r, "DEL") == -1) {
		freeReplyObject(r);
		return -1;
	}
	n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
	freeReplyObject(r);
	return n > 0;
}

/* Redis removes a key when its TTL runs out: nothing left to do */
static long
rd_expire(struct store *st, time_t now)
{
	(void)st;
	(void)now;
	return 0;
}

/* rd_row_cmp - by kind (triplets, clients, replies), then by key */
static int
rd_row_cmp(const void *a, const void *b)
{
	const struct rd_row *x = a, *y = b;
	int		 c;

	if (x->e.kind != y->e.kind)
		return (int)x->e.kind - (int)y->e.kind;
	if ((c = strcmp(x->e.net, y->e.net)) != 0 ||
	    x->e.kind == STORE_CLIENT)
		return c;
	if ((c = strcmp(x->e.sender, y->e.sender)) != 0)
		return c;
	return strcmp(x->e.rcpt, y->e.rcpt);
}

/*
 * rd_row_fill - a row from its key (after "P k:") and HMGET reply:
 * 1 kept, 0 skipped (gone meanwhile, or not ours), -1 out of memory
 */
static int
rd_row_fill(struct rd_row *w, enum store_kind kind, const char *k,
    const redisReply *v)
{
	char	*t1, *t2;
	size_t	 i;

	memset(w, 0, sizeof(*w));
	if (v == NULL || v->type != REDIS_REPLY_ARRAY ||
	    v->elements != (kind == STORE_REPLY ? 2U : 4U))
		return 0;
	for (i = 0; i < v->elements; i++)
		if (v->element[i]->type != REDIS_REPLY_STRING)
			return 0;
	if ((w->key = strdup(k)) == NULL)
		return -1;
	w->e.kind = kind;
	w->e.net = w->key;
	if (kind != STORE_CLIENT) {
		if ((t1 = strchr(w->key, '\t')) == NULL ||
		    (t2 = strchr(t1 + 1, '\t')) == NULL) {
			free(w->key);
			w->key = NULL;
			return 0;
		}
		*t1 = *t2 = '\0';
		w->e.sender = t1 + 1;
		w->e.rcpt = t2 + 1;
	}
	if (kind == STORE_REPLY) {
		if ((w->reply = strdup(v->element[0]->str)) == NULL) {
			free(w->key);
			w->key = NULL;
			return -1;
		}
		w->e.reply = w->reply;
		w->e.rec.expires = (time_t)strtoll(v->element[1]->str, NULL,
		    10);
	} else {
		w->e.rec.first_seen = (time_t)strtoll(v->element[0]->str,
		    NULL, 10);
		w->e.rec.last_seen = (time_t)strtoll(v->element[1]->str,
		    NULL, 10);
		w->e.rec.passes = strtol(v->element[2]->str, NULL, 10);
		w->e.rec.expires = (time_t)strtoll(v->element[3]->str, NULL,
		    10);
	}
	return 1;
}

/* rd_rows_free - the rows and what they own */
static void
rd_rows_free(struct rd_row *rows, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(rows[i].key);
		free(rows[i].reply);
	}
	free(rows);
}

/*
 * rd_scan - every record under the prefix, through SCAN (never KEYS,
 * which would stall a shared server) and one pipelined HMGET a batch,
 * sorted as store_list promises.  0 with *rows (caller frees) or -1.
 */
static int
rd_scan(struct store *st, struct rd_row **rowsp, size_t *np)
{
	struct redis_be	*be = st->be;
	struct rd_row	*rows = NULL, *nr;
	redisReply	*r = NULL, *v, *keys;
	enum store_kind	*kind = NULL, *nk;
	char		 match[2 * sizeof(be->prefix) + 2], cursor[32];
	const char	*argv[6], *k, *p;
	size_t		 n = 0, cap = 0, i, j, plen = strlen(be->prefix);
	int		 rc;

	/* the prefix is a glob pattern for MATCH: escape it */
	for (p = be->prefix, j = 0; *p != '\0'; p++) {
		if (strchr("*?[]\\", *p) != NULL)
			match[j++] = '\\';
		match[j++] = *p;
	}
	match[j++] = '*';
	match[j] = '\0';
	(void)strlcpy(cursor, "0", sizeof(cursor));
	if (be->c == NULL && rd_connect(st) == -1)
		return -1;
	do {
		argv[0] = "SCAN";
		argv[1] = cursor;
		argv[2] = "MATCH";
		argv[3] = match;
		argv[4] = "COUNT";
		argv[5] = SCAN_COUNT;
		if ((r = rd_argv(st, 6, argv, NULL)) == NULL)
			goto fail;
		if (rd_reply_err(st, r, "SCAN") == -1)
			goto fail;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			store_seterr(st, "redis: SCAN: unexpected reply");
			goto fail;
		}
		/* COUNT is a hint: a batch may be larger */
		if ((nk = reallocarray(kind, r->element[1]->elements + 1,
		    sizeof(*kind))) == NULL) {
			store_seterr(st, "out of memory");
			goto fail;
		}
		kind = nk;
		(void)strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		keys = r->element[1];
		/* one HMGET per key of ours, all sent, then all read */
		for (i = 0; i < keys->elements; i++) {
			k = keys->element[i]->str;
			kind[i] = (enum store_kind)-1;
			if (keys->element[i]->type != REDIS_REPLY_STRING ||
			    strlen(k) < plen + 2 || k[plen + 1] != ':')
				continue;
			if (k[plen] == 't')
				kind[i] = STORE_TRIPLET;
			else if (k[plen] == 'c')
				kind[i] = STORE_CLIENT;
			else if (k[plen] == 'r')
				kind[i] = STORE_REPLY;
			else
				continue;
			if (kind[i] == STORE_REPLY)
				rc = redisAppendCommand(be->c,
				    "HMGET %s m x", k);
			else
				rc = redisAppendCommand(be->c,
				    "HMGET %s f l p x", k);
			if (rc != REDIS_OK) {
				rd_drop(st, "out of memory");
				goto fail;
			}
		}
		for (i = 0; i < keys->elements; i++) {
			if ((int)kind[i] == -1)
				continue;
			if (redisGetReply(be->c, (void **)&v) != REDIS_OK) {
				rd_drop(st, be->c != NULL &&
				    be->c->errstr[0] ? be->c->errstr :
				    "connection lost");
				goto fail;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				if ((nr = reallocarray(rows, cap,
				    sizeof(*rows))) == NULL) {
					freeReplyObject(v);
					store_seterr(st, "out of memory");
					goto fail;
				}
				rows = nr;
			}
			rc = rd_row_fill(&rows[n], kind[i],
			    keys->element[i]->str + plen + 2, v);
			freeReplyObject(v);
			if (rc == -1) {
				store_seterr(st, "out of memory");
				goto fail;
			}
			n += (size_t)rc;
		}
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0);
	free(kind);
	if (n > 0)
		qsort(rows, n, sizeof(*rows), rd_row_cmp);
	*rowsp = rows;
	*np = n;
	return 0;
fail:
	free(kind);
	if (r != NULL)
		freeReplyObject(r);
	rd_rows_free(rows, n);
	return -1;
}

static int
rd_list(struct store *st, store_list_cb cb, void *arg)
{
	struct rd_row	*rows;
	size_t		 n, i;
	int		 rc = 0;

	if (rd_scan(st, &rows, &n) == -1)
		return -1;
	for (i = 0; i < n && rc == 0; i++)
		rc = cb(&rows[i].e, arg);
	rd_rows_free(rows, n);
	return rc == 0 ? 0 : -1;
}

static int
rd_stats(struct store *st, struct store_stats *ss)
{
	struct rd_row	*rows;
	size_t		 n, i;

	if (rd_scan(st, &rows, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		switch (rows[i].e.kind) {
		case STORE_TRIPLET:
			if (rows[i].e.rec.passes > 0)
				ss->white++;
			else
				ss->grey++;
			break;
		case STORE_CLIENT:
			ss->clients++;
			break;
		case STORE_REPLY:
			ss->replies++;
			break;
		}
	}
	rd_rows_free(rows, n);
	return 0;
}

/*
 * rd_decide - greylist_decide as one script (see SCR_DECIDE); with
 * reply, the reply cache first (STORE_DECIDE_REPLY)
 */
static int
rd_decide(struct store *st, const struct greylist_params *p,
    const char *net, const char *sender, const char *rcpt, time_t now,
    int write, char *reply, size_t replylen)
{
	struct redis_be	*be = st->be;
	redisReply	*r;
	char		 ckey[KEY_MAX], tkey[KEY_MAX], set[KEY_MAX];
	char		 rkey[KEY_MAX], m[KEY_MAX], a[5][24];
	const char	*args[11];
	long		 v = -1;
	int		 n = 0, nkeys = 3;

	if (rd_key(st, ckey, 'c', net, NULL, NULL) == -1 ||
	    rd_key(st, tkey, 't', net, sender, rcpt) == -1 ||
	    rd_key(st, set, 'n', net, NULL, NULL) == -1 ||
	    rd_key(st, rkey, 'r', STORE_REPLY_NET, sender, rcpt) == -1 ||
	    rd_member(m, sender, rcpt) == -1)
		return GL_ERROR;
	snprintf(a[0], sizeof(a[0]), "%lld", (long long)now);
	snprintf(a[1], sizeof(a[1]), "%lld", (long long)p->delay);
	snprintf(a[2], sizeof(a[2]), "%lld", (long long)p->retry_window);
	snprintf(a[3], sizeof(a[3]), "%lld", (long long)p->expire);
	snprintf(a[4], sizeof(a[4]), "%d", p->auto_whitelist);
	args[n++] = ckey;
	args[n++] = tkey;
	args[n++] = set;
	if (reply != NULL && replylen > 0) {
		args[n++] = rkey;
		nkeys = 4;
	}
	args[n++] = a[0];
	args[n++] = a[1];
	args[n++] = a[2];
	args[n++] = a[3];
	args[n++] = a[4];
	args[n++] = write ? "1" : "0";
	args[n++] = m;
	if ((r = rd_eval(st, SCR_DECIDE, nkeys, n, args)) == NULL)
		return GL_ERROR;
	if (rd_reply_err(st, r, "decide") == -1) {
		freeReplyObject(r);
		return GL_ERROR;
	}
	if (r->type == REDIS_REPLY_INTEGER)
		v = (long)r->integer;
	else if (nkeys == 4 && r->type == REDIS_REPLY_ARRAY &&
	    r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER &&
	    r->element[0]->integer == STORE_DECIDE_REPLY &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		(void)strlcpy(reply, r->element[1]->str, replylen);
		v = STORE_DECIDE_REPLY;
	}
	freeReplyObject(r);
	switch (v) {
	case 0:
		return GL_PASS;
	case 1:
		return GL_WHITELIST;
	case 2:
		return GL_GREYLIST;
	case STORE_DECIDE_REPLY:
		return STORE_DECIDE_REPLY;
	}
	store_seterr(st, "redis %s: decide: unexpected answer", be->where);
	return GL_ERROR;
}
