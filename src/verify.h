/*
 * verify - recipient verification at RCPT: a probe of the upstream,
 * its answer cached by the policy process.
 */
#ifndef GREYGATE_VERIFY_H
#define GREYGATE_VERIFY_H

#include <stddef.h>

struct session;

/* what verify_rcpt found */
enum verify_result {
	VERIFY_SKIP,		/* not verified: go on to greylisting */
	VERIFY_OK,		/* the upstream takes it */
	VERIFY_REFUSED		/* a 5xx of the upstream: refuse at RCPT */
};

enum verify_result verify_rcpt(struct session *, const char *, int,
		    char *, size_t, const char **);
int		 verify_cacheable(const char *);

#endif
