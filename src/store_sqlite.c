/*
 * store_sqlite - the embedded greylist store: one SQLite file in WAL
 * mode (crash-safe by SQLite's design, readers never block the writer),
 * synchronous=NORMAL, a 5 s busy timeout, and the hot-path statements
 * prepared once at open.  The schema is versioned with PRAGMA
 * user_version and brought up to date by numbered migrations at open,
 * inside one transaction.  This file knows tables and SQL, nothing of
 * the greylisting rules: it never reads the clock and never decides
 * whether a record is live, except for the reply cache lookup, which is
 * given now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"

#define BUSY_TIMEOUT_MS	5000

/*
 * Migrations: entry i takes the schema from user_version i to i + 1.
 * Never edit a released entry; append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1: triplets, auto-whitelisted clients, reply cache */
	"CREATE TABLE IF NOT EXISTS triplet ("
	"  net TEXT NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  rcpt TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  passes INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  PRIMARY KEY (net, sender, rcpt)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS triplet_expires ON triplet (expires);"
	/* auto_whitelist counts the live passed triplets of one net */
	"CREATE INDEX IF NOT EXISTS triplet_net_passed"
	"  ON triplet (net, expires) WHERE passes >= 1;"
	"CREATE TABLE IF NOT EXISTS client ("
	"  net TEXT NOT NULL PRIMARY KEY,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  passes INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS client_expires ON client (expires);"
	"CREATE TABLE IF NOT EXISTS reply ("
	"  net TEXT NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  rcpt TEXT NOT NULL,"
	"  reply TEXT NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  PRIMARY KEY (net, sender, rcpt)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS reply_expires ON reply (expires);",
	/*
	 * 1 -> 2: no secondary index on triplet.  Each pass rewrote three
	 * B-trees (the row and two indexes on expires) where one will do:
	 * expiry walks the primary key in chunks (sq_expire_some) and the
	 * auto_whitelist count reads the net's rows through its prefix.
	 */
	"DROP INDEX IF EXISTS triplet_expires;"
	"DROP INDEX IF EXISTS triplet_net_passed;",
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

enum q {
	Q_TRIPLET_GET,
	Q_TRIPLET_PUT,
	Q_TRIPLET_COUNT,
	Q_CLIENT_GET,
	Q_CLIENT_PUT,
	Q_REPLY_GET,
	Q_REPLY_PUT,
	Q_REPLY_HORIZON,
	Q_TRIPLET_DEL,
	Q_CLIENT_DEL,
	Q_REPLY_DEL,
	Q_TRIPLET_EXPIRE,
	Q_TRIPLET_CHUNK_END,
	Q_TRIPLET_EXPIRE_RANGE,
	Q_TRIPLET_EXPIRE_TAIL,
	Q_CLIENT_EXPIRE,
	Q_REPLY_EXPIRE,
	Q_TRIPLET_LIST,
	Q_CLIENT_LIST,
	Q_REPLY_LIST,
	Q_STATS,
	Q_MAX
};

