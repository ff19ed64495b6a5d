/*
 * test_rules: _redirects and _headers.  Every file of tests/data/rules
 * is one test (see tests/data/rules/README for the format): the rules
 * are parsed, the expectations checked, then the rules go through
 * their JSON form (dumped to text and loaded back) and every
 * expectation is checked again.  Then what the files cannot say:
 * hostile manifests, buffers too small, NULL arguments.
 *
 * The cases are found through $WHARF_TEST_DATA, else the path compiled
 * in by tests/unit/meson.build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/rules.h"

#ifndef WHARF_TEST_DATA
#define WHARF_TEST_DATA "tests/data"
#endif

#define TEST_CASES_MAX  1024
#define TEST_FILE_MAX   (1024 * 1024)
#define TEST_INPUT      "--- input\n"
#define TEST_INPUT_ESC  "--- input escaped\n"
#define TEST_EXPECT     "\n--- expect\n"

/* One case file, read and split. */
struct test_case {
	char                name[256];
	bool                headers;
	struct rules_limits limits;
	char               *input;
	size_t              inputlen;
	char               *expect;     /* lines, NUL-terminated */
};

/* The rules of a case, parsed or loaded back. */
struct test_rules {
	struct rules_redirects *redirects;
	struct rules_headers   *headers;
};

static const char *
test_data_dir(void)
{
	const char *dir = getenv("WHARF_TEST_DATA");

	return dir != NULL && dir[0] != '\0' ? dir : WHARF_TEST_DATA;
}

static char *
test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(TEST_FILE_MAX + 1);

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_non_null(buf);
	*len = fread(buf, 1, TEST_FILE_MAX, f);
	assert_true(feof(f));
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/* Turns \\, \t, \r, \n, \0 and \xHH in s (len bytes) into bytes. */
static size_t
test_unescape(char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		unsigned hex;

		if (c == '\\' && i + 1 < len) {
			c = s[++i];
			if (c == 't')
				c = '\t';
			else if (c == 'r')
				c = '\r';
			else if (c == 'n')
				c = '\n';
			else if (c == '0')
				c = '\0';
			else if (c == 'x' && i + 2 < len &&
			    sscanf(s + i + 1, "%2x", &hex) == 1) {
				c = (char)hex;
				i += 2;
			}
		}
		s[o++] = c;
	}
	return o;
}

/* Reads the header lines of a case ("kind: ...", limits, comments). */
static void
test_case_header(struct test_case *c, char *text)
{
	char *save = NULL;
	bool kind = false;

	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		unsigned long n;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strcmp(line, "kind: redirects") == 0 ||
		    strcmp(line, "kind: headers") == 0) {
			c->headers = line[6] == 'h';
			kind = true;
		} else if (sscanf(line, "max-rules: %lu", &n) == 1) {
			c->limits.max_rules = n;
		} else if (sscanf(line, "max-line: %lu", &n) == 1) {
			c->limits.max_line = n;
		} else {
			fail_msg("%s: unknown header line '%s'", c->name, line);
		}
	}
	if (!kind)
		fail_msg("%s: no 'kind:' line", c->name);
}

/* Reads a case file; the caller frees c->input's buffer (c->expect's). */
static char *
test_case_read(struct test_case *c, const char *file)
{
	char path[1024];
	size_t len;
	char *buf, *input, *expect;
	bool escaped;

	snprintf(c->name, sizeof(c->name), "%s", file);
	snprintf(path, sizeof(path), "%s/rules/%s", test_data_dir(), file);
	buf = test_read_file(path, &len);
	c->limits = (struct rules_limits)RULES_LIMITS_DEFAULT;

	input = strstr(buf, TEST_INPUT);
	escaped = input == NULL;
	if (escaped)
		input = strstr(buf, TEST_INPUT_ESC);
	expect = strstr(buf, TEST_EXPECT);
	if (input == NULL || expect == NULL || expect < input)
		fail_msg("%s: needs '--- input' and '--- expect'", file);
	*input = '\0';
	input += escaped ? strlen(TEST_INPUT_ESC) : strlen(TEST_INPUT);
	expect[1] = '\0';       /* the input keeps its last line break */
	c->expect = expect + strlen(TEST_EXPECT);
	c->input = input;
	c->inputlen = (size_t)(expect + 1 - input);
	if (escaped)
		c->inputlen = test_unescape(input, c->inputlen);
	test_case_header(c, buf);
	return buf;
}

