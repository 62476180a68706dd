/*
 * upstream - replays one accepted transaction to the real mail server
 * with plain sockets and reports what it said.  Every reply is read whole
 * and checked; nothing is assumed.  The caller answers the client only
 * from the result, so greygate never says 250 for mail the upstream did
 * not take.  Every wait has a timeout; a slow or silent upstream is
 * "unavailable", never "accepted".
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

/*
 * upstream_parse_line - "DDD text", "DDD-text" or "DDD": the code and
 * whether more lines follow.  -1 when the line is not a reply line.
 */
int
upstream_parse_line(const char *line, size_t len, int *code, int *more)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = len > 3 && line[3] == '-';
	return 0;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * up_read - more of a reply, by its deadline.  The first read of a reply
 * is a blocking read(2) bounded by SO_RCVTIMEO, set only when the
 * timeout changes: one system call where poll(2) then read(2) made two.
 * Any further read waits with poll(2) for what is left of the deadline.
 * Returns 0, or -1 with u->why set.
 */
static int
up_read(struct upconn *u, long deadline, int first)
{
	ssize_t	n;
	long	left;

	if (first && linebuf_rcvtimeo(u->fd, u->timeout, &u->rcvtimeo) == -1)
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

/* up_reply - read one whole reply within the reply timeout */
static int
up_reply(struct upconn *u, struct up_reply *r)
{
	long		 deadline = now_ms() + u->timeout * 1000L;
	char		*line;
	size_t		 len;
	int		 code, more, first = 1, fresh = 1;

	r->code = 0;
	r->len = 0;
	r->text[0] = '\0';	/* a string even when no line is kept */
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
		if (upstream_parse_line(line, len, &code, &more) == -1 ||
		    (!first && code != r->code)) {
			u->why = "sent a malformed reply";
			return -1;
		}
		first = 0;
		r->code = code;
		if (r->len + len + 2 < sizeof(r->text)) {
			memcpy(r->text + r->len, line, len);
			memcpy(r->text + r->len + len, "\r\n", 2);
			r->len += len + 2;
			r->text[r->len] = '\0';
		}
		if (!more)
			return 0;
	}
}

