/*
 * test_extract: safe ZIP extraction.  Every row of
 * tests/data/zips/CASES.tsv is one test (written by
 * tests/data/make-zips.py): the outcome and message, then the state of
 * the disk: nothing beside the destination, no link, no set-id bit, only
 * 0644 and 0755 files, and as many bytes on disk as the stats counted.
 * Then the name rules as a table, and what the corpus cannot say.
 *
 * The corpus is found through $WHARF_TEST_DATA, else the path compiled
 * in by tests/unit/meson.build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/extract.h"

#ifndef WHARF_TEST_DATA
#define WHARF_TEST_DATA "tests/data"
#endif

#define TEST_MAX_CASES  512
#define TEST_LINE_MAX   8192

/* One row of CASES.tsv. */
struct test_case {
	char                 file[128];
	enum extract_result  expect;
	char                 message[256];
	uint64_t             max_bytes;
	uint64_t             max_entries;
	char                 paths[4096];
};

/* A fresh parent folder; the destination is "dest" inside it. */
struct test_dirs {
	char parent[64];
	char dest[96];
};

static const char *
test_data_dir(void)
{
	const char *dir = getenv("WHARF_TEST_DATA");

	return dir != NULL && dir[0] != '\0' ? dir : WHARF_TEST_DATA;
}

static void
test_zip_path(char *out, size_t outlen, const char *file)
{
	snprintf(out, outlen, "%s/zips/%s", test_data_dir(), file);
}

static const char *
test_result_name(enum extract_result res)
{
	switch (res) {
	case EXTRACT_OK:        return "ok";
	case EXTRACT_INVALID:   return "invalid";
	case EXTRACT_REFUSED:   return "refused";
	case EXTRACT_LIMIT:     return "limit";
	case EXTRACT_IO:        return "io";
	}
	return "?";
}

static void
test_mkdirs(struct test_dirs *d)
{
	snprintf(d->parent, sizeof(d->parent), "/tmp/wharf-extract-XXXXXX");
	assert_non_null(mkdtemp(d->parent));
	snprintf(d->dest, sizeof(d->dest), "%s/dest", d->parent);
}

static int
test_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
test_rmdirs(struct test_dirs *d)
{
	nftw(d->parent, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* What the walk of a result found; nftw gives no context pointer. */
static struct {
	uint64_t bytes;
	int      bad;
	char     why[512];
} test_walk;

static int
test_walk_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	mode_t perm = st->st_mode & 07777;

	(void)ftw;
	if (flag == FTW_SL || S_ISLNK(st->st_mode))
		snprintf(test_walk.why, sizeof(test_walk.why), "link %s", path);
	else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		snprintf(test_walk.why, sizeof(test_walk.why), "special %s",
		    path);
	else if (st->st_mode & 07000)
		snprintf(test_walk.why, sizeof(test_walk.why), "set-id %s",
		    path);
	else if (S_ISREG(st->st_mode) && perm != 0644 && perm != 0755)
		snprintf(test_walk.why, sizeof(test_walk.why), "mode %o %s",
		    (unsigned)perm, path);
	else {
		if (S_ISREG(st->st_mode))
			test_walk.bytes += (uint64_t)st->st_size;
		return 0;
	}
	test_walk.bad++;
	return 0;
}

/* The parent holds the destination and nothing else. */
static void
test_check_parent(const struct test_dirs *d)
{
	DIR *dir = opendir(d->parent);
	struct dirent *de;

	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "dest") == 0)
			continue;
		fail_msg("written outside the destination: %s/%s", d->parent,
		    de->d_name);
	}
	closedir(dir);
}

/* Checks one item of the paths column: "d/", "f", "f*", "f=N". */
static void
test_check_path(const struct test_dirs *d, char *item)
{
	char path[8192];
	struct stat st;
	size_t len = strlen(item);
	char *eq = strrchr(item, '=');
	long long size = -1;
	int exec = 0, dir = 0;

	if (eq != NULL) {
		*eq = '\0';
		size = atoll(eq + 1);
	} else if (len > 0 && item[len - 1] == '*') {
		item[len - 1] = '\0';
		exec = 1;
	} else if (len > 0 && item[len - 1] == '/') {
		dir = 1;
	}
	snprintf(path, sizeof(path), "%s/%s", d->dest, item);
	if (lstat(path, &st) != 0)
		fail_msg("missing: %s", item);
	if (dir && !S_ISDIR(st.st_mode))
		fail_msg("not a folder: %s", item);
	if (!dir && !S_ISREG(st.st_mode))
		fail_msg("not a file: %s", item);
	if (!dir && (st.st_mode & 0777) != (exec ? 0755 : 0644))
		fail_msg("mode %o: %s", (unsigned)(st.st_mode & 0777), item);
	if (size >= 0 && st.st_size != size)
		fail_msg("%lld bytes, not %lld: %s", (long long)st.st_size,
		    size, item);
}

