/*
 * test_config - greygate.conf: an empty file is valid with the defaults
 * of the contract; every bad key, type, range, network, triple or
 * combination is refused with "FILE:LINE: reason" at the right line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* src/config.h, not the autoconf config.h found first on -I. */
#include "../../src/config.h"
#include "tap.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static char	path[64];
static char	err[1024];

/* load - write text to a fresh temp file and load it */
static struct config *
load(const char *text)
{
	int	fd;
	size_t	n = strlen(text);

	strlcpy(path, "/tmp/greygate-test-conf.XXXXXX", sizeof(path));
	if ((fd = mkstemp(path)) == -1) {
		perror("mkstemp");
		exit(99);
	}
	if (write(fd, text, n) != (ssize_t)n) {
		perror("write");
		exit(99);
	}
	close(fd);
	memset(err, 0, sizeof(err));
	return config_load(path, err, sizeof(err));
}

static void
done(struct config *c)
{
	config_free(c);
	unlink(path);
}

static void
test_defaults(void)
{
	struct config	*c;
	struct ipaddr	 ip;
	char		 host[256];

	c = load("");
	ok(c != NULL, "empty file is valid");
	if (c == NULL) {
		printf("# %s\n", err);
		done(c);
		return;
	}
	is_str(err, "", "no error text");
	is_str(c->path, path, "path kept");
	if (gethostname(host, sizeof(host)) == 0)
		is_str(c->servername, host, "servername defaults to the host "
		    "name");
	is_str(c->serverid, "greygate", "serverid");
	is_int(c->listen.n, 2, "listen: two entries");
	if (c->listen.n == 2) {
		is_str(c->listen.v[0], "127.0.0.1", "listen[0]");
		is_str(c->listen.v[1], "::1", "listen[1]");
	}
	is_int(c->listen_default, 1, "listen_default set");
	is_int(c->port, 1025, "port");
	is_int(c->backlog, 128, "backlog");
	is_str(c->smtp_ip, "127.0.0.1", "smtp_ip");
	is_int(c->smtp_port, 25, "smtp_port");
	is_int(c->upstream_connect_timeout, 30, "upstream_connect_timeout");
	is_int(c->upstream_timeout, 300, "upstream_timeout");
	is_int(c->replay_timeout, 540, "replay_timeout");
	is_int(c->greylist.refusal_expire, 432000, "greylist refusal_expire");
	is_int(c->upstream_client_info, UCI_AUTO, "upstream_client_info");
	is_int(c->upstream_ehlo_refresh, 300, "upstream_ehlo_refresh");
	is_int(c->verify_recipients, 1, "verify_recipients");
	is_int(c->verify_positive_expire, 604800, "verify_positive_expire");
	is_int(c->verify_negative_expire, 10800, "verify_negative_expire");
	is_int(c->verify_timeout, 10, "verify_timeout");
	is_str(c->user, "greygate", "user");
	is_str(c->group, "greygate", "group");
	is_str(c->chroot, "", "chroot");
	is_str(c->pidfile, RUNSTATEDIR "/greygate/greygated.pid", "pidfile");
	is_str(c->spool_dir, LOCALSTATEDIR "/spool/greygate", "spool_dir");
	is_int(c->spill_threshold, 262144, "spill_threshold");
	is_int(c->start_workers, 5, "start_workers");
	is_int(c->min_spare_workers, 2, "min_spare_workers");
	is_int(c->max_spare_workers, 10, "max_spare_workers");
	is_int(c->max_workers, 150, "max_workers");
	is_int(c->max_sessions_per_worker, 1000, "max_sessions_per_worker");
	is_int(c->max_connections_per_ip, 20, "max_connections_per_ip");
	is_int(c->shutdown_timeout, 30, "shutdown_timeout");
	is_int(c->inactivity_timeout, 300, "inactivity_timeout");
	is_int(c->session_timeout, 1800, "session_timeout");
	is_int(c->greet_delay, 0, "greet_delay");
	is_int(c->max_message_size, 26214400, "max_message_size");
	is_int(c->max_recipients, 100, "max_recipients");
	is_int(c->max_errors, 10, "max_errors");
	is_int(c->max_command_line, 512, "max_command_line");
	is_int(c->max_text_line, 1000, "max_text_line");
	is_int(c->policy, POLICY_GREYLIST, "policy greylist");
	is_int(c->nrelay_nets, 2, "allowed_senders: two networks");
	if (c->nrelay_nets == 2) {
		ipaddr_parse("127.1.2.3", &ip);
		is_int(cidr_match(&c->relay_nets[0], &ip), 1,
		    "127.0.0.1/8 covers 127.1.2.3");
		is_int(c->relay_nets[0].prefix, 8, "127.0.0.1/8 prefix");
		ipaddr_parse("::1", &ip);
		is_int(cidr_match(&c->relay_nets[1], &ip), 1, "::1 allowed");
		is_int(c->relay_nets[1].prefix, 128, "::1 prefix");
	}
	is_int(c->allowed_domains.n, 0, "allowed_domains empty");
	is_int(c->nwl_triples, 0, "whitelisted_triples empty");
	is_int(c->nwl_ns_triples, 0, "whitelisted_nonstandard_triples empty");
	is_int(c->nwl_clients, 0, "whitelist_clients empty");
	is_int(c->wl_senders.n, 0, "whitelist_senders empty");
	is_int(c->wl_recipients.n, 0, "whitelist_recipients empty");
	is_int(c->syslog_facility, LOG_MAIL, "syslog_facility mail");
	is_str(c->greylist_log, "", "greylist_log");
	is_int(c->greylist.delay, 300, "greylist delay");
	is_int(c->greylist.retry_window, 172800, "greylist retry_window");
	is_int(c->greylist.expire, 3024000, "greylist expire");
	is_int(c->greylist.ipv4_prefix, 24, "greylist ipv4_prefix");
	is_int(c->greylist.ipv6_prefix, 64, "greylist ipv6_prefix");
	is_int(c->greylist.auto_whitelist, 5, "greylist auto_whitelist");
	is_str(c->greylist.store, "sqlite:" LOCALSTATEDIR
	    "/lib/greygate/greylist.db", "greylist store");
	is_int(c->greylist.on_error, ONERR_TEMPFAIL, "greylist on_error");
	done(c);
}