static const char *const qsql[Q_MAX] = {
	[Q_TRIPLET_GET] = "SELECT first_seen, last_seen, passes, expires "
	    "FROM triplet WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
	[Q_TRIPLET_PUT] = "INSERT INTO triplet (net, sender, rcpt, "
	    "first_seen, last_seen, passes, expires) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	    "ON CONFLICT (net, sender, rcpt) DO UPDATE SET "
	    "first_seen = excluded.first_seen, "
	    "last_seen = excluded.last_seen, passes = excluded.passes, "
	    "expires = excluded.expires",
	[Q_TRIPLET_COUNT] = "SELECT count(*) FROM triplet "
	    "WHERE net = ?1 AND passes >= 1 AND expires >= ?2",
	[Q_CLIENT_GET] = "SELECT first_seen, last_seen, passes, expires "
	    "FROM client WHERE net = ?1",
	[Q_CLIENT_PUT] = "INSERT INTO client (net, first_seen, last_seen, "
	    "passes, expires) VALUES (?1, ?2, ?3, ?4, ?5) "
	    "ON CONFLICT (net) DO UPDATE SET "
	    "first_seen = excluded.first_seen, "
	    "last_seen = excluded.last_seen, passes = excluded.passes, "
	    "expires = excluded.expires",
	[Q_REPLY_GET] = "SELECT reply FROM reply WHERE net = ?1 AND "
	    "sender = ?2 AND rcpt = ?3 AND expires >= ?4",
	[Q_REPLY_PUT] = "INSERT INTO reply (net, sender, rcpt, reply, "
	    "expires) VALUES (?1, ?2, ?3, ?4, ?5) "
	    "ON CONFLICT (net, sender, rcpt) DO UPDATE SET "
	    "reply = excluded.reply, expires = excluded.expires",
	[Q_REPLY_HORIZON] = "SELECT max(expires) FROM reply "
	    "WHERE expires >= ?1",
	[Q_TRIPLET_DEL] = "DELETE FROM triplet "
	    "WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
	[Q_CLIENT_DEL] = "DELETE FROM client WHERE net = ?1",
	[Q_REPLY_DEL] = "DELETE FROM reply "
	    "WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
	[Q_TRIPLET_EXPIRE] = "DELETE FROM triplet WHERE expires < ?1",
	/* the last key of the next chunk after the cursor ?1..?3 */
	[Q_TRIPLET_CHUNK_END] = "SELECT net, sender, rcpt FROM triplet "
	    "WHERE (net, sender, rcpt) > (?1, ?2, ?3) "
	    "ORDER BY net, sender, rcpt LIMIT 1 OFFSET ?4",
	[Q_TRIPLET_EXPIRE_RANGE] = "DELETE FROM triplet "
	    "WHERE (net, sender, rcpt) > (?1, ?2, ?3) "
	    "AND (net, sender, rcpt) <= (?4, ?5, ?6) AND expires < ?7",
	[Q_TRIPLET_EXPIRE_TAIL] = "DELETE FROM triplet "
	    "WHERE (net, sender, rcpt) > (?1, ?2, ?3) AND expires < ?4",
	[Q_CLIENT_EXPIRE] = "DELETE FROM client WHERE expires < ?1",
	[Q_REPLY_EXPIRE] = "DELETE FROM reply WHERE expires < ?1",
	[Q_TRIPLET_LIST] = "SELECT net, sender, rcpt, first_seen, "
	    "last_seen, passes, expires FROM triplet "
	    "ORDER BY net, sender, rcpt",
	[Q_CLIENT_LIST] = "SELECT net, first_seen, last_seen, passes, "
	    "expires FROM client ORDER BY net",
	[Q_REPLY_LIST] = "SELECT net, sender, rcpt, reply, expires "
	    "FROM reply ORDER BY net, sender, rcpt",
	[Q_STATS] = "SELECT "
	    "(SELECT count(*) FROM triplet WHERE passes = 0), "
	    "(SELECT count(*) FROM triplet WHERE passes >= 1), "
	    "(SELECT count(*) FROM client), "
	    "(SELECT count(*) FROM reply)",
};

struct sqlite_be {
	sqlite3		*db;		/* the connection */
	char		*path;		/* for messages */
	sqlite3_stmt	*q[Q_MAX];	/* prepared at open */
	char		*cur[3];	/* expire_some: last key done, or NULL */
};

static int	sq_fail(struct store *, const char *);
static int	sq_exec(struct store *, const char *, const char *);
static int	sq_pragma_int(struct store *, const char *, int *);
static int	sq_migrate(struct store *);
static int	sq_bind_key(sqlite3_stmt *, const char *, const char *,
		    const char *);
static void	sq_read_rec(sqlite3_stmt *, int, struct store_rec *);
static const char *sq_text(sqlite3_stmt *, int);
static int	sq_get_rec(struct store *, enum q, const char *, struct
		    store_rec *);
