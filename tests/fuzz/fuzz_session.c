/*
 * fuzz_session - the SMTP state machine fed an arbitrary client byte
 * stream in arbitrary chunks, without sockets (as tests/unit/
 * test_session.c drives it), against a fake upstream.  Invariants:
 *   - every reply line queued for the client is three digits, a space
 *     or a hyphen, text without CR or LF, and CRLF; a multi-line reply
 *     keeps its code;
 *   - the fake upstream is called only after a 354 and never with zero
 *     recipients; what it is given never contains a bare CR, a bare LF,
 *     a NUL or CRLF.CRLF, nor more than max_message_size octets;
 *   - nothing is answered after the session entered S_QUIT;
 *   - memory stays bounded and is all freed (LeakSanitizer).
 *
 * Input: byte 0 chooses the client (bit 0: 127.0.0.1 may relay, else
 * 192.0.2.1 may only send to allowed_domains), the configuration (bit
 * 1: policy accept or reject), the upstream's answer (bits 2-3) and
 * seeds the chunk sizes (bits 4-7); the rest is what the client sends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "ehlo_caps.h"

#define FAKE_CAPS_MORE (CAP_DSN | CAP_SMTPUTF8)

/* the upstream takes 8BITMIME (and, for these tests, DSN and SMTPUTF8) */
static unsigned int
fake_caps(const struct config *c, const char *dir)
{
	(void)c;
	(void)dir;
	return CAP_KNOWN | CAP_8BITMIME | FAKE_CAPS_MORE;
}

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct config	*cfgs[2];

static struct {
	char	*all;		/* every reply queued so far */
	size_t	 len, cap;
	int	 mode;		/* upstream answer, 0..3 */
	int	 calls;
} st;

static void
all_append(const char *p, size_t n)
{
	if (st.len + n > st.cap) {
		st.cap = (st.len + n) * 2;
		if ((st.all = realloc(st.all, st.cap)) == NULL)
			abort();
	}
	memcpy(st.all + st.len, p, n);
	st.len += n;
}

/* last_code - the code of the last complete reply line in p[0..n) */
static int
last_code(const char *p, size_t n)
{
	size_t	i;

	if (n < 2)
		return -1;
	for (i = n - 2; i > 0; i--)
		if (p[i - 1] == '\n')
			break;
	if (n - i < 5)
		return -1;
	return (p[i] - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0');
}

struct body {
	char	*p;
	size_t	 len, cap;
};

static int
body_collect(void *arg, const char *p, size_t n)
{
	struct body	*b = arg;

	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static struct session	*cur;

static void
fake_deliver(const struct config *cfg, const struct envelope *env,
    struct transcript *tx, struct up_result *res)
{
	struct body	 b = { 0 };
	struct up_reply	 r;
	size_t		 i;
	const char	*text;

	st.calls++;
	/* only after a 354: the session's own queue ends with it */
	if (cur->outlen > 0) {
		if (last_code(cur->out, cur->outlen) != 354)
			abort();
	} else if (last_code(st.all, st.len) != 354)
		abort();
	if (env->nrcpt == 0 || env->rcpts == NULL || env->from == NULL ||
	    env->helo == NULL || env->helo[0] == '\0')
		abort();
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i] == NULL || env->rcpts[i][0] == '\0')
			abort();
	if (transcript_replay(tx, body_collect, &b) == -1)
		abort();
	if (b.len > (size_t)cfg->max_message_size)
		abort();
	for (i = 0; i < b.len; i++) {
		if (b.p[i] == '\0')
			abort();
		if (b.p[i] == '\n' && (i == 0 || b.p[i - 1] != '\r'))
			abort();
		if (b.p[i] == '\r' && (i + 1 == b.len || b.p[i + 1] != '\n'))
			abort();
		if (i + 5 <= b.len && memcmp(b.p + i, "\r\n.\r\n", 5) == 0)
			abort();
	}
	if (b.len >= 3 && memcmp(b.p, ".\r\n", 3) == 0)
		abort();
	free(b.p);

	memset(res, 0, sizeof(*res));
	res->why = "fake";
	switch (st.mode) {
	case 0:
		res->status = UP_DELIVERED;
		text = "250 2.0.0 Ok: queued as FAKE\r\n";
		break;
	case 1:
		res->status = UP_REJECTED;
		text = "550-5.7.1 first line\r\n550 5.7.1 Rejected\r\n";
		break;
	case 2:
		res->status = UP_PARTIAL;
		text = "451 4.3.0 partial\r\n";
		memset(&r, 0, sizeof(r));
		r.code = 550;
		r.len = strlcpy(r.text, "550-5.1.1 no such user\r\n"
		    "550 5.1.1 really\r\n", sizeof(r.text));
		for (i = 0; i < env->nrcpt; i += 2)
			if (env->refused != NULL)
				env->refused(env->arg, i, &r);
		break;
	default:
		res->status = UP_UNAVAILABLE;
		text = "";
		break;
	}
	res->reply.len = strlcpy(res->reply.text, text,
	    sizeof(res->reply.text));
	res->reply.code = atoi(text);
}

