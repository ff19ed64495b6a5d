/*
 * discover: the project folder (a breadth-first search, one depth at a
 * time) and its framework (a table of dependency names).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "build/discover.h"
#include "build/utf8.h"
#include "core/core.h"
#include "core/log.h"

/* A dependency that names a framework, first match wins. */
struct discover_framework {
	const char *dependency;
	const char *name;
};

static const struct discover_framework discover_frameworks[] = {
	{ "next",               "next" },
	{ "astro",              "astro" },
	{ "@angular/core",      "angular" },
	{ "@angular/cli",       "angular" },
	{ "@vue/cli-service",   "vue" },
	{ "react-scripts",      "react-scripts" },
	{ "vite",               "vite" },
};

/* Every framework name, with its default output folder. */
struct discover_output {
	const char *name;
	const char *output;
};

static const struct discover_output discover_outputs[] = {
	{ "next",               "out" },
	{ "astro",              "dist" },
	{ "angular",            "dist" },
	{ "vue",                "dist" },
	{ "react-scripts",      "build" },
	{ "vite",               "dist" },
	{ "node",               "dist" },
	{ "static",             "." },
};

/* Names of the original API, taken as the names above. */
static const struct discover_output discover_aliases[] = {
	{ "nextjs",             "next" },
	{ "react",              "react-scripts" },
};

/* Folders the search never enters, besides hidden ones. */
static const char *const discover_skipped[] = {
	"node_modules", "dist", "build", "out",
};

#define DISCOVER_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Folders of one depth, as paths under the source root ("." first). */
struct discover_level {
	char  **paths;
	size_t  n;
	size_t  cap;
};

/* The search, and the first folder with an index.html it passed. */
struct discover_search {
	int                   rootfd;
	struct discover_level level;
	struct discover_level next;
	size_t                visited;
	char                  index_dir[WHARF_PATH_MAX];
	bool                  index_found;
};

static enum discover_result __attribute__((format(printf, 4, 5)))
discover_fail(enum discover_result res, char *err, size_t errlen,
    const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return res;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return res;
}

static int
discover_copy(char *dst, size_t dstlen, const char *src)
{
	size_t len = strlen(src);

	if (len >= dstlen)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

/* Files */

/* Opens a folder under the root, never through a link; -errno. */
static int
discover_open_dir(int rootfd, const char *path)
{
	int fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static bool
discover_is_file(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/*
 * Loads name in dirfd as JSON holding an object into *out (the caller
 * owns it).  Returns 0; -ENOENT when there is no such file; -EINVAL
 * when it is not a JSON object, with the reason in why; or -errno.
 */
static int
discover_load_json(int dirfd, const char *name, json_t **out, char *why,
    size_t whylen)
{
	struct stat st;
	json_error_t jerr;
	char *text = NULL;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOENT;
		goto out;
	}
	if (st.st_size > DISCOVER_JSON_MAX) {
		snprintf(why, whylen, "larger than %d bytes",
		    DISCOVER_JSON_MAX);
		rc = -EINVAL;
		goto out;
	}

	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n = pread(fd, text, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		rc = n < 0 ? -errno : -EIO;
		goto out;
	}

	*out = json_loadb(text, (size_t)n, JSON_DECODE_ANY, &jerr);
	if (*out == NULL) {
		snprintf(why, whylen, "line %d: %s", jerr.line, jerr.text);
		rc = -EINVAL;
	} else if (!json_is_object(*out)) {
		snprintf(why, whylen, "not a JSON object");
		json_decref(*out);
		*out = NULL;
		rc = -EINVAL;
	}
out:
	free(text);
	close(fd);
	return rc;
}

/* Search */

static int
discover_level_add(struct discover_level *lv, const char *path)
{
	char *copy;

	if (lv->n == lv->cap) {
		size_t cap = lv->cap ? lv->cap * 2 : 16;
		char **paths = realloc(lv->paths, cap * sizeof(*paths));
		if (paths == NULL)
			return -ENOMEM;
		lv->paths = paths;
		lv->cap = cap;
	}
	copy = strdup(path);
	if (copy == NULL)
		return -ENOMEM;
	lv->paths[lv->n++] = copy;
	return 0;
}

static void
discover_level_clear(struct discover_level *lv)
{
	for (size_t i = 0; i < lv->n; i++)
		free(lv->paths[i]);
	free(lv->paths);
	lv->paths = NULL;
	lv->n = lv->cap = 0;
}

static bool
discover_skip(const char *name)
{
	if (name[0] == '.')
		return true;    /* hidden, and "." and ".." */
	for (size_t i = 0; i < DISCOVER_NELEM(discover_skipped); i++)
		if (strcasecmp(name, discover_skipped[i]) == 0)
			return true;
	return false;
}

static int
discover_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Appends the real subfolders of path (open as dirfd) to the next level,
 * sorted by name.  Returns 0 or -errno.
 */
static int
discover_children(struct discover_search *s, const char *path, int dirfd)
{
	struct discover_level kids = { 0 };
	char child[WHARF_PATH_MAX];
	struct dirent *de;
	DIR *dir = NULL;
	int fd, rc = 0;

	fd = dup(dirfd);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(dir)) != NULL && rc == 0) {
		struct stat st;

		if (discover_skip(de->d_name))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		rc = discover_level_add(&kids, de->d_name);
	}
	closedir(dir);
	if (rc != 0)
		goto out;

	if (kids.n > 1)
		qsort(kids.paths, kids.n, sizeof(*kids.paths), discover_cmp);
	for (size_t i = 0; i < kids.n && rc == 0; i++) {
		if (s->visited + s->next.n >= DISCOVER_MAX_DIRS)
			break;
		if (util_fmt(child, sizeof(child), "%s/%s", path,
		    kids.paths[i]) != 0)
			continue;       /* too deep for a path: not searched */
		rc = discover_level_add(&s->next,
		    strcmp(path, ".") == 0 ? kids.paths[i] : child);
	}
out:
	discover_level_clear(&kids);
	return rc;
}