/* up_write - all of buf within the reply timeout (a datasink_fn) */
static int
up_write(void *arg, const char *buf, size_t len)
{
	struct upconn	*u = arg;
	struct pollfd	 pfd;
	ssize_t		 w;
	int		 n;

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
				n = poll(&pfd, 1, u->timeout * 1000);
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
	static const char msg[] =
	    "451 4.4.1 Upstream server unavailable, try again later\r\n";

	res->status = UP_UNAVAILABLE;
	res->why = why;
	res->reply.code = 451;
	memcpy(res->reply.text, msg, sizeof(msg));
	res->reply.len = sizeof(msg) - 1;
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
	size_t		 len;

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
	len = strlen(env->helo_line);
	if (len + 2 >= sizeof(cmd))
		return -1;
	memcpy(cmd, env->helo_line, len);
	memcpy(cmd + len, "\r\n", 2);
	if (up_write(u, cmd, len + 2) == -1 || up_reply(u, ehlo) == -1)
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
	int	n;

	res->status = UP_REJECTED;
	res->why = why;
	res->reply.code = (text[0] - '0') * 100 + (text[1] - '0') * 10 +
	    (text[2] - '0');
	n = snprintf(res->reply.text, sizeof(res->reply.text), "%s\r\n",
	    text);
	res->reply.len = n > 0 ? (size_t)n : 0;
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

/* replay - the dialogue proper; the caller owns the connection */
static void
replay(struct upconn *u, const struct config *c, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	struct up_reply	 r, ehlo;
	char		 cmd[8192], num[32];
	size_t		 off = 0, i, nok = 0;
	int		 pipelining, dsn, first_bad = -1, rv;
	struct up_reply	 bad;

	memset(&bad, 0, sizeof(bad));

	if (up_reply(u, &r) == -1)
		return set_unavailable(res, u->why);
	if (r.code != 220)
		return set_unavailable(res, "refused the connection");

	if (up_printf(u, cmd, sizeof(cmd), &off, "%s%s\r\n", env->helo_line,
	    "") == -1 || up_write(u, cmd, off) == -1 || up_reply(u, &ehlo) ==
	    -1)
		return set_unavailable(res, u->why);
	if (ehlo.code / 100 != 2 && env->esmtp && ehlo.code / 100 == 5) {
		off = 0;
		if (up_printf(u, cmd, sizeof(cmd), &off, "HELO %s%s\r\n",
		    env->helo, "") == -1 || up_write(u, cmd, off) == -1 ||
		    up_reply(u, &ehlo) == -1)
			return set_unavailable(res, u->why);
		memset(ehlo.text, 0, 4);	/* no extensions after HELO */
		ehlo.len = 0;
	}
	if (ehlo.code / 100 != 2)
		return set_unavailable(res, "refused our HELO");
	if (env->ehlo_seen != NULL && env->esmtp)
		env->ehlo_seen(env->arg, ehlo.text);
	if (up_client_info(u, c, env, &ehlo, res) == -1)
		return set_unavailable(res, u->why);
	if (up_extensions(env, &ehlo, res) == -1)
		return;
	pipelining = env->esmtp && has_ext(&ehlo, "PIPELINING");
	dsn = env->esmtp && has_ext(&ehlo, "DSN");

	off = 0;
	if (up_printf(u, cmd, sizeof(cmd), &off, "MAIL FROM:<%s>%s",
	    env->from, "") == -1)
		return set_unavailable(res, u->why);
	if (env->size >= 0 && env->esmtp && has_ext(&ehlo, "SIZE")) {
		snprintf(num, sizeof(num), "%lld", env->size);
		if (up_printf(u, cmd, sizeof(cmd), &off, " SIZE=%s%s", num,
		    "") == -1)
			return set_unavailable(res, u->why);
	}
	if (env->body != 0 && env->esmtp && has_ext(&ehlo, "8BITMIME") &&
	    up_printf(u, cmd, sizeof(cmd), &off, " BODY=%s%s",
	    env->body == 8 ? "8BITMIME" : "7BIT", "") == -1)
		return set_unavailable(res, u->why);
	if (up_printf(u, cmd, sizeof(cmd), &off, "%s%s\r\n",
	    env->smtputf8 ? " SMTPUTF8" : "", dsn && env->mail_params ?
	    env->mail_params : "") == -1)
		return set_unavailable(res, u->why);

	/* MAIL and the RCPTs go in one group when upstream pipelines */
	if (pipelining) {
		for (i = 0; i < env->nrcpt; i++) {
			if (off > sizeof(cmd) - 1400) {
				if (up_write(u, cmd, off) == -1)
					return set_unavailable(res, u->why);
				off = 0;
			}
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[i],
			    rcpt_params(env, i, dsn)) == -1)
				return set_unavailable(res, u->why);
		}
	}
	if (up_write(u, cmd, off) == -1 || up_reply(u, &r) == -1)
		return set_unavailable(res, u->why);
	if (r.code / 100 != 2)
		return relay(res, &r, "sender refused");
	for (i = 0; i < env->nrcpt; i++) {
		if (!pipelining) {
			off = 0;
			if (up_printf(u, cmd, sizeof(cmd), &off,
			    "RCPT TO:<%s>%s\r\n", env->rcpts[i],
			    rcpt_params(env, i, dsn)) == -1 ||
			    up_write(u, cmd, off) == -1)
				return set_unavailable(res, u->why);
		}
		if (up_reply(u, &r) == -1)
			return set_unavailable(res, u->why);
		if (r.code / 100 == 2)
			nok++;
		else {
			if (env->refused != NULL)
				env->refused(env->arg, i, &r);
			if (first_bad == -1) {
				first_bad = (int)i;
				bad = r;
			}
		}
	}
	if (nok == 0)
		return relay(res, &bad, "every recipient refused");
	if (first_bad != -1) {
		res->status = UP_PARTIAL;
		res->why = "some recipients refused";
		res->reply = bad;
		return;
	}

	if (up_write(u, "DATA\r\n", 6) == -1 || up_reply(u, &r) == -1)
		return set_unavailable(res, u->why);
	if (r.code != 354)
		return relay(res, &r, "DATA refused");
	/*
	 * The message and its final dot go out in as few segments as TCP
	 * can make of them; with PIPELINING, QUIT joins the dot's group
	 * (RFC 2920), so that its reply costs no round trip of its own.
	 */
	u->more = 1;
	rv = transcript_replay(tx, up_write, u);
	u->more = 0;
	u->quit_sent = pipelining;
	if (rv == -1 || up_write(u, pipelining ? ".\r\nQUIT\r\n" : ".\r\n",
	    pipelining ? 9 : 3) == -1 || up_reply(u, &r) == -1)
		return set_unavailable(res, u->why ? u->why :
		    "spill file unreadable");
	if (r.code / 100 == 2) {
		res->status = UP_DELIVERED;
		res->why = "accepted";
		res->reply = r;
		return;
	}
	relay(res, &r, "message refused");
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
 * upstream_deliver - connect, replay, QUIT.  res says what happened and
 * carries the reply the client must hear.
 */
void
upstream_deliver(const struct config *c, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	struct upconn	u;
	struct up_reply	r;
	const char	*why = NULL;

	memset(res, 0, sizeof(*res));
	memset(&u, 0, sizeof(u));
	u.timeout = c->upstream_timeout;
	if ((u.fd = connect_timeout(c->smtp_ip, c->smtp_port,
	    c->upstream_connect_timeout, &why)) == -1) {
		set_unavailable(res, why);
		return;
	}
	if (linebuf_init(&u.lb, UP_BUF, 1) == -1) {
		close(u.fd);
		set_unavailable(res, "out of memory");
		return;
	}
	replay(&u, c, env, tx, res);
	if (res->status != UP_UNAVAILABLE) {
		/* a polite end; its answer changes nothing */
		u.timeout = u.timeout < 5 ? u.timeout : 5;
		if (u.quit_sent || up_write(&u, "QUIT\r\n", 6) == 0)
			(void)up_reply(&u, &r);
	}
	linebuf_free(&u.lb);
	close(u.fd);
}
