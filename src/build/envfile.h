/*
 * envfile: step 9 of the build pipeline, the build's environment
 * variables written to .env.production, and the rules for the names and
 * values a user may give (the upload endpoint checks them too).
 *
 * Names match [A-Za-z_][A-Za-z0-9_]*, at most BUILD_ENV_NAME_MAX bytes.
 * Values are UTF-8 text of at most BUILD_ENV_VALUE_MAX bytes without
 * NUL, LF, CR, U+2028 or U+2029 (JavaScript's line terminators, which
 * dotenv's multi-line parser also splits on).
 *
 * Refused names, in any letter case (build_env_name_refused):
 *
 *   set by Wharf          NODE_ENV, NEXT_PUBLIC_BUILD_ID,
 *                         NEXT_PUBLIC_TENANT_ID, WHARF_*
 *   shell, processes      PATH, HOME, SHELL, ENV, BASH_ENV, BASH_FUNC_*,
 *                         SHELLOPTS, BASHOPTS, IFS, PS4, PROMPT_COMMAND,
 *                         CDPATH, GLOBIGNORE, TMPDIR, TMP, TEMP, XDG_*
 *   loader and libc       LD_*, GCONV_PATH, GLIBC_TUNABLES, LOCPATH,
 *                         HOSTALIASES, RES_OPTIONS, LOCALDOMAIN
 *   Node and npm          NODE_* (NODE_OPTIONS, NODE_PATH, ...),
 *                         NPM_CONFIG_*, YARN_*, COREPACK_*, NVM_*
 *   other interpreters    PYTHON*, PERL5*, PERLLIB, RUBYOPT, RUBYLIB,
 *                         JAVA_TOOL_OPTIONS, _JAVA_OPTIONS
 *   network and trust     HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY,
 *                         SSL_CERT_FILE, SSL_CERT_DIR, OPENSSL_*
 *   git and ssh           GIT_*, SSH_*
 *
 * LANG, LC_* and TZ are allowed: they choose messages, collation and
 * time zone, and load no code.  NPM_TOKEN is allowed: a private
 * registry needs it.
 *
 * The file: one NAME="value" line per variable, the value between
 * double quotes with '\', '"', '$' and '`' escaped by a backslash.  No
 * value can add a line (none holds a line break) or expand anything:
 * dotenv-expand, which Next.js, Vite and Create React App run, turns
 * "\$" into a literal "$"; a POSIX shell reading the file gets each
 * value exactly.  dotenv itself keeps the backslash of "\\", "\"" and
 * "\`" (it unescapes only \n and \r), and Node's own --env-file parser
 * ends a value at "\"": those values reach the build exactly through
 * the process environment, which these tools prefer to the file.
 */
#ifndef WHARF_BUILD_ENVFILE_H
#define WHARF_BUILD_ENVFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define BUILD_ENV_NAME_MAX      256
#define BUILD_ENV_VALUE_MAX     (64 * 1024)
#define BUILD_ENV_USER_MAX      1024    /* a build's own variables */
#define BUILD_ENV_FILE          ".env.production"

enum envfile_result {
	ENVFILE_OK = 0,
	ENVFILE_INVALID,        /* a bad name or value */
	ENVFILE_IO,             /* the file could not be written */
};

/* One variable.  Strings are borrowed for the call. */
struct build_env_var {
	const char *name;
	const char *value;
	bool        from_user;  /* also checked against the refused names */
};

/*
 * Why name is refused ("steers Node.js"), a static string, or NULL when
 * it is allowed.  Only the table above: see build_env_name_check for
 * the syntax.
 */
const char *build_env_name_refused(const char *name);

/* Whether name matches [A-Za-z_][A-Za-z0-9_]* within the length. */
bool build_env_name_valid(const char *name);

/*
 * Checks a name's syntax and, when from_user, the refused names.
 * Returns 0, or -1 with the reason in why.
 */
int build_env_name_check(const char *name, bool from_user, char *why,
    size_t whylen);

/*
 * Checks a value of len bytes (so that a NUL inside shows).  Returns 0,
 * or -1 with the reason in why.
 */
int build_env_value_check(const char *value, size_t len, char *why,
    size_t whylen);

/*
 * Writes value double-quoted and escaped as above into out.  Returns 0,
 * or -1 when out is too small (2 * strlen(value) + 3 is always enough).
 */
int build_env_quote(const char *value, char *out, size_t outlen);

/*
 * Checks every variable (names, values, no name twice), then writes the
 * file at path (mode 0600, replacing a file the archive brought, never
 * through a link).  On ENVFILE_INVALID nothing is written and err names
 * the variable, never its value.
 */
enum envfile_result build_envfile_write(const char *path,
    const struct build_env_var *vars, size_t nvars, char *err,
    size_t errlen);

/*
 * Step 9 in one call: writes path with NODE_ENV=production,
 * NEXT_PUBLIC_BUILD_ID=build_id and NEXT_PUBLIC_TENANT_ID=tenant, then
 * each member of the JSON object user (NULL for none), in its order and
 * checked as a user's variable: a refused name, a value that is not a
 * string or holds a NUL (JSON can carry one) is ENVFILE_INVALID.  user
 * is only read.
 */
enum envfile_result build_env_write_json(const char *path,
    const char *build_id, const char *tenant, const json_t *user,
    char *err, size_t errlen);

#endif