/* check_replies - the reply syntax over p[0..n), whole lines only */
static void
check_replies(const char *p, size_t n)
{
	size_t	i = 0, j;
	int	cont = -1, code;

	while (i < n) {
		if (n - i < 6)
			abort();
		for (j = 0; j < 3; j++)
			if (p[i + j] < '0' || p[i + j] > '9')
				abort();
		if (p[i] < '2' || p[i] > '5')
			abort();
		code = (p[i] - '0') * 100 + (p[i + 1] - '0') * 10 +
		    (p[i + 2] - '0');
		if (cont != -1 && code != cont)
			abort();
		if (p[i + 3] != ' ' && p[i + 3] != '-')
			abort();
		cont = p[i + 3] == '-' ? code : -1;
		for (j = i + 4; j < n && p[j] != '\r' && p[j] != '\n'; j++)
			if (p[j] == '\0')
				abort();
		if (j + 1 >= n || p[j] != '\r' || p[j + 1] != '\n')
			abort();
		i = j + 2;
	}
	if (cont != -1)
		abort();	/* a multi-line reply left unfinished */
}

static struct config *
mkcfg(const char *extra)
{
	char		 path[128], err[1024];
	struct config	*c;
	FILE		*f;

	snprintf(path, sizeof(path), "/tmp/greygate-fuzz-session.%ld.conf",
	    (long)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "servername = \"fuzz.example\"\nserverid = \"fuzzid\"\n"
	    "spool_dir = \"/tmp\"\nspill_threshold = 4096\n"
	    "max_message_size = 20000\nmax_text_line = 1000\n"
	    "max_command_line = 512\nmax_recipients = 5\nmax_errors = 8\n"
	    "allowed_domains = {\"example.net\", \".example.org\"}\n%s\n",
	    extra);
	fclose(f);
	c = config_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	return c;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* syslog, with nothing let through: formatting is the callers' */
	log_init(0, LOG_MAIL);
	setlogmask(LOG_MASK(LOG_EMERG));
	cfgs[0] = mkcfg("policy = \"accept\"");
	cfgs[1] = mkcfg("policy = \"reject\"");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session	 s;
	struct ipaddr	 client;
	size_t		 off, k, qlen;
	unsigned int	 seed;

	if (size < 1)
		return 0;
	if (ipaddr_parse(data[0] & 1 ? "127.0.0.1" : "192.0.2.1",
	    &client) == -1)
		abort();
	if (session_init(&s, cfgs[(data[0] >> 1) & 1], -1, &client) == -1)
		abort();
	s.deliver = fake_deliver;
	s.caps = fake_caps;
	cur = &s;
	st.len = 0;
	st.calls = 0;
	st.mode = (data[0] >> 2) & 3;
	seed = data[0] >> 4;
	session_greeting(&s);

	for (off = 1; off < size && s.state != S_QUIT && !s.dead; off += k) {
		if (seed == 0)
			k = 512;
		else {
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 16) % 64 + 1;
		}
		if (k > size - off)
			k = size - off;
		if (linebuf_feed(&s.in, data + off, k) == -1)
			abort();	/* the session must drain its input */
		session_input(&s);
		if (s.outlen > 0) {
			check_replies(s.out, s.outlen);
			all_append(s.out, s.outlen);
			s.outlen = 0;
		}
	}
	/* nothing more once closed */
	if (s.state == S_QUIT) {
		qlen = st.len;
		session_input(&s);
		if (s.outlen != 0 || st.len != qlen)
			abort();
	}
	cur = NULL;
	session_free(&s);
	return 0;
}
