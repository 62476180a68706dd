/*
 * policy - decides each recipient: relay control first (who may send
 * where), then the configured policy.  A pure function of the
 * configuration and the query: it never touches the network or a store
 * itself (greylisting answers V_ASK, and the session asks the policy
 * process), and it never turns a failure into a pass unless on_error
 * says so.
 */
#include <string.h>
#include <strings.h>

#include "policy.h"

#define R_RELAY		"550 5.7.1 Relaying denied"
#define R_REJECT	"550 5.7.1 Recipient rejected by policy"
#define R_GREYLIST	"451 4.7.1 Greylisted, please try again later"
#define R_UNAVAIL	"451 4.7.1 Greylisting unavailable, try again later"

static const char *
addr_domain(const char *addr)
{
	const char	*at = strrchr(addr, '@');

	return at ? at + 1 : NULL;
}

/* domain_allowed - exact match, or ".example.org" for subdomains too */
static int
domain_allowed(const struct config *c, const char *domain)
{
	size_t	i, dl = strlen(domain), el;
	const char *e;

	for (i = 0; i < c->allowed_domains.n; i++) {
		e = c->allowed_domains.v[i];
		if (e[0] == '.') {
			if (strcasecmp(domain, e + 1) == 0)
				return 1;
			el = strlen(e);
			if (dl > el && strcasecmp(domain + dl - el, e) == 0)
				return 1;
		} else if (strcasecmp(domain, e) == 0)
			return 1;
	}
	return 0;
}

/*
 * policy_domain_ours - is rcpt's domain in allowed_domains (the mail
 * greygate receives for its upstream)?  Recipient verification probes
 * only those.
 */
int
policy_domain_ours(const struct config *c, const char *rcpt)
{
	const char	*d = addr_domain(rcpt);

	return d != NULL && domain_allowed(c, d);
}

/*
 * policy_routed - does a recipient ask to be routed on: a source route
 * (route), or '%', '!' or an '@' (inside quotes) in its local part?  The
 * upstream may honour them (Postfix's allow_percent_hack, swap_bangpath)
 * and trusts greygate's address, so relay control refuses them from a
 * client that may not relay (Postfix: allow_untrusted_routing = no).
 */
int
policy_routed(const char *rcpt, int route)
{
	const char	*at = strrchr(rcpt, '@');

	if (route)
		return 1;
	if (at == NULL)		/* postmaster */
		return 0;
	return memchr(rcpt, '%', (size_t)(at - rcpt)) != NULL ||
	    memchr(rcpt, '!', (size_t)(at - rcpt)) != NULL ||
	    memchr(rcpt, '@', (size_t)(at - rcpt)) != NULL;
}

/* policy_relay_allowed - may this client send to this recipient? */
int
policy_relay_allowed(const struct config *c, const struct ipaddr *client,
    const char *rcpt)
{
	const char	*d = addr_domain(rcpt);

	if (d == NULL)		/* postmaster without a domain: local */
		return 1;
	if (cidr_match_list(c->relay_nets, c->nrelay_nets, client))
		return 1;
	return domain_allowed(c, d);
}

/* addrspec_match - "user@domain" exactly, or "@domain" for the domain */
static int
addrspec_match(const struct strlist *l, const char *addr)
{
	const char	*d = addr_domain(addr);
	size_t		 i;

	for (i = 0; i < l->n; i++) {
		if (l->v[i][0] == '@') {
			if (d != NULL && strcasecmp(d, l->v[i] + 1) == 0)
				return 1;
		} else if (strcasecmp(addr, l->v[i]) == 0)
			return 1;
	}
	return 0;
}

/* policy_whitelisted - any whitelist or allowed_senders */
int
policy_whitelisted(const struct config *c, const struct policy_query *q)
{
	size_t	i;

	if (cidr_match_list(c->relay_nets, c->nrelay_nets, q->client) ||
	    cidr_match_list(c->wl_clients, c->nwl_clients, q->client) ||
	    addrspec_match(&c->wl_senders, q->sender) ||
	    addrspec_match(&c->wl_recipients, q->rcpt))
		return 1;
	for (i = 0; i < c->nwl_triples; i++)
		if (cidr_match(&c->wl_triples[i].client, q->client) &&
		    strcasecmp(c->wl_triples[i].sender, q->sender) == 0 &&
		    strcasecmp(c->wl_triples[i].rcpt, q->rcpt) == 0)
			return 1;
	for (i = 0; i < c->nwl_ns_triples; i++)
		if (cidr_match(&c->wl_ns_triples[i].client, q->client) &&
		    strcasecmp(c->wl_ns_triples[i].helo, q->helo) == 0 &&
		    strcasecmp(c->wl_ns_triples[i].rcpt, q->rcpt) == 0)
			return 1;
	return 0;
}

/*
 * policy_rcpt - the verdict and the reply for one recipient.  Greylisting
 * needs the store of the policy process; until it answers, on_error
 * decides (tempfail by default), never a silent pass.
 */
enum verdict
policy_rcpt(const struct config *c, const struct policy_query *q,
    const char **reply)
{
	*reply = "250 2.1.5 OK";
	if (!policy_relay_allowed(c, q->client, q->rcpt) ||
	    (policy_routed(q->rcpt, q->route) &&
	    !cidr_match_list(c->relay_nets, c->nrelay_nets, q->client))) {
		*reply = R_RELAY;
		return V_RELAY_DENIED;
	}
	switch (c->policy) {
	case POLICY_ACCEPT:
		return V_PASS;
	case POLICY_REJECT:
		*reply = R_REJECT;
		return V_REJECT;
	case POLICY_GREYLIST:
	default:
		if (policy_whitelisted(c, q))
			return V_WHITELIST;
		return V_ASK;
	}
}

/*
 * policy_greylist_answer - the verdict and reply for what the policy
 * process said (enum pp_status), or for -1 when it could not be asked:
 * then on_error decides, tempfail by default, never a silent pass.
 */
enum verdict
policy_greylist_answer(const struct config *c, int status,
    const char **reply)
{
	*reply = "250 2.1.5 OK";
	switch (status) {
	case PP_PASS:
		return V_PASS;
	case PP_WHITELIST:
		return V_WHITELIST;
	case PP_GREYLIST:
		*reply = R_GREYLIST;
		return V_GREYLIST;
	default:
		if (c->greylist.on_error == ONERR_ACCEPT)
			return V_PASS;
		*reply = R_UNAVAIL;
		return V_TEMPFAIL;
	}
}

const char *
policy_action(enum verdict v)
{
	switch (v) {
	case V_PASS:
		return "pass";
	case V_WHITELIST:
		return "whitelist";
	case V_RELAY_DENIED:
		return "relay-denied";
	case V_REJECT:
		return "reject";
	case V_GREYLIST:
		return "greylist";
	case V_TEMPFAIL:
	case V_ASK:
	default:
		return "tempfail";
	}
}
