/*
 * test_store - the SQLite greylist store on a temporary file: the file
 * and schema (user_version 2, WAL, indexes) are created at open, every
 * kind of record round-trips, expire removes exactly the expired rows,
 * and expire_some the expired rows of one chunk at a time,
 * delete/list/stats see what was written, data survives a reopen, and
 * failures (bad path, not a database, unknown spec, newer schema, a
 * store that breaks under us) come back as NULL or -1 with a message.
 */
#include <sys/stat.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "tap.h"
#include "redis_server.h"

#define T0	((time_t)1700000000)

static char	tmpdir[256], dbpath[320], spec[330];

static void
tmp_setup(void)
{
	const char	*t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX",
	    t != NULL && t[0] != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
		exit(1);
	}
	snprintf(dbpath, sizeof(dbpath), "%s/gl.db", tmpdir);
	snprintf(spec, sizeof(spec), "sqlite:%s", dbpath);
}

static void
tmp_rm(const char *name)
{
	char	p[400];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	unlink(p);
}

static void
tmp_cleanup(void)
{
	tmp_rm("gl.db");
	tmp_rm("gl.db-wal");
	tmp_rm("gl.db-shm");
	tmp_rm("junk.db");
	tmp_rm("chunks.db");
	tmp_rm("chunks.db-wal");
	tmp_rm("chunks.db-shm");
	tmp_rm("new.db");
	tmp_rm("new.db-wal");
	tmp_rm("new.db-shm");
	if (rmdir(tmpdir) == -1)
		printf("# rmdir %s: %s\n", tmpdir, strerror(errno));
}

/* sql_int - one integer from the database file through a second handle */
static long long
sql_int(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*s;
	long long	 v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return -2;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static const char *
sql_text(const char *path, const char *sql, int col, char *buf, size_t len)
{
	sqlite3		*db;
	sqlite3_stmt	*s;

	snprintf(buf, len, "(none)");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) ==
	    SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW &&
		    sqlite3_column_text(s, col) != NULL)
			snprintf(buf, len, "%s", sqlite3_column_text(s, col));
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return buf;
}

static int
sql_exec(const char *path, const char *sql)
{
	sqlite3	*db;
	int	 rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static struct store *
open_or_bail(const char *sp)
{
	struct store	*st;
	char		 err[512];

	if ((st = store_open(sp, err, sizeof(err))) == NULL) {
		printf("Bail out! store_open %s: %s\n", sp, err);
		tmp_cleanup();
		exit(1);
	}
	return st;
}

static void
test_schema(void)
{
	static const char *const objects[] = { "triplet", "client", "reply",
	    "client_expires", "reply_expires" };
	/* a pass rewrites the triplet's row and nothing else */
	static const char *const gone[] = { "triplet_expires",
	    "triplet_net_passed" };
	struct store	*st;
	struct stat	 sb;
	char		 sql[128], buf[160];
	size_t		 i;

	is_int(stat(dbpath, &sb), -1, "no database file before open");
	st = open_or_bail(spec);
	is_int(stat(dbpath, &sb), 0, "open creates the file");
	is_str(store_errstr(st), "", "no error after open");
	is_int(sql_int(dbpath, "PRAGMA user_version"), 2,
	    "schema user_version is 2");
	is_str(sql_text(dbpath, "PRAGMA journal_mode", 0, buf, sizeof(buf)),
	    "wal", "journal_mode is WAL");
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master "
		    "WHERE name = '%s'", objects[i]);
		is_int(sql_int(dbpath, sql), 1, "schema has %s", objects[i]);
	}
	for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master "
		    "WHERE name = '%s'", gone[i]);
		is_int(sql_int(dbpath, sql), 0, "schema has no %s", gone[i]);
	}
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN SELECT count(*) FROM "
	    "triplet WHERE net = 'x' AND passes >= 1 AND expires >= 0");
	/* EXPLAIN QUERY PLAN: id, parent, notused, detail */
	has_str(sql_text(dbpath, sql, 3, buf, sizeof(buf)),
	    "PRIMARY KEY (net=?)", "auto_whitelist count reads the net's "
	    "rows through the primary key");
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN DELETE FROM triplet "
	    "WHERE (net, sender, rcpt) > ('a', 'b', 'c') AND expires < 0");
	has_str(sql_text(dbpath, sql, 3, buf, sizeof(buf)),
	    "PRIMARY KEY ((net,sender,rcpt)>(?,?,?))", "an expiry chunk "
	    "starts through the primary key");
	store_close(st);
}

static const struct {
	const char	*net, *sender, *rcpt;
	struct store_rec rec;
} triplets[] = {
	{ "192.0.2.0/24", "alice@example.org", "bob@example.net",
	    { T0, T0, 0, T0 + 100 } },
	{ "192.0.2.0/24", "carol@example.org", "bob@example.net",
	    { T0 - 50, T0 - 10, 3, T0 + 1000 } },
	{ "192.0.2.0/24", "", "bob@example.net",
	    { T0 - 50, T0 - 10, 1, T0 - 1 } },		/* expired pass */
	{ "2001:db8:1::/64", "alice@example.org", "bob@example.net",
	    { T0, T0, 7, T0 } },			/* live: now == exp */
	{ "198.51.100.0/24", "dave@example.org", "bob@example.net",
	    { T0, T0, 2, T0 + 5 } },
};
#define NTRIPLETS	(sizeof(triplets) / sizeof(triplets[0]))

