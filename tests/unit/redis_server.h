/*
 * redis_server.h - a throw-away redis-server for the unit tests: on a
 * free loopback port, in a temporary directory, nothing saved, killed
 * by redis_stop.  $REDIS_SERVER names the binary (configure finds it);
 * without one the Redis half of a test is skipped.
 */
#ifndef GREYGATE_TEST_REDIS_SERVER_H
#define GREYGATE_TEST_REDIS_SERVER_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct redis_server {
	pid_t		 pid;		/* -1: not running */
	int		 port;		/* loopback TCP port */
	char		 dir[128];	/* its working directory */
	char		 spec[64];	/* "redis://127.0.0.1:PORT/0" */
};

/* redis_free_port - a port nobody listens on right now, or -1 */
static inline int
redis_free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* redis_up - 1 once something accepts on the port */
static inline int
redis_up(int port)
{
	struct sockaddr_in	sin;
	int			fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/*
 * redis_start - start redis-server (port 0: a free one; extra: one more
 * "--option value" pair or NULL).  0 when it answers, -1 (and why on
 * stdout as a TAP comment) when there is none to start.
 */
static inline int
redis_start(struct redis_server *rs, int port, const char *opt,
    const char *val)
{
	const char	*bin = getenv("REDIS_SERVER"), *t = getenv("TMPDIR");
	char		 p[16];
	struct timespec	 ms10 = { 0, 10000000L };
	int		 i, fd, st;

	if (bin == NULL || bin[0] == '\0' || strcmp(bin, "no") == 0)
		bin = "redis-server";
	if (rs->dir[0] == '\0') {
		snprintf(rs->dir, sizeof(rs->dir), "%s/redis.XXXXXX",
		    t != NULL && t[0] != '\0' ? t : "/tmp");
		if (mkdtemp(rs->dir) == NULL) {
			printf("# mkdtemp %s failed\n", rs->dir);
			return -1;
		}
	}
	rs->port = port > 0 ? port : redis_free_port();
	snprintf(p, sizeof(p), "%d", rs->port);
	snprintf(rs->spec, sizeof(rs->spec), "redis://127.0.0.1:%d/0",
	    rs->port);
	fflush(stdout);
	if ((rs->pid = fork()) == -1)
		return -1;
	if (rs->pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (opt != NULL)
			execlp(bin, bin, "--port", p, "--bind", "127.0.0.1",
			    "--save", "", "--appendonly", "no", "--daemonize",
			    "no", "--dir", rs->dir, opt, val, (char *)NULL);
		else
			execlp(bin, bin, "--port", p, "--bind", "127.0.0.1",
			    "--save", "", "--appendonly", "no", "--daemonize",
			    "no", "--dir", rs->dir, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (redis_up(rs->port))
			return 0;
		if (waitpid(rs->pid, &st, WNOHANG) == rs->pid) {
			printf("# %s did not start (status %d)\n", bin, st);
			rs->pid = -1;
			return -1;
		}
		nanosleep(&ms10, NULL);
	}
	printf("# %s did not answer on port %d\n", bin, rs->port);
	kill(rs->pid, SIGKILL);
	waitpid(rs->pid, NULL, 0);
	rs->pid = -1;
	return -1;
}

/* redis_stop - kill it and wait; the directory stays for a restart */
static inline void
redis_stop(struct redis_server *rs)
{
	if (rs->pid <= 0)
		return;
	kill(rs->pid, SIGTERM);
	waitpid(rs->pid, NULL, 0);
	rs->pid = -1;
}

/* redis_cleanup - stop it and remove its directory */
static inline void
redis_cleanup(struct redis_server *rs)
{
	redis_stop(rs);
	if (rs->dir[0] != '\0' && rmdir(rs->dir) == -1)
		printf("# rmdir %s failed\n", rs->dir);
	rs->dir[0] = '\0';
}

#endif
