/*
 * session - the SMTP state machine of one client session, as one command
 * table (after OpenSMTPD's smtp_session.c), and the thin blocking I/O
 * loop around it.  The machine is strict: out-of-order commands, bad
 * syntax, bare CR or LF, NUL, over-long lines, improper pipelining and
 * early talking are refused.  It buffers the transaction and, when the
 * policy accepts it, replays it upstream and answers the client with the
 * upstream's own reply: it never says 250 to a message that the upstream
 * has not accepted.  It must never block without a timeout.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ehlo_caps.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "verify.h"

#define S_ANY		(S_CONNECTED | S_HELO | S_MAIL | S_RCPT)
#define S_INTRANS	(S_MAIL | S_RCPT)
#define LB_SIZE		65536

enum cmd {
	CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_RSET,
	CMD_NOOP, CMD_VRFY, CMD_QUIT, CMD_STARTTLS, CMD_NOTIMPL
};

static int	check_helo(struct session *, const char *);
static int	check_mail(struct session *, const char *);
static int	check_rcpt(struct session *, const char *);
static int	check_data(struct session *, const char *);
static int	check_noargs(struct session *, const char *);
static int	check_vrfy(struct session *, const char *);
static int	check_starttls(struct session *, const char *);
static void	do_helo(struct session *, const char *);
static void	do_ehlo(struct session *, const char *);
static void	do_mail(struct session *, const char *);
static void	do_rcpt(struct session *, const char *);
static void	do_data(struct session *, const char *);
static void	do_rset(struct session *, const char *);
static void	do_noop(struct session *, const char *);
static void	do_vrfy(struct session *, const char *);
static void	do_quit(struct session *, const char *);
static void	do_starttls(struct session *, const char *);
static void	do_notimpl(struct session *, const char *);
static int	flush(struct session *);

static const struct smtp_cmd {
	const char	*verb;		/* matched case-insensitively */
	enum cmd	 id;
	unsigned int	 states;	/* bitmask: where the command is legal */
	int		(*check)(struct session *, const char *);
	void		(*proceed)(struct session *, const char *);
} cmds[] = {
	{ "HELO", CMD_HELO, S_ANY, check_helo, do_helo },
	{ "EHLO", CMD_EHLO, S_ANY, check_helo, do_ehlo },
	{ "MAIL", CMD_MAIL, S_HELO, check_mail, do_mail },
	{ "RCPT", CMD_RCPT, S_INTRANS, check_rcpt, do_rcpt },
	{ "DATA", CMD_DATA, S_RCPT, check_data, do_data },
	{ "RSET", CMD_RSET, S_ANY, check_noargs, do_rset },
	{ "NOOP", CMD_NOOP, S_ANY, NULL, do_noop },
	{ "VRFY", CMD_VRFY, S_ANY, check_vrfy, do_vrfy },
	{ "QUIT", CMD_QUIT, S_ANY, check_noargs, do_quit },
	{ "EXPN", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
	{ "HELP", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
	{ "TURN", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
	{ "ETRN", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
	{ "AUTH", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
	{ "STARTTLS", CMD_STARTTLS, S_ANY, check_starttls, do_starttls },
	{ "BDAT", CMD_NOTIMPL, S_ANY, NULL, do_notimpl },
};

/* the parsed arguments of the command being processed */
static struct smtp_mail	cur_mail;
static struct smtp_path	cur_rcpt;
static char		cur_rcpt_params[SMTP_PARAMS_MAX];

const char *
session_state_name(enum state st)
{
	switch (st) {
	case S_CONNECTED:
		return "CONNECTED";
	case S_HELO:
		return "HELO";
	case S_MAIL:
		return "MAIL";
	case S_RCPT:
		return "RCPT";
	case S_DATA:
		return "DATA";
	case S_QUIT:
	default:
		return "QUIT";
	}
}

/* session_enter_state - the only place the state changes */
static void
session_enter_state(struct session *s, enum state st)
{
	if (s->state != st)
		log_debug("session=%s %s -> %s", s->id,
		    session_state_name(s->state), session_state_name(st));
	s->state = st;
}

/* out_append - queue octets for the client */
static void
out_append(struct session *s, const char *p, size_t n)
{
	size_t	 ncap;
	char	*nout;

	if (s->outlen + n > s->outcap) {
		ncap = s->outcap ? s->outcap : 1024;
		while (ncap < s->outlen + n)
			ncap *= 2;
		if ((nout = realloc(s->out, ncap)) == NULL) {
			s->dead = 1;
			return;
		}
		s->out = nout;
		s->outcap = ncap;
	}
	memcpy(s->out + s->outlen, p, n);
	s->outlen += n;
}

/*
 * session_reply - queue one reply line.  A 4xx/5xx reply to a command is
 * an error; at max_errors the session ends with 421.
 */
void
session_reply(struct session *s, const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	log_debug("session=%s >>> %s", s->id, buf);
	/* a reply line, not a string: CRLF ends it */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(buf + n, "\r\n", 2);
	out_append(s, buf, (size_t)n + 2);
}

/* log_safe - a client-supplied string made fit for a key=value log */
static const char *
log_safe(const char *in, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < len - 1 && in[i] != '\0'; i++)
		buf[i] = isgraph((unsigned char)in[i]) && in[i] != '"' ?
		    in[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* session_ask - one question to the policy process; -1: no answer */
static int
session_ask(struct session *s, enum pp_op op, const char *rcpt,
    const char *text, struct pp_response *rp)
{
	struct pp_request	rq;

	if (s->pp == NULL || pp_request_init(&rq, op, &s->client,
	    s->mail.path.addr, rcpt, text) == -1)
		return -1;
	return pp_ask(s->pp, &rq, rp);
}

/* session_log - the one decisive line of an outcome */
static void
session_log(struct session *s, const char *to, const char *action,
    const char *reason, const char *upstream)
{
	struct pp_response rp;
	char	from[SMTP_PATH_MAX + 1], up[256], rcpt[1024], line[2048];
	char	tls[128];
	size_t	n;

	if (upstream != NULL) {
		/* the first line of the reply, spaces kept */
		for (n = 0; n < sizeof(up) - 1 && upstream[n] != '\0' &&
		    upstream[n] != '\r' && upstream[n] != '\n'; n++)
			up[n] = isprint((unsigned char)upstream[n]) &&
			    upstream[n] != '"' ? upstream[n] : '?';
		up[n] = '\0';
	}
	(void)snprintf(line, sizeof(line), "session=%s client=%s helo=%s "
	    "from=<%s> to=%s action=%s reason=%s%s%s%s size=%zu%s%s tls=%s",
	    s->id,
	    s->client_str, s->helo[0] ? s->helo : "-",
	    log_safe(s->mail.path.addr, from, sizeof(from)),
	    to ? log_safe(to, rcpt, sizeof(rcpt)) : "-", action, reason,
	    upstream ? " upstream=\"" : "", upstream ? up : "",
	    upstream ? "\"" : "", s->ds.size,
	    s->ci_used ? " client_info=" : "", s->ci_used ? s->ci_used : "",
	    netio_tls_name(&s->io, tls, sizeof(tls)));
	log_info("%s", line);
	/* greylist_log is written by the policy process, outside chroot */
	if (s->cfg->greylist_log[0] != '\0')
		(void)session_ask(s, PP_LOG, "", line, &rp);
}

/* session_log_conn - an outcome without a transaction */
static void
session_log_conn(struct session *s, const char *action, const char *reason)
{
	char	tls[128];

	log_info("session=%s client=%s helo=%s action=%s reason=%s tls=%s",
	    s->id, s->client_str, s->helo[0] ? s->helo : "-", action, reason,
	    netio_tls_name(&s->io, tls, sizeof(tls)));
}

static void
session_close(struct session *s)
{
	session_enter_state(s, S_QUIT);
}

/* reset_transaction - forget MAIL, RCPTs and the message */
static void
reset_transaction(struct session *s)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i]);
		free(s->rcpt_params[i]);
	}
	s->nrcpt = 0;
	s->nrefused = 0;
	s->nrefusal = 0;
	memset(&s->mail, 0, sizeof(s->mail));
	transcript_reset(&s->tx);
	smtp_data_init(&s->ds, (size_t)s->cfg->max_text_line,
	    (size_t)s->cfg->max_message_size);
	if (s->state & (S_MAIL | S_RCPT | S_DATA))
		session_enter_state(s, S_HELO);
}

/* error - reply with a 4xx/5xx and count it */
static void
error(struct session *s, const char *reply)
{
	session_reply(s, "%s", reply);
	s->errors++;
}

static int
check_helo(struct session *s, const char *args)
{
	if (smtp_check_helo(args) == -1) {
		error(s, toupper((unsigned char)s->verb[0]) == 'E' ?
		    "501 5.5.4 Syntax: EHLO hostname" :
		    "501 5.5.4 Syntax: HELO hostname");
		return 0;
	}
	return 1;
}

static int
check_mail(struct session *s, const char *args)
{
	switch (smtp_parse_mail_ext(args, &cur_mail,
	    (s->ann & CAP_DSN ? SP_DSN : 0) |
	    (s->ann & CAP_SMTPUTF8 ? SP_UTF8 : 0))) {
	case SP_OK:
		break;
	case SP_PARAM_UNKNOWN:
		error(s, "555 5.5.4 Unsupported parameter");
		return 0;
	case SP_PARAM_BAD:
		error(s, "501 5.5.4 Syntax error in parameters");
		return 0;
	case SP_SYNTAX:
	default:
		error(s, "501 5.1.7 Bad sender address syntax");
		return 0;
	}
	if ((!s->esmtp && (cur_mail.size != -1 || cur_mail.body != 0)) ||
	    (cur_mail.body != 0 && !(s->ann & CAP_8BITMIME))) {
		error(s, "555 5.5.4 Unsupported parameter");
		return 0;
	}
	if (cur_mail.size > s->cfg->max_message_size) {
		error(s, "552 5.3.4 Message size exceeds fixed limit");
		return 0;
	}
	return 1;
}

static int
check_rcpt(struct session *s, const char *args)
{
	switch (smtp_parse_rcpt_ext(args, &cur_rcpt,
	    (s->ann & CAP_DSN ? SP_DSN : 0) |
	    (s->mail.smtputf8 ? SP_UTF8 : 0), cur_rcpt_params,
	    sizeof(cur_rcpt_params))) {
	case SP_OK:
		break;
	case SP_PARAM_UNKNOWN:
		error(s, "555 5.5.4 Unsupported parameter");
		return 0;
	case SP_PARAM_BAD:
	case SP_SYNTAX:
	default:
		error(s, "501 5.1.3 Bad recipient address syntax");
		return 0;
	}
	if (s->nrcpt >= (size_t)s->cfg->max_recipients) {
		/* not the client's fault: RFC 5321 4.5.3.1.10 */
		session_reply(s, "452 4.5.3 Too many recipients");
		return 0;
	}
	return 1;
}

static int
check_noargs(struct session *s, const char *args)
{
	if (*args != '\0') {
		error(s, "501 5.5.4 Syntax error");
		return 0;
	}
	return 1;
}

/*
 * check_data - with the null sender, greylisting is decided here, for
 * each recipient: a bounce is never refused at RCPT (RFC 5321 6.1), and
 * any deferred recipient defers the message.
 */
static int
check_data(struct session *s, const char *args)
{
	struct pp_response	 rp;
	const char		*reply;
	enum verdict		 v;
	char			 to[SMTP_PATH_MAX + 3];
	size_t			 i;

	if (!check_noargs(s, args))
		return 0;
	for (i = 0; i < s->nrcpt; i++) {
		if (!s->rcpt_null[i])
			continue;
		v = policy_greylist_answer(s->cfg, session_ask(s, PP_CHECK,
		    s->rcpts[i], NULL, &rp) == -1 ? -1 : rp.status, &reply);
		if (v == V_PASS || v == V_WHITELIST)
			continue;
		(void)snprintf(to, sizeof(to), "<%s>", s->rcpts[i]);
		session_log(s, to, policy_action(v), v == V_GREYLIST ?
		    "null-sender" : "store-unavailable", NULL);
		session_reply(s, "%s", reply);
		return 0;
	}
	return 1;
}

static int
check_vrfy(struct session *s, const char *args)
{
	if (*args == '\0') {
		error(s, "501 5.5.4 Syntax error");
		return 0;
	}
	return 1;
}

static void
hello(struct session *s, const char *args)
{
	reset_transaction(s);
	(void)strlcpy(s->helo, args, sizeof(s->helo));
	/* replayed upstream as the client sent it */
	snprintf(s->helo_line, sizeof(s->helo_line), "%s %s", s->verb, args);
	session_enter_state(s, S_HELO);
}

static void
do_helo(struct session *s, const char *args)
{
	hello(s, args);
	s->esmtp = 0;
	s->ann = 0;
	session_reply(s, "250 %s Hello %s [%s]", s->cfg->servername, args,
	    s->client_str);
}

static void
do_ehlo(struct session *s, const char *args)
{
	hello(s, args);
	s->esmtp = 1;
	session_reply(s, "250-%s Hello %s [%s]", s->cfg->servername, args,
	    s->client_str);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %ld", s->cfg->max_message_size);
	/* only what the upstream takes (ehlo_caps.c) */
	s->ann = s->caps(s->cfg, s->tx.dir);
	if (s->ann & CAP_8BITMIME)
		session_reply(s, "250-8BITMIME");
	if (s->ann & CAP_DSN)
		session_reply(s, "250-DSN");
	if (s->ann & CAP_SMTPUTF8)
		session_reply(s, "250-SMTPUTF8");
	if (s->tls_ctx != NULL && !s->tls)
		session_reply(s, "250-STARTTLS");
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
do_mail(struct session *s, const char *args)
{
	(void)args;
	reset_transaction(s);
	s->mail = cur_mail;
	session_reply(s, "250 2.1.0 OK");
	session_enter_state(s, S_MAIL);
}

static void
do_rcpt(struct session *s, const char *args)
{
	struct policy_query	 q;
	struct pp_response	 rp;
	const char		*reply;
	enum verdict		 v;
	char			**nr, to[SMTP_PATH_MAX + 3];
	char			 vreply[STORE_REPLY_MAX + 1];
	const char		*how;
	unsigned char		*nn;
	size_t			 ncap;
	int			 asked, null = 0;

	(void)args;
	(void)snprintf(to, sizeof(to), "<%s>", cur_rcpt.addr);
	q.client = &s->client;
	q.helo = s->helo;
	q.sender = s->mail.path.addr;
	q.rcpt = cur_rcpt.addr;
	q.route = cur_rcpt.route;
	v = policy_rcpt(s->cfg, &q, &reply);
	if ((v == V_PASS || v == V_WHITELIST || v == V_ASK) &&
	    s->verify(s, cur_rcpt.addr, s->mail.smtputf8, vreply,
	    sizeof(vreply), &how) == VERIFY_REFUSED) {
		/* the upstream's own refusal, not the client's error */
		s->nrefused++;
		session_log(s, to, "reject", strcmp(how, "cached") == 0 ?
		    "unverified-cached" : "unverified", vreply);
		session_reply(s, "%s", vreply);
		return;
	}
	if (v == V_PASS || v == V_WHITELIST || v == V_ASK) {
		/*
		 * One question: a rejection upstream gave this triplet in
		 * the last hour, else (greylisting) the triplet's verdict.
		 * The null sender's verdict waits for DATA.
		 */
		null = v == V_ASK && q.sender[0] == '\0';
		if (v == V_ASK && !null)
			asked = session_ask(s, PP_CHECK, cur_rcpt.addr, NULL,
			    &rp);
		else if (s->reply_horizon != NULL &&
		    time(NULL) > *s->reply_horizon)
			asked = -1;	/* nothing refused in the last hour */
		else
			asked = session_ask(s, PP_REPLY_GET, cur_rcpt.addr,
			    NULL, &rp);
		if (asked == 0 && rp.status == PP_FOUND) {
			s->nrefused++;
			session_log(s, to, "reject", "upstream-cached", rp.text);
			/* the upstream's word, not the client's error */
			session_reply(s, "%s", rp.text);
			return;
		}
		if (null)
			v = V_PASS;
		else if (v == V_ASK)
			v = policy_greylist_answer(s->cfg, asked == -1 ? -1 :
			    rp.status, &reply);
	}
	if (v != V_PASS && v != V_WHITELIST) {
		s->nrefused++;
		session_log(s, to, policy_action(v),
		    v == V_RELAY_DENIED ? "relay" : v == V_REJECT ? "policy" :
		    v == V_GREYLIST ? "new" : "store-unavailable", NULL);
		/* a deferral is not the client's error */
		if (v == V_GREYLIST || v == V_TEMPFAIL)
			session_reply(s, "%s", reply);
		else
			error(s, reply);
		return;
	}
	for (ncap = 0; ncap < s->nrcpt; ncap++)
		if (strcasecmp(s->rcpts[ncap], cur_rcpt.addr) == 0) {
			/* the same recipient twice is delivered once */
			session_reply(s, "250 2.1.5 OK");
			return;
		}
	if (s->nrcpt == s->rcptcap) {
		ncap = s->rcptcap ? s->rcptcap * 2 : 8;
		if ((nr = reallocarray(s->rcpts, ncap, sizeof(*nr))) == NULL) {
			session_reply(s, "452 4.3.1 Insufficient system "
			    "storage");
			return;
		}
		s->rcpts = nr;
		if ((nn = reallocarray(s->rcpt_null, ncap, 1)) == NULL) {
			session_reply(s, "452 4.3.1 Insufficient system "
			    "storage");
			return;
		}
		s->rcpt_null = nn;
		if ((nr = reallocarray(s->rcpt_params, ncap,
		    sizeof(*nr))) == NULL) {
			session_reply(s, "452 4.3.1 Insufficient system "
			    "storage");
			return;
		}
		s->rcpt_params = nr;
		s->rcptcap = ncap;
	}
	s->rcpt_null[s->nrcpt] = (unsigned char)null;
	if ((s->rcpts[s->nrcpt] = strdup(cur_rcpt.addr)) == NULL) {
		session_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	if ((s->rcpt_params[s->nrcpt] = strdup(cur_rcpt_params)) == NULL) {
		free(s->rcpts[s->nrcpt]);
		session_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	s->nrcpt++;
	session_reply(s, "250 2.1.5 OK");
	session_enter_state(s, S_RCPT);
}

static void
do_data(struct session *s, const char *args)
{
	(void)args;
	transcript_reset(&s->tx);
	smtp_data_init(&s->ds, (size_t)s->cfg->max_text_line,
	    (size_t)s->cfg->max_message_size);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_enter_state(s, S_DATA);
}

static void
do_rset(struct session *s, const char *args)
{
	(void)args;
	reset_transaction(s);
	session_reply(s, "250 2.0.0 OK");
}

static void
do_noop(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "250 2.0.0 OK");
}

static void
do_vrfy(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "252 2.5.0 Cannot VRFY user");
}

static void
do_quit(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "221 2.0.0 %s closing connection",
	    s->cfg->servername);
	session_close(s);
}

/*
 * check_starttls - offered after EHLO, outside a transaction, once, and
 * only when a certificate is loaded (else not implemented, as before).
 */
static int
check_starttls(struct session *s, const char *args)
{
	if (s->tls_ctx == NULL) {
		error(s, "502 5.5.1 Command not implemented");
		return 0;
	}
	if (s->tls) {
		error(s, "503 5.5.1 Error: TLS already active");
		return 0;
	}
	if (!check_noargs(s, args))
		return 0;
	if (s->state != S_HELO || !s->esmtp) {
		error(s, s->state == S_CONNECTED || !s->esmtp ?
		    "503 5.5.1 Error: send EHLO first" :
		    "503 5.5.1 Error: MAIL transaction in progress");
		return 0;
	}
	return 1;
}

/*
 * do_starttls - any octet behind STARTTLS before the handshake would be
 * read as if it came over TLS (CVE-2011-0411): the session ends with
 * 554 rather than start TLS.  Else 220, and session_run makes the
 * handshake once the reply is out.
 */
static void
do_starttls(struct session *s, const char *args)
{
	(void)args;
	if (linebuf_pending(&s->in) > 0 || netio_ready(&s->io)) {
		session_log_conn(s, "protocol-error", "starttls-pipelining");
		session_reply(s, "554 5.5.1 Error: command pipelined after "
		    "STARTTLS");
		session_close(s);
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	s->starttls = 1;
}

static void
do_notimpl(struct session *s, const char *args)
{
	(void)args;
	error(s, "502 5.5.1 Command not implemented");
}

/* bad_state - a command in the wrong place gets a reply that says why */
static void
bad_state(struct session *s, const struct smtp_cmd *c)
{
	switch (c->id) {
	case CMD_MAIL:
		error(s, s->state == S_CONNECTED ?
		    "503 5.5.1 Error: send HELO/EHLO first" :
		    "503 5.5.1 Error: nested MAIL command");
		break;
	case CMD_RCPT:
		error(s, "503 5.5.1 Error: need MAIL command");
		break;
	case CMD_DATA:
		if (s->state == S_MAIL && s->nrefused > 0)
			error(s, "554 5.5.1 No valid recipients");
		else
			error(s, "503 5.5.1 Error: need RCPT command");
		break;
	default:
		error(s, "503 5.5.1 Bad sequence of commands");
		break;
	}
}

/* session_command - one command line, without its CRLF */
static void
session_command(struct session *s, char *line)
{
	const struct smtp_cmd	*c = NULL;
	const char		*verb;
	char			*args;
	size_t			 i;

	log_debug("session=%s <<< %s", s->id, line);
	if ((verb = smtp_verb(line, &args)) != NULL) {
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcasecmp(verb, cmds[i].verb) == 0) {
				c = &cmds[i];
				break;
			}
	}
	if (c == NULL) {
		error(s, "500 5.5.2 Command unrecognized");
		return;
	}
	(void)strlcpy(s->verb, verb, sizeof(s->verb));
	if (!(c->states & s->state)) {
		bad_state(s, c);
		return;
	}
	if (c->check != NULL && !c->check(s, args))
		return;
	c->proceed(s, args);
}

/*
 * note_refusal - upstream refused recipient i: keep the first line of a
 * 5xx (a 4xx is not remembered: the retry asks the upstream again)
 */
static void
note_refusal(void *arg, size_t i, const struct up_reply *r)
{
	struct session	*s = arg;
	struct refusal	*nr;
	size_t		 n;

	if (r->code < 500)
		return;

	if ((nr = reallocarray(s->refused, s->nrefusal + 1,
	    sizeof(*nr))) == NULL)
		return;		/* not cached: upstream will say it again */
	s->refused = nr;
	nr = &s->refused[s->nrefusal++];
	nr->rcpt = i;
	for (n = 0; n < sizeof(nr->text) - 1 && n < r->len &&
	    r->text[n] != '\r' && r->text[n] != '\n'; n++)
		nr->text[n] = r->text[n];
	nr->text[n] = '\0';
	if (n > 3)
		nr->text[3] = ' ';	/* "550-..." of a multi-line reply */
}

/*
 * remember_refusals - after a temporary answer (a partial refusal, an
 * upstream that gave up during the RCPTs), the recipients refused with
 * 5xx get upstream's reply at RCPT for refusal_expire, so that the
 * retry delivers to the others (SPEC 3.4).
 */
static void
remember_refusals(struct session *s)
{
	struct pp_response	rp;
	size_t			i;

	for (i = 0; i < s->nrefusal; i++)
		if (session_ask(s, PP_REPLY_PUT, s->rcpts[s->refused[i].rcpt],
		    s->refused[i].text, &rp) == -1 || rp.status != PP_OK)
			log_warnx("session=%s cannot remember the refusal of "
			    "<%s>", s->id, s->rcpts[s->refused[i].rcpt]);
}

/*
 * client_alive - right before the final dot goes upstream: has the
 * client closed or reset its connection?  A client that half-closed
 * after sending more (a pipelined QUIT) is still there to read.
 */
static int
client_alive(void *arg)
{
	struct session	*s = arg;
	struct pollfd	 pfd;
	int		 n, pending = 0;

	pfd.fd = s->fd;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	do {
		n = poll(&pfd, 1, 0);
	} while (n == -1 && errno == EINTR);
	if (n <= 0)
		return 1;
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
		return 0;
	if (!(pfd.revents & POLLRDHUP))
		return 1;
	if (ioctl(s->fd, FIONREAD, &pending) == -1)
		pending = 0;
	return pending > 0 || linebuf_pending(&s->in) > 0;
}

/*
 * answer_delivery - the client's answer to its end of data from the
 * replay's result, logged and sent at once (the QUIT upstream comes
 * after).  A temporary answer keeps the upstream's 5xx refusals.
 */
static void
answer_delivery(void *arg, const struct up_result *res)
{
	struct session	*s = arg;
	struct up_reply	 own;
	const struct up_reply *ans = &res->reply;
	const char	*to = s->tolist;

	if (s->answered)
		return;
	s->answered = 1;
	s->ci_used = res->client_info;
	switch (res->status) {
	case UP_DELIVERED:
		s->messages++;
		session_log(s, to, "pass", "delivered", res->reply.text);
		break;
	case UP_REJECTED:
		session_log(s, to, res->reply.code >= 500 ? "reject" :
		    "tempfail", "upstream", res->reply.text);
		break;
	case UP_PARTIAL:
		session_log(s, to, "tempfail", "partial", res->reply.text);
		upreply_set(&own, "451 4.3.0 Try again later");
		ans = &own;
		break;
	case UP_CLIENT_GONE:
		session_log(s, to, "tempfail", "client-gone", NULL);
		s->dead = 1;
		break;
	case UP_UNAVAILABLE:
	default:
		log_warnx("session=%s upstream %s port %d: %s", s->id,
		    s->cfg->smtp_ip, s->cfg->smtp_port, res->why);
		session_log(s, to, "tempfail", "upstream-unavailable",
		    NULL);
		/* our own words: whatever upstream said is not a reply */
		upreply_set(&own, "451 4.4.1 Upstream server unavailable, "
		    "try again later");
		ans = &own;
		break;
	}
	if (ans->code >= 400 && ans->code < 500)
		remember_refusals(s);
	if (res->status == UP_CLIENT_GONE)
		return;
	/* a complete reply, made so by upreply: relayed as it is */
	out_append(s, ans->text, ans->len);
	if (s->fd != -1)
		(void)flush(s);
}

/* session_ehlo_seen - a replay's EHLO reply teaches what upstream takes */
static void
session_ehlo_seen(void *arg, const char *text)
{
	struct session	*s = arg;

	ehlo_caps_learn(s->tx.dir, text, s->cfg->upstream_ehlo_refresh);
}

/* session_client_fill - the client as the upstream is told of it */
void
session_client_fill(struct session *s)
{
	if (s->ci.addr[0] == '\0') {
		(void)strlcpy(s->ci.addr, s->client_str, sizeof(s->ci.addr));
		s->ci.v6 = s->client.family == AF_INET6;
		xclient_info_from_fd(&s->ci, s->fd);
		s->ci.ident = s->id;
	}
	s->ci.helo = s->helo;
	s->ci.esmtp = s->esmtp;
}

static void
session_client_info(struct session *s, struct envelope *env)
{
	session_client_fill(s);
	env->client = &s->ci;
}

/* data_done - the end of the data: check, replay, answer */
static void
data_done(struct session *s)
{
	struct envelope	 env;
	struct up_result res;
	const char	*reply = NULL, *reason = NULL, *to;
	char		 tolist[1024];
	size_t		 i, off = 0;

	if (s->ds.flags & DS_BARE) {
		reply = "554 5.6.0 Message contains bare CR or LF";
		reason = "bare-cr-lf";
	} else if (s->ds.flags & DS_NUL) {
		reply = "554 5.6.0 Message contains NUL character";
		reason = "nul";
	} else if (s->ds.flags & DS_TOOBIG) {
		reply = "552 5.3.4 Message size exceeds fixed limit";
		reason = "too-big";
	} else if (s->ds.flags & DS_LONGLINE) {
		reply = "554 5.6.0 Line too long";
		reason = "line-too-long";
	} else if (s->tx.error) {
		reply = "452 4.3.1 Insufficient system storage";
		reason = "spool-error";
		errno = s->tx.error;
		log_warn("session=%s spill file", s->id);
	}
	tolist[0] = '\0';
	for (i = 0; i < s->nrcpt && off < sizeof(tolist) - 1; i++) {
		off += (size_t)snprintf(tolist + off, sizeof(tolist) - off,
		    "%s<%s>", i ? "," : "", s->rcpts[i]);
		if (off >= sizeof(tolist))
			off = sizeof(tolist) - 1;
	}
	to = tolist;
	if (reply != NULL) {
		session_log(s, to, reason[0] == 's' ? "tempfail" :
		    "protocol-error", reason, NULL);
		session_reply(s, "%s", reply);
		reset_transaction(s);
		return;
	}

	if (s->abort != NULL && *s->abort) {
		/* stopping: no replay starts that a shutdown could cut */
		session_log(s, to, "tempfail", "shutdown", NULL);
		session_reply(s, "421 4.3.2 Service shutting down");
		session_close(s);
		reset_transaction(s);
		return;
	}
	memset(&env, 0, sizeof(env));
	env.helo_line = s->helo_line;
	env.helo = s->helo;
	env.esmtp = s->esmtp;
	env.from = s->mail.path.addr;
	env.size = s->mail.size;
	env.body = s->mail.body;
	env.rcpts = s->rcpts;
	env.nrcpt = s->nrcpt;
	env.refused = note_refusal;
	env.alive = s->fd != -1 ? client_alive : NULL;
	env.answer = answer_delivery;
	env.arg = s;
	session_client_info(s, &env);
	env.ehlo_seen = session_ehlo_seen;
	env.mail_params = s->mail.params;
	env.rcpt_params = s->rcpt_params;
	env.smtputf8 = s->mail.smtputf8;
	env.eightbit = (s->ds.flags & DS_8BIT) != 0;
	s->nrefusal = 0;
	s->answered = 0;
	s->tolist = to;
	if (s->replaying != NULL)
		s->replaying(1);
	s->deliver(s->cfg, &env, &s->tx, &res);
	if (!s->answered)
		answer_delivery(s, &res);
	/* stopping meanwhile: the mark stays while the worker winds up */
	if (s->replaying != NULL && !(s->abort != NULL && *s->abort))
		s->replaying(0);
	s->tolist = NULL;
	s->ci_used = NULL;
	reset_transaction(s);
}

/*
 * pipelining_ok - with no PIPELINING agreed (before EHLO, after HELO),
 * nothing may wait behind a command but a QUIT (or the start of one:
 * the rest may be in the next segment; not behind DATA, where it would
 * be data sent before the 354).  What the socket holds is only
 * peeked at: the line about to be executed lives in the line buffer,
 * and reading into it here would overwrite it.
 */
static int
pipelining_ok(struct session *s, int data)
{
	static const char quit[] = "QUIT\r\n";
	char		 peek[sizeof(quit)];
	size_t		 n = linebuf_pending(&s->in);
	const char	*p = linebuf_data(&s->in);
	ssize_t		 k;

	if (s->fd != -1 && n == 0) {
		k = netio_peek(&s->io, peek, sizeof(peek));
		if (k > 0) {
			n = (size_t)k;
			p = peek;
		}
	}
	if (n == 0)
		return 1;
	if (data && n < sizeof(quit) - 1)
		return 0;
	return n <= sizeof(quit) - 1 && strncasecmp(p, quit, n) == 0;
}

static void
pipelining_violation(struct session *s)
{
	session_log_conn(s, "protocol-error", "pipelining");
	session_reply(s, "503 5.5.0 Improper use of pipelining");
	session_close(s);
}

/* session_greeting - the full greeting */
void
session_greeting(struct session *s)
{
	session_reply(s, "220 %s ESMTP %s", s->cfg->servername,
	    s->cfg->serverid);
}

/*
 * session_input - process every complete command and all message data
 * that are buffered, queueing the replies.  Returns when more input is
 * needed or the session is closing.
 */
void
session_input(struct session *s)
{
	char	*line;
	size_t	 len, used;
	int	 r, wasdata;

	while (s->state != S_QUIT && !s->dead && !s->starttls) {
		if (s->state == S_DATA) {
			if (linebuf_pending(&s->in) == 0)
				return;
			r = smtp_data_scan(&s->ds, linebuf_data(&s->in),
			    linebuf_pending(&s->in), &used, transcript_append,
			    &s->tx);
			linebuf_consume(&s->in, used);
			if (r == 0 || r == -1)
				continue;	/* -1: answered at the end */
			if (!s->esmtp && !pipelining_ok(s, 0)) {
				pipelining_violation(s);
				return;
			}
			data_done(s);
			continue;
		}
		switch (linebuf_getline(&s->in,
		    (size_t)s->cfg->max_command_line, &line, &len)) {
		case LB_NEED:
			return;
		case LB_TOOLONG:
			error(s, "500 5.5.2 Line too long");
			break;
		case LB_BARE:
			session_log_conn(s, "protocol-error", "bare-cr-lf");
			session_reply(s, "500 5.5.2 Bad line ending");
			session_close(s);
			return;
		case LB_NUL:
			session_log_conn(s, "protocol-error", "nul");
			session_reply(s, "500 5.5.2 NUL character in command");
			session_close(s);
			return;
		case LB_LINE:
			wasdata = len >= 4 && strncasecmp(line, "DATA", 4) == 0;
			if ((!s->esmtp || wasdata) && !pipelining_ok(s,
			    wasdata)) {
				pipelining_violation(s);
				return;
			}
			session_command(s, line);
			break;
		}
		if (s->errors >= s->cfg->max_errors && s->state != S_QUIT) {
			session_log_conn(s, "protocol-error",
			    "too-many-errors");
			session_reply(s, "421 4.7.0 Too many errors");
			session_close(s);
		}
	}
}

int
session_init(struct session *s, const struct config *cfg, int fd,
    const struct ipaddr *client)
{
	size_t	lbsize;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->fd = fd;
	s->client = *client;
	ipaddr_ntop(client, s->client_str, sizeof(s->client_str));
	snprintf(s->id, sizeof(s->id), "%08x%08x", arc4random(),
	    arc4random());
	s->state = S_CONNECTED;
	s->deliver = upstream_deliver;
	s->caps = ehlo_caps_current;
	s->verify = verify_rcpt;
	s->started = time(NULL);
	lbsize = (size_t)cfg->max_command_line * 2;
	if (lbsize < LB_SIZE)
		lbsize = LB_SIZE;
	if (linebuf_init(&s->in, lbsize, 0) == -1)
		return -1;
	netio_init(&s->io, fd, cfg->inactivity_timeout);
	transcript_init(&s->tx, (size_t)cfg->spill_threshold,
	    cfg->spool_dir);
	smtp_data_init(&s->ds, (size_t)cfg->max_text_line,
	    (size_t)cfg->max_message_size);
	return 0;
}

void
session_free(struct session *s)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i]);
		free(s->rcpt_params[i]);
	}
	free(s->rcpts);
	free(s->rcpt_params);
	free(s->rcpt_null);
	free(s->refused);
	free(s->out);
	transcript_free(&s->tx);
	linebuf_free(&s->in);
	netio_close(&s->io);
	s->rcpts = NULL;
	s->rcpt_params = NULL;
	s->rcpt_null = NULL;
	s->refused = NULL;
	s->out = NULL;
}