/*
 * Looks at one folder: sets *found when it holds a valid package.json,
 * notes its index.html, and queues its subfolders for the next depth.
 */
static enum discover_result
discover_visit(struct discover_search *s, const char *path, int depth,
    bool *found, char *err, size_t errlen)
{
	enum discover_result res = DISCOVER_OK;
	char why[256];
	json_t *pkg = NULL;
	int dirfd, rc;

	dirfd = discover_open_dir(s->rootfd, path);
	if (dirfd < 0)
		return DISCOVER_OK;     /* gone, or not a folder */
	s->visited++;

	rc = discover_load_json(dirfd, "package.json", &pkg, why, sizeof(why));
	json_decref(pkg);
	*found = rc == 0;
	if (*found)
		goto out;
	if (rc == -EINVAL && depth == 0) {
		res = discover_fail(DISCOVER_INVALID, err, errlen,
		    "package.json is not valid: %s", why);
		goto out;
	}
	if (rc == -EINVAL)
		log_debug("build.discover", "skipped=%s/package.json", path);

	if (!s->index_found && discover_is_file(dirfd, "index.html"))
		s->index_found = discover_copy(s->index_dir,
		    sizeof(s->index_dir), path) == 0;
	if (depth < DISCOVER_MAX_DEPTH) {
		rc = discover_children(s, path, dirfd);
		if (rc != 0)
			res = discover_fail(DISCOVER_IO, err, errlen,
			    "listing %s: %s", path, strerror(-rc));
	}
out:
	close(dirfd);
	return res;
}

/* Depth by depth; *found is the project folder, or "" for none. */
static enum discover_result
discover_search(struct discover_search *s, char *found, size_t foundlen,
    char *err, size_t errlen)
{
	found[0] = '\0';
	if (discover_level_add(&s->level, ".") != 0)
		return discover_fail(DISCOVER_IO, err, errlen, "out of memory");

	for (int depth = 0; depth <= DISCOVER_MAX_DEPTH; depth++) {
		for (size_t i = 0; i < s->level.n; i++) {
			const char *path = s->level.paths[i];
			enum discover_result res;
			bool hit = false;

			res = discover_visit(s, path, depth, &hit, err, errlen);
			if (res != DISCOVER_OK)
				return res;
			if (hit)
				return discover_copy(found, foundlen, path) ==
				    0 ? DISCOVER_OK : DISCOVER_IO;
		}
		discover_level_clear(&s->level);
		s->level = s->next;
		memset(&s->next, 0, sizeof(s->next));
	}
	return DISCOVER_OK;
}

