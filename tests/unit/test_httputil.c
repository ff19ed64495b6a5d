/*
 * test_httputil: the edge's request helpers.  Each table of
 * tests/data/httputil is one test, a case a row (tab-separated; '#'
 * starts a comment; \\, \t and \xHH are escapes; "(null)" is a missing
 * header): hostile paths, Range, Accept-Encoding, If-None-Match and the
 * Cache-Control policy.  Every failing row is reported, then the test
 * fails.  Then what a table cannot say: length limits and small
 * buffers.
 *
 * The tables are found through $WHARF_TEST_DATA, else the path compiled
 * in by tests/unit/meson.build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/httputil.h"

#ifndef WHARF_TEST_DATA
#define WHARF_TEST_DATA "tests/data"
#endif

#define TEST_LINE_MAX   4096
#define TEST_FIELDS_MAX 8

/* One row of a table, fields unescaped. */
struct test_row {
	unsigned    line;
	size_t      nfields;
	const char *field[TEST_FIELDS_MAX];
	bool        null[TEST_FIELDS_MAX];      /* "(null)" */
};

typedef bool (*test_row_fn)(const struct test_row *row, char *why,
    size_t whylen);

static const char *
test_data_dir(void)
{
	const char *dir = getenv("WHARF_TEST_DATA");

	return dir != NULL && dir[0] != '\0' ? dir : WHARF_TEST_DATA;
}

