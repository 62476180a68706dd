/*
 * chan - the channels between the master and its children, and the
 * read-only board the master publishes to the workers.
 */
#ifndef GREYGATE_CHAN_H
#define GREYGATE_CHAN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cidr.h"
#include "policy_proto.h"

#define CHAN_MAGIC	0x67674331u	/* "ggC1" */
#define CHAN_MSGS_MAX	(1UL << 20)	/* messages one session may add */
#define CHAN_HORIZON_FOREVER INT64_MAX	/* a horizon: workers always ask */
#define HORIZON_TTL_MAX	(315360000L + 86400L) /* refusal_expire's range */

enum slot_state {
	SLOT_FREE,		/* no worker */
	SLOT_STARTING,		/* forked, not yet accepting */
	SLOT_IDLE,		/* waiting for a connection */
	SLOT_BUSY,		/* serving a session */
	SLOT_REPLAYING,		/* a session replaying a message upstream */
	SLOT_STATE_MAX = SLOT_REPLAYING /* a worker may report: >= IDLE */
};

/* worker -> master: the worker's state, every time it changes */
struct chan_msg {
	uint32_t	 magic;		/* CHAN_MAGIC */
	uint32_t	 seq;		/* echoed in a chan_reply */
	uint8_t		 state;		/* enum slot_state, IDLE or later */
	uint8_t		 family;	/* client's when BUSY, else 0 */
	uint8_t		 ask;		/* 1: answer with a chan_reply */
	uint8_t		 pad;
	int32_t		 slot;		/* as told at fork: checked */
	int32_t		 pid;		/* getpid(): checked, never used */
	uint8_t		 addr[16];	/* client address */
	uint64_t	 sessions;	/* sessions served, cumulative */
	uint64_t	 messages;	/* messages delivered, cumulative */
	uint64_t	 tls_sessions;	/* sessions that started TLS, cumulative */
};

/* master -> worker: sessions in progress from the client's network */
struct chan_reply {
	uint32_t	 magic;		/* CHAN_MAGIC */
	uint32_t	 seq;		/* of the chan_msg */
	uint32_t	 count;		/* this one included */
	uint32_t	 pad;
};

/* policy process -> master: refusals are remembered until this time */
struct chan_horizon {
	uint32_t	 magic;		/* CHAN_MAGIC */
	uint32_t	 pad;
	int64_t		 until;
};

/* what the master knows of a worker, from its own table and the channel */
struct chan_view {
	int		 slot;		/* index in the master's table */
	pid_t		 pid;		/* returned by fork() */
	int		 state;		/* last good report */
	unsigned long	 sessions;
	unsigned long	 messages;
	unsigned long	 tls_sessions;
	unsigned long	 max_sessions;	/* max_sessions_per_worker */
};

/* the master writes, workers map it read-only (sealed memfd) */
struct board {
	char		 policy_name[PP_NAME_MAX]; /* policy socket, "" if none */
	volatile time_t	 reply_horizon;	/* no refusal remembered after it */
};

int	chan_check(const void *, size_t, const struct chan_view *,
	    struct chan_msg *, const char **);
int	chan_check_horizon(const void *, size_t, time_t, time_t, time_t *,
	    const char **);
int	chan_same_client(const struct ipaddr *, const struct ipaddr *, int);

int	board_create(struct board **);
const struct board *board_map(int);

#endif
