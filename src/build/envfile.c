/*
 * envfile: names, values and the quoting of .env.production.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"
#include "build/envfile.h"
#include "build/utf8.h"

/* A refused name, or every name starting with it when prefix. */
struct envfile_rule {
	const char *name;
	bool        prefix;
	const char *why;
};

#define ENVFILE_OURS    "is set by Wharf"
#define ENVFILE_SHELL   "steers the shell or where programs are found"
#define ENVFILE_LIBC    "steers the dynamic loader or the C library"
#define ENVFILE_NODE    "steers Node.js or the package manager"
#define ENVFILE_INTERP  "steers an interpreter the build may start"
#define ENVFILE_NET     "steers the network or its trust"
#define ENVFILE_GIT     "steers git or ssh"

/* First match wins: exact names before the prefixes that cover them. */
static const struct envfile_rule envfile_refused[] = {
	{ "NODE_ENV",                   false,  ENVFILE_OURS },
	{ "NEXT_PUBLIC_BUILD_ID",       false,  ENVFILE_OURS },
	{ "NEXT_PUBLIC_TENANT_ID",      false,  ENVFILE_OURS },
	{ "WHARF_",                     true,   ENVFILE_OURS },

	{ "PATH",                       false,  ENVFILE_SHELL },
	{ "HOME",                       false,  ENVFILE_SHELL },
	{ "SHELL",                      false,  ENVFILE_SHELL },
	{ "ENV",                        false,  ENVFILE_SHELL },
	{ "BASH_ENV",                   false,  ENVFILE_SHELL },
	{ "BASH_FUNC_",                 true,   ENVFILE_SHELL },
	{ "SHELLOPTS",                  false,  ENVFILE_SHELL },
	{ "BASHOPTS",                   false,  ENVFILE_SHELL },
	{ "IFS",                        false,  ENVFILE_SHELL },
	{ "PS4",                        false,  ENVFILE_SHELL },
	{ "PROMPT_COMMAND",             false,  ENVFILE_SHELL },
	{ "CDPATH",                     false,  ENVFILE_SHELL },
	{ "GLOBIGNORE",                 false,  ENVFILE_SHELL },
	{ "TMPDIR",                     false,  ENVFILE_SHELL },
	{ "TMP",                        false,  ENVFILE_SHELL },
	{ "TEMP",                       false,  ENVFILE_SHELL },
	{ "XDG_",                       true,   ENVFILE_SHELL },

	{ "LD_",                        true,   ENVFILE_LIBC },
	{ "GCONV_PATH",                 false,  ENVFILE_LIBC },
	{ "GLIBC_TUNABLES",             false,  ENVFILE_LIBC },
	{ "LOCPATH",                    false,  ENVFILE_LIBC },
	{ "HOSTALIASES",                false,  ENVFILE_LIBC },
	{ "RES_OPTIONS",                false,  ENVFILE_LIBC },
	{ "LOCALDOMAIN",                false,  ENVFILE_LIBC },

	{ "NODE_",                      true,   ENVFILE_NODE },
	{ "NPM_CONFIG_",                true,   ENVFILE_NODE },
	{ "YARN_",                      true,   ENVFILE_NODE },
	{ "COREPACK_",                  true,   ENVFILE_NODE },
	{ "NVM_",                       true,   ENVFILE_NODE },

	{ "PYTHON",                     true,   ENVFILE_INTERP },
	{ "PERL5",                      true,   ENVFILE_INTERP },
	{ "PERLLIB",                    false,  ENVFILE_INTERP },
	{ "RUBYOPT",                    false,  ENVFILE_INTERP },
	{ "RUBYLIB",                    false,  ENVFILE_INTERP },
	{ "JAVA_TOOL_OPTIONS",          false,  ENVFILE_INTERP },
	{ "_JAVA_OPTIONS",              false,  ENVFILE_INTERP },

	{ "HTTP_PROXY",                 false,  ENVFILE_NET },
	{ "HTTPS_PROXY",                false,  ENVFILE_NET },
	{ "ALL_PROXY",                  false,  ENVFILE_NET },
	{ "NO_PROXY",                   false,  ENVFILE_NET },
	{ "SSL_CERT_FILE",              false,  ENVFILE_NET },
	{ "SSL_CERT_DIR",               false,  ENVFILE_NET },
	{ "OPENSSL_",                   true,   ENVFILE_NET },

	{ "GIT_",                       true,   ENVFILE_GIT },
	{ "SSH_",                       true,   ENVFILE_GIT },
};