static int	sq_step_done(struct store *, sqlite3_stmt *, const char *);
static int	sq_list_one(struct store *, enum q, store_list_cb, void *);
static int	sq_bind_cursor(struct sqlite_be *, sqlite3_stmt *);
static void	sq_cursor_free(struct sqlite_be *);

static int	sq_triplet_get(struct store *, const char *, const char *,
		    const char *, struct store_rec *);
static int	sq_triplet_put(struct store *, const char *, const char *,
		    const char *, const struct store_rec *);
static long	sq_triplet_count_passed(struct store *, const char *, time_t);
static int	sq_client_get(struct store *, const char *, struct store_rec *);
static int	sq_client_put(struct store *, const char *,
		    const struct store_rec *);
static int	sq_reply_get(struct store *, const char *, const char *,
		    const char *, time_t, char *, size_t);
static int	sq_reply_put(struct store *, const char *, const char *,
		    const char *, const char *, time_t);
static int	sq_reply_horizon(struct store *, time_t, time_t *);
static int	sq_del(struct store *, enum store_kind, const char *,
		    const char *, const char *);
static long	sq_delete_expired(struct store *, const enum q *, size_t,
		    time_t);
static long	sq_expire(struct store *, time_t);
static long	sq_expire_some(struct store *, time_t, long);
static int	sq_list(struct store *, store_list_cb, void *);
static int	sq_stats(struct store *, struct store_stats *);
static void	sq_close(struct store *);
static int	sq_begin(struct store *);
static int	sq_commit(struct store *);

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.triplet_get = sq_triplet_get,
	.triplet_put = sq_triplet_put,
	.triplet_count_passed = sq_triplet_count_passed,
	.client_get = sq_client_get,
	.client_put = sq_client_put,
	.reply_get = sq_reply_get,
	.reply_put = sq_reply_put,
	.reply_horizon = sq_reply_horizon,
	.del = sq_del,
	.expire = sq_expire,
	.expire_some = sq_expire_some,
	.list = sq_list,
	.stats = sq_stats,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
};

/* sq_begin - one write transaction for many decisions */
static int
sq_begin(struct store *st)
{
	return sq_exec(st, "BEGIN IMMEDIATE", "begin");
}