static void
test_triplets(struct store *st)
{
	struct store_rec r;
	size_t		 i;

	memset(&r, 0, sizeof(r));
	is_int(store_triplet_get(st, "192.0.2.0/24", "alice@example.org",
	    "bob@example.net", &r), 0, "triplet get: absent");
	for (i = 0; i < NTRIPLETS; i++)
		is_int(store_triplet_put(st, triplets[i].net,
		    triplets[i].sender, triplets[i].rcpt, &triplets[i].rec), 0,
		    "triplet put %s <%s> <%s>", triplets[i].net,
		    triplets[i].sender, triplets[i].rcpt);
	for (i = 0; i < NTRIPLETS; i++) {
		memset(&r, 0, sizeof(r));
		is_int(store_triplet_get(st, triplets[i].net,
		    triplets[i].sender, triplets[i].rcpt, &r), 1,
		    "triplet get %zu: found", i);
		is_int(r.first_seen, triplets[i].rec.first_seen,
		    "triplet get %zu: first_seen", i);
		is_int(r.last_seen, triplets[i].rec.last_seen,
		    "triplet get %zu: last_seen", i);
		is_int(r.passes, triplets[i].rec.passes,
		    "triplet get %zu: passes", i);
		is_int(r.expires, triplets[i].rec.expires,
		    "triplet get %zu: expires", i);
	}
	/* keys are exact: case and the other fields matter */
	is_int(store_triplet_get(st, "192.0.2.0/24", "Alice@example.org",
	    "bob@example.net", &r), 0, "triplet get: keys are exact");
	is_int(store_triplet_get(st, "192.0.2.0/24", "bob@example.net",
	    "alice@example.org", &r), 0, "triplet get: sender and rcpt "
	    "are not interchangeable");

	/* upsert */
	r.first_seen = T0 + 1;
	r.last_seen = T0 + 2;
	r.passes = 4;
	r.expires = T0 + 3;
	is_int(store_triplet_put(st, "198.51.100.0/24", "dave@example.org",
	    "bob@example.net", &r), 0, "triplet put: replace");
	memset(&r, 0, sizeof(r));
	store_triplet_get(st, "198.51.100.0/24", "dave@example.org",
	    "bob@example.net", &r);
	ok(r.first_seen == T0 + 1 && r.last_seen == T0 + 2 && r.passes == 4 &&
	    r.expires == T0 + 3, "triplet put: replaced in place");

	is_int(store_triplet_count_passed(st, "192.0.2.0/24", T0), 1,
	    "count passed: grey and expired passes do not count");
	is_int(store_triplet_count_passed(st, "192.0.2.0/24", T0 - 1), 2,
	    "count passed: at now == expires a pass is live");
	is_int(store_triplet_count_passed(st, "2001:db8:1::/64", T0), 1,
	    "count passed: IPv6 net");
	is_int(store_triplet_count_passed(st, "2001:db8:1::/64", T0 + 1), 0,
	    "count passed: one second later it is gone");
	is_int(store_triplet_count_passed(st, "203.0.113.0/24", T0), 0,
	    "count passed: unknown net");
}

static void
test_clients(struct store *st)
{
	struct store_rec r, w = { T0 - 5, T0, 5, T0 + 3024000 };

	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "client get: absent");
	is_int(store_client_put(st, "192.0.2.0/24", &w), 0, "client put");
	memset(&r, 0, sizeof(r));
	is_int(store_client_get(st, "192.0.2.0/24", &r), 1,
	    "client get: found");
	ok(r.first_seen == w.first_seen && r.last_seen == w.last_seen &&
	    r.passes == w.passes && r.expires == w.expires,
	    "client get: round trip");
	w.passes = 6;
	w.expires = T0 - 1;
	is_int(store_client_put(st, "192.0.2.0/24", &w), 0,
	    "client put: replace");
	store_client_get(st, "192.0.2.0/24", &r);
	ok(r.passes == 6 && r.expires == T0 - 1, "client put: replaced");
	is_int(store_client_get(st, "192.0.2.0/25", &r), 0,
	    "client get: another net");
	w.expires = T0 + 10;
	is_int(store_client_put(st, "2001:db8:1::/64", &w), 0,
	    "client put: IPv6");
}

static void
test_replies(struct store *st)
{
	static const char rej[] = "550 5.1.1 <nobody@example.net>: "
	    "Recipient address rejected: User unknown";
	char	buf[STORE_REPLY_MAX + 1], small[8], big[STORE_REPLY_MAX + 100];
	time_t	until = 1;

	is_int(store_reply_horizon(st, T0, &until), 0, "reply horizon: ok");
	is_int(until, 0, "reply horizon: 0 with no reply");
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0, buf, sizeof(buf)), 0,
	    "reply get: absent");
	is_int(store_reply_put(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", rej, T0 + 3600), 0, "reply put");
	buf[0] = '\0';
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0, buf, sizeof(buf)), 1,
	    "reply get: found");
	is_str(buf, rej, "reply get: the upstream text");
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0 + 3600, buf, sizeof(buf)), 1,
	    "reply get: live at now == expires");
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0 + 3601, buf, sizeof(buf)), 0,
	    "reply get: expired is not returned");
	is_int(store_reply_get(st, "192.0.2.0/24", "carol@example.org",
	    "nobody@example.net", T0, buf, sizeof(buf)), 0,
	    "reply get: other sender");

	memset(small, 'X', sizeof(small));
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0, small, 5), 1,
	    "reply get: short buffer");
	is_str(small, "550 ", "reply get: truncated to the buffer");
	is_int(small[5], 'X', "reply get: nothing written past it");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "554 ", 4);
	is_int(store_reply_put(st, "192.0.2.0/24", "alice@example.org",
	    "long@example.net", big, T0 + 3600), 0, "reply put: long text");
	is_int(store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "long@example.net", T0, buf, sizeof(buf)), 1,
	    "reply get: long text");
	is_int(strlen(buf), STORE_REPLY_MAX, "reply kept to STORE_REPLY_MAX");
	is_int(strncmp(buf, big, STORE_REPLY_MAX), 0, "reply: its start");

	is_int(store_reply_put(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", "550 5.1.1 gone", T0 + 7200), 0,
	    "reply put: replace");
	store_reply_get(st, "192.0.2.0/24", "alice@example.org",
	    "nobody@example.net", T0 + 3601, buf, sizeof(buf));
	is_str(buf, "550 5.1.1 gone", "reply put: replaced with new expiry");
	store_reply_horizon(st, T0, &until);
	is_int(until, T0 + 7200, "reply horizon: the latest expiry");
	store_reply_horizon(st, T0 + 3601, &until);
	is_int(until, T0 + 7200, "reply horizon: the latest live expiry");
	store_reply_horizon(st, T0 + 7201, &until);
	is_int(until, 0, "reply horizon: 0 once all expired");
}

