/*
 * test_envfile: environment variable names and values, their quoting,
 * and .env.production as written; the file is also read back by
 * /bin/sh, which must see every value exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/envfile.h"

struct test_dir {
	char dir[64];
	char path[128];         /* dir/.env.production */
};

static int
test_setup(void **state)
{
	struct test_dir *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/wharf-envfile-XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, BUILD_ENV_FILE);
	*state = t;
	return 0;
}

static int
test_teardown(void **state)
{
	struct test_dir *t = *state;
	char path[192];

	unlink(t->path);
	snprintf(path, sizeof(path), "%s/target", t->dir);
	unlink(path);
	rmdir(t->dir);
	free(t);
	return 0;
}

/* The whole file, NUL-terminated, into a malloc'd buffer. */
static char *
test_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Quoting */

static void
test_quote(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "plain", "\"plain\"" },
		{ "with spaces  ", "\"with spaces  \"" },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
		{ "it's", "\"it's\"" },
		{ "C:\\dir\\n", "\"C:\\\\dir\\\\n\"" },
		{ "$HOME", "\"\\$HOME\"" },
		{ "${SECRET}", "\"\\${SECRET}\"" },
		{ "$(id)", "\"\\$(id)\"" },
		{ "`id`", "\"\\`id\\`\"" },
		{ "a#b # c", "\"a#b # c\"" },
		{ "k=v=w", "\"k=v=w\"" },
		{ "\\$", "\"\\\\\\$\"" },
		{ "end\\", "\"end\\\\\"" },
		{ "caf\xc3\xa9 \xe2\x9c\x93", "\"caf\xc3\xa9 \xe2\x9c\x93\"" },
		{ "tab\there", "\"tab\there\"" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(build_env_quote(cases[i].in, out, sizeof(out)),
		    0);
		assert_string_equal(out, cases[i].out);
	}
	assert_int_equal(build_env_quote("abc", out, 5), -1);
	assert_int_equal(build_env_quote("abc", out, 6), 0);
	assert_int_equal(build_env_quote("$$", out, 7), 0);   /* 2n + 3 */
	assert_int_equal(build_env_quote("$$", out, 6), -1);
}

/* Values */

static void
test_values(void **state)
{
	static const struct {
		const char *value;
		size_t      len;        /* 0: strlen */
		const char *why;        /* NULL: allowed */
	} cases[] = {
		{ "", 0, NULL },
		{ "https://api.example.com/v1?a=1&b=2", 0, NULL },
		{ "\"'`$\\#= ", 0, NULL },
		{ "caf\xc3\xa9", 0, NULL },
		{ "tab\tok", 0, NULL },
		{ "a\nb", 0, "line break" },
		{ "a\rb", 0, "line break" },
		{ "\n", 0, "line break" },
		{ "a\xe2\x80\xa8" "b", 0, "line break" },      /* U+2028 */
		{ "a\xe2\x80\xa9" "b", 0, "line break" },      /* U+2029 */
		{ "a\0b", 3, "NUL" },
		{ "caf\xe9", 0, "UTF-8" },
		{ "\xc0\x8a", 0, "UTF-8" },     /* overlong newline */
	};
	char why[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len :
		    strlen(cases[i].value);
		int rc = build_env_value_check(cases[i].value, len, why,
		    sizeof(why));

		if (cases[i].why == NULL && rc != 0)
			fail_msg("value %zu refused: %s", i, why);
		if (cases[i].why != NULL && (rc != -1 ||
		    strstr(why, cases[i].why) == NULL))
			fail_msg("value %zu: rc %d '%s'", i, rc, why);
	}
}

static void
test_value_length(void **state)
{
	char *value = malloc(BUILD_ENV_VALUE_MAX + 2);
	char why[128];

	assert_non_null(value);
	memset(value, 'v', BUILD_ENV_VALUE_MAX + 1);
	assert_int_equal(build_env_value_check(value, BUILD_ENV_VALUE_MAX,
	    why, sizeof(why)), 0);
	assert_int_equal(build_env_value_check(value,
	    BUILD_ENV_VALUE_MAX + 1, why, sizeof(why)), -1);
	free(value);
}

/* Names */

