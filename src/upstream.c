/*
 * upstream - replays one accepted transaction to the real mail server
 * with plain sockets and reports what it said.  Every reply is read whole
 * and checked; nothing is assumed.  The caller answers the client only
 * from the result, so greygate never says 250 for mail the upstream did
 * not take.  Every wait has a timeout; a slow or silent upstream is
 * "unavailable", never "accepted".  The whole replay has one deadline
 * (replay_timeout from the client's final dot, below the client's own
 * 10 minutes); each step waits for its own limit or what is left of it,
 * whichever is shorter, writes included.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "linebuf.h"
#include "log.h"
#include "smtp_parse.h"
#include "upstream.h"

#define UP_LINE_MAX	2048	/* one reply line */
#define UP_BUF		8192	/* read buffer */

struct upconn {
	int		 fd;		/* socket to upstream */
	struct linebuf	 lb;		/* its replies */
	int		 timeout;	/* seconds per reply */
	long		 end;		/* the replay's deadline, ms */
	long		 wend;		/* writes' deadline now, 0: per write */
	int		 rcvtimeo;	/* SO_RCVTIMEO of fd, 0: none */
	int		 more;		/* more follows: let TCP gather it */
	int		 quit_sent;	/* QUIT went with the final dot */
	const char	*why;		/* first failure, for the log */
};

/* connect_timeout - a TCP connection to ip:port within timeout seconds */
static int
connect_timeout(const char *ipstr, int port, int timeout, const char **why)
{
	struct sockaddr_storage	 ss;
	struct ipaddr		 ip;
	struct pollfd		 pfd;
	socklen_t		 slen, elen;
	int			 fd, flags, err = 0, one = 1, n;

	if (ipaddr_parse(ipstr, &ip) == -1) {
		*why = "bad smtp_ip";
		return -1;
	}
	slen = ipaddr_sockaddr(&ip, port, &ss);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		*why = "socket failed";
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, slen) == -1) {
		if (errno != EINPROGRESS) {
			*why = "connection refused";
			close(fd);
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			n = poll(&pfd, 1, timeout * 1000);
		} while (n == -1 && errno == EINTR);
		if (n <= 0) {
			*why = "connect timed out";
			close(fd);
			return -1;
		}
		elen = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 ||
		    err != 0) {
			*why = "connection refused";
			close(fd);
			return -1;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		*why = "fcntl failed";
		close(fd);
		return -1;
	}
	return fd;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* step_end - the deadline of a step of limit seconds, ms */
static long
step_end(const struct upconn *u, int limit)
{
	long	end = now_ms() + limit * 1000L;

	return end < u->end ? end : u->end;
}

/*
 * up_read - more of a reply, by its deadline.  The first read of a reply
 * is a blocking read(2) bounded by SO_RCVTIMEO (whole seconds, never
 * past the deadline), set only when it changes: one system call where
 * poll(2) then read(2) made two.  Any further read waits with poll(2)
 * for what is left of the deadline.  Returns 0, or -1 with u->why set.
 */
static int
up_read(struct upconn *u, long deadline, int first)
{
	ssize_t	n;
	long	left;

	left = deadline - now_ms();
	if (first && (left < 1000 || linebuf_rcvtimeo(u->fd, (int)(left /
	    1000), &u->rcvtimeo) == -1))
		first = 0;	/* then poll(2) keeps the deadline */
	for (;;) {
		if (!first) {
			left = deadline - now_ms();
			if (linebuf_wait(u->fd, left > 0 ? (int)left : 0) <= 0) {
				u->why = "timed out waiting for a reply";
				return -1;
			}
		}
		if ((n = linebuf_read(&u->lb, u->fd)) > 0)
			return 0;
		if (n == -1 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK)) {
			first = 0;	/* a signal, or SO_RCVTIMEO */
			continue;
		}
		u->why = "closed the connection";
		return -1;
	}
}

/*
 * up_reply_within - read one whole reply within limit seconds (and the
 * replay's deadline); upreply_add keeps it complete and bounded.
 */
static int
up_reply_within(struct upconn *u, struct up_reply *r, int limit)
{
	long		 deadline = step_end(u, limit);
	char		*line;
	size_t		 len;
	int		 fresh = 1;

	upreply_init(r);
	for (;;) {
		switch (linebuf_getline(&u->lb, UP_LINE_MAX, &line, &len)) {
		case LB_LINE:
			break;
		case LB_NEED:
			if (up_read(u, deadline, fresh) == -1)
				return -1;
			fresh = 0;
			continue;
		default:
			u->why = "sent an over-long reply line";
			return -1;
		}
		switch (upreply_add(r, line, len)) {
		case 1:
			return 0;
		case 0:
			continue;
		default:
			u->why = "sent a malformed reply";
			return -1;
		}
	}
}