/* The rows test_triplets/clients/replies leave, in list order. */
static const char *const listed[] = {
	"WHITE 192.0.2.0/24 <> <bob@example.net> 1 1699999990 1699999999",
	"GREY 192.0.2.0/24 <alice@example.org> <bob@example.net> 0 "
	    "1700000000 1700000100",
	"WHITE 192.0.2.0/24 <carol@example.org> <bob@example.net> 3 "
	    "1699999990 1700001000",
	"WHITE 198.51.100.0/24 <dave@example.org> <bob@example.net> 4 "
	    "1700000002 1700000003",
	"WHITE 2001:db8:1::/64 <alice@example.org> <bob@example.net> 7 "
	    "1700000000 1700000000",
	"CLIENT 192.0.2.0/24 - - 6 1700000000 1699999999",
	"CLIENT 2001:db8:1::/64 - - 6 1700000000 1700000010",
	"REPLY 192.0.2.0/24 <alice@example.org> <long@example.net> 0 0 "
	    "1700003600",
	"REPLY 192.0.2.0/24 <alice@example.org> <nobody@example.net> 0 0 "
	    "1700007200 550 5.1.1 gone",
};
#define NLISTED	(sizeof(listed) / sizeof(listed[0]))

struct collect {
	char	 line[16][700];		/* what the callback saw */
	size_t	 n;			/* rows seen */
	size_t	 stop_after;		/* 0: never stop */
};

static int
collect_cb(const struct store_entry *e, void *arg)
{
	struct collect	*c = arg;
	char		 reply[40];

	if (c->n >= 16)
		return -1;
	reply[0] = '\0';
	/* the long reply is abbreviated to keep the table readable */
	if (e->reply != NULL && strlen(e->reply) < 30)
		snprintf(reply, sizeof(reply), " %s", e->reply);
	if (e->kind == STORE_CLIENT)
		snprintf(c->line[c->n], sizeof(c->line[0]), "%s %s - - %ld "
		    "%lld %lld", store_entry_label(e), e->net, e->rec.passes,
		    (long long)e->rec.last_seen, (long long)e->rec.expires);
	else
		snprintf(c->line[c->n], sizeof(c->line[0]), "%s %s <%s> <%s> "
		    "%ld %lld %lld%s", store_entry_label(e), e->net,
		    e->sender, e->rcpt, e->rec.passes,
		    (long long)e->rec.last_seen, (long long)e->rec.expires,
		    reply);
	c->n++;
	if (c->stop_after != 0 && c->n >= c->stop_after)
		return -1;
	return 0;
}

static void
test_list(struct store *st)
{
	struct collect	*c;
	size_t		 i;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		ok(0, "calloc");
		return;
	}
	is_int(store_list(st, collect_cb, c), 0, "list");
	is_int(c->n, NLISTED, "list: every row of every kind");
	for (i = 0; i < NLISTED && i < c->n; i++)
		is_str(c->line[i], listed[i], "list row %zu", i);

	memset(c, 0, sizeof(*c));
	c->stop_after = 2;
	is_int(store_list(st, collect_cb, c), -1, "list: callback stops it");
	is_int(c->n, 2, "list: no row after the stop");
	/* the statement was reset: a new listing starts from the top */
	memset(c, 0, sizeof(*c));
	store_list(st, collect_cb, c);
	is_int(c->n, NLISTED, "list again after a stop");
	free(c);
}

static void
test_stats(struct store *st, long grey, long white, long clients,
    long replies, const char *when)
{
	struct store_stats s;

	memset(&s, 0xff, sizeof(s));
	is_int(store_stats(st, &s), 0, "stats %s", when);
	is_int(s.grey, grey, "stats %s: grey", when);
	is_int(s.white, white, "stats %s: white", when);
	is_int(s.clients, clients, "stats %s: clients", when);
	is_int(s.replies, replies, "stats %s: replies", when);
}

static void
test_delete(struct store *st)
{
	struct store_rec r;

	is_int(store_delete(st, STORE_TRIPLET, "192.0.2.0/24",
	    "carol@example.org", "bob@example.net"), 1, "delete triplet");
	is_int(store_triplet_get(st, "192.0.2.0/24", "carol@example.org",
	    "bob@example.net", &r), 0, "deleted triplet is gone");
	is_int(store_delete(st, STORE_TRIPLET, "192.0.2.0/24",
	    "carol@example.org", "bob@example.net"), 0,
	    "delete triplet again: absent");
	is_int(store_triplet_get(st, "192.0.2.0/24", "alice@example.org",
	    "bob@example.net", &r), 1, "the other triplets stay");
	is_int(store_delete(st, STORE_CLIENT, "2001:db8:1::/64", NULL, NULL),
	    1, "delete client");
	is_int(store_client_get(st, "2001:db8:1::/64", &r), 0,
	    "deleted client is gone");
	is_int(store_delete(st, STORE_REPLY, "192.0.2.0/24",
	    "alice@example.org", "long@example.net"), 1, "delete reply");
	is_int(store_delete(st, STORE_REPLY, "192.0.2.0/24",
	    "alice@example.org", "long@example.net"), 0,
	    "delete reply again: absent");
	is_int(store_delete(st, STORE_TRIPLET, "192.0.2.0/24", NULL, NULL),
	    -1, "delete triplet without sender: refused");
	has_str(store_errstr(st), "needs sender", "and says why");
}