/* "match /p?q 301 /t": splits the request into path and query. */
static void
test_split_request(char *req, char **path, char **query)
{
	char *q = strchr(req, '?');

	*path = req;
	*query = NULL;
	if (q != NULL) {
		*q = '\0';
		*query = q + 1;
		test_unescape(*query, strlen(*query) + 1);
	}
	test_unescape(req, strlen(req) + 1);
}

/* match / forced: "VERB REQUEST STATUS[!] TARGET". */
static void
test_expect_match(const struct test_case *c, const struct test_rules *r,
    char *args, bool forced, const char *stage)
{
	char req[1024], want_status[16], want_target[4096];
	char target[RULES_TARGET_MAX], got_status[16];
	char *path, *query;
	int status = 0, rc;
	bool force = false;

	if (sscanf(args, "%1023s %15s %4095s", req, want_status,
	    want_target) != 3)
		fail_msg("%s: bad expectation '%s'", c->name, args);
	test_split_request(req, &path, &query);
	test_unescape(want_target, strlen(want_target) + 1);
	rc = forced ? rules_redirect_match_forced(r->redirects, path, query,
	    target, sizeof(target), &status, &force) :
	    rules_redirect_match(r->redirects, path, query, target,
	    sizeof(target), &status, &force);
	if (rc != 1)
		fail_msg("%s (%s): %s%s%s: no match (rc %d)", c->name, stage,
		    path, query != NULL ? "?" : "", query != NULL ? query : "",
		    rc);
	snprintf(got_status, sizeof(got_status), "%d%s", status,
	    force ? "!" : "");
	if (strcmp(got_status, want_status) != 0 ||
	    strcmp(target, want_target) != 0)
		fail_msg("%s (%s): %s: got %s %s, want %s %s", c->name, stage,
		    path, got_status, target, want_status, want_target);
}

/* nomatch / noforced: "VERB REQUEST". */
static void
test_expect_nomatch(const struct test_case *c, const struct test_rules *r,
    char *args, bool forced, const char *stage)
{
	char req[1024], target[RULES_TARGET_MAX];
	char *path, *query;
	int status = 0, rc;
	bool force = false;

	if (sscanf(args, "%1023s", req) != 1)
		fail_msg("%s: bad expectation '%s'", c->name, args);
	test_split_request(req, &path, &query);
	rc = forced ? rules_redirect_match_forced(r->redirects, path, query,
	    target, sizeof(target), &status, &force) :
	    rules_redirect_match(r->redirects, path, query, target,
	    sizeof(target), &status, &force);
	if (rc != 0)
		fail_msg("%s (%s): %s: matched (rc %d) %d %s", c->name, stage,
		    path, rc, status, target);
}

/*
 * "headers PATH" then the expected "  Name: value" lines, in order;
 * *line moves past them.
 */
static void
test_expect_headers(const struct test_case *c, const struct test_rules *r,
    char *path, char ***line, const char *stage)
{
	struct rules_header_list list;
	char got[256];
	size_t i = 0;

	test_unescape(path, strlen(path) + 1);
	assert_int_equal(rules_headers_match(r->headers, path, &list), 0);
	for (; (*line)[1] != NULL && strncmp((*line)[1], "  ", 2) == 0;
	    (*line)++, i++) {
		char want[1024];

		snprintf(want, sizeof(want), "%s", (*line)[1] + 2);
		test_unescape(want, strlen(want) + 1);

		if (i >= list.count)
			fail_msg("%s (%s): %s: missing '%s'", c->name, stage,
			    path, want);
		snprintf(got, sizeof(got), "%s: %s", list.fields[i].name,
		    list.fields[i].value);
		if (strcmp(got, want) != 0)
			fail_msg("%s (%s): %s: header %zu is '%s', want '%s'",
			    c->name, stage, path, i + 1, got, want);
	}
	if (i != list.count)
		fail_msg("%s (%s): %s: %zu headers, want %zu (extra '%s')",
		    c->name, stage, path, list.count, i,
		    list.fields[i].name);
	rules_header_list_free(&list);
}

