/*
 * config - greygate.conf, parsed and checked into one typed structure.
 */
#ifndef GREYGATE_CONFIG_H
#define GREYGATE_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "cidr.h"

struct tls_ctx;

enum policy_kind {
	POLICY_GREYLIST,
	POLICY_ACCEPT,
	POLICY_REJECT
};

enum tls_mode {
	TLS_OFF,
	TLS_MAY
};

enum on_error {
	ONERR_TEMPFAIL,
	ONERR_ACCEPT
};

enum upstream_client_info {
	UCI_AUTO,		/* XCLIENT when announced, else XFORWARD */
	UCI_XCLIENT,		/* XCLIENT only */
	UCI_XFORWARD,		/* XFORWARD only */
	UCI_OFF			/* neither */
};

struct triple {
	struct cidr	 client;	/* client network */
	char		*sender;	/* address, "" for <> */
	char		*rcpt;		/* recipient address */
};

struct ns_triple {
	char		*helo;		/* HELO name, lower case */
	struct cidr	 client;	/* client network */
	char		*rcpt;		/* recipient address */
};

struct strlist {
	char		**v;		/* entries */
	size_t		  n;		/* number of entries */
};

struct config {
	char		 path[PATH_MAX];	/* file read */
	char		 servername[256];	/* banner and HELO replies */
	char		 serverid[64];		/* software id in the banner */
	struct strlist	 listen;		/* listening addresses */
	int		 listen_default;	/* listen not set in the file */
	int		 port;			/* listening port */
	int		 backlog;		/* listen(2) backlog */
	char		 smtp_ip[64];		/* upstream address */
	int		 smtp_port;		/* upstream port */
	int		 upstream_connect_timeout; /* seconds */
	int		 upstream_timeout;	/* seconds per reply */
	int		 replay_timeout;	/* a whole replay, seconds */
	enum upstream_client_info upstream_client_info; /* XCLIENT... */
	int		 upstream_ehlo_refresh;	/* seconds between EHLO probes */
	int		 verify_recipients;	/* probe recipients at RCPT */
	int		 verify_positive_expire; /* seconds a 2xx is kept */
	int		 verify_negative_expire; /* seconds a 5xx is kept */
	int		 verify_timeout;	/* seconds per probe step */
	char		 user[64];		/* unprivileged user */
	char		 group[64];		/* and group */
	char		 worker_user[64];	/* the workers' own user */
	char		 worker_group[64];	/* and group */
	char		 chroot[PATH_MAX];	/* workers' root, "" for none */
	char		 pidfile[PATH_MAX];	/* master's pid file */
	char		 spool_dir[PATH_MAX];	/* spill files */
	long		 spill_threshold;	/* octets kept in memory */
	int		 start_workers;		/* workers forked at start */
	int		 min_spare_workers;	/* idle workers wanted, at least */
	int		 max_spare_workers;	/* idle workers wanted, at most */
	int		 max_workers;		/* workers, all in all */
	int		 max_sessions_per_worker; /* then it is replaced */
	int		 max_connections_per_ip; /* 0: no limit */
	int		 shutdown_timeout;	/* seconds */
	int		 inactivity_timeout;	/* seconds between lines */
	int		 session_timeout;	/* seconds in all */
	int		 greet_delay;		/* seconds, 0: none */
	long		 max_message_size;	/* octets, SIZE */
	int		 max_recipients;	/* per message */
	int		 max_errors;		/* then 421 */
	int		 max_command_line;	/* octets incl. CRLF */
	int		 max_text_line;		/* octets incl. CRLF */
	enum policy_kind policy;		/* greylist, accept, reject */
	struct cidr	*relay_nets;		/* allowed_senders + _nets */
	size_t		 nrelay_nets;
	struct strlist	 allowed_domains;	/* lower case */
	struct triple	*wl_triples;		/* whitelisted_triples */
	size_t		 nwl_triples;
	struct ns_triple *wl_ns_triples;	/* ..._nonstandard_triples */
	size_t		 nwl_ns_triples;
	struct cidr	*wl_clients;		/* whitelist_clients */
	size_t		 nwl_clients;
	struct strlist	 wl_senders;		/* address or @domain */
	struct strlist	 wl_recipients;		/* address or @domain */
	int		 syslog_facility;	/* LOG_MAIL, ... */
	char		 greylist_log[PATH_MAX]; /* "" for none */
	enum tls_mode	 tls;			/* STARTTLS offered or not */
	char		 tls_cert_file[PATH_MAX]; /* PEM, chain after it */
	char		 tls_key_file[PATH_MAX]; /* PEM private key */
	struct strlist	 tls_protocols;		/* "TLSv1.2", "TLSv1.3" */
	char		 tls_ciphers[1024];	/* "" OpenSSL's default */
	char		 tls_dh[PATH_MAX];	/* DH parameters, "" auto */
	struct tls_ctx	*tls_ctx;		/* made by config_tls_load */
	struct {
		int	 delay;			/* seconds before a retry */
		int	 retry_window;		/* seconds a retry is awaited */
		int	 expire;		/* seconds a pass is kept */
		int	 refusal_expire;	/* an upstream 5xx, seconds */
		int	 ipv4_prefix;		/* client network, bits */
		int	 ipv6_prefix;
		int	 auto_whitelist;	/* passes, 0: off */
		char	 store[PATH_MAX];	/* sqlite:PATH, redis://... */
		enum on_error on_error;		/* when the store fails */
		char	 redis_prefix[64];	/* key prefix, "greygate:" */
		char	 redis_username[128];	/* ACL user, "" none */
		char	 redis_password[128];	/* "" none; never logged */
	} greylist;
};

struct config	*config_load(const char *, char *, size_t);
/* config_store_options - the store options of c (pointers into c) */
struct store_options;
void		 config_store_options(const struct config *,
		    struct store_options *);
void		 config_free(struct config *);
int		 config_tls_load(struct config *, char *, size_t);
const char	*config_spool_in_chroot(const struct config *);

#endif
