/*
 * publish: step 13, a build's output folder into content-addressed
 * objects, a manifest, a deployment row and a pointer flip.
 *
 * The folder is walked once (never following a link: a link in the
 * output, which the build could point anywhere, is skipped and
 * logged), then DEPLOY_THREADS threads hash, store and compress the
 * files, each taking the next file from a shared counter.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <brotli/encode.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "blob/blob.h"
#include "core/log.h"
#include "deploy/deploy.h"
#include "deploy/mime.h"
#include "deploy/rules.h"

#define PUBLISH_GZIP_LEVEL 6
#define PUBLISH_BR_QUALITY 5
#define PUBLISH_DEPTH_MAX  32

struct publish_file {
	char     path[DEPLOY_PATH_MAX];     /* "/css/site.css" */
	uint64_t size;
	char     hash[65];
	char     type[128];
	uint64_t gzip, br;                  /* variant sizes, 0: none */
	bool     uploaded;
	int      compressed;
	int      err;                       /* -errno of a failure */
};

struct publish {
	const struct deploy_env   *env;
	const struct store_build  *b;
	const char                *root;    /* the output folder */
	struct publish_file       *files;
	size_t                     nfiles, cap;
	atomic_size_t              next;
	size_t                     skipped;  /* links and special files */
	deploy_log_fn             *log;
	void                      *log_ctx;
	char                       err[WHARF_ERRMSG_MAX];
};

/* The walk. */

static int
publish_add(struct publish *p, const char *path, uint64_t size)
{
	struct publish_file *grown;

	if (p->nfiles == DEPLOY_MAX_FILES) {
		snprintf(p->err, sizeof(p->err), "the output holds more than "
		    "%d files", DEPLOY_MAX_FILES);
		return -1;
	}
	if (p->nfiles == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		grown = realloc(p->files, p->cap * sizeof(*grown));
		if (grown == NULL) {
			snprintf(p->err, sizeof(p->err), "out of memory");
			return -1;
		}
		p->files = grown;
	}
	memset(&p->files[p->nfiles], 0, sizeof(p->files[0]));
	snprintf(p->files[p->nfiles].path, DEPLOY_PATH_MAX, "%s", path);
	p->files[p->nfiles++].size = size;
	return 0;
}

static int publish_walk(struct publish *p, int dirfd, const char *prefix,
    int depth);