/* flush - send the queued replies in one write; 0 on success */
static int
flush(struct session *s)
{
	if (s->outlen > 0 && netio_write(&s->io, s->out, s->outlen) == -1) {
		s->outlen = 0;
		s->dead = 1;
		return -1;
	}
	s->outlen = 0;
	return 0;
}

/*
 * read_input - read client bytes, waiting at most seconds and never past
 * session_timeout (even a client that drips bytes).  A blocking read(2)
 * bounded by SO_RCVTIMEO: one system call where poll(2) then read(2)
 * made two; the timeout is set again only when the bound changes.
 * Returns what linebuf_read returned, or -1 with errno ETIMEDOUT when
 * the time is up or ECANCELED when the master stops the worker.
 */
static ssize_t
read_input(struct session *s, int seconds)
{
	time_t	now, end, left;
	ssize_t	n;

	now = time(NULL);
	end = now + seconds;
	if (end > s->started + s->cfg->session_timeout)
		end = s->started + s->cfg->session_timeout;
	for (;;) {
		if (s->abort && *s->abort) {
			errno = ECANCELED;
			return -1;
		}
		if ((left = end - now) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		s->io.timeout = (int)left;
		n = linebuf_fill(&s->in, netio_read, &s->io);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != ETIMEDOUT))
			return n;
		/* a signal, or SO_RCVTIMEO: end is then reached */
		now = time(NULL);
	}
}