static void
test_expire(struct store *st)
{
	struct store_rec r;

	/*
	 * Left: triplets <> (exp T0-1), alice (T0+100), dave (T0+3),
	 * v6 alice (T0); client 192.0.2.0/24 (T0-1); reply nobody (T0+7200).
	 */
	is_int(store_expire(st, T0), 2, "expire at T0: two rows expired");
	is_int(store_triplet_get(st, "192.0.2.0/24", "", "bob@example.net",
	    &r), 0, "expired pass removed");
	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "expired client removed");
	is_int(store_triplet_get(st, "2001:db8:1::/64", "alice@example.org",
	    "bob@example.net", &r), 1, "expires == now is kept");
	is_int(store_expire(st, T0), 0, "expire again: nothing");
	is_int(store_expire(st, T0 + 101), 3, "expire at T0+101: three more");
	test_stats(st, 0, 0, 0, 1, "after expire");
	is_int(store_expire(st, T0 + 7201), 1, "expire the reply");
	test_stats(st, 0, 0, 0, 0, "empty");
}

static void
test_reopen(void)
{
	struct store	*st;
	struct store_rec r, w = { T0, T0, 2, T0 + 10 };
	char		 buf[64];

	st = open_or_bail(spec);
	store_triplet_put(st, "192.0.2.0/24", "a@b.example", "c@d.example",
	    &w);
	store_client_put(st, "192.0.2.0/24", &w);
	store_reply_put(st, "192.0.2.0/24", "a@b.example", "x@d.example",
	    "550 no", T0 + 10);
	store_close(st);
	st = open_or_bail(spec);
	is_int(store_triplet_get(st, "192.0.2.0/24", "a@b.example",
	    "c@d.example", &r), 1, "reopen: triplet kept");
	is_int(r.passes, 2, "reopen: its passes");
	is_int(store_client_get(st, "192.0.2.0/24", &r), 1,
	    "reopen: client kept");
	is_int(store_reply_get(st, "192.0.2.0/24", "a@b.example",
	    "x@d.example", T0, buf, sizeof(buf)), 1, "reopen: reply kept");
	is_int(sql_int(dbpath, "PRAGMA user_version"), 2,
	    "reopen: user_version still 2");
	store_close(st);
}

/* store_begin/store_commit: a batch of writes is one transaction. */
static void
test_batch(void)
{
	struct store	*st;
	struct store_rec r, w = { T0, T0, 1, T0 + 10 };

	st = open_or_bail(spec);
	is_int(store_begin(st), 0, "batch: begin");
	is_int(store_triplet_put(st, "192.0.2.0/24", "b1@x.example",
	    "r@y.example", &w), 0, "batch: put inside");
	is_int(sql_int(dbpath, "SELECT count(*) FROM triplet WHERE sender = "
	    "'b1@x.example'"), 0, "batch: not visible to others before "
	    "commit");
	is_int(store_begin(st), -1, "batch: begin inside a batch refused");
	is_int(store_commit(st), 0, "batch: commit");
	is_int(sql_int(dbpath, "SELECT count(*) FROM triplet WHERE sender = "
	    "'b1@x.example'"), 1, "batch: visible after commit");
	is_int(store_commit(st), -1, "batch: commit without begin refused");
	is_int(store_triplet_get(st, "192.0.2.0/24", "b1@x.example",
	    "r@y.example", &r), 1, "batch: store usable after the errors");
	store_close(st);
}

/* A store that breaks while open: every operation says -1 and why. */
static void
test_broken(void)
{
	struct store	*st;
	struct store_rec r = { T0, T0, 0, T0 };
	struct store_stats ss;
	char		 buf[64];

	st = open_or_bail(spec);
	ok(sql_exec(dbpath, "DROP TABLE triplet; DROP TABLE client; "
	    "DROP TABLE reply") == 0, "drop the tables behind the store");
	is_int(store_triplet_put(st, "n", "s", "r", &r), -1,
	    "broken: triplet put -1");
	has_str(store_errstr(st), dbpath, "broken: message has the path");
	has_str(store_errstr(st), "no such table", "broken: and sqlite's "
	    "reason");
	is_int(store_triplet_get(st, "n", "s", "r", &r), -1,
	    "broken: triplet get -1");
	is_int(store_triplet_count_passed(st, "n", T0), -1,
	    "broken: count -1");
	is_int(store_client_get(st, "n", &r), -1, "broken: client get -1");
	is_int(store_client_put(st, "n", &r), -1, "broken: client put -1");
	is_int(store_reply_put(st, "n", "s", "r", "550", T0), -1,
	    "broken: reply put -1");
	is_int(store_reply_get(st, "n", "s", "r", T0, buf, sizeof(buf)), -1,
	    "broken: reply get -1");
	is_int(store_delete(st, STORE_CLIENT, "n", NULL, NULL), -1,
	    "broken: delete -1");
	is_int(store_expire(st, T0), -1, "broken: expire -1");
	is_int(store_stats(st, &ss), -1, "broken: stats -1");
	store_close(st);
	unlink(dbpath);
	tmp_rm("gl.db-wal");
	tmp_rm("gl.db-shm");
}

