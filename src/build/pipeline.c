/*
 * pipeline: one build, step by step, as DESIGN.md lists the steps.
 *
 * The steps run in order from a table; each returns a result, and the
 * first that does not succeed ends the build.  Every step's start,
 * duration and outcome goes to the build log and the server log.
 *
 * Workspace layout, private to the build (mode 0700):
 *
 *   <data>/work/<build>/source/    the extracted ZIP (the project inside)
 *   <data>/work/<build>/temp/      source.zip, scratch
 *   <data>/work/<build>/home/      HOME of the build's commands
 *
 * npm's cache is kept per tenant in <data>/cache/npm/<tenant>/ and moved
 * (one rename) into the workspace as ws/npm-cache for the build, then
 * back, so a rebuild does not download everything again, no tenant sees
 * another's cache, and the workspace stays the sandbox's only writable
 * place.  Two builds of a tenant at once: the second builds with an
 * empty cache, and only one cache is moved back.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "blob/blob.h"
#include "build/build.h"
#include "build/discover.h"
#include "build/envfile.h"
#include "build/extract.h"
#include "build/nextjs.h"
#include "build/sandbox.h"
#include "core/log.h"
#include "deploy/deploy.h"
#include "store/store.h"

#define BUILD_LOG_MAX        (4 * 1024 * 1024)
#define BUILD_LOG_FLUSH_MS   1000
#define BUILD_OUTPUT_LOG_MAX (2 * 1024 * 1024)  /* per command */
#define BUILD_TAIL_LINES     8
#define BUILD_NPROC          512
#define BUILD_FSIZE          (1ULL << 30)
#define BUILD_ENV_MAX        96

enum build_step_result {
	BUILD_STEP_OK = 0,
	BUILD_STEP_SKIP,        /* not needed for this project */
	BUILD_STEP_FAIL,        /* the user's to fix: no retry */
	BUILD_STEP_RETRY,       /* transient: the queue retries */
	BUILD_STEP_STOP,        /* cancelled, or the worker is stopping */
};

/* The build log: kept in memory, rewritten to its blob as it grows. */
struct build_log {
	char    *text;
	size_t   len, cap;
	bool     truncated;
	int64_t  start_ms;
	int64_t  flushed_ms;
	char     key[BLOB_KEY_MAX];
	/* The last lines of the last command, for the failure message. */
	char     tail[BUILD_TAIL_LINES][160];
	int      tail_next;
};

struct build_ctx {
	struct build_env     *env;
	struct queue_run     *run;
	struct store_build   *b;
	struct build_log      log;
	struct build_project  proj;

	char ws[WHARF_PATH_MAX];        /* workspace root */
	char src[WHARF_PATH_MAX];       /* ws/source */
	char tmp[WHARF_PATH_MAX];       /* ws/temp */
	char home[WHARF_PATH_MAX];      /* ws/home */
	char cache[WHARF_PATH_MAX];     /* npm cache of the tenant, kept */
	char npm_cache[WHARF_PATH_MAX]; /* ws/npm-cache, while building */
	char project[WHARF_PATH_MAX];   /* absolute project folder */
	char output[WHARF_PATH_MAX];    /* absolute output folder */
	char zip[WHARF_PATH_MAX];       /* ws/temp/source.zip */

	json_t *user_env;               /* the build's variables (secret) */
	const char *step;               /* name of the running step */
};

/* The build log. */

static void
build_log_raw(struct build_log *bl, const char *text, size_t len)
{
	char *grown;

	if (bl->truncated)
		return;
	if (bl->len + len + 64 > BUILD_LOG_MAX) {
		static const char cut[] = "[log truncated: over 4 MiB]\n";

		len = 0;
		bl->truncated = true;
		text = cut;
		len = sizeof(cut) - 1;
	}
	if (bl->len + len + 1 > bl->cap) {
		size_t cap = (bl->cap ? bl->cap * 2 : 16384) + len;

		grown = realloc(bl->text, cap);
		if (grown == NULL)
			return;
		bl->text = grown;
		bl->cap = cap;
	}
	memcpy(bl->text + bl->len, text, len);
	bl->len += len;
	bl->text[bl->len] = '\0';
}

