/*
 * test_mime: content types from the system table (Debian's
 * media-types, a dependency of scripts/install-deps.sh), a hostile
 * table (tests/data/mime/hostile.types, see its README), a missing
 * one, the charset rule, what is compressible, and the one-time load
 * under threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/mime.h"

#ifndef WHARF_TEST_DATA
#define WHARF_TEST_DATA "tests/data"
#endif

#define TEST_THREADS    8
#define TEXT(t)         t "; charset=utf-8"

struct test_type {
	const char *path;
	const char *type;
};

static const char *
test_data_dir(void)
{
	const char *dir = getenv("WHARF_TEST_DATA");

	return dir != NULL && dir[0] != '\0' ? dir : WHARF_TEST_DATA;
}

static void
test_types(const struct mime_table *table, const struct test_type *cases,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = table != NULL ?
		    mime_table_lookup(table, cases[i].path) :
		    mime_type_for(cases[i].path);

		if (strcmp(got, cases[i].type) != 0)
			fail_msg("%s: '%s', want '%s'", cases[i].path, got,
			    cases[i].type);
	}
}

static void *
test_thread(void *arg)
{
	(void)arg;
	return (void *)mime_type_for("/index.html");
}

/* The first lookups race on the one-time load; all see one table. */
static void
test_first_use_threads(void **state)
{
	pthread_t threads[TEST_THREADS];
	void *got[TEST_THREADS];

	(void)state;
	for (int i = 0; i < TEST_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL,
		    test_thread, NULL), 0);
	for (int i = 0; i < TEST_THREADS; i++)
		assert_int_equal(pthread_join(threads[i], &got[i]), 0);
	for (int i = 0; i < TEST_THREADS; i++) {
		assert_string_equal(got[i], TEXT("text/html"));
		assert_ptr_equal(got[i], got[0]);
	}
	assert_ptr_equal(mime_type_for("/a.html"), got[0]);
}

