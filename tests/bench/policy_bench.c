/*
 * policy_bench - greylist decisions per second through the policy socket,
 * and the latency of one decision, against a store of N entries.  It
 * fills a fresh SQLite store with N passed triplets, starts the real
 * policy process (policyd_main) on a real socket, and runs C client
 * processes that each ask R questions, as workers do (pp_ask), about
 * random known triplets (the common case: the sender passed before) and,
 * with -g, about new ones (first sight: a write).  Not a test: it prints
 * figures and exits 0 unless something failed.  Bounded by N, C and R.
 * With -s SPEC it runs against that store instead (a Redis server on
 * loopback: redis://127.0.0.1:PORT/DB), filled through the store
 * interface under a fresh key prefix.
 *
 *	policy_bench [-n entries] [-c clients] [-r requests] [-g] [-s spec]
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "policy_proto.h"
#include "policyd.h"
#include "store.h"

static double
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* triplet i: client 10.a.b.1 (net 10.a.b.0/24), sender, recipient */
static void
triplet(long i, char *ip, size_t iplen, char *net, size_t netlen,
    char *from, char *to)
{
	snprintf(ip, iplen, "10.%ld.%ld.1", (i >> 16) & 255, (i >> 8) & 255);
	snprintf(net, netlen, "10.%ld.%ld.0/24", (i >> 16) & 255,
	    (i >> 8) & 255);
	snprintf(from, 64, "sender%ld@example.com", i);
	snprintf(to, 64, "rcpt%ld@example.org", i & 7);
}

