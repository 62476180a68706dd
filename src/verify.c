/*
 * verify - asks the upstream, at RCPT, whether it would take a
 * recipient, as Postfix's reject_unverified_recipient does: a short
 * probe of its own (EHLO, with XCLIENT/XFORWARD for the client, MAIL
 * FROM:<>, RCPT TO, RSET, QUIT; never DATA), the answer cached in the
 * store by the policy process: a 2xx for verify_positive_expire, an
 * address's 5xx (5.1.x) for verify_negative_expire.  A 5xx reaches the
 * client at once; a 4xx, a timeout or an unreachable upstream verifies
 * nothing, and greylisting and the replay decide as before.  Probes
 * never touch a triplet: they are no greylisting pass.  While one
 * worker probes a recipient, the others are told so by the policy
 * process and do not probe it too.
 */
#include <ctype.h>
#include <string.h>

#include "ehlo_caps.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "verify.h"

/* first_line - the first line of a reply, "550-" made "550 " */
static void
first_line(const char *text, char *out, size_t size)
{
	size_t	n;

	for (n = 0; n + 1 < size && text[n] != '\0' && text[n] != '\r' &&
	    text[n] != '\n'; n++)
		out[n] = isprint((unsigned char)text[n]) ||
		    (unsigned char)text[n] >= 0x80 ? text[n] : '?';
	out[n] = '\0';
	if (n > 3)
		out[3] = ' ';
}

/*
 * verify_cacheable - is a probe's 5xx about the address (5.1.x, or no
 * enhanced code), so that it holds for every client?  A refusal of the
 * client (5.7.1 after XCLIENT, say) reaches this client only.
 */
int
verify_cacheable(const char *reply)
{
	if (reply[0] == '2')
		return 1;
	if (reply[0] != '5' || strlen(reply) < 4)
		return 0;
	if (!isdigit((unsigned char)reply[4]))
		return 1;
	return strncmp(reply + 4, "5.1.", 4) == 0;
}

/* ask - one question to the policy process; -1: no answer */
static int
ask(struct session *s, enum pp_op op, const char *rcpt, const char *text,
    struct pp_response *rp)
{
	struct pp_request	rq;

	if (s->pp == NULL || pp_request_init(&rq, op, &s->client, "", rcpt,
	    text) == -1)
		return -1;
	return pp_ask(s->pp, &rq, rp);
}

/*
 * verify_rcpt - the verification of rcpt for this session (utf8: the
 * transaction is SMTPUTF8).  On VERIFY_REFUSED, reply holds the line
 * for the client.  *how says where the answer came from, for the log:
 * "probe" or "cached".
 */
enum verify_result
verify_rcpt(struct session *s, const char *rcpt, int utf8, char *reply,
    size_t size, const char **how)
{
	struct pp_response	 rp;
	struct up_probe		 pr;
	char			 line[STORE_REPLY_MAX + 1];

	*how = "none";
	if (!s->cfg->verify_recipients || !policy_domain_ours(s->cfg, rcpt))
		return VERIFY_SKIP;
	if (ask(s, PP_VERIFY_GET, rcpt, NULL, &rp) == -1)
		return VERIFY_SKIP;
	if (rp.status == PP_FOUND) {
		*how = "cached";
		if (rp.text[0] != '5')
			return VERIFY_OK;
		(void)strlcpy(reply, rp.text, size);
		return VERIFY_REFUSED;
	}
	if (rp.status != PP_NOTFOUND)
		return VERIFY_SKIP;	/* being probed, or no store */

	*how = "probe";
	session_client_fill(s);
	upstream_probe(s->cfg, &s->ci, s->helo[0] ? s->helo :
	    s->cfg->servername, rcpt, utf8, &pr);
	if (pr.reached)
		ehlo_caps_learn(s->tx.dir, pr.ehlo,
		    s->cfg->upstream_ehlo_refresh);
	line[0] = '\0';
	if (pr.code / 100 == 2 || pr.code / 100 == 5)
		first_line(pr.reply, line, sizeof(line));
	log_info("session=%s verify to=<%s> upstream=\"%s\" client_info=%s%s%s",
	    s->id, rcpt, line[0] ? line : "-", pr.client_info,
	    pr.code == 0 ? " why=" : "", pr.code == 0 && pr.why ? pr.why : "");
	/* the answer frees the claim; only what holds for all is kept */
	(void)ask(s, PP_VERIFY_PUT, rcpt, verify_cacheable(line) ? line : "",
	    &rp);
	if (pr.code / 100 == 2)
		return VERIFY_OK;
	if (pr.code / 100 != 5)
		return VERIFY_SKIP;
	(void)strlcpy(reply, line, size);
	return VERIFY_REFUSED;
}