static void
test_open_errors(void)
{
	struct store	*st;
	char		 err[512], p[400], sp[420];
	FILE		*f;

	st = store_open("sqlite:/nonexistent/greygate/dir/greylist.db", err,
	    sizeof(err));
	ok(st == NULL, "open: missing directory refused");
	is_str(err, "/nonexistent/greygate/dir/greylist.db: unable to open "
	    "database file", "open: message has the path and sqlite's reason");
	store_close(st);

	snprintf(p, sizeof(p), "%s/junk.db", tmpdir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("this is not an SQLite database, but it is long enough "
		    "to look like a header of one, almost, nearly......\n", f);
		fclose(f);
	}
	snprintf(sp, sizeof(sp), "sqlite:%s", p);
	st = store_open(sp, err, sizeof(err));
	ok(st == NULL, "open: not a database refused");
	has_str(err, p, "open: not a database: the path");
	has_str(err, "file is not a database", "open: not a database: why");
	store_close(st);

	if (store_redis_built()) {
		/* nothing listens there: it opens, and says so when used */
		snprintf(sp, sizeof(sp), "redis://127.0.0.1:%d/0",
		    redis_free_port());
		st = store_open(sp, err, sizeof(err));
		ok(st != NULL, "open: redis opens while unreachable");
		if (st != NULL) {
			struct store_rec r;

			is_int(store_client_get(st, "192.0.2.0/24", &r), -1,
			    "open: an unreachable redis fails every call");
			has_str(store_errstr(st), "refused", "open: and why");
		}
		store_close(st);
	} else {
		ok(store_open("redis://127.0.0.1:6379/0", err, sizeof(err)) ==
		    NULL, "open: redis refused");
		has_str(err, "built without the Redis store",
		    "open: redis not built in");
	}
	ok(store_open("redis://127.0.0.1:0/0", err, sizeof(err)) == NULL,
	    "open: redis port 0 refused");
	has_str(err, "port must be", "open: redis port message");
	ok(store_open("redis://u:secret@127.0.0.1/0", err, sizeof(err)) ==
	    NULL, "open: credentials in the spec refused");
	ok(strstr(err, "secret") == NULL, "open: the password not repeated");
	ok(store_open("redis+unix://run/r.sock", err, sizeof(err)) == NULL,
	    "open: redis+unix relative path refused");
	ok(store_open("redis+unix:///run/r.sock?db=x", err, sizeof(err)) ==
	    NULL, "open: redis+unix bad db refused");
	ok(store_open("mysql:x", err, sizeof(err)) == NULL,
	    "open: unknown kind refused");
	has_str(err, "unknown store", "open: unknown store message");
	ok(store_open("sqlite:", err, sizeof(err)) == NULL,
	    "open: sqlite without a path refused");
	has_str(err, "needs a path", "open: needs a path");
	ok(store_open("", err, sizeof(err)) == NULL, "open: empty spec");

	/* a short error buffer is never overrun */
	memset(err, 'X', sizeof(err));
	ok(store_open("redis://h:0/0", err, 10) == NULL, "open: short err");
	is_int(strlen(err), 9, "open: message truncated to the buffer");
	is_int(err[10], 'X', "open: nothing written past it");

	/* a schema newer than this greygate is refused, not rewritten */
	snprintf(p, sizeof(p), "%s/new.db", tmpdir);
	snprintf(sp, sizeof(sp), "sqlite:%s", p);
	st = open_or_bail(sp);
	store_close(st);
	sql_exec(p, "PRAGMA user_version = 7");
	st = store_open(sp, err, sizeof(err));
	ok(st == NULL, "open: schema version 7 refused");
	has_str(err, "schema version 7", "open: says which version");
	store_close(st);
	is_int(sql_int(p, "PRAGMA user_version"), 7,
	    "open: newer schema left alone");

	/* version 0 with a table already there: migration still works */
	tmp_rm("new.db");
	tmp_rm("new.db-wal");
	tmp_rm("new.db-shm");
	st = open_or_bail(sp);
	store_close(st);
	sql_exec(p, "PRAGMA user_version = 0");
	st = store_open(sp, err, sizeof(err));
	ok(st != NULL, "open: version 0 over existing tables migrates");
	store_close(st);
	is_int(sql_int(p, "PRAGMA user_version"), 2, "open: back to 2");

	/* version 1 had two indexes on triplet: migration 2 drops them */
	sql_exec(p, "CREATE INDEX triplet_expires ON triplet (expires);"
	    "CREATE INDEX triplet_net_passed ON triplet (net, expires) "
	    "WHERE passes >= 1; PRAGMA user_version = 1");
	st = store_open(sp, err, sizeof(err));
	ok(st != NULL, "open: version 1 migrates");
	store_close(st);
	is_int(sql_int(p, "PRAGMA user_version"), 2, "open: 1 -> 2");
	is_int(sql_int(p, "SELECT count(*) FROM sqlite_master WHERE name IN "
	    "('triplet_expires', 'triplet_net_passed')"), 0,
	    "open: the version 1 indexes are dropped");
}

/*
 * expire_some: 25 triplets, every third one expired; chunks of 10 keys
 * remove the expired ones of each chunk, then start again from the top.
 */