static void
test_values(void)
{
	struct config	*c;
	struct ipaddr	 ip;

	c = load("# a full file\n"
	    "servername = \"mx.example.org\"\n"
	    "serverid = \"gg\"\n"
	    "listen = {\"0.0.0.0\", \"::\"}\n"
	    "port = 2525\n"
	    "backlog = 1\n"
	    "smtp_ip = \"::1\"\n"
	    "smtp_port = 10025\n"
	    "upstream_connect_timeout = 3600\n"
	    "upstream_timeout = 1\n"
	    "user = \"nobody\"\n"
	    "group = \"nogroup\"\n"
	    "chroot = \"/var/spool/gg\"\n"
	    "spool_dir = \"/var/spool/gg/tmp\"\n"
	    "pidfile = \"/tmp/gg.pid\"\n"
	    "spill_threshold = 4096\n"
	    "start_workers = 1\n"
	    "min_spare_workers = 0\n"
	    "max_spare_workers = 1\n"
	    "max_workers = 4096\n"
	    "max_connections_per_ip = 0\n"
	    "inactivity_timeout = 600\n"
	    "greet_delay = 300\n"
	    "max_message_size = 1024\n"
	    "max_recipients = 1\n"
	    "max_errors = 1\n"
	    "max_command_line = 65536\n"
	    "max_text_line = 1000000\n"
	    "policy = \"accept\"\n"
	    "allowed_senders = {\"10.0.0.0/8\"}\n"
	    "allowed_sender_nets = {\"192.168.2.7/24\", \"2001:db8::/32\"}\n"
	    "allowed_domains = {\"Example.COM\", \".Example.Org\"}\n"
	    "whitelisted_triples = {\"192.0.2.0/24 <> Post@Example.COM\", "
	    "\"192.0.2.9 A@B.example c@d.example\"}\n"
	    "whitelist_clients = {\"203.0.113.0/24\"}\n"
	    "whitelist_senders = {\"@Lists.Example\", \"Boss@Example.com\"}\n"
	    "whitelist_recipients = {\"postmaster@example.com\"}\n"
	    "syslog_facility = \"local3\"\n"
	    "greylist_log = \"/var/log/gg.log\"\n"
	    "greylist {\n"
	    "  delay = 60\n"
	    "  retry_window = 61\n"
	    "  expire = 100\n"
	    "  ipv4_prefix = 32\n"
	    "  ipv6_prefix = 128\n"
	    "  auto_whitelist = 0\n"
	    "  store = \"redis://127.0.0.1:6379/2\"\n"
	    "  on_error = \"accept\"\n"
	    "}\n");
	ok(c != NULL, "a full file loads");
	if (c == NULL) {
		printf("# %s\n", err);
		done(c);
		return;
	}
	is_str(c->servername, "mx.example.org", "servername");
	is_str(c->serverid, "gg", "serverid");
	is_int(c->listen.n, 2, "listen entries");
	is_int(c->listen_default, 0, "listen set in the file");
	is_int(c->port, 2525, "port");
	is_int(c->backlog, 1, "backlog");
	is_str(c->smtp_ip, "::1", "smtp_ip v6");
	is_int(c->smtp_port, 10025, "smtp_port");
	is_int(c->upstream_connect_timeout, 3600, "upstream_connect_timeout");
	is_int(c->upstream_timeout, 1, "upstream_timeout");
	is_str(c->user, "nobody", "user");
	is_str(c->group, "nogroup", "group");
	is_str(c->chroot, "/var/spool/gg", "chroot");
	is_str(c->spool_dir, "/var/spool/gg/tmp", "spool_dir inside chroot");
	is_str(c->pidfile, "/tmp/gg.pid", "pidfile");
	is_int(c->spill_threshold, 4096, "spill_threshold");
	is_int(c->max_workers, 4096, "max_workers");
	is_int(c->max_connections_per_ip, 0, "max_connections_per_ip 0");
	is_int(c->inactivity_timeout, 600, "inactivity_timeout");
	is_int(c->greet_delay, 300, "greet_delay");
	is_int(c->max_message_size, 1024, "max_message_size");
	is_int(c->max_recipients, 1, "max_recipients");
	is_int(c->max_errors, 1, "max_errors");
	is_int(c->max_command_line, 65536, "max_command_line");
	is_int(c->max_text_line, 1000000, "max_text_line");
	is_int(c->policy, POLICY_ACCEPT, "policy accept");
	is_int(c->nrelay_nets, 3, "allowed_senders + allowed_sender_nets "
	    "merged");
	if (c->nrelay_nets == 3) {
		is_int(c->relay_nets[0].prefix, 8, "merged[0] 10.0.0.0/8");
		is_int(c->relay_nets[1].prefix, 24, "merged[1] /24");
		is_int(c->relay_nets[1].addr[3], 0, "merged[1] host bits "
		    "masked");
		is_int(c->relay_nets[2].family, AF_INET6, "merged[2] IPv6");
		ipaddr_parse("192.168.2.200", &ip);
		is_int(cidr_match_list(c->relay_nets, c->nrelay_nets, &ip), 1,
		    "192.168.2.200 may relay");
		ipaddr_parse("192.168.20.1", &ip);
		is_int(cidr_match_list(c->relay_nets, c->nrelay_nets, &ip), 0,
		    "192.168.20.1 may not");
	}
	is_int(c->allowed_domains.n, 2, "allowed_domains");
	if (c->allowed_domains.n == 2) {
		is_str(c->allowed_domains.v[0], "example.com",
		    "allowed_domains lower-cased");
		is_str(c->allowed_domains.v[1], ".example.org",
		    "allowed_domains subdomain entry lower-cased");
	}
	is_int(c->nwl_triples, 2, "whitelisted_triples");
	if (c->nwl_triples == 2) {
		is_str(c->wl_triples[0].sender, "", "triple <> sender is \"\"");
		is_str(c->wl_triples[0].rcpt, "post@example.com",
		    "triple recipient lower-cased");
		is_int(c->wl_triples[0].client.prefix, 24, "triple network");
		is_str(c->wl_triples[1].sender, "a@b.example",
		    "triple sender lower-cased");
		is_int(c->wl_triples[1].client.prefix, 32, "triple address");
	}
	is_int(c->nwl_clients, 1, "whitelist_clients");
	is_int(c->wl_senders.n, 2, "whitelist_senders");
	if (c->wl_senders.n == 2) {
		is_str(c->wl_senders.v[0], "@lists.example",
		    "whitelist_senders @domain lower-cased");
		is_str(c->wl_senders.v[1], "boss@example.com",
		    "whitelist_senders address lower-cased");
	}
	is_int(c->wl_recipients.n, 1, "whitelist_recipients");
	is_int(c->syslog_facility, LOG_LOCAL3, "syslog_facility local3");
	is_str(c->greylist_log, "/var/log/gg.log", "greylist_log");
	is_int(c->greylist.delay, 60, "greylist delay");
	is_int(c->greylist.retry_window, 61, "greylist retry_window");
	is_int(c->greylist.expire, 100, "greylist expire");
	is_int(c->greylist.ipv4_prefix, 32, "greylist ipv4_prefix");
	is_int(c->greylist.ipv6_prefix, 128, "greylist ipv6_prefix");
	is_int(c->greylist.auto_whitelist, 0, "greylist auto_whitelist 0");
	is_str(c->greylist.store, "redis://127.0.0.1:6379/2",
	    "greylist store");
	is_int(c->greylist.on_error, ONERR_ACCEPT, "greylist on_error accept");
	done(c);

	/* a nonstandard triple is "HELO CLIENT RECIPIENT", not checked
	 * as a whitelisted_triples entry */
	c = load("\nwhitelisted_nonstandard_triples = "
	    "{\"Mail.Example.NET 198.51.100.0/24 X@y.example\"}\n");
	ok(c != NULL, "whitelisted_nonstandard_triples loads");
	if (c != NULL) {
		is_int(c->nwl_ns_triples, 1, "one nonstandard triple");
		if (c->nwl_ns_triples == 1) {
			is_str(c->wl_ns_triples[0].helo, "mail.example.net",
			    "nonstandard triple HELO lower-cased");
			is_int(c->wl_ns_triples[0].client.prefix, 24,
			    "nonstandard triple network");
			is_str(c->wl_ns_triples[0].rcpt, "x@y.example",
			    "nonstandard triple recipient lower-cased");
		}
	} else
		printf("#   %s\n", err);
	done(c);

	c = load("policy = \"reject\"\nsmtp_ip = \"192.0.2.25\"\n"
	    "greylist {\n  store = \"sqlite:/tmp/g.db\"\n}\n"
	    "greylist {\n  store = \"redis+unix:///run/redis.sock\"\n}\n");
	ok(c != NULL, "policy reject, sqlite and redis+unix stores");
	if (c != NULL) {
		is_int(c->policy, POLICY_REJECT, "policy reject");
		is_str(c->greylist.store, "redis+unix:///run/redis.sock",
		    "the last greylist section wins");
	} else
		printf("# %s\n", err);
	done(c);
}

