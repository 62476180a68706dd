/*
 * fuzz_config - config_load on arbitrary bytes written to a file (one
 * fixed path per process under /tmp).  A file is either refused with a
 * message naming the file, or loaded into a configuration whose
 * checked invariants hold; config_free releases everything
 * (LeakSanitizer).  libconfuse may print to stderr: that is expected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	path[128];

static void
rm_conf(void)
{
	unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/greygate-fuzz-config.%ld.conf",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
	    (long)getpid());
	atexit(rm_conf);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 err[1024];
	struct config	*c;
	FILE		*f;

	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, size, 1, f) != 1)
		abort();
	if (fclose(f) != 0)
		abort();
	err[0] = '\0';
	if ((c = config_load(path, err, sizeof(err))) == NULL) {
		if (strncmp(err, path, strlen(path)) != 0)
			abort();	/* every refusal names the file */
		return 0;
	}
	if (c->port < 1 || c->port > 65535 || c->smtp_port < 1 ||
	    c->smtp_port > 65535 || c->max_command_line < 1 ||
	    c->max_text_line < 1 || c->max_message_size < 1 ||
	    c->max_errors < 1 || c->spill_threshold < 1 ||
	    c->min_spare_workers > c->max_spare_workers ||
	    c->greylist.ipv4_prefix < 0 || c->greylist.ipv4_prefix > 32 ||
	    c->greylist.ipv6_prefix < 0 || c->greylist.ipv6_prefix > 128 ||
	    memchr(c->servername, '\0', sizeof(c->servername)) == NULL ||
	    memchr(c->serverid, '\0', sizeof(c->serverid)) == NULL)
		abort();
	config_free(c);
	return 0;
}