/* up_reply - one whole reply within the reply timeout */
static int
up_reply(struct upconn *u, struct up_reply *r)
{
	return up_reply_within(u, r, u->timeout);
}

/*
 * up_write - all of buf (a datasink_fn), by u->wend when set (the data:
 * one deadline for all of it, not one per chunk), else within the reply
 * timeout of this call; never past the replay's deadline.
 */
static int
up_write(void *arg, const char *buf, size_t len)
{
	struct upconn	*u = arg;
	struct pollfd	 pfd;
	ssize_t		 w;
	long		 deadline, left;
	int		 n;

	deadline = u->wend != 0 ? u->wend : step_end(u, u->timeout);
	while (len > 0) {
		w = send(u->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT |
		    (u->more ? MSG_MORE : 0));
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				u->why = "closed the connection";
				return -1;
			}
			pfd.fd = u->fd;
			pfd.events = POLLOUT;
			do {
				left = deadline - now_ms();
				n = poll(&pfd, 1, left > 0 ? (int)left : 0);
			} while (n == -1 && errno == EINTR);
			if (n <= 0) {
				u->why = "timed out accepting data";
				return -1;
			}
			continue;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int	up_printf(struct upconn *, char *, size_t, size_t *,
		    const char *, ...) __attribute__((format(printf, 5, 6)));

/* up_printf - append a command to buf; -1 when it does not fit */
static int
up_printf(struct upconn *u, char *buf, size_t size, size_t *off,
    const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *off) {
		u->why = "command too long";
		return -1;
	}
	*off += (size_t)n;
	return 0;
}

/* has_ext - does an EHLO reply announce keyword? */
static int
has_ext(const struct up_reply *r, const char *kw)
{
	const char	*p = r->text, *eol;
	size_t		 kl = strlen(kw);

	while ((eol = strstr(p, "\r\n")) != NULL) {
		/* p[4 + kl] lies at or before eol, inside the reply text */
		if ((size_t)(eol - p) >= 4 + kl && strncasecmp(p + 4, kw, kl)
		    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
		    == 0 && (p[4 + kl] == ' ' || p[4 + kl] == '\r' ||
		    p[4 + kl] == '='))
			return 1;
		p = eol + 2;
	}
	return 0;
}

static void
set_unavailable(struct up_result *res, const char *why)
{
	res->status = UP_UNAVAILABLE;
	res->why = why;
	upreply_set(&res->reply,
	    "451 4.4.1 Upstream server unavailable, try again later");
}

/* relay - a 4xx/5xx reply goes back to the client; anything else is odd */
static void
relay(struct up_result *res, const struct up_reply *r, const char *why)
{
	if (r->code < 400) {
		set_unavailable(res, why);
		return;
	}
	res->status = UP_REJECTED;
	res->why = why;
	res->reply = *r;
}

/* what the RCPTs of a replay have been told so far */
struct rcpts {
	size_t		 next;		/* first recipient not yet answered */
	size_t		 nok;		/* accepted */
	struct up_reply	 first5;	/* the first 5xx refusal, code 0: none */
	struct up_reply	 first4;	/* the first 4xx refusal */
};

/*
 * rcpt_replies - the replies to the RCPTs from rc->next on, each
 * recipient's refusal told to env->refused as it comes, so that those
 * received before the upstream gave up are known too.  Without
 * PIPELINING each RCPT is sent here.  A 421 is the upstream closing,
 * not an answer.  0, or -1 with u->why set when the upstream failed.
 */
static int
rcpt_replies(struct upconn *u, const struct envelope *env, int pipelining,
    struct rcpts *rc)
{
	struct up_reply	 r;
	char		 cmd[SMTP_PATH_MAX + 16];
	size_t		 off;

	for (; rc->next < env->nrcpt; rc->next++) {
		if (!pipelining) {
			off = 0;
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[rc->next], "") ==
			    -1 || up_write(u, cmd, off) == -1)
				return -1;
		}
		if (up_reply(u, &r) == -1)
			return -1;
		if (r.code == 421) {
			u->why = "closed the connection (421)";
			return -1;
		}
		if (r.code / 100 == 2) {
			rc->nok++;
			continue;
		}
		if (env->refused != NULL)
			env->refused(env->arg, rc->next, &r);
		if (r.code >= 500 && rc->first5.code == 0)
			rc->first5 = r;
		else if (r.code < 500 && rc->first4.code == 0)
			rc->first4 = r;
	}
	return 0;
}

/*
 * the_dot - the message and its final dot, by one deadline for all of
 * it; the dot's reply waits up to UP_DOT_TIMEOUT.  Only 250 is taken.
 * Right before the dot, the client must still be there: if it has gone,
 * nothing is committed (the upstream gets no dot, only the end).
 */