/* Turns \\, \t and \xHH in s into bytes, in place. */
static void
test_unescape(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned hex;

		if (s[i] == '\\' && s[i + 1] == '\\') {
			s[o++] = '\\';
			i++;
		} else if (s[i] == '\\' && s[i + 1] == 't') {
			s[o++] = '\t';
			i++;
		} else if (s[i] == '\\' && s[i + 1] == 'x' &&
		    sscanf(s + i + 2, "%2x", &hex) == 1) {
			s[o++] = (char)hex;
			i += 3;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
}

/* Splits line at tabs into row. */
static void
test_split(char *line, struct test_row *row)
{
	char *p = line;

	row->nfields = 0;
	while (row->nfields < TEST_FIELDS_MAX) {
		char *tab = strchr(p, '\t');

		if (tab != NULL)
			*tab = '\0';
		row->null[row->nfields] = strcmp(p, "(null)") == 0;
		test_unescape(p);
		row->field[row->nfields++] = p;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
}

/* Runs fn on every row of the table, then fails if any row failed. */
static void
test_table(const char *name, size_t nfields, test_row_fn fn)
{
	char path[1024], line[TEST_LINE_MAX], why[512];
	struct test_row row;
	unsigned failed = 0, rows = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/httputil/%s", test_data_dir(), name);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	for (row.line = 1; fgets(line, sizeof(line), f) != NULL; row.line++) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#')
			continue;
		test_split(line, &row);
		if (row.nfields < nfields)
			fail_msg("%s:%u: %zu fields, want %zu", name, row.line,
			    row.nfields, nfields);
		rows++;
		why[0] = '\0';
		if (!fn(&row, why, sizeof(why))) {
			fprintf(stderr, "%s:%u: %s\n", name, row.line, why);
			failed++;
		}
	}
	fclose(f);
	assert_true(rows > 0);
	if (failed > 0)
		fail_msg("%s: %u of %u rows failed", name, failed, rows);
}

static bool
test_path_row(const struct test_row *row, char *why, size_t whylen)
{
	char out[EDGE_PATH_MAX + 1] = "";
	int rc = edge_path_normalize(row->field[0], out, sizeof(out));
	bool refused = strcmp(row->field[1], "REFUSED") == 0;

	if (refused && rc == 0)
		snprintf(why, whylen, "'%s' gave '%s', want refused",
		    row->field[0], out);
	else if (!refused && rc != 0)
		snprintf(why, whylen, "'%s' refused, want '%s'",
		    row->field[0], row->field[1]);
	else if (!refused && strcmp(out, row->field[1]) != 0)
		snprintf(why, whylen, "'%s' gave '%s', want '%s'",
		    row->field[0], out, row->field[1]);
	else
		return true;
	return false;
}

static const char *
test_range_name(enum edge_range r)
{
	switch (r) {
	case EDGE_RANGE_NONE:           return "none";
	case EDGE_RANGE_OK:             return "ok";
	case EDGE_RANGE_UNSATISFIABLE:  return "416";
	}
	return "?";
}

static bool
test_range_row(const struct test_row *row, char *why, size_t whylen)
{
	uint64_t size = strtoull(row->field[1], NULL, 10);
	uint64_t start = 0, len = 0, want_start = 0, want_len = 0;
	enum edge_range got = edge_range_parse(row->null[0] ? NULL :
	    row->field[0], size, &start, &len);

	if (strcmp(test_range_name(got), row->field[2]) != 0) {
		snprintf(why, whylen, "'%s' size %" PRIu64 ": %s, want %s",
		    row->field[0], size, test_range_name(got), row->field[2]);
		return false;
	}
	if (got != EDGE_RANGE_OK)
		return true;
	if (row->nfields < 5) {
		snprintf(why, whylen, "an ok row needs start and len");
		return false;
	}
	want_start = strtoull(row->field[3], NULL, 10);
	want_len = strtoull(row->field[4], NULL, 10);
	if (start == want_start && len == want_len)
		return true;
	snprintf(why, whylen, "'%s' size %" PRIu64 ": %" PRIu64 "+%" PRIu64
	    ", want %" PRIu64 "+%" PRIu64, row->field[0], size, start, len,
	    want_start, want_len);
	return false;
}

static const char *
test_encoding_name(unsigned enc)
{
	return enc == EDGE_ENC_BR ? "br" : enc == EDGE_ENC_GZIP ? "gzip" :
	    enc == EDGE_ENC_IDENTITY ? "identity" : "?";
}

static bool
test_accept_row(const struct test_row *row, char *why, size_t whylen)
{
	unsigned available = 0, got;

	if (strstr(row->field[1], "br") != NULL)
		available |= EDGE_ENC_BR;
	if (strstr(row->field[1], "gzip") != NULL)
		available |= EDGE_ENC_GZIP;
	got = edge_accept_encoding(row->null[0] ? NULL : row->field[0],
	    available);
	if (strcmp(test_encoding_name(got), row->field[2]) == 0)
		return true;
	snprintf(why, whylen, "'%s' with %s: %s, want %s", row->field[0],
	    row->field[1], test_encoding_name(got), row->field[2]);
	return false;
}

static bool
test_etag_row(const struct test_row *row, char *why, size_t whylen)
{
	bool got = edge_etag_match(row->null[0] ? NULL : row->field[0],
	    row->null[1] ? NULL : row->field[1]);

	if (got == (strcmp(row->field[2], "yes") == 0))
		return true;
	snprintf(why, whylen, "'%s' against %s: %s, want %s", row->field[0],
	    row->field[1], got ? "yes" : "no", row->field[2]);
	return false;
}

static bool
test_cache_row(const struct test_row *row, char *why, size_t whylen)
{
	const char *got = edge_cache_control(row->field[0],
	    strcmp(row->field[1], "yes") == 0);
	const char *want = strcmp(row->field[2], "immutable") == 0 ?
	    EDGE_CACHE_IMMUTABLE : EDGE_CACHE_REVALIDATE;

	if (strcmp(row->field[2], "immutable") != 0 &&
	    strcmp(row->field[2], "revalidate") != 0) {
		snprintf(why, whylen, "unknown policy %s", row->field[2]);
		return false;
	}
	if (strcmp(got, want) == 0)
		return true;
	snprintf(why, whylen, "'%s': '%s', want %s", row->field[0], got,
	    row->field[2]);
	return false;
}

static void
test_paths(void **state)
{
	(void)state;
	test_table("paths.tsv", 2, test_path_row);
}

static void
test_range(void **state)
{
	(void)state;
	test_table("range.tsv", 3, test_range_row);
}

static void
test_accept_encoding(void **state)
{
	(void)state;
	test_table("accept-encoding.tsv", 3, test_accept_row);
}

static void
test_etag(void **state)
{
	(void)state;
	test_table("etag.tsv", 3, test_etag_row);
}

static void
test_cache_control(void **state)
{
	(void)state;
	test_table("cache.tsv", 3, test_cache_row);
}

/* EDGE_PATH_MAX raw bytes are fine, one more is refused. */
static void
test_path_length(void **state)
{
	char raw[EDGE_PATH_MAX + 8], out[EDGE_PATH_MAX + 1];

	(void)state;
	memset(raw, 'a', sizeof(raw));
	raw[0] = '/';
	raw[EDGE_PATH_MAX] = '\0';
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), 0);
	assert_string_equal(out, raw);
	raw[EDGE_PATH_MAX] = 'a';
	raw[EDGE_PATH_MAX + 1] = '\0';
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), -1);

	/* Escapes count raw: 1 + 341 * 3 = 1024 bytes, 341 decoded. */
	raw[0] = '/';
	for (size_t i = 0; i < 341; i++)
		memcpy(raw + 1 + 3 * i, "%41", 3);
	raw[1 + 341 * 3] = '\0';
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 342);
	memcpy(raw + 1 + 341 * 3, "%41", 4);
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), -1);
}