/* Splits the expect section into a NULL-terminated array of lines. */
static char **
test_lines(char *text)
{
	size_t n = 0, cap = 16;
	char **lines = malloc(cap * sizeof(*lines));
	char *save = NULL;

	assert_non_null(lines);
	for (char *l = strtok_r(text, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		if (n + 1 == cap) {
			cap *= 2;
			lines = realloc(lines, cap * sizeof(*lines));
			assert_non_null(lines);
		}
		lines[n++] = l;
	}
	lines[n] = NULL;
	return lines;
}

/* Checks every expectation line against r. */
static void
test_expectations(const struct test_case *c, const struct test_rules *r,
    const char *stage)
{
	char *copy = strdup(c->expect);
	char **lines, **line;

	assert_non_null(copy);
	lines = test_lines(copy);
	for (line = lines; *line != NULL; line++) {
		char *l = *line;

		if (l[0] == '#' || strncmp(l, "error ", 6) == 0)
			continue;
		if (strncmp(l, "match ", 6) == 0)
			test_expect_match(c, r, l + 6, false, stage);
		else if (strncmp(l, "forced ", 7) == 0)
			test_expect_match(c, r, l + 7, true, stage);
		else if (strncmp(l, "nomatch ", 8) == 0)
			test_expect_nomatch(c, r, l + 8, false, stage);
		else if (strncmp(l, "noforced ", 9) == 0)
			test_expect_nomatch(c, r, l + 9, true, stage);
		else if (strncmp(l, "headers ", 8) == 0)
			test_expect_headers(c, r, l + 8, &line, stage);
		else if (strncmp(l, "count ", 6) == 0)
			assert_int_equal(c->headers ?
			    rules_headers_count(r->headers) :
			    rules_redirects_count(r->redirects), atoi(l + 6));
		else
			fail_msg("%s: unknown expectation '%s'", c->name, l);
	}
	free(lines);
	free(copy);
}

/* The expected error, or NULL when the case must parse. */
static const char *
test_expected_error(const struct test_case *c)
{
	const char *e = strstr(c->expect, "error ");

	if (e != NULL && (e == c->expect || e[-1] == '\n'))
		return e + 6;
	return NULL;
}

static int
test_parse(const struct test_case *c, struct test_rules *r, char *err,
    size_t errlen)
{
	const char *file = c->headers ? "_headers" : "_redirects";

	memset(r, 0, sizeof(*r));
	if (c->headers)
		return rules_headers_parse(c->input, c->inputlen, file,
		    &c->limits, &r->headers, err, errlen);
	return rules_redirects_parse(c->input, c->inputlen, file, &c->limits,
	    &r->redirects, err, errlen);
}

static void
test_rules_free(struct test_rules *r)
{
	rules_redirects_free(r->redirects);
	rules_headers_free(r->headers);
	memset(r, 0, sizeof(*r));
}

/* r through JSON text and back into back; the JSON must be stable. */
static void
test_round_trip(const struct test_case *c, const struct test_rules *r,
    struct test_rules *back)
{
	json_t *json = c->headers ? rules_headers_to_json(r->headers) :
	    rules_redirects_to_json(r->redirects);
	json_t *loaded, *again;
	char *text, err[512] = "";
	int rc;

	assert_non_null(json);
	text = json_dumps(json, JSON_COMPACT);
	assert_non_null(text);
	loaded = json_loads(text, 0, NULL);
	assert_non_null(loaded);
	memset(back, 0, sizeof(*back));
	rc = c->headers ?
	    rules_headers_from_json(loaded, &back->headers, err,
	    sizeof(err)) :
	    rules_redirects_from_json(loaded, &back->redirects, err,
	    sizeof(err));
	if (rc != 0)
		fail_msg("%s: loading the JSON back: %s\n%s", c->name, err,
		    text);
	again = c->headers ? rules_headers_to_json(back->headers) :
	    rules_redirects_to_json(back->redirects);
	if (!json_equal(json, again))
		fail_msg("%s: the JSON changed on the round trip\n%s", c->name,
		    text);
	json_decref(again);
	json_decref(loaded);
	json_decref(json);
	free(text);
}

static void
test_case_run(void **state)
{
	const char *file = *state;
	struct test_case c;
	struct test_rules r, back;
	char err[512] = "";
	char *buf = test_case_read(&c, file);
	const char *want_err = test_expected_error(&c);
	int rc = test_parse(&c, &r, err, sizeof(err));

	if (want_err != NULL) {
		size_t wantlen = strcspn(want_err, "\n");

		if (rc == 0)
			fail_msg("%s: parsed, want error '%.*s'", file,
			    (int)wantlen, want_err);
		if (strlen(err) != wantlen ||
		    strncmp(err, want_err, wantlen) != 0)
			fail_msg("%s: error '%s', want '%.*s'", file, err,
			    (int)wantlen, want_err);
		assert_null(r.redirects);
		assert_null(r.headers);
	} else {
		if (rc != 0)
			fail_msg("%s: %s", file, err);
		test_expectations(&c, &r, "parsed");
		test_round_trip(&c, &r, &back);
		test_expectations(&c, &back, "from JSON");
		test_rules_free(&back);
	}
	test_rules_free(&r);
	free(buf);
}

/* JSON that the parser never writes, as a damaged manifest might hold. */
static void
test_json_hostile(void **state)
{
	static const char *const redirects[] = {
		"{}",
		"[1]",
		"[{\"to\": \"/b\", \"status\": 301}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": \"301\"}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": 307}]",
		"[{\"from\": \"a\", \"to\": \"/b\", \"status\": 301}]",
		"[{\"from\": \"/a\\u0000b\", \"to\": \"/b\", \"status\": 301}]",
		"[{\"from\": \"/a\", \"to\": \"//evil\", \"status\": 301}]",
		"[{\"from\": \"/a\", \"to\": \"https://x/\", \"status\": 200}]",
		"[{\"from\": \"/a\", \"to\": \"/:b\", \"status\": 301}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": 301, "
		    "\"force\": 1}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": 301, "
		    "\"query\": {}}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": 301, "
		    "\"query\": [{\"name\": \"x\"}]}]",
		"[{\"from\": \"/a\", \"to\": \"/b\", \"status\": 301, "
		    "\"line\": -1}]",
		"[{\"from\": \"/*/x\", \"to\": \"/b\", \"status\": 301}]",
	};
	static const char *const headers[] = {
		"{}",
		"[[]]",
		"[{\"for\": \"/a\"}]",
		"[{\"for\": \"/a\", \"values\": []}]",
		"[{\"for\": \"/a\", \"values\": [{\"name\": \"X\"}]}]",
		"[{\"for\": \"/a\", \"values\": [{\"name\": \"X\", "
		    "\"value\": \"a\\r\\nB: c\"}]}]",
		"[{\"for\": \"/a\", \"values\": [{\"name\": \"Content-Length\", "
		    "\"value\": \"1\"}]}]",
		"[{\"for\": \"/a\", \"values\": [{\"name\": \"X Y\", "
		    "\"value\": \"1\"}]}]",
		"[{\"for\": \"a\", \"values\": [{\"name\": \"X\", "
		    "\"value\": \"1\"}]}]",
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(redirects) / sizeof(*redirects); i++) {
		json_t *json = json_loads(redirects[i], JSON_ALLOW_NUL, NULL);
		struct rules_redirects *r = (void *)1;

		assert_non_null(json);
		err[0] = '\0';
		if (rules_redirects_from_json(json, &r, err, sizeof(err)) == 0)
			fail_msg("loaded %s", redirects[i]);
		assert_null(r);
		assert_true(strncmp(err, "redirect 1: ", 12) == 0);
		json_decref(json);
	}
	for (size_t i = 0; i < sizeof(headers) / sizeof(*headers); i++) {
		json_t *json = json_loads(headers[i], 0, NULL);
		struct rules_headers *h = (void *)1;

		assert_non_null(json);
		if (rules_headers_from_json(json, &h, err, sizeof(err)) == 0)
			fail_msg("loaded %s", headers[i]);
		assert_null(h);
		assert_true(strncmp(err, "headers block 1: ", 17) == 0);
		json_decref(json);
	}
}