enum discover_result
build_discover(const char *source_dir, struct build_project *proj,
    char *err, size_t errlen)
{
	struct discover_search s = { .rootfd = -1 };
	enum discover_result res;

	memset(proj, 0, sizeof(*proj));
	s.rootfd = open(source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.rootfd < 0)
		return discover_fail(DISCOVER_IO, err, errlen, "opening %s: %s",
		    source_dir, strerror(errno));

	res = discover_search(&s, proj->dir, sizeof(proj->dir), err, errlen);
	if (res != DISCOVER_OK)
		goto out;
	if (proj->dir[0] != '\0') {
		proj->has_package_json = true;
	} else if (s.index_found) {
		memcpy(proj->dir, s.index_dir, sizeof(proj->dir));
	} else {
		res = discover_fail(DISCOVER_NOT_FOUND, err, errlen,
		    "no package.json and no index.html found (searched %d "
		    "folders deep; node_modules, dist, build, out and hidden "
		    "folders are skipped)", DISCOVER_MAX_DEPTH);
		goto out;
	}
	res = build_detect_framework(source_dir, proj, err, errlen);
out:
	discover_level_clear(&s.level);
	discover_level_clear(&s.next);
	close(s.rootfd);
	return res;
}

/* Framework */

static bool
discover_depends(json_t *pkg, const char *name)
{
	json_t *deps = json_object_get(pkg, "dependencies");
	json_t *dev = json_object_get(pkg, "devDependencies");

	return (json_is_object(deps) && json_object_get(deps, name)) ||
	    (json_is_object(dev) && json_object_get(dev, name));
}

static const char *
discover_detect(json_t *pkg)
{
	for (size_t i = 0; i < DISCOVER_NELEM(discover_frameworks); i++)
		if (discover_depends(pkg, discover_frameworks[i].dependency))
			return discover_frameworks[i].name;
	return NULL;
}

/* The project angular.json builds: defaultProject, else the first. */
static json_t *
discover_angular_project(json_t *ng, const char **name)
{
	json_t *projects = json_object_get(ng, "projects");
	const char *def = json_string_value(json_object_get(ng,
	    "defaultProject"));
	void *it;

	if (!json_is_object(projects))
		return NULL;
	if (def != NULL && json_is_object(json_object_get(projects, def))) {
		*name = def;
		return json_object_get(projects, def);
	}
	it = json_object_iter(projects);
	if (it == NULL || !json_is_object(json_object_iter_value(it)))
		return NULL;
	*name = json_object_iter_key(it);
	return json_object_iter_value(it);
}

/*
 * Output folder of the Angular project, into out: outputPath, or
 * dist/<project>, with the application builder's browser folder.
 */
static int
discover_angular_path(json_t *ng, char *out, size_t outlen)
{
	const char *name = NULL, *builder, *base, *browser = "browser";
	json_t *project, *target, *path;
	char def[WHARF_PATH_MAX];
	bool application;

	project = discover_angular_project(ng, &name);
	if (project == NULL)
		return discover_copy(out, outlen, "dist");
	target = json_object_get(project, "architect");
	if (!json_is_object(target))
		target = json_object_get(project, "targets");
	target = json_object_get(target, "build");
	builder = json_string_value(json_object_get(target, "builder"));
	application = builder != NULL && strlen(builder) >= 12 &&
	    strcmp(builder + strlen(builder) - 12, ":application") == 0;

	path = json_object_get(json_object_get(target, "options"),
	    "outputPath");
	if (json_is_object(path)) {
		if (json_is_string(json_object_get(path, "browser")))
			browser = json_string_value(json_object_get(path,
			    "browser"));
		path = json_object_get(path, "base");
	}
	base = json_string_value(path);
	if (base == NULL) {
		if (util_fmt(def, sizeof(def), "dist/%s", name) != 0)
			return -1;
		base = def;
	}
	if (!application || browser[0] == '\0')
		return discover_copy(out, outlen, base);
	return util_fmt(out, outlen, "%s/%s", base, browser);
}