static void
test_expire_some(void)
{
	struct store	*st;
	struct store_rec r, live = { T0, T0, 1, T0 + 10 };
	struct store_rec dead = { T0, T0, 1, T0 - 1 };
	char		 p[512], sp[600], rcpt[32];
	int		 i, left;

	snprintf(p, sizeof(p), "%s/chunks.db", tmpdir);
	snprintf(sp, sizeof(sp), "sqlite:%s", p);
	st = open_or_bail(sp);
	for (i = 0; i < 25; i++) {
		/* rNN: key order is number order */
		snprintf(rcpt, sizeof(rcpt), "r%02d@example.org", i);
		store_triplet_put(st, "192.0.2.0/24", "a@example.com", rcpt,
		    i % 3 == 0 ? &dead : &live);
	}
	store_client_put(st, "198.51.100.0/24", &dead);
	store_reply_put(st, "192.0.2.0/24", "a@example.com", "x@example.org",
	    "550 no", T0 - 1);
	/* keys 0-9 hold 0, 3, 6, 9; plus the client and the reply */
	is_int(store_expire_some(st, T0, 10), 6, "expire_some: first chunk");
	is_int(store_triplet_get(st, "192.0.2.0/24", "a@example.com",
	    "r12@example.org", &r), 1, "expire_some: the next chunk waits");
	is_int(store_client_get(st, "198.51.100.0/24", &r), 0,
	    "expire_some: the expired client is gone at once");
	/* keys 10-19: 12, 15, 18 */
	is_int(store_expire_some(st, T0, 10), 3, "expire_some: second chunk");
	/* keys 20-24, the end: 21, 24 */
	is_int(store_expire_some(st, T0, 10), 2, "expire_some: the tail");
	left = (int)sql_int(p, "SELECT count(*) FROM triplet");
	is_int(left, 16, "expire_some: only live triplets left");
	/* around again: r00 expired meanwhile is found in the first chunk */
	store_triplet_put(st, "192.0.2.0/24", "a@example.com",
	    "r01@example.org", &dead);
	is_int(store_expire_some(st, T0, 10), 1, "expire_some: around again");
	/* that chunk ended at r14: a large one takes the rest after it */
	is_int(store_expire_some(st, T0 + 11, 1000), 6,
	    "expire_some: r16 to r23 after the cursor");
	is_int(store_expire_some(st, T0 + 11, 1000), 9,
	    "expire_some: then the whole table from the top");
	is_int(store_expire_some(st, T0 + 11, 1000), 0,
	    "expire_some: nothing left");
	store_close(st);
}

/* The spec parser: what store_redis_spec accepts and what it makes. */
static void
test_redis_spec(void)
{
	static const struct {
		const char	*spec;
		int		 rc;
		const char	*host, *path;
		int		 port, db;
	} t[] = {
		{ "redis://127.0.0.1:6379/2", 0, "127.0.0.1", "", 6379, 2 },
		{ "redis://localhost", 0, "localhost", "", 6379, 0 },
		{ "redis://localhost/", 0, "localhost", "", 6379, 0 },
		{ "redis://r.example:7000", 0, "r.example", "", 7000, 0 },
		{ "redis://[::1]:6380/15", 0, "::1", "", 6380, 15 },
		{ "redis+unix:///run/redis/redis.sock", 0, "",
		    "/run/redis/redis.sock", 6379, 0 },
		{ "redis+unix:///run/r.sock?db=3", 0, "", "/run/r.sock", 6379,
		    3 },
		{ "redis://", -1, NULL, NULL, 0, 0 },
		{ "redis://:6379/0", -1, NULL, NULL, 0, 0 },
		{ "redis://h:65536/0", -1, NULL, NULL, 0, 0 },
		{ "redis://h:6379/x", -1, NULL, NULL, 0, 0 },
		{ "redis://h:6379/0/1", -1, NULL, NULL, 0, 0 },
		{ "redis://[::1/0", -1, NULL, NULL, 0, 0 },
		{ "redis://h h/0", -1, NULL, NULL, 0, 0 },
		{ "redis+unix:///r.sock?database=1", -1, NULL, NULL, 0, 0 },
	};
	struct store_redis_addr a;
	char		 err[256];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = store_redis_spec(t[i].spec, &a, err, sizeof(err));
		is_int(rc, t[i].rc, "redis spec %s", t[i].spec);
		if (rc != 0 || t[i].rc != 0)
			continue;
		ok(strcmp(a.host, t[i].host) == 0 &&
		    strcmp(a.path, t[i].path) == 0 && a.port == t[i].port &&
		    a.db == t[i].db, "redis spec %s: %s %s %d %d", t[i].spec,
		    a.host, a.path, a.port, a.db);
	}
}

/*
 * Round trips through a real redis-server: records, the reply cache,
 * delete, list (sorted, SCAN), stats, expire (a no-op: TTLs), key
 * prefixes kept apart, and AUTH.
 */
