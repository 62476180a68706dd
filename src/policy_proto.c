/*
 * policy_proto - the wire format between workers and the policy process,
 * and the worker's side of the call.  Messages are fixed-size C structs
 * on a SOCK_SEQPACKET unix socket in the abstract namespace (so chrooted
 * workers reach it and kill -9 leaves no file behind); the policy
 * process lets in only its own user and root (SO_PEERCRED).  Decoding
 * is strict and pure: a message of the wrong size or version, an
 * unknown operation or a string without its NUL is refused, never
 * guessed at.  A worker never waits more than its timeout for an answer.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "policy_proto.h"

/* terminated - the string field holds a NUL */
static int
terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

/* pp_request_init - a request; -1 when a string does not fit */
int
pp_request_init(struct pp_request *rq, enum pp_op op,
    const struct ipaddr *ip, const char *sender, const char *rcpt,
    const char *text)
{
	memset(rq, 0, sizeof(*rq));
	rq->version = PP_VERSION;
	rq->op = (uint8_t)op;
	if (ip != NULL) {
		rq->family = (uint8_t)ip->family;
		memcpy(rq->addr, ip->addr, sizeof(rq->addr));
	}
	if (strlcpy(rq->sender, sender ? sender : "", sizeof(rq->sender)) >=
	    sizeof(rq->sender) ||
	    strlcpy(rq->rcpt, rcpt ? rcpt : "", sizeof(rq->rcpt)) >=
	    sizeof(rq->rcpt))
		return -1;
	/* a log line or reply may be cut: it is text for people */
	(void)strlcpy(rq->text, text ? text : "", sizeof(rq->text));
	return 0;
}

/* pp_decode_request - a request as received; 0, or -1 when malformed */
int
pp_decode_request(const void *buf, size_t len, struct pp_request *rq)
{
	if (len != sizeof(*rq))
		return -1;
	memcpy(rq, buf, sizeof(*rq));
	if (rq->version != PP_VERSION || rq->op < PP_CHECK ||
	    rq->op > PP_OP_MAX)
		return -1;
	if (!terminated(rq->sender, sizeof(rq->sender)) ||
	    !terminated(rq->rcpt, sizeof(rq->rcpt)) ||
	    !terminated(rq->text, sizeof(rq->text)))
		return -1;
	if (rq->op != PP_LOG && rq->family != AF_INET &&
	    rq->family != AF_INET6)
		return -1;
	return 0;
}

/* reply_valid - one line "D[0-9][0-9] " (D one of firsts) then printable
 * ASCII only, at most STORE_REPLY_MAX octets.  0, or -1. */
static int
reply_valid(const char *t, const char *firsts)
{
	size_t	i, n = strnlen(t, STORE_REPLY_MAX + 1);

	if (n < 4 || n > STORE_REPLY_MAX)
		return -1;
	if (strchr(firsts, t[0]) == NULL || t[1] < '0' || t[1] > '9' ||
	    t[2] < '0' || t[2] > '9' || t[3] != ' ')
		return -1;
	for (i = 4; i < n; i++)
		if (t[i] < 0x20 || t[i] > 0x7e)
			return -1;
	return 0;
}

/*
 * pp_reply_valid - a reply text fit to store and to send: one line,
 * "[45][0-9][0-9] " then printable ASCII only, at most STORE_REPLY_MAX
 * octets.  0, or -1.
 */
int
pp_reply_valid(const char *t)
{
	return t[0] != '\0' ? reply_valid(t, "45") : -1;
}

/*
 * pp_verify_valid - a recipient verification's answer fit to keep: as
 * pp_reply_valid, but a 2xx (the recipient exists) or a 5xx.  0, or -1.
 */
int
pp_verify_valid(const char *t)
{
	return t[0] != '\0' ? reply_valid(t, "25") : -1;
}

/*
 * addr_ok - "" (a sender, when nullok) or a mailbox as RCPT/MAIL take it
 * (UTF-8 included: SMTPUTF8 transactions are greylisted too)
 */
static int
addr_ok(const char *s, int nullok)
{
	struct smtp_path path;

	if (s[0] == '\0')
		return nullok == 1 ? 0 : -1;
	if (smtp_parse_bare(s, nullok, 1, &path) == -1 ||
	    strcmp(path.addr, s) != 0)
		return -1;
	return 0;
}

/*
 * pp_check_request - a decoded request, field by field, as the policy
 * process must see it before it acts: the client is an address, the
 * sender and recipient parse as SMTP paths, and every field fits the
 * operation (a reply text only with PP_REPLY_PUT, and a valid one; log
 * text only with PP_LOG).  0, or -1 and why.
 */
int
pp_check_request(const struct pp_request *rq, const char **why)
{
	static const uint8_t	zero[12];
	const char		*p;

	if (rq->pad != 0) {
		*why = "padding not zero";
		return -1;
	}
	if (rq->family != AF_INET && rq->family != AF_INET6) {
		*why = "client is not an address";
		return -1;
	}
	if (rq->family == AF_INET && memcmp(rq->addr + 4, zero, 12) != 0) {
		*why = "client is not an IPv4 address";
		return -1;
	}
	if (addr_ok(rq->sender, 1) == -1) {
		*why = "sender does not parse";
		return -1;
	}
	switch (rq->op) {
	case PP_CHECK:
	case PP_REPLY_GET:
	case PP_REPLY_PUT:
		if (addr_ok(rq->rcpt, -1) == -1) {
			*why = "recipient does not parse";
			return -1;
		}
		if (rq->op != PP_REPLY_PUT && rq->text[0] != '\0') {
			*why = "text with a question";
			return -1;
		}
		if (rq->op == PP_REPLY_PUT && pp_reply_valid(rq->text) == -1) {
			*why = "reply text is not one 4xx/5xx line";
			return -1;
		}
		return 0;
	case PP_VERIFY_GET:
	case PP_VERIFY_PUT:
		if (addr_ok(rq->rcpt, -1) == -1) {
			*why = "recipient does not parse";
			return -1;
		}
		if (rq->op == PP_VERIFY_GET && rq->text[0] != '\0') {
			*why = "text with a question";
			return -1;
		}
		/* a probe's answer, or "" for none */
		if (rq->op == PP_VERIFY_PUT && rq->text[0] != '\0' &&
		    pp_verify_valid(rq->text) == -1) {
			*why = "verification text is not one 2xx/5xx line";
			return -1;
		}
		return 0;
	case PP_LOG:
		if (rq->rcpt[0] != '\0') {
			*why = "recipient with a log line";
			return -1;
		}
		if (rq->text[0] == '\0') {
			*why = "empty log line";
			return -1;
		}
		for (p = rq->text; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e) {
				*why = "log line not printable ASCII";
				return -1;
			}
		return 0;
	default:
		*why = "unknown operation";
		return -1;
	}
}

