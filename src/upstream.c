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

static int
timeout_min(int a, int b)
{
	return a < b ? a : b;
}

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

/*
 * up_client_info - after a successful EHLO, tell the upstream who the
 * client is (XCLIENT, then EHLO again as XCLIENT requires; or XFORWARD)
 * when it announces it and upstream_client_info allows.  A refusal of
 * the command is logged and the replay goes on without it.  Returns -1
 * (u->why set) only when the connection failed.
 */
static int
up_client_info(struct upconn *u, const struct config *c,
    const struct envelope *env, struct up_reply *ehlo,
    struct up_result *res)
{
	struct up_reply	 r;
	char		 cmd[1536];
	enum xc_kind	 k;
	int		 n;

	res->client_info = "none";
	if (env->client == NULL || !env->esmtp || ehlo->len == 0)
		return 0;
	k = xclient_command(c->upstream_client_info, ehlo->text, env->client,
	    cmd, sizeof(cmd));
	if (k == XC_NONE)
		return 0;
	if (!env->client->named) {
		xclient_lookup_name(env->client, 2);
		k = xclient_command(c->upstream_client_info, ehlo->text,
		    env->client, cmd, sizeof(cmd));
		if (k == XC_NONE)
			return 0;
	}
	if (up_write(u, cmd, strlen(cmd)) == -1 || up_reply(u, &r) == -1)
		return -1;
	if (r.code / 100 != 2) {
		log_warnx("upstream refused %s: %.*s", xclient_kind_name(k),
		    (int)strcspn(r.text, "\r\n"), r.text);
		return 0;
	}
	res->client_info = xclient_kind_name(k);
	if (k != XC_XCLIENT)
		return 0;
	/* XCLIENT starts the session over: EHLO again */
	n = snprintf(cmd, sizeof(cmd), "%s\r\n", env->helo_line);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	if (up_write(u, cmd, (size_t)n) == -1 || up_reply(u, ehlo) == -1)
		return -1;
	if (ehlo->code / 100 != 2) {
		u->why = "refused our EHLO after XCLIENT";
		return -1;
	}
	return 0;
}

/* refuse - greygate's own refusal of what it cannot replay */
static void
refuse(struct up_result *res, const char *text, const char *why)
{
	res->status = UP_REJECTED;
	res->why = why;
	upreply_set(&res->reply, text);
}

/*
 * up_extensions - what the message needs that the upstream must have
 * announced (RFC 6531 3.4, RFC 6152 3); -1 when it is refused, res set.
 */
static int
up_extensions(const struct envelope *env, const struct up_reply *ehlo,
    struct up_result *res)
{
	if (env->smtputf8 && !(env->esmtp && has_ext(ehlo, "SMTPUTF8"))) {
		refuse(res, "553 5.6.7 SMTPUTF8 is required, but was not "
		    "offered by the upstream server", "no SMTPUTF8 upstream");
		return -1;
	}
	if ((env->body == 8 || env->eightbit) && !(env->esmtp &&
	    has_ext(ehlo, "8BITMIME"))) {
		refuse(res, "554 5.6.3 Conversion required but not supported: "
		    "8-bit data, no 8BITMIME upstream", "no 8BITMIME upstream");
		return -1;
	}
	return 0;
}

/* rcpt_params - " NOTIFY=.. ORCPT=.." of recipient i, when replayed */
static const char *
rcpt_params(const struct envelope *env, size_t i, int dsn)
{
	if (!dsn || env->rcpt_params == NULL || env->rcpt_params[i] == NULL)
		return "";
	return env->rcpt_params[i];
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
    int dsn, struct rcpts *rc)
{
	struct up_reply	 r;
	char		 cmd[SMTP_PATH_MAX + 2048];
	size_t		 off;

	for (; rc->next < env->nrcpt; rc->next++) {
		if (!pipelining) {
			off = 0;
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[rc->next],
			    rcpt_params(env, rc->next, dsn)) == -1 ||
			    up_write(u, cmd, off) == -1)
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
hello(struct upconn *u, const struct config *c, const struct envelope *env,
    struct up_reply *ehlo, struct up_result *res)
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
	if (env->ehlo_seen != NULL && env->esmtp)
		env->ehlo_seen(env->arg, ehlo->text);
	if (up_client_info(u, c, env, ehlo, res) == -1) {
		set_unavailable(res, u->why);
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
	int		 dsn = env->esmtp && has_ext(ehlo, "DSN");

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
	if (up_printf(u, cmd, sizeof(cmd), &off, "%s%s\r\n",
	    env->smtputf8 ? " SMTPUTF8" : "", dsn && env->mail_params ?
	    env->mail_params : "") == -1)
		return -1;
	if (pipelining) {
		for (i = rc->next; i < env->nrcpt; i++) {
			if (off > sizeof(cmd) - 2600) {
				if (up_write(u, cmd, off) == -1)
					return -1;
				off = 0;
			}
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[i],
			    rcpt_params(env, i, dsn)) == -1)
				return -1;
		}
	}
	if (up_write(u, cmd, off) == -1 || up_reply(u, &r) == -1)
		return -1;
	if (r.code / 100 != 2) {
		relay(res, &r, "sender refused");
		return 1;
	}
	return rcpt_replies(u, env, pipelining, dsn, rc);
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
		if (hello(u, c, env, &ehlo, res) == -1)
			return;
		if (up_extensions(env, &ehlo, res) == -1)
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
 * upstream_probe - a short connection of greygate's own: EHLO (as the
 * client when ci is given, with XCLIENT/XFORWARD), then, when rcpt is
 * not NULL, MAIL FROM:<> (SMTPUTF8 when utf8 and announced), RCPT
 * TO:<rcpt>, RSET; QUIT.  Every step waits at most timeout seconds.
 * Nothing is ever sent after the RCPT but RSET and QUIT: a probe
 * delivers nothing.
 */