static enum discover_result
discover_angular_output(int dirfd, struct build_project *proj, char *err,
    size_t errlen)
{
	char path[WHARF_PATH_MAX], why[256];
	json_t *ng = NULL;
	enum discover_result res = DISCOVER_OK;
	int rc;

	rc = discover_load_json(dirfd, "angular.json", &ng, why, sizeof(why));
	if (rc == -ENOENT)
		return discover_copy(proj->output_dir,
		    sizeof(proj->output_dir), "dist") == 0 ? DISCOVER_OK :
		    DISCOVER_IO;
	if (rc == -EINVAL)
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "angular.json is not valid: %s", why);
	if (rc != 0)
		return discover_fail(DISCOVER_IO, err, errlen,
		    "reading angular.json: %s", strerror(-rc));

	if (discover_angular_path(ng, path, sizeof(path)) != 0)
		path[0] = '\0';
	if (build_output_dir_check(path, proj->output_dir,
	    sizeof(proj->output_dir), why, sizeof(why)) != 0)
		res = discover_fail(DISCOVER_INVALID, err, errlen,
		    "angular.json outputPath '%.200s': %s", path, why);
	json_decref(ng);
	return res;
}

/* Fills the fields read from package.json. */
static enum discover_result
discover_from_package(int dirfd, struct build_project *proj, char *err,
    size_t errlen)
{
	const char *framework, *script;
	json_t *pkg = NULL;
	enum discover_result res = DISCOVER_OK;
	char why[256];
	int rc;

	rc = discover_load_json(dirfd, "package.json", &pkg, why, sizeof(why));
	if (rc != 0)
		return discover_fail(rc == -EINVAL ? DISCOVER_INVALID :
		    DISCOVER_IO, err, errlen, "package.json in %s: %s",
		    proj->dir, rc == -EINVAL ? why : strerror(-rc));

	script = json_string_value(json_object_get(json_object_get(pkg,
	    "scripts"), "build"));
	proj->has_build_script = script != NULL && script[0] != '\0';
	if (proj->has_build_script)
		discover_copy(proj->build_command,
		    sizeof(proj->build_command), "npm run build");

	framework = discover_detect(pkg);
	if (framework == NULL)
		framework = proj->has_build_script ? "node" : "static";
	discover_copy(proj->framework, sizeof(proj->framework), framework);
	if (strcmp(framework, "angular") == 0)
		res = discover_angular_output(dirfd, proj, err, errlen);
	else
		discover_copy(proj->output_dir, sizeof(proj->output_dir),
		    build_framework_output(framework));
	json_decref(pkg);
	return res;
}

enum discover_result
build_detect_framework(const char *source_dir, struct build_project *proj,
    char *err, size_t errlen)
{
	enum discover_result res = DISCOVER_OK;
	int rootfd, dirfd = -1;

	rootfd = open(source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd >= 0)
		dirfd = discover_open_dir(rootfd, proj->dir);
	if (dirfd < 0) {
		res = discover_fail(DISCOVER_IO, err, errlen, "opening %s/%s: "
		    "%s", source_dir, proj->dir, strerror(errno));
		goto out;
	}

	proj->has_lockfile = discover_is_file(dirfd, "package-lock.json") ||
	    discover_is_file(dirfd, "npm-shrinkwrap.json");
	proj->has_index = discover_is_file(dirfd, "index.html");
	proj->build_command[0] = '\0';
	if (proj->has_package_json) {
		res = discover_from_package(dirfd, proj, err, errlen);
	} else {
		proj->has_build_script = false;
		discover_copy(proj->framework, sizeof(proj->framework),
		    "static");
		discover_copy(proj->output_dir, sizeof(proj->output_dir), ".");
	}
	if (res == DISCOVER_OK)
		log_debug("build.detect", "dir=%s framework=%s output=%s",
		    proj->dir, proj->framework, proj->output_dir);
out:
	if (dirfd >= 0)
		close(dirfd);
	if (rootfd >= 0)
		close(rootfd);
	return res;
}

/* Overrides */

const char *
build_framework_output(const char *framework)
{
	for (size_t i = 0; i < DISCOVER_NELEM(discover_outputs); i++)
		if (strcmp(framework, discover_outputs[i].name) == 0)
			return discover_outputs[i].output;
	return NULL;
}

/* The canonical name of a framework override, or NULL. */
static const char *
discover_framework_name(const char *name)
{
	for (size_t i = 0; i < DISCOVER_NELEM(discover_aliases); i++)
		if (strcmp(name, discover_aliases[i].name) == 0)
			return discover_aliases[i].output;
	return build_framework_output(name) != NULL ? name : NULL;
}