/* pp_decode_response - an answer as received; 0, or -1 when malformed */
int
pp_decode_response(const void *buf, size_t len, struct pp_response *rp)
{
	if (len != sizeof(*rp))
		return -1;
	memcpy(rp, buf, sizeof(*rp));
	if (rp->version != PP_VERSION || rp->op < PP_CHECK ||
	    rp->op > PP_OP_MAX || rp->status < PP_PASS ||
	    rp->status > PP_STATUS_MAX ||
	    !terminated(rp->text, sizeof(rp->text)))
		return -1;
	return 0;
}

/* pp_client_ip - the client address of a request */
int
pp_client_ip(const struct pp_request *rq, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (rq->family != AF_INET && rq->family != AF_INET6)
		return -1;
	ip->family = rq->family;
	memcpy(ip->addr, rq->addr, sizeof(ip->addr));
	return 0;
}

/* sun_abstract - "@name" as an abstract socket address */
static socklen_t
sun_abstract(const char *name, struct sockaddr_un *sun)
{
	size_t	n = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n < 2 || name[0] != '@' || n > sizeof(sun->sun_path))
		return 0;
	memcpy(sun->sun_path + 1, name + 1, n - 1);	/* leading NUL */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/*
 * pp_listen - the policy socket, bound by the master before anything is
 * forked; name receives its "@..." form.  -1 with errno on failure.
 */
int
pp_listen(char *name, size_t len)
{
	struct sockaddr_un	 sun;
	socklen_t		 slen;
	int			 fd;

	if ((size_t)snprintf(name, len, "@greygated.%ld.%08x",
	    (long)getpid(), arc4random()) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slen = sun_abstract(name, &sun)) == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, slen) == -1 ||
	    listen(fd, 128) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* pp_connect - a worker's connection to the policy process, or -1 */
int
pp_connect(const char *name)
{
	struct sockaddr_un	 sun;
	socklen_t		 slen;
	int			 fd, saved;

	if ((slen = sun_abstract(name, &sun)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, slen) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * pp_call - one question, one answer within timeout_ms.  Answers to
 * earlier questions that timed out are skipped by their id.  0, or -1
 * when the policy process is gone, slow or garbled: the caller then
 * closes fd and applies on_error.
 */
int
pp_call(int fd, struct pp_request *rq, struct pp_response *rp,
    int timeout_ms)
{
	static uint32_t		 next_id;
	struct pollfd		 pfd;
	struct timespec		 t0, t1;
	struct pp_response	 buf;
	ssize_t			 n;
	int			 left = timeout_ms, r;

	rq->id = ++next_id;
	do
		n = send(fd, rq, sizeof(*rq), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(*rq))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, left)) == -1 && errno != EINTR)
			return -1;
		if (r == 0)
			return -1;
		if (r > 0) {
			n = recv(fd, &buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0 && !(n == -1 && (errno == EINTR ||
			    errno == EAGAIN)))
				return -1;
			if (n > 0) {
				if (pp_decode_response(&buf, (size_t)n,
				    rp) == -1)
					return -1;
				if (rp->id == rq->id && rp->op == rq->op)
					return 0;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms - (int)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -1;
	}
}

/*
 * pp_ask - pp_call on a connection made when first needed, and made
 * anew (to the policy process of the day) after a failure.  -1 when the
 * policy process cannot answer now.
 */
int
pp_ask(struct pp_conn *pc, struct pp_request *rq, struct pp_response *rp)
{
	char	name[PP_NAME_MAX];
	size_t	n;

	if (pc == NULL)
		return -1;
	if (pc->fd == -1) {
		/* the master may rewrite it: take a copy */
		n = strnlen(pc->name, sizeof(name) - 1);
		memcpy(name, pc->name, n);
		name[n] = '\0';
		if (name[0] == '\0' || (pc->fd = pp_connect(name)) == -1)
			return -1;
	}
	if (pp_call(pc->fd, rq, rp, PP_TIMEOUT_MS) == -1) {
		close(pc->fd);
		pc->fd = -1;
		return -1;
	}
	/* a reply text is sent to a client: checked again here */
	if (rp->status == PP_FOUND && (rq->op == PP_VERIFY_GET ?
	    pp_verify_valid(rp->text) : pp_reply_valid(rp->text)) == -1) {
		log_warnx("policy process answered a reply text that is not "
		    "one %s line: ignored", rq->op == PP_VERIFY_GET ?
		    "2xx/5xx" : "4xx/5xx");
		if (rq->op != PP_REPLY_GET && rq->op != PP_VERIFY_GET)
			return -1;
		rp->status = PP_NOTFOUND;
		rp->text[0] = '\0';
	}
	return 0;
}