static int
sq_commit(struct store *st)
{
	struct sqlite_be *be = st->be;

	if (sq_exec(st, "COMMIT", "commit") == 0)
		return 0;
	if (!sqlite3_get_autocommit(be->db))
		(void)sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* sq_fail - "PATH: what: sqlite3_errmsg", always -1 */
static int
sq_fail(struct store *st, const char *what)
{
	struct sqlite_be *be = st->be;

	store_seterr(st, "%s: %s: %s", be->path, what,
	    sqlite3_errmsg(be->db));
	return -1;
}

static int
sq_exec(struct store *st, const char *sql, const char *what)
{
	struct sqlite_be *be = st->be;

	if (sqlite3_exec(be->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(st, what);
	return 0;
}

/* sq_pragma_int - the integer answer of a PRAGMA query */
static int
sq_pragma_int(struct store *st, const char *sql, int *v)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s;
	int		 rc;

	if (sqlite3_prepare_v2(be->db, sql, -1, &s, NULL) != SQLITE_OK)
		return sq_fail(st, sql);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sq_fail(st, sql);
		sqlite3_finalize(s);
		return -1;
	}
	*v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

/*
 * sq_migrate - bring the schema to SCHEMA_VERSION.  The version is read
 * again under the write lock so that two processes opening a new file
 * at once do not both run a migration.
 */
static int
sq_migrate(struct store *st)
{
	struct sqlite_be *be = st->be;
	char		 sql[64];
	int		 v;

	if (sq_pragma_int(st, "PRAGMA user_version", &v) == -1)
		return -1;
	if (v == SCHEMA_VERSION)
		return 0;
	if (v < 0 || v > SCHEMA_VERSION) {
		store_seterr(st, "%s: schema version %d is not one this "
		    "greygate knows (%d)", be->path, v, SCHEMA_VERSION);
		return -1;
	}
	if (sq_exec(st, "BEGIN IMMEDIATE", "migration") == -1)
		return -1;
	if (sq_pragma_int(st, "PRAGMA user_version", &v) == -1)
		goto fail;
	if (v < 0 || v > SCHEMA_VERSION) {
		store_seterr(st, "%s: schema version %d is not one this "
		    "greygate knows (%d)", be->path, v, SCHEMA_VERSION);
		goto fail;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (sq_exec(st, migrations[v], "migration") == -1)
			goto fail;
		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    v + 1);
		if (sq_exec(st, sql, "migration") == -1)
			goto fail;
	}
	if (sq_exec(st, "COMMIT", "migration") == -1)
		goto fail;
	return 0;
fail:
	sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* store_sqlite_open - open or create PATH, its schema and statements */
struct store *
store_sqlite_open(const char *path, char *err, size_t errlen)
{
	struct store	*st;
	struct sqlite_be *be;
	sqlite3_stmt	*s;
	const char	*mode;
	int		 i, rc;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	st->ops = &sqlite_ops;
	if ((be = calloc(1, sizeof(*be))) == NULL ||
	    (be->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(be);
		free(st);
		return NULL;
	}
	st->be = be;
	if (path[0] == '\0') {
		/* SQLite would open a private temporary database */
		store_seterr(st, "sqlite store needs a path");
		goto fail;
	}

	rc = sqlite3_open_v2(path, &be->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (be->db == NULL)
			store_seterr(st, "%s: %s", path, sqlite3_errstr(rc));
		else
			store_seterr(st, "%s: %s", path,
			    sqlite3_errmsg(be->db));
		goto fail;
	}
	sqlite3_extended_result_codes(be->db, 1);
	if (sqlite3_busy_timeout(be->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
		sq_fail(st, "busy_timeout");
		goto fail;
	}

	/* journal_mode answers with the mode in force: insist on WAL */
	if (sqlite3_prepare_v2(be->db, "PRAGMA journal_mode = WAL", -1, &s,
	    NULL) != SQLITE_OK) {
		sq_fail(st, "journal_mode");
		goto fail;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(st, "journal_mode");
		sqlite3_finalize(s);
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(s, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		store_seterr(st, "%s: cannot use WAL journal mode (got %s)",
		    path, mode ? mode : "nothing");
		sqlite3_finalize(s);
		goto fail;
	}
	sqlite3_finalize(s);
	if (sq_exec(st, "PRAGMA synchronous = NORMAL", "synchronous") == -1)
		goto fail;
	/* lookups from memory, not a pread(2) each: the file is mapped */
	if (sq_exec(st, "PRAGMA cache_size = -65536", "cache_size") == -1 ||
	    sq_exec(st, "PRAGMA mmap_size = 1073741824", "mmap_size") == -1 ||
	    sq_exec(st, "PRAGMA wal_autocheckpoint = 1000", "checkpoint") == -1)
		goto fail;
	if (sq_migrate(st) == -1)
		goto fail;

	for (i = 0; i < Q_MAX; i++) {
		if (sqlite3_prepare_v3(be->db, qsql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &be->q[i], NULL) != SQLITE_OK) {
			sq_fail(st, "prepare");
			goto fail;
		}
	}
	return st;
fail:
	snprintf(err, errlen, "%s", st->err);
	sq_close(st);
	free(st);
	return NULL;
}

static void
sq_close(struct store *st)
{
	struct sqlite_be *be = st->be;
	int		 i;

	if (be == NULL)
		return;
	for (i = 0; i < Q_MAX; i++)
		sqlite3_finalize(be->q[i]);
	/* every statement is finalized, so close cannot be refused */
	sqlite3_close(be->db);
	sq_cursor_free(be);
	free(be->path);
	free(be);
	st->be = NULL;
}

static int
sq_bind_key(sqlite3_stmt *s, const char *net, const char *sender,
    const char *rcpt)
{
	if (sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	if (sender != NULL &&
	    sqlite3_bind_text(s, 2, sender, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	if (rcpt != NULL &&
	    sqlite3_bind_text(s, 3, rcpt, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	return 0;
}

/* sq_read_rec - four integer columns from column i on */
static void
sq_read_rec(sqlite3_stmt *s, int i, struct store_rec *r)
{
	r->first_seen = (time_t)sqlite3_column_int64(s, i);
	r->last_seen = (time_t)sqlite3_column_int64(s, i + 1);
	r->passes = (long)sqlite3_column_int64(s, i + 2);
	r->expires = (time_t)sqlite3_column_int64(s, i + 3);
}

/* sq_text - a NOT NULL text column; "" if SQLite could not convert it */
static const char *
sq_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? (const char *)t : "";
}

/* sq_step_done - run a statement that returns no row, then reset it */
static int
sq_step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	if (sqlite3_step(s) != SQLITE_DONE) {
		sq_fail(st, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/* sq_get_rec - one record by key; the statement is already bound */
static int
sq_get_rec(struct store *st, enum q q, const char *what, struct store_rec *r)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[q];
	int		 rc;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		sq_read_rec(s, 0, r);
		sqlite3_reset(s);
		return 1;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	sq_fail(st, what);
	sqlite3_reset(s);
	return -1;
}

static int
sq_triplet_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, struct store_rec *r)
{
	struct sqlite_be *be = st->be;

	if (sq_bind_key(be->q[Q_TRIPLET_GET], net, sender, rcpt) == -1)
		return sq_fail(st, "triplet get");
	return sq_get_rec(st, Q_TRIPLET_GET, "triplet get", r);
}

static int
sq_triplet_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const struct store_rec *r)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_TRIPLET_PUT];

	if (sq_bind_key(s, net, sender, rcpt) == -1 ||
	    sqlite3_bind_int64(s, 4, r->first_seen) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, r->last_seen) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 6, r->passes) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 7, r->expires) != SQLITE_OK)
		return sq_fail(st, "triplet put");
	return sq_step_done(st, s, "triplet put");
}

static long
sq_triplet_count_passed(struct store *st, const char *net, time_t now)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_TRIPLET_COUNT];
	long		 n;

	if (sq_bind_key(s, net, NULL, NULL) == -1 ||
	    sqlite3_bind_int64(s, 2, now) != SQLITE_OK)
		return sq_fail(st, "triplet count");
	if (sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(st, "triplet count");
		sqlite3_reset(s);
		return -1;
	}
	n = (long)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

static int
sq_client_get(struct store *st, const char *net, struct store_rec *r)
{
	struct sqlite_be *be = st->be;

	if (sq_bind_key(be->q[Q_CLIENT_GET], net, NULL, NULL) == -1)
		return sq_fail(st, "client get");
	return sq_get_rec(st, Q_CLIENT_GET, "client get", r);
}

static int
sq_client_put(struct store *st, const char *net, const struct store_rec *r)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_CLIENT_PUT];

	if (sq_bind_key(s, net, NULL, NULL) == -1 ||
	    sqlite3_bind_int64(s, 2, r->first_seen) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, r->last_seen) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, r->passes) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, r->expires) != SQLITE_OK)
		return sq_fail(st, "client put");
	return sq_step_done(st, s, "client put");
}

