/*
 * Unit tests for src/core/config.c: the parsers, config_load from the
 * environment, and the data dir with its generated JWT secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/log.h"

static const char *const test_vars[] = {
	"WHARF_DATA_DIR", "WHARF_DB", "WHARF_LISTEN", "WHARF_EDGE_LISTEN",
	"WHARF_SITES_DOMAIN", "JWT_SECRET", "MAX_UPLOAD_SIZE",
	"WHARF_TOKEN_TTL", "WHARF_HTTP_THREADS", "WHARF_LOG_LEVEL",
};

#define TEST_NVARS (sizeof(test_vars) / sizeof(test_vars[0]))
#define TEST_SECRET "0123456789abcdef0123456789abcdef"

/* Every test starts from an environment without our variables. */
static int
test_clear_env(void **state)
{
	for (size_t i = 0; i < TEST_NVARS; i++)
		unsetenv(test_vars[i]);
	return 0;
}

/* Parsers */

static void
test_parse_size(void **state)
{
	static const struct { const char *s; int rc; uint64_t v; } cases[] = {
		{ "100mb", 0, 100ULL * 1048576 }, { "512kb", 0, 512 * 1024 },
		{ "1gb", 0, 1ULL << 30 }, { "10", 0, 10 }, { "10b", 0, 10 },
		{ "1k", 0, 1024 }, { "2MiB", 0, 2 << 20 },
		{ "1GB", 0, 1 << 30 },
		{ "100 mb", 0, 100ULL << 20 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "17179869183gb", 0, 17179869183ULL << 30 },
		{ "0", -1, 0 }, { "0mb", -1, 0 }, { "", -1, 0 },
		{ "abc", -1, 0 }, { "10xb", -1, 0 }, { "mb", -1, 0 },
		{ "-1", -1, 0 }, { "+10", -1, 0 }, { " 10", -1, 0 },
		{ "1.5mb", -1, 0 }, { "10mb ", -1, 0 }, { "10tb", -1, 0 },
		{ "18446744073709551616", -1, 0 },      /* 2^64 */
		{ "17179869184gb", -1, 0 },             /* 2^34 GiB = 2^64 */
		{ "99999999999999999999999", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 7;

		assert_int_equal(config_parse_size(cases[i].s, &v),
		    cases[i].rc);
		assert_int_equal(v, cases[i].rc == 0 ? cases[i].v : 7);
	}
}

static void
test_parse_duration(void **state)
{
	static const struct { const char *s; int rc; int64_t v; } cases[] = {
		{ "90m", 0, 5400 }, { "24h", 0, 86400 }, { "7d", 0, 604800 },
		{ "3600", 0, 3600 }, { "30s", 0, 30 }, { "1", 0, 1 },
		{ "9223372036854775", 0, 9223372036854775LL },
		{ "106751991167d", 0, 106751991167LL * 86400 },
		{ "0", -1, 0 }, { "0h", -1, 0 }, { "-1", -1, 0 },
		{ "5y", -1, 0 }, { "", -1, 0 }, { "h", -1, 0 },
		{ "1.5h", -1, 0 }, { "24 h", -1, 0 }, { " 24h", -1, 0 },
		{ "24hh", -1, 0 },
		{ "9223372036854776", -1, 0 },  /* overflows in ms */
		{ "106751991168d", -1, 0 },
		{ "9223372036854775808", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 7;

		assert_int_equal(config_parse_duration(cases[i].s, &v),
		    cases[i].rc);
		assert_int_equal(v, cases[i].rc == 0 ? cases[i].v : 7);
	}
}

static void
test_parse_listen(void **state)
{
	static const struct {
		const char *s;
		const char *host;       /* NULL: refused */
		uint16_t    port;
	} cases[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 },
		{ "[::1]:8080", "::1", 8080 },
		{ "localhost:0", "localhost", 0 },
		{ "0.0.0.0:65535", "0.0.0.0", 65535 },
		{ "[fe80::1%eth0]:443", "fe80::1%eth0", 443 },
		{ "127.0.0.1", NULL, 0 }, { "localhost:", NULL, 0 },
		{ ":8080", NULL, 0 }, { "::1:80", NULL, 0 },
		{ "[::1]", NULL, 0 }, { "[::1]8080", NULL, 0 },
		{ "[::1]:", NULL, 0 }, { "[]:80", NULL, 0 },
		{ "[::1:80", NULL, 0 }, { "host:70000", NULL, 0 },
		{ "host:65536", NULL, 0 }, { "host:-1", NULL, 0 },
		{ "host:+80", NULL, 0 }, { "host: 80", NULL, 0 },
		{ "host:80x", NULL, 0 }, { "host:80 ", NULL, 0 },
		{ "", NULL, 0 }, { ":", NULL, 0 },
	};
	char host[256];
	uint16_t port;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = config_parse_listen(cases[i].s, host, sizeof(host),
		    &port);

		if (cases[i].host == NULL) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
	}

	/* The host must fit in hostlen with its NUL. */
	assert_int_equal(config_parse_listen("localhost:80", host, 9, &port),
	    -1);
	assert_int_equal(config_parse_listen("localhost:80", host, 10, &port),
	    0);
	assert_string_equal(host, "localhost");
}

