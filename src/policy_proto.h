/*
 * policy_proto - the questions workers ask the policy process, and its
 * answers: one fixed-size, versioned message each way over a
 * SOCK_SEQPACKET unix socket.
 */
#ifndef GREYGATE_POLICY_PROTO_H
#define GREYGATE_POLICY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "smtp_parse.h"
#include "store.h"

#define PP_VERSION	1
#define PP_TEXT_MAX	1024		/* log line or reply, NUL included */
#define PP_TIMEOUT_MS	5000		/* a worker waits this long at most */
#define PP_NAME_MAX	64		/* "@greygated.PID.RANDOM", NUL included */

enum pp_op {
	PP_CHECK = 1,		/* greylist the triplet */
	PP_REPLY_GET,		/* a cached upstream rejection? */
	PP_REPLY_PUT,		/* cache an upstream rejection */
	PP_LOG,			/* one line for greylist_log */
	PP_VERIFY_GET,		/* a cached recipient verification? */
	PP_VERIFY_PUT,		/* a probe's answer ("" for none) */
	PP_OP_MAX = PP_VERIFY_PUT
};

enum pp_status {
	PP_PASS = 1,		/* PP_CHECK: the triplet passed */
	PP_WHITELIST,		/* PP_CHECK: the client network is */
	PP_GREYLIST,		/* PP_CHECK: deferred */
	PP_FOUND,		/* PP_REPLY_GET: text holds the reply */
	PP_NOTFOUND,		/* PP_REPLY_GET: nothing cached */
	PP_OK,			/* PP_REPLY_PUT, PP_LOG: done */
	PP_ERROR,		/* the store failed: apply on_error */
	PP_BUSY,		/* PP_VERIFY_GET: another probe runs */
	PP_STATUS_MAX = PP_BUSY
};

struct pp_request {
	uint8_t		 version;	/* PP_VERSION */
	uint8_t		 op;		/* enum pp_op */
	uint8_t		 family;	/* AF_INET, AF_INET6 of the client */
	uint8_t		 pad;
	uint32_t	 id;		/* echoed in the response */
	uint8_t		 addr[16];	/* client address */
	char		 sender[SMTP_PATH_MAX + 1];	/* "" for <> */
	char		 rcpt[SMTP_PATH_MAX + 1];
	char		 text[PP_TEXT_MAX];	/* PP_REPLY_PUT, PP_LOG */
};

struct pp_response {
	uint8_t		 version;	/* PP_VERSION */
	uint8_t		 op;		/* of the request */
	uint8_t		 status;	/* enum pp_status */
	uint8_t		 pad;
	uint32_t	 id;		/* of the request */
	char		 text[STORE_REPLY_MAX + 1];	/* PP_FOUND */
};

int	pp_request_init(struct pp_request *, enum pp_op,
	    const struct ipaddr *, const char *, const char *, const char *);
int	pp_decode_request(const void *, size_t, struct pp_request *);
int	pp_decode_response(const void *, size_t, struct pp_response *);
int	pp_client_ip(const struct pp_request *, struct ipaddr *);
int	pp_check_request(const struct pp_request *, const char **);
int	pp_reply_valid(const char *);
int	pp_verify_valid(const char *);

/* a worker's connection, made when first needed */
struct pp_conn {
	int		 fd;		/* -1 until connected */
	const char	*name;		/* "@..." on the board, "" if none */
};

int	pp_ask(struct pp_conn *, struct pp_request *, struct pp_response *);
int	pp_connect(const char *);
int	pp_call(int, struct pp_request *, struct pp_response *, int);
int	pp_listen(char *, size_t);

#endif
