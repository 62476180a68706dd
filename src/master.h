/*
 * master - the root process: listeners, the worker pool, signals.
 */
#ifndef GREYGATE_MASTER_H
#define GREYGATE_MASTER_H

#include <sys/types.h>

#include <libutil.h>

#include <time.h>

#include "cidr.h"
#include "config.h"
#include "policy_proto.h"

#define MAX_SLOTS	4096	/* upper bound of max_workers */
#define MAX_LISTEN	16	/* listening sockets */

enum slot_state {
	SLOT_FREE,		/* no worker */
	SLOT_STARTING,		/* forked, not yet accepting */
	SLOT_IDLE,		/* waiting for a connection */
	SLOT_BUSY		/* serving a session */
};

/* one worker's entry in the shared scoreboard */
struct slot {
	pid_t		 pid;		/* worker, 0 when free */
	volatile int	 state;		/* enum slot_state, set by the worker */
	unsigned int	 gen;		/* configuration generation */
	struct ipaddr	 client;	/* client of the session in progress */
	unsigned long	 sessions;	/* sessions served */
	unsigned long	 messages;	/* messages delivered */
	volatile time_t	 replay_until;	/* replaying until then, 0: not */
	unsigned long	 tls_sessions;	/* sessions that started TLS */
};

struct scoreboard {
	volatile int	 nslots;	/* slots ever used: scans stop here */
	int		 wake_fd;	/* a worker writes here: spawn more */
	char		 policy_name[PP_NAME_MAX]; /* policy socket, "" if none */
	volatile time_t	 reply_horizon;	/* no refusal remembered after it */
	struct slot	 slots[MAX_SLOTS];
};

struct listeners {
	int		 fd[MAX_LISTEN];	/* listening sockets */
	size_t		 n;
};

struct privs {
	int		 drop;		/* started as root */
	uid_t		 uid;		/* unprivileged user */
	gid_t		 gid;
};

void	master_bind(const struct config *, struct listeners *);
int	master_run(struct config *, struct listeners *, const struct privs *,
	    struct pidfh *);

#endif
