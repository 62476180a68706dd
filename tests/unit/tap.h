/*
 * tap.h - a minimal TAP producer for the unit tests (automake's
 * tap-driver.sh reads it).  Header-only on purpose: each test is one file.
 */
#ifndef GREYGATE_TAP_H
#define GREYGATE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static void __attribute__((format(printf, 2, 3)))
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
}

#define is_int(got, want, ...) do {					\
	long long g_ = (got), w_ = (want);				\
	ok(g_ == w_, __VA_ARGS__);					\
	if (g_ != w_)							\
		printf("#   got %lld, want %lld\n", g_, w_);		\
} while (0)

#define is_str(got, want, ...) do {					\
	const char *g_ = (got), *w_ = (want);				\
	int same_ = (g_ == NULL && w_ == NULL) ||			\
	    (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);		\
	ok(same_, __VA_ARGS__);						\
	if (!same_)							\
		printf("#   got \"%s\", want \"%s\"\n",		\
		    g_ ? g_ : "(null)", w_ ? w_ : "(null)");		\
} while (0)

/* tap_escape - a byte string made printable for a diagnostic line */
static __attribute__((unused)) void
tap_escape(const char *p, size_t n)
{
	size_t	i;

	if (p == NULL) {
		printf("(null)");
		return;
	}
	printf("\"");
	for (i = 0; i < n && i < 200; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			printf("\\r");
		else if (c == '\n')
			printf("\\n");
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 32 || c > 126)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"%s", n > 200 ? "..." : "");
}

/* is_mem - compare byte strings of known length */
#define is_mem(got, glen, want, wlen, ...) do {				\
	const char *gm_ = (got), *wm_ = (want);				\
	size_t gl_ = (glen), wl_ = (wlen);				\
	int same_ = gl_ == wl_ && (gl_ == 0 ||				\
	    (gm_ != NULL && wm_ != NULL && memcmp(gm_, wm_, gl_) == 0)); \
	ok(same_, __VA_ARGS__);						\
	if (!same_) {							\
		printf("#   got  (%zu) ", gl_);				\
		tap_escape(gm_, gl_);					\
		printf("\n#   want (%zu) ", wl_);			\
		tap_escape(wm_, wl_);					\
		printf("\n");						\
	}								\
} while (0)

/* is_prefix - got starts with want (reply codes, "FILE:LINE:") */
#define is_prefix(got, want, ...) do {					\
	const char *gp_ = (got), *wp_ = (want);				\
	int same_ = gp_ != NULL && wp_ != NULL &&			\
	    strncmp(gp_, wp_, strlen(wp_)) == 0;			\
	ok(same_, __VA_ARGS__);						\
	if (!same_) {							\
		printf("#   got ");					\
		tap_escape(gp_, gp_ ? strlen(gp_) : 0);			\
		printf(", want a prefix ");				\
		tap_escape(wp_, wp_ ? strlen(wp_) : 0);			\
		printf("\n");						\
	}								\
} while (0)

/* has_str - got contains want */
#define has_str(got, want, ...) do {					\
	const char *gh_ = (got), *wh_ = (want);				\
	int same_ = gh_ != NULL && wh_ != NULL &&			\
	    strstr(gh_, wh_) != NULL;					\
	ok(same_, __VA_ARGS__);						\
	if (!same_) {							\
		printf("#   got ");					\
		tap_escape(gh_, gh_ ? strlen(gh_) : 0);			\
		printf(", want it to contain ");			\
		tap_escape(wh_, wh_ ? strlen(wh_) : 0);			\
		printf("\n");						\
	}								\
} while (0)

static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
