/*
 * Unit tests for src/core/log.c: quoting of values, level names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/log.h"

#define TEST_CANARY '#'

/* Values that stand bare, and values that need quotes, as written. */
static const struct { const char *in, *out; } test_quoted[] = {
	{ "abc", "abc" },
	{ "user@example.com", "user@example.com" },
	{ "/var/lib/wharf/blobs/ab/cd", "/var/lib/wharf/blobs/ab/cd" },
	{ "a.b-c_d:1,2", "a.b-c_d:1,2" },
	{ "", "\"\"" },
	{ "a b", "\"a b\"" },
	{ "a=b", "\"a=b\"" },
	{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "two\nlines", "\"two\\nlines\"" },
	{ "tab\there", "\"tab\\x09here\"" },
	{ "cr\r", "\"cr\\x0d\"" },
	{ "\x01", "\"\\x01\"" },
	{ "del\x7f", "\"del\\x7f\"" },
	{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
	{ "key=value \"x\"\n", "\"key=value \\\"x\\\"\\n\"" },
};

#define TEST_NQUOTED (sizeof(test_quoted) / sizeof(test_quoted[0]))

static void
test_log_q_values(void **state)
{
	char buf[128];

	for (size_t i = 0; i < TEST_NQUOTED; i++) {
		assert_ptr_equal(log_q(buf, sizeof(buf), test_quoted[i].in),
		    buf);
		assert_string_equal(buf, test_quoted[i].out);
	}
	assert_string_equal(log_q(buf, sizeof(buf), NULL), "\"\"");
}

/* A quoted value that fits is never cut. */
static void
test_log_q_fits(void **state)
{
	char buf[12];

	(void)state;
	assert_string_equal(log_q(buf, 8, "a b"), "\"a b\"");
	assert_string_equal(log_q(buf, 10, "abc def"), "\"abc def\"");
	assert_string_equal(log_q(buf, 9, "abc def"), "\"abc...\"");
}

static void
test_log_q_truncated(void **state)
{
	char buf[32];

	/* Bare: cut, with "..." in the last three places. */
	assert_string_equal(log_q(buf, 8, "abcdefghijkl"), "abcd...");
	assert_string_equal(log_q(buf, 12, "abcdefghijkl"), "abcdefgh...");
	assert_string_equal(log_q(buf, 13, "abcdefghijkl"), "abcdefghijkl");

	/* Quoted: cut, with "..." inside the closing quote. */
	assert_string_equal(log_q(buf, 16, "the quick brown fox"),
	    "\"the quick ...\"");

	/* An escape is never cut in half. */
	assert_string_equal(log_q(buf, 8, "a\"b\"c\"d"), "\"a...\"");
	assert_string_equal(log_q(buf, 9, "a\"b\"c\"d"), "\"a\\\"...\"");

	/* Too small to hold anything useful: empty. */
	for (size_t len = 1; len < 8; len++) {
		memset(buf, TEST_CANARY, sizeof(buf));
		assert_string_equal(log_q(buf, len, "abc"), "");
		assert_int_equal(buf[1], TEST_CANARY);
	}
}

/*
 * Whatever the value and the room: NUL-terminated within len, nothing
 * written past it, and either the whole quoting or a cut one ending in
 * "..." (bare) or "...\"" (quoted) that starts as the whole one does.
 */
static void
test_log_q_bounds(void **state)
{
	char full[256], buf[256];

	for (size_t i = 0; i < TEST_NQUOTED; i++) {
		log_q(full, sizeof(full), test_quoted[i].in);
		for (size_t len = 0; len < 40; len++) {
			size_t n;

			memset(buf, TEST_CANARY, sizeof(buf));
			log_q(buf, len, test_quoted[i].in);
			assert_int_equal(buf[len], TEST_CANARY);
			if (len == 0)
				continue;
			assert_non_null(memchr(buf, '\0', len));
			n = strlen(buf);
			if (n == 0 || strcmp(buf, full) == 0)
				continue;

			/* A cut one. */
			assert_true(len >= 8);
			if (full[0] == '"') {
				assert_true(n >= 5);
				assert_string_equal(buf + n - 4, "...\"");
				assert_memory_equal(buf, full, n - 4);
			} else {
				assert_string_equal(buf + n - 3, "...");
				assert_memory_equal(buf, full, n - 3);
			}
		}
	}
}

static void
test_log_level_parse(void **state)
{
	static const struct { const char *name; int level; } cases[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "warn", LOG_WARN }, { "error", LOG_ERROR },
		{ "", -1 }, { "DEBUG", -1 }, { "Info", -1 },
		{ "warning", -1 }, { "err", -1 }, { "info ", -1 },
		{ " info", -1 }, { "fatal", -1 }, { "0", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(log_level_parse(cases[i].name),
		    cases[i].level);
}

static void
test_log_set_level(void **state)
{
	int saved = log_min_level;

	log_set_level(LOG_ERROR);
	assert_int_equal(log_min_level, LOG_ERROR);
	log_set_level(LOG_DEBUG);
	assert_int_equal(log_min_level, LOG_DEBUG);
	log_set_level(saved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_q_values),
		cmocka_unit_test(test_log_q_fits),
		cmocka_unit_test(test_log_q_truncated),
		cmocka_unit_test(test_log_q_bounds),
		cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_log_set_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