#define ENVFILE_NRULES (sizeof(envfile_refused) / sizeof(envfile_refused[0]))
#define ENVFILE_HEADER "# Written by Wharf for this build.\n"

const char *
build_env_name_refused(const char *name)
{
	for (size_t i = 0; i < ENVFILE_NRULES; i++) {
		const struct envfile_rule *r = &envfile_refused[i];
		size_t len = strlen(r->name);

		if (r->prefix ? strncasecmp(name, r->name, len) == 0 :
		    strcasecmp(name, r->name) == 0)
			return r->why;
	}
	return NULL;
}

static bool
envfile_name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	    (!first && c >= '0' && c <= '9');
}

bool
build_env_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > BUILD_ENV_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!envfile_name_char(name[i], i == 0))
			return false;
	return true;
}

int
build_env_name_check(const char *name, bool from_user, char *why,
    size_t whylen)
{
	size_t len = strlen(name);
	const char *refused;

	if (len == 0)
		return util_fail(why, whylen, "empty name");
	if (len > BUILD_ENV_NAME_MAX)
		return util_fail(why, whylen, "name longer than %d bytes",
		    BUILD_ENV_NAME_MAX);
	if (!build_env_name_valid(name))
		return util_fail(why, whylen, "name must match "
		    "[A-Za-z_][A-Za-z0-9_]*");

	refused = from_user ? build_env_name_refused(name) : NULL;
	if (refused != NULL)
		return util_fail(why, whylen, "name not allowed: it %s",
		    refused);
	return 0;
}

int
build_env_value_check(const char *value, size_t len, char *why,
    size_t whylen)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t i = 0;

	if (len > BUILD_ENV_VALUE_MAX)
		return util_fail(why, whylen, "value longer than %d bytes",
		    BUILD_ENV_VALUE_MAX);
	while (i < len) {
		uint32_t c;
		size_t n = build_utf8_decode(s + i, len - i, &c);

		if (n == 0)
			return util_fail(why, whylen,
			    "value is not valid UTF-8");
		if (c == 0)
			return util_fail(why, whylen, "value holds a NUL");
		if (c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029)
			return util_fail(why, whylen,
			    "value holds a line break");
		i += n;
	}
	return 0;
}

int
build_env_quote(const char *value, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3)
		return -1;
	out[o++] = '"';
	for (const char *p = value; *p != '\0'; p++) {
		bool esc = strchr("\\\"$`", *p) != NULL;

		if (o + (esc ? 2 : 1) + 2 > outlen)
			return -1;
		if (esc)
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

/* Checks one variable, and that no earlier one has its name. */
static enum envfile_result
envfile_check(const struct build_env_var *vars, size_t i, char *err,
    size_t errlen)
{
	const struct build_env_var *v = &vars[i];
	char why[128];

	if (v->name == NULL || v->value == NULL) {
		snprintf(err, errlen, "environment variable %zu: missing", i);
		return ENVFILE_INVALID;
	}
	if (build_env_name_check(v->name, v->from_user, why,
	    sizeof(why)) != 0 ||
	    build_env_value_check(v->value, strlen(v->value), why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "environment variable '%.*s': %s",
		    BUILD_ENV_NAME_MAX, v->name, why);
		return ENVFILE_INVALID;
	}
	for (size_t j = 0; j < i; j++) {
		if (strcmp(vars[j].name, v->name) == 0) {
			snprintf(err, errlen, "environment variable '%s': "
			    "given twice", v->name);
			return ENVFILE_INVALID;
		}
	}
	return ENVFILE_OK;
}

/*
 * The whole file in memory, into *out (the caller frees it), after every
 * variable passed its checks.
 */
static enum envfile_result
envfile_render(const struct build_env_var *vars, size_t nvars, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	size_t cap = sizeof(ENVFILE_HEADER), len;
	enum envfile_result res;
	char *text;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < nvars; i++) {
		res = envfile_check(vars, i, err, errlen);
		if (res != ENVFILE_OK)
			return res;
		cap += strlen(vars[i].name) + 2 * strlen(vars[i].value) + 5;
	}
	text = malloc(cap);
	if (text == NULL) {
		snprintf(err, errlen, "writing %s: out of memory",
		    BUILD_ENV_FILE);
		return ENVFILE_IO;
	}

	len = strlen(ENVFILE_HEADER);
	memcpy(text, ENVFILE_HEADER, len);
	for (size_t i = 0; i < nvars; i++) {
		size_t n = strlen(vars[i].name);

		memcpy(text + len, vars[i].name, n);
		len += n;
		text[len++] = '=';
		rc = build_env_quote(vars[i].value, text + len, cap - len);
		assert(rc == 0);        /* cap counts every byte */
		len += strlen(text + len);
		text[len++] = '\n';
	}
	(void)rc;
	*out = text;
	*outlen = len;
	return ENVFILE_OK;
}