/*
 * session_starttls - the handshake after 220, bounded by the inactivity
 * limit (and what is left of session_timeout); then the session starts
 * over, as if just greeted (RFC 3207 4.2): EHLO is needed again.  A
 * failed handshake is logged once, with the reason, and ends the
 * session: 0 on success, -1 then.
 */
static int
session_starttls(struct session *s)
{
	char	err[256], tls[128];
	time_t	left;

	s->starttls = 0;
	left = s->started + s->cfg->session_timeout - time(NULL);
	if (left > s->cfg->inactivity_timeout)
		left = s->cfg->inactivity_timeout;
	if (left < 1 || netio_starttls(&s->io, s->tls_ctx, (int)left, err,
	    sizeof(err)) == -1) {
		if (left < 1)
			(void)strlcpy(err, "session timeout", sizeof(err));
		/* err is OpenSSL's or strerror's words, not the client's */
		log_info("session=%s client=%s helo=%s action=protocol-error "
		    "reason=tls-handshake error=\"%s\" tls=none", s->id,
		    s->client_str, s->helo[0] ? s->helo : "-", err);
		return -1;
	}
	s->tls = 1;
	log_debug("session=%s TLS on: %s", s->id,
	    netio_tls_name(&s->io, tls, sizeof(tls)));
	reset_transaction(s);
	s->helo[0] = '\0';
	s->helo_line[0] = '\0';
	s->esmtp = 0;
	linebuf_reset(&s->in);
	session_enter_state(s, S_CONNECTED);
	return 0;
}

