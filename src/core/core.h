/*
 * core: configuration, limits and small utilities shared by every
 * component.  Nothing here knows about HTTP, SQL or builds.
 *
 * Error convention: functions that touch the system return 0 or a
 * negative errno; parsers return 0 or -1 and write a message for the
 * user into a caller's buffer.
 */
#ifndef WHARF_CORE_H
#define WHARF_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that are not settings.  Settings live in struct config. */
#define WHARF_PATH_MAX          4096
#define WHARF_EMAIL_MAX         254
#define WHARF_SLUG_MAX          63
#define WHARF_NAME_MAX          200
#define WHARF_PASSWORD_MAX      511     /* libcrypt refuses 512+ */
#define WHARF_ID_LEN            36      /* canonical UUID text */
#define WHARF_SECRET_MIN        32      /* bytes of JWT secret */
#define WHARF_ERRMSG_MAX        512

/*
 * Settings, read once from the environment by config_load().  Every
 * field is documented with its variable in README.md.
 */
struct config {
	char     data_dir[WHARF_PATH_MAX];      /* WHARF_DATA_DIR */
	char     db_url[WHARF_PATH_MAX];        /* WHARF_DB */
	char     listen[256];                   /* WHARF_LISTEN */
	char     edge_listen[256];              /* WHARF_EDGE_LISTEN */
	char     sites_domain[256];             /* WHARF_SITES_DOMAIN */
	char     jwt_secret[512];               /* JWT_SECRET, or generated */
	size_t   jwt_secret_len;
	bool     jwt_secret_generated;
	uint64_t max_upload_size;               /* MAX_UPLOAD_SIZE, bytes */
	int64_t  token_ttl_sec;                 /* WHARF_TOKEN_TTL */
	int      http_threads;                  /* WHARF_HTTP_THREADS */
	int      edge_threads;                  /* WHARF_EDGE_THREADS */
	int      workers;                       /* WHARF_WORKERS */
	int64_t  job_lease_sec;                 /* WHARF_JOB_LEASE */
	uint64_t max_zip_size;                  /* MAX_ZIP_SIZE */
	int      max_zip_entries;               /* WHARF_MAX_ZIP_ENTRIES */
	uint64_t max_unzipped_size;             /* WHARF_MAX_UNZIPPED_SIZE */
	int64_t  install_timeout_sec;           /* WHARF_INSTALL_TIMEOUT */
	int64_t  build_timeout_sec;             /* WHARF_BUILD_TIMEOUT */
	uint64_t build_memory;                  /* WHARF_BUILD_MEMORY */
	bool     sandbox_none;                  /* WHARF_SANDBOX=none */
	int64_t  test_job_hold_ms;              /* WHARF_TEST_JOB_HOLD_MS */
	int      log_level;                     /* WHARF_LOG_LEVEL */
};

/*
 * Fills cfg from the environment.  On an invalid value returns -1 and
 * writes a message naming the variable into err.  Does not touch the
 * disk: config_prepare_data_dir() does.
 */
int config_load(struct config *cfg, char *err, size_t errlen);

/*
 * Creates the data dir if needed, derives the default database URL, and
 * when JWT_SECRET is unset loads the secret kept in the data dir, making
 * a new one (mode 0600) the first time.  Returns 0 or -1 with err set.
 */
int config_prepare_data_dir(struct config *cfg, char *err, size_t errlen);

/* Parsers used by config_load, exposed for tests and the CLI. */
int config_parse_size(const char *s, uint64_t *out);       /* "100mb" */
int config_parse_duration(const char *s, int64_t *out_sec); /* "24h" */
int config_parse_listen(const char *s, char *host, size_t hostlen,
    uint16_t *port);                                        /* "h:p" */

/* util: ids, time, random, encodings. */

/* Wall clock in milliseconds since the epoch. */
int64_t util_now_ms(void);
/* Monotonic clock in nanoseconds, for durations. */
int64_t util_mono_ns(void);

/* Cryptographically random bytes.  Returns 0 or -EIO. */
int util_random(void *buf, size_t len);

/* Random version-4 UUID, 36 chars + NUL into out (>= 37 bytes). */
void util_uuid(char out[WHARF_ID_LEN + 1]);

/* Lowercase hex of len bytes into out (>= 2*len+1 bytes). */
void util_hex(const unsigned char *in, size_t len, char *out);

/*
 * RFC 3339 UTC time with milliseconds ("2026-12-03T17:00:00.123Z")
 * into out (>= 25 bytes).
 */
void util_iso8601(int64_t ms, char *out, size_t outlen);

/* snprintf that reports truncation: 0 when it fit, -1 otherwise. */
int util_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes a message into why (which may be NULL or empty) and returns
 * -1: "return util_fail(why, len, "...")" in a checker.
 */
int util_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of a hexadecimal digit, or -1. */
int util_hexval(unsigned char c);

/* Constant-time comparison of two buffers of the same length. */
bool util_ct_equal(const void *a, const void *b, size_t len);

/* Creates a directory and its parents (mode for new ones). 0 or -errno. */
int util_mkdirs(const char *path, unsigned mode);

#endif