/* one bad setting: the error names the file and the line */
static const struct {
	const char	*name;
	const char	*text;
	int		 line;		/* line of the error, 0: none */
	const char	*why;		/* substring of the reason */
} bad_cases[] = {
	/* ranges of every integer key, just outside */
	{ "port 70000", "\n\nport = 70000\n", 3, "port = 70000 is out of "
	    "range (1 to 65535)" },
	/* the line of an error after comments (libconfuse 3.3 miscounts
	 * them; the packaged greygate.conf is mostly comments) */
	{ "line after a # comment", "# c\n\nport = 70000\n", 3,
	    "port = 70000" },
	{ "line after a trailing # comment", "port = 25 # ok\nport = 0\n", 2,
	    "port = 0" },
	{ "line after a // comment", "// c\nport = 0\n", 2, "port = 0" },
	{ "line after a block comment", "/* c */\nport = 0\n", 2,
	    "port = 0" },
	{ "unknown key after a # comment", "# c\nfoo = 1\n", 2, "foo" },
	{ "port 0", "port = 0\n", 1, "out of range" },
	{ "port -1", "port = -1\n", 1, "out of range" },
	{ "backlog 0", "backlog = 0\n", 1, "backlog" },
	{ "backlog 65536", "backlog = 65536\n", 1, "backlog" },
	{ "smtp_port 0", "smtp_port = 0\n", 1, "smtp_port" },
	{ "smtp_port 65536", "\nsmtp_port = 65536\n", 2, "smtp_port" },
	{ "upstream_connect_timeout 0", "upstream_connect_timeout = 0\n", 1,
	    "upstream_connect_timeout" },
	{ "upstream_connect_timeout 3601",
	    "upstream_connect_timeout = 3601\n", 1,
	    "upstream_connect_timeout" },
	{ "upstream_timeout 0", "upstream_timeout = 0\n", 1,
	    "upstream_timeout" },
	{ "upstream_timeout 3601", "upstream_timeout = 3601\n", 1,
	    "upstream_timeout" },
	{ "replay_timeout 601", "replay_timeout = 601\n", 1,
	    "replay_timeout" },
	{ "greylist refusal_expire 59", "greylist {\n  refusal_expire = 59\n}\n",
	    2, "refusal_expire" },
	{ "spill_threshold 4095", "spill_threshold = 4095\n", 1,
	    "spill_threshold" },
	{ "spill_threshold 1073741825", "spill_threshold = 1073741825\n", 1,
	    "spill_threshold" },
	{ "start_workers 0", "start_workers = 0\n", 1, "start_workers" },
	{ "max_spare_workers 0", "max_spare_workers = 0\n", 1,
	    "max_spare_workers" },
	{ "min_spare_workers -1", "min_spare_workers = -1\n", 1,
	    "min_spare_workers" },
	{ "max_workers 0", "max_workers = 0\n", 1, "max_workers" },
	{ "max_workers 4097", "max_workers = 4097\n", 1, "max_workers" },
	{ "max_sessions_per_worker 0", "max_sessions_per_worker = 0\n", 1,
	    "max_sessions_per_worker" },
	{ "max_sessions_per_worker 10000001",
	    "max_sessions_per_worker = 10000001\n", 1,
	    "max_sessions_per_worker" },
	{ "max_connections_per_ip -1", "max_connections_per_ip = -1\n", 1,
	    "max_connections_per_ip" },
	{ "max_connections_per_ip 100001",
	    "max_connections_per_ip = 100001\n", 1, "max_connections_per_ip" },
	{ "shutdown_timeout -1", "shutdown_timeout = -1\n", 1,
	    "shutdown_timeout" },
	{ "shutdown_timeout 3601", "shutdown_timeout = 3601\n", 1,
	    "shutdown_timeout" },
	{ "inactivity_timeout 0", "inactivity_timeout = 0\n", 1,
	    "inactivity_timeout" },
	{ "inactivity_timeout 86401", "inactivity_timeout = 86401\n", 1,
	    "inactivity_timeout" },
	{ "session_timeout 0", "session_timeout = 0\n", 1,
	    "session_timeout" },
	{ "session_timeout 604801", "session_timeout = 604801\n", 1,
	    "session_timeout" },
	{ "greet_delay -1", "greet_delay = -1\n", 1, "greet_delay" },
	{ "greet_delay 301", "greet_delay = 301\n", 1, "greet_delay" },
	{ "max_message_size 1023", "max_message_size = 1023\n", 1,
	    "max_message_size" },
	{ "max_message_size 2147483648", "max_message_size = 2147483648\n",
	    1, "max_message_size" },
	{ "max_recipients 0", "max_recipients = 0\n", 1, "max_recipients" },
	{ "max_recipients 100001", "max_recipients = 100001\n", 1,
	    "max_recipients" },
	{ "max_errors 0", "max_errors = 0\n", 1, "max_errors" },
	{ "max_errors 1001", "max_errors = 1001\n", 1, "max_errors" },
	{ "max_command_line 511", "max_command_line = 511\n", 1,
	    "max_command_line" },
	{ "max_command_line 65537", "max_command_line = 65537\n", 1,
	    "max_command_line" },
	{ "max_text_line 999", "max_text_line = 999\n", 1, "max_text_line" },
	{ "max_text_line 1000001", "max_text_line = 1000001\n", 1,
	    "max_text_line" },
	{ "greylist delay -1", "greylist {\n  delay = -1\n}\n", 2, "delay" },
	{ "greylist delay 2592001", "greylist {\n  delay = 2592001\n}\n", 2,
	    "delay" },
	{ "greylist retry_window 0", "greylist {\n  retry_window = 0\n}\n", 2,
	    "retry_window" },
	{ "greylist retry_window 31536001",
	    "greylist {\n  retry_window = 31536001\n}\n", 2, "retry_window" },
	{ "greylist expire 0", "greylist {\n  expire = 0\n}\n", 2, "expire" },
	{ "greylist expire 315360001",
	    "greylist {\n  expire = 315360001\n}\n", 2, "expire" },
	{ "greylist ipv4_prefix 7", "greylist {\n  ipv4_prefix = 7\n}\n", 2,
	    "ipv4_prefix" },
	{ "greylist ipv4_prefix 33", "greylist {\n  ipv4_prefix = 33\n}\n", 2,
	    "ipv4_prefix" },
	{ "greylist ipv6_prefix 15", "greylist {\n  ipv6_prefix = 15\n}\n", 2,
	    "ipv6_prefix" },
	{ "greylist ipv6_prefix 129",
	    "greylist {\n  ipv6_prefix = 129\n}\n", 2, "ipv6_prefix" },
	{ "greylist auto_whitelist -1",
	    "greylist {\n  auto_whitelist = -1\n}\n", 2, "auto_whitelist" },
	{ "greylist auto_whitelist 1000001",
	    "greylist {\n  auto_whitelist = 1000001\n}\n", 2,
	    "auto_whitelist" },

	/* unknown keys and wrong types */
	{ "unknown key", "port = 25\nfoo = 1\n", 2, "foo" },
	{ "unknown key in greylist", "greylist {\n  dely = 1\n}\n", 2,
	    "dely" },
	{ "original's spelling is not a key", "\n\nallowed_sender = {}\n", 3,
	    "allowed_sender" },
	{ "string for an int", "\nport = \"abc\"\n", 2, "port" },
	{ "word for an int", "max_errors = ten\n", 1, "max_errors" },
	{ "list for an int", "port = {1, 2}\n", 1, "unexpected token" },
	{ "list for a string", "smtp_ip = {\"127.0.0.1\"}\n", 1,
	    "unexpected token" },
	{ "syntax error", "port = \n", 0, "" },

	/* strings */
	{ "servername with a space", "servername = \"mx example\"\n", 1,
	    "servername" },
	{ "serverid empty", "serverid = \"\"\n", 1, "serverid" },
	{ "user empty", "user = \"\"\n", 1, "user" },
	{ "listen host name", "listen = {\"127.0.0.1\", \"localhost\"}\n", 1,
	    "localhost" },
	{ "listen CIDR", "listen = {\"127.0.0.0/8\"}\n", 1, "127.0.0.0/8" },
	{ "smtp_ip prefix", "\nsmtp_ip = \"10.1.2\"\n", 2, "10.1.2" },
	{ "chroot relative", "chroot = \"var/jail\"\n", 1, "chroot" },
	{ "pidfile relative", "pidfile = \"gg.pid\"\n", 1, "pidfile" },
	{ "pidfile empty", "pidfile = \"\"\n", 1, "pidfile" },
	{ "spool_dir relative", "spool_dir = \"spool\"\n", 1, "spool_dir" },
	{ "greylist_log relative", "greylist_log = \"gg.log\"\n", 1,
	    "greylist_log" },
	{ "bad policy word", "\n\n\n\npolicy = \"maybe\"\n", 5,
	    "policy must be greylist, accept or reject, not \"maybe\"" },
	{ "policy upper case", "policy = \"ACCEPT\"\n", 1, "policy" },
	{ "bad on_error", "greylist {\n\n  on_error = \"ignore\"\n}\n", 3,
	    "on_error" },
	{ "bad upstream_client_info", "\nupstream_client_info = \"both\"\n",
	    2, "upstream_client_info must be auto, xclient, xforward or off, "
	    "not \"both\"" },
	{ "verify_recipients not a boolean", "verify_recipients = maybe\n", 1,
	    "verify_recipients" },
	{ "verify_timeout 0", "verify_timeout = 0\n", 1, "verify_timeout" },
	{ "upstream_ehlo_refresh 0", "upstream_ehlo_refresh = 0\n", 1,
	    "upstream_ehlo_refresh" },
	{ "bad syslog_facility", "syslog_facility = \"local8\"\n", 1,
	    "local8" },
	{ "bad store", "greylist {\n  store = \"mysql://x\"\n}\n", 2,
	    "mysql://x" },
	{ "sqlite store relative", "greylist {\n  store = \"sqlite:g.db\"\n}\n",
	    2, "sqlite:g.db" },

	/* networks */
	{ "prefix network refused with a hint",
	    "\nallowed_senders = {\"127.0.0.1\", \"192.168.2\"}\n", 2,
	    "192.168.2 is not a valid address or CIDR network; did you mean "
	    "192.168.2.0/24?" },
	{ "prefix network in allowed_sender_nets",
	    "allowed_sender_nets = {\"10.\"}\n", 1,
	    "did you mean 10.0.0.0/8?" },
	{ "bad prefix length", "allowed_senders = {\"10.0.0.0/33\"}\n", 1,
	    "10.0.0.0/33: prefix length out of range (0-32)" },
	{ "bad whitelist_clients", "\nwhitelist_clients = {\"garbage\"}\n", 2,
	    "garbage is not a valid address or CIDR network" },
	{ "bad allowed_domains", "allowed_domains = {\"bad..example\"}\n", 1,
	    "bad..example" },
	{ "allowed_domains with @", "allowed_domains = {\"a@example.org\"}\n",
	    1, "a@example.org" },

	/* triples */
	{ "triple with two fields",
	    "whitelisted_triples = {\"192.0.2.1 a@b.example\"}\n", 1,
	    "needs three fields" },
	{ "triple with four fields",
	    "whitelisted_triples = {\"192.0.2.1 a@b.example c@d.example x\"}\n",
	    1, "more than three fields" },
	{ "triple with a bad sender",
	    "whitelisted_triples = {\"192.0.2.1 nobody c@d.example\"}\n", 1,
	    "bad sender" },
	{ "triple with a bad recipient",
	    "whitelisted_triples = {\"192.0.2.1 a@b.example <>\"}\n", 1,
	    "bad recipient" },
	{ "triple with a prefix network",
	    "\nwhitelisted_triples = {\"192.0.2 a@b.example c@d.example\"}\n",
	    2, "did you mean 192.0.2.0/24?" },
	/* nonstandard triples are checked as such */
	{ "nonstandard triple with a bad HELO",
	    "whitelisted_nonstandard_triples = "
	    "{\"bad/helo 192.0.2.0/24 c@d.example\"}\n", 1, "bad HELO" },
	{ "nonstandard triple with a bad network",
	    "whitelisted_nonstandard_triples = "
	    "{\"mx.example 192.0.2.0/40 c@d.example\"}\n", 1,
	    "prefix length out of range" },
	{ "bad whitelist_senders", "whitelist_senders = {\"nodomain\"}\n", 1,
	    "nodomain" },
	{ "bad whitelist_recipients",
	    "whitelist_recipients = {\"@bad_domain\"}\n", 1, "@bad_domain" },

	/* rules between keys */
	{ "retry_window equal to delay",
	    "greylist {\n  delay = 600\n  retry_window = 600\n}\n", 3,
	    "retry_window (600) must exceed delay (600)" },
	{ "retry_window below delay",
	    "greylist {\n  retry_window = 100\n}\n", 2,
	    "retry_window (100) must exceed delay (300)" },
	/* only delay is set: the error has delay's line */
	{ "delay beyond the default retry_window",
	    "greylist {\n  delay = 200000\n}\n", 2,
	    "retry_window (172800) must exceed delay (200000)" },
	{ "min_spare_workers > max_spare_workers",
	    "max_spare_workers = 3\nmin_spare_workers = 4\n", 2,
	    "min_spare_workers (4) exceeds max_spare_workers (3)" },
	{ "min_spare_workers > default max_spare_workers",
	    "\nmin_spare_workers = 11\n", 2,
	    "min_spare_workers (11) exceeds max_spare_workers (10)" },
	{ "start_workers > max_workers",
	    "max_workers = 4\nstart_workers = 5\n", 2,
	    "start_workers (5) exceeds max_workers (4)" },
	{ "spool_dir outside chroot",
	    "chroot = \"/var/jail\"\nspool_dir = \"/var/spool/gg\"\n", 2,
	    "spool_dir (/var/spool/gg) must lie inside chroot (/var/jail)" },
	{ "spool_dir beside chroot with the same prefix",
	    "chroot = \"/var/jail\"\nspool_dir = \"/var/jailbreak\"\n", 2,
	    "must lie inside chroot" },
	/* spool_dir left at its default: the error has chroot's line */
	{ "default spool_dir outside chroot", "\nchroot = \"/srv/jail\"\n", 2,
	    "must lie inside chroot (/srv/jail)" },
};