static void
test_check_paths(const struct test_dirs *d, const char *paths)
{
	char copy[4096];
	char *save = NULL;

	if (strcmp(paths, "-") == 0)
		return;
	snprintf(copy, sizeof(copy), "%s", paths);
	for (char *item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save))
		test_check_path(d, item);
}

/* Corpus */

/* The case's folders, removed by the teardown even after a failure. */
static struct test_dirs test_corpus_dirs;

static int
test_corpus_teardown(void **state)
{
	(void)state;
	if (test_corpus_dirs.parent[0] != '\0')
		test_rmdirs(&test_corpus_dirs);
	memset(&test_corpus_dirs, 0, sizeof(test_corpus_dirs));
	return 0;
}

static void
test_corpus_case(void **state)
{
	const struct test_case *c = *state;
	struct extract_limits lim = {
		.max_bytes = c->max_bytes, .max_entries = c->max_entries,
	};
	struct test_dirs *d = &test_corpus_dirs;
	struct extract_stats stats;
	char zip[512], err[1024];
	enum extract_result res;

	test_zip_path(zip, sizeof(zip), c->file);
	test_mkdirs(d);
	res = build_extract(zip, d->dest, &lim, &stats, err, sizeof(err));
	print_message("%s: %s: %s\n", c->file, test_result_name(res), err);

	if (res != c->expect)
		fail_msg("%s: expected %s, got %s (%s)", c->file,
		    test_result_name(c->expect), test_result_name(res), err);
	if (res != EXTRACT_OK && strstr(err, c->message) == NULL)
		fail_msg("%s: message '%s' lacks '%s'", c->file, err,
		    c->message);
	if (res == EXTRACT_OK)
		assert_string_equal(err, "");

	/* The disk after it, whatever the outcome. */
	test_check_parent(d);
	memset(&test_walk, 0, sizeof(test_walk));
	if (access(d->dest, F_OK) == 0)
		assert_int_equal(nftw(d->dest, test_walk_one, 16, FTW_PHYS), 0);
	if (test_walk.bad)
		fail_msg("%s: %s", c->file, test_walk.why);
	assert_true(stats.bytes == test_walk.bytes);
	assert_true(stats.bytes <= (c->max_bytes ? c->max_bytes :
	    EXTRACT_MAX_BYTES));
	if (res == EXTRACT_OK)
		test_check_paths(d, c->paths);
}

static enum extract_result
test_parse_expect(const char *s)
{
	if (strcmp(s, "ok") == 0)
		return EXTRACT_OK;
	if (strcmp(s, "invalid") == 0)
		return EXTRACT_INVALID;
	if (strcmp(s, "refused") == 0)
		return EXTRACT_REFUSED;
	if (strcmp(s, "limit") == 0)
		return EXTRACT_LIMIT;
	return EXTRACT_IO;
}

/* Splits one row; returns 0, or -1 for a malformed one. */
static int
test_parse_row(char *line, struct test_case *c)
{
	char *field[6];
	char *save = NULL;
	int n = 0;

	line[strcspn(line, "\r\n")] = '\0';
	for (char *f = strtok_r(line, "\t", &save); f != NULL && n < 6;
	    f = strtok_r(NULL, "\t", &save))
		field[n++] = f;
	if (n != 6)
		return -1;
	snprintf(c->file, sizeof(c->file), "%s", field[0]);
	c->expect = test_parse_expect(field[1]);
	snprintf(c->message, sizeof(c->message), "%s", field[2]);
	c->max_bytes = strcmp(field[3], "-") ? strtoull(field[3], NULL, 10) : 0;
	c->max_entries = strcmp(field[4], "-") ?
	    strtoull(field[4], NULL, 10) : 0;
	snprintf(c->paths, sizeof(c->paths), "%s", field[5]);
	return 0;
}

static size_t
test_load_cases(struct test_case *cases, size_t max)
{
	char path[512], line[TEST_LINE_MAX];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/zips/CASES.tsv", test_data_dir());
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "test_extract: cannot open %s\n", path);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL && n < max) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (test_parse_row(line, &cases[n]) != 0) {
			fprintf(stderr, "test_extract: bad row: %s\n", line);
			n = 0;
			break;
		}
		n++;
	}
	fclose(f);
	return n;
}

/* Name rules */

