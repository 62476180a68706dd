/*
 * fuzz_smtp_parse - the command parsers and the greylist key
 * normalisers on one command line (what the line reader can deliver:
 * no NUL, no CR, no LF).  Checks, beyond memory safety:
 *   - smtp_verb returns 1..8 letters and args inside the line;
 *   - a path accepted by smtp_parse_mail/smtp_parse_rcpt is at most
 *     SMTP_PATH_MAX octets, its domain offset points after an '@', and
 *     "FROM:<addr>" / "TO:<addr>" parse again to the same path (and the
 *     same SIZE and BODY);
 *   - an accepted HELO argument is a domain-like name or a literal;
 *   - greylist_norm_sender and greylist_norm_rcpt write within any
 *     buffer, never lengthen the key and leave no upper case; the
 *     recipient key is a fixed point of its own normalisation.
 * The sender key is not asserted to be a fixed point: it is not one,
 * by design, for wrappers nested more than four deep (greylist.c
 * unwraps "a few rounds"): "prvs=1=prvs=2=prvs=3=prvs=4=prvs=5=u@x"
 * gives "prvs=5=u@x", which gives "u@x".
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greylist.h"
#include "smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define LINE_MAX_FZ	1024

static void
check_path(const struct smtp_path *p)
{
	size_t	len = strnlen(p->addr, sizeof(p->addr));

	if (len > SMTP_PATH_MAX)
		abort();
	if (p->domain != 0 && (p->domain >= len || p->addr[p->domain - 1] !=
	    '@'))
		abort();
}

static void
check_norm(const char *in)
{
	char	 key[GREYLIST_ADDR_MAX], key2[GREYLIST_ADDR_MAX], *small;
	size_t	 inlen = strlen(in), i, n;

	if (greylist_norm_sender(in, key, sizeof(key)) == 0) {
		if (strlen(key) > inlen)
			abort();
		for (i = 0; key[i] != '\0'; i++)
			if (isupper((unsigned char)key[i]))
				abort();
	}
	if (greylist_norm_rcpt(in, key, sizeof(key)) == 0) {
		if (strlen(key) != inlen)
			abort();
		if (greylist_norm_rcpt(key, key2, sizeof(key2)) != 0 ||
		    strcmp(key, key2) != 0)
			abort();
	}
	/* buffers of every small size: exact heap blocks for ASan */
	for (n = 0; n < 8 && n <= inlen + 1; n++) {
		if ((small = malloc(n ? n : 1)) == NULL)
			abort();
		if (greylist_norm_sender(in, small, n) == 0 &&
		    strlen(small) >= n)
			abort();
		if (greylist_norm_rcpt(in, small, n) == 0 && strlen(small) >= n)
			abort();
		free(small);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 line[LINE_MAX_FZ + 1], copy[LINE_MAX_FZ + 1];
	char		 again[SMTP_PATH_MAX + 64], *args;
	const char	*verb;
	struct smtp_mail m, m2;
	struct smtp_path p, p2;
	size_t		 n, i;

	n = size < LINE_MAX_FZ ? size : LINE_MAX_FZ;
	memcpy(line, data, n);
	line[n] = '\0';
	for (i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	n = strlen(line);

	memcpy(copy, line, n + 1);
	if ((verb = smtp_verb(copy, &args)) != NULL) {
		if (verb != copy || strlen(verb) < 1 || strlen(verb) > 8)
			abort();
		for (i = 0; verb[i] != '\0'; i++)
			if (!isalpha((unsigned char)verb[i]))
				abort();
		if (args < copy || args > copy + n)
			abort();
	}

	if (smtp_check_helo(line) == 0 && (n == 0 || n > SMTP_DOMAIN_MAX))
		abort();
	(void)smtp_check_domain(line, n);
	(void)smtp_check_mailbox(line);

	if (smtp_parse_mail(line, &m) == SP_OK) {
		check_path(&m.path);
		if (m.size < -1 || (m.body != 0 && m.body != 7 && m.body != 8))
			abort();
		snprintf(again, sizeof(again), "FROM:<%s>", m.path.addr);
		if (m.size != -1)
			snprintf(again + strlen(again), sizeof(again) -
			    strlen(again), " SIZE=%lld", m.size);
		if (m.body != 0)
			snprintf(again + strlen(again), sizeof(again) -
			    strlen(again), " BODY=%s", m.body == 7 ? "7BIT" :
			    "8BITMIME");
		if (smtp_parse_mail(again, &m2) != SP_OK ||
		    strcmp(m.path.addr, m2.path.addr) != 0 ||
		    m.path.domain != m2.path.domain || m.size != m2.size ||
		    m.body != m2.body)
			abort();
		check_norm(m.path.addr);
	}
	if (smtp_parse_rcpt(line, &p) == SP_OK) {
		check_path(&p);
		snprintf(again, sizeof(again), "TO:<%s>", p.addr);
		if (smtp_parse_rcpt(again, &p2) != SP_OK ||
		    strcmp(p.addr, p2.addr) != 0 || p.domain != p2.domain)
			abort();
		check_norm(p.addr);
	}
	check_norm(line);
	return 0;
}
