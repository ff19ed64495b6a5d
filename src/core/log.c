/*
 * log: key=value lines on stderr.  Each line is formatted into one
 * buffer and written with a single write(2), so lines from different
 * threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/log.h"

#define LOG_LINE_MAX 4096

int log_min_level = LOG_INFO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

void
log_set_level(int level)
{
	log_min_level = level;
}

static void
log_vemit(int level, int errnum, const char *event, const char *fmt,
    va_list ap)
{
	char line[LOG_LINE_MAX];
	char ts[32];
	size_t n;
	int r;

	util_iso8601(util_now_ms(), ts, sizeof(ts));
	r = snprintf(line, sizeof(line), "ts=%s level=%s event=%s", ts,
	    log_names[level], event);
	n = r < 0 ? 0 : (size_t)r;

	if (n < sizeof(line) && fmt[0] != '\0') {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		n += r < 0 ? 0 : (size_t)r;
	}
	if (errnum != 0 && n < sizeof(line)) {
		char eq[128];
		r = snprintf(line + n, sizeof(line) - n, " err=%s",
		    log_q(eq, sizeof(eq), strerror(errnum)));
		n += r < 0 ? 0 : (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';

	/* One write per line; a short write on a pipe is not retried. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void
log_emit(int level, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, 0, event, fmt, ap);
	va_end(ap);
}

void
log_emit_errno(int level, int errnum, const char *event, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, errnum, event, fmt, ap);
	va_end(ap);
}

static int
log_is_bare(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f)
			return 0;
	}
	return 1;
}

/* The escaped form of c into esc; returns its length. */
static size_t
log_escape(unsigned char c, char esc[8])
{
	if (c == '"' || c == '\\')
		return (size_t)snprintf(esc, 8, "\\%c", c);
	if (c == '\n')
		return (size_t)snprintf(esc, 8, "\\n");
	if (c < ' ' || c == 0x7f)
		return (size_t)snprintf(esc, 8, "\\x%02x", c);
	esc[0] = (char)c;
	return 1;
}

const char *
log_q(char *buf, size_t len, const char *s)
{
	size_t o = 0, need = 2;          /* the two quotes */
	char esc[8];

	if (len < 8) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	if (s == NULL)
		s = "";
	if (log_is_bare(s)) {
		snprintf(buf, len, "%s", s);
		if (strlen(s) >= len)
			memcpy(buf + len - 4, "...", 4);
		return buf;
	}

	for (const char *p = s; *p; p++)
		need += log_escape((unsigned char)*p, esc);

	buf[o++] = '"';
	for (; *s; s++) {
		size_t el = log_escape((unsigned char)*s, esc);

		/* Cut only when the whole value cannot fit. */
		if (need + 1 > len && o + el + 5 > len) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, esc, el);
		o += el;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