static void
test_name_table(void **state)
{
	static const struct {
		const char *name;
		size_t      len;        /* 0: strlen */
		const char *why;        /* NULL: allowed */
	} cases[] = {
		{ "index.html", 0, NULL },
		{ "a/b/c.txt", 0, NULL },
		{ "dir/", 0, NULL },
		{ "./index.html", 0, NULL },
		{ "./", 0, NULL },
		{ "a//b", 0, NULL },
		{ "a/./b", 0, NULL },
		{ "...", 0, NULL },
		{ "..a", 0, NULL },
		{ "a..", 0, NULL },
		{ ".hidden", 0, NULL },
		{ "%2e%2e/x", 0, NULL },
		{ "caf\xc3\xa9", 0, NULL },
		{ "\xef\xbc\x8e\xef\xbc\x8e/x", 0, NULL },     /* fullwidth */
		{ "ab:c", 0, NULL },
		{ "a/C:", 0, NULL },
		{ "1:x", 0, NULL },
		{ "", 0, "empty name" },
		{ "..", 0, "leaves the archive" },
		{ "../x", 0, "leaves the archive" },
		{ "a/../../x", 0, "leaves the archive" },
		{ "a/../b", 0, "leaves the archive" },
		{ "./../x", 0, "leaves the archive" },
		{ "a/..", 0, "leaves the archive" },
		{ "a/../", 0, "leaves the archive" },
		{ "/etc/passwd", 0, "absolute" },
		{ "//x", 0, "absolute" },
		{ "/", 0, "absolute" },
		{ "..\\x", 0, "backslash" },
		{ "a\\..\\..\\x", 0, "backslash" },
		{ "C:\\x", 0, "backslash" },
		{ "C:/x", 0, "drive letter" },
		{ "z:x", 0, "drive letter" },
		{ "C:", 0, "drive letter" },
		{ "a:b", 0, "drive letter" },
		{ "a\0b", 3, "NUL" },
		{ "evil.txt\0.png", 13, "NUL" },
		{ "a\x01" "b", 0, "control" },
		{ "a\nb", 0, "control" },
		{ "a\rb", 0, "control" },
		{ "a\tb", 0, "control" },
		{ "a\x7f", 0, "control" },
		{ "\xc0\xae\xc0\xae/x", 0, "UTF-8" },          /* overlong */
		{ "\xed\xa0\x80", 0, "UTF-8" },                /* surrogate */
		{ "\xf4\x90\x80\x80", 0, "UTF-8" },            /* > U+10FFFF */
		{ "caf\xe9", 0, "UTF-8" },                     /* Latin-1 */
		{ "\xe2\x82", 0, "UTF-8" },                    /* cut */
	};
	char why[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len :
		    strlen(cases[i].name);
		int rc;

		why[0] = '\0';
		rc = build_extract_check_name(cases[i].name, len, 0, why,
		    sizeof(why));
		if (cases[i].why == NULL && rc != 0)
			fail_msg("case %zu refused: %s", i, why);
		if (cases[i].why != NULL && (rc != -1 ||
		    strstr(why, cases[i].why) == NULL))
			fail_msg("case %zu: rc %d, why '%s', wanted '%s'", i,
			    rc, why, cases[i].why);
	}
}

static void
test_name_lengths(void **state)
{
	char name[2048], why[256];

	/* The whole path, against max_name. */
	memset(name, 'a', sizeof(name));
	for (size_t i = 100; i < 1024; i += 101)
		name[i] = '/';
	assert_int_equal(build_extract_check_name(name, 1024, 0, why,
	    sizeof(why)), 0);
	assert_int_equal(build_extract_check_name(name, 1025, 0, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "over the limit of 1024"));
	assert_int_equal(build_extract_check_name(name, 50, 40, why,
	    sizeof(why)), -1);

	/* One segment, against NAME_MAX. */
	memset(name, 's', 256);
	assert_int_equal(build_extract_check_name(name, 255, 0, why,
	    sizeof(why)), 0);
	assert_int_equal(build_extract_check_name(name, 256, 0, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "segment"));
}

/* Limits from real bytes */

static void
test_bomb_stops_at_limit(void **state)
{
	struct extract_limits lim = { .max_bytes = 5 << 20 };
	struct extract_stats stats;
	struct test_dirs d;
	struct stat st;
	char zip[512], err[512], path[256];

	test_zip_path(zip, sizeof(zip), "bomb.zip");
	test_mkdirs(&d);
	assert_int_equal(build_extract(zip, d.dest, &lim, &stats, err,
	    sizeof(err)), EXTRACT_LIMIT);
	assert_true(stats.bytes == 5 << 20);
	snprintf(path, sizeof(path), "%s/zeros.bin", d.dest);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5 << 20);
	test_rmdirs(&d);
}