static void
test_names(void **state)
{
	static const struct {
		const char *name;
		int         ok;
	} cases[] = {
		{ "API_URL", 1 }, { "_X", 1 }, { "a1", 1 }, { "x", 1 },
		{ "NEXT_PUBLIC_API_URL", 1 }, { "VITE_KEY", 1 },
		{ "", 0 }, { "1ABC", 0 }, { "A-B", 0 }, { "A.B", 0 },
		{ "A B", 0 }, { "A=B", 0 }, { "caf\xc3\xa9", 0 }, { "$X", 0 },
	};
	char name[BUILD_ENV_NAME_MAX + 2], why[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = build_env_name_check(cases[i].name, true, why,
		    sizeof(why));
		if ((rc == 0) != cases[i].ok)
			fail_msg("name '%s': rc %d", cases[i].name, rc);
		assert_int_equal(build_env_name_valid(cases[i].name),
		    cases[i].ok);
	}
	memset(name, 'N', sizeof(name));
	name[BUILD_ENV_NAME_MAX] = '\0';
	assert_int_equal(build_env_name_check(name, true, why, sizeof(why)),
	    0);
	name[BUILD_ENV_NAME_MAX] = 'N';
	name[BUILD_ENV_NAME_MAX + 1] = '\0';
	assert_int_equal(build_env_name_check(name, true, why, sizeof(why)),
	    -1);
}

static void
test_refused_names(void **state)
{
	static const char *const refused[] = {
		"PATH", "path", "Path", "HOME", "SHELL", "ENV", "BASH_ENV",
		"BASH_FUNC_x", "IFS", "PS4", "TMPDIR", "XDG_CONFIG_HOME",
		"LD_PRELOAD", "LD_LIBRARY_PATH", "ld_audit", "GCONV_PATH",
		"GLIBC_TUNABLES", "NODE_OPTIONS", "NODE_PATH", "node_options",
		"NODE_EXTRA_CA_CERTS", "NODE_ENV", "NEXT_PUBLIC_BUILD_ID",
		"NEXT_PUBLIC_TENANT_ID", "WHARF_DATA_DIR",
		"npm_config_registry", "NPM_CONFIG_CACHE",
		"Npm_Config_Ignore_Scripts", "YARN_REGISTRY",
		"COREPACK_HOME", "PYTHONPATH", "PYTHONSTARTUP", "PERL5OPT",
		"RUBYOPT", "JAVA_TOOL_OPTIONS", "HTTP_PROXY", "https_proxy",
		"NO_PROXY", "SSL_CERT_FILE", "OPENSSL_CONF", "GIT_SSH_COMMAND",
		"GIT_CONFIG_GLOBAL", "SSH_AUTH_SOCK",
	};
	static const char *const allowed[] = {
		"NEXT_PUBLIC_API_URL", "VITE_API_KEY", "API_KEY", "LANG",
		"LC_ALL", "TZ", "NPM_TOKEN", "CI", "ENVIRONMENT", "PATHS",
		"HOMEPAGE_URL", "NODEJS_FLAG", "MY_PATH", "GITHUB_TOKEN",
		"SSHKEY", "REACT_APP_X", "NEXT_PUBLIC_BUILD_IDX",
	};
	char why[128];

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (build_env_name_refused(refused[i]) == NULL)
			fail_msg("'%s' allowed", refused[i]);
		assert_int_equal(build_env_name_check(refused[i], true, why,
		    sizeof(why)), -1);
		assert_non_null(strstr(why, "not allowed"));
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (build_env_name_refused(allowed[i]) != NULL)
			fail_msg("'%s' refused: %s", allowed[i],
			    build_env_name_refused(allowed[i]));

	/* Wharf's own variables pass when they come from Wharf. */
	assert_int_equal(build_env_name_check("NODE_ENV", false, why,
	    sizeof(why)), 0);
	assert_string_equal(build_env_name_refused("NODE_ENV"),
	    "is set by Wharf");
}

/* The file */