static void
test_redis(void)
{
	struct redis_server	 rs = { -1, 0, "", "" }, ra = { -1, 0, "",
				    "" };
	struct store_options	 o = { "rt:", NULL, NULL };
	struct store		*st, *other;
	struct store_rec	 r, g, w, c, dead;
	struct collect		*col;
	time_t			 t = time(NULL);
	char			 err[512], buf[STORE_REPLY_MAX + 1];
	int			 i;

	if (!store_redis_built()) {
		printf("ok %d # SKIP redis: the Redis store is not built in\n",
		    ++tap_n);
		return;
	}
	if (redis_start(&rs, 0, NULL, NULL) == -1) {
		printf("ok %d # SKIP redis: no redis-server to start\n",
		    ++tap_n);
		return;
	}
	if ((st = store_open_with(rs.spec, &o, err, sizeof(err))) == NULL) {
		ok(0, "redis open: %s", err);
		redis_cleanup(&rs);
		return;
	}
	g = (struct store_rec){ t, t, 0, t + 100 };
	w = (struct store_rec){ t - 50, t, 3, t + 1000 };
	c = (struct store_rec){ t - 5, t, 5, t + 2000 };
	dead = (struct store_rec){ t - 100, t - 90, 1, t - 10 };
	is_int(store_triplet_put(st, "192.0.2.0/24", "a@example.org",
	    "b@example.net", &g), 0, "redis: triplet put grey");
	is_int(store_triplet_put(st, "192.0.2.0/24", "", "b@example.net",
	    &w), 0, "redis: triplet put white, null sender");
	is_int(store_triplet_put(st, "192.0.2.0/24", "x@example.org",
	    "b@example.net", &dead), 0, "redis: triplet put expired");
	is_int(store_client_put(st, "2001:db8:1::/64", &c), 0,
	    "redis: client put");
	is_int(store_reply_put(st, "192.0.2.0/24", "a@example.org",
	    "nobody@example.net", "550 5.1.1 no such user", t + 3600), 0,
	    "redis: reply put");
	memset(&r, 0, sizeof(r));
	is_int(store_triplet_get(st, "192.0.2.0/24", "", "b@example.net", &r),
	    1, "redis: triplet get");
	ok(r.first_seen == w.first_seen && r.last_seen == w.last_seen &&
	    r.passes == w.passes && r.expires == w.expires,
	    "redis: triplet round trip");
	is_int(store_triplet_get(st, "192.0.2.0/24", "x@example.org",
	    "b@example.net", &r), 0, "redis: an expired record is gone "
	    "(Redis expired it)");
	is_int(store_client_get(st, "2001:db8:1::/64", &r), 1,
	    "redis: client get");
	ok(r.passes == 5 && r.expires == c.expires, "redis: client round "
	    "trip");
	is_int(store_triplet_count_passed(st, "192.0.2.0/24", t), 1,
	    "redis: count passed");
	is_int(store_triplet_count_passed(st, "192.0.2.0/24", t + 1001), 0,
	    "redis: count passed after its expiry");
	is_int(store_reply_get(st, "192.0.2.0/24", "a@example.org",
	    "nobody@example.net", t, buf, sizeof(buf)), 1, "redis: reply get");
	is_str(buf, "550 5.1.1 no such user", "redis: reply text");
	is_int(store_reply_get(st, "192.0.2.0/24", "a@example.org",
	    "nobody@example.net", t + 3601, buf, sizeof(buf)), 0,
	    "redis: reply get after its expiry");
	test_stats(st, 1, 1, 1, 1, "redis");
	if ((col = calloc(1, sizeof(*col))) != NULL) {
		is_int(store_list(st, collect_cb, col), 0, "redis: list");
		is_int(col->n, 4, "redis: list: four rows");
		if (col->n == 4) {
			has_str(col->line[0], "WHITE 192.0.2.0/24 <> ",
			    "redis: list: the null sender first");
			has_str(col->line[1], "GREY 192.0.2.0/24 <a@example.org>",
			    "redis: list: then a@");
			has_str(col->line[2], "CLIENT 2001:db8:1::/64",
			    "redis: list: clients after triplets");
			has_str(col->line[3], "REPLY 192.0.2.0/24",
			    "redis: list: replies last");
		}
		free(col);
	}
	is_int(store_expire(st, t + 100000), 0, "redis: expire: a no-op");
	is_int(store_expire_some(st, t + 100000, 10), 0,
	    "redis: expire_some: a no-op");
	is_int(store_begin(st), 0, "redis: begin: a no-op");
	is_int(store_commit(st), 0, "redis: commit: a no-op");
	/* another prefix sees none of it */
	o.redis_prefix = "other:";
	other = store_open_with(rs.spec, &o, err, sizeof(err));
	test_stats(other, 0, 0, 0, 0, "redis, another prefix");
	store_close(other);
	is_int(store_delete(st, STORE_TRIPLET, "192.0.2.0/24", "",
	    "b@example.net"), 1, "redis: delete triplet");
	is_int(store_triplet_count_passed(st, "192.0.2.0/24", t), 0,
	    "redis: a deleted pass no longer counts");
	is_int(store_delete(st, STORE_TRIPLET, "192.0.2.0/24", "",
	    "b@example.net"), 0, "redis: delete again: absent");
	is_int(store_delete(st, STORE_CLIENT, "2001:db8:1::/64", NULL, NULL),
	    1, "redis: delete client");
	is_int(store_delete(st, STORE_REPLY, "192.0.2.0/24", "a@example.org",
	    "nobody@example.net"), 1, "redis: delete reply");
	test_stats(st, 1, 0, 0, 0, "redis after deletes");
	/* more keys than one SCAN batch returns */
	for (i = 0; i < 2500; i++) {
		snprintf(buf, sizeof(buf), "s%d@example.org", i);
		if (store_triplet_put(st, "198.51.100.0/24", buf,
		    "b@example.net", &w) == -1)
			break;
	}
	is_int(i, 2500, "redis: 2500 triplets put");
	test_stats(st, 1, 2500, 0, 0, "redis, 2501 triplets: several SCANs");
	is_int(store_triplet_count_passed(st, "198.51.100.0/24", t), 2500,
	    "redis: 2500 passed in the net's set");
	store_close(st);
	redis_cleanup(&rs);

	/* a server that closes idle connections: no failure for that */
	if (redis_start(&ra, 0, "--timeout", "1") == -1) {
		ok(0, "redis: a server with an idle timeout");
		return;
	}
	o.redis_prefix = NULL;
	st = store_open_with(ra.spec, &o, err, sizeof(err));
	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "redis idle: before");
	sleep(3);
	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "redis idle: a connection the server closed is replaced at once");
	store_close(st);
	redis_cleanup(&ra);

	/* AUTH: a server with a password */
	if (redis_start(&ra, 0, "--requirepass", "s3cret-pw") == -1) {
		ok(0, "redis: a server with requirepass");
		return;
	}
	st = store_open_with(ra.spec, &o, err, sizeof(err));
	is_int(store_client_get(st, "192.0.2.0/24", &r), -1,
	    "redis auth: no password: refused");
	has_str(store_errstr(st), "NOAUTH", "redis auth: says why");
	store_close(st);
	o.redis_password = "wrong-pw";
	st = store_open_with(ra.spec, &o, err, sizeof(err));
	is_int(store_client_get(st, "192.0.2.0/24", &r), -1,
	    "redis auth: a wrong password: refused");
	has_str(store_errstr(st), "AUTH refused", "redis auth: says why");
	ok(strstr(store_errstr(st), "wrong-pw") == NULL,
	    "redis auth: never shows the password");
	store_close(st);
	o.redis_password = "s3cret-pw";
	st = store_open_with(ra.spec, &o, err, sizeof(err));
	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "redis auth: the right password");
	store_close(st);
	o.redis_username = "default";
	st = store_open_with(ra.spec, &o, err, sizeof(err));
	is_int(store_client_get(st, "192.0.2.0/24", &r), 0,
	    "redis auth: username and password (AUTH user pass, Redis 6+)");
	store_close(st);
	redis_cleanup(&ra);
}