/* A line of the log, stamped with the seconds since the build began. */
static void
build_log_line(struct build_log *bl, const char *text, size_t len)
{
	char stamp[32];
	int n;

	n = snprintf(stamp, sizeof(stamp), "[%7.2fs] ",
	    (double)(util_now_ms() - bl->start_ms) / 1000.0);
	build_log_raw(bl, stamp, (size_t)n);
	build_log_raw(bl, text, len);
	build_log_raw(bl, "\n", 1);
}

static void
build_log(struct build_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
build_log(struct build_ctx *c, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	build_log_line(&c->log, line, strlen(line));
}

/* Writes the log to its blob; forced, or at most once a second. */
static void
build_log_flush(struct build_ctx *c, bool force)
{
	struct build_log *bl = &c->log;
	int64_t now = util_now_ms();
	int r;

	if (!force && now - bl->flushed_ms < BUILD_LOG_FLUSH_MS)
		return;
	bl->flushed_ms = now;
	r = blob_put(c->env->blob, bl->key, bl->text ? bl->text : "",
	    bl->len);
	if (r != 0)
		log_warnx("build.log_flush", "build=%s err=%d", c->b->id, r);
}

/* Output of a sandboxed command: into the log, and its last lines. */
static void
build_on_line(void *ctx, const char *line, size_t len)
{
	struct build_ctx *c = ctx;
	struct build_log *bl = &c->log;

	build_log_line(bl, line, len);
	snprintf(bl->tail[bl->tail_next], sizeof(bl->tail[0]), "%.*s",
	    (int)(len < sizeof(bl->tail[0]) ? len : sizeof(bl->tail[0]) - 1),
	    line);
	bl->tail_next = (bl->tail_next + 1) % BUILD_TAIL_LINES;
	build_log_flush(c, false);
}

/* The last lines of output, oldest first, joined with " | ". */
static void
build_log_tail(struct build_log *bl, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < BUILD_TAIL_LINES; i++) {
		const char *line = bl->tail[(bl->tail_next + i) %
		    BUILD_TAIL_LINES];

		if (line[0] == '\0')
			continue;
		int n = snprintf(out + o, len - o, "%s%s", o ? " | " : "",
		    line);
		if (n < 0 || (size_t)n >= len - o)
			break;
		o += (size_t)n;
	}
}

static void
build_log_tail_reset(struct build_log *bl)
{
	memset(bl->tail, 0, sizeof(bl->tail));
	bl->tail_next = 0;
}

