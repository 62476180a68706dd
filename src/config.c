/*
 * config - reads greygate.conf with libconfuse into one typed struct
 * config.  Every key is typed and range-checked while the file is parsed,
 * so that every complaint carries FILE:LINE; nothing starts on a bad
 * file.  Keys keep the names of the original Kamaelia Grey configuration.
 * This module never changes process state: the master decides what a
 * loaded configuration means.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <confuse.h>

#include "config.h"
#include "log.h"
#include "smtp_parse.h"
#include "store.h"
#include "tls.h"

#define DEFAULT_STORE	"sqlite:" LOCALSTATEDIR "/lib/greygate/greylist.db"
#define DEFAULT_PIDFILE	RUNSTATEDIR "/greygate/greygated.pid"
#define DEFAULT_SPOOL	LOCALSTATEDIR "/spool/greygate"
#define CONF_MAX	(4 * 1024 * 1024)	/* largest file read */

static cfg_opt_t greylist_opts[] = {
	CFG_INT("delay", 300, CFGF_NONE),
	CFG_INT("retry_window", 172800, CFGF_NONE),
	CFG_INT("expire", 3024000, CFGF_NONE),
	CFG_INT("refusal_expire", 432000, CFGF_NONE),
	CFG_INT("ipv4_prefix", 24, CFGF_NONE),
	CFG_INT("ipv6_prefix", 64, CFGF_NONE),
	CFG_INT("auto_whitelist", 5, CFGF_NONE),
	CFG_STR("store", DEFAULT_STORE, CFGF_NONE),
	CFG_STR("on_error", "tempfail", CFGF_NONE),
	CFG_STR("redis_prefix", "greygate:", CFGF_NONE),
	CFG_STR("redis_username", "", CFGF_NONE),
	CFG_STR("redis_password", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t opts[] = {
	CFG_STR("servername", "", CFGF_NONE),
	CFG_STR("serverid", "greygate", CFGF_NONE),
	CFG_STR_LIST("listen", "{\"127.0.0.1\", \"::1\"}", CFGF_NONE),
	CFG_INT("port", 1025, CFGF_NONE),
	CFG_INT("backlog", 128, CFGF_NONE),
	CFG_STR("smtp_ip", "127.0.0.1", CFGF_NONE),
	CFG_INT("smtp_port", 25, CFGF_NONE),
	CFG_INT("upstream_connect_timeout", 30, CFGF_NONE),
	CFG_INT("upstream_timeout", 300, CFGF_NONE),
	CFG_INT("replay_timeout", 540, CFGF_NONE),
	CFG_STR("upstream_client_info", "auto", CFGF_NONE),
	CFG_INT("upstream_ehlo_refresh", 300, CFGF_NONE),
	CFG_BOOL("verify_recipients", cfg_true, CFGF_NONE),
	CFG_INT("verify_positive_expire", 604800, CFGF_NONE),
	CFG_INT("verify_negative_expire", 10800, CFGF_NONE),
	CFG_INT("verify_timeout", 10, CFGF_NONE),
	CFG_STR("user", "greygate", CFGF_NONE),
	CFG_STR("group", "greygate", CFGF_NONE),
	CFG_STR("worker_user", "greygate-worker", CFGF_NONE),
	CFG_STR("worker_group", "greygate-worker", CFGF_NONE),
	CFG_STR("chroot", "", CFGF_NONE),
	CFG_STR("pidfile", DEFAULT_PIDFILE, CFGF_NONE),
	CFG_STR("spool_dir", DEFAULT_SPOOL, CFGF_NONE),
	CFG_INT("spill_threshold", 262144, CFGF_NONE),
	CFG_INT("start_workers", 5, CFGF_NONE),
	CFG_INT("min_spare_workers", 2, CFGF_NONE),
	CFG_INT("max_spare_workers", 10, CFGF_NONE),
	CFG_INT("max_workers", 150, CFGF_NONE),
	CFG_INT("max_sessions_per_worker", 1000, CFGF_NONE),
	CFG_INT("max_connections_per_ip", 20, CFGF_NONE),
	CFG_INT("shutdown_timeout", 30, CFGF_NONE),
	CFG_INT("inactivity_timeout", 300, CFGF_NONE),
	CFG_INT("session_timeout", 1800, CFGF_NONE),
	CFG_INT("greet_delay", 0, CFGF_NONE),
	CFG_INT("max_message_size", 26214400, CFGF_NONE),
	CFG_INT("max_recipients", 100, CFGF_NONE),
	CFG_INT("max_errors", 10, CFGF_NONE),
	CFG_INT("max_command_line", 512, CFGF_NONE),
	CFG_INT("max_text_line", 1000, CFGF_NONE),
	CFG_STR("policy", "greylist", CFGF_NONE),
	CFG_STR_LIST("allowed_senders", "{\"127.0.0.1/8\", \"::1\"}",
	    CFGF_NONE),
	CFG_STR_LIST("allowed_sender_nets", "{}", CFGF_NONE),
	CFG_STR_LIST("allowed_domains", "{}", CFGF_NONE),
	CFG_STR_LIST("whitelisted_triples", "{}", CFGF_NONE),
	CFG_STR_LIST("whitelisted_nonstandard_triples", "{}", CFGF_NONE),
	CFG_STR_LIST("whitelist_clients", "{}", CFGF_NONE),
	CFG_STR_LIST("whitelist_senders", "{}", CFGF_NONE),
	CFG_STR_LIST("whitelist_recipients", "{}", CFGF_NONE),
	CFG_STR("syslog_facility", "mail", CFGF_NONE),
	CFG_STR("greylist_log", "", CFGF_NONE),
	CFG_STR("tls", "", CFGF_NONE),
	CFG_STR("tls_cert_file", "", CFGF_NONE),
	CFG_STR("tls_key_file", "", CFGF_NONE),
	CFG_STR_LIST("tls_protocols", "{\"TLSv1.2\", \"TLSv1.3\"}",
	    CFGF_NONE),
	CFG_STR("tls_ciphers", "", CFGF_NONE),
	CFG_STR("tls_dh", "", CFGF_NONE),
	CFG_SEC("greylist", greylist_opts, CFGF_NONE),
	CFG_END()
};

/* the range of every integer key */
static const struct {
	const char	*name;
	long		 min, max;
} ranges[] = {
	{ "port", 1, 65535 },
	{ "backlog", 1, 65535 },
	{ "smtp_port", 1, 65535 },
	{ "upstream_connect_timeout", 1, 3600 },
	{ "upstream_timeout", 1, 3600 },
	{ "replay_timeout", 1, 600 },
	{ "upstream_ehlo_refresh", 1, 86400 },
	{ "verify_positive_expire", 1, 315360000 },
	{ "verify_negative_expire", 1, 315360000 },
	{ "verify_timeout", 1, 300 },
	{ "spill_threshold", 4096, 1073741824 },
	{ "start_workers", 1, 4096 },
	{ "min_spare_workers", 0, 4096 },
	{ "max_spare_workers", 1, 4096 },
	{ "max_workers", 1, 4096 },
	{ "max_sessions_per_worker", 1, 10000000 },
	{ "max_connections_per_ip", 0, 100000 },
	{ "shutdown_timeout", 0, 3600 },
	{ "inactivity_timeout", 1, 86400 },
	{ "session_timeout", 1, 604800 },
	{ "greet_delay", 0, 300 },
	{ "max_message_size", 1024, 2147483647 },
	{ "max_recipients", 1, 100000 },
	{ "max_errors", 1, 1000 },
	{ "max_command_line", 512, 65536 },
	{ "max_text_line", 1000, 1000000 },
	{ "delay", 0, 2592000 },
	{ "retry_window", 1, 31536000 },
	{ "expire", 1, 315360000 },
	{ "refusal_expire", 60, 315360000 },
	{ "ipv4_prefix", 8, 32 },
	{ "ipv6_prefix", 16, 128 },
	{ "auto_whitelist", 0, 1000000 },
};

/* state of one config_load(): libconfuse callbacks have no user pointer */
static struct {
	const char	*path;		/* file being read */
	char		*err;		/* first error, "FILE:LINE: reason" */
	size_t		 errlen;
	int		 failed;	/* an error was reported */
	struct {
		const char *name;	/* key */
		int	 line;		/* where it was set */
	}		 lines[64];
	size_t		 nlines;
} ld;

static void	 conf_error(cfg_t *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));
static void	 conf_fail(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* conf_record - keep the first error, as FILE:LINE: reason */
static void
conf_record(int line, const char *msg)
{
	if (ld.failed++)
		return;
	if (line > 0)
		snprintf(ld.err, ld.errlen, "%s:%d: %s", ld.path, line, msg);
	else
		snprintf(ld.err, ld.errlen, "%s: %s", ld.path, msg);
}

/* conf_error - libconfuse's error callback */
static void
conf_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char	msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	conf_record(cfg ? cfg->line : 0, msg);
}

/* conf_fail - an error found after parsing, at the line of a key */
static void
conf_fail(int line, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conf_record(line, msg);
}

static int
key_line(const char *name)
{
	size_t	i;

	for (i = 0; i < ld.nlines; i++)
		if (strcmp(ld.lines[i].name, name) == 0)
			return ld.lines[i].line;
	return 0;
}

static void
note_line(const char *name, int line)
{
	size_t	i;

	for (i = 0; i < ld.nlines; i++)
		if (strcmp(ld.lines[i].name, name) == 0)
			break;
	if (i == sizeof(ld.lines) / sizeof(ld.lines[0]))
		return;
	ld.lines[i].name = name;
	ld.lines[i].line = line;
	if (i == ld.nlines)
		ld.nlines++;
}

static int
valid_int(cfg_t *cfg, cfg_opt_t *opt)
{
	long	v = cfg_opt_getnint(opt, 0);
	size_t	i;

	note_line(opt->name, cfg->line);
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		if (strcmp(ranges[i].name, opt->name) != 0)
			continue;
		if (v < ranges[i].min || v > ranges[i].max) {
			cfg_error(cfg, "%s = %ld is out of range (%ld to %ld)",
			    opt->name, v, ranges[i].min, ranges[i].max);
			return -1;
		}
	}
	return 0;
}