/* Many ".." segments, each undoing one segment, never escape. */
static void
test_path_deep_dots(void **state)
{
	char raw[EDGE_PATH_MAX + 1], out[EDGE_PATH_MAX + 1];
	size_t o = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(raw + o, sizeof(raw) - o, "/a");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(raw + o, sizeof(raw) - o, "/..");
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	snprintf(raw + o, sizeof(raw) - o, "/..");
	assert_int_equal(edge_path_normalize(raw, out, sizeof(out)), -1);
}

/* A small output buffer is -1, never a cut path. */
static void
test_path_small_buffer(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(edge_path_normalize("/abcdef", out, sizeof(out)), 0);
	assert_string_equal(out, "/abcdef");
	assert_int_equal(edge_path_normalize("/abcdefg", out, sizeof(out)),
	    -1);
	assert_int_equal(edge_path_normalize("/abc/", out, 6), 0);
	assert_int_equal(edge_path_normalize("/abcd/", out, 6), -1);
	assert_int_equal(edge_path_normalize("/", out, 2), 0);
	assert_int_equal(edge_path_normalize("/", out, 1), -1);
	assert_int_equal(edge_path_normalize("/a/b/../c", out, 5), 0);
	assert_string_equal(out, "/a/c");
}

/* Range leaves its outputs alone unless it answers OK. */
static void
test_range_outputs(void **state)
{
	uint64_t start = 7, len = 7;

	(void)state;
	assert_int_equal(edge_range_parse("bytes=200-", 100, &start, &len),
	    EDGE_RANGE_UNSATISFIABLE);
	assert_int_equal(start, 7);
	assert_int_equal(len, 7);
	assert_int_equal(edge_range_parse("bytes=1-2", 100, &start, &len),
	    EDGE_RANGE_OK);
	assert_int_equal(start, 1);
	assert_int_equal(len, 2);
}

/* A fingerprinted asset's 404 is the caller's: the policy of a path. */
static void
test_fingerprinted(void **state)
{
	(void)state;
	assert_true(edge_path_fingerprinted("/assets/index-3f9a2c1b.js"));
	assert_false(edge_path_fingerprinted("/assets/index.js"));
	assert_false(edge_path_fingerprinted(""));
	assert_false(edge_path_fingerprinted("/"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_accept_encoding),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_cache_control),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_path_deep_dots),
		cmocka_unit_test(test_path_small_buffer),
		cmocka_unit_test(test_range_outputs),
		cmocka_unit_test(test_fingerprinted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