static void
test_bad(void)
{
	struct config	*c;
	char		 want[128];
	size_t		 i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		c = load(bad_cases[i].text);
		ok(c == NULL, "refused: %s", bad_cases[i].name);
		if (bad_cases[i].line > 0)
			snprintf(want, sizeof(want), "%s:%d: ", path,
			    bad_cases[i].line);
		else
			snprintf(want, sizeof(want), "%s:", path);
		is_prefix(err, want, "refused: %s: error at line %d",
		    bad_cases[i].name, bad_cases[i].line);
		has_str(err, bad_cases[i].why, "refused: %s: reason",
		    bad_cases[i].name);
		done(c);
	}
}

/* values at the edges of their ranges and combinations that are fine */
static const struct {
	const char	*name;
	const char	*text;
} good_cases[] = {
	{ "port 1", "port = 1\n" },
	{ "port 65535", "port = 65535\n" },
	{ "max_connections_per_ip 100000",
	    "max_connections_per_ip = 100000\n" },
	{ "min_spare_workers = max_spare_workers",
	    "min_spare_workers = 10\nmax_spare_workers = 10\n" },
	{ "retry_window just above delay",
	    "greylist {\n  delay = 0\n  retry_window = 1\n}\n" },
	{ "chroot with a trailing slash",
	    "chroot = \"/var/jail/\"\nspool_dir = \"/var/jail/spool\"\n" },
	{ "spool_dir is the chroot", "chroot = \"/var/jail\"\n"
	    "spool_dir = \"/var/jail\"\n" },
	{ "chroot /", "chroot = \"/\"\nspool_dir = \"/var/spool/gg\"\n" },
	{ "empty lists", "allowed_senders = {}\nallowed_domains = {}\n" },
	{ "IPv6 CIDR list",
	    "allowed_senders = {\"2001:db8::/32\", \"::1\"}\n" },
	{ "comments", "# comment\n/* block */\nport = 26 # trailing\n" },
	{ "servername empty means host name", "servername = \"\"\n" },
};