/* The header says 10 bytes: the limit still counts what is inflated. */
static void
test_lying_header(void **state)
{
	struct extract_limits lim = { .max_bytes = 100 << 10 };
	struct extract_stats stats;
	struct test_dirs d;
	char zip[512], err[512];

	test_zip_path(zip, sizeof(zip), "lying-deflate-limit.zip");
	test_mkdirs(&d);
	assert_int_equal(build_extract(zip, d.dest, &lim, &stats, err,
	    sizeof(err)), EXTRACT_LIMIT);
	assert_true(stats.bytes == 100 << 10);
	assert_non_null(strstr(err, "entry 1 'x'"));
	test_rmdirs(&d);

	/* Without a tight limit libarchive notices the lie at the end. */
	test_mkdirs(&d);
	assert_int_equal(build_extract(zip, d.dest, NULL, &stats, err,
	    sizeof(err)), EXTRACT_INVALID);
	assert_true(stats.bytes > 10);
	test_rmdirs(&d);
}

/* Links already in the destination are never followed. */

static void
test_existing_dir_link(void **state)
{
	struct test_dirs d;
	char zip[512], err[512], link[256], outside[256];
	DIR *dir;
	struct dirent *de;
	int n = 0;

	test_zip_path(zip, sizeof(zip), "ok-static-nested.zip");
	test_mkdirs(&d);
	snprintf(outside, sizeof(outside), "%s/outside", d.parent);
	snprintf(link, sizeof(link), "%s/my-site", d.dest);
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(mkdir(d.dest, 0755), 0);
	assert_int_equal(symlink(outside, link), 0);

	assert_int_equal(build_extract(zip, d.dest, NULL, NULL, err,
	    sizeof(err)), EXTRACT_REFUSED);
	assert_non_null(strstr(err, "entry 1 'my-site/': duplicate entry"));
	dir = opendir(outside);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL)
		n++;
	closedir(dir);
	assert_int_equal(n, 2);         /* "." and ".." */
	test_rmdirs(&d);
}

static void
test_existing_file_link(void **state)
{
	struct test_dirs d;
	char zip[512], err[512], link[256], target[256];
	struct stat st;

	test_zip_path(zip, sizeof(zip), "ok-dot-prefix.zip");
	test_mkdirs(&d);
	snprintf(target, sizeof(target), "%s/target", d.parent);
	snprintf(link, sizeof(link), "%s/index.html", d.dest);
	assert_int_equal(mkdir(d.dest, 0755), 0);
	assert_int_equal(symlink(target, link), 0);

	assert_int_equal(build_extract(zip, d.dest, NULL, NULL, err,
	    sizeof(err)), EXTRACT_REFUSED);
	assert_non_null(strstr(err, "duplicate entry"));
	assert_int_equal(lstat(target, &st), -1);
	test_rmdirs(&d);
}

/* Errors of the caller's making, and descriptors. */

static void
test_missing_archive(void **state)
{
	struct test_dirs d;
	char err[512];

	test_mkdirs(&d);
	assert_int_equal(build_extract("/nonexistent/x.zip", d.dest, NULL,
	    NULL, err, sizeof(err)), EXTRACT_IO);
	assert_non_null(strstr(err, "opening the archive"));
	assert_int_equal(build_extract(d.parent, d.dest, NULL, NULL, err,
	    sizeof(err)), EXTRACT_INVALID);
	test_rmdirs(&d);
}

static int
test_count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL)
		n++;
	closedir(dir);
	return n;
}

static void
test_no_fd_left(void **state)
{
	static const char *const files[] = {
		"ok-nested.zip", "dup-file.zip", "link-symlink.zip",
		"trunc-half.zip", "bomb-total.zip", "corrupt-crc.zip",
		"dup-file-as-parent.zip", "ok-zip64.zip",
	};
	struct extract_limits lim = { .max_bytes = 1 << 20 };
	int before = test_count_fds();

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct test_dirs d;
		char zip[512], err[512];

		test_zip_path(zip, sizeof(zip), files[i]);
		test_mkdirs(&d);
		build_extract(zip, d.dest, &lim, NULL, err, sizeof(err));
		test_rmdirs(&d);
	}
	assert_int_equal(test_count_fds(), before);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_name_table),
		cmocka_unit_test(test_name_lengths),
		cmocka_unit_test(test_bomb_stops_at_limit),
		cmocka_unit_test(test_lying_header),
		cmocka_unit_test(test_existing_dir_link),
		cmocka_unit_test(test_existing_file_link),
		cmocka_unit_test(test_missing_archive),
		cmocka_unit_test(test_no_fd_left),
	};
	static struct test_case cases[TEST_MAX_CASES];
	static struct CMUnitTest corpus[TEST_MAX_CASES];
	size_t n = test_load_cases(cases, TEST_MAX_CASES);
	int failed;

	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		corpus[i] = (struct CMUnitTest){
			.name = cases[i].file,
			.test_func = test_corpus_case,
			.teardown_func = test_corpus_teardown,
			.initial_state = &cases[i],
		};
	}
	umask(022);
	failed = cmocka_run_group_tests(fixed, NULL, NULL);
	failed += _cmocka_run_group_tests("corpus", corpus, n, NULL, NULL);
	return failed;
}
