/*
 * routes_upload: POST /api/builds/:tenantId, a ZIP in, a queued build
 * out.
 *
 * The multipart body is parsed as it arrives (multipart.h) and the
 * file goes straight into the blob store through a blob writer while
 * its SHA-256 is computed, each on a helper thread of its own
 * (upload_pipe.h) so that they overlap with receiving; memory stays
 * flat whatever the file's size.  Only when the body is complete and valid is the blob
 * committed and the build row and its job inserted, in one
 * transaction; any failure before that aborts the writer (its temp file
 * goes) and leaves no row.  A failure of the insert deletes the blob.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/http.h"
#include "api/multipart.h"
#include "api/upload_pipe.h"
#include "blob/blob.h"
#include "build/discover.h"
#include "build/envfile.h"
#include "core/log.h"
#include "queue/queue.h"

#define UPLOAD_PP_BUFFER     (64 * 1024)  /* urlencoded forms only */
#define UPLOAD_MAX_FIELDS    10
#define UPLOAD_TEXT_MAX      (1024 * 1024)
#define UPLOAD_ENV_MAX       64          /* variables per build */
#define UPLOAD_NAME_MAX      255         /* original file name kept */

static const char *const upload_keys[] = {
	"framework", "buildCommand", "outputDir", "nodeVersion",
	"environmentVariables",
};
static const char upload_allowed_keys[] =
    "framework, buildCommand, outputDir, nodeVersion, environmentVariables";

static const char *const upload_frameworks[] = {
	"next", "vite", "react-scripts", "vue", "angular", "astro", "static",
	"node",
};

static const char *const upload_zip_types[] = {
	"application/zip", "application/x-zip-compressed",
	"application/x-zip", "multipart/x-zip",
};

/* Where the multipart body is: in which field, and what it holds. */
struct upload {
	struct multipart   *mp;         /* multipart/form-data, or else */
	struct MHD_PostProcessor *pp;   /* urlencoded */
	char                id[WHARF_ID_LEN + 1];
	char                key[256];         /* tenants/<t>/builds/<id>/... */

	int                 fields;
	char                field[64];          /* current field's name */
	bool                field_is_file;
	uint64_t            field_bytes;
	bool                in_field;

	/* The file. */
	int                 files;
	struct blob_writer *writer;
	struct upload_pipe *pipe;       /* hashes and writes into writer */
	unsigned char       sha[UPLOAD_PIPE_SHA_LEN];
	uint64_t            size;
	unsigned char       magic[4];

	/* When (util_mono_ns) the body began, ended, and was all stored. */
	int64_t             t_begin;
	int64_t             t_body;
	int64_t             t_stored;
	char                filename[UPLOAD_NAME_MAX + 1];

	/* buildConfig, gathered (bounded by UPLOAD_TEXT_MAX). */
	char               *config;
	size_t              config_len;

	/* First refusal found inside the post processor's callback. */
	int                 status;
	char                error[64];
	char                message[WHARF_ERRMSG_MAX];
};

