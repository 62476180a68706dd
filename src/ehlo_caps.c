/*
 * ehlo_caps - greygate announces SMTPUTF8, DSN and 8BITMIME only when
 * the upstream does, so it must know what the upstream's EHLO said.  It
 * learns it from every replay and probe, and from a short probe of its
 * own when the knowledge is older than upstream_ehlo_refresh.  The last
 * answer is kept in one small file in the spool, written by the workers
 * (write, then rename: a reader sees a whole file) and read only by
 * them: the master never reads it, so a worker cannot reach the master
 * through it.  Whatever the file holds is parsed as untrusted: unknown
 * words are ignored, and an unreadable file means the conservative set
 * (no SMTPUTF8, DSN or 8BITMIME).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ehlo_caps.h"
#include "log.h"
#include "upstream.h"

static const struct {
	const char	*kw;		/* EHLO keyword, file word */
	unsigned int	 cap;
} kws[] = {
	{ "8BITMIME", CAP_8BITMIME },
	{ "DSN", CAP_DSN },
	{ "SMTPUTF8", CAP_SMTPUTF8 },
};

/* word_cap - the CAP_ flag of a keyword of len octets, 0 if none */
static unsigned int
word_cap(const char *w, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (strlen(kws[i].kw) == len && strncasecmp(w, kws[i].kw,
		    len) == 0)
			return kws[i].cap;
	return 0;
}

/*
 * ehlo_caps_parse - the capabilities of a 250 EHLO reply ("250-name\r\n
 * 250-8BITMIME\r\n250 DSN\r\n"); the first line is the greeting, not a
 * keyword.  CAP_KNOWN is always set.
 */
unsigned int
ehlo_caps_parse(const char *text)
{
	const char	*p = text, *eol;
	unsigned int	 caps = CAP_KNOWN;
	size_t		 kl;
	int		 first = 1;

	for (; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2, first = 0) {
		if (first || eol - p < 5)
			continue;
		for (kl = 0; p + 4 + kl < eol && p[4 + kl] != ' '; kl++)
			;
		caps |= word_cap(p + 4, kl);
	}
	return caps;
}

/* path - DIR/upstream-ehlo */
static int
path(const char *dir, char *buf, size_t size)
{
	int	n = snprintf(buf, size, "%s/%s", dir, EHLO_CAPS_FILE);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/*
 * ehlo_caps_read - the capabilities kept in dir, and when they were
 * learned (or claimed for a refresh); -1 when there is no usable file.
 */
int
ehlo_caps_read(const char *dir, unsigned int *caps, time_t *when)
{
	char		 p[PATH_MAX], buf[256];
	struct stat	 st;
	ssize_t		 n;
	size_t		 i, w;
	int		 fd;

	*caps = 0;
	if (path(dir, p, sizeof(p)) == -1 ||
	    (fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (n = read(fd, buf, sizeof(buf) - 1)) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	buf[n] = '\0';
	*when = st.st_mtime;
	/* "v1 known 8BITMIME DSN\n" or "v1 unknown\n" */
	if (strncmp(buf, "v1 ", 3) != 0)
		return -1;
	for (i = 3; buf[i] != '\0' && buf[i] != '\n';) {
		for (w = i; buf[w] != '\0' && buf[w] != ' ' &&
		    buf[w] != '\n'; w++)
			;
		if (w - i == 5 && strncmp(buf + i, "known", 5) == 0)
			*caps |= CAP_KNOWN;
		else
			*caps |= word_cap(buf + i, w - i);
		i = buf[w] == ' ' ? w + 1 : w;
	}
	if (!(*caps & CAP_KNOWN))
		*caps = 0;
	return 0;
}

/* ehlo_caps_write - keep caps in dir, whole or not at all */
int
ehlo_caps_write(const char *dir, unsigned int caps)
{
	char	p[PATH_MAX], tmp[PATH_MAX], buf[128];
	size_t	i;
	int	fd, n, len;

	if (path(dir, p, sizeof(p)) == -1 ||
	    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", p) >= (int)sizeof(tmp))
		return -1;
	len = snprintf(buf, sizeof(buf), "v1 %s", caps & CAP_KNOWN ?
	    "known" : "unknown");
	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (caps & kws[i].cap) {
			n = snprintf(buf + len, sizeof(buf) - (size_t)len,
			    " %s", kws[i].kw);
			if (n > 0 && (size_t)n < sizeof(buf) - (size_t)len)
				len += n;
		}
	buf[len++] = '\n';
	if ((fd = mkstemp(tmp)) == -1)
		return -1;
	if (write(fd, buf, (size_t)len) != len || close(fd) == -1 ||
	    rename(tmp, p) == -1) {
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * ehlo_caps_claim - may this worker probe the upstream now?  Yes when
 * nothing is known or the knowledge is older than refresh seconds; the
 * claim touches the file (creates it, "unknown", when missing), so that
 * the other workers wait for the next interval.
 */
int
ehlo_caps_claim(const char *dir, int refresh, time_t now)
{
	char		 p[PATH_MAX];
	unsigned int	 caps;
	time_t		 when;
	int		 fd;

	if (path(dir, p, sizeof(p)) == -1)
		return 0;
	if (ehlo_caps_read(dir, &caps, &when) == -1) {
		if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) == -1)
			return errno == EEXIST ? 0 : 1;
		/* a marker that did not take is no claim: the next may */
		if (write(fd, "v1 unknown\n", 11) != 11)
			(void)unlink(p);
		close(fd);
		return 1;
	}
	if (now - when < refresh && when <= now)
		return 0;
	(void)utimensat(AT_FDCWD, p, NULL, 0);
	return 1;
}

/*
 * ehlo_caps_learn - an EHLO reply of the upstream: keep what it
 * announced when it differs from what is kept, or when what is kept is
 * older than half of refresh.
 */
void
ehlo_caps_learn(const char *dir, const char *text, int refresh)
{
	unsigned int	caps = ehlo_caps_parse(text), old;
	time_t		when, now = time(NULL);

	if (ehlo_caps_read(dir, &old, &when) == 0 && old == caps &&
	    now - when < refresh / 2 && when <= now)
		return;
	(void)ehlo_caps_write(dir, caps);
}

/*
 * ehlo_caps_current - what greygate may announce now: the kept answer,
 * refreshed first by a probe of this worker's when it is due (one
 * worker an interval: the claim).  0 (the conservative set) while the
 * upstream has never been reached.
 */
unsigned int
ehlo_caps_current(const struct config *c, const char *dir)
{
	struct up_probe	 pr;
	unsigned int	 caps;
	time_t		 when;

	if (ehlo_caps_claim(dir, c->upstream_ehlo_refresh, time(NULL))) {
		upstream_probe(c, NULL, c->servername, NULL, 0, &pr);
		if (pr.reached)
			ehlo_caps_learn(dir, pr.ehlo, 0);
		else
			log_info("upstream %s port %d: EHLO probe: %s",
			    c->smtp_ip, c->smtp_port, pr.why);
	}
	if (ehlo_caps_read(dir, &caps, &when) == -1)
		return 0;
	return caps;
}
