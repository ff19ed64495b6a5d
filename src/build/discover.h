/*
 * discover: steps 6 and 7 of the build pipeline, finding the project in
 * the extracted source and deciding how to build it.
 *
 * The project folder:
 *
 *   - package.json at the root of the source, which must then be valid
 *     JSON holding an object (a broken one at the root is an error, not
 *     a reason to look elsewhere);
 *   - else the shallowest folder, down to depth 3, holding a valid
 *     package.json; folders of one depth are tried in the byte order of
 *     their names, parent by parent ("a/z" before "b/a"); an invalid
 *     package.json below the root is skipped;
 *   - else, with no package.json anywhere, the root or the shallowest
 *     folder holding an index.html, found the same way: a static site,
 *     published as is;
 *   - else an error.
 *
 * The search skips hidden folders (".git", ".next", any name starting
 * with '.'), node_modules, dist, build and out (in any letter case),
 * and anything that is not a real folder.
 *
 * The framework, from the names in dependencies and devDependencies,
 * first match wins:
 *
 *   next                          next            out
 *   astro                         astro           dist
 *   @angular/core, @angular/cli   angular         see below
 *   @vue/cli-service              vue             dist
 *   react-scripts                 react-scripts   build
 *   vite                          vite            dist
 *   none of these, "build" script node            dist
 *   none of these, no script      static          . (the folder as is)
 *
 * Angular: the project is angular.json's defaultProject, else its first
 * project; the output is that project's architect.build.options
 * outputPath, else "dist/<project>"; with the application builder
 * (Angular 17 and later) the site is in its "browser" folder (or the
 * folder outputPath.browser names).  Without angular.json: "dist".
 *
 * The build command is "npm run build" when package.json has a "build"
 * script, else none: nothing is installed or built, and the output
 * folder is published as found.  A known framework without a build
 * script is an error unless buildConfig gives a buildCommand (checked by
 * build_project_override).
 *
 * Errors: functions return an enum discover_result and write a message
 * for the user into the caller's buffer.
 */
#ifndef WHARF_BUILD_DISCOVER_H
#define WHARF_BUILD_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

#define DISCOVER_MAX_DEPTH      3
#define DISCOVER_MAX_DIRS       20000           /* folders searched */
#define DISCOVER_JSON_MAX       (1024 * 1024)   /* package.json, angular.json */
#define BUILD_FRAMEWORK_MAX     32
#define BUILD_COMMAND_MAX       1024
#define BUILD_OUTPUT_MAX        256

enum discover_result {
	DISCOVER_OK = 0,
	DISCOVER_NOT_FOUND,     /* neither package.json nor index.html */
	DISCOVER_INVALID,       /* bad package.json or angular.json, or a
	                         * bad or insufficient override */
	DISCOVER_IO,            /* the system failed */
};

/* What to build and what to publish.  Paths are relative, never "..". */
struct build_project {
	char dir[WHARF_PATH_MAX];       /* project folder under the source
	                                 * root: "." or "app/web" */
	bool has_package_json;
	bool has_lockfile;              /* package-lock.json or
	                                 * npm-shrinkwrap.json: npm ci */
	bool has_build_script;          /* scripts.build is a string */
	bool has_index;                 /* index.html in the project folder */
	char framework[BUILD_FRAMEWORK_MAX];
	char build_command[BUILD_COMMAND_MAX];  /* "" for none */
	char output_dir[BUILD_OUTPUT_MAX];      /* under dir; "." itself */
};

/* buildConfig's overrides; NULL or "" leaves a field as detected. */
struct build_overrides {
	const char *framework;
	const char *build_command;
	const char *output_dir;
};

/*
 * Steps 6 and 7: finds the project under source_dir and fills *proj.
 * Overrides are not applied: see build_project_override.
 */
enum discover_result build_discover(const char *source_dir,
    struct build_project *proj, char *err, size_t errlen);

/*
 * Step 7 alone, for the project folder proj->dir under source_dir:
 * reads its package.json (if proj->has_package_json) and angular.json,
 * and fills the other fields.
 */
enum discover_result build_detect_framework(const char *source_dir,
    struct build_project *proj, char *err, size_t errlen);

/*
 * Applies buildConfig's overrides to a detected project, then checks
 * the result can be built and published.  A framework override must be
 * one of the names above ("nextjs" and "react" are taken as "next" and
 * "react-scripts", the original API's names) and, unless outputDir is
 * given too, brings its default output folder.  buildCommand: at most
 * BUILD_COMMAND_MAX - 1 bytes, no control characters.  outputDir: see
 * build_output_dir_check; it is stored normalised ("./dist/" is "dist").
 * Refuses a known framework with nothing to build, and a folder served
 * as is without an index.html.  Returns DISCOVER_OK or
 * DISCOVER_INVALID with err set; *proj may be partly changed then.
 */
enum discover_result build_project_override(struct build_project *proj,
    const struct build_overrides *ovr, char *err, size_t errlen);

/*
 * Checks an output folder: relative to the project, inside it (no ".."
 * segment, not absolute, no backslash, no control character), at most
 * BUILD_OUTPUT_MAX - 1 bytes.  Writes its normalised form into out
 * (outlen >= BUILD_OUTPUT_MAX): "." segments, empty ones and a trailing
 * '/' dropped, "." for the project folder itself.  Returns 0, or -1
 * with the reason in why.
 */
int build_output_dir_check(const char *dir, char *out, size_t outlen,
    char *why, size_t whylen);

/* build_output_dir_check as a predicate, for the upload endpoint. */
bool build_output_dir_valid(const char *dir);

/* Default output folder of a framework name above, or NULL. */
const char *build_framework_output(const char *framework);

#endif
