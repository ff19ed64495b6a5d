/*
 * test_multipart: the streaming multipart/form-data parser.  Every
 * body is also fed split at every position, and one byte at a time, so
 * that delimiters and header lines cut across pieces are covered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"

#define TEST_TYPE   "multipart/form-data; boundary=XyZ"
#define TEST_OUT    8192

/* What the callbacks saw, as text: one line per part, then content. */
struct test_seen {
	char   out[TEST_OUT];
	size_t len;
	int    stop_at_part;    /* begin returns -1 on this part (1-based) */
	int    parts;
};

static void
test_add(struct test_seen *s, const char *buf, size_t len)
{
	assert_true(s->len + len < sizeof(s->out));
	memcpy(s->out + s->len, buf, len);
	s->len += len;
	s->out[s->len] = '\0';
}

static int
test_begin(void *ctx, const char *name, const char *filename,
    const char *type)
{
	struct test_seen *s = ctx;
	char line[512];

	snprintf(line, sizeof(line), "[%s|%s|%s]", name ? name : "-",
	    filename ? filename : "-", type ? type : "-");
	test_add(s, line, strlen(line));
	return ++s->parts == s->stop_at_part ? -1 : 0;
}

static int
test_data(void *ctx, const char *buf, size_t len)
{
	assert_true(len > 0);
	test_add(ctx, buf, len);
	return 0;
}

static const struct multipart_ops test_ops = {
	.begin = test_begin,
	.data = test_data,
};

/*
 * Feeds body in pieces cut at the offsets in cuts (ascending, ending
 * with len); returns the result of the last feed and whether the body
 * was complete.
 */
static int
test_feed(const char *type, const char *body, size_t len,
    const size_t *cuts, size_t ncuts, struct test_seen *s, bool *complete)
{
	struct multipart *mp = multipart_new(type, &test_ops, s);
	size_t from = 0;
	int rc = 0;

	assert_non_null(mp);
	for (size_t i = 0; i < ncuts && rc == 0; i++) {
		rc = multipart_feed(mp, body + from, cuts[i] - from);
		from = cuts[i];
	}
	*complete = multipart_complete(mp);
	multipart_free(mp);
	return rc;
}

/*
 * Parses body whole, in two pieces cut at each offset, and byte by
 * byte; each must give rc, want (the callbacks' text) and complete.
 */
static void
test_parse(const char *body, size_t len, int rc, const char *want,
    bool complete)
{
	struct test_seen s;
	size_t *cuts = malloc((len + 2) * sizeof(*cuts));
	bool done;

	assert_non_null(cuts);
	for (size_t cut = 0; cut <= len; cut++) {
		memset(&s, 0, sizeof(s));
		cuts[0] = cut;
		cuts[1] = len;
		assert_int_equal(test_feed(TEST_TYPE, body, len, cuts, 2, &s,
		    &done), rc);
		if (rc == 0)
			assert_string_equal(s.out, want);
		assert_int_equal(done, complete);
	}
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	memset(&s, 0, sizeof(s));
	assert_int_equal(test_feed(TEST_TYPE, body, len, cuts, len, &s,
	    &done), rc);
	if (rc == 0)
		assert_string_equal(s.out, want);
	assert_int_equal(done, complete);
	free(cuts);
}

#define PARSE(body, rc, want, complete) \
	test_parse(body, sizeof(body) - 1, rc, want, complete)

/* Tests */

static void
test_form(void **state)
{
	PARSE("--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"buildConfig\"\r\n"
	    "\r\n"
	    "{\"a\":1}\r\n"
	    "--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"file\"; "
	    "filename=\"site.zip\"\r\n"
	    "Content-Type: application/zip\r\n"
	    "\r\n"
	    "PK\3\4 zip bytes\r\n"
	    "--XyZ--\r\n", 0,
	    "[buildConfig|-|-]{\"a\":1}"
	    "[file|site.zip|application/zip]PK\3\4 zip bytes", true);
}

/* Content full of what starts like a delimiter, and is not one. */
static void
test_near_delimiters(void **state)
{
	PARSE("--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"file\"\r\n\r\n"
	    "a\r\n--Xy\rb\r\r\n--X\n--XyZ\r\n-\r\n\r\n--\r-\r\n--xyz\r\r\n"
	    "\r\n--XyZ--", 0,
	    "[file|-|-]"
	    "a\r\n--Xy\rb\r\r\n--X\n--XyZ\r\n-\r\n\r\n--\r-\r\n--xyz\r\r\n",
	    true);
}

