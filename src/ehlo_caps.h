/*
 * ehlo_caps - what the upstream's EHLO announced, as greygate learned
 * it, shared by the workers through a small file in the spool.
 */
#ifndef GREYGATE_EHLO_CAPS_H
#define GREYGATE_EHLO_CAPS_H

#include <time.h>

#define CAP_8BITMIME	0x01	/* RFC 6152 */
#define CAP_DSN		0x02	/* RFC 3461 */
#define CAP_SMTPUTF8	0x04	/* RFC 6531 */
#define CAP_KNOWN	0x80	/* learned from the upstream at least once */

#define EHLO_CAPS_FILE	"upstream-ehlo"

unsigned int	ehlo_caps_parse(const char *);
int		ehlo_caps_read(const char *, unsigned int *, time_t *);
int		ehlo_caps_write(const char *, unsigned int);
int		ehlo_caps_claim(const char *, int, time_t);
void		ehlo_caps_learn(const char *, const char *, int);
struct config;
unsigned int	ehlo_caps_current(const struct config *, const char *);

#endif
