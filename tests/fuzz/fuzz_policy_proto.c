/*
 * fuzz_policy_proto - the strict decoders of the messages between the
 * workers and the policy process.  Whatever the bytes, decoding reads
 * nothing beyond the message; an accepted request has NUL-terminated
 * strings, a known operation and (but for PP_LOG) a known family, and
 * encoding its fields again with pp_request_init gives a request that
 * decodes to the same fields.  An accepted response has a known
 * operation and status and a terminated text.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_request	 rq, rq2, rq3;
	struct pp_response	 rp;
	struct ipaddr		 ip;
	uint8_t			*copy;
	int			 haveip;

	/* an exact heap copy: ASan sees any read past the message */
	if ((copy = malloc(size ? size : 1)) == NULL)
		abort();
	memcpy(copy, data, size);

	if (pp_decode_request(copy, size, &rq) == 0) {
		if (size != sizeof(rq) || rq.version != PP_VERSION ||
		    rq.op < PP_CHECK || rq.op > PP_OP_MAX ||
		    strnlen(rq.sender, sizeof(rq.sender)) >= sizeof(rq.sender) ||
		    strnlen(rq.rcpt, sizeof(rq.rcpt)) >= sizeof(rq.rcpt) ||
		    strnlen(rq.text, sizeof(rq.text)) >= sizeof(rq.text))
			abort();
		haveip = pp_client_ip(&rq, &ip) == 0;
		if (rq.op != PP_LOG && !haveip)
			abort();
		if (pp_request_init(&rq2, (enum pp_op)rq.op, haveip ? &ip :
		    NULL, rq.sender, rq.rcpt, rq.text) != 0)
			abort();
		if (pp_decode_request(&rq2, sizeof(rq2), &rq3) != 0)
			abort();
		if (rq3.op != rq.op || rq2.op != rq.op || strcmp(rq2.sender, rq.sender) != 0 ||
		    strcmp(rq2.rcpt, rq.rcpt) != 0 ||
		    strcmp(rq2.text, rq.text) != 0 ||
		    (haveip && (rq2.family != rq.family ||
		    memcmp(rq2.addr, rq.addr, sizeof(rq.addr)) != 0)))
			abort();
	}
	if (pp_decode_response(copy, size, &rp) == 0) {
		if (size != sizeof(rp) || rp.version != PP_VERSION ||
		    rp.op < PP_CHECK || rp.op > PP_OP_MAX ||
		    rp.status < PP_PASS || rp.status > PP_STATUS_MAX ||
		    strnlen(rp.text, sizeof(rp.text)) >= sizeof(rp.text))
			abort();
	}
	free(copy);
	return 0;
}
