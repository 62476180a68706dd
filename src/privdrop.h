/*
 * privdrop - give up root the way Postfix and OpenSMTPD do.
 */
#ifndef GREYGATE_PRIVDROP_H
#define GREYGATE_PRIVDROP_H

#include <sys/types.h>

int	privdrop_lookup(const char *, const char *, uid_t *, gid_t *);
void	privdrop_child(void);
void	privdrop_apply(const char *, uid_t, gid_t);

#endif