/* One entry of a folder: a file to publish, a folder to enter, or not. */
static int
publish_entry(struct publish *p, int dirfd, const char *prefix,
    const char *name, int depth)
{
	char path[DEPLOY_PATH_MAX];
	struct stat st;
	int fd, r;

	if (util_fmt(path, sizeof(path), "%s/%s", prefix, name) != 0) {
		snprintf(p->err, sizeof(p->err), "the path %.100s/%s... is "
		    "longer than %d bytes", prefix, name, DEPLOY_PATH_MAX - 1);
		return -1;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (S_ISREG(st.st_mode)) {
		/* The rules files configure the site; they are not in it. */
		if (depth == 0 && (strcmp(name, "_redirects") == 0 ||
		    strcmp(name, "_headers") == 0))
			return 0;
		return publish_add(p, path, (uint64_t)st.st_size);
	}
	if (!S_ISDIR(st.st_mode)) {
		p->skipped++;
		p->log(p->log_ctx, "skipped %s: not a regular file or folder "
		    "(links are never published)", path);
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = publish_walk(p, fd, path, depth + 1);
	return r;
}

/* Walks the folder at dirfd (taking it over). */
static int
publish_walk(struct publish *p, int dirfd, const char *prefix, int depth)
{
	struct dirent *de;
	DIR *dir;
	int r = 0;

	if (depth > PUBLISH_DEPTH_MAX) {
		close(dirfd);
		snprintf(p->err, sizeof(p->err), "the output nests folders "
		    "deeper than %d", PUBLISH_DEPTH_MAX);
		return -1;
	}
	dir = fdopendir(dirfd);
	if (dir == NULL) {
		close(dirfd);
		snprintf(p->err, sizeof(p->err), "cannot read %s: %s",
		    prefix[0] ? prefix : "/", strerror(errno));
		return -1;
	}
	while (r == 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		r = publish_entry(p, dirfd, prefix, de->d_name, depth);
	}
	closedir(dir);
	return r;
}

static int
publish_cmp(const void *a, const void *b)
{
	return strcmp(((const struct publish_file *)a)->path,
	    ((const struct publish_file *)b)->path);
}

/* One file: hash, store, compress. */

static int
publish_read(const char *root, const char *path, uint64_t size,
    char **buf)
{
	char full[WHARF_PATH_MAX];
	size_t done = 0;
	int fd, r = 0;

	if (util_fmt(full, sizeof(full), "%s%s", root, path) != 0)
		return -ENAMETOOLONG;
	*buf = malloc(size ? size : 1);
	if (*buf == NULL)
		return -ENOMEM;
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	while (done < size) {
		ssize_t n = read(fd, *buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;     /* shrank under us */
			break;
		}
		done += (size_t)n;
	}
	close(fd);
out:
	if (r != 0) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

static void
publish_hash(const void *buf, size_t len, char hex[65])
{
	unsigned char digest[32];
	unsigned int dlen = 0;

	EVP_Digest(buf, len, digest, &dlen, EVP_sha256(), NULL);
	util_hex(digest, sizeof(digest), hex);
}

/* SHA-256 of a file too large to hold, read in chunks. */
static int
publish_hash_file(const char *path, char hex[65])
{
	unsigned char digest[32], chunk[1 << 16];
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	int fd, r = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || sha == NULL ||
	    EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
		r = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		EVP_DigestUpdate(sha, chunk, (size_t)n);
	}
	EVP_DigestFinal_ex(sha, digest, NULL);
	util_hex(digest, sizeof(digest), hex);
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(sha);
	return r;
}

/* gzip of buf into a new buffer, or NULL. */
static unsigned char *
publish_gzip(const void *buf, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	unsigned char *out;
	size_t cap;

	if (deflateInit2(&zs, PUBLISH_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 9,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	cap = deflateBound(&zs, len);
	out = malloc(cap);
	if (out == NULL) {
		deflateEnd(&zs);
		return NULL;
	}
	zs.next_in = (unsigned char *)buf;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return NULL;
	}
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static unsigned char *
publish_brotli(const void *buf, size_t len, size_t *out_len)
{
	size_t cap = BrotliEncoderMaxCompressedSize(len);
	unsigned char *out;

	if (cap == 0)
		return NULL;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	*out_len = cap;
	if (!BrotliEncoderCompress(PUBLISH_BR_QUALITY, BROTLI_DEFAULT_WINDOW,
	    BROTLI_MODE_TEXT, len, buf, out_len, out)) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * A variant of the object at base (".gz" or ".br"): kept when it saves
 * at least a tenth.  Its size, or 0 when there is none.
 */
static uint64_t
publish_variant(struct publish *p, struct publish_file *f, const char *base,
    const char *ext, const char *buf)
{
	char key[BLOB_KEY_MAX];
	struct blob_stat st;
	unsigned char *packed;
	size_t packed_len = 0;

	snprintf(key, sizeof(key), "%s%s", base, ext);
	if (blob_stat(p->env->blob, key, &st) == 0)
		return st.size;
	if (buf == NULL)
		return 0;
	packed = strcmp(ext, ".gz") == 0 ?
	    publish_gzip(buf, f->size, &packed_len) :
	    publish_brotli(buf, f->size, &packed_len);
	if (packed == NULL)
		return 0;
	if (packed_len * 10 > f->size * 9 ||
	    blob_put(p->env->blob, key, packed, packed_len) != 0) {
		free(packed);
		return 0;
	}
	free(packed);
	f->compressed++;
	return packed_len;
}

/* Hashes, stores and compresses one file.  0 or -errno. */
static int
publish_file(struct publish *p, struct publish_file *f)
{
	char base[BLOB_KEY_MAX], full[WHARF_PATH_MAX];
	struct blob_stat st;
	char *buf = NULL;
	int r;

	snprintf(f->type, sizeof(f->type), "%s", mime_type_for(f->path));
	if (util_fmt(full, sizeof(full), "%s%s", p->root, f->path) != 0)
		return -ENAMETOOLONG;

	/* Small enough for memory: read once, hash, store, compress. */
	if (f->size <= DEPLOY_COMPRESS_MAX) {
		r = publish_read(p->root, f->path, f->size, &buf);
		if (r != 0)
			return r;
		publish_hash(buf, f->size, f->hash);
	} else {
		r = publish_hash_file(full, f->hash);
		if (r != 0)
			return r;
	}
	snprintf(base, sizeof(base), "tenants/%s/objects/%s", p->b->tenant,
	    f->hash);

	if (blob_stat(p->env->blob, base, &st) != 0) {
		r = buf ? blob_put(p->env->blob, base, buf, f->size) :
		    blob_put_file(p->env->blob, base, full);
		if (r != 0)
			goto out;
		f->uploaded = true;
	}
	if (mime_is_compressible(f->type) && f->size >= DEPLOY_COMPRESS_MIN) {
		f->gzip = publish_variant(p, f, base, ".gz", buf);
		f->br = publish_variant(p, f, base, ".br", buf);
	}
out:
	free(buf);
	return r;
}

static void *
publish_worker(void *arg)
{
	struct publish *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->nfiles)
		p->files[i].err = publish_file(p, &p->files[i]);
	return NULL;
}

/* Runs the workers over every file; 0, or -1 with p->err set. */
static int
publish_files(struct publish *p)
{
	pthread_t threads[DEPLOY_THREADS];
	int n = 0;

	atomic_store(&p->next, 0);
	for (; n < DEPLOY_THREADS; n++)
		if (pthread_create(&threads[n], NULL, publish_worker, p) != 0)
			break;
	if (n == 0)
		publish_worker(p);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);

	for (size_t i = 0; i < p->nfiles; i++) {
		if (p->files[i].err == 0)
			continue;
		snprintf(p->err, sizeof(p->err), "cannot publish %.200s: %s",
		    p->files[i].path, strerror(-p->files[i].err));
		return -1;
	}
	return 0;
}

/* The manifest. */

static json_t *
publish_files_json(const struct publish *p)
{
	json_t *files = json_object();

	for (size_t i = 0; i < p->nfiles; i++) {
		const struct publish_file *f = &p->files[i];
		json_t *entry = json_pack("{s:s, s:I, s:s}", "hash", f->hash,
		    "size", (json_int_t)f->size, "type", f->type);

		if (f->gzip)
			json_object_set_new(entry, "gzip",
			    json_integer((json_int_t)f->gzip));
		if (f->br)
			json_object_set_new(entry, "br",
			    json_integer((json_int_t)f->br));
		json_object_set_new(files, f->path, entry);
	}
	return files;
}

/* The text of a rules file at the output's root; NULL when absent. */
static char *
publish_rules_text(struct publish *p, const char *name, size_t *len)
{
	char path[WHARF_PATH_MAX], *text;
	struct stat st;

	if (util_fmt(path, sizeof(path), "%s/%s", p->root, name) != 0 ||
	    lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	if ((uint64_t)st.st_size > (uint64_t)DEPLOY_RULES_MAX *
	    DEPLOY_RULE_LINE_MAX) {
		snprintf(p->err, sizeof(p->err), "%s is larger than %d bytes",
		    name, DEPLOY_RULES_MAX * DEPLOY_RULE_LINE_MAX);
		return NULL;
	}
	if (util_fmt(path, sizeof(path), "/%s", name) != 0 ||
	    publish_read(p->root, path, (uint64_t)st.st_size, &text) != 0) {
		snprintf(p->err, sizeof(p->err), "cannot read %s", name);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return text;
}

/*
 * Parses the output's _redirects and _headers into the manifest.  A
 * rule that does not parse fails the deployment with the file's name,
 * line and reason.
 */
static int
publish_rules(struct publish *p, json_t *manifest)
{
	const struct rules_limits lim = {
		.max_rules = DEPLOY_RULES_MAX,
		.max_line = DEPLOY_RULE_LINE_MAX,
	};
	struct rules_redirects *redirects = NULL;
	struct rules_headers *headers = NULL;
	char *text;
	size_t len = 0;
	int r = 0;

	text = publish_rules_text(p, "_redirects", &len);
	if (text == NULL && p->err[0] != '\0')
		return -1;
	r = rules_redirects_parse(text ? text : "", text ? len : 0,
	    "_redirects", &lim, &redirects, p->err, sizeof(p->err));
	free(text);
	if (r != 0)
		return -1;

	len = 0;
	text = publish_rules_text(p, "_headers", &len);
	if (text == NULL && p->err[0] != '\0')
		goto out;
	r = rules_headers_parse(text ? text : "", text ? len : 0,
	    "_headers", &lim, &headers, p->err, sizeof(p->err));
	free(text);
	if (r != 0)
		goto out;

	json_object_set_new(manifest, "redirects",
	    rules_redirects_to_json(redirects));
	json_object_set_new(manifest, "headers",
	    rules_headers_to_json(headers));
	if (rules_redirects_count(redirects) + rules_headers_count(headers))
		p->log(p->log_ctx, "_redirects: %zu rules, _headers: %zu "
		    "blocks", rules_redirects_count(redirects),
		    rules_headers_count(headers));
out:
	rules_redirects_free(redirects);
	rules_headers_free(headers);
	return p->err[0] != '\0' ? -1 : 0;
}

static json_t *
publish_manifest(struct publish *p, const char *deployment_id)
{
	char created[32];
	json_t *manifest;

	util_iso8601(util_now_ms(), created, sizeof(created));
	manifest = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o}",
	    "version", 1, "tenant", p->b->tenant, "buildId", p->b->id,
	    "deploymentId", deployment_id, "createdAt", created,
	    "files", publish_files_json(p));
	if (manifest != NULL && publish_rules(p, manifest) != 0) {
		json_decref(manifest);
		return NULL;
	}
	return manifest;
}

/* Writes the manifest blob; fills the deployment's key. */
static int
publish_write_manifest(struct publish *p, json_t *manifest,
    struct store_deployment *d)
{
	char *text = json_dumps(manifest, JSON_COMPACT);
	int r;

	if (text == NULL)
		return -ENOMEM;
	snprintf(d->manifest_key, sizeof(d->manifest_key),
	    "tenants/%s/deployments/%s/manifest.json", p->b->tenant,
	    p->b->id);
	r = blob_put(p->env->blob, d->manifest_key, text, strlen(text));
	free(text);
	return r;
}

/* URLs. */

static unsigned
publish_port(const struct deploy_env *env)
{
	char host[256];
	uint16_t port = 0;

	if (env->edge_port != 0)
		return env->edge_port;
	config_parse_listen(env->cfg->edge_listen, host, sizeof(host), &port);
	return port;
}

static void
publish_url(const struct deploy_env *env, const char *label, char *out,
    size_t len)
{
	unsigned port = publish_port(env);

	if (port == 80 || port == 0)
		snprintf(out, len, "http://%s.%s/", label,
		    env->cfg->sites_domain);
	else
		snprintf(out, len, "http://%s.%s:%u/", label,
		    env->cfg->sites_domain, port);
}

void
deploy_site_url(const struct deploy_env *env, const char *tenant, char *out,
    size_t len)
{
	publish_url(env, tenant, out, len);
}

void
deploy_deployment_url(const struct deploy_env *env, const char *tenant,
    const char *build_id, char *out, size_t len)
{
	char label[WHARF_ID_LEN + WHARF_SLUG_MAX + 3];

	snprintf(label, sizeof(label), "%s--%s", build_id, tenant);
	publish_url(env, label, out, len);
}

/* The pointer flip. */

static void
publish_pointer_mirror(const struct deploy_env *env,
    const struct store_deployment *d)
{
	char key[BLOB_KEY_MAX], stamp[32], *text;
	json_t *pointer;

	util_iso8601(util_now_ms(), stamp, sizeof(stamp));
	pointer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
	    "tenantId", d->tenant, "version", d->version, "buildId",
	    d->build_id, "deploymentId", d->id, "timestamp", stamp,
	    "path", d->manifest_key);
	text = json_dumps(pointer, JSON_COMPACT);
	json_decref(pointer);
	snprintf(key, sizeof(key), "pointers/%s/current.json", d->tenant);
	if (text == NULL || blob_put(env->blob, key, text, strlen(text)) != 0)
		log_warnx("deploy.pointer_mirror", "tenant=%s deployment=%s "
		    "msg=\"pointer blob not rewritten; the database is "
		    "current\"", d->tenant, d->id);
	free(text);
}

enum store_result
deploy_activate(const struct deploy_env *env, const char *tenant,
    const char *deployment_id, struct store_deployment *activated)
{
	struct store_deployment prev, now;
	enum store_result r;

	r = store_deployment_activate(env->store, tenant, deployment_id,
	    util_now_ms(), &prev);
	if (r != STORE_OK)
		return r;
	r = store_deployment_get(env->store, tenant, deployment_id, &now);
	if (r != STORE_OK)
		return r;
	publish_pointer_mirror(env, &now);
	if (env->on_flip != NULL)
		env->on_flip(env->flip_ctx, tenant);
	log_info("deploy.activated", "tenant=%s deployment=%s build=%s "
	    "previous=%s", tenant, now.id, now.build_id,
	    prev.id[0] ? prev.id : "-");
	if (activated != NULL)
		*activated = now;
	return STORE_OK;
}

/* The whole of step 13. */

/* A build published before its worker died: activate what exists. */
static enum deploy_status
publish_existing(const struct deploy_env *env, const struct store_build *b,
    struct deploy_result *res, char *err, size_t errlen)
{
	struct store_deployment d;

	if (store_deployment_of_build(env->store, b->tenant, b->id, &d) !=
	    STORE_OK || deploy_activate(env, b->tenant, d.id,
	    &res->deployment) != STORE_OK) {
		snprintf(err, errlen, "the build's deployment could not be "
		    "activated");
		return DEPLOY_RETRY;
	}
	return DEPLOY_OK;
}

static void
publish_count(const struct publish *p, struct deploy_result *res)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		res->bytes += (int64_t)p->files[i].size;
		res->uploaded += p->files[i].uploaded;
		res->compressed += p->files[i].compressed;
	}
	res->files = (int64_t)p->nfiles;
}