static void
the_dot(struct upconn *u, const struct envelope *env, struct transcript *tx,
    int pipelining, struct up_result *res)
{
	struct up_reply	 r;
	int		 rv;

	/*
	 * The message and its final dot go out in as few segments as TCP
	 * can make of them; with PIPELINING, QUIT joins the dot's group
	 * (RFC 2920), so that its reply costs no round trip of its own.
	 */
	u->more = 1;
	u->wend = u->end;
	rv = transcript_replay(tx, up_write, u);
	u->more = 0;
	if (rv == -1) {
		u->wend = 0;
		return set_unavailable(res, u->why ? u->why :
		    "spill file unreadable");
	}
	if (env->alive != NULL && !env->alive(env->arg)) {
		u->wend = 0;
		res->status = UP_CLIENT_GONE;
		res->why = "the client has gone";
		upreply_set(&res->reply, "451 4.4.2 Client gone");
		return;
	}
	u->quit_sent = pipelining;
	rv = up_write(u, pipelining ? ".\r\nQUIT\r\n" : ".\r\n",
	    pipelining ? 9 : 3);
	u->wend = 0;
	if (rv == -1 || up_reply_within(u, &r, UP_DOT_TIMEOUT) == -1)
		return set_unavailable(res, u->why);
	if (r.code == 250) {
		res->status = UP_DELIVERED;
		res->why = "accepted";
		res->reply = r;
		return;
	}
	relay(res, &r, r.code < 400 ? "answered the dot with no 250" :
	    "message refused");
}

/*
 * hello - the greeting and EHLO (HELO when EHLO is refused with 5xx);
 * the EHLO reply in *ehlo.  0, or -1 with res set.
 */
static int
hello(struct upconn *u, const struct envelope *env, struct up_reply *ehlo,
    struct up_result *res)
{
	struct up_reply	 r;
	char		 cmd[SMTP_DOMAIN_MAX + 32];
	size_t		 off = 0;

	if (up_reply(u, &r) == -1) {
		set_unavailable(res, u->why);
		return -1;
	}
	if (r.code != 220) {
		set_unavailable(res, "refused the connection");
		return -1;
	}
	if (up_printf(u, cmd, sizeof(cmd), &off, "%s%s\r\n", env->helo_line,
	    "") == -1 || up_write(u, cmd, off) == -1 || up_reply(u, ehlo) ==
	    -1) {
		set_unavailable(res, u->why);
		return -1;
	}
	if (ehlo->code / 100 != 2 && env->esmtp && ehlo->code / 100 == 5) {
		off = 0;
		if (up_printf(u, cmd, sizeof(cmd), &off, "HELO %s%s\r\n",
		    env->helo, "") == -1 || up_write(u, cmd, off) == -1 ||
		    up_reply(u, ehlo) == -1) {
			set_unavailable(res, u->why);
			return -1;
		}
		memset(ehlo->text, 0, 4);	/* no extensions after HELO */
		ehlo->len = 0;
	}
	if (ehlo->code / 100 != 2) {
		set_unavailable(res, "refused our HELO");
		return -1;
	}
	return 0;
}

/*
 * mail_rcpts - MAIL and the RCPTs from rc->next on, in one group when the
 * upstream pipelines, and their replies.  0; 1 when MAIL was refused
 * (res set); -1 when the upstream failed (u->why set).
 */
static int
mail_rcpts(struct upconn *u, const struct envelope *env,
    const struct up_reply *ehlo, int pipelining, struct rcpts *rc,
    struct up_result *res)
{
	struct up_reply	 r;
	char		 cmd[8192], num[32];
	size_t		 off = 0, i;

	if (up_printf(u, cmd, sizeof(cmd), &off, "MAIL FROM:<%s>%s",
	    env->from, "") == -1)
		return -1;
	if (env->size >= 0 && env->esmtp && has_ext(ehlo, "SIZE")) {
		snprintf(num, sizeof(num), "%lld", env->size);
		if (up_printf(u, cmd, sizeof(cmd), &off, " SIZE=%s%s", num,
		    "") == -1)
			return -1;
	}
	if (env->body != 0 && env->esmtp && has_ext(ehlo, "8BITMIME") &&
	    up_printf(u, cmd, sizeof(cmd), &off, " BODY=%s%s",
	    env->body == 8 ? "8BITMIME" : "7BIT", "") == -1)
		return -1;
	if (up_printf(u, cmd, sizeof(cmd), &off, "\r\n%s%s", "", "") == -1)
		return -1;
	if (pipelining) {
		for (i = rc->next; i < env->nrcpt; i++) {
			if (off > sizeof(cmd) - 600) {
				if (up_write(u, cmd, off) == -1)
					return -1;
				off = 0;
			}
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[i], "") == -1)
				return -1;
		}
	}
	if (up_write(u, cmd, off) == -1 || up_reply(u, &r) == -1)
		return -1;
	if (r.code / 100 != 2) {
		relay(res, &r, "sender refused");
		return 1;
	}
	return rcpt_replies(u, env, pipelining, rc);
}