/* check_word - non-empty, printable, no white space */
static int
check_word(const char *s)
{
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++)
		if (!isgraph((unsigned char)*s))
			return -1;
	return 0;
}

/* check_addrspec - "local@domain" or "@domain" */
static int
check_addrspec(const char *s)
{
	if (s[0] == '@')
		return smtp_check_domain(s + 1, strlen(s + 1));
	return smtp_check_mailbox(s);
}

/* check_triple - "CLIENT SENDER RECIPIENT" or "HELO CIDR RECIPIENT" */
static int
check_triple(const char *s, int nonstandard, char *why, size_t whylen,
    char f[3][SMTP_PATH_MAX + 3])
{
	struct cidr	 c;
	const char	*p = s;
	size_t		 i, n;

	for (i = 0; i < 3; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		for (n = 0; p[n] != '\0' && p[n] != ' ' && p[n] != '\t'; n++)
			;
		if (n == 0 || n > SMTP_PATH_MAX + 2) {
			snprintf(why, whylen, "\"%s\" needs three fields: %s",
			    s, nonstandard ? "HELONAME CIDR RECIPIENT" :
			    "CLIENT SENDER RECIPIENT");
			return -1;
		}
		memcpy(f[i], p, n);
		f[i][n] = '\0';
		p += n;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0') {
		snprintf(why, whylen, "\"%s\" has more than three fields", s);
		return -1;
	}
	/* each field in order, so that the reason names the first bad one */
	if (nonstandard) {
		if (smtp_check_helo(f[0]) == -1) {
			snprintf(why, whylen, "\"%s\": bad HELO name %s", s,
			    f[0]);
			return -1;
		}
		if (cidr_parse(f[1], &c, why, whylen) == -1)
			return -1;
	} else {
		if (cidr_parse(f[0], &c, why, whylen) == -1)
			return -1;
		if (strcmp(f[1], "<>") != 0 &&
		    smtp_check_mailbox(f[1]) == -1) {
			snprintf(why, whylen, "\"%s\": bad sender %s", s,
			    f[1]);
			return -1;
		}
	}
	if (smtp_check_mailbox(f[2]) == -1) {
		snprintf(why, whylen, "\"%s\": bad recipient %s", s, f[2]);
		return -1;
	}
	return 0;
}

