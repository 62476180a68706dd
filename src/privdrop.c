/*
 * privdrop - looks up the unprivileged user while /etc/passwd is still
 * reachable, then (in a child) chroots and drops groups, gid and uid in
 * that order, and checks that root cannot be regained.  While still root
 * it empties the capability bounding set, and after the drop it sets
 * no_new_privs: nothing the process could execute brings privileges
 * back.  Knows nothing of SMTP.  A failure here is fatal: a worker must
 * never serve as root.
 */
#include <sys/prctl.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

static void	privdrop_bounding_set(void);

/* privdrop_lookup - uid and gid of user and group; -1 if unknown */
int
privdrop_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;
	struct group	*gr;

	if ((pw = getpwnam(user)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (group != NULL && *group != '\0') {
		if ((gr = getgrnam(group)) == NULL)
			return -1;
		*gid = gr->gr_gid;
	}
	return 0;
}

/*
 * privdrop_bounding_set - drop every capability from the bounding set
 * (needs CAP_SETPCAP, so before the uid changes); the kernel's last one
 * answers EINVAL to the next.
 */
static void
privdrop_bounding_set(void)
{
	int	cap;

	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1)
			fatal("prctl PR_CAPBSET_DROP %d", cap);
}

/* privdrop_apply - chroot (if dir is set), then become uid/gid for good */
void
privdrop_apply(const char *dir, uid_t uid, gid_t gid)
{
	if (dir != NULL && *dir != '\0') {
		if (chroot(dir) == -1)
			fatal("chroot %s", dir);
		if (chdir("/") == -1)
			fatal("chdir /");
	}
	if (uid != 0)
		privdrop_bounding_set();
	if (setgroups(1, &gid) == -1)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid");
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid");
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		fatalx("privilege drop failed: root regained");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
}

/*
 * privdrop_child - a child of the master, after its drop: not dumpable,
 * so that no process of its uid can ptrace it or read its memory
 * through /proc (and the kernel leaves no core with its secrets)
 */
#if defined(__SANITIZE_ADDRESS__)
#define PRIVDROP_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PRIVDROP_LSAN 1
#endif
#endif

#ifdef PRIVDROP_LSAN
/*
 * dumpable_again - AddressSanitizer builds only: LeakSanitizer's check at
 * exit attaches to the process with ptrace, which a process that is not
 * dumpable refuses, and then aborts.  Registered after the sanitizer's
 * own handler, this runs before it.
 */
static void
dumpable_again(void)
{
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}
#endif

void
privdrop_child(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
#ifdef PRIVDROP_LSAN
	(void)atexit(dumpable_again);
#endif
}