static void
test_good(void)
{
	struct config	*c;
	size_t		 i;

	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		c = load(good_cases[i].text);
		ok(c != NULL, "accepted: %s", good_cases[i].name);
		if (c == NULL)
			printf("#   %s\n", err);
		done(c);
	}
	c = load("allowed_senders = {}\n");
	if (c != NULL)
		is_int(c->nrelay_nets, 0, "allowed_senders = {} allows nobody");
	done(c);
	c = load("chroot = \"/var/jail/\"\nspool_dir = \"/var/jail/spool\"\n");
	if (c != NULL)
		is_str(c->chroot, "/var/jail", "chroot trailing slash removed");
	done(c);
}

/* spool_dir as the chrooted workers see it */
static const struct {
	const char	*name;
	const char	*text;
	const char	*want;
} spool_cases[] = {
	{ "no chroot", "spool_dir = \"/var/spool/greygate\"\n",
	    "/var/spool/greygate" },
	{ "spool_dir is the chroot",
	    "chroot = \"/var/spool/greygate\"\n"
	    "spool_dir = \"/var/spool/greygate\"\n", "/" },
	{ "spool_dir is the chroot, slashes",
	    "chroot = \"/var/spool/greygate/\"\n"
	    "spool_dir = \"/var/spool/greygate/\"\n", "/" },
	{ "spool_dir below the chroot",
	    "chroot = \"/var/jail\"\nspool_dir = \"/var/jail/spool\"\n",
	    "/spool" },
	{ "chroot /", "chroot = \"/\"\nspool_dir = \"/var/spool\"\n",
	    "/var/spool" },
};