static void
upload_refuse(struct upload *up, int status, const char *error,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
upload_refuse(struct upload *up, int status, const char *error,
    const char *fmt, ...)
{
	va_list ap;

	if (up->status != 0)
		return;
	up->status = status;
	snprintf(up->error, sizeof(up->error), "%s", error);
	va_start(ap, fmt);
	vsnprintf(up->message, sizeof(up->message), fmt, ap);
	va_end(ap);
}

/* Sends the refusal recorded in up. */
static void
upload_reply_refusal(struct http_request *rq, struct upload *up)
{
	char q[300];

	log_info("upload.refused", "req=%s tenant=%s status=%d reason=%s",
	    rq->id, rq->tenant.slug, up->status,
	    log_q(q, sizeof(q), up->message));
	http_reply_error(rq, up->status, up->error, "%s", up->message);
}

static bool
upload_is_zip_name(const char *filename, const char *content_type)
{
	size_t n = filename ? strlen(filename) : 0;

	if (n >= 4 && strcasecmp(filename + n - 4, ".zip") == 0)
		return true;
	if (content_type == NULL)
		return false;
	for (size_t i = 0; i < sizeof(upload_zip_types) /
	    sizeof(upload_zip_types[0]); i++)
		if (strncasecmp(content_type, upload_zip_types[i],
		    strlen(upload_zip_types[i])) == 0)
			return true;
	return false;
}

/* The base name of what the client called the file, printable only. */
static void
upload_keep_name(struct upload *up, const char *filename)
{
	const char *base = filename;
	size_t o = 0;

	for (const char *p = filename; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	for (; *base && o < sizeof(up->filename) - 1; base++)
		up->filename[o++] = isprint((unsigned char)*base) ?
		    *base : '_';
	up->filename[o] = '\0';
}

/* A new field starts: count it and check what it may be. */
static int
upload_field_begin(struct http_request *rq, struct upload *up,
    const char *key, const char *filename, const char *content_type)
{
	up->in_field = true;
	up->field_bytes = 0;
	up->field_is_file = filename != NULL;
	snprintf(up->field, sizeof(up->field), "%s", key ? key : "");

	if (++up->fields > UPLOAD_MAX_FIELDS) {
		upload_refuse(up, 400, "Too many fields", "The form may hold "
		    "at most %d fields", UPLOAD_MAX_FIELDS);
		return -1;
	}
	if (!up->field_is_file) {
		if (strcmp(up->field, "file") == 0) {
			upload_refuse(up, 400, "No file uploaded", "The field "
			    "'file' must be a file upload, not text");
			return -1;
		}
		return 0;
	}
	if (strcmp(up->field, "file") != 0) {
		upload_refuse(up, 400, "Unexpected file", "A file came in "
		    "the field '%.60s'; send the ZIP in the field 'file'",
		    up->field);
		return -1;
	}
	if (++up->files > 1) {
		upload_refuse(up, 400, "Too many files",
		    "Send exactly one file, in the field 'file'");
		return -1;
	}
	if (!upload_is_zip_name(filename, content_type)) {
		upload_refuse(up, 400, "Invalid file type", "'%.100s' is not "
		    "a ZIP: the name must end in .zip or the part's type be "
		    "application/zip", filename);
		return -1;
	}
	upload_keep_name(up, filename);
	if (blob_writer_begin(rq->srv->blob, up->key, &up->writer) != 0 ||
	    upload_pipe_start(up->writer, &up->pipe) != 0) {
		upload_refuse(up, 500, "Internal error", "Cannot store the "
		    "upload; the request id is %s", rq->id);
		return -1;
	}
	if (!upload_pipe_threaded(up->pipe))
		log_info("upload.unthreaded", "req=%s tenant=%s "
		    "reason=\"%d uploads have helper threads\"", rq->id,
		    rq->tenant.slug, UPLOAD_PIPES_MAX);
	return 0;
}

/* A chunk of the file: check the magic, count, hash and store it. */
static int
upload_file_data(struct http_request *rq, struct upload *up,
    const char *data, size_t size)
{
	const struct config *cfg = rq->srv->cfg;

	for (size_t i = 0; i < size && up->size + i < 4; i++)
		up->magic[up->size + i] = (unsigned char)data[i];
	if (up->size < 4 && up->size + size >= 4 &&
	    memcmp(up->magic, "PK\3\4", 4) != 0) {
		upload_refuse(up, 400, "Invalid file type", "'%s' is not a "
		    "ZIP archive: its content does not start like one",
		    up->filename);
		return -1;
	}
	up->size += size;
	if (up->size > cfg->max_upload_size) {
		upload_refuse(up, 413, "File too large", "The file is larger "
		    "than MAX_UPLOAD_SIZE (%" PRIu64 " bytes)",
		    cfg->max_upload_size);
		return -1;
	}
	if (upload_pipe_write(up->pipe, data, size) != 0) {
		upload_refuse(up, 500, "Internal error", "Cannot store the "
		    "upload; the request id is %s", rq->id);
		return -1;
	}
	return 0;
}

/* A chunk of a text field: keep buildConfig, bound every field. */
static int
upload_text_data(struct upload *up, const char *data, size_t size)
{
	char *grown;

	if (up->field_bytes > UPLOAD_TEXT_MAX) {
		upload_refuse(up, 413, "Field too large", "The field "
		    "'%.60s' is larger than %d bytes", up->field,
		    UPLOAD_TEXT_MAX);
		return -1;
	}
	if (strcmp(up->field, "buildConfig") != 0 || size == 0)
		return 0;
	if (up->config != NULL && up->field_bytes == size) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "Send buildConfig once");
		return -1;
	}
	grown = realloc(up->config, up->config_len + size + 1);
	if (grown == NULL) {
		upload_refuse(up, 500, "Internal error", "Out of memory");
		return -1;
	}
	up->config = grown;
	memcpy(up->config + up->config_len, data, size);
	up->config_len += size;
	up->config[up->config_len] = '\0';
	return 0;
}

