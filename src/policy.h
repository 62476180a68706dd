/*
 * policy - the verdict on one recipient: relay control, then the policy.
 */
#ifndef GREYGATE_POLICY_H
#define GREYGATE_POLICY_H

#include "cidr.h"
#include "config.h"
#include "policy_proto.h"

enum verdict {
	V_PASS,			/* accepted by the policy */
	V_WHITELIST,		/* accepted by a whitelist */
	V_RELAY_DENIED,		/* not our domain, client may not relay */
	V_REJECT,		/* policy reject */
	V_GREYLIST,		/* first sight of the triplet */
	V_TEMPFAIL,		/* the policy cannot decide now */
	V_ASK			/* greylisting: ask the policy process */
};

struct policy_query {
	const struct ipaddr *client;	/* client address */
	const char	*helo;		/* HELO/EHLO name */
	const char	*sender;	/* reverse-path, "" for <> */
	const char	*rcpt;		/* forward-path */
	int		 route;		/* it had a source route */
};

enum verdict	 policy_rcpt(const struct config *,
		    const struct policy_query *, const char **);
int		 policy_relay_allowed(const struct config *,
		    const struct ipaddr *, const char *);
int		 policy_routed(const char *, int);
int		 policy_domain_ours(const struct config *, const char *);
int		 policy_whitelisted(const struct config *,
		    const struct policy_query *);
const char	*policy_action(enum verdict);
enum verdict	 policy_greylist_answer(const struct config *, int,
		    const char **);

#endif