/* reconnect - a new connection for the same replay: 0 or -1 (u->why) */
static int
reconnect(const struct config *c, struct upconn *u)
{
	long	left = u->end - now_ms();
	int	ct = c->upstream_connect_timeout;

	close(u->fd);
	linebuf_reset(&u->lb);
	u->rcvtimeo = 0;
	if (left < ct * 1000L)
		ct = (int)(left / 1000);
	if (ct < 1 || (u->fd = connect_timeout(c->smtp_ip, c->smtp_port, ct,
	    &u->why)) == -1) {
		if (ct < 1)
			u->why = "replay deadline";
		u->fd = -1;
		return -1;
	}
	return 0;
}

/*
 * replay - the dialogue proper; the caller owns the connection.  When
 * the upstream gives up during the RCPTs after answering some (a hard
 * error limit), the message cannot go in this replay; the recipients
 * not yet answered are asked on a new connection (no DATA), so that the
 * client's retry converges as it would with the upstream directly.
 */
static void
replay(const struct config *c, struct upconn *u, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	struct up_reply	 r, ehlo;
	struct rcpts	 rc;
	size_t		 start;
	int		 pipelining, rv, learning = 0;

	memset(&rc, 0, sizeof(rc));
	upreply_init(&rc.first5);
	upreply_init(&rc.first4);
	for (;;) {
		if (hello(u, env, &ehlo, res) == -1)
			return;
		pipelining = env->esmtp && has_ext(&ehlo, "PIPELINING");
		start = rc.next;
		if ((rv = mail_rcpts(u, env, &ehlo, pipelining, &rc, res)) == 1)
			return;
		if (rv == 0)
			break;
		if (rc.next == start || (rc.first5.code == 0 &&
		    rc.first4.code == 0) || reconnect(c, u) == -1)
			return set_unavailable(res, u->why);
		learning = 1;
	}
	switch (upreply_rcpts(rc.nok, env->nrcpt, &rc.first5, &rc.first4,
	    &res->reply)) {
	case UP_RCPTS_REFUSED:
		res->status = UP_REJECTED;
		res->why = "every recipient refused";
		return;
	case UP_RCPTS_PARTIAL:
		res->status = UP_PARTIAL;
		res->why = "some recipients refused";
		return;
	case UP_RCPTS_ALL_OK:
		break;
	}
	if (learning)	/* not reached: a refusal came before */
		return set_unavailable(res, "closed the connection");

	if (up_write(u, "DATA\r\n", 6) == -1 || up_reply(u, &r) == -1)
		return set_unavailable(res, u->why);
	if (r.code != 354)
		return relay(res, &r, "DATA refused");
	the_dot(u, env, tx, pipelining, res);
}

/*
 * upstream_deliver - connect, replay, answer, QUIT.  res says what
 * happened and carries the reply the client must hear; env->answer is
 * told as soon as that is known, before the QUIT.
 */
void
upstream_deliver(const struct config *c, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	struct upconn	u;
	struct up_reply	r;
	const char	*why = NULL;
	long		 left;
	int		 ct;

	memset(res, 0, sizeof(*res));
	memset(&u, 0, sizeof(u));
	u.timeout = c->upstream_timeout;
	u.end = now_ms() + c->replay_timeout * 1000L;
	ct = c->upstream_connect_timeout;
	if ((left = u.end - now_ms()) < ct * 1000L)
		ct = (int)(left / 1000);
	if ((u.fd = connect_timeout(c->smtp_ip, c->smtp_port, ct,
	    &why)) == -1) {
		set_unavailable(res, why);
		goto answer;
	}
	if (linebuf_init(&u.lb, UP_BUF, 1) == -1) {
		close(u.fd);
		set_unavailable(res, "out of memory");
		goto answer;
	}
	replay(c, &u, env, tx, res);
	if (env->answer != NULL)
		env->answer(env->arg, res);
	/* inside DATA only closing aborts: "QUIT" would be data */
	if (res->status != UP_UNAVAILABLE && res->status != UP_CLIENT_GONE) {
		/* a polite end; its answer changes nothing */
		u.timeout = u.timeout < 5 ? u.timeout : 5;
		if (u.quit_sent || up_write(&u, "QUIT\r\n", 6) == 0)
			(void)up_reply(&u, &r);
	}
	linebuf_free(&u.lb);
	if (u.fd != -1)
		close(u.fd);
	return;
answer:
	if (env->answer != NULL)
		env->answer(env->arg, res);
}
