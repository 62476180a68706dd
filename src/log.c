/*
 * log - one logging API for every process: stderr when running in the
 * foreground (-d), syslog otherwise.  It must never allocate on a path
 * that can fail silently, and fatal() is for a broken environment only:
 * a per-connection problem is logged with log_warn and ends that session.
 * Every line goes through log_clean(), the one sanitiser of text that
 * may hold client bytes: nothing but printable ASCII reaches a log, so
 * no client can forge a line, a field or a terminal escape.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_debug_mode;	/* log to stderr */
static int	 log_verbose;		/* -v count */
static const char *log_proc = "master";	/* process role, for stderr */

static void	 vlog(int, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static const struct {
	const char	*name;
	int		 facility;
} facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

/* log_facility - map a facility name to its syslog value, -1 if unknown */
int
log_facility(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].facility;
	return -1;
}

/* log_init - choose stderr or syslog; syslog is opened now (LOG_NDELAY) */
void
log_init(int debug, int facility)
{
	log_debug_mode = debug;
	if (!debug) {
		closelog();
		openlog("greygated", LOG_PID | LOG_NDELAY, facility);
	}
	tzset();
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

void
log_procname(const char *name)
{
	log_proc = name;
}

/*
 * log_clean - src with every octet outside printable ASCII (0x20-0x7e)
 * made '?', into dst of len octets (dst may be src); returns dst
 */
char *
log_clean(char *dst, const char *src, size_t len)
{
	size_t	i;

	if (len == 0)
		return dst;
	for (i = 0; i < len - 1 && src[i] != '\0'; i++) {
		char	c = src[i];

		if (c < 0x20 || c >= 0x7f)
			c = '?';
		dst[i] = c;
	}
	dst[i] = '\0';
	return dst;
}

static void
vlog(int pri, const char *fmt, va_list ap)
{
	char	buf[2048];
	int	saved = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_clean(buf, buf, sizeof(buf));
	if (log_debug_mode) {
		fprintf(stderr, "greygated[%ld] %s: %s\n", (long)getpid(),
		    log_proc, buf);
		fflush(stderr);
	} else
		syslog(pri, "%s", buf);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	char	buf[1024];
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char	buf[1024];
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s", buf);
	exit(1);
}