/* A chunk of the current field, whichever parser found it. */
static int
upload_field_data(struct http_request *rq, struct upload *up,
    const char *data, size_t size)
{
	up->field_bytes += size;
	if (up->field_is_file)
		return size > 0 ? upload_file_data(rq, up, data, size) : 0;
	return upload_text_data(up, data, size);
}

/* The multipart parser's callbacks (multipart/form-data). */
static int
upload_part_begin(void *cls, const char *name, const char *filename,
    const char *content_type)
{
	struct http_request *rq = cls;

	return upload_field_begin(rq, rq->stream, name, filename,
	    content_type);
}

static int
upload_part_data(void *cls, const char *buf, size_t len)
{
	struct http_request *rq = cls;

	return upload_field_data(rq, rq->stream, buf, len);
}

static const struct multipart_ops upload_multipart_ops = {
	.begin = upload_part_begin,
	.data = upload_part_data,
};

/* libmicrohttpd's post processor's callback (urlencoded forms). */
static enum MHD_Result
upload_iterate(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct http_request *rq = cls;
	struct upload *up = rq->stream;
	bool same = up->in_field && key != NULL &&
	    strcmp(key, up->field) == 0 && (filename != NULL) ==
	    up->field_is_file;

	if (up->status != 0)
		return MHD_NO;
	/* off 0 starts a field, unless it is a repeat call of an empty one. */
	if (off == 0 && !(same && up->field_bytes == 0) &&
	    upload_field_begin(rq, up, key, filename, content_type) != 0)
		return MHD_NO;
	return upload_field_data(rq, up, data, size) == 0 ? MHD_YES : MHD_NO;
}

/*
 * The body's parser: ours for multipart/form-data, which is what
 * carries files and where speed matters; libmicrohttpd's post
 * processor for urlencoded forms, which cannot carry a file but are
 * refused field by field as before.  false when the body is neither.
 */
static bool
upload_parser(struct http_request *rq, struct upload *up)
{
	const char *type = MHD_lookup_connection_value(rq->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (type != NULL && strncasecmp(type,
	    MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
	    strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0)
		up->pp = MHD_create_post_processor(rq->conn, UPLOAD_PP_BUFFER,
		    upload_iterate, rq);
	else
		up->mp = multipart_new(type, &upload_multipart_ops, rq);
	return up->pp != NULL || up->mp != NULL;
}

static void
upload_begin(struct http_request *rq)
{
	const char *len = MHD_lookup_connection_value(rq->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t max = rq->srv->cfg->max_upload_size;
	struct upload *up;

	/* A body that cannot fit is refused before a byte is read. */
	if (len != NULL && strtoull(len, NULL, 10) > max +
	    (uint64_t)UPLOAD_MAX_FIELDS * UPLOAD_TEXT_MAX) {
		http_reply_error(rq, 413, "File too large", "The upload is "
		    "larger than MAX_UPLOAD_SIZE (%" PRIu64 " bytes)", max);
		return;
	}
	up = calloc(1, sizeof(*up));
	if (up == NULL) {
		http_reply_error(rq, 500, "Internal error", "Out of memory");
		return;
	}
	rq->stream = up;
	up->t_begin = util_mono_ns();
	util_uuid(up->id);
	snprintf(up->key, sizeof(up->key), "tenants/%s/builds/%s/source.zip",
	    rq->tenant.slug, up->id);
	if (!upload_parser(rq, up))
		http_reply_error(rq, 400, "Invalid upload", "Send the ZIP as "
		    "multipart/form-data with the file in the field 'file'");
}

/* Stops the helper, then drops the temp object: nothing is left. */
static void
upload_discard(struct upload *up)
{
	upload_pipe_free(up->pipe);
	up->pipe = NULL;
	blob_writer_abort(up->writer);
	up->writer = NULL;
}

/* A chunk of the body; a refusal is answered at once (see http.h). */
static void
upload_data(struct http_request *rq, const char *buf, size_t len)
{
	struct upload *up = rq->stream;
	char q[300];
	bool parsed;

	if (up->mp != NULL)
		parsed = multipart_feed(up->mp, buf, len) == 0;
	else
		parsed = MHD_post_process(up->pp, buf, len) == MHD_YES;
	if (!parsed && up->status == 0)
		upload_refuse(up, 400, "Invalid upload", "The multipart body "
		    "could not be parsed");
	if (up->status == 0)
		return;
	upload_discard(up);     /* the temp file goes now */
	log_info("upload.refused", "req=%s tenant=%s status=%d reason=%s",
	    rq->id, rq->tenant.slug, up->status,
	    log_q(q, sizeof(q), up->message));
	http_reply_midbody(rq, up->status, up->error, up->message);
}

/* true when the variable name and value may reach a build. */
static bool
upload_env_ok(struct upload *up, const char *name, json_t *value)
{
	char why[256];

	if (build_env_name_check(name, true, why, sizeof(why)) != 0) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables: '%.100s' cannot be set: %s", name,
		    why);
		return false;
	}
	if (!json_is_string(value)) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables: the value of '%s' must be a string",
		    name);
		return false;
	}
	if (build_env_value_check(json_string_value(value),
	    json_string_length(value), why, sizeof(why)) != 0) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables: the value of '%s' %s", name, why);
		return false;
	}
	return true;
}