static int
sq_reply_get(struct store *st, const char *net, const char *sender,
    const char *rcpt, time_t now, char *buf, size_t buflen)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_REPLY_GET];
	int		 rc;

	if (sq_bind_key(s, net, sender, rcpt) == -1 ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK)
		return sq_fail(st, "reply get");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (buflen > 0)
			snprintf(buf, buflen, "%s", sq_text(s, 0));
		sqlite3_reset(s);
		return 1;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	sq_fail(st, "reply get");
	sqlite3_reset(s);
	return -1;
}

static int
sq_reply_put(struct store *st, const char *net, const char *sender,
    const char *rcpt, const char *reply, time_t expires)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_REPLY_PUT];
	size_t		 len = strnlen(reply, STORE_REPLY_MAX);

	if (sq_bind_key(s, net, sender, rcpt) == -1 ||
	    sqlite3_bind_text(s, 4, reply, (int)len, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, expires) != SQLITE_OK)
		return sq_fail(st, "reply put");
	return sq_step_done(st, s, "reply put");
}

/* sq_reply_horizon - max(expires) of the live replies, through its index */
static int
sq_reply_horizon(struct store *st, time_t now, time_t *until)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_REPLY_HORIZON];

	if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
		return sq_fail(st, "reply horizon");
	if (sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(st, "reply horizon");
		sqlite3_reset(s);
		return -1;
	}
	/* max() of no row is NULL, read as 0 */
	*until = (time_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static int
sq_del(struct store *st, enum store_kind kind, const char *net,
    const char *sender, const char *rcpt)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s;

	switch (kind) {
	case STORE_TRIPLET:
		s = be->q[Q_TRIPLET_DEL];
		break;
	case STORE_CLIENT:
		s = be->q[Q_CLIENT_DEL];
		sender = rcpt = NULL;
		break;
	case STORE_REPLY:
		s = be->q[Q_REPLY_DEL];
		break;
	default:
		store_seterr(st, "%s: delete: unknown kind %d", be->path,
		    (int)kind);
		return -1;
	}
	if (sq_bind_key(s, net, sender, rcpt) == -1)
		return sq_fail(st, "delete");
	if (sq_step_done(st, s, "delete") == -1)
		return -1;
	return sqlite3_changes(be->db) > 0 ? 1 : 0;
}