/* Failing a step: the message for the user, in the log and the build. */
static enum build_step_result
build_fail(struct build_ctx *c, enum build_step_result r, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static enum build_step_result
build_fail(struct build_ctx *c, enum build_step_result r, const char *fmt,
    ...)
{
	struct queue_run *run = c->run;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(run->error, sizeof(run->error), fmt, ap);
	va_end(ap);
	snprintf(run->error_step, sizeof(run->error_step), "%s", c->step);
	build_log(c, "error: %s", run->error);
	return r;
}

/* Files and folders. */

static int
build_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf that never follows a link. */
static int
build_rm_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, build_rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static int
build_path(char *out, const char *a, const char *b)
{
	return util_fmt(out, WHARF_PATH_MAX, "%s/%s", a, b);
}

/* Step 1: the claim is done by the queue; check what it handed over. */
static enum build_step_result
step_validate(struct build_ctx *c)
{
	struct store_build *b = c->b;

	if (b->source_key[0] == '\0' || b->sha256[0] == '\0')
		return build_fail(c, BUILD_STEP_FAIL, "the build has no "
		    "uploaded source; upload the ZIP again");
	build_log(c, "build %s of tenant %s, version %s, attempt %d of %d",
	    b->id, b->tenant, b->version, c->run->job.attempts,
	    c->run->job.max_attempts);
	build_log(c, "worker %s; waited %" PRId64 " ms in the queue",
	    c->run->owner, b->queue_wait_ms);
	return BUILD_STEP_OK;
}

/* Step 2: the event that the build started (the log line for now). */
static enum build_step_result
step_started(struct build_ctx *c)
{
	log_info("build.started", "build=%s tenant=%s attempt=%d",
	    c->b->id, c->b->tenant, c->run->job.attempts);
	return BUILD_STEP_OK;
}

/* Step 3: a fresh workspace, private to the build. */
static enum build_step_result
step_workspace(struct build_ctx *c)
{
	const char *data = c->env->cfg->data_dir;
	char root[WHARF_PATH_MAX];

	if (util_fmt(root, sizeof(root), "%s/work", data) != 0 ||
	    build_path(c->ws, root, c->b->id) != 0 ||
	    build_path(c->src, c->ws, "source") != 0 ||
	    build_path(c->tmp, c->ws, "temp") != 0 ||
	    build_path(c->home, c->ws, "home") != 0 ||
	    build_path(c->zip, c->tmp, "source.zip") != 0 ||
	    build_path(c->npm_cache, c->ws, "npm-cache") != 0 ||
	    util_fmt(c->cache, sizeof(c->cache), "%s/cache/npm/%s", data,
	    c->b->tenant) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "WHARF_DATA_DIR is too "
		    "long for a workspace path");

	/* A workspace left by a dead attempt of this build goes first. */
	if (build_rm_tree(c->ws) != 0 || util_mkdirs(root, 0700) != 0 ||
	    mkdir(c->ws, 0700) != 0 || mkdir(c->src, 0700) != 0 ||
	    mkdir(c->tmp, 0700) != 0 || mkdir(c->home, 0700) != 0)
		return build_fail(c, BUILD_STEP_RETRY, "cannot create the "
		    "workspace %s: %s", c->ws, strerror(errno));
	return BUILD_STEP_OK;
}

/* Step 4: source.zip from the blob store, checked against the upload. */
struct build_fetch {
	int         fd;
	EVP_MD_CTX *sha;
	uint64_t    size;
};

static int
build_fetch_chunk(void *ctx, const void *buf, size_t len)
{
	struct build_fetch *f = ctx;
	const char *p = buf;

	f->size += len;
	EVP_DigestUpdate(f->sha, buf, len);
	while (len > 0) {
		ssize_t n = write(f->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static enum build_step_result
step_fetch(struct build_ctx *c)
{
	struct build_fetch f = { .fd = -1 };
	unsigned char digest[32];
	char hex[65];
	int r;

	if ((uint64_t)c->b->size > c->env->cfg->max_zip_size)
		return build_fail(c, BUILD_STEP_FAIL, "source.zip is %" PRId64
		    " bytes, over MAX_ZIP_SIZE (%" PRIu64 ")", c->b->size,
		    c->env->cfg->max_zip_size);
	f.fd = open(c->zip, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	f.sha = EVP_MD_CTX_new();
	if (f.fd < 0 || f.sha == NULL ||
	    EVP_DigestInit_ex(f.sha, EVP_sha256(), NULL) != 1) {
		r = -errno;
		goto out;
	}
	r = blob_get_stream(c->env->blob, c->b->source_key,
	    build_fetch_chunk, &f);
	if (r == 0 && close(f.fd) != 0)
		r = -errno;
	f.fd = -1;
	EVP_DigestFinal_ex(f.sha, digest, NULL);
	util_hex(digest, sizeof(digest), hex);
out:
	if (f.fd >= 0)
		close(f.fd);
	EVP_MD_CTX_free(f.sha);
	if (r == -ENOENT)
		return build_fail(c, BUILD_STEP_FAIL, "source.zip is missing "
		    "from the blob store; upload the ZIP again");
	if (r != 0)
		return build_fail(c, BUILD_STEP_RETRY, "cannot fetch "
		    "source.zip: %s", strerror(-r));
	if (f.size != (uint64_t)c->b->size || strcmp(hex, c->b->sha256) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "source.zip does not "
		    "match its upload (size %" PRIu64 ", sha256 %s); upload "
		    "the ZIP again", f.size, hex);
	build_log(c, "fetched source.zip: %" PRIu64 " bytes, sha256 %s",
	    f.size, hex);
	return BUILD_STEP_OK;
}

/* Step 5: safe extraction. */
static enum build_step_result
step_extract(struct build_ctx *c)
{
	const struct config *cfg = c->env->cfg;
	struct extract_limits lim = {
		.max_entries = (uint64_t)cfg->max_zip_entries,
		.max_bytes = cfg->max_unzipped_size,
	};
	struct extract_stats stats = { 0 };
	char err[WHARF_ERRMSG_MAX];
	enum extract_result r;

	r = build_extract(c->zip, c->src, &lim, &stats, err, sizeof(err));
	unlink(c->zip);
	if (r == EXTRACT_IO)
		return build_fail(c, BUILD_STEP_RETRY, "extraction failed: %s",
		    err);
	if (r != EXTRACT_OK)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	build_log(c, "extracted %" PRIu64 " files, %" PRIu64 " folders, %"
	    PRIu64 " bytes", stats.files, stats.dirs, stats.bytes);
	return BUILD_STEP_OK;
}

/* Step 6: where the project is. */
static enum build_step_result
step_discover(struct build_ctx *c)
{
	char err[WHARF_ERRMSG_MAX];
	enum discover_result r;

	r = build_discover(c->src, &c->proj, err, sizeof(err));
	if (r == DISCOVER_IO)
		return build_fail(c, BUILD_STEP_RETRY, "%s", err);
	if (r != DISCOVER_OK)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	if (build_path(c->project, c->src, c->proj.dir) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "project path too long");
	build_log(c, "project folder: %s (%s)", c->proj.dir,
	    c->proj.has_package_json ? "package.json" : "static site");
	return BUILD_STEP_OK;
}

/* Step 7: the framework, its output folder, and the user's overrides. */
static enum build_step_result
step_framework(struct build_ctx *c)
{
	struct build_overrides ovr = {
		.framework = c->b->framework,
		.build_command = c->b->build_command,
		.output_dir = c->b->output_dir,
	};
	char err[WHARF_ERRMSG_MAX];
	enum discover_result r;

	r = build_detect_framework(c->src, &c->proj, err, sizeof(err));
	if (r == DISCOVER_OK)
		r = build_project_override(&c->proj, &ovr, err, sizeof(err));
	if (r == DISCOVER_IO)
		return build_fail(c, BUILD_STEP_RETRY, "%s", err);
	if (r != DISCOVER_OK)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	if (build_path(c->output, c->project, c->proj.output_dir) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "output path too long");
	if (store_build_plan(c->env->store, c->b->id, c->proj.framework,
	    c->proj.build_command, c->proj.output_dir) == STORE_ERROR)
		return build_fail(c, BUILD_STEP_RETRY, "cannot record the "
		    "build's plan");
	build_log(c, "framework %s, build command '%s', output folder %s",
	    c->proj.framework, c->proj.build_command[0] ?
	    c->proj.build_command : "(none)", c->proj.output_dir);
	return BUILD_STEP_OK;
}

static bool
build_needs_node(const struct build_ctx *c)
{
	return c->proj.has_package_json && c->proj.build_command[0] != '\0';
}

/* The environment of a sandboxed command, built string by string. */
struct build_envv {
	char  *items[BUILD_ENV_MAX + 1];
	size_t n;
};

static void
build_envv_add(struct build_envv *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
build_envv_add(struct build_envv *e, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (e->n == BUILD_ENV_MAX)
		return;
	va_start(ap, fmt);
	r = vasprintf(&e->items[e->n], fmt, ap);
	va_end(ap);
	if (r >= 0)
		e->n++;
	e->items[e->n] = NULL;
}

/* Values may be secrets: wiped before they are freed. */
static void
build_envv_free(struct build_envv *e)
{
	for (size_t i = 0; i < e->n; i++) {
		explicit_bzero(e->items[i], strlen(e->items[i]));
		free(e->items[i]);
	}
	e->n = 0;
}

/*
 * A fixed safe set, and for the build command the build's own
 * variables; nothing of the server's environment.
 */
static void
build_envp(struct build_ctx *c, bool with_user, struct build_envv *e)
{
	const char *name;
	json_t *value;

	build_envv_add(e, "PATH=/usr/local/bin:/usr/bin:/bin");
	build_envv_add(e, "HOME=%s", c->home);
	build_envv_add(e, "LANG=C.UTF-8");
	build_envv_add(e, "TMPDIR=/tmp");
	build_envv_add(e, "CI=1");
	build_envv_add(e, "npm_config_cache=%s", c->npm_cache);
	build_envv_add(e, "npm_config_update_notifier=false");
	build_envv_add(e, "npm_config_fund=false");
	build_envv_add(e, "npm_config_audit=false");
	build_envv_add(e, "NEXT_TELEMETRY_DISABLED=1");
	build_envv_add(e, "ASTRO_TELEMETRY_DISABLED=1");
	build_envv_add(e, "NEXT_PUBLIC_BUILD_ID=%s", c->b->id);
	build_envv_add(e, "NEXT_PUBLIC_TENANT_ID=%s", c->b->tenant);
	if (!with_user)
		return;
	build_envv_add(e, "NODE_ENV=production");
	json_object_foreach(c->user_env, name, value)
		build_envv_add(e, "%s=%s", name, json_string_value(value));
}

/*
 * Runs argv in the sandbox under the project folder, and turns what
 * happened into a step result with a message a user can act on.
 */
static enum build_step_result
build_sandboxed(struct build_ctx *c, const char *const *argv, bool network,
    bool with_user, int64_t timeout_sec, const char *what)
{
	const struct config *cfg = c->env->cfg;
	struct build_envv envv = { .n = 0 };
	struct sandbox_result res;
	struct sandbox_cmd cmd = {
		.workspace = c->ws,
		.cwd = c->project,
		.argv = argv,
		.envp = (const char *const *)envv.items,
		.network = network,
		.mode = cfg->sandbox_none ? SANDBOX_NONE : SANDBOX_BWRAP,
		.limits = {
			.timeout_sec = (int)timeout_sec,
			.cpu_sec = (int)timeout_sec * 2,
			.max_procs = BUILD_NPROC,
			.max_file_bytes = BUILD_FSIZE,
			.memory_bytes = cfg->build_memory,
			.output_max = BUILD_OUTPUT_LOG_MAX,
		},
		.on_line = build_on_line,
		.ctx = c,
		.cancel = &c->run->stop,
	};
	char tail[1024];

	if (!cfg->sandbox_none && !sandbox_available())
		return build_fail(c, BUILD_STEP_FAIL, "bubblewrap (bwrap) is "
		    "not installed or does not work here, and builds never run "
		    "unsandboxed unless WHARF_SANDBOX=none is set");
	build_envp(c, with_user, &envv);

	if (cfg->sandbox_none)
		log_warnx("build.unsandboxed", "build=%s step=%s "
		    "note=\"WHARF_SANDBOX=none: running without isolation\"",
		    c->b->id, c->step);
	build_log(c, "$ %s", what);
	build_log_tail_reset(&c->log);
	sandbox_run(&cmd, &res);
	build_envv_free(&envv);
	build_log(c, "sandbox: %s", res.applied[0] ? res.applied :
	    "(none)");
	build_log_flush(c, true);
	build_log_tail(&c->log, tail, sizeof(tail));

	switch (res.status) {
	case SANDBOX_EXITED:
		if (res.memory_exceeded)
			return build_fail(c, BUILD_STEP_FAIL, "%s went over the "
			    "memory limit (WHARF_BUILD_MEMORY) and was stopped%s%s",
			    what, tail[0] ? ": " : "", tail);
		if (res.exit_code == 0) {
			build_log(c, "%s finished in %.1f s", what,
			    (double)res.duration_ms / 1000.0);
			return BUILD_STEP_OK;
		}
		return build_fail(c, BUILD_STEP_FAIL, "%s exited with %d%s%s",
		    what, res.exit_code, tail[0] ? ": " : "", tail);
	case SANDBOX_SIGNALED:
		return build_fail(c, BUILD_STEP_FAIL, "%s was killed by signal "
		    "%d%s%s", what, res.signal, tail[0] ? ": " : "", tail);
	case SANDBOX_TIMEOUT:
		return build_fail(c, BUILD_STEP_FAIL, "%s took longer than %"
		    PRId64 " s and was stopped", what, timeout_sec);
	case SANDBOX_CANCELLED:
		return build_fail(c, BUILD_STEP_STOP, "%s was cancelled", what);
	case SANDBOX_FAILED:
	default:
		return build_fail(c, BUILD_STEP_RETRY, "%s could not start: %s",
		    what, res.message);
	}
}

/* The tenant's npm cache into the workspace, or a fresh one. */
static void
build_cache_lend(struct build_ctx *c)
{
	char parent[WHARF_PATH_MAX];

	if (rename(c->cache, c->npm_cache) == 0) {
		build_log(c, "npm cache of %s reused", c->b->tenant);
		return;
	}
	mkdir(c->npm_cache, 0700);
	snprintf(parent, sizeof(parent), "%s", c->cache);
	*strrchr(parent, '/') = '\0';
	util_mkdirs(parent, 0700);
}

/* ...and back, unless another build of the tenant put one back first. */
static void
build_cache_return(struct build_ctx *c)
{
	if (c->npm_cache[0] == '\0' || access(c->npm_cache, F_OK) != 0)
		return;
	if (rename(c->npm_cache, c->cache) != 0 && errno != ENOTEMPTY &&
	    errno != EEXIST)
		log_warn("build.cache_keep", "build=%s tenant=%s", c->b->id,
		    c->b->tenant);
}

/* Step 8: dependencies, the only step with network. */
static enum build_step_result
step_install(struct build_ctx *c)
{
	static const char *const ci[] = { "npm", "ci", "--no-audit",
	    "--no-fund", NULL };
	static const char *const install[] = { "npm", "install",
	    "--no-audit", "--no-fund", NULL };

	if (!build_needs_node(c))
		return BUILD_STEP_SKIP;
	build_cache_lend(c);
	if (c->proj.has_lockfile)
		return build_sandboxed(c, ci, true, false,
		    c->env->cfg->install_timeout_sec, "npm ci");
	return build_sandboxed(c, install, true, false,
	    c->env->cfg->install_timeout_sec, "npm install");
}

/* Step 9: the build's variables, in .env.production and the process. */
static enum build_step_result
step_environment(struct build_ctx *c)
{
	char path[WHARF_PATH_MAX], err[WHARF_ERRMSG_MAX];
	char *json = NULL;

	if (!build_needs_node(c))
		return BUILD_STEP_SKIP;
	switch (store_build_env_values(c->env->store, c->b->id, &json)) {
	case STORE_OK:
	case STORE_NOT_FOUND:
		break;
	default:
		return build_fail(c, BUILD_STEP_RETRY, "cannot load the "
		    "build's environment variables");
	}
	c->user_env = json ? json_loads(json, 0, NULL) : json_object();
	if (json != NULL) {
		explicit_bzero(json, strlen(json));
		free(json);
	}
	if (!json_is_object(c->user_env))
		return build_fail(c, BUILD_STEP_FAIL, "the build's environment "
		    "variables are not a JSON object");
	if (build_path(path, c->project, BUILD_ENV_FILE) != 0 ||
	    build_env_write_json(path, c->b->id, c->b->tenant, c->user_env,
	    err, sizeof(err)) != ENVFILE_OK)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	build_log(c, "wrote .env.production: NODE_ENV, NEXT_PUBLIC_BUILD_ID, "
	    "NEXT_PUBLIC_TENANT_ID and %zu variables of yours",
	    json_object_size(c->user_env));
	return BUILD_STEP_OK;
}

/* Step 10: Next.js static export, around the user's own config. */
static enum build_step_result
step_nextjs(struct build_ctx *c)
{
	char err[WHARF_ERRMSG_MAX], what[256];

	if (strcmp(c->proj.framework, "next") != 0 || !build_needs_node(c))
		return BUILD_STEP_SKIP;
	if (build_nextjs_wrap(c->project, what, sizeof(what), err,
	    sizeof(err)) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	build_log(c, "next.config: %s", what);
	return BUILD_STEP_OK;
}

/* Step 11: the build command, without network. */
static enum build_step_result
step_build(struct build_ctx *c)
{
	const char *argv[] = { "/bin/sh", "-c", c->proj.build_command, NULL };

	if (!build_needs_node(c))
		return BUILD_STEP_SKIP;
	return build_sandboxed(c, argv, false, true,
	    c->env->cfg->build_timeout_sec, c->proj.build_command);
}

static _Thread_local long build_counted;

static int
build_count_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		build_counted++;
	return 0;
}

/* Regular files under the folder path, links not followed. */
static int
build_count_files(const char *path, long *count)
{
	struct stat st;

	*count = 0;
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return -1;
	build_counted = 0;
	if (nftw(path, build_count_entry, 32, FTW_PHYS) != 0)
		return -1;
	*count = build_counted;
	return 0;
}

/* Step 12: the output folder exists, holds files and an entry page. */
static enum build_step_result
step_output(struct build_ctx *c)
{
	char index[WHARF_PATH_MAX];
	struct stat st;
	long files = 0;

	if (build_count_files(c->output, &files) != 0)
		return build_fail(c, BUILD_STEP_FAIL, "the build wrote no "
		    "output folder '%s' (framework %s); set outputDir in "
		    "buildConfig if it writes elsewhere", c->proj.output_dir,
		    c->proj.framework);
	if (files == 0)
		return build_fail(c, BUILD_STEP_FAIL, "the output folder '%s' "
		    "is empty", c->proj.output_dir);
	if (build_path(index, c->output, "index.html") != 0 ||
	    lstat(index, &st) != 0 || !S_ISREG(st.st_mode))
		return build_fail(c, BUILD_STEP_FAIL, "the output folder '%s' "
		    "has no index.html", c->proj.output_dir);
	build_log(c, "output folder %s: %ld files", c->proj.output_dir,
	    files);
	return BUILD_STEP_OK;
}

static void
build_deploy_log(void *ctx, const char *fmt, ...)
{
	struct build_ctx *c = ctx;
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	build_log_line(&c->log, line, strlen(line));
}

/*
 * Step 13: publish and flip the pointer.  A worker that no longer holds
 * the job (cancelled, or its lease taken over) publishes nothing.  The
 * success is recorded by build_run once the whole log is stored, so a
 * client that sees "success" reads the whole log.
 */
static enum build_step_result
step_publish(struct build_ctx *c)
{
	struct deploy_result res;
	char err[WHARF_ERRMSG_MAX];
	enum deploy_status ds;

	if (store_job_heartbeat(c->env->store, c->run->job.id, c->run->owner,
	    util_now_ms(), c->env->cfg->job_lease_sec * 1000) != STORE_OK)
		return build_fail(c, BUILD_STEP_STOP, "the job was cancelled "
		    "or taken over");
	ds = deploy_publish(c->env->deploy, c->b, c->output, &res,
	    build_deploy_log, c, err, sizeof(err));
	if (ds == DEPLOY_INVALID)
		return build_fail(c, BUILD_STEP_FAIL, "%s", err);
	if (ds != DEPLOY_OK)
		return build_fail(c, BUILD_STEP_RETRY, "%s", err);
	build_log(c, "deployment %s is live at %s", res.deployment.id,
	    res.site_url);
	build_log(c, "this build, forever: %s", res.deployment_url);
	return BUILD_STEP_OK;
}

static const struct build_step {
	const char *name;
	int progress;                   /* when the step is done */
	enum build_step_result (*run)(struct build_ctx *c);
} build_steps[] = {
	{ "validate",    5,  step_validate },
	{ "started",     8,  step_started },
	{ "workspace",   10, step_workspace },
	{ "fetch",       20, step_fetch },
	{ "extract",     30, step_extract },
	{ "discover",    35, step_discover },
	{ "framework",   40, step_framework },
	{ "install",     60, step_install },
	{ "environment", 65, step_environment },
	{ "nextjs",      70, step_nextjs },
	{ "build",       90, step_build },
	{ "output",      95, step_output },
	{ "publish",     100, step_publish },
};

/* Holds the job for WHARF_TEST_JOB_HOLD_MS (tests kill a worker here). */
static void
build_test_hold(struct build_ctx *c)
{
	int64_t until = util_now_ms() + c->env->cfg->test_job_hold_ms;
	struct timespec ts = { 0, 50 * 1000000 };

	if (c->env->cfg->test_job_hold_ms <= 0)
		return;
	build_log(c, "test hook: holding for %" PRId64 " ms",
	    c->env->cfg->test_job_hold_ms);
	build_log_flush(c, true);
	while (util_now_ms() < until && !queue_run_stopped(c->run))
		nanosleep(&ts, NULL);
}

static enum build_step_result
build_steps_run(struct build_ctx *c)
{
	enum build_step_result r = BUILD_STEP_OK;
	size_t n = sizeof(build_steps) / sizeof(build_steps[0]);

	for (size_t i = 0; i < n; i++) {
		const struct build_step *s = &build_steps[i];
		int64_t t0 = util_mono_ns();

		if (queue_run_stopped(c->run))
			return build_fail(c, BUILD_STEP_STOP, "stopped");
		c->step = s->name;
		build_log(c, "step %zu/%zu %s: start", i + 1, n, s->name);
		r = s->run(c);
		build_log(c, "step %zu/%zu %s: %s in %.0f ms", i + 1, n,
		    s->name, r == BUILD_STEP_OK ? "ok" : r == BUILD_STEP_SKIP ?
		    "skipped" : "failed",
		    (double)(util_mono_ns() - t0) / 1e6);
		log_info("build.step", "build=%s tenant=%s step=%s result=%s "
		    "dur_ms=%.1f", c->b->id, c->b->tenant, s->name,
		    r == BUILD_STEP_OK ? "ok" : r == BUILD_STEP_SKIP ? "skip" :
		    "fail", (double)(util_mono_ns() - t0) / 1e6);
		if (r != BUILD_STEP_OK && r != BUILD_STEP_SKIP)
			return r;
		store_build_progress(c->env->store, c->b->id, s->progress);
		build_log_flush(c, false);
		if (i == 1)
			build_test_hold(c);
	}
	return BUILD_STEP_OK;
}

enum queue_outcome
build_run(void *ctx, struct queue_run *run)
{
	struct build_ctx c = {
		.env = ctx,
		.run = run,
		.b = &run->build,
		.step = "validate",
	};
	enum build_step_result r;
	int64_t t0 = util_mono_ns();

	c.log.start_ms = util_now_ms();
	snprintf(c.log.key, sizeof(c.log.key),
	    "tenants/%s/builds/%s/build.log", c.b->tenant, c.b->id);
	if (run->job.attempts > 1)
		build_log(&c, "attempt %d (the previous one failed or its "
		    "worker was lost)", run->job.attempts);

	r = build_steps_run(&c);

	build_cache_return(&c);
	if (c.ws[0] != '\0' && build_rm_tree(c.ws) != 0)
		log_warn("build.workspace_left", "build=%s path=%s", c.b->id,
		    c.ws);
	build_log(&c, "build %s after %.1f s", r == BUILD_STEP_OK ?
	    "succeeded" : r == BUILD_STEP_STOP ? "stopped" : "failed",
	    (double)(util_mono_ns() - t0) / 1e9);
	build_log_flush(&c, true);
	json_decref(c.user_env);
	free(c.log.text);

	/* Published: a retry finds the deployment and only records this. */
	if (r == BUILD_STEP_OK && store_build_finish(c.env->store, c.b->id,
	    "success", "", "", util_now_ms()) != STORE_OK) {
		snprintf(run->error, sizeof(run->error), "cannot record the "
		    "build's success");
		snprintf(run->error_step, sizeof(run->error_step), "publish");
		r = BUILD_STEP_RETRY;
	}

	switch (r) {
	case BUILD_STEP_OK:
		return QUEUE_DONE;
	case BUILD_STEP_RETRY:
	case BUILD_STEP_STOP:
		return QUEUE_RETRY;
	default:
		return QUEUE_FAIL;
	}
}