void
upstream_probe(const struct config *c, struct client_info *ci,
    const char *helo, const char *rcpt, int utf8, struct up_probe *pr)
{
	struct upconn	 u;
	struct up_reply	 r, ehlo;
	struct up_result res;
	struct envelope	 env;
	char		 line[SMTP_DOMAIN_MAX + 16], cmd[SMTP_PATH_MAX + 64];
	const char	*why = NULL;
	int		 n;

	memset(pr, 0, sizeof(*pr));
	memset(&u, 0, sizeof(u));
	memset(&res, 0, sizeof(res));
	pr->client_info = "none";
	u.timeout = timeout_min(c->upstream_timeout, c->verify_timeout);
	/* greeting, EHLO, XCLIENT and EHLO, MAIL, RCPT, RSET, QUIT */
	u.end = now_ms() + 8L * u.timeout * 1000L;
	if ((u.fd = connect_timeout(c->smtp_ip, c->smtp_port,
	    timeout_min(c->upstream_connect_timeout, c->verify_timeout),
	    &why)) == -1) {
		pr->why = why;
		return;
	}
	if (linebuf_init(&u.lb, UP_BUF, 1) == -1) {
		close(u.fd);
		pr->why = "out of memory";
		return;
	}
	(void)snprintf(line, sizeof(line), "EHLO %s", helo);
	memset(&env, 0, sizeof(env));
	env.helo_line = line;
	env.helo = helo;
	env.esmtp = 1;
	env.client = ci;
	n = snprintf(cmd, sizeof(cmd), "%s\r\n", line);
	if (up_reply(&u, &r) == -1 || r.code != 220 ||
	    up_write(&u, cmd, (size_t)n) == -1 || up_reply(&u, &ehlo) == -1 ||
	    ehlo.code / 100 != 2) {
		pr->why = u.why ? u.why : "refused the probe";
		goto done;
	}
	if (ci != NULL && up_client_info(&u, c, &env, &ehlo, &res) == -1) {
		pr->why = u.why;
		goto done;
	}
	pr->client_info = res.client_info ? res.client_info : "none";
	pr->reached = 1;
	memcpy(pr->ehlo, ehlo.text, sizeof(pr->ehlo));
	if (rcpt == NULL)
		goto done;
	n = snprintf(cmd, sizeof(cmd), "MAIL FROM:<>%s\r\n", utf8 &&
	    has_ext(&ehlo, "SMTPUTF8") ? " SMTPUTF8" : "");
	if (up_write(&u, cmd, (size_t)n) == -1 || up_reply(&u, &r) == -1) {
		pr->why = u.why;
		goto done;
	}
	if (r.code / 100 != 2) {
		pr->why = "refused MAIL FROM:<>";
		goto done;
	}
	n = snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpt);
	if (n < 0 || (size_t)n >= sizeof(cmd) ||
	    up_write(&u, cmd, (size_t)n) == -1 || up_reply(&u, &r) == -1) {
		pr->why = u.why ? u.why : "command too long";
		goto done;
	}
	pr->code = r.code;
	memcpy(pr->reply, r.text, sizeof(pr->reply));
	pr->why = "answered";
	if (up_write(&u, "RSET\r\n", 6) == 0)
		(void)up_reply(&u, &r);
done:
	u.timeout = u.timeout < 5 ? u.timeout : 5;
	if (up_write(&u, "QUIT\r\n", 6) == 0)
		(void)up_reply(&u, &r);
	linebuf_free(&u.lb);
	close(u.fd);
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
