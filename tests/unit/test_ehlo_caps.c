/*
 * test_ehlo_caps - the keywords of an upstream's EHLO reply, and the
 * file the workers keep them in: written whole, read strictly, claimed
 * once per refresh interval.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ehlo_caps.h"
#include "tap.h"

static const struct {
	const char	*name, *text;
	unsigned int	 caps;
} cases[] = {
	{ "Postfix", "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
	    CAP_KNOWN | CAP_8BITMIME | CAP_DSN | CAP_SMTPUTF8 },
	{ "smtp-sink -8", "250-sink\r\n250-PIPELINING\r\n250 SIZE\r\n",
	    CAP_KNOWN },
	{ "lower case", "250-mx\r\n250-8bitmime\r\n250 dsn\r\n",
	    CAP_KNOWN | CAP_8BITMIME | CAP_DSN },
	{ "the greeting line is no keyword", "250 DSN\r\n", CAP_KNOWN },
	{ "a longer word is not DSN", "250-mx\r\n250 DSNX\r\n", CAP_KNOWN },
	{ "one line", "250 mx.example\r\n", CAP_KNOWN },
};

int
main(void)
{
	char		 dir[] = "/tmp/test_ehlo_caps.XXXXXX", path[256];
	unsigned int	 caps;
	time_t		 when, now = time(NULL);
	size_t		 i;
	int		 fd;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(ehlo_caps_parse(cases[i].text), cases[i].caps, "%s",
		    cases[i].name);
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	is_int(ehlo_caps_read(dir, &caps, &when), -1, "no file: nothing");
	is_int(ehlo_caps_claim(dir, 300, now), 1, "no file: claimed");
	is_int(ehlo_caps_claim(dir, 300, now), 0, "claimed: the next waits");
	is_int(ehlo_caps_read(dir, &caps, &when), 0, "claimed: readable");
	is_int(caps, 0, "claimed: the conservative set");
	ehlo_caps_learn(dir, cases[0].text, 300);
	is_int(ehlo_caps_read(dir, &caps, &when), 0, "learned: readable");
	is_int(caps, cases[0].caps, "learned: what Postfix said");
	is_int(ehlo_caps_claim(dir, 300, now), 0, "fresh: no probe");
	is_int(ehlo_caps_claim(dir, 300, now + 301), 1, "stale: a probe");
	ehlo_caps_learn(dir, cases[1].text, 300);
	is_int(ehlo_caps_read(dir, &caps, &when), 0, "relearned");
	is_int(caps, CAP_KNOWN, "relearned: the keywords are gone");
	/* a garbled file is the conservative set, nothing more */
	(void)snprintf(path, sizeof(path), "%s/%s", dir, EHLO_CAPS_FILE);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (write(fd, "v1 DSN SMTPUTF8 junk\n", 21) == -1)
		perror("write");
	close(fd);
	is_int(ehlo_caps_read(dir, &caps, &when), 0, "garbled: read");
	is_int(caps, 0, "garbled (no \"known\"): conservative");
	fd = open(path, O_WRONLY | O_TRUNC);
	if (write(fd, "v2 known DSN\n", 13) == -1)
		perror("write");
	close(fd);
	is_int(ehlo_caps_read(dir, &caps, &when), -1, "other version: none");
	(void)unlink(path);
	(void)rmdir(dir);
	return tap_done();
}
