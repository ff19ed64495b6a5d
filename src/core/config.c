/*
 * config: settings from the environment.  Every variable is read here
 * and nowhere else; an invalid value stops the program with a message
 * naming the variable.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/log.h"

#define CONFIG_SECRET_FILE "jwt_secret"

static const char *
config_env(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : fallback;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 }, { "kib", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 }, { "mib", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 }, { "gib", 1ULL << 30 },
	};
	char *end;
	unsigned long long n;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit) != 0)
			continue;
		if (n == 0 || n > UINT64_MAX / units[i].mult)
			return -1;
		*out = n * units[i].mult;
		return 0;
	}
	return -1;
}

int
config_parse_duration(const char *s, int64_t *out_sec)
{
	char *end;
	long long n;
	int64_t mult;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n <= 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else
		return -1;
	if (n > INT64_MAX / mult / 1000)        /* stays valid in ms */
		return -1;
	*out_sec = n * mult;
	return 0;
}

int
config_parse_listen(const char *s, char *host, size_t hostlen,
    uint16_t *port)
{
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long p;

	if (s[0] == '[') {                      /* [::1]:8080 */
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p < 0 || p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int
config_valid_domain(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s)
		    && *s != '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

static int
config_copy(char *dst, size_t len, const char *name, const char *v,
    char *err, size_t errlen)
{
	if (util_fmt(dst, len, "%s", v) != 0) {
		snprintf(err, errlen, "%s is too long (at most %zu bytes)",
		    name, len - 1);
		return -1;
	}
	return 0;
}

static int
config_load_listen(char *dst, size_t len, const char *name,
    const char *fallback, char *err, size_t errlen)
{
	const char *v = config_env(name, fallback);
	char host[256];
	uint16_t port;

	if (config_parse_listen(v, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "%s=%s is not HOST:PORT "
		    "(for example 127.0.0.1:8080 or [::1]:8080)", name, v);
		return -1;
	}
	return config_copy(dst, len, name, v, err, errlen);
}

static int
config_load_int(int *dst, const char *name, int fallback, int lo, int hi,
    char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || v[0] == '\0') {
		*dst = fallback;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi) {
		snprintf(err, errlen, "%s=%s must be a whole number from "
		    "%d to %d", name, v, lo, hi);
		return -1;
	}
	*dst = (int)n;
	return 0;
}

static int
config_load_size(uint64_t *dst, const char *name, const char *fallback,
    char *err, size_t errlen)
{
	const char *v = config_env(name, fallback);

	if (config_parse_size(v, dst) != 0) {
		snprintf(err, errlen, "%s=%s is not a size (for example "
		    "100mb, 512kb, 1gb)", name, v);
		return -1;
	}
	return 0;
}

static int
config_load_duration(int64_t *dst, const char *name, const char *fallback,
    char *err, size_t errlen)
{
	const char *v = config_env(name, fallback);

	if (config_parse_duration(v, dst) != 0) {
		snprintf(err, errlen, "%s=%s is not a duration (for example "
		    "3600, 90m, 24h, 7d)", name, v);
		return -1;
	}
	return 0;
}

/* The queue: workers and leases. */
static int
config_load_jobs(struct config *cfg, char *err, size_t errlen)
{
	const char *v;
	int hold = 0;

	if (config_load_int(&cfg->workers, "WHARF_WORKERS", 2, 0, 64, err,
	    errlen) != 0 ||
	    config_load_duration(&cfg->job_lease_sec, "WHARF_JOB_LEASE", "30s",
	    err, errlen) != 0)
		return -1;

	/* A test hook: hold each job this long before running it. */
	v = getenv("WHARF_TEST_JOB_HOLD_MS");
	if (v != NULL && config_load_int(&hold, "WHARF_TEST_JOB_HOLD_MS", 0,
	    0, 3600000, err, errlen) != 0)
		return -1;
	cfg->test_job_hold_ms = hold;
	return 0;
}

/* The build pipeline's limits and sandbox. */
static int
config_load_build(struct config *cfg, char *err, size_t errlen)
{
	const char *v;

	if (config_load_size(&cfg->max_zip_size, "MAX_ZIP_SIZE", "100mb", err,
	    errlen) != 0 ||
	    config_load_int(&cfg->max_zip_entries, "WHARF_MAX_ZIP_ENTRIES",
	    10000, 1, 1000000, err, errlen) != 0 ||
	    config_load_size(&cfg->max_unzipped_size,
	    "WHARF_MAX_UNZIPPED_SIZE", "500mb", err, errlen) != 0 ||
	    config_load_duration(&cfg->install_timeout_sec,
	    "WHARF_INSTALL_TIMEOUT", "600", err, errlen) != 0 ||
	    config_load_duration(&cfg->build_timeout_sec,
	    "WHARF_BUILD_TIMEOUT", "900", err, errlen) != 0 ||
	    config_load_size(&cfg->build_memory, "WHARF_BUILD_MEMORY", "2gb",
	    err, errlen) != 0)
		return -1;

	v = config_env("WHARF_SANDBOX", "bwrap");
	if (strcmp(v, "bwrap") != 0 && strcmp(v, "none") != 0) {
		snprintf(err, errlen, "WHARF_SANDBOX=%s must be bwrap or none",
		    v);
		return -1;
	}
	cfg->sandbox_none = strcmp(v, "none") == 0;
	return 0;
}

int
config_load(struct config *cfg, char *err, size_t errlen)
{
	const char *v;

	memset(cfg, 0, sizeof(*cfg));

	v = config_env("WHARF_DATA_DIR", "./data");
	if (config_copy(cfg->data_dir, sizeof(cfg->data_dir) - 64,
	    "WHARF_DATA_DIR", v, err, errlen) != 0)
		return -1;

	v = config_env("WHARF_DB", "");
	if (v[0] != '\0' && strncmp(v, "sqlite:", 7) != 0 &&
	    strncmp(v, "postgres://", 11) != 0 &&
	    strncmp(v, "postgresql://", 13) != 0) {
		snprintf(err, errlen, "WHARF_DB must start with sqlite: "
		    "(sqlite:/path/to/wharf.db) or postgres://");
		return -1;
	}
	if (config_copy(cfg->db_url, sizeof(cfg->db_url), "WHARF_DB", v,
	    err, errlen) != 0)
		return -1;

	if (config_load_listen(cfg->listen, sizeof(cfg->listen),
	    "WHARF_LISTEN", "127.0.0.1:8080", err, errlen) != 0)
		return -1;
	if (config_load_listen(cfg->edge_listen, sizeof(cfg->edge_listen),
	    "WHARF_EDGE_LISTEN", "127.0.0.1:8081", err, errlen) != 0)
		return -1;

	v = config_env("WHARF_SITES_DOMAIN", "localhost");
	if (!config_valid_domain(v)) {
		snprintf(err, errlen, "WHARF_SITES_DOMAIN=%s is not a "
		    "lowercase DNS name (for example sites.example.com)", v);
		return -1;
	}
	if (config_copy(cfg->sites_domain, sizeof(cfg->sites_domain),
	    "WHARF_SITES_DOMAIN", v, err, errlen) != 0)
		return -1;

	v = getenv("JWT_SECRET");
	if (v != NULL && v[0] != '\0') {
		if (strlen(v) < WHARF_SECRET_MIN) {
			snprintf(err, errlen, "JWT_SECRET must be at least %d "
			    "characters; unset it to let wharf generate one",
			    WHARF_SECRET_MIN);
			return -1;
		}
		if (config_copy(cfg->jwt_secret, sizeof(cfg->jwt_secret),
		    "JWT_SECRET", v, err, errlen) != 0)
			return -1;
		cfg->jwt_secret_len = strlen(v);
	}

	v = config_env("MAX_UPLOAD_SIZE", "100mb");
	if (config_parse_size(v, &cfg->max_upload_size) != 0) {
		snprintf(err, errlen, "MAX_UPLOAD_SIZE=%s is not a size "
		    "(for example 100mb, 512kb, 1gb)", v);
		return -1;
	}

	v = config_env("WHARF_TOKEN_TTL", "24h");
	if (config_parse_duration(v, &cfg->token_ttl_sec) != 0) {
		snprintf(err, errlen, "WHARF_TOKEN_TTL=%s is not a duration "
		    "(for example 3600, 90m, 24h, 7d)", v);
		return -1;
	}

	if (config_load_int(&cfg->http_threads, "WHARF_HTTP_THREADS", 4, 1,
	    256, err, errlen) != 0 ||
	    config_load_int(&cfg->edge_threads, "WHARF_EDGE_THREADS", 0, 0,
	    64, err, errlen) != 0)
		return -1;

	if (config_load_jobs(cfg, err, errlen) != 0 ||
	    config_load_build(cfg, err, errlen) != 0)
		return -1;

	v = config_env("WHARF_LOG_LEVEL", "info");
	cfg->log_level = log_level_parse(v);
	if (cfg->log_level < 0) {
		snprintf(err, errlen, "WHARF_LOG_LEVEL=%s must be one of "
		    "debug, info, warn, error", v);
		return -1;
	}
	return 0;
}

/* Reads the secret file, refusing one that others can read. */
static int
config_read_secret(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		snprintf(err, errlen, "%s is readable by others; "
		    "run: chmod 600 %s", path, path);
		return -1;
	}
	n = read(fd, cfg->jwt_secret, sizeof(cfg->jwt_secret) - 1);
	close(fd);
	while (n > 0 && isspace((unsigned char)cfg->jwt_secret[n - 1]))
		n--;
	if (n < WHARF_SECRET_MIN) {
		snprintf(err, errlen, "%s holds fewer than %d characters; "
		    "remove it to make a new one", path, WHARF_SECRET_MIN);
		return -1;
	}
	cfg->jwt_secret[n] = '\0';
	cfg->jwt_secret_len = (size_t)n;
	return 0;
}

