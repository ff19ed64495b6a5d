/*
 * test_discover: the project folder search, framework detection and
 * buildConfig overrides, on small trees made in a mkdtemp() folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/discover.h"

#define TEST_PKG_VALID  "{\"name\":\"x\"}"
#define TEST_PKG_BUILD  "{\"scripts\":{\"build\":\"make\"}}"

/* One file of a tree: path (parents made as needed) and contents, or
 * a folder when the path ends in '/'. */
struct test_file {
	const char *path;
	const char *text;
};

static int
test_setup(void **state)
{
	char *root = malloc(64);

	if (root == NULL)
		return -1;
	snprintf(root, 64, "/tmp/wharf-discover-XXXXXX");
	if (mkdtemp(root) == NULL) {
		free(root);
		return -1;
	}
	*state = root;
	return 0;
}

static int
test_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
test_teardown(void **state)
{
	nftw(*state, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(*state);
	return 0;
}

static void
test_write(const char *root, const char *rel, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	if (path[strlen(path) - 1] == '/')
		return;
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_tree(const char *root, const struct test_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		test_write(root, files[i].path, files[i].text);
}

#define TEST_TREE(root, ...) do { \
	static const struct test_file tree_[] = { __VA_ARGS__ }; \
	test_tree(root, tree_, sizeof(tree_) / sizeof(tree_[0])); \
} while (0)

/* Runs build_discover and checks the folder (NULL: expect not found). */
static void
test_expect_dir(const char *root, const char *dir)
{
	struct build_project proj;
	enum discover_result res;
	char err[512] = "";

	res = build_discover(root, &proj, err, sizeof(err));
	if (dir == NULL) {
		if (res != DISCOVER_NOT_FOUND)
			fail_msg("found %s, expected nothing", proj.dir);
		assert_non_null(strstr(err, "no package.json"));
		return;
	}
	if (res != DISCOVER_OK)
		fail_msg("expected %s: %d %s", dir, res, err);
	assert_string_equal(proj.dir, dir);
}

/* Project folder */

static void
test_root_package(void **state)
{
	TEST_TREE(*state, { "package.json", TEST_PKG_VALID },
	    { "sub/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, ".");
}

static void
test_nested_depth2(void **state)
{
	TEST_TREE(*state, { "README.md", "hi" },
	    { "apps/web/package.json", TEST_PKG_VALID },
	    { "apps/web/src/index.js", "" });
	test_expect_dir(*state, "apps/web");
}

static void
test_depth3_found(void **state)
{
	TEST_TREE(*state, { "a/b/c/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "a/b/c");
}

static void
test_depth4_ignored(void **state)
{
	TEST_TREE(*state, { "a/b/c/d/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, NULL);
}

static void
test_shallowest_wins(void **state)
{
	TEST_TREE(*state, { "a/x/package.json", TEST_PKG_VALID },
	    { "b/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "b");
}

static void
test_name_order(void **state)
{
	/* Same depth: byte order, parent by parent ("a" < "a-b"). */
	TEST_TREE(*state, { "b/package.json", TEST_PKG_VALID },
	    { "a-b/x/package.json", TEST_PKG_VALID },
	    { "a/x/package.json", TEST_PKG_VALID },
	    { "B/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "B");
	test_write(*state, "A/y/package.json", TEST_PKG_VALID);
	test_expect_dir(*state, "B");
}

static void
test_name_order_nested(void **state)
{
	TEST_TREE(*state, { "z/a/package.json", TEST_PKG_VALID },
	    { "a-b/x/package.json", TEST_PKG_VALID },
	    { "a/x/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "a/x");
}

static void
test_skipped_folders(void **state)
{
	TEST_TREE(*state,
	    { "node_modules/pkg/package.json", TEST_PKG_VALID },
	    { "node_modules/package.json", TEST_PKG_VALID },
	    { ".git/package.json", TEST_PKG_VALID },
	    { ".next/package.json", TEST_PKG_VALID },
	    { "dist/package.json", TEST_PKG_VALID },
	    { "Dist/package.json", TEST_PKG_VALID },
	    { "build/package.json", TEST_PKG_VALID },
	    { "out/package.json", TEST_PKG_VALID },
	    { ".hidden/package.json", TEST_PKG_VALID },
	    { "src/.cache/package.json", TEST_PKG_VALID },
	    { "src/node_modules/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, NULL);
	test_write(*state, "src/app/package.json", TEST_PKG_VALID);
	test_expect_dir(*state, "src/app");
}

static void
test_invalid_nested_skipped(void **state)
{
	TEST_TREE(*state, { "a/package.json", "{ broken" },
	    { "b/package.json", "[1, 2]" },
	    { "c/package.json", "" },
	    { "d/package.json/", "" },
	    { "e/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "e");
}

static void
test_invalid_root(void **state)
{
	struct build_project proj;
	char err[512];

	TEST_TREE(*state, { "package.json", "{\"name\": }" },
	    { "app/package.json", TEST_PKG_VALID },
	    { "index.html", "" });
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_INVALID);
	assert_non_null(strstr(err, "package.json is not valid: line 1"));

	test_write(*state, "package.json", "\"a string\"");
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_INVALID);
	assert_non_null(strstr(err, "not a JSON object"));
}

static void
test_links_not_followed(void **state)
{
	char outside[128], link[256], target[256];

	/* A folder link and a package.json link, both to a project. */
	snprintf(outside, sizeof(outside), "%s-outside", (char *)*state);
	assert_int_equal(mkdir(outside, 0755), 0);
	test_write(outside, "package.json", TEST_PKG_VALID);
	test_write(outside, "index.html", "");
	test_write(*state, "real/", "");

	snprintf(link, sizeof(link), "%s/app", (char *)*state);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/real/package.json", (char *)*state);
	snprintf(target, sizeof(target), "%s/package.json", outside);
	assert_int_equal(symlink(target, link), 0);
	test_expect_dir(*state, NULL);
	nftw(outside, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
test_static_root(void **state)
{
	struct build_project proj;
	char err[256];

	TEST_TREE(*state, { "index.html", "<p>" }, { "css/a.css", "" });
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_string_equal(proj.dir, ".");
	assert_false(proj.has_package_json);
	assert_true(proj.has_index);
	assert_string_equal(proj.framework, "static");
	assert_string_equal(proj.build_command, "");
	assert_string_equal(proj.output_dir, ".");
	assert_int_equal(build_project_override(&proj, NULL, err,
	    sizeof(err)), DISCOVER_OK);
}

static void
test_static_nested(void **state)
{
	TEST_TREE(*state, { "README.txt", "" },
	    { "z-site/index.html", "" },
	    { "my-site/pages/index.html", "" },
	    { "my-site/index.html", "" },
	    { "node_modules/index.html", "" });
	test_expect_dir(*state, "my-site");
}

static void
test_package_beats_index(void **state)
{
	TEST_TREE(*state, { "index.html", "" },
	    { "tools/x/package.json", TEST_PKG_VALID });
	test_expect_dir(*state, "tools/x");
}

static void
test_nothing(void **state)
{
	TEST_TREE(*state, { "README.md", "" }, { "a/b/c/d/index.html", "" },
	    { "src/main.c", "" });
	test_expect_dir(*state, NULL);
}

/* Framework */

/* Writes package.json (and more), runs discovery, checks the result. */
static void
test_framework(const char *root, const char *pkg, const char *framework,
    const char *output, const char *command)
{
	struct build_project proj;
	char err[512];

	test_write(root, "package.json", pkg);
	if (build_discover(root, &proj, err, sizeof(err)) != DISCOVER_OK)
		fail_msg("%s: %s", pkg, err);
	assert_string_equal(proj.framework, framework);
	assert_string_equal(proj.output_dir, output);
	assert_string_equal(proj.build_command, command);
}

static void
test_frameworks(void **state)
{
	static const struct {
		const char *pkg, *framework, *output;
	} cases[] = {
		{ "{\"dependencies\":{\"next\":\"14\",\"react\":\"18\"}}",
		    "next", "out" },
		{ "{\"devDependencies\":{\"vite\":\"5\"}}", "vite", "dist" },
		{ "{\"dependencies\":{\"react-scripts\":\"5\"}}",
		    "react-scripts", "build" },
		{ "{\"devDependencies\":{\"@vue/cli-service\":\"5\"}}",
		    "vue", "dist" },
		{ "{\"dependencies\":{\"astro\":\"4\"}}", "astro", "dist" },
		{ "{\"dependencies\":{\"@angular/core\":\"17\"}}",
		    "angular", "dist" },
		{ "{\"devDependencies\":{\"@angular/cli\":\"17\"}}",
		    "angular", "dist" },
		/* First match wins. */
		{ "{\"dependencies\":{\"vite\":\"5\",\"next\":\"14\"}}",
		    "next", "out" },
		{ "{\"devDependencies\":{\"vite\":\"5\",\"astro\":\"4\"}}",
		    "astro", "dist" },
		{ "{\"devDependencies\":{\"vite\":\"5\","
		    "\"@vue/cli-service\":\"5\"}}", "vue", "dist" },
		/* Not a framework: a name elsewhere, or react alone. */
		{ "{\"dependencies\":{\"react\":\"18\"},\"next\":1}",
		    "node", "dist" },
		{ "{\"dependencies\":[\"next\"]}", "node", "dist" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char pkg[512];

		/* Every case with a build script; the last brace reopened. */
		snprintf(pkg, sizeof(pkg),
		    "%.*s,\"scripts\":{\"build\":\"b\"}}",
		    (int)strlen(cases[i].pkg) - 1, cases[i].pkg);
		test_framework(*state, pkg, cases[i].framework,
		    cases[i].output, "npm run build");
	}
}

static void
test_no_build_script(void **state)
{
	struct build_project proj;
	char err[512];

	/* A plain package.json beside an index.html: served as is. */
	TEST_TREE(*state, { "package.json", "{\"scripts\":{\"x\":\"y\"}}" },
	    { "index.html", "" });
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_string_equal(proj.framework, "static");
	assert_string_equal(proj.output_dir, ".");
	assert_string_equal(proj.build_command, "");
	assert_false(proj.has_build_script);
	assert_int_equal(build_project_override(&proj, NULL, err,
	    sizeof(err)), DISCOVER_OK);

	/* Without the index.html there is nothing to publish. */
	snprintf(err, sizeof(err), "%s/index.html", (char *)*state);
	assert_int_equal(unlink(err), 0);
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_int_equal(build_project_override(&proj, NULL, err,
	    sizeof(err)), DISCOVER_INVALID);
	assert_non_null(strstr(err, "no index.html"));

	/* A framework without a build script needs a buildCommand. */
	test_write(*state, "package.json", "{\"dependencies\":{\"next\":\"1\"},"
	    "\"scripts\":{\"build\":\"\"}}");
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_string_equal(proj.framework, "next");
	assert_int_equal(build_project_override(&proj, NULL, err,
	    sizeof(err)), DISCOVER_INVALID);
	assert_non_null(strstr(err, "nothing builds this next project"));
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .build_command = "npx next build" },
	    err, sizeof(err)), DISCOVER_OK);
	assert_string_equal(proj.build_command, "npx next build");
	assert_string_equal(proj.output_dir, "out");
}

static void
test_lockfile(void **state)
{
	struct build_project proj;
	char err[256];

	TEST_TREE(*state, { "app/package.json", TEST_PKG_BUILD });
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_false(proj.has_lockfile);
	assert_true(proj.has_build_script);
	test_write(*state, "app/package-lock.json", "{}");
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_true(proj.has_lockfile);
}

#define TEST_NG_PKG \
	"{\"dependencies\":{\"@angular/core\":\"17\"}," \
	"\"scripts\":{\"build\":\"ng build\"}}"

static void
test_angular(void **state)
{
	static const struct {
		const char *angular_json, *output;
	} cases[] = {
		/* Browser builder: outputPath as is. */
		{ "{\"defaultProject\":\"shop\",\"projects\":{"
		  "\"admin\":{},\"shop\":{\"architect\":{\"build\":{"
		  "\"builder\":\"@angular-devkit/build-angular:browser\","
		  "\"options\":{\"outputPath\":\"dist/shop-app/\"}}}}}}",
		  "dist/shop-app" },
		/* Application builder, no outputPath: the first project. */
		{ "{\"projects\":{\"zeta\":{\"architect\":{\"build\":{"
		  "\"builder\":\"@angular-devkit/build-angular:application\""
		  "}}},\"alpha\":{}}}", "dist/zeta/browser" },
		{ "{\"projects\":{\"app\":{\"architect\":{\"build\":{"
		  "\"builder\":\"@angular/build:application\",\"options\":{"
		  "\"outputPath\":\"out/app\"}}}}}}", "out/app/browser" },
		{ "{\"projects\":{\"app\":{\"architect\":{\"build\":{"
		  "\"builder\":\"@angular/build:application\",\"options\":{"
		  "\"outputPath\":{\"base\":\"www\",\"browser\":\"\"}}}}}}}",
		  "www" },
		{ "{\"projects\":{\"app\":{\"architect\":{\"build\":{"
		  "\"builder\":\"@angular/build:application\",\"options\":{"
		  "\"outputPath\":{\"base\":\"www\","
		  "\"browser\":\"site\"}}}}}}}",
		  "www/site" },
		/* A missing default project: the first one. */
		{ "{\"defaultProject\":\"gone\",\"projects\":{\"app\":{}}}",
		  "dist/app" },
		{ "{\"projects\":{}}", "dist" },
		{ "{\"version\":1}", "dist" },
	};
	struct build_project proj;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_write(*state, "angular.json", cases[i].angular_json);
		test_framework(*state, TEST_NG_PKG, "angular", cases[i].output,
		    "npm run build");
	}

	/* Overriding with the same framework keeps angular.json's path. */
	test_write(*state, "angular.json", cases[0].angular_json);
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .framework = "angular" }, err,
	    sizeof(err)), DISCOVER_OK);
	assert_string_equal(proj.output_dir, "dist/shop-app");
}

static void
test_angular_bad(void **state)
{
	struct build_project proj;
	char err[512];

	test_write(*state, "package.json", TEST_NG_PKG);
	test_write(*state, "angular.json", "{\"projects\":{\"a\":{"
	    "\"architect\":{\"build\":{\"options\":{"
	    "\"outputPath\":\"../../srv\"}}}}}}");
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_INVALID);
	assert_non_null(strstr(err, "outputPath '../../srv'"));

	test_write(*state, "angular.json", "{\"projects\":");
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_INVALID);
	assert_non_null(strstr(err, "angular.json is not valid"));
}

/* Overrides */

static void
test_overrides(void **state)
{
	struct build_project proj;
	char err[512];

	test_write(*state, "package.json", TEST_PKG_BUILD);
	assert_int_equal(build_discover(*state, &proj, err, sizeof(err)),
	    DISCOVER_OK);
	assert_string_equal(proj.framework, "node");

	/* A framework brings its output folder, unless outputDir is set. */
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .framework = "react" }, err,
	    sizeof(err)), DISCOVER_OK);
	assert_string_equal(proj.framework, "react-scripts");
	assert_string_equal(proj.output_dir, "build");
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .framework = "nextjs",
	    .output_dir = "./public/", .build_command = "make site" }, err,
	    sizeof(err)), DISCOVER_OK);
	assert_string_equal(proj.framework, "next");
	assert_string_equal(proj.output_dir, "public");
	assert_string_equal(proj.build_command, "make site");

	/* Empty strings change nothing. */
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ "", "", "" }, err, sizeof(err)),
	    DISCOVER_OK);
	assert_string_equal(proj.output_dir, "public");

	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .framework = "gatsby" }, err,
	    sizeof(err)), DISCOVER_INVALID);
	assert_non_null(strstr(err, "unknown framework 'gatsby'"));
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .output_dir = "../site" }, err,
	    sizeof(err)), DISCOVER_INVALID);
	assert_non_null(strstr(err, "outputDir '../site'"));
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .build_command = "a\nb" }, err,
	    sizeof(err)), DISCOVER_INVALID);
	assert_non_null(strstr(err, "control character"));
}

