/*
 * greylist - the triplet rules (SPEC 4): building the keys (client
 * network, normalised sender, normalised recipient) and deciding one
 * triplet against the store at a time given by the caller.
 *
 * Typical use, in the process that owns the store:
 *
 *	char net[GREYLIST_NET_MAX], from[GREYLIST_ADDR_MAX],
 *	    to[GREYLIST_ADDR_MAX];
 *
 *	if (greylist_client_net(&ip, 24, 64, net, sizeof(net)) == -1 ||
 *	    greylist_norm_sender(sender, from, sizeof(from)) == -1 ||
 *	    greylist_norm_rcpt(rcpt, to, sizeof(to)) == -1)
 *		... a key that cannot be built: treat as GL_ERROR
 *	switch (greylist_check(st, &params, net, from, to, time(NULL))) ...
 */
#ifndef GREYGATE_GREYLIST_H
#define GREYGATE_GREYLIST_H

#include <stddef.h>
#include <time.h>

#include "cidr.h"
#include "store.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" fits */
#define GREYLIST_NET_MAX	64
/* a key buffer for any address of a legal command line (512 octets) */
#define GREYLIST_ADDR_MAX	512

enum gl_result {
	GL_PASS,		/* triplet passed (now or before) */
	GL_WHITELIST,		/* client network auto-whitelisted */
	GL_GREYLIST,		/* first sight, early or late retry: 451 */
	GL_ERROR		/* the store failed: apply on_error */
};

/* The greylist { } section of greygate.conf, in seconds. */
struct greylist_params {
	time_t		 delay;		/* a retry passes after this */
	time_t		 retry_window;	/* and within this of first sight */
	time_t		 expire;	/* a pass lives this after last use */
	int		 auto_whitelist; /* passed triplets per net, 0: off */
};

/*
 * greylist_client_net - the client network as text, "192.0.2.0/24" or
 * "2001:db8:1::/64": the address with host bits cleared and the prefix
 * for its family.  0, or -1 (buf set to "") for a prefix out of range,
 * an unknown family or a buffer shorter than needed.
 */
int	greylist_client_net(const struct ipaddr *, int v4prefix, int v6prefix,
	    char *buf, size_t len);

/*
 * greylist_norm_sender - the sender part of the key: lower-cased, BATV
 * (prvs=TAG=local, prvs=local/TAG, msprvs1=TAG=local, btv1==TAG==local)
 * and SRS0/SRS1 unwrapped to the original local@domain, then any
 * +extension of the local part removed.  The null sender "" stays "".
 * 0, or -1 when out is too short (out then holds a truncated,
 * NUL-terminated key that must not be used).
 */
int	greylist_norm_sender(const char *in, char *out, size_t outlen);
/* greylist_norm_rcpt - the recipient part of the key: lower-cased; 0/-1 */
int	greylist_norm_rcpt(const char *in, char *out, size_t outlen);

/*
 * greylist_check - decide the triplet (keys as built above) at time now
 * and record the outcome in the store:
 *   - a live client record for net: GL_WHITELIST (its last_seen, passes
 *     and expires are refreshed);
 *   - no triplet, a grey one first seen more than retry_window ago, or
 *     a passed one past its expiry: recorded afresh as grey, expiring
 *     at now + retry_window: GL_GREYLIST;
 *   - grey, first seen less than delay ago: GL_GREYLIST, nothing written;
 *   - grey, delay <= now - first_seen <= retry_window (both edges pass),
 *     or passed and live: GL_PASS, passes + 1, last_seen = now,
 *     expires = now + expire; then with auto_whitelist > 0, once net has
 *     that many live passed triplets a client record is written,
 *     expiring at now + expire.
 * GL_ERROR when any store operation failed (store_errstr() says why).
 */
enum gl_result	greylist_check(struct store *, const struct greylist_params *,
		    const char *net, const char *sender, const char *rcpt,
		    time_t now);
/*
 * greylist_check_cached - what the policy process does for a RCPT: a
 * live cached upstream reply of the triplet (store_reply_get) wins: 1
 * with it in buf, nothing decided; otherwise greylist_check: 0 with the
 * verdict in *res (GL_ERROR included).  -1 when the reply lookup
 * failed.  A backend with a decide op does both in one round trip.
 */
int		greylist_check_cached(struct store *,
		    const struct greylist_params *, const char *net,
		    const char *sender, const char *rcpt, time_t now,
		    char *buf, size_t buflen, enum gl_result *res);
/* greylist_peek - the verdict greylist_check would give, writing nothing */
enum gl_result	greylist_peek(struct store *, const struct greylist_params *,
		    const char *net, const char *sender, const char *rcpt,
		    time_t now);
/* greylist_result_name - "pass", "whitelist", "greylist", "error" */
const char	*greylist_result_name(enum gl_result);

#endif
