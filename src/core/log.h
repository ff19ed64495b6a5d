/*
 * log: one line per event on stderr, key=value pairs.
 *
 *   ts=2026-12-03T17:00:00.123Z level=info event=http.request req=9f2c..
 *       method=GET route=/healthz status=200 dur_ms=0.21
 *
 * The level is checked before any formatting.  Callers pass the event
 * name and a printf format for the remaining pairs; a value that may
 * hold spaces or quotes (a user's email, a path, an error text) goes
 * through log_q() first.  Secrets are never logged: passwords, tokens,
 * JWT secrets and environment variable values have no place here.
 */
#ifndef WHARF_LOG_H
#define WHARF_LOG_H

#include <stddef.h>

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO = 1,
	LOG_WARN = 2,
	LOG_ERROR = 3,
};

extern int log_min_level;

/* "debug", "info", "warn", "error" -> level, or -1. */
int log_level_parse(const char *s);
void log_set_level(int level);

void log_emit(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As log_emit, with err="strerror(errnum)" appended. */
void log_emit_errno(int level, int errnum, const char *event,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_debug(ev, ...) do { if (log_min_level <= LOG_DEBUG) \
	log_emit(LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define log_info(ev, ...) do { if (log_min_level <= LOG_INFO) \
	log_emit(LOG_INFO, ev, __VA_ARGS__); } while (0)
#define log_warnx(ev, ...) do { if (log_min_level <= LOG_WARN) \
	log_emit(LOG_WARN, ev, __VA_ARGS__); } while (0)
#define log_errorx(ev, ...) log_emit(LOG_ERROR, ev, __VA_ARGS__)
/* With errno, captured before anything can clobber it. */
#define log_warn(ev, ...) do { int log_e_ = errno; \
	if (log_min_level <= LOG_WARN) \
	log_emit_errno(LOG_WARN, log_e_, ev, __VA_ARGS__); } while (0)
#define log_error(ev, ...) do { int log_e_ = errno; \
	log_emit_errno(LOG_ERROR, log_e_, ev, __VA_ARGS__); } while (0)

/*
 * Quotes s for a log value into buf: bare when it holds only safe
 * characters, else in double quotes with ", \ and control characters
 * escaped; truncated with "..." to fit.  Returns buf.
 */
const char *log_q(char *buf, size_t len, const char *s);

#endif
