/*
 * master - the root process: listeners, the worker pool, signals.
 */
#ifndef GREYGATE_MASTER_H
#define GREYGATE_MASTER_H

#include <sys/types.h>

#include <libutil.h>

#include <time.h>

#include "chan.h"
#include "cidr.h"
#include "config.h"
#include "policy_proto.h"

#define MAX_SLOTS	4096	/* upper bound of max_workers */
#define MAX_LISTEN	16	/* listening sockets */

struct listeners {
	int		 fd[MAX_LISTEN];	/* listening sockets */
	size_t		 n;
};

struct privs {
	int		 drop;		/* started as root */
	uid_t		 uid;		/* user: the policy process, the store */
	gid_t		 gid;
	uid_t		 wuid;		/* worker_user: the workers */
	gid_t		 wgid;
};

void	master_bind(const struct config *, struct listeners *);
int	master_nofile(const struct config *, char *, size_t);
int	master_run(struct config *, struct listeners *, const struct privs *,
	    struct pidfh *);

#endif