static bool
upload_check_env(struct upload *up, json_t *env)
{
	const char *name;
	json_t *value;

	if (!json_is_object(env)) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables must be an object of strings");
		return false;
	}
	if (json_object_size(env) > UPLOAD_ENV_MAX) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables may hold at most %d variables",
		    UPLOAD_ENV_MAX);
		return false;
	}
	json_object_foreach(env, name, value)
		if (!upload_env_ok(up, name, value))
			return false;
	return true;
}

static bool
upload_check_string(struct upload *up, json_t *cfg, const char *key,
    size_t max)
{
	json_t *v = json_object_get(cfg, key);
	const char *s = json_string_value(v);

	if (v == NULL)
		return true;
	if (s == NULL || json_string_length(v) == 0 ||
	    json_string_length(v) > max || strlen(s) !=
	    json_string_length(v) || strpbrk(s, "\r\n") != NULL) {
		upload_refuse(up, 400, "Invalid build configuration",
		    "%s must be a one-line string of 1 to %zu bytes", key,
		    max);
		return false;
	}
	return true;
}

static bool
upload_check_framework(struct upload *up, json_t *cfg)
{
	const char *fw = json_string_value(json_object_get(cfg, "framework"));

	if (json_object_get(cfg, "framework") == NULL)
		return true;
	for (size_t i = 0; fw != NULL && i < sizeof(upload_frameworks) /
	    sizeof(upload_frameworks[0]); i++)
		if (strcmp(fw, upload_frameworks[i]) == 0)
			return true;
	upload_refuse(up, 400, "Invalid build configuration", "framework "
	    "must be one of next, vite, react-scripts, vue, angular, astro, "
	    "static, node");
	return false;
}

static bool
upload_check_output_dir(struct upload *up, json_t *cfg)
{
	const char *dir = json_string_value(json_object_get(cfg,
	    "outputDir"));
	char clean[WHARF_PATH_MAX], why[256];

	if (dir == NULL || build_output_dir_check(dir, clean, sizeof(clean),
	    why, sizeof(why)) == 0)
		return true;
	upload_refuse(up, 400, "Invalid build configuration", "outputDir "
	    "'%.100s' %s: it must be a relative folder inside the project",
	    dir, why);
	return false;
}

static bool
upload_known_key(const char *key)
{
	for (size_t i = 0; i < sizeof(upload_keys) / sizeof(upload_keys[0]);
	    i++)
		if (strcmp(key, upload_keys[i]) == 0)
			return true;
	return false;
}

/*
 * Parses and checks buildConfig; returns it (new reference), NULL when
 * absent, or NULL with up->status set when refused.
 */
