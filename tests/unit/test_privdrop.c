/*
 * test_privdrop - the paths a chrooted worker must use: spool_dir as
 * seen from inside chroot (the spill files of a chrooted worker were
 * opened at their outside path, which does not exist inside).
 */
#include <stdio.h>
#include <string.h>

#include "privdrop.h"
#include "tap.h"

static const struct {
	const char	*dir;		/* chroot, NULL: none */
	const char	*path;
	const char	*want;		/* NULL: not inside */
} path_cases[] = {
	{ NULL, "/var/spool/greygate", "/var/spool/greygate" },
	{ "", "/var/spool/greygate", "/var/spool/greygate" },
	{ "/", "/var/spool/greygate", "/var/spool/greygate" },
	{ "/var/spool/greygate", "/var/spool/greygate/tmp", "/tmp" },
	{ "/var/spool/greygate/", "/var/spool/greygate/tmp", "/tmp" },
	{ "/var/spool/greygate", "/var/spool/greygate", "/" },
	{ "/var/spool/greygate", "/var/spool/greygate/", "/" },
	{ "/var/spool/greygate", "/var/spool/greygate/a/b", "/a/b" },
	{ "/var/spool/greygate", "/var/spool/greygatex/tmp", NULL },
	{ "/var/spool/greygate", "/var/spool", NULL },
	{ "/var/spool/greygate", "/tmp", NULL },
};

int
main(void)
{
	size_t		 i;
	const char	*got;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		got = privdrop_path(path_cases[i].dir, path_cases[i].path);
		is_str(got, path_cases[i].want, "privdrop_path(%s, %s)",
		    path_cases[i].dir ? path_cases[i].dir : "NULL",
		    path_cases[i].path);
	}
	return tap_done();
}