/* sq_delete_expired - run the DELETE ... expires < ?1 statements qs */
static long
sq_delete_expired(struct store *st, const enum q *qs, size_t nq, time_t now)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s;
	long		 n = 0;
	size_t		 i;

	for (i = 0; i < nq; i++) {
		s = be->q[qs[i]];
		if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
			return sq_fail(st, "expire");
		if (sq_step_done(st, s, "expire") == -1)
			return -1;
		n += sqlite3_changes(be->db);
	}
	return n;
}

/* sq_expire - one transaction, so a reader never sees half of it */
static long
sq_expire(struct store *st, time_t now)
{
	static const enum q qs[] = { Q_TRIPLET_EXPIRE, Q_CLIENT_EXPIRE,
	    Q_REPLY_EXPIRE };
	struct sqlite_be *be = st->be;
	long		 n;

	if (sq_exec(st, "BEGIN IMMEDIATE", "expire") == -1)
		return -1;
	if ((n = sq_delete_expired(st, qs, sizeof(qs) / sizeof(qs[0]),
	    now)) == -1 || sq_exec(st, "COMMIT", "expire") == -1)
		goto fail;
	return n;
fail:
	sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* sq_bind_cursor - the expire_some cursor as ?1..?3 ("" at the start) */
static int
sq_bind_cursor(struct sqlite_be *be, sqlite3_stmt *s)
{
	int	i;

	for (i = 0; i < 3; i++)
		if (sqlite3_bind_text(s, i + 1, be->cur[i] ? be->cur[i] : "",
		    -1, SQLITE_STATIC) != SQLITE_OK)
			return -1;
	return 0;
}

/* sq_cursor_free - back to the start of the table */
static void
sq_cursor_free(struct sqlite_be *be)
{
	int	i;

	for (i = 0; i < 3; i++) {
		free(be->cur[i]);
		be->cur[i] = NULL;
	}
}

/*
 * sq_expire_some - the expired triplets among the next limit keys after
 * the cursor (then around again from the start), and every expired
 * client and reply, which their indexes find.  A call costs the same
 * whatever the size of the table, so the policy process can run one
 * every second without keeping a question waiting.
 */
static long
sq_expire_some(struct store *st, time_t now, long limit)
{
	static const enum q others[] = { Q_CLIENT_EXPIRE, Q_REPLY_EXPIRE };
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s;
	char		*end[3] = { NULL, NULL, NULL };
	long		 n, more;
	int		 i, rc;

	if (limit < 1)
		limit = 1;
	if (sq_exec(st, "BEGIN IMMEDIATE", "expire") == -1)
		return -1;
	s = be->q[Q_TRIPLET_CHUNK_END];
	if (sq_bind_cursor(be, s) == -1 ||
	    sqlite3_bind_int64(s, 4, limit - 1) != SQLITE_OK) {
		sq_fail(st, "expire");
		goto fail;
	}
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		for (i = 0; i < 3; i++)
			end[i] = strdup(sq_text(s, i));
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sq_fail(st, "expire");
		sqlite3_reset(s);
		goto fail;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW && (end[0] == NULL || end[1] == NULL ||
	    end[2] == NULL)) {
		store_seterr(st, "%s: expire: out of memory", be->path);
		goto fail;
	}
	if (rc == SQLITE_ROW) {
		s = be->q[Q_TRIPLET_EXPIRE_RANGE];
		for (i = 0; i < 3; i++)
			if (sqlite3_bind_text(s, i + 4, end[i], -1,
			    SQLITE_STATIC) != SQLITE_OK)
				break;
		rc = i == 3 ? sqlite3_bind_int64(s, 7, now) : SQLITE_ERROR;
	} else {
		s = be->q[Q_TRIPLET_EXPIRE_TAIL];
		rc = sqlite3_bind_int64(s, 4, now);
	}
	if (rc != SQLITE_OK || sq_bind_cursor(be, s) == -1) {
		sq_fail(st, "expire");
		goto fail;
	}
	if (sq_step_done(st, s, "expire") == -1)
		goto fail;
	n = sqlite3_changes(be->db);
	if ((more = sq_delete_expired(st, others, 2, now)) == -1 ||
	    sq_exec(st, "COMMIT", "expire") == -1)
		goto fail;
	n += more;
	/* the chunk's last key is the next start; none: around again */
	sq_cursor_free(be);
	for (i = 0; i < 3; i++)
		be->cur[i] = end[i];
	return n;
fail:
	for (i = 0; i < 3; i++)
		free(end[i]);
	sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* sq_list_one - step through one listing statement */
static int
sq_list_one(struct store *st, enum q q, store_list_cb cb, void *arg)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[q];
	struct store_entry e;
	int		 rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		e.net = sq_text(s, 0);
		switch (q) {
		case Q_TRIPLET_LIST:
			e.kind = STORE_TRIPLET;
			e.sender = sq_text(s, 1);
			e.rcpt = sq_text(s, 2);
			sq_read_rec(s, 3, &e.rec);
			break;
		case Q_CLIENT_LIST:
			e.kind = STORE_CLIENT;
			sq_read_rec(s, 1, &e.rec);
			break;
		default:
			e.kind = STORE_REPLY;
			e.sender = sq_text(s, 1);
			e.rcpt = sq_text(s, 2);
			e.reply = sq_text(s, 3);
			e.rec.expires = (time_t)sqlite3_column_int64(s, 4);
			break;
		}
		if (cb(&e, arg) != 0) {
			sqlite3_reset(s);
			store_seterr(st, "%s: list: stopped", be->path);
			return -1;
		}
	}
	if (rc != SQLITE_DONE) {
		sq_fail(st, "list");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

static int
sq_list(struct store *st, store_list_cb cb, void *arg)
{
	if (sq_list_one(st, Q_TRIPLET_LIST, cb, arg) == -1 ||
	    sq_list_one(st, Q_CLIENT_LIST, cb, arg) == -1 ||
	    sq_list_one(st, Q_REPLY_LIST, cb, arg) == -1)
		return -1;
	return 0;
}

static int
sq_stats(struct store *st, struct store_stats *ss)
{
	struct sqlite_be *be = st->be;
	sqlite3_stmt	*s = be->q[Q_STATS];

	if (sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(st, "stats");
		sqlite3_reset(s);
		return -1;
	}
	ss->grey = (long)sqlite3_column_int64(s, 0);
	ss->white = (long)sqlite3_column_int64(s, 1);
	ss->clients = (long)sqlite3_column_int64(s, 2);
	ss->replies = (long)sqlite3_column_int64(s, 3);
	sqlite3_reset(s);
	return 0;
}