static json_t *
upload_build_config(struct upload *up)
{
	json_error_t jerr;
	const char *key;
	json_t *cfg, *v;

	if (up->config == NULL)
		return NULL;
	cfg = json_loadb(up->config, up->config_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		upload_refuse(up, 400, "Invalid build configuration",
		    "Build configuration must be valid JSON (an object with "
		    "the keys %s)", upload_allowed_keys);
		return NULL;
	}
	json_object_foreach(cfg, key, v) {
		if (!upload_known_key(key)) {
			upload_refuse(up, 400, "Invalid build configuration",
			    "Invalid key: %.60s. Allowed: %s", key,
			    upload_allowed_keys);
			goto bad;
		}
	}
	if (!upload_check_framework(up, cfg) ||
	    !upload_check_string(up, cfg, "buildCommand", 511) ||
	    !upload_check_string(up, cfg, "outputDir", 255) ||
	    !upload_check_output_dir(up, cfg) ||
	    !upload_check_string(up, cfg, "nodeVersion", 31))
		goto bad;
	v = json_object_get(cfg, "environmentVariables");
	if (v != NULL && !upload_check_env(up, v))
		goto bad;
	return cfg;
bad:
	json_decref(cfg);
	return NULL;
}

/* "v<ms>-<9 base36 chars>", as the original named versions. */
static void
upload_version(char *out, size_t len, int64_t now)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	unsigned char raw[9];
	char tail[10];

	if (util_random(raw, sizeof(raw)) != 0)
		memset(raw, 0, sizeof(raw));
	for (size_t i = 0; i < 9; i++)
		tail[i] = digits[raw[i] % 36];
	tail[9] = '\0';
	snprintf(out, len, "v%" PRId64 "-%s", now, tail);
}

static void
upload_copy(char *dst, size_t len, json_t *cfg, const char *key)
{
	const char *v = json_string_value(json_object_get(cfg, key));

	snprintf(dst, len, "%s", v ? v : "");
}

/* The build row, from the upload and its configuration. */
static int
upload_fill_build(struct http_request *rq, struct upload *up, json_t *cfg,
    struct store_build *b, char **env_values)
{
	json_t *env = json_object_get(cfg, "environmentVariables");
	json_t *names = json_array();
	char *names_text;
	const char *name;
	json_t *value;

	memset(b, 0, sizeof(*b));
	memcpy(b->id, up->id, sizeof(b->id));
	snprintf(b->tenant, sizeof(b->tenant), "%s", rq->tenant.slug);
	snprintf(b->user_id, sizeof(b->user_id), "%s", rq->user.id);
	b->uploaded_at = util_now_ms();
	upload_version(b->version, sizeof(b->version), b->uploaded_at);
	snprintf(b->status, sizeof(b->status), "pending");
	upload_copy(b->framework, sizeof(b->framework), cfg, "framework");
	upload_copy(b->build_command, sizeof(b->build_command), cfg,
	    "buildCommand");
	upload_copy(b->output_dir, sizeof(b->output_dir), cfg, "outputDir");
	upload_copy(b->node_version, sizeof(b->node_version), cfg,
	    "nodeVersion");
	snprintf(b->source_key, sizeof(b->source_key), "%s", up->key);
	snprintf(b->original_name, sizeof(b->original_name), "%s",
	    up->filename);
	b->size = (int64_t)up->size;
	util_hex(up->sha, sizeof(up->sha), b->sha256);

	json_object_foreach(env, name, value)
		json_array_append_new(names, json_string(name));
	names_text = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	*env_values = env ? json_dumps(env, JSON_COMPACT) : NULL;
	if (names_text == NULL || util_fmt(b->env_names,
	    sizeof(b->env_names), "%s", names_text) != 0 ||
	    (env != NULL && *env_values == NULL)) {
		free(names_text);
		upload_refuse(up, 400, "Invalid build configuration",
		    "environmentVariables: the names are too long together");
		return -1;
	}
	free(names_text);
	return 0;
}

static void
upload_reply_ok(struct http_request *rq, const struct store_build *b,
    const struct store_job *job, int64_t ahead)
{
	http_reply_json(rq, 200, json_pack(
	    "{s:b, s:s, s:{s:{s:s, s:s, s:s, s:s, s:o, s:I},"
	    " s:{s:s, s:I, s:s}, s:{s:s, s:i}}}",
	    "success", 1,
	    "message", "File uploaded and build queued successfully",
	    "data",
	    "build", "id", b->id, "tenantId", b->tenant, "version",
	    b->version, "status", b->status, "framework",
	    b->framework[0] ? json_string(b->framework) : json_null(),
	    "queuePosition", (json_int_t)ahead,
	    "upload", "key", b->source_key, "size", (json_int_t)b->size,
	    "sha256", b->sha256,
	    "job", "id", job->id, "priority", job->priority));
}