/* Files in, manifest out: everything before the database is touched. */
static enum deploy_status
publish_content(struct publish *p, const char *deployment_id,
    struct store_deployment *d)
{
	json_t *manifest;
	int fd, r;

	fd = open(p->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(p->err, sizeof(p->err), "cannot open the output "
		    "folder: %s", strerror(errno));
		return DEPLOY_INVALID;
	}
	if (publish_walk(p, fd, "", 0) != 0)
		return DEPLOY_INVALID;
	qsort(p->files, p->nfiles, sizeof(p->files[0]), publish_cmp);
	if (p->nfiles == 0) {
		snprintf(p->err, sizeof(p->err), "the output folder holds no "
		    "files to publish");
		return DEPLOY_INVALID;
	}
	if (publish_files(p) != 0)
		return DEPLOY_RETRY;

	manifest = publish_manifest(p, deployment_id);
	if (manifest == NULL)
		return DEPLOY_INVALID;
	r = publish_write_manifest(p, manifest, d);
	json_decref(manifest);
	if (r != 0) {
		snprintf(p->err, sizeof(p->err), "cannot store the manifest: "
		    "%s", strerror(-r));
		return DEPLOY_RETRY;
	}
	return DEPLOY_OK;
}

enum deploy_status
deploy_publish(const struct deploy_env *env, const struct store_build *b,
    const char *output_dir, struct deploy_result *res, deploy_log_fn *log,
    void *log_ctx, char *err, size_t errlen)
{
	struct publish p = {
		.env = env, .b = b, .root = output_dir, .log = log,
		.log_ctx = log_ctx,
	};
	struct store_deployment *d = &res->deployment;
	enum deploy_status status;
	enum store_result sr;

	memset(res, 0, sizeof(*res));
	deploy_site_url(env, b->tenant, res->site_url, sizeof(res->site_url));
	deploy_deployment_url(env, b->tenant, b->id, res->deployment_url,
	    sizeof(res->deployment_url));
	/* Published before its worker died: never publish a build twice. */
	if (store_deployment_of_build(env->store, b->tenant, b->id, d) ==
	    STORE_OK) {
		log(log_ctx, "the build was published already (deployment %s)",
		    d->id);
		return publish_existing(env, b, res, err, errlen);
	}
	util_uuid(d->id);
	snprintf(d->build_id, sizeof(d->build_id), "%s", b->id);
	snprintf(d->tenant, sizeof(d->tenant), "%s", b->tenant);

	status = publish_content(&p, d->id, d);
	publish_count(&p, res);
	free(p.files);
	if (status != DEPLOY_OK) {
		snprintf(err, errlen, "%s", p.err);
		return status;
	}
	log(log_ctx, "published %" PRId64 " files, %" PRId64 " bytes: %"
	    PRId64 " new objects, %" PRId64 " compressed variants",
	    res->files, res->bytes, res->uploaded, res->compressed);

	d->file_count = res->files;
	d->bytes = res->bytes;
	d->created_at = util_now_ms();
	sr = store_deployment_create(env->store, d);
	if (sr == STORE_CONFLICT)
		return publish_existing(env, b, res, err, errlen);
	if (sr == STORE_OK)
		sr = deploy_activate(env, b->tenant, d->id, d);
	if (sr != STORE_OK) {
		store_deployment_fail(env->store, d->id);
		snprintf(err, errlen, "cannot record the deployment: %s",
		    store_errmsg());
		return DEPLOY_RETRY;
	}
	log_info("build.completed", "build=%s tenant=%s deployment=%s "
	    "files=%" PRId64 " new=%" PRId64 " url=%s", b->id, b->tenant,
	    d->id, res->files, res->uploaded, res->site_url);
	return DEPLOY_OK;
}