static void
test_spool_in_chroot(void)
{
	struct config	*c;
	size_t		 i;

	for (i = 0; i < sizeof(spool_cases) / sizeof(spool_cases[0]); i++) {
		c = load(spool_cases[i].text);
		ok(c != NULL, "loaded: %s", spool_cases[i].name);
		if (c != NULL)
			is_str(config_spool_in_chroot(c), spool_cases[i].want,
			    "spool in chroot: %s", spool_cases[i].name);
		else
			printf("#   %s\n", err);
		done(c);
	}
}

static void
test_missing(void)
{
	struct config	*c;
	char		 want[128];

	c = config_load("/nonexistent/greygate.conf", err, sizeof(err));
	ok(c == NULL, "missing file refused");
	snprintf(want, sizeof(want), "/nonexistent/greygate.conf: ");
	is_prefix(err, want, "missing file: error names the file");
	config_free(c);

	/* a short error buffer is never overrun */
	memset(err, 'X', sizeof(err));
	c = config_load("/nonexistent/greygate.conf", err, 8);
	ok(c == NULL, "missing file, short buffer");
	is_int(strlen(err), 7, "error truncated to the buffer");
	is_int(err[8], 'X', "nothing written past the buffer");
}

int
main(void)
{
	test_defaults();
	test_values();
	test_bad();
	test_good();
	test_spool_in_chroot();
	test_missing();
	return tap_done();
}