/* A target buffer too small is -1, never a cut target. */
static void
test_target_too_small(void **state)
{
	static const char file[] = "/a/* /a-very-long-target/:splat 301\n";
	struct rules_redirects *r;
	char err[256], target[8];
	int status = 0;
	bool force = false;

	(void)state;
	assert_int_equal(rules_redirects_parse(file, sizeof(file) - 1, NULL,
	    NULL, &r, err, sizeof(err)), 0);
	assert_int_equal(rules_redirect_match(r, "/a/b", NULL, target,
	    sizeof(target), &status, &force), -1);
	assert_int_equal(rules_redirect_match(r, "/b", NULL, target,
	    sizeof(target), &status, &force), 0);
	assert_string_equal(target, "");
	rules_redirects_free(r);
}

/* Empty files, NULL rules and the default file names. */
static void
test_empty_and_null(void **state)
{
	struct rules_redirects *r;
	struct rules_headers *h;
	struct rules_header_list list = { 1, NULL };
	char err[256], target[64];
	int status;
	bool force;
	json_t *json;

	(void)state;
	assert_int_equal(rules_redirects_parse("", 0, NULL, NULL, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(rules_redirects_count(r), 0);
	assert_int_equal(rules_redirect_match(r, "/", NULL, target,
	    sizeof(target), &status, &force), 0);
	json = rules_redirects_to_json(r);
	assert_int_equal(json_array_size(json), 0);
	json_decref(json);
	rules_redirects_free(r);

	/* A manifest without the key: no rules. */
	assert_int_equal(rules_redirects_from_json(NULL, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(rules_redirects_count(r), 0);
	rules_redirects_free(r);
	assert_int_equal(rules_headers_from_json(NULL, &h, err, sizeof(err)),
	    0);
	assert_int_equal(rules_headers_count(h), 0);
	rules_headers_free(h);

	assert_int_equal(rules_redirect_match(NULL, "/", NULL, target,
	    sizeof(target), &status, &force), 0);
	assert_int_equal(rules_headers_match(NULL, "/", &list), 0);
	assert_int_equal(list.count, 0);
	rules_header_list_free(&list);
	rules_redirects_free(NULL);
	rules_headers_free(NULL);

	assert_int_equal(rules_redirects_parse("x\n", 2, NULL, NULL, &r, err,
	    sizeof(err)), -1);
	assert_true(strncmp(err, "_redirects line 1: ", 19) == 0);
	assert_int_equal(rules_headers_parse("x\n", 2, "", NULL, &h, err,
	    sizeof(err)), -1);
	assert_true(strncmp(err, "_headers line 1: ", 17) == 0);
	assert_int_equal(rules_headers_parse("/a\n  X: 1\n", 10, "out/_h",
	    NULL, &h, err, 0), 0);
	rules_headers_free(h);
}

/* The buffer need not end with NUL: bytes past len are never read. */
static void
test_unterminated(void **state)
{
	char buf[] = "/a /b 302XXXX";
	struct rules_redirects *r;
	char err[256], target[64];
	int status = 0;
	bool force = false;

	(void)state;
	assert_int_equal(rules_redirects_parse(buf, 9, NULL, NULL, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(rules_redirect_match(r, "/a", NULL, target,
	    sizeof(target), &status, &force), 1);
	assert_int_equal(status, 302);
	rules_redirects_free(r);
}

static int
test_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case files, sorted. */
static size_t
test_case_files(char **files, size_t max)
{
	char dir[1024];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/rules", test_data_dir());
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "test_rules: cannot open %s\n", dir);
		exit(1);
	}
	while ((de = readdir(d)) != NULL && n < max) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0)
			files[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(files, n, sizeof(*files), test_name_cmp);
	return n;
}

int
main(void)
{
	static char *files[TEST_CASES_MAX];
	static struct CMUnitTest tests[TEST_CASES_MAX + 8];
	size_t n = test_case_files(files, TEST_CASES_MAX), t = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		tests[t++] = (struct CMUnitTest){ files[i], test_case_run,
		    NULL, NULL, files[i] };
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_json_hostile);
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(
	    test_target_too_small);
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_empty_and_null);
	tests[t++] = (struct CMUnitTest)cmocka_unit_test(test_unterminated);
	rc = _cmocka_run_group_tests("rules", tests, t, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	return rc;
}