/* Empty parts, an empty first line of content, LF-only breaks. */
static void
test_empty_parts(void **state)
{
	PARSE("--XyZ\n"
	    "Content-Disposition: form-data; name=\"a\"\n\n"
	    "\r\n--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
	    "\r\n\r\n--XyZ\r\n\r\n"
	    "\r\n--XyZ--\n", 0,
	    "[a|-|-][b|-|-]\r\n[-|-|-]", true);
}

/* Before the first delimiter anything goes; after the last, a break. */
static void
test_preamble_epilogue(void **state)
{
	PARSE("junk -- -XyZ --Xy\r\n--XyZ\r\n\r\nv\r\n--XyZ--", 0,
	    "[-|-|-]v", true);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZ--\r", 0, "[-|-|-]v", true);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZ--\r\n\r\n", -1, "", false);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZ-- ", -1, "", false);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZ--\rx", -1, "", false);
}

/* Nothing but a preamble is a form with no part, complete. */
static void
test_no_part(void **state)
{
	PARSE("", 0, "", true);
	PARSE("no delimiter here\r\n--XyY", 0, "", true);
	PARSE("--Xy", 0, "", true);
}

static void
test_incomplete(void **state)
{
	PARSE("--XyZ", 0, "", false);
	PARSE("--XyZ\r\nContent-Disposition: form-data; name=\"f\"", 0, "",
	    false);
	PARSE("--XyZ\r\n\r\nsome content\r\n--Xy", 0, "[-|-|-]some content",
	    false);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZ-", 0, "[-|-|-]v", false);
}

/* After a delimiter: "--", or a line break, nothing else. */
static void
test_bad_after_delimiter(void **state)
{
	PARSE("--XyZ \r\n\r\nv", -1, "", false);
	PARSE("--XyZ\r\n\r\nv\r\n--XyZx", -1, "", false);
	PARSE("--XyZ\rx", -1, "", false);
	PARSE("--XyZ-x", -1, "", false);
}

static void
test_headers(void **state)
{
	/* filename first; "name" inside "filename" is not name. */
	PARSE("--XyZ\r\n"
	    "content-disposition: form-data; filename=\"a b.zip\"; "
	    "name=\"file\"\r\n"
	    "X-Other: 1\r\n"
	    "CONTENT-TYPE: application/zip\r\n"
	    "Content-Type: text/plain\r\n\r\nv\r\n--XyZ--", 0,
	    "[file|a b.zip|application/zip]v", true);
	/* Unquoted values and a header without ": " are not read. */
	PARSE("--XyZ\r\n"
	    "Content-Disposition: form-data; name=file\r\n"
	    "Content-Type:text/plain\r\n\r\nv\r\n--XyZ--", 0, "[-|-|-]v",
	    true);
	/* The first Content-Disposition's values stay. */
	PARSE("--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"a\"\r\n"
	    "Content-Disposition: form-data; name=\"b\"; filename=\"c\"\r\n"
	    "\r\nv\r\n--XyZ--", 0, "[a|c|-]v", true);
}

static void
test_header_too_long(void **state)
{
	size_t n = MULTIPART_LINE_MAX + 64;
	char *body = malloc(n);
	struct test_seen s = { .len = 0 };
	size_t cuts[1] = { n };
	bool done;

	assert_non_null(body);
	memset(body, 'h', n);
	memcpy(body, "--XyZ\r\nX: ", 10);
	assert_int_equal(test_feed(TEST_TYPE, body, n, cuts, 1, &s, &done),
	    -1);
	assert_false(done);
	free(body);
}

/* What test_large_content checks the content against. */
struct test_check {
	const char *want;
	size_t      len;
	size_t      got;
	int         parts;
	bool        bad;
};

static int
test_check_begin(void *ctx, const char *name, const char *filename,
    const char *type)
{
	((struct test_check *)ctx)->parts++;
	return 0;
}

static int
test_check_data(void *ctx, const char *buf, size_t len)
{
	struct test_check *c = ctx;

	if (c->got + len > c->len || memcmp(c->want + c->got, buf, len) != 0)
		c->bad = true;
	c->got += len;
	return 0;
}

