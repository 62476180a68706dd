/*
 * chan - what the master believes of its children: nothing but what it
 * checks.  Each worker has a SOCK_SEQPACKET socketpair to the master and
 * reports its state there in fixed-size messages; chan_check() is the
 * master's one, pure, gate for them: a message of the wrong size, magic,
 * slot, pid, state or family, or with counters that go back or jump, is
 * refused with a reason, and the master then replaces that worker.  The
 * pids the master signals come from its own table of what fork()
 * returned, never from a message.
 *
 * What every worker must read (the policy socket's name, the refusal
 * horizon) is on the board: a memfd the master maps read-write and seals
 * against any new writable mapping (F_SEAL_FUTURE_WRITE) before the
 * first fork, its own mapping kept out of children (MADV_DONTFORK);
 * workers map it PROT_READ, and mprotect() cannot make that writable.
 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE	0x0010	/* Linux 5.1 */
#endif

/*
 * chan_check - one message from worker v; 0 and *m, or -1 and *why.
 */
int
chan_check(const void *buf, size_t len, const struct chan_view *v,
    struct chan_msg *m, const char **why)
{
	if (len != sizeof(*m)) {
		*why = "wrong size";
		return -1;
	}
	memcpy(m, buf, sizeof(*m));
	if (m->magic != CHAN_MAGIC) {
		*why = "bad magic";
		return -1;
	}
	if (m->slot != v->slot) {
		*why = "wrong slot";
		return -1;
	}
	if (m->pid != (int32_t)v->pid) {
		*why = "wrong pid";
		return -1;
	}
	if (m->state < SLOT_IDLE || m->state > SLOT_STATE_MAX) {
		*why = "unknown state";
		return -1;
	}
	if (m->state >= SLOT_BUSY ? m->family != AF_INET &&
	    m->family != AF_INET6 : m->family != 0) {
		*why = "bad address family";
		return -1;
	}
	if (m->ask > 1 || m->pad != 0) {
		*why = "bad flags";
		return -1;
	}
	/* one session at a time, no more than max_sessions_per_worker */
	if (m->sessions < v->sessions || m->sessions > v->sessions + 1 ||
	    m->sessions > v->max_sessions) {
		*why = "impossible session count";
		return -1;
	}
	if (m->messages < v->messages ||
	    m->messages - v->messages > CHAN_MSGS_MAX) {
		*why = "impossible message count";
		return -1;
	}
	/* counted as sessions end, so never ahead of them */
	if (m->tls_sessions < v->tls_sessions ||
	    m->tls_sessions > m->sessions) {
		*why = "impossible TLS session count";
		return -1;
	}
	return 0;
}

/*
 * chan_check_horizon - a horizon from the policy process: no earlier
 * than it was, no later than now + ttl (and a minute of clock skew).
 */
int
chan_check_horizon(const void *buf, size_t len, time_t now, time_t ttl,
    time_t *until, const char **why)
{
	struct chan_horizon	h;

	if (len != sizeof(h)) {
		*why = "wrong size";
		return -1;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != CHAN_MAGIC || h.pad != 0) {
		*why = "bad magic";
		return -1;
	}
	if (h.until < 0 || (h.until != CHAN_HORIZON_FOREVER &&
	    h.until > (int64_t)now + ttl + 60)) {
		*why = "horizon out of range";
		return -1;
	}
	*until = (time_t)h.until;
	return 0;
}

/*
 * chan_same_client - for max_connections_per_ip: one IPv4 address, or
 * one IPv6 network of v6prefix bits (a host has a /64, not an address).
 */
int
chan_same_client(const struct ipaddr *a, const struct ipaddr *b,
    int v6prefix)
{
	int	full, bits;

	if (a->family != b->family)
		return 0;
	if (a->family != AF_INET6)
		return memcmp(a->addr, b->addr, 4) == 0;
	if (v6prefix < 0 || v6prefix > 128)
		v6prefix = 128;
	full = v6prefix / 8;
	bits = v6prefix % 8;
	if (memcmp(a->addr, b->addr, (size_t)full) != 0)
		return 0;
	if (bits == 0)
		return 1;
	return ((a->addr[full] ^ b->addr[full]) & (0xff << (8 - bits)) &
	    0xff) == 0;
}

/*
 * board_create - the board, mapped read-write here and sealed; returns
 * the memfd that children map read-only (board_map), or -1.
 */
int
board_create(struct board **bp)
{
	void	*p;
	int	 fd, saved;

	if ((fd = memfd_create("greygate-board", MFD_ALLOW_SEALING)) == -1)
		return -1;
	if (fchmod(fd, 0400) == -1 || ftruncate(fd, sizeof(**bp)) == -1)
		goto fail;
	p = mmap(NULL, sizeof(**bp), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0);
	if (p == MAP_FAILED)
		goto fail;
	if (madvise(p, sizeof(**bp), MADV_DONTFORK) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) == -1) {
		saved = errno;
		(void)munmap(p, sizeof(**bp));
		errno = saved;
		goto fail;
	}
	memset(p, 0, sizeof(**bp));
	*bp = p;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* board_map - in a child: the board, read-only; NULL on failure */
const struct board *
board_map(int fd)
{
	void	*p;

	p = mmap(NULL, sizeof(struct board), PROT_READ, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}
