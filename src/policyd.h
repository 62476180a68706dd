/*
 * policyd - the policy process, owner of the greylist store.
 */
#ifndef GREYGATE_POLICYD_H
#define GREYGATE_POLICYD_H

#include <time.h>

#include "config.h"
#include "master.h"
#include "policy_proto.h"

void	policyd_main(const struct config *, int, int, const struct privs *)
	    __attribute__((noreturn));
void	policyd_answer(const struct pp_request *, struct pp_response *,
	    time_t);

#endif