/* check_store - a store spec we can open; why in why when not */
static int
check_store(const char *s, char *why, size_t whylen)
{
	struct store_redis_addr	a;
	char			e[256];

	if (strncmp(s, "sqlite:", 7) == 0) {
		if (s[7] == '/')
			return 0;
	} else if (strncmp(s, "redis+unix://", 13) == 0 ||
	    strncmp(s, "redis://", 8) == 0) {
		if (store_redis_spec(s, &a, e, sizeof(e)) == -1) {
			snprintf(why, whylen, "store: %s", e);
			return -1;
		}
		if (!store_redis_built()) {
			snprintf(why, whylen, "store \"%s\": this greygate "
			    "was built without the Redis store (configure "
			    "--with-redis, needs hiredis)", s);
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen, "store \"%s\" is not sqlite:/PATH, "
	    "redis://HOST:PORT/DB or redis+unix:///PATH", s);
	return -1;
}

/* valid_str - every string key and list entry, checked by key */
static int
valid_str(cfg_t *cfg, cfg_opt_t *opt)
{
	const char	*name = opt->name, *v;
	char		 why[512], f[3][SMTP_PATH_MAX + 3];
	struct cidr	 c;
	struct ipaddr	 ip;
	unsigned int	 i, n = cfg_opt_size(opt);

	note_line(name, cfg->line);
	for (i = 0; i < n; i++) {
		v = cfg_opt_getnstr(opt, i);
		if (v == NULL)
			v = "";
		why[0] = '\0';
		if (strcmp(name, "servername") == 0) {
			if (*v != '\0' && check_word(v) == -1)
				snprintf(why, sizeof(why), "servername must "
				    "be one word");
		} else if (strcmp(name, "serverid") == 0 ||
		    strcmp(name, "user") == 0 || strcmp(name, "group") == 0 ||
		    strcmp(name, "worker_user") == 0 ||
		    strcmp(name, "worker_group") == 0) {
			if (check_word(v) == -1)
				snprintf(why, sizeof(why), "%s must be one "
				    "non-empty word", name);
		} else if (strcmp(name, "listen") == 0 ||
		    strcmp(name, "smtp_ip") == 0) {
			if (ipaddr_parse(v, &ip) == -1)
				snprintf(why, sizeof(why), "%s: \"%s\" is not "
				    "a numeric IPv4 or IPv6 address", name, v);
		} else if (strcmp(name, "chroot") == 0 ||
		    strcmp(name, "greylist_log") == 0 ||
		    strcmp(name, "tls_cert_file") == 0 ||
		    strcmp(name, "tls_key_file") == 0 ||
		    strcmp(name, "tls_dh") == 0) {
			if (*v != '\0' && *v != '/')
				snprintf(why, sizeof(why), "%s must be an "
				    "absolute path", name);
		} else if (strcmp(name, "pidfile") == 0 ||
		    strcmp(name, "spool_dir") == 0) {
			if (*v != '/')
				snprintf(why, sizeof(why), "%s must be an "
				    "absolute path", name);
		} else if (strcmp(name, "policy") == 0) {
			if (strcmp(v, "greylist") && strcmp(v, "accept") &&
			    strcmp(v, "reject"))
				snprintf(why, sizeof(why), "policy must be "
				    "greylist, accept or reject, not \"%s\"",
				    v);
		} else if (strcmp(name, "upstream_client_info") == 0) {
			if (strcmp(v, "auto") && strcmp(v, "xclient") &&
			    strcmp(v, "xforward") && strcmp(v, "off"))
				snprintf(why, sizeof(why), "upstream_client_info "
				    "must be auto, xclient, xforward or off, "
				    "not \"%s\"", v);
		} else if (strcmp(name, "on_error") == 0) {
			if (strcmp(v, "tempfail") && strcmp(v, "accept"))
				snprintf(why, sizeof(why), "on_error must be "
				    "tempfail or accept, not \"%s\"", v);
		} else if (strcmp(name, "tls") == 0) {
			if (strcmp(v, "off") && strcmp(v, "may"))
				snprintf(why, sizeof(why), "tls must be off "
				    "or may, not \"%s\"", v);
		} else if (strcmp(name, "tls_protocols") == 0) {
			if (tls_protocol_valid(v) == -1)
				snprintf(why, sizeof(why), "tls_protocols: "
				    "\"%s\" is not TLSv1, TLSv1.1, TLSv1.2 or "
				    "TLSv1.3", v);
		} else if (strcmp(name, "tls_ciphers") == 0) {
			if (strpbrk(v, " \t\r\n") != NULL)
				snprintf(why, sizeof(why), "tls_ciphers: an "
				    "OpenSSL cipher list, no white space");
		} else if (strcmp(name, "syslog_facility") == 0) {
			if (log_facility(v) == -1)
				snprintf(why, sizeof(why), "unknown syslog "
				    "facility \"%s\"", v);
		} else if (strcmp(name, "store") == 0) {
			(void)check_store(v, why, sizeof(why));
		} else if (strcmp(name, "redis_prefix") == 0) {
			if (strlen(v) >= sizeof(((struct config *)0)->
			    greylist.redis_prefix) || strchr(v, '\t'))
				snprintf(why, sizeof(why), "redis_prefix: at "
				    "most 63 octets, no TAB");
		} else if (strcmp(name, "redis_username") == 0 ||
		    strcmp(name, "redis_password") == 0) {
			/* never repeat the value: it may be a secret */
			if (strlen(v) >= sizeof(((struct config *)0)->
			    greylist.redis_password) ||
			    strpbrk(v, "\r\n") != NULL)
				snprintf(why, sizeof(why), "%s: at most 127 "
				    "octets on one line", name);
		} else if (strcmp(name, "allowed_senders") == 0 ||
		    strcmp(name, "allowed_sender_nets") == 0 ||
		    strcmp(name, "whitelist_clients") == 0) {
			(void)cidr_parse(v, &c, why, sizeof(why));
		} else if (strcmp(name, "allowed_domains") == 0) {
			if (smtp_check_domain(v + (*v == '.'),
			    strlen(v + (*v == '.'))) == -1)
				snprintf(why, sizeof(why), "allowed_domains: "
				    "\"%s\" is not a domain", v);
		} else if (strcmp(name, "whitelisted_triples") == 0) {
			(void)check_triple(v, 0, why, sizeof(why), f);
		} else if (strcmp(name,
		    "whitelisted_nonstandard_triples") == 0) {
			(void)check_triple(v, 1, why, sizeof(why), f);
		} else if (strcmp(name, "whitelist_senders") == 0 ||
		    strcmp(name, "whitelist_recipients") == 0) {
			if (check_addrspec(v) == -1)
				snprintf(why, sizeof(why), "%s: \"%s\" is not "
				    "an address or @domain", name, v);
		}
		if (why[0] != '\0') {
			cfg_error(cfg, "%s", why);
			return -1;
		}
	}
	return 0;
}

static char *
lower_dup(const char *s)
{
	char	*d, *p;

	if ((d = strdup(s)) == NULL)
		fatal("strdup");
	for (p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static void
strlist_load(cfg_t *cfg, const char *name, struct strlist *l, int lower)
{
	unsigned int	i, n = cfg_size(cfg, name);

	l->n = 0;
	l->v = NULL;
	if (n == 0)
		return;
	if ((l->v = reallocarray(NULL, n, sizeof(char *))) == NULL)
		fatal("reallocarray");
	for (i = 0; i < n; i++) {
		l->v[i] = lower ? lower_dup(cfg_getnstr(cfg, name, i)) :
		    strdup(cfg_getnstr(cfg, name, i));
		if (l->v[i] == NULL)
			fatal("strdup");
	}
	l->n = n;
}

static void
strlist_free(struct strlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* cidrs_load - append the CIDRs of a list key (already validated) */
static void
cidrs_load(cfg_t *cfg, const char *name, struct cidr **v, size_t *n)
{
	unsigned int	 i, k = cfg_size(cfg, name);
	char		 why[256];

	if (k == 0)
		return;
	if ((*v = reallocarray(*v, *n + k, sizeof(**v))) == NULL)
		fatal("reallocarray");
	for (i = 0; i < k; i++)
		if (cidr_parse(cfg_getnstr(cfg, name, i), &(*v)[(*n)++], why,
		    sizeof(why)) == -1)
			fatalx("%s", why);
}

static void
triples_load(cfg_t *cfg, struct config *c)
{
	char		 why[256], f[3][SMTP_PATH_MAX + 3];
	unsigned int	 i, n;
	const char	*name;

	name = "whitelisted_triples";
	if ((n = cfg_size(cfg, name)) > 0 && (c->wl_triples =
	    reallocarray(NULL, n, sizeof(*c->wl_triples))) == NULL)
		fatal("reallocarray");
	for (i = 0; i < n; i++) {
		if (check_triple(cfg_getnstr(cfg, name, i), 0, why,
		    sizeof(why), f) == -1)
			fatalx("%s", why);
		(void)cidr_parse(f[0], &c->wl_triples[i].client, why,
		    sizeof(why));
		c->wl_triples[i].sender = lower_dup(strcmp(f[1], "<>") ?
		    f[1] : "");
		c->wl_triples[i].rcpt = lower_dup(f[2]);
		c->nwl_triples++;
	}
	name = "whitelisted_nonstandard_triples";
	if ((n = cfg_size(cfg, name)) > 0 && (c->wl_ns_triples =
	    reallocarray(NULL, n, sizeof(*c->wl_ns_triples))) == NULL)
		fatal("reallocarray");
	for (i = 0; i < n; i++) {
		if (check_triple(cfg_getnstr(cfg, name, i), 1, why,
		    sizeof(why), f) == -1)
			fatalx("%s", why);
		c->wl_ns_triples[i].helo = lower_dup(f[0]);
		(void)cidr_parse(f[1], &c->wl_ns_triples[i].client, why,
		    sizeof(why));
		c->wl_ns_triples[i].rcpt = lower_dup(f[2]);
		c->nwl_ns_triples++;
	}
}

/* copy_str - a string key into a fixed buffer; too long is an error */
static void
copy_str(cfg_t *cfg, const char *name, char *dst, size_t len)
{
	const char	*v = cfg_getstr(cfg, name);

	if (strlcpy(dst, v ? v : "", len) >= len)
		conf_fail(key_line(name), "%s is too long (at most %zu "
		    "characters)", name, len - 1);
}

/*
 * pair_line - where a rule between two keys is reported: at the line of
 * the first when the file sets it, else at the line of the second (the
 * first is at its default and the second is what broke the rule).
 */
static int
pair_line(const char *first, const char *second)
{
	int	line;

	if ((line = key_line(first)) > 0)
		return line;
	return key_line(second);
}

/* cross_check - rules between keys */
static void
cross_check(struct config *c)
{
	size_t	n;

	if (c->start_workers > c->max_workers)
		conf_fail(pair_line("start_workers", "max_workers"),
		    "start_workers (%d) exceeds max_workers (%d)",
		    c->start_workers, c->max_workers);
	if (c->min_spare_workers > c->max_spare_workers)
		conf_fail(pair_line("min_spare_workers", "max_spare_workers"),
		    "min_spare_workers (%d) exceeds max_spare_workers (%d)",
		    c->min_spare_workers, c->max_spare_workers);
	if (c->min_spare_workers > c->max_workers)
		conf_fail(pair_line("min_spare_workers", "max_workers"),
		    "min_spare_workers (%d) exceeds max_workers (%d)",
		    c->min_spare_workers, c->max_workers);
	if (c->greylist.retry_window <= c->greylist.delay)
		conf_fail(pair_line("retry_window", "delay"), "retry_window "
		    "(%d) must exceed delay (%d)", c->greylist.retry_window,
		    c->greylist.delay);
	if ((c->tls_cert_file[0] == '\0') != (c->tls_key_file[0] == '\0'))
		conf_fail(pair_line("tls_cert_file", "tls_key_file"),
		    "tls_cert_file and tls_key_file are set together");
	else if (c->tls == TLS_MAY && c->tls_cert_file[0] == '\0')
		conf_fail(key_line("tls"), "tls = may needs tls_cert_file and "
		    "tls_key_file");
	if (c->tls_protocols.n == 0)
		conf_fail(key_line("tls_protocols"), "tls_protocols is empty");
	if (c->chroot[0] != '\0') {
		n = strlen(c->chroot);
		while (n > 1 && c->chroot[n - 1] == '/')
			c->chroot[--n] = '\0';
		if (strncmp(c->spool_dir, c->chroot, n) != 0 ||
		    (n > 1 && c->spool_dir[n] != '/' &&
		    c->spool_dir[n] != '\0'))
			conf_fail(pair_line("spool_dir", "chroot"), "spool_dir "
			    "(%s) must lie inside chroot (%s)", c->spool_dir,
			    c->chroot);
	}
}

/*
 * conf_read - the whole file, NUL-terminated, its length in *lenp; NULL
 * with errno set when it cannot be read.
 */
static char *
conf_read(const char *path, size_t *lenp)
{
	FILE	*fp;
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, size = 0, n;
	int	 saved;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	for (;;) {
		if (size - len < 2) {
			if (size >= CONF_MAX) {
				errno = EFBIG;
				goto fail;
			}
			size = size == 0 ? 8192 : size * 2;
			if ((nbuf = realloc(buf, size)) == NULL)
				fatal("realloc");
			buf = nbuf;
		}
		if ((n = fread(buf + len, 1, size - len - 1, fp)) == 0)
			break;
		len += n;
	}
	if (ferror(fp))
		goto fail;
	(void)fclose(fp);
	buf[len] = '\0';
	*lenp = len;
	return buf;
fail:
	saved = errno;
	(void)fclose(fp);
	free(buf);
	errno = saved;
	return NULL;
}

/*
 * conf_skip_subst - the end of a ${VAR} substitution starting at i, or i
 * when there is none (libconfuse then takes the '$' as text).
 */
static size_t
conf_skip_subst(const char *buf, size_t len, size_t i)
{
	const char	*e;

	if (buf[i] != '$' || buf[i + 1] != '{' ||
	    (e = memchr(buf + i, '}', len - i)) == NULL)
		return i;
	return (size_t)(e - buf) + 1;
}

/*
 * conf_strip - blank out every comment of buf in place, keeping its
 * newlines, so that libconfuse never sees one.  The lexer of libconfuse
 * 3.3 bumps cfg->line while it collects the text of a comment token, on
 * top of its newline rule: a '#' or "//" comment counts as three lines
 * and a block comment one line more than it has, so every line number
 * after a comment was wrong.  It also returns comments as tokens that
 * its parser refuses inside a list.  With the comments gone, cfg->line
 * counts newlines only.
 *
 * The scan follows the libconfuse lexer: strings in double or single
 * quotes with backslash escapes (a quoted '#' or "//" is text), ${VAR}
 * substitutions, '#' anywhere else, "//" and "/" "*" where a token starts
 * (inside an unquoted word such as a//b they are text, as for
 * libconfuse).  Returns NULL, or the reason with *line set.
 */
static const char *
conf_strip(char *buf, size_t len, int *line)
{
	size_t	i, j;
	int	inword = 0, start;
	char	q;

	/* buf holds no NUL but the one at buf[len]: buf[i + 1] is readable */
	*line = 1;
	for (i = 0; i < len;) {
		if (buf[i] == '\n') {
			(*line)++;
			inword = 0;
			i++;
		} else if (buf[i] == '"' || buf[i] == '\'') {
			for (q = buf[i++]; i < len && buf[i] != q; i++) {
				if (q == '"' &&
				    (j = conf_skip_subst(buf, len, i)) > i) {
					for (; i < j - 1; i++)
						if (buf[i] == '\n')
							(*line)++;
					continue;
				}
				if (buf[i] == '\\' && i + 1 < len)
					i++;
				if (buf[i] == '\n')
					(*line)++;
			}
			if (i < len)
				i++;
			inword = 0;
		} else if (!inword && (j = conf_skip_subst(buf, len, i)) > i) {
			for (; i < j; i++)
				if (buf[i] == '\n')
					(*line)++;
			inword = 0;
		} else if (buf[i] == '#' ||
		    (!inword && buf[i] == '/' && buf[i + 1] == '/')) {
			while (i < len && buf[i] != '\n')
				buf[i++] = ' ';
		} else if (!inword && buf[i] == '/' && buf[i + 1] == '*') {
			start = *line;
			buf[i++] = ' ';
			buf[i++] = ' ';
			for (; !(buf[i] == '*' && buf[i + 1] == '/'); i++) {
				if (i >= len) {
					*line = start;
					return "unterminated /* comment";
				}
				if (buf[i] == '\n')
					(*line)++;
				else
					buf[i] = ' ';
			}
			buf[i++] = ' ';
			buf[i++] = ' ';
		} else {
			/* the characters that end an unquoted word */
			inword = strchr(" \t\r={}()+,*", buf[i]) == NULL;
			i++;
		}
	}
	return NULL;
}

/*
 * config_load - read and check a configuration file.  Returns NULL with
 * "FILE:LINE: reason" in err when the file is not valid.
 */
struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config	*c;
	cfg_t		*cfg, *gl;
	char		*buf, *nul, *p;
	const char	*why, *v;
	size_t		 len;
	unsigned int	 i;
	int		 rv, line;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.err = err;
	ld.errlen = errlen;
	err[0] = '\0';

	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		fatal("cfg_init");
	cfg_set_error_function(cfg, conf_error);
	for (i = 0; opts[i].name != NULL; i++) {
		if (opts[i].type == CFGT_INT)
			cfg_set_validate_func(cfg, opts[i].name, valid_int);
		else if (opts[i].type == CFGT_STR)
			cfg_set_validate_func(cfg, opts[i].name, valid_str);
	}
	cfg_set_validate_func(cfg, "greylist|delay", valid_int);
	cfg_set_validate_func(cfg, "greylist|retry_window", valid_int);
	cfg_set_validate_func(cfg, "greylist|expire", valid_int);
	cfg_set_validate_func(cfg, "greylist|refusal_expire", valid_int);
	cfg_set_validate_func(cfg, "greylist|ipv4_prefix", valid_int);
	cfg_set_validate_func(cfg, "greylist|ipv6_prefix", valid_int);
	cfg_set_validate_func(cfg, "greylist|auto_whitelist", valid_int);
	cfg_set_validate_func(cfg, "greylist|store", valid_str);
	cfg_set_validate_func(cfg, "greylist|on_error", valid_str);
	cfg_set_validate_func(cfg, "greylist|redis_prefix", valid_str);
	cfg_set_validate_func(cfg, "greylist|redis_username", valid_str);
	cfg_set_validate_func(cfg, "greylist|redis_password", valid_str);

	if ((buf = conf_read(path, &len)) == NULL) {
		snprintf(err, errlen, "%s: cannot read the file: %s", path,
		    strerror(errno));
		cfg_free(cfg);
		return NULL;
	}
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		for (line = 1, p = buf; p < nul; p++)
			if (*p == '\n')
				line++;
		conf_fail(line, "NUL character in the file");
	} else if ((why = conf_strip(buf, len, &line)) != NULL)
		conf_fail(line, "%s", why);
	rv = ld.failed ? CFG_PARSE_ERROR : cfg_parse_buf(cfg, buf);
	free(buf);
	if (rv != CFG_SUCCESS || ld.failed) {
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: parse error", path);
		cfg_free(cfg);
		return NULL;
	}

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	(void)strlcpy(c->path, path, sizeof(c->path));
	copy_str(cfg, "servername", c->servername, sizeof(c->servername));
	if (c->servername[0] == '\0' &&
	    gethostname(c->servername, sizeof(c->servername)) == -1)
		(void)strlcpy(c->servername, "localhost",
		    sizeof(c->servername));
	c->servername[sizeof(c->servername) - 1] = '\0';
	copy_str(cfg, "serverid", c->serverid, sizeof(c->serverid));
	strlist_load(cfg, "listen", &c->listen, 0);
	c->listen_default = key_line("listen") == 0;
	c->port = (int)cfg_getint(cfg, "port");
	c->backlog = (int)cfg_getint(cfg, "backlog");
	copy_str(cfg, "smtp_ip", c->smtp_ip, sizeof(c->smtp_ip));
	c->smtp_port = (int)cfg_getint(cfg, "smtp_port");
	c->upstream_connect_timeout = (int)cfg_getint(cfg,
	    "upstream_connect_timeout");
	c->upstream_timeout = (int)cfg_getint(cfg, "upstream_timeout");
	c->replay_timeout = (int)cfg_getint(cfg, "replay_timeout");
	v = cfg_getstr(cfg, "upstream_client_info");
	c->upstream_client_info = strcmp(v, "xclient") == 0 ? UCI_XCLIENT :
	    strcmp(v, "xforward") == 0 ? UCI_XFORWARD : strcmp(v, "off") == 0 ?
	    UCI_OFF : UCI_AUTO;
	c->upstream_ehlo_refresh = (int)cfg_getint(cfg,
	    "upstream_ehlo_refresh");
	c->verify_recipients = cfg_getbool(cfg, "verify_recipients") ? 1 : 0;
	c->verify_positive_expire = (int)cfg_getint(cfg,
	    "verify_positive_expire");
	c->verify_negative_expire = (int)cfg_getint(cfg,
	    "verify_negative_expire");
	c->verify_timeout = (int)cfg_getint(cfg, "verify_timeout");
	copy_str(cfg, "user", c->user, sizeof(c->user));
	copy_str(cfg, "group", c->group, sizeof(c->group));
	copy_str(cfg, "worker_user", c->worker_user, sizeof(c->worker_user));
	copy_str(cfg, "worker_group", c->worker_group,
	    sizeof(c->worker_group));
	copy_str(cfg, "chroot", c->chroot, sizeof(c->chroot));
	copy_str(cfg, "pidfile", c->pidfile, sizeof(c->pidfile));
	copy_str(cfg, "spool_dir", c->spool_dir, sizeof(c->spool_dir));
	c->spill_threshold = cfg_getint(cfg, "spill_threshold");
	c->start_workers = (int)cfg_getint(cfg, "start_workers");
	c->min_spare_workers = (int)cfg_getint(cfg, "min_spare_workers");
	c->max_spare_workers = (int)cfg_getint(cfg, "max_spare_workers");
	c->max_workers = (int)cfg_getint(cfg, "max_workers");
	c->max_sessions_per_worker = (int)cfg_getint(cfg,
	    "max_sessions_per_worker");
	c->max_connections_per_ip = (int)cfg_getint(cfg,
	    "max_connections_per_ip");
	c->shutdown_timeout = (int)cfg_getint(cfg, "shutdown_timeout");
	c->inactivity_timeout = (int)cfg_getint(cfg, "inactivity_timeout");
	c->session_timeout = (int)cfg_getint(cfg, "session_timeout");
	c->greet_delay = (int)cfg_getint(cfg, "greet_delay");
	c->max_message_size = cfg_getint(cfg, "max_message_size");
	c->max_recipients = (int)cfg_getint(cfg, "max_recipients");
	c->max_errors = (int)cfg_getint(cfg, "max_errors");
	c->max_command_line = (int)cfg_getint(cfg, "max_command_line");
	c->max_text_line = (int)cfg_getint(cfg, "max_text_line");
	if (strcmp(cfg_getstr(cfg, "policy"), "accept") == 0)
		c->policy = POLICY_ACCEPT;
	else if (strcmp(cfg_getstr(cfg, "policy"), "reject") == 0)
		c->policy = POLICY_REJECT;
	else
		c->policy = POLICY_GREYLIST;
	cidrs_load(cfg, "allowed_senders", &c->relay_nets, &c->nrelay_nets);
	cidrs_load(cfg, "allowed_sender_nets", &c->relay_nets,
	    &c->nrelay_nets);
	strlist_load(cfg, "allowed_domains", &c->allowed_domains, 1);
	triples_load(cfg, c);
	cidrs_load(cfg, "whitelist_clients", &c->wl_clients, &c->nwl_clients);
	strlist_load(cfg, "whitelist_senders", &c->wl_senders, 1);
	strlist_load(cfg, "whitelist_recipients", &c->wl_recipients, 1);
	c->syslog_facility = log_facility(cfg_getstr(cfg, "syslog_facility"));
	copy_str(cfg, "greylist_log", c->greylist_log,
	    sizeof(c->greylist_log));

	copy_str(cfg, "tls_cert_file", c->tls_cert_file,
	    sizeof(c->tls_cert_file));
	copy_str(cfg, "tls_key_file", c->tls_key_file,
	    sizeof(c->tls_key_file));
	strlist_load(cfg, "tls_protocols", &c->tls_protocols, 0);
	copy_str(cfg, "tls_ciphers", c->tls_ciphers, sizeof(c->tls_ciphers));
	copy_str(cfg, "tls_dh", c->tls_dh, sizeof(c->tls_dh));
	/* unset: on when there is a certificate */
	if (strcmp(cfg_getstr(cfg, "tls"), "may") == 0)
		c->tls = TLS_MAY;
	else if (strcmp(cfg_getstr(cfg, "tls"), "off") == 0)
		c->tls = TLS_OFF;
	else
		c->tls = c->tls_cert_file[0] != '\0' &&
		    c->tls_key_file[0] != '\0' ? TLS_MAY : TLS_OFF;

	gl = cfg_getsec(cfg, "greylist");
	c->greylist.delay = (int)cfg_getint(gl, "delay");
	c->greylist.retry_window = (int)cfg_getint(gl, "retry_window");
	c->greylist.expire = (int)cfg_getint(gl, "expire");
	c->greylist.refusal_expire = (int)cfg_getint(gl, "refusal_expire");
	c->greylist.ipv4_prefix = (int)cfg_getint(gl, "ipv4_prefix");
	c->greylist.ipv6_prefix = (int)cfg_getint(gl, "ipv6_prefix");
	c->greylist.auto_whitelist = (int)cfg_getint(gl, "auto_whitelist");
	copy_str(gl, "store", c->greylist.store, sizeof(c->greylist.store));
	c->greylist.on_error = strcmp(cfg_getstr(gl, "on_error"), "accept")
	    == 0 ? ONERR_ACCEPT : ONERR_TEMPFAIL;
	copy_str(gl, "redis_prefix", c->greylist.redis_prefix,
	    sizeof(c->greylist.redis_prefix));
	copy_str(gl, "redis_username", c->greylist.redis_username,
	    sizeof(c->greylist.redis_username));
	copy_str(gl, "redis_password", c->greylist.redis_password,
	    sizeof(c->greylist.redis_password));

	cross_check(c);
	cfg_free(cfg);
	if (ld.failed) {
		config_free(c);
		return NULL;
	}
	return c;
}

void
config_free(struct config *c)
{
	size_t	i;

	if (c == NULL)
		return;
	explicit_bzero(c->greylist.redis_password,
	    sizeof(c->greylist.redis_password));
	tls_ctx_free(c->tls_ctx);
	strlist_free(&c->listen);
	strlist_free(&c->tls_protocols);
	strlist_free(&c->allowed_domains);
	strlist_free(&c->wl_senders);
	strlist_free(&c->wl_recipients);
	for (i = 0; i < c->nwl_triples; i++) {
		free(c->wl_triples[i].sender);
		free(c->wl_triples[i].rcpt);
	}
	for (i = 0; i < c->nwl_ns_triples; i++) {
		free(c->wl_ns_triples[i].helo);
		free(c->wl_ns_triples[i].rcpt);
	}
	free(c->wl_triples);
	free(c->wl_ns_triples);
	free(c->relay_nets);
	free(c->wl_clients);
	free(c);
}

/*
 * config_tls_load - with tls = may, read the certificate and the key
 * (as root, before privileges are dropped) into c->tls_ctx.  0, or -1
 * with the reason, naming the file that is wrong, in err.
 */
int
config_tls_load(struct config *c, char *err, size_t errlen)
{
	struct tls_params	p;

	if (c->tls != TLS_MAY)
		return 0;
	memset(&p, 0, sizeof(p));
	p.cert_file = c->tls_cert_file;
	p.key_file = c->tls_key_file;
	p.protocols = (const char *const *)c->tls_protocols.v;
	p.nprotocols = c->tls_protocols.n;
	p.ciphers = c->tls_ciphers;
	p.dh_file = c->tls_dh;
	if ((c->tls_ctx = tls_ctx_new(&p, err, errlen)) == NULL)
		return -1;
	return 0;
}

void
config_store_options(const struct config *c, struct store_options *o)
{
	o->redis_prefix = c->greylist.redis_prefix;
	o->redis_username = c->greylist.redis_username;
	o->redis_password = c->greylist.redis_password;
}

/*
 * config_spool_in_chroot - spool_dir as a chrooted worker sees it: the
 * file names spool_dir as a path of the host, inside chroot (checked at
 * load), so the chroot prefix comes off; "/" when they are equal.
 */
const char *
config_spool_in_chroot(const struct config *c)
{
	size_t	n;

	if (c->chroot[0] == '\0' || strcmp(c->chroot, "/") == 0)
		return c->spool_dir;
	n = strlen(c->chroot);
	if (strncmp(c->spool_dir, c->chroot, n) != 0)
		return c->spool_dir;	/* refused at load; never here */
	while (c->spool_dir[n] == '/' && c->spool_dir[n + 1] == '/')
		n++;
	if (c->spool_dir[n] == '\0' || strcmp(c->spool_dir + n, "/") == 0)
		return "/";
	return c->spool_dir + n;
}
