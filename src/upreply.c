/*
 * upreply - turns what the upstream answered into what the client
 * hears.  A reply is taken line by line as it arrives; the result is
 * always one complete SMTP reply: its first lines and always its final
 * line, each at most UP_REPLY_LINE octets with its CRLF, the whole at
 * most UP_REPLY_MAX (middle lines are dropped, never the last), its text
 * printable US-ASCII.  A line from the upstream is input from the
 * internet: it is checked and cleaned here, where it arrives.  This
 * module does no I/O and must never let a reply reach the client that
 * is not whole.  The answer to the end of data, from all the recipients'
 * replies, is decided here too (upreply_rcpts).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "upreply.h"

void
upreply_init(struct up_reply *r)
{
	r->code = 0;
	r->done = 0;
	r->len = 0;
	r->lines = 0;
	r->dropped = 0;
	r->text[0] = '\0';
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

/* put_line - append line (cut to fit UP_REPLY_LINE), cleaned, and CRLF */
static void
put_line(struct up_reply *r, const char *line, size_t len, int more)
{
	char	*p = r->text + r->len;
	size_t	 i;

	if (len > UP_REPLY_LINE - 2)
		len = UP_REPLY_LINE - 2;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		p[i] = c == '\t' ? ' ' : isprint(c) ? (char)c : '?';
	}
	/* the separator says what follows in what we relay */
	if (len > 3)
		p[3] = more ? '-' : ' ';
	else if (more) {
		p[3] = '-';
		len = 4;
	}
	p[len] = '\r';
	p[len + 1] = '\n';
	r->len += len + 2;
	r->text[r->len] = '\0';
}

/*
 * upreply_add - one line of a reply, without its line end.  1 when it
 * was the final line (r is complete), 0 when more lines must follow, -1
 * when it is not a reply line or changes the code (r is then no reply).
 * A continuation line is kept while room remains for a final line of
 * the longest kind; after that it is dropped.
 */
int
upreply_add(struct up_reply *r, const char *line, size_t len)
{
	int	code, more;

	if (r->done || upstream_parse_line(line, len, &code, &more) == -1 ||
	    (r->lines > 0 && code != r->code))
		return -1;
	r->code = code;
	r->lines++;
	if (more) {
		if (r->len + 2 * UP_REPLY_LINE < sizeof(r->text))
			put_line(r, line, len, 1);
		else
			r->dropped++;
		return 0;
	}
	put_line(r, line, len, 0);
	r->done = 1;
	return 1;
}

/* upreply_set - r becomes the one-line reply text ("DDD text") */
void
upreply_set(struct up_reply *r, const char *text)
{
	upreply_init(r);
	(void)upreply_add(r, text, strlen(text));
}

/*
 * upreply_rcpts - the recipients' replies decide: nok of nrcpt were
 * accepted; first5 and first4 are the first 5xx and 4xx refusals (code
 * 0: none).  Every one refused: the first 5xx when all were 5xx, else
 * the first 4xx (a temporary refusal never becomes a bounce).  Some
 * refused: 451 4.3.0.  The answer goes to *ans unless all were accepted.
 */
enum up_rcpts
upreply_rcpts(size_t nok, size_t nrcpt, const struct up_reply *first5,
    const struct up_reply *first4, struct up_reply *ans)
{
	if (nok == nrcpt)
		return UP_RCPTS_ALL_OK;
	if (nok == 0) {
		if (first4->code != 0)
			*ans = *first4;
		else if (first5->code != 0)
			*ans = *first5;
		else
			upreply_set(ans, "451 4.3.0 Try again later");
		return UP_RCPTS_REFUSED;
	}
	upreply_set(ans, "451 4.3.0 Try again later");
	return UP_RCPTS_PARTIAL;
}