/* config_load */

static void
test_load_defaults(void **state)
{
	char err[WHARF_ERRMSG_MAX] = "";
	struct config cfg;

	assert_int_equal(config_load(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.data_dir, "./data");
	assert_string_equal(cfg.db_url, "");
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_string_equal(cfg.edge_listen, "127.0.0.1:8081");
	assert_string_equal(cfg.sites_domain, "localhost");
	assert_int_equal(cfg.max_upload_size, 100ULL * 1048576);
	assert_int_equal(cfg.token_ttl_sec, 86400);
	assert_int_equal(cfg.http_threads, 4);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.jwt_secret_len, 0);
	assert_false(cfg.jwt_secret_generated);

	/* An empty variable counts as unset. */
	setenv("WHARF_LISTEN", "", 1);
	setenv("MAX_UPLOAD_SIZE", "", 1);
	assert_int_equal(config_load(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_int_equal(cfg.max_upload_size, 100ULL * 1048576);
}

static void
test_load_values(void **state)
{
	char err[WHARF_ERRMSG_MAX] = "";
	struct config cfg;

	setenv("WHARF_DATA_DIR", "/var/lib/wharf", 1);
	setenv("WHARF_DB", "postgres://wharf@db/wharf", 1);
	setenv("WHARF_LISTEN", "[::1]:9000", 1);
	setenv("WHARF_EDGE_LISTEN", "0.0.0.0:80", 1);
	setenv("WHARF_SITES_DOMAIN", "sites.example.com", 1);
	setenv("JWT_SECRET", TEST_SECRET, 1);
	setenv("MAX_UPLOAD_SIZE", "1gb", 1);
	setenv("WHARF_TOKEN_TTL", "90m", 1);
	setenv("WHARF_HTTP_THREADS", "16", 1);
	setenv("WHARF_LOG_LEVEL", "debug", 1);

	assert_int_equal(config_load(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.data_dir, "/var/lib/wharf");
	assert_string_equal(cfg.db_url, "postgres://wharf@db/wharf");
	assert_string_equal(cfg.listen, "[::1]:9000");
	assert_string_equal(cfg.edge_listen, "0.0.0.0:80");
	assert_string_equal(cfg.sites_domain, "sites.example.com");
	assert_string_equal(cfg.jwt_secret, TEST_SECRET);
	assert_int_equal(cfg.jwt_secret_len, strlen(TEST_SECRET));
	assert_int_equal(cfg.max_upload_size, 1ULL << 30);
	assert_int_equal(cfg.token_ttl_sec, 5400);
	assert_int_equal(cfg.http_threads, 16);
	assert_int_equal(cfg.log_level, LOG_DEBUG);

	setenv("WHARF_DB", "sqlite:/tmp/wharf.db", 1);
	assert_int_equal(config_load(&cfg, err, sizeof(err)), 0);
	setenv("WHARF_DB", "postgresql://h/d", 1);
	assert_int_equal(config_load(&cfg, err, sizeof(err)), 0);
}

static void
test_load_invalid(void **state)
{
	static const struct { const char *var, *value; } cases[] = {
		{ "WHARF_LISTEN", "8080" },
		{ "WHARF_LISTEN", "::1:8080" },
		{ "WHARF_EDGE_LISTEN", "localhost:70000" },
		{ "WHARF_SITES_DOMAIN", "Sites.Example.com" },
		{ "WHARF_SITES_DOMAIN", "sites_example.com" },
		{ "WHARF_SITES_DOMAIN", "example..com" },
		{ "MAX_UPLOAD_SIZE", "10xb" },
		{ "MAX_UPLOAD_SIZE", "0" },
		{ "JWT_SECRET", "too-short-a-secret" },
		{ "WHARF_DB", "mysql://wharf@db/wharf" },
		{ "WHARF_DB", "/var/lib/wharf/wharf.db" },
		{ "WHARF_TOKEN_TTL", "5y" },
		{ "WHARF_TOKEN_TTL", "-1" },
		{ "WHARF_HTTP_THREADS", "0" },
		{ "WHARF_HTTP_THREADS", "257" },
		{ "WHARF_HTTP_THREADS", "four" },
		{ "WHARF_LOG_LEVEL", "verbose" },
	};
	char err[WHARF_ERRMSG_MAX];
	struct config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_clear_env(NULL);
		setenv(cases[i].var, cases[i].value, 1);
		err[0] = '\0';
		assert_int_equal(config_load(&cfg, err, sizeof(err)), -1);
		if (strstr(err, cases[i].var) == NULL)
			fail_msg("%s=%s: message \"%s\" does not name it",
			    cases[i].var, cases[i].value, err);
	}

	/* A secret never appears in a message. */
	test_clear_env(NULL);
	setenv("JWT_SECRET", "too-short-a-secret", 1);
	assert_int_equal(config_load(&cfg, err, sizeof(err)), -1);
	assert_null(strstr(err, "too-short-a-secret"));
}

/* Values longer than their field are refused, naming the variable. */
static void
test_load_too_long(void **state)
{
	static const char *const vars[] = { "WHARF_DATA_DIR", "JWT_SECRET" };
	char err[WHARF_ERRMSG_MAX], *value;
	struct config cfg;

	value = malloc(WHARF_PATH_MAX + 1);
	assert_non_null(value);
	memset(value, 'a', WHARF_PATH_MAX);
	value[WHARF_PATH_MAX] = '\0';
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		test_clear_env(NULL);
		setenv(vars[i], value, 1);
		assert_int_equal(config_load(&cfg, err, sizeof(err)), -1);
		assert_non_null(strstr(err, vars[i]));
	}
	free(value);
}

/* Data dir and secret file */

static int
test_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

static void
test_rm_tree(const char *path)
{
	assert_int_equal(nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS),
	    0);
}