/* fill - n passed triplets, in one transaction */
static void
fill(const char *path, long n, time_t now)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 ip[32], net[32], from[64], to[64];
	long		 i;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO triplet (net, sender, rcpt, "
	    "first_seen, last_seen, passes, expires) VALUES (?, ?, ?, ?, ?, "
	    "1, ?)", -1, &st, NULL) != SQLITE_OK)
		errx(1, "%s: %s", path, sqlite3_errmsg(db));
	for (i = 0; i < n; i++) {
		triplet(i, ip, sizeof(ip), net, sizeof(net), from, to);
		sqlite3_bind_text(st, 1, net, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now - 3600);
		sqlite3_bind_int64(st, 5, now - 3600);
		sqlite3_bind_int64(st, 6, now + 86400);
		if (sqlite3_step(st) != SQLITE_DONE)
			errx(1, "insert: %s", sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		errx(1, "commit: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* fill_store - n passed triplets through the store interface (Redis) */
static void
fill_store(const char *spec, const char *prefix, long n, time_t now)
{
	struct store_options	 o = { prefix, NULL, NULL };
	struct store_rec	 rec = { now - 3600, now - 3600, 1, now + 86400 };
	struct store		*st;
	char			 ip[32], net[32], from[64], to[64], e[512];
	long			 i;

	if ((st = store_open_with(spec, &o, e, sizeof(e))) == NULL)
		errx(1, "%s", e);
	for (i = 0; i < n; i++) {
		triplet(i, ip, sizeof(ip), net, sizeof(net), from, to);
		if (store_triplet_put(st, net, from, to, &rec) == -1)
			errx(1, "fill: %s", store_errstr(st));
	}
	store_close(st);
}

/* client - r questions; latencies (ms) to fd; exit 0 when all answered */
static void
client(const char *name, int k, long n, long r, int grey, int fd)
{
	struct pp_conn		 pc = { -1, name };
	struct pp_request	 rq;
	struct pp_response	 rp;
	struct ipaddr		 cip;
	char			 ip[32], net[32], from[64], to[64];
	double			*lat, t;
	long			 i, idx, bad = 0;

	if ((lat = calloc((size_t)r, sizeof(*lat))) == NULL)
		_exit(1);
	srandom((unsigned)(getpid() ^ k));
	for (i = 0; i < r; i++) {
		idx = grey ? n + (long)k * r + i : random() % n;
		triplet(idx, ip, sizeof(ip), net, sizeof(net), from, to);
		(void)ipaddr_parse(ip, &cip);
		(void)pp_request_init(&rq, PP_CHECK, &cip, from, to, NULL);
		t = now_ms();
		if (pp_ask(&pc, &rq, &rp) == -1 ||
		    rp.status != (grey ? PP_GREYLIST : PP_PASS))
			bad++;
		lat[i] = now_ms() - t;
	}
	if (write(fd, lat, (size_t)r * sizeof(*lat)) !=
	    (ssize_t)((size_t)r * sizeof(*lat)))
		_exit(1);
	_exit(bad ? 2 : 0);
}

/* cpu_us - user + system CPU time of process pid so far, in µs */
static double
cpu_us(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*fp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) == NULL ||
	    (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%lu %lu", &ut, &st) != 2)
		ut = st = 0;
	fclose(fp);
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/*
 * run - c clients of r questions; prints one line of figures, with the
 * policy process pd's CPU time per decision, which a busy machine
 * disturbs less than the rate
 */
static int
run(const char *name, const char *what, int c, long n, long r, int grey,
    pid_t pd)
{
	double	*all, t0, wall, cpu0, cpu;
	char	 tmpl[] = "/tmp/policy_bench.XXXXXX";
	long	 total = (long)c * r;
	int	 k, fd, st, failed = 0;
	pid_t	 pid;

	if ((fd = mkstemp(tmpl)) == -1)
		err(1, "mkstemp");
	unlink(tmpl);
	cpu0 = cpu_us(pd);
	t0 = now_ms();
	for (k = 0; k < c; k++)
		if ((pid = fork()) == 0)
			client(name, k, n, r, grey, fd);
		else if (pid == -1)
			err(1, "fork");
	for (k = 0; k < c; k++)
		if (wait(&st) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	wall = now_ms() - t0;
	cpu = cpu_us(pd) - cpu0;
	if ((all = calloc((size_t)total, sizeof(*all))) == NULL)
		err(1, "calloc");
	if (pread(fd, all, (size_t)total * sizeof(*all), 0) !=
	    (ssize_t)((size_t)total * sizeof(*all)))
		errx(1, "client results missing");
	close(fd);
	qsort(all, (size_t)total, sizeof(*all), cmp_double);
	printf("%-8s entries=%ld clients=%d decisions=%ld "
	    "decisions/s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "policy_cpu_us=%.1f failed_clients=%d\n", what, n, c, total,
	    total / (wall / 1e3), all[total / 2], all[(long)(total * 0.99)],
	    all[total - 1], cpu / (double)total, failed);
	free(all);
	return failed;
}

int
main(int argc, char *argv[])
{
	struct config	*cfg;
	struct privs	 pv = { 0, 0, 0, 0, 0 };
	struct store	*st;
	char		 dir[] = "/tmp/policy_bench.d.XXXXXX", conf[256];
	char		 db[256], spec[300], ebuf[512], name[PP_NAME_MAX];
	char		 ok[64], prefix[64];
	const char	*sspec = NULL;
	FILE		*fp;
	long		 n = 1000000, r = 50000;
	int		 ch, c = 4, grey = 0, lfd, p[2], status = 0;
	pid_t		 pd;
	double		 t;

	while ((ch = getopt(argc, argv, "c:gn:r:s:")) != -1) {
		switch (ch) {
		case 'c':
			c = atoi(optarg);
			break;
		case 'g':
			grey = 1;
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 'r':
			r = atol(optarg);
			break;
		case 's':
			sspec = optarg;
			break;
		default:
			fprintf(stderr, "usage: policy_bench [-g] [-c clients] "
			    "[-n entries] [-r requests] [-s spec]\n");
			return 64;
		}
	}
	if (c < 1 || c > 64 || n < 1 || n > 10000000 || r < 1 ||
	    r > 1000000)
		errx(64, "out of range: 1-64 clients, 1-10000000 entries, "
		    "1-1000000 requests");
	log_init(1, 0);
	if (mkdtemp(dir) == NULL)
		err(1, "mkdtemp");
	snprintf(db, sizeof(db), "%s/greylist.db", dir);
	if (sspec != NULL)
		(void)strlcpy(spec, sspec, sizeof(spec));
	else
		snprintf(spec, sizeof(spec), "sqlite:%s", db);
	/* a fresh key space in a shared server */
	snprintf(prefix, sizeof(prefix), "bench%ld:", (long)getpid());
	snprintf(conf, sizeof(conf), "%s/greygate.conf", dir);
	if ((fp = fopen(conf, "w")) == NULL)
		err(1, "%s", conf);
	fprintf(fp, "policy = \"greylist\"\ngreylist {\n\tstore = \"%s\"\n"
	    "\tauto_whitelist = 0\n\tredis_prefix = \"%s\"\n}\n", spec,
	    prefix);
	fclose(fp);
	if ((cfg = config_load(conf, ebuf, sizeof(ebuf))) == NULL)
		errx(1, "%s", ebuf);

	t = now_ms();
	if (sspec != NULL)
		fill_store(spec, prefix, n, time(NULL));
	else {
		if ((st = store_open(spec, ebuf, sizeof(ebuf))) == NULL)
			errx(1, "%s", ebuf);
		store_close(st);
		fill(db, n, time(NULL));
	}
	printf("filled   store=%s entries=%ld in %.1f s\n",
	    spec, n, (now_ms() - t) / 1e3);

	fflush(stdout);
	if ((lfd = pp_listen(name, sizeof(name))) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) == -1)
		err(1, "policy socket");
	if ((pd = fork()) == 0) {
		close(p[0]);
		policyd_main(cfg, lfd, p[1], &pv);
	}
	close(lfd);
	close(p[1]);
	/* ready: a first chan_horizon on the channel */
	if (recv(p[0], ok, sizeof(ok), 0) != (ssize_t)sizeof(struct chan_horizon))
		errx(1, "the policy process did not start");
	close(p[0]);

	/* the first round reads the file into memory, the second is timed */
	status |= run(name, "warm-up", c, n, r, 0, pd);
	status |= run(name, "passed", c, n, r, 0, pd);
	if (grey)
		status |= run(name, "new", c, n, r / 5 > 0 ? r / 5 : 1, 1,
		    pd);

	kill(pd, SIGTERM);
	waitpid(pd, NULL, 0);
	config_free(cfg);
	snprintf(conf, sizeof(conf), "rm -rf '%s'", dir);
	if (system(conf) != 0)
		warnx("could not remove %s", dir);
	return status ? 1 : 0;
}