static void
test_long_command(void **state)
{
	struct build_project proj = { .framework = "node" };
	char cmd[BUILD_COMMAND_MAX + 1], err[256];

	memset(cmd, 'x', sizeof(cmd));
	cmd[BUILD_COMMAND_MAX - 1] = '\0';
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .build_command = cmd }, err,
	    sizeof(err)), DISCOVER_OK);
	cmd[BUILD_COMMAND_MAX - 1] = 'x';
	cmd[BUILD_COMMAND_MAX] = '\0';
	assert_int_equal(build_project_override(&proj,
	    &(struct build_overrides){ .build_command = cmd }, err,
	    sizeof(err)), DISCOVER_INVALID);
}

static void
test_output_dir_check(void **state)
{
	static const struct {
		const char *in, *out;   /* out NULL: refused */
	} cases[] = {
		{ "dist", "dist" }, { "dist/", "dist" }, { "./dist", "dist" },
		{ "a/b/c", "a/b/c" }, { "a//b/./c/", "a/b/c" }, { ".", "." },
		{ "./", "." }, { ".next", ".next" }, { "..dist", "..dist" },
		{ "dist..", "dist.." },
		{ "d\xc3\xa9j\xc3\xa0", "d\xc3\xa9j\xc3\xa0" },
		{ "", NULL }, { "..", NULL }, { "../dist", NULL },
		{ "a/../b", NULL }, { "a/..", NULL }, { "/srv/www", NULL },
		{ "//x", NULL }, { "C:/x", NULL }, { "C:\\x", NULL },
		{ "dist\\..\\..", NULL }, { "a\nb", NULL }, { "a\x7f", NULL },
		{ "\xc0\xae\xc0\xae", NULL },
	};
	char out[BUILD_OUTPUT_MAX], why[128], long_dir[BUILD_OUTPUT_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = build_output_dir_check(cases[i].in, out, sizeof(out),
		    why, sizeof(why));

		if (cases[i].out == NULL && rc != -1)
			fail_msg("'%s' accepted as '%s'", cases[i].in, out);
		if (cases[i].out != NULL && rc != 0)
			fail_msg("'%s' refused: %s", cases[i].in, why);
		if (cases[i].out != NULL)
			assert_string_equal(out, cases[i].out);
	}
	assert_true(build_output_dir_valid("dist/app"));
	assert_false(build_output_dir_valid("../dist"));
	assert_false(build_output_dir_valid(""));
	memset(long_dir, 'd', sizeof(long_dir));
	long_dir[BUILD_OUTPUT_MAX] = '\0';
	assert_int_equal(build_output_dir_check(long_dir, out, sizeof(out),
	    why, sizeof(why)), -1);
	long_dir[BUILD_OUTPUT_MAX - 1] = '\0';
	assert_int_equal(build_output_dir_check(long_dir, out, sizeof(out),
	    why, sizeof(why)), 0);
}

static void
test_framework_outputs(void **state)
{
	assert_string_equal(build_framework_output("next"), "out");
	assert_string_equal(build_framework_output("react-scripts"), "build");
	assert_string_equal(build_framework_output("static"), ".");
	assert_null(build_framework_output("nextjs"));
	assert_null(build_framework_output("gatsby"));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		TEST(test_root_package),
		TEST(test_nested_depth2),
		TEST(test_depth3_found),
		TEST(test_depth4_ignored),
		TEST(test_shallowest_wins),
		TEST(test_name_order),
		TEST(test_name_order_nested),
		TEST(test_skipped_folders),
		TEST(test_invalid_nested_skipped),
		TEST(test_invalid_root),
		TEST(test_links_not_followed),
		TEST(test_static_root),
		TEST(test_static_nested),
		TEST(test_package_beats_index),
		TEST(test_nothing),
		TEST(test_frameworks),
		TEST(test_no_build_script),
		TEST(test_lockfile),
		TEST(test_angular),
		TEST(test_angular_bad),
		TEST(test_overrides),
		cmocka_unit_test(test_long_command),
		cmocka_unit_test(test_output_dir_check),
		cmocka_unit_test(test_framework_outputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