int
build_output_dir_check(const char *dir, char *out, size_t outlen,
    char *why, size_t whylen)
{
	size_t len = strlen(dir), start = 0, o = 0;

	if (len == 0 || len >= BUILD_OUTPUT_MAX || outlen < BUILD_OUTPUT_MAX)
		return util_fail(why, whylen, len == 0 ? "empty" :
		    "longer than %d bytes", BUILD_OUTPUT_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)dir[i] < 0x20 || dir[i] == 0x7f ||
		    dir[i] == '\\')
			return util_fail(why, whylen, "holds a control "
			    "character or a backslash");
	if (!build_utf8_valid(dir, len))
		return util_fail(why, whylen, "not valid UTF-8");
	if (dir[0] == '/' || (len >= 2 && dir[1] == ':'))
		return util_fail(why, whylen, "must be relative to the "
		    "project folder");

	while (start <= len) {
		const char *slash = strchr(dir + start, '/');
		size_t end = slash ? (size_t)(slash - dir) : len;
		size_t seglen = end - start;

		if (seglen == 2 && memcmp(dir + start, "..", 2) == 0)
			return util_fail(why, whylen, "must stay inside "
			    "the project folder (no '..')");
		if (seglen > 0 && !(seglen == 1 && dir[start] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, dir + start, seglen);
			o += seglen;
		}
		start = end + 1;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

bool
build_output_dir_valid(const char *dir)
{
	char out[BUILD_OUTPUT_MAX], why[128];

	return build_output_dir_check(dir, out, sizeof(out), why,
	    sizeof(why)) == 0;
}

static enum discover_result
discover_override_command(struct build_project *proj, const char *cmd,
    char *err, size_t errlen)
{
	size_t len = strlen(cmd);

	if (len >= sizeof(proj->build_command))
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "buildCommand is longer than %zu bytes",
		    sizeof(proj->build_command) - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f)
			return discover_fail(DISCOVER_INVALID, err, errlen,
			    "buildCommand holds a control character");
	memcpy(proj->build_command, cmd, len + 1);
	return DISCOVER_OK;
}

static enum discover_result
discover_override_framework(struct build_project *proj, const char *name,
    bool keep_output, char *err, size_t errlen)
{
	const char *canon = discover_framework_name(name);

	if (canon == NULL)
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "unknown framework '%.64s': use next, vite, react-scripts, "
		    "vue, angular, astro, node or static", name);
	if (!keep_output && strcmp(canon, proj->framework) != 0)
		discover_copy(proj->output_dir, sizeof(proj->output_dir),
		    build_framework_output(canon));
	discover_copy(proj->framework, sizeof(proj->framework), canon);
	return DISCOVER_OK;
}

/* Whether the project, as overridden, has something to publish. */
static enum discover_result
discover_check_project(const struct build_project *proj, char *err,
    size_t errlen)
{
	if (proj->build_command[0] != '\0')
		return DISCOVER_OK;
	if (strcmp(proj->framework, "static") != 0)
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "nothing builds this %s project: add a \"build\" script "
		    "to package.json or set buildCommand", proj->framework);
	if (strcmp(proj->output_dir, ".") == 0 && !proj->has_index)
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "the project folder has no index.html and nothing builds "
		    "it: add a \"build\" script to package.json");
	return DISCOVER_OK;
}

enum discover_result
build_project_override(struct build_project *proj,
    const struct build_overrides *ovr, char *err, size_t errlen)
{
	bool has_output = ovr && ovr->output_dir && ovr->output_dir[0];
	enum discover_result res;
	char why[128];

	if (ovr && ovr->framework && ovr->framework[0]) {
		res = discover_override_framework(proj, ovr->framework,
		    has_output, err, errlen);
		if (res != DISCOVER_OK)
			return res;
	}
	if (ovr && ovr->build_command && ovr->build_command[0]) {
		res = discover_override_command(proj, ovr->build_command, err,
		    errlen);
		if (res != DISCOVER_OK)
			return res;
	}
	if (has_output && build_output_dir_check(ovr->output_dir,
	    proj->output_dir, sizeof(proj->output_dir), why,
	    sizeof(why)) != 0)
		return discover_fail(DISCOVER_INVALID, err, errlen,
		    "outputDir '%.100s': %s", ovr->output_dir, why);
	return discover_check_project(proj, err, errlen);
}