/* A large content of near-delimiters, in pieces of growing sizes. */
static void
test_large_content(void **state)
{
	static const struct multipart_ops ops = {
		.begin = test_check_begin,
		.data = test_check_data,
	};
	static const char head[] = "--XyZ\r\n\r\n";
	static const char tail[] = "\r\n--XyZ--\r\n";
	size_t clen = 300000, hlen = sizeof(head) - 1;
	size_t len = hlen + clen + sizeof(tail) - 1, from = 0, n;
	char *body = malloc(len);
	struct test_check c = { .want = body + hlen, .len = clen };
	struct multipart *mp;

	assert_non_null(body);
	memcpy(body, head, hlen);
	for (size_t i = 0; i < clen; i++)
		body[hlen + i] = "\r\n-XyZ"[(i * 7 + i / 13) % 6];
	memcpy(body + hlen + clen, tail, sizeof(tail) - 1);

	mp = multipart_new(TEST_TYPE, &ops, &c);
	assert_non_null(mp);
	for (size_t step = 1; from < len; step = step * 2 + 5) {
		n = len - from < step ? len - from : step;
		assert_int_equal(multipart_feed(mp, body + from, n), 0);
		from += n;
	}
	assert_true(multipart_complete(mp));
	multipart_free(mp);
	assert_int_equal(c.parts, 1);
	assert_int_equal(c.got, clen);
	assert_false(c.bad);
	free(body);
}

static void
test_callback_stops(void **state)
{
	static const char body[] = "--XyZ\r\n\r\na\r\n--XyZ\r\n\r\nb\r\n--XyZ--";
	struct multipart *mp;
	struct test_seen s = { .stop_at_part = 2 };

	mp = multipart_new(TEST_TYPE, &test_ops, &s);
	assert_non_null(mp);
	assert_int_equal(multipart_feed(mp, body, sizeof(body) - 1), -1);
	assert_string_equal(s.out, "[-|-|-]a[-|-|-]");
	assert_int_equal(multipart_feed(mp, "x", 1), -1);
	assert_false(multipart_complete(mp));
	multipart_free(mp);
}

static void
test_content_types(void **state)
{
	static const char *const refused[] = {
		NULL, "", "application/zip", "multipart/mixed; boundary=a",
		"multipart/form-data", "multipart/form-data; boundary=",
		"multipart/form-data; boundary=\"\"",
		"multipart/form-data; Boundary=abc",
	};
	static const struct {
		const char *type;
		const char *body;
	} accepted[] = {
		{ "multipart/form-data; boundary=abc", "--abc\r\n" },
		{ "Multipart/Form-Data;boundary=abc", "--abc\r\n" },
		{ "multipart/form-data; boundary=\"a b\"", "--a b\r\n" },
		{ "multipart/form-data; boundary=\"", "--\"\r\n" },
		{ "multipart/form-data; boundary=ab; charset=x",
		  "--ab; charset=x\r\n" },
	};
	struct test_seen s = { .len = 0 };
	struct multipart *mp;
	char *big;
	size_t n = MULTIPART_BOUNDARY_MAX + 40;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_null(multipart_new(refused[i], &test_ops, &s));
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		mp = multipart_new(accepted[i].type, &test_ops, &s);
		assert_non_null(mp);
		assert_int_equal(multipart_feed(mp, accepted[i].body,
		    strlen(accepted[i].body)), 0);
		/* Past the delimiter: waiting for headers. */
		assert_false(multipart_complete(mp));
		multipart_free(mp);
	}

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'b', n);
	memcpy(big, "multipart/form-data; boundary=", 30);
	big[30 + MULTIPART_BOUNDARY_MAX] = '\0';
	mp = multipart_new(big, &test_ops, &s);
	assert_non_null(mp);
	multipart_free(mp);
	big[30 + MULTIPART_BOUNDARY_MAX] = 'b';
	big[31 + MULTIPART_BOUNDARY_MAX] = '\0';
	assert_null(multipart_new(big, &test_ops, &s));
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_near_delimiters),
		cmocka_unit_test(test_empty_parts),
		cmocka_unit_test(test_preamble_epilogue),
		cmocka_unit_test(test_no_part),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_bad_after_delimiter),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_header_too_long),
		cmocka_unit_test(test_large_content),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_content_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
