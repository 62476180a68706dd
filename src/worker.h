/*
 * worker - a pre-forked process serving one session at a time.
 */
#ifndef GREYGATE_WORKER_H
#define GREYGATE_WORKER_H

#include "config.h"
#include "master.h"

void	worker_main(const struct config *, const struct listeners *, int,
	    int, int, const struct privs *) __attribute__((noreturn));
int	worker_set_state(int);

#endif
