/*
 * greygated - main(): options, the configuration, the things that need
 * root (listeners, pidfile, directories), then the master loop.  Nothing
 * starts on a bad configuration.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "privdrop.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF	SYSCONFDIR "/greygate/greygate.conf"

extern char **environ;

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: greygated [-dhtVv] [-f file]\n");
}

/*
 * make_dir - create a missing directory, owned by uid/gid when drop.
 * Its parent is opened once, and the directory is made and opened
 * relative to it without following a symlink (mkdirat, then openat with
 * O_NOFOLLOW) and given away through that descriptor (fchown): no one
 * can swap a link in between.  An existing symlink is refused.  Missing
 * parents are created first as mkdir -p would (0755, root's).
 */
static void
make_dir(const char *path, mode_t mode, int drop, uid_t uid, gid_t gid)
{
	char		 pbuf[PATH_MAX], nbuf[PATH_MAX];
	const char	*parent, *name;
	struct stat	 st;
	int		 dfd, fd, made = 0;

	if (strlcpy(pbuf, path, sizeof(pbuf)) >= sizeof(pbuf) ||
	    strlcpy(nbuf, path, sizeof(nbuf)) >= sizeof(nbuf))
		fatalx("%s: path too long", path);
	parent = dirname(pbuf);
	name = basename(nbuf);
	if ((dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    errno == ENOENT && strcmp(parent, path) != 0) {
		make_dir(parent, 0755, 0, 0, 0);
		dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dfd == -1)
		fatal("cannot create %s", path);	/* errno: the parent's */
	if (mkdirat(dfd, name, mode) == 0)
		made = 1;
	else if (errno != EEXIST)
		fatal("cannot create %s", path);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1) {
		if (errno == ELOOP || errno == ENOTDIR)
			fatalx("%s is not a directory (a symlink is refused)",
			    path);
		fatal("cannot open %s", path);
	}
	if (fstat(fd, &st) == -1 || !S_ISDIR(st.st_mode))
		fatalx("%s is not a directory", path);
	if (made && drop && fchown(fd, uid, gid) == -1)
		fatal("chown %s", path);
	close(fd);
	close(dfd);
}

int
main(int argc, char *argv[])
{
	struct config	*c;
	struct listeners ls;
	struct privs	 pv;
	struct pidfh	*pfh;
	pid_t		 other;
	const char	*conf = DEFAULT_CONF;
	char		 err[1024], dir[PATH_MAX];
	int		 ch, debug = 0, test = 0, verbose = 0;

	setproctitle_init(argc, argv, environ);
	while ((ch = getopt(argc, argv, "df:htVv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			conf = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("greygated %s\n", PACKAGE_VERSION);
			return 0;
		case 'v':
			verbose++;
			break;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}

	log_init(1, 0);
	log_setverbose(verbose);
	if ((c = config_load(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		if (!test && !debug) {
			log_init(0, LOG_MAIL);
			log_warnx("configuration error: %s", err);
		}
		return 1;
	}
	/* as root, before anything drops privileges: workers inherit it */
	if (config_tls_load(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		if (!test && !debug) {
			log_init(0, LOG_MAIL);
			log_warnx("TLS error: %s", err);
		}
		config_free(c);
		return 1;
	}
	if (test) {
		printf("configuration OK\n");
		config_free(c);
		return 0;
	}
	if (c->inactivity_timeout < 300)
		log_warnx("inactivity_timeout %d is below the RFC 5321 "
		    "minimum of 300 seconds", c->inactivity_timeout);

	memset(&pv, 0, sizeof(pv));
	if (geteuid() == 0) {
		pv.drop = 1;
		if (privdrop_lookup(c->user, c->group, &pv.uid, &pv.gid) == -1)
			fatalx("unknown user %s or group %s", c->user,
			    c->group);
		if (privdrop_lookup(c->worker_user, c->worker_group, &pv.wuid,
		    &pv.wgid) == -1)
			fatalx("unknown worker_user %s or worker_group %s "
			    "(adduser --system --group --no-create-home %s)",
			    c->worker_user, c->worker_group, c->worker_user);
		if (pv.uid == 0 || pv.wuid == 0)
			fatalx("user and worker_user must not be root");
		if (pv.wuid == pv.uid || pv.wgid == pv.gid)
			fatalx("worker_user/worker_group (%s/%s) must differ "
			    "from user/group (%s/%s): a worker must not reach "
			    "the store", c->worker_user, c->worker_group,
			    c->user, c->group);
	} else
		log_warnx("not started as root: privileges are not dropped");
	if (master_nofile(c, err, sizeof(err)) == -1)
		fatalx("%s", err);

	log_init(debug, c->syslog_facility);
	log_info("greygated %s starting", PACKAGE_VERSION);

	(void)strlcpy(dir, c->pidfile, sizeof(dir));
	make_dir(dirname(dir), 0755, 0, 0, 0);
	/* the workers spill there; the store is the policy process's */
	make_dir(c->spool_dir, 0700, pv.drop, pv.wuid, pv.wgid);
	if (strncmp(c->greylist.store, "sqlite:", 7) == 0) {
		/* the policy process creates the database in it */
		(void)strlcpy(dir, c->greylist.store + 7, sizeof(dir));
		make_dir(dirname(dir), 0750, pv.drop, pv.uid, pv.gid);
	}
	if (c->chroot[0] != '\0' && access(c->chroot, X_OK) == -1)
		fatal("chroot %s", c->chroot);

	master_bind(c, &ls);
	if ((pfh = pidfile_open(c->pidfile, 0644, &other)) == NULL) {
		if (errno == EEXIST)
			fatalx("already running, pid %ld", (long)other);
		fatal("pidfile %s", c->pidfile);
	}
	if (!debug && daemon(0, 0) == -1)
		fatal("daemon");
	if (pidfile_write(pfh) == -1)
		fatal("pidfile_write");
	return master_run(c, &ls, &pv, pfh);
}
