/*
 * greygatectl - the administrator's view of the greylist store: list,
 * add, delete, expire, stats and check.  It reads the same configuration
 * as greygated, becomes the unprivileged user before it opens the store
 * (so that no file of the store ends up owned by root), and prints one
 * record a line, tab-separated, for scripts.  It never talks to the
 * running daemon: SQLite's locking keeps the two apart.
 */
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "greylist.h"
#include "log.h"
#include "policy.h"
#include "privdrop.h"
#include "smtp_parse.h"
#include "store.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/greygate/greygate.conf"

static void __attribute__((noreturn))
usage(FILE *fp, int status)
{
	fprintf(fp, "usage: greygatectl [-f file] list | stats | expire\n"
	    "       greygatectl [-f file] add | delete CLIENT "
	    "[SENDER RECIPIENT]\n"
	    "       greygatectl [-f file] check CLIENT SENDER RECIPIENT\n");
	exit(status);
}

/* stamp - a time as ISO 8601 UTC, "-" for none */
static const char *
stamp(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)strlcpy(buf, "-", len);
	return buf;
}

static int
print_entry(const struct store_entry *e, void *arg)
{
	char	f[32], l[32], x[32];

	(void)arg;
	printf("%s\t%s\t%s\t%s\t%s\t%s\t%ld\t%s", store_entry_label(e), e->net,
	    e->sender ? (e->sender[0] ? e->sender : "<>") : "-",
	    e->rcpt ? e->rcpt : "-", stamp(e->rec.first_seen, f, sizeof(f)),
	    stamp(e->rec.last_seen, l, sizeof(l)), e->rec.passes,
	    stamp(e->rec.expires, x, sizeof(x)));
	if (e->reply != NULL)
		printf("\t%s", e->reply);
	printf("\n");
	return ferror(stdout) ? -1 : 0;
}

/* keys - the store's keys for the command line's CLIENT SENDER RCPT */
static void
keys(const struct config *c, int argc, char **argv, struct ipaddr *ip,
    char *net, char *from, char *to)
{
	const char	*s;

	if (ipaddr_parse(argv[0], ip) == -1)
		errx(1, "%s is not an IPv4 or IPv6 address", argv[0]);
	if (greylist_client_net(ip, c->greylist.ipv4_prefix,
	    c->greylist.ipv6_prefix, net, GREYLIST_NET_MAX) == -1)
		errx(1, "%s: no network", argv[0]);
	if (argc < 3)
		return;
	s = strcmp(argv[1], "<>") == 0 ? "" : argv[1];
	if ((s[0] != '\0' && smtp_check_mailbox(s) == -1) ||
	    greylist_norm_sender(s, from, GREYLIST_ADDR_MAX) == -1)
		errx(1, "%s is not a valid sender address", argv[1]);
	if (smtp_check_mailbox(argv[2]) == -1 ||
	    greylist_norm_rcpt(argv[2], to, GREYLIST_ADDR_MAX) == -1)
		errx(1, "%s is not a valid recipient address", argv[2]);
}