static const struct build_env_var test_vars[] = {
	{ "NODE_ENV", "production", false },
	{ "NEXT_PUBLIC_BUILD_ID", "0b9e6c1e-2f3a-4d5b-8c7d-1e2f3a4b5c6d",
	    false },
	{ "NEXT_PUBLIC_TENANT_ID", "acme", false },
	{ "QUOTES", "say \"hi\" and 'bye'", true },
	{ "BACKSLASH", "C:\\dir\\new\\", true },
	{ "DOLLAR", "$HOME ${PATH} $(id) \\$X $", true },
	{ "BACKTICK", "`id` and `uname`", true },
	{ "HASH", "a#b # c", true },
	{ "EQUALS", "k=v==w", true },
	{ "SPACES", "  padded  ", true },
	{ "UNICODE", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xe2\x9c\x93",
	    true },
	{ "EMPTY", "", true },
};

#define TEST_NVARS (sizeof(test_vars) / sizeof(test_vars[0]))

static void
test_write_file(void **state)
{
	struct test_dir *t = *state;
	char err[256];
	struct stat st;
	char *text;

	assert_int_equal(build_envfile_write(t->path, test_vars, TEST_NVARS,
	    err, sizeof(err)), ENVFILE_OK);
	text = test_read(t->path);
	assert_string_equal(text,
	    "# Written by Wharf for this build.\n"
	    "NODE_ENV=\"production\"\n"
	    "NEXT_PUBLIC_BUILD_ID=\"0b9e6c1e-2f3a-4d5b-8c7d-1e2f3a4b5c6d\"\n"
	    "NEXT_PUBLIC_TENANT_ID=\"acme\"\n"
	    "QUOTES=\"say \\\"hi\\\" and 'bye'\"\n"
	    "BACKSLASH=\"C:\\\\dir\\\\new\\\\\"\n"
	    "DOLLAR=\"\\$HOME \\${PATH} \\$(id) \\\\\\$X \\$\"\n"
	    "BACKTICK=\"\\`id\\` and \\`uname\\`\"\n"
	    "HASH=\"a#b # c\"\n"
	    "EQUALS=\"k=v==w\"\n"
	    "SPACES=\"  padded  \"\n"
	    "UNICODE=\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xe2\x9c\x93\"\n"
	    "EMPTY=\"\"\n");
	free(text);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* A POSIX shell sourcing the file sees every value exactly. */
static void
test_shell_reads_back(void **state)
{
	struct test_dir *t = *state;
	char cmd[4096], err[256], got[4096];
	size_t n = 0, off = 0;
	FILE *p;
	int o;

	assert_int_equal(build_envfile_write(t->path, test_vars, TEST_NVARS,
	    err, sizeof(err)), ENVFILE_OK);
	o = snprintf(cmd, sizeof(cmd), "/bin/sh -c '. \"$1\" && printf "
	    "\"%%s\\0\"");
	for (size_t i = 0; i < TEST_NVARS; i++)
		o += snprintf(cmd + o, sizeof(cmd) - (size_t)o, " \"$%s\"",
		    test_vars[i].name);
	snprintf(cmd + o, sizeof(cmd) - (size_t)o, "' sh %s", t->path);

	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(got, 1, sizeof(got), p);
	assert_int_equal(pclose(p), 0);
	for (size_t i = 0; i < TEST_NVARS; i++) {
		assert_true(off < n);
		assert_string_equal(got + off, test_vars[i].value);
		off += strlen(test_vars[i].value) + 1;
	}
	assert_int_equal(off, n);
}

static void
test_refusals_write_nothing(void **state)
{
	struct test_dir *t = *state;
	static const struct build_env_var bad[][2] = {
		{ { "OK", "x", true }, { "INJECT", "a\nEVIL=1", true } },
		{ { "OK", "x", true }, { "CR", "a\rb", true } },
		{ { "OK", "x", true }, { "LS", "a\xe2\x80\xa8" "b", true } },
		{ { "OK", "x", true }, { "1BAD", "x", true } },
		{ { "OK", "x", true }, { "NODE_OPTIONS", "--require x",
		    true } },
		{ { "OK", "x", true }, { "LD_PRELOAD", "/tmp/x.so", true } },
		{ { "OK", "x", true }, { "npm_config_registry", "http://x",
		    true } },
		{ { "NODE_ENV", "development", true }, { "OK", "x", true } },
		{ { "OK", "x", true }, { "OK", "y", true } },
		{ { "OK", "x", true }, { NULL, "y", true } },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(build_envfile_write(t->path, bad[i], 2, err,
		    sizeof(err)), ENVFILE_INVALID);
		assert_int_equal(access(t->path, F_OK), -1);
		assert_non_null(strstr(err, "environment variable"));
		/* The value, a secret, never shows in the message. */
		assert_null(strstr(err, "EVIL"));
		assert_null(strstr(err, "/tmp/x.so"));
	}
}

static void
test_replaces_without_following(void **state)
{
	struct test_dir *t = *state;
	static const struct build_env_var one[] = {
		{ "A", "b", true },
	};
	char target[192], err[256];
	struct stat st;
	char *text;
	FILE *f;

	/* A file the archive brought is replaced. */
	f = fopen(t->path, "w");
	assert_non_null(f);
	fputs("OLD=1\n", f);
	fclose(f);
	assert_int_equal(build_envfile_write(t->path, one, 1, err,
	    sizeof(err)), ENVFILE_OK);
	text = test_read(t->path);
	assert_null(strstr(text, "OLD"));
	free(text);

	/* A link is replaced, its target untouched. */
	unlink(t->path);
	snprintf(target, sizeof(target), "%s/target", t->dir);
	f = fopen(target, "w");
	assert_non_null(f);
	fputs("KEEP\n", f);
	fclose(f);
	assert_int_equal(symlink(target, t->path), 0);
	assert_int_equal(build_envfile_write(t->path, one, 1, err,
	    sizeof(err)), ENVFILE_OK);
	assert_int_equal(lstat(t->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	text = test_read(target);
	assert_string_equal(text, "KEEP\n");
	free(text);
}

static void
test_write_json(void **state)
{
	struct test_dir *t = *state;
	json_t *user = json_object();
	char err[256];
	char *text;

	assert_int_equal(build_env_write_json(t->path, "b-1", "acme", NULL,
	    err, sizeof(err)), ENVFILE_OK);
	text = test_read(t->path);
	assert_string_equal(text, "# Written by Wharf for this build.\n"
	    "NODE_ENV=\"production\"\nNEXT_PUBLIC_BUILD_ID=\"b-1\"\n"
	    "NEXT_PUBLIC_TENANT_ID=\"acme\"\n");
	free(text);

	json_object_set_new(user, "API_URL", json_string("https://x/$y"));
	json_object_set_new(user, "EMPTY", json_string(""));
	assert_int_equal(build_env_write_json(t->path, "b-1", "acme", user,
	    err, sizeof(err)), ENVFILE_OK);
	text = test_read(t->path);
	assert_non_null(strstr(text, "\nAPI_URL=\"https://x/\\$y\"\n"
	    "EMPTY=\"\"\n"));
	free(text);
	json_decref(user);
}

static void
test_write_json_refused(void **state)
{
	struct test_dir *t = *state;
	json_t *bad[] = {
		json_pack("{s:s}", "PATH", "/tmp"),
		json_pack("{s:s}", "NODE_ENV", "development"),
		json_pack("{s:s}", "next_public_tenant_id", "other"),
		json_pack("{s:i}", "NUMBER", 1),
		json_pack("{s:n}", "NULL", NULL),
		json_pack("{s:o}", "NUL", json_stringn("a\0b", 3)),
		json_pack("{s:s}", "BAD-NAME", "x"),
		json_pack("{s:s}", "LINE", "a\nB=c"),
		json_pack("[s]", "A"),
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";

		assert_non_null(bad[i]);
		assert_int_equal(build_env_write_json(t->path, "b", "t", bad[i],
		    err, sizeof(err)), ENVFILE_INVALID);
		assert_int_equal(access(t->path, F_OK), -1);
		assert_non_null(strstr(err, "environment variable"));
		json_decref(bad[i]);
	}
}

static void
test_unwritable(void **state)
{
	static const struct build_env_var one[] = {
		{ "A", "b", true },
	};
	char err[256];

	assert_int_equal(build_envfile_write("/nonexistent/dir/.env", one, 1,
	    err, sizeof(err)), ENVFILE_IO);
	assert_non_null(strstr(err, "writing .env.production"));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_value_length),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_refused_names),
		TEST(test_write_file),
		TEST(test_shell_reads_back),
		TEST(test_refusals_write_nothing),
		TEST(test_replaces_without_following),
		TEST(test_write_json),
		TEST(test_write_json_refused),
		cmocka_unit_test(test_unwritable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