/*
 * resp_command - a whole RESP array of bulk strings at buf: its length,
 * its first element in verb (upper-cased, cut); 0 while incomplete.
 */
static size_t
resp_command(const char *buf, size_t len, char *verb, size_t vlen)
{
	const char	*p = buf, *e = buf + len, *nl;
	long		 n, k, i;
	size_t		 j;

	if (len < 1 || *p != '*' || (nl = memchr(p, '\n', len)) == NULL)
		return 0;
	n = strtol(p + 1, NULL, 10);
	p = nl + 1;
	for (i = 0; i < n; i++) {
		if (p >= e || *p != '$' || (nl = memchr(p, '\n',
		    (size_t)(e - p))) == NULL)
			return 0;
		k = strtol(p + 1, NULL, 10);
		p = nl + 1;
		if (e - p < k + 2)
			return 0;
		if (i == 0) {
			for (j = 0; j < vlen - 1 && j < (size_t)k; j++)
				verb[j] = (char)toupper((unsigned char)p[j]);
			verb[j] = '\0';
		}
		p += k + 2;
	}
	return (size_t)(p - buf);
}

/*
 * fake_redis - a server that answers SCRIPT LOAD and nothing else: on
 * any other command it closes the connection, as a server that ran it
 * and died before its reply.  Each such command is counted by a byte on
 * cnt.  Runs until killed.
 */
static void
fake_redis(int ls, int cnt)
{
	static const char sha[] =
	    "$40\r\n0123456789012345678901234567890123456789\r\n";
	char	buf[65536], verb[16];
	ssize_t	n;
	size_t	len, used;
	int	fd, gone;

	for (;;) {
		if ((fd = accept(ls, NULL, NULL)) == -1)
			_exit(1);
		len = 0;
		gone = 0;
		while (!gone && (n = read(fd, buf + len, sizeof(buf) - len)) >
		    0) {
			len += (size_t)n;
			while ((used = resp_command(buf, len, verb,
			    sizeof(verb))) > 0) {
				if (strcmp(verb, "SCRIPT") != 0) {
					if (write(cnt, "x", 1) == -1)
						perror("write");
					gone = 1;
					break;
				}
				if (write(fd, sha, sizeof(sha) - 1) == -1)
					perror("write");
				memmove(buf, buf + used, len - used);
				len -= used;
			}
		}
		close(fd);
	}
}

/*
 * A script that changes state is never sent twice: when the connection
 * is lost after it went out, it may have run (issue 12).
 */
static void
test_redis_once(void)
{
	struct sockaddr_in	 sin;
	struct store_rec	 w = { 1000, 1000, 1, 2000000000 };
	struct store		*st;
	socklen_t		 slen = sizeof(sin);
	char			 fspec[64], err[512], c;
	pid_t			 pid;
	int			 ls, p[2], n = 0, fl;

	if (!store_redis_built())
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) == -1 || bind(ls,
	    (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(ls, 8) ==
	    -1 || getsockname(ls, (struct sockaddr *)&sin, &slen) == -1 ||
	    pipe(p) == -1) {
		ok(0, "redis once: a fake server");
		return;
	}
	if ((pid = fork()) == 0) {
		close(p[0]);
		fake_redis(ls, p[1]);
	}
	close(ls);
	close(p[1]);
	snprintf(fspec, sizeof(fspec), "redis://127.0.0.1:%d/0",
	    ntohs(sin.sin_port));
	st = store_open_with(fspec, NULL, err, sizeof(err));
	ok(st != NULL, "redis once: opened (%s)", st ? "" : err);
	if (st != NULL) {
		is_int(store_client_put(st, "192.0.2.0/24", &w), -1,
		    "redis once: the connection lost after the script: "
		    "an error");
		store_close(st);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fl = fcntl(p[0], F_GETFL);
	(void)fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	while (read(p[0], &c, 1) == 1)
		n++;
	close(p[0]);
	is_int(n, 1, "redis once: the script was sent once, not again");
}

int
main(void)
{
	struct store	*st;

	tmp_setup();
	test_schema();
	st = open_or_bail(spec);
	test_triplets(st);
	test_clients(st);
	test_replies(st);
	test_stats(st, 1, 4, 2, 2, "after puts");
	test_list(st);
	test_delete(st);
	test_expire(st);
	store_close(st);
	test_reopen();
	test_batch();
	test_expire_some();
	test_broken();
	test_open_errors();
	test_redis_spec();
	test_redis();
	test_redis_once();
	tmp_cleanup();
	return tap_done();
}