static int
test_load_prepare(struct config *cfg, char *err, size_t errlen)
{
	assert_int_equal(config_load(cfg, err, errlen), 0);
	return config_prepare_data_dir(cfg, err, errlen);
}

static void
test_prepare_secret(void **state)
{
	char tmp[] = "/tmp/wharf-test-config-XXXXXX";
	char dir[256], file[300], db[300], secret[512];
	char err[WHARF_ERRMSG_MAX] = "";
	struct config cfg;
	struct stat st;

	assert_non_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/data/nested", tmp);
	snprintf(file, sizeof(file), "%s/jwt_secret", dir);
	setenv("WHARF_DATA_DIR", dir, 1);

	/* First start: the dir and a private secret are made. */
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), 0);
	assert_true(cfg.jwt_secret_generated);
	assert_int_equal(cfg.jwt_secret_len, 64);
	assert_int_equal(strlen(cfg.jwt_secret), 64);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(db, sizeof(db), "sqlite:%s/wharf.db", dir);
	assert_string_equal(cfg.db_url, db);
	snprintf(secret, sizeof(secret), "%s", cfg.jwt_secret);

	/* Second start: the same secret, read back. */
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), 0);
	assert_false(cfg.jwt_secret_generated);
	assert_string_equal(cfg.jwt_secret, secret);

	/* A secret others can read is refused with the fix to apply. */
	assert_int_equal(chmod(file, 0644), 0);
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod"));
	assert_int_equal(chmod(file, 0640), 0);
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod"));

	test_rm_tree(tmp);
}

static void
test_prepare_short_secret(void **state)
{
	char tmp[] = "/tmp/wharf-test-config-XXXXXX";
	char file[300], err[WHARF_ERRMSG_MAX] = "";
	struct config cfg;
	FILE *f;

	assert_non_null(mkdtemp(tmp));
	snprintf(file, sizeof(file), "%s/jwt_secret", tmp);
	setenv("WHARF_DATA_DIR", tmp, 1);

	f = fopen(file, "w");
	assert_non_null(f);
	fputs("short\n", f);
	fclose(f);
	assert_int_equal(chmod(file, 0600), 0);
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "jwt_secret"));

	test_rm_tree(tmp);
}

static void
test_prepare_env_secret(void **state)
{
	char tmp[] = "/tmp/wharf-test-config-XXXXXX";
	char file[300], err[WHARF_ERRMSG_MAX] = "";
	struct config cfg;

	assert_non_null(mkdtemp(tmp));
	snprintf(file, sizeof(file), "%s/jwt_secret", tmp);
	setenv("WHARF_DATA_DIR", tmp, 1);
	setenv("JWT_SECRET", TEST_SECRET, 1);
	setenv("WHARF_DB", "sqlite:/elsewhere/wharf.db", 1);

	/* JWT_SECRET wins: no file is made; WHARF_DB is kept. */
	assert_int_equal(test_load_prepare(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.jwt_secret, TEST_SECRET);
	assert_false(cfg.jwt_secret_generated);
	assert_int_equal(access(file, F_OK), -1);
	assert_string_equal(cfg.db_url, "sqlite:/elsewhere/wharf.db");

	test_rm_tree(tmp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test_setup(test_load_defaults, test_clear_env),
		cmocka_unit_test_setup(test_load_values, test_clear_env),
		cmocka_unit_test_setup(test_load_invalid, test_clear_env),
		cmocka_unit_test_setup(test_load_too_long, test_clear_env),
		cmocka_unit_test_setup(test_prepare_secret, test_clear_env),
		cmocka_unit_test_setup(test_prepare_short_secret,
		    test_clear_env),
		cmocka_unit_test_setup(test_prepare_env_secret,
		    test_clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