/* The body is complete: validate, commit the blob, insert the rows. */
static void
upload_finish(struct http_request *rq, struct upload *up)
{
	struct store_build b;
	struct store_job job = { .priority = QUEUE_PRIORITY_DEFAULT,
	    .max_attempts = QUEUE_ATTEMPTS_DEFAULT };
	char *env_values = NULL;
	int64_t ahead = 0, t_commit;
	json_t *cfg;

	cfg = upload_build_config(up);
	if (up->status != 0 || upload_fill_build(rq, up, cfg, &b,
	    &env_values) != 0)
		goto out;

	if (blob_writer_commit(up->writer) != 0) {
		up->writer = NULL;
		upload_refuse(up, 500, "Internal error", "Cannot store the "
		    "upload; the request id is %s", rq->id);
		goto out;
	}
	up->writer = NULL;
	t_commit = util_mono_ns();

	util_uuid(job.id);
	if (store_build_create(rq->srv->store, &b, env_values, &job) !=
	    STORE_OK) {
		blob_delete(rq->srv->blob, up->key);
		http_reply_store_error(rq, "creating the build");
		goto out;
	}
	if (store_job_position(rq->srv->store, job.id, &ahead) != STORE_OK)
		ahead = 0;
	if (rq->srv->queue != NULL)
		queue_wake(rq->srv->queue);
	/*
	 * recv: the body's bytes, as fast as the client sends them; drain:
	 * the pipe's last buffers hashed and written; commit: the blob's
	 * fsync and rename; db: the rows.
	 */
	log_info("upload.queued", "req=%s tenant=%s build=%s job=%s "
	    "size=%" PRIu64 " sha256=%s ahead=%" PRId64 " recv_ms=%.1f "
	    "drain_ms=%.1f commit_ms=%.1f db_ms=%.1f", rq->id, b.tenant,
	    b.id, job.id, up->size, b.sha256, ahead,
	    (double)(up->t_body - up->t_begin) / 1e6,
	    (double)(up->t_stored - up->t_body) / 1e6,
	    (double)(t_commit - up->t_stored) / 1e6,
	    (double)(util_mono_ns() - t_commit) / 1e6);
	upload_reply_ok(rq, &b, &job, ahead);
out:
	if (up->status != 0 && rq->status == 0)
		upload_reply_refusal(rq, up);
	if (env_values != NULL) {
		explicit_bzero(env_values, strlen(env_values));
		free(env_values);
	}
	json_decref(cfg);
}

static void
upload_end(struct http_request *rq)
{
	struct upload *up = rq->stream;
	bool complete;

	up->t_body = util_mono_ns();
	if (up->mp != NULL) {
		complete = multipart_complete(up->mp);
		multipart_free(up->mp);
		up->mp = NULL;
	} else {
		complete = MHD_destroy_post_processor(up->pp) == MHD_YES;
		up->pp = NULL;
	}
	if (up->status == 0 && !complete)
		upload_refuse(up, 400, "Invalid upload", "The multipart body "
		    "ended early; send the whole form");
	if (up->status == 0 && up->files == 0)
		upload_refuse(up, 400, "No file uploaded", "Send the ZIP as "
		    "multipart/form-data in the field 'file'");
	if (up->status == 0 && up->size < 4)
		upload_refuse(up, 400, "Invalid file type", "'%s' is not a "
		    "ZIP archive: it is %" PRIu64 " bytes long", up->filename,
		    up->size);
	/* The whole file hashed and written before anything is decided. */
	if (up->status == 0 && upload_pipe_finish(up->pipe, up->sha) != 0)
		upload_refuse(up, 500, "Internal error", "Cannot store the "
		    "upload; the request id is %s", rq->id);
	up->t_stored = util_mono_ns();
	upload_pipe_free(up->pipe);
	up->pipe = NULL;
	upload_finish(rq, up);
}

/* Whatever happened: no temp file, no half-written blob, no leak. */
static void
upload_cleanup(struct http_request *rq)
{
	struct upload *up = rq->stream;

	if (up == NULL)
		return;
	multipart_free(up->mp);
	if (up->pp != NULL)
		MHD_destroy_post_processor(up->pp);
	upload_discard(up);
	if (up->config != NULL) {
		explicit_bzero(up->config, up->config_len);
		free(up->config);
	}
	free(up);
	rq->stream = NULL;
}

const struct http_stream_ops routes_upload_ops = {
	.begin = upload_begin,
	.data = upload_data,
	.end = upload_end,
	.cleanup = upload_cleanup,
};