/*
 * Makes a new secret: written to a private temp file, then linked into
 * place so that two processes starting at once agree on one secret.
 */
static int
config_make_secret(const char *path, char *err, size_t errlen)
{
	char tmp[WHARF_PATH_MAX], hex[65];
	unsigned char raw[32];
	int fd, rc = -1;

	if (util_random(raw, sizeof(raw)) != 0) {
		snprintf(err, errlen, "cannot read random bytes");
		return -1;
	}
	util_hex(raw, sizeof(raw), hex);
	hex[64] = '\n';

	if (util_fmt(tmp, sizeof(tmp), "%s.%ld.tmp", path,
	    (long)getpid()) != 0) {
		snprintf(err, errlen, "WHARF_DATA_DIR is too long");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	if (write(fd, hex, 65) != 65 || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	if (link(tmp, path) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	unlink(tmp);
	return rc;
}

int
config_prepare_data_dir(struct config *cfg, char *err, size_t errlen)
{
	char path[WHARF_PATH_MAX];
	int r;

	r = util_mkdirs(cfg->data_dir, 0700);
	if (r != 0) {
		snprintf(err, errlen, "WHARF_DATA_DIR=%s: cannot create: %s",
		    cfg->data_dir, strerror(-r));
		return -1;
	}

	if (cfg->db_url[0] == '\0')
		(void)util_fmt(cfg->db_url, sizeof(cfg->db_url),
		    "sqlite:%s/wharf.db", cfg->data_dir);   /* fits: see load */

	if (cfg->jwt_secret_len > 0)
		return 0;

	if (util_fmt(path, sizeof(path), "%s/%s", cfg->data_dir,
	    CONFIG_SECRET_FILE) != 0) {
		snprintf(err, errlen, "WHARF_DATA_DIR is too long");
		return -1;
	}
	if (access(path, F_OK) != 0) {
		if (config_make_secret(path, err, errlen) != 0)
			return -1;
		cfg->jwt_secret_generated = true;
	}
	return config_read_secret(cfg, path, err, errlen);
}