/* check - the verdict greygated would give now, and why */
static int
check(const struct config *c, struct store *st, int argc, char **argv)
{
	struct greylist_params	 gp;
	struct policy_query	 q;
	struct ipaddr		 ip;
	const char		*reply, *s;
	char			 net[GREYLIST_NET_MAX];
	char			 from[GREYLIST_ADDR_MAX], to[GREYLIST_ADDR_MAX];
	char			 cached[STORE_REPLY_MAX + 1];
	enum verdict		 v;
	int			 r;

	keys(c, argc, argv, &ip, net, from, to);
	s = strcmp(argv[1], "<>") == 0 ? "" : argv[1];
	q.client = &ip;
	q.helo = "";
	q.sender = s;
	q.rcpt = argv[2];
	q.route = 0;
	v = policy_rcpt(c, &q, &reply);
	/* a cached recipient verification first, as at RCPT */
	if ((v == V_PASS || v == V_WHITELIST || v == V_ASK) &&
	    c->verify_recipients && policy_domain_ours(c, argv[2])) {
		if ((r = store_reply_get(st, STORE_VERIFY_NET, "", to,
		    time(NULL), cached, sizeof(cached))) == -1)
			errx(1, "%s", store_errstr(st));
		if (r == 1 && cached[0] == '5') {
			printf("reject\t%s\n", cached);
			return 0;
		}
		if (r == 1)
			printf("verified\t%s\n", cached);
	}
	if (v != V_ASK) {
		printf("%s\t%s\n", policy_action(v), reply);
		return 0;
	}
	if ((r = store_reply_get(st, STORE_REPLY_NET, from, to, time(NULL),
	    cached, sizeof(cached))) == -1)
		errx(1, "%s", store_errstr(st));
	if (r == 1) {
		/* a remembered upstream refusal, whatever the network */
		printf("reject\t%s\n", cached);
		return 0;
	}
	gp.delay = c->greylist.delay;
	gp.retry_window = c->greylist.retry_window;
	gp.expire = c->greylist.expire;
	gp.auto_whitelist = c->greylist.auto_whitelist;
	switch (greylist_peek(st, &gp, net, from, to, time(NULL))) {
	case GL_PASS:
		printf("pass\t250 2.1.5 OK\n");
		break;
	case GL_WHITELIST:
		printf("whitelist\t250 2.1.5 OK\n");
		break;
	case GL_GREYLIST:
		printf("greylist\t451 4.7.1 Greylisted, please try again "
		    "later\n");
		break;
	case GL_ERROR:
	default:
		errx(1, "%s", store_errstr(st));
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct store_stats	 ss;
	struct store_options	 so;
	struct store_rec	 rec;
	struct config		*c;
	struct store		*st;
	struct ipaddr		 ip;
	const char		*conf = DEFAULT_CONF, *cmd;
	char			 ebuf[1024], net[GREYLIST_NET_MAX];
	char			 from[GREYLIST_ADDR_MAX], to[GREYLIST_ADDR_MAX];
	uid_t			 uid;
	gid_t			 gid;
	time_t			 now = time(NULL);
	long			 n;
	int			 ch, r = 0;

	while ((ch = getopt(argc, argv, "f:h")) != -1) {
		switch (ch) {
		case 'f':
			conf = optarg;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 64);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(stderr, 64);
	cmd = *argv++;
	argc--;

	if ((c = config_load(conf, ebuf, sizeof(ebuf))) == NULL)
		errx(1, "%s", ebuf);
	if (geteuid() == 0) {
		if (privdrop_lookup(c->user, c->group, &uid, &gid) == -1)
			errx(1, "unknown user %s or group %s", c->user,
			    c->group);
		privdrop_apply(NULL, uid, gid);
	}

	if (strcmp(cmd, "check") == 0 && argc != 3)
		usage(stderr, 64);
	if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "delete") == 0) &&
	    argc != 1 && argc != 3)
		usage(stderr, 64);
	if ((strcmp(cmd, "list") == 0 || strcmp(cmd, "stats") == 0 ||
	    strcmp(cmd, "expire") == 0) && argc != 0)
		usage(stderr, 64);
	config_store_options(c, &so);
	if ((st = store_open_with(c->greylist.store, &so, ebuf,
	    sizeof(ebuf))) == NULL)
		errx(1, "%s", ebuf);

	if (strcmp(cmd, "list") == 0) {
		if (store_list(st, print_entry, NULL) == -1)
			errx(1, "%s", store_errstr(st)[0] ?
			    store_errstr(st) : "write error");
	} else if (strcmp(cmd, "stats") == 0) {
		if (store_stats(st, &ss) == -1)
			errx(1, "%s", store_errstr(st));
		printf("grey\t%ld\nwhite\t%ld\nclients\t%ld\nreplies\t%ld\n",
		    ss.grey, ss.white, ss.clients, ss.replies);
	} else if (strcmp(cmd, "expire") == 0) {
		if ((n = store_expire(st, now)) == -1)
			errx(1, "%s", store_errstr(st));
		printf("expired\t%ld\n", n);
	} else if (strcmp(cmd, "add") == 0) {
		/* a passed triplet, or a whitelisted client network */
		keys(c, argc, argv, &ip, net, from, to);
		rec.first_seen = rec.last_seen = now;
		rec.passes = 1;
		rec.expires = now + c->greylist.expire;
		if ((argc == 3 ? store_triplet_put(st, net, from, to, &rec) :
		    store_client_put(st, net, &rec)) == -1)
			errx(1, "%s", store_errstr(st));
		printf("added\t%s%s%s%s%s\n", net, argc == 3 ? "\t" : "",
		    argc == 3 ? (from[0] ? from : "<>") : "",
		    argc == 3 ? "\t" : "", argc == 3 ? to : "");
	} else if (strcmp(cmd, "delete") == 0) {
		keys(c, argc, argv, &ip, net, from, to);
		if ((r = store_delete(st, argc == 3 ? STORE_TRIPLET :
		    STORE_CLIENT, net, argc == 3 ? from : NULL,
		    argc == 3 ? to : NULL)) == -1)
			errx(1, "%s", store_errstr(st));
		if (r == 0) {
			fprintf(stderr, "greygatectl: no such entry\n");
			r = 1;
		} else {
			printf("deleted\t%s\n", net);
			r = 0;
		}
	} else if (strcmp(cmd, "check") == 0)
		r = check(c, st, argc, argv);
	else
		usage(stderr, 64);
	store_close(st);
	config_free(c);
	if (fflush(stdout) == EOF)
		err(1, "stdout");
	return r;
}