enum envfile_result
build_envfile_write(const char *path, const struct build_env_var *vars,
    size_t nvars, char *err, size_t errlen)
{
	enum envfile_result res;
	char *text = NULL;
	size_t len = 0, done = 0;
	int fd = -1;

	res = envfile_render(vars, nvars, &text, &len, err, errlen);
	if (res != ENVFILE_OK)
		goto out;

	/* A file the archive brought is replaced; a link is not followed. */
	if (unlink(path) != 0 && errno != ENOENT)
		goto fail;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		goto fail;
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		done += (size_t)n;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	goto out;
fail:
	snprintf(err, errlen, "writing %s: %s", BUILD_ENV_FILE,
	    strerror(errno));
	res = ENVFILE_IO;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return res;
}

/* One member of the user's object, as a variable; NUL checked here,
 * since the writer sees C strings. */
static enum envfile_result
envfile_user_var(const char *name, const json_t *value,
    struct build_env_var *var, char *err, size_t errlen)
{
	const char *v = json_string_value(value);
	char why[128];

	if (v == NULL) {
		snprintf(err, errlen, "environment variable '%.*s': the value "
		    "must be a string", BUILD_ENV_NAME_MAX, name);
		return ENVFILE_INVALID;
	}
	if (build_env_value_check(v, json_string_length(value), why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "environment variable '%.*s': %s",
		    BUILD_ENV_NAME_MAX, name, why);
		return ENVFILE_INVALID;
	}
	*var = (struct build_env_var){ name, v, true };
	return ENVFILE_OK;
}

enum envfile_result
build_env_write_json(const char *path, const char *build_id,
    const char *tenant, const json_t *user, char *err, size_t errlen)
{
	size_t nuser = user != NULL ? json_object_size(user) : 0, n = 3;
	struct build_env_var *vars = NULL;
	enum envfile_result res = ENVFILE_OK;
	const char *name;
	json_t *value;

	if (user != NULL && !json_is_object(user)) {
		snprintf(err, errlen, "environment variables: not an object");
		return ENVFILE_INVALID;
	}
	if (nuser > BUILD_ENV_USER_MAX) {
		snprintf(err, errlen, "environment variables: more than %d",
		    BUILD_ENV_USER_MAX);
		return ENVFILE_INVALID;
	}
	vars = calloc(3 + nuser, sizeof(*vars));
	if (vars == NULL) {
		snprintf(err, errlen, "writing %s: out of memory",
		    BUILD_ENV_FILE);
		return ENVFILE_IO;
	}

	vars[0] = (struct build_env_var){ "NODE_ENV", "production", false };
	vars[1] = (struct build_env_var){ "NEXT_PUBLIC_BUILD_ID", build_id,
	    false };
	vars[2] = (struct build_env_var){ "NEXT_PUBLIC_TENANT_ID", tenant,
	    false };
	json_object_foreach((json_t *)user, name, value) {
		res = envfile_user_var(name, value, &vars[n++], err, errlen);
		if (res != ENVFILE_OK)
			goto out;
	}
	res = build_envfile_write(path, vars, n, err, errlen);
out:
	free(vars);
	return res;
}