static void
test_system_table(void **state)
{
	static const struct test_type cases[] = {
		{ "/index.html",        TEXT("text/html") },
		{ "/about.htm",         TEXT("text/html") },
		{ "/INDEX.HTML",        TEXT("text/html") },
		{ "/app.js",            TEXT("text/javascript") },
		{ "/mod.mjs",           TEXT("text/javascript") },
		{ "/site.css",          TEXT("text/css") },
		{ "/data.json",         TEXT("application/json") },
		{ "/app.js.map",        TEXT("application/json") },
		{ "/site.webmanifest",  TEXT("application/manifest+json") },
		{ "/feed.xml",          TEXT("application/xml") },
		{ "/logo.svg",          TEXT("image/svg+xml") },
		{ "/robots.txt",        TEXT("text/plain") },
		{ "/notes.md",          TEXT("text/markdown") },
		{ "/logo.png",          "image/png" },
		{ "/photo.JPG",         "image/jpeg" },
		{ "/photo.webp",        "image/webp" },
		{ "/favicon.ico",       "image/vnd.microsoft.icon" },
		{ "/app.wasm",          "application/wasm" },
		{ "/font.woff2",        "font/woff2" },
		{ "/font.woff",         "font/woff" },
		{ "/doc.pdf",           "application/pdf" },
		{ "/x.tar.gz",          "application/gzip" },
		{ "/run.sh",            "application/x-sh" },
		{ "noslash.txt",        TEXT("text/plain") },
		{ "/README",            MIME_DEFAULT },
		{ "/.htaccess",         MIME_DEFAULT },
		{ "/dir.d/file",        MIME_DEFAULT },
		{ "/dir/",              MIME_DEFAULT },
		{ "/x.",                MIME_DEFAULT },
		{ "/x.unknownextension", MIME_DEFAULT },
		{ "/x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", MIME_DEFAULT },
		{ "",                   MIME_DEFAULT },
	};

	(void)state;
	assert_int_equal(mime_init(), 0);
	test_types(NULL, cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_hostile_table(void **state)
{
	static const struct test_type cases[] = {
		{ "/a.dup",     TEXT("text/x-first") },
		{ "/a.again",   TEXT("text/x-second") },
		{ "/a.upx",     "image/x-upper" },
		{ "/a.UPY",     "image/x-upper" },
		{ "/a.okext",   TEXT("text/x-ext") },
		{ "/a.trail",   TEXT("text/x-trailing") },
		{ "/a.crlf",    TEXT("text/x-crlf") },
		{ "/a.html",    "application/x-custom" },
		{ "/a.indent",  TEXT("text/x-indented") },
		{ "/a.svgx",    TEXT("image/svg+xml") },
		{ "/a.apij",    TEXT("application/vnd.api+json") },
		{ "/a.last",    TEXT("text/x-last") },
		{ "/a.css",     TEXT("text/css") },
	};
	static const char *const skipped[] = {
		"/a.bad1", "/a.bad2", "/a.bad3", "/a.bad4", "/a.bad5",
		"/a.bad6", "/a.bad7", "/a.bad8", "/a.bad9", "/a.ext",
		"/a.eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "/a.comment",
		"/a.none",
	};
	struct mime_table *table;
	char path[1024];

	(void)state;
	snprintf(path, sizeof(path), "%s/mime/hostile.types",
	    test_data_dir());
	assert_int_equal(mime_table_load(path, &table), 0);
	assert_non_null(table);
	test_types(table, cases, sizeof(cases) / sizeof(cases[0]));
	for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
		if (strcmp(mime_table_lookup(table, skipped[i]),
		    MIME_DEFAULT) != 0)
			fail_msg("%s: '%s', want the default", skipped[i],
			    mime_table_lookup(table, skipped[i]));
	mime_table_free(table);
}

/* Without the system table the built-in types still serve a site. */
static void
test_missing_table(void **state)
{
	static const struct test_type cases[] = {
		{ "/index.html",        TEXT("text/html") },
		{ "/app.js",            TEXT("text/javascript") },
		{ "/logo.svg",          TEXT("image/svg+xml") },
		{ "/font.woff2",        "font/woff2" },
		{ "/run.sh",            MIME_DEFAULT },
	};
	struct mime_table *table;

	(void)state;
	assert_int_equal(mime_table_load("/nonexistent/mime.types", &table),
	    -ENOENT);
	assert_non_null(table);
	assert_true(mime_table_count(table) > 20);
	test_types(table, cases, sizeof(cases) / sizeof(cases[0]));
	mime_table_free(table);
	assert_string_equal(mime_table_lookup(NULL, "/a.html"), MIME_DEFAULT);
	mime_table_free(NULL);
}

static void
test_compressible(void **state)
{
	static const char *const yes[] = {
		"text/html", "text/html; charset=utf-8", "TEXT/CSS",
		"text/javascript;charset=utf-8", "text/plain",
		"application/javascript", "application/json",
		"application/manifest+json", "application/ld+json",
		"application/xml", "image/svg+xml", "application/rss+xml",
		"application/wasm", "font/ttf", "font/otf",
		"application/vnd.ms-fontobject", "image/vnd.microsoft.icon",
		"image/x-icon", "image/bmp", "Application/JSON ; q=1",
	};
	static const char *const no[] = {
		"image/png", "image/jpeg", "image/webp", "image/avif",
		"font/woff", "font/woff2", "application/gzip",
		"application/zip", "application/pdf", "video/mp4",
		"audio/mpeg", MIME_DEFAULT, "", "text", "text/",
		"application/jsonx", "application/xml-dtdx", "+json", "+xml",
		"image/svg", "application/javascript2",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!mime_is_compressible(yes[i]))
			fail_msg("'%s' should be compressible", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (mime_is_compressible(no[i]))
			fail_msg("'%s' should not be compressible", no[i]);
}

/* Every type the system table gives for a text file gets a charset. */
static void
test_charset_rule(void **state)
{
	(void)state;
	assert_non_null(strstr(mime_type_for("/a.csv"), "; charset=utf-8"));
	assert_non_null(strstr(mime_type_for("/a.rss"), "; charset=utf-8"));
	assert_null(strstr(mime_type_for("/a.png"), "charset"));
	assert_null(strstr(mime_type_for("/a.bin"), "charset"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_threads),
		cmocka_unit_test(test_system_table),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_missing_table),
		cmocka_unit_test(test_compressible),
		cmocka_unit_test(test_charset_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