/* session_run - the whole session on a connected socket */
void
session_run(struct session *s)
{
	ssize_t	n;

	if (s->cfg->greet_delay > 0) {
		session_reply(s, "220-%s ESMTP", s->cfg->servername);
		if (flush(s) == -1)
			return;
		n = read_input(s, s->cfg->greet_delay);
		if (n == -1 && errno == ECANCELED)
			goto shutdown;
		if (n > 0) {
			session_log_conn(s, "early-talker",
			    "talked-before-greeting");
			session_reply(s, "554 5.5.1 Protocol error: "
			    "talked before greeting");
			(void)flush(s);
		}
		if (n != -1 || errno != ETIMEDOUT)
			return;		/* talked, left, or failed */
	}
	session_greeting(s);
	for (;;) {
		session_input(s);
		if (flush(s) == -1 || s->state == S_QUIT || s->dead)
			return;
		if (s->starttls && session_starttls(s) == -1)
			return;
		if ((n = read_input(s, s->cfg->inactivity_timeout)) > 0)
			continue;
		if (n == -1 && errno == ECANCELED)
			goto shutdown;
		if (n == -1 && errno == ETIMEDOUT) {
			session_log_conn(s, "tempfail", "timeout");
			session_reply(s, "421 4.4.2 Timeout");
			(void)flush(s);
		} else if (s->state & (S_MAIL | S_RCPT | S_DATA))
			session_log_conn(s, "tempfail", "lost-connection");
		return;
	}
shutdown:
	session_log_conn(s, "tempfail", "shutdown");
	session_reply(s, "421 4.3.2 Service shutting down");
	(void)flush(s);
}
