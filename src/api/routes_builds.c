/*
 * routes_builds: the build endpoints under /api/builds/:tenantId.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "blob/blob.h"
#include "core/log.h"
#include "queue/queue.h"

#define BUILDS_PAGE_DEFAULT 20
#define BUILDS_PAGE_MAX     100

static const char *const builds_statuses[] = {
	"pending", "building", "success", "failed", "cancelled",
};

static json_t *
builds_time(int64_t ms)
{
	char buf[32];

	if (ms == 0)
		return json_null();
	util_iso8601(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
builds_str(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

json_t *
builds_json(const struct store_build *b)
{
	json_t *names = json_loads(b->env_names[0] ? b->env_names : "[]", 0,
	    NULL);

	if (!json_is_array(names)) {
		json_decref(names);
		names = json_array();
	}
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:o, s:o, s:o,"
	    " s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:I}",
	    "id", b->id, "tenantId", b->tenant,
	    "userId", builds_str(b->user_id),
	    "version", b->version, "status", b->status,
	    "progress", b->progress,
	    "framework", builds_str(b->framework),
	    "buildCommand", builds_str(b->build_command),
	    "outputDir", builds_str(b->output_dir),
	    "nodeVersion", builds_str(b->node_version),
	    "environmentVariables", names,
	    "originalFileName", builds_str(b->original_name),
	    "fileSize", (json_int_t)b->size,
	    "sha256", builds_str(b->sha256),
	    "uploadedAt", builds_time(b->uploaded_at),
	    "startedAt", builds_time(b->started_at),
	    "finishedAt", builds_time(b->finished_at),
	    "errorMessage", builds_str(b->error),
	    "errorStep", builds_str(b->error_step),
	    "attempts", b->attempts,
	    "queueWaitMs", (json_int_t)b->queue_wait_ms);
}

static int
builds_valid_status(const char *s)
{
	for (size_t i = 0; i < sizeof(builds_statuses) / sizeof(*builds_statuses);
	    i++)
		if (strcmp(s, builds_statuses[i]) == 0)
			return 1;
	return 0;
}

void
routes_build_list(struct http_request *rq)
{
	const char *status = http_query(rq, "status");
	const char *cursor = http_query(rq, "cursor");
	struct store_build *page = NULL;
	size_t limit, count = 0;
	bool more = false;
	json_t *list;

	if (status != NULL && !builds_valid_status(status)) {
		http_reply_error(rq, 400, "Invalid status", "status must be "
		    "one of pending, building, success, failed, cancelled");
		return;
	}
	if (http_query_limit(rq, BUILDS_PAGE_DEFAULT, BUILDS_PAGE_MAX,
	    &limit) != 0)
		return;
	page = calloc(limit, sizeof(*page));
	if (page == NULL) {
		http_reply_error(rq, 500, "Internal error", "Out of memory");
		return;
	}

	if (http_reply_page_error(rq, store_build_list(rq->srv->store,
	    rq->tenant.slug, status, cursor, page, limit, &count, &more),
	    "listing builds") != 0)
		goto out;

	list = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, builds_json(&page[i]));
	http_reply_json(rq, 200, json_pack("{s:b, s:{s:o, s:o}}",
	    "success", 1, "data", "builds", list, "nextCursor",
	    more && count > 0 ? json_string(page[count - 1].id) :
	    json_null()));
out:
	free(page);
}

#define BUILDS_LOG_MAX (16 * 1024 * 1024)

/* The build named by :buildId in this tenant, or a reply and -1. */
static int
builds_load(struct http_request *rq, struct store_build *b)
{
	switch (store_build_get(rq->srv->store, rq->tenant.slug,
	    http_param(rq, 1), b)) {
	case STORE_OK:
		return 0;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 404, "Build not found", "No build '%.40s' "
		    "in tenant '%s'", http_param(rq, 1), rq->tenant.slug);
		return -1;
	default:
		http_reply_store_error(rq, "loading the build");
		return -1;
	}
}

/* A build with what only a single-build answer carries. */
static json_t *
builds_detail_json(struct http_request *rq, const struct store_build *b)
{
	json_t *json = builds_json(b);
	struct store_job job;
	int64_t ahead;

	if (strcmp(b->status, "pending") == 0 &&
	    store_job_of_build(rq->srv->store, b->id, &job) == STORE_OK &&
	    store_job_position(rq->srv->store, job.id, &ahead) == STORE_OK)
		json_object_set_new(json, "queuePosition",
		    json_integer(ahead));
	json_object_set_new(json, "urls", builds_urls_json(rq, b));
	return json;
}

void
routes_build_get(struct http_request *rq)
{
	struct store_build b;

	if (builds_load(rq, &b) != 0)
		return;
	http_reply_json(rq, 200, json_pack("{s:b, s:{s:o}}", "success", 1,
	    "data", "build", builds_detail_json(rq, &b)));
}

void
routes_build_logs(struct http_request *rq)
{
	struct store_build b;
	char key[BLOB_KEY_MAX];
	char *text = NULL;
	size_t len = 0;
	int r;

	if (builds_load(rq, &b) != 0)
		return;
	snprintf(key, sizeof(key), "tenants/%s/builds/%s/build.log",
	    b.tenant, b.id);
	r = blob_get(rq->srv->blob, key, BUILDS_LOG_MAX, &text, &len);
	if (r != 0 && r != -ENOENT) {
		log_warnx("api.log_read", "req=%s build=%s err=%d", rq->id,
		    b.id, r);
		http_reply_error(rq, 500, "Internal error", "Cannot read the "
		    "build log; the request id is %s", rq->id);
		return;
	}
	http_reply_text(rq, 200, "text/plain; charset=utf-8",
	    r == 0 ? text : "", r == 0 ? len : 0);
	free(text);
}

/* Removes what a deleted build kept in the blob store. */
static void
builds_delete_blobs(struct http_request *rq, const struct store_build *b)
{
	static const char *const layouts[] = {
		"tenants/%s/builds/%s/", "tenants/%s/deployments/%s/",
	};
	char prefix[BLOB_KEY_MAX];
	size_t removed;

	for (size_t i = 0; i < 2; i++) {
		snprintf(prefix, sizeof(prefix), layouts[i], b->tenant, b->id);
		if (blob_delete_prefix(rq->srv->blob, prefix, &removed) != 0)
			log_warnx("api.blob_orphans", "req=%s build=%s "
			    "prefix=%s", rq->id, b->id, prefix);
	}
}

static bool
builds_running(const struct store_build *b)
{
	return strcmp(b->status, "pending") == 0 ||
	    strcmp(b->status, "building") == 0;
}

static void
builds_cancel(struct http_request *rq, struct store_build *b)
{
	switch (store_build_cancel(rq->srv->store, b->tenant, b->id,
	    util_now_ms())) {
	case STORE_OK:
		break;
	case STORE_CONFLICT:
		http_reply_error(rq, 409, "Build changed", "The build finished "
		    "while being cancelled; send the request again");
		return;
	default:
		http_reply_store_error(rq, "cancelling the build");
		return;
	}
	log_info("api.build_cancelled", "req=%s tenant=%s build=%s", rq->id,
	    b->tenant, b->id);
	if (builds_load(rq, b) != 0)
		return;
	http_reply_json(rq, 200, json_pack("{s:b, s:s, s:{s:o}}", "success",
	    1, "message", "Build cancelled; DELETE it again to remove it",
	    "data", "build", builds_json(b)));
}

void
routes_build_delete(struct http_request *rq)
{
	struct store_build b;

	if (builds_load(rq, &b) != 0)
		return;
	if (builds_running(&b)) {
		builds_cancel(rq, &b);
		return;
	}
	switch (store_build_delete(rq->srv->store, b.tenant, b.id)) {
	case STORE_OK:
		break;
	case STORE_CONFLICT:
		http_reply_error(rq, 409, "Build is live", "Build %s is the "
		    "deployment '%s' serves now; activate another deployment "
		    "first", b.id, b.tenant);
		return;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 404, "Build not found", "No build '%s'",
		    b.id);
		return;
	default:
		http_reply_store_error(rq, "deleting the build");
		return;
	}
	builds_delete_blobs(rq, &b);
	log_info("api.build_deleted", "req=%s tenant=%s build=%s", rq->id,
	    b.tenant, b.id);
	http_reply_json(rq, 200, json_pack("{s:b, s:s, s:{s:s}}", "success",
	    1, "message", "Build deleted", "data", "id", b.id));
}

void
routes_build_retry(struct http_request *rq)
{
	struct store_job job = { .priority = QUEUE_PRIORITY_DEFAULT,
	    .max_attempts = QUEUE_ATTEMPTS_DEFAULT };
	struct store_build b;

	if (builds_load(rq, &b) != 0)
		return;
	util_uuid(job.id);
	switch (store_build_retry(rq->srv->store, b.tenant, b.id,
	    util_now_ms(), &job)) {
	case STORE_OK:
		break;
	case STORE_CONFLICT:
		http_reply_error(rq, 409, "Build cannot be retried", "Only a "
		    "failed or cancelled build can be retried; this one is %s",
		    b.status);
		return;
	default:
		http_reply_store_error(rq, "queueing the build again");
		return;
	}
	if (rq->srv->queue != NULL)
		queue_wake(rq->srv->queue);
	log_info("api.build_retried", "req=%s tenant=%s build=%s job=%s",
	    rq->id, b.tenant, b.id, job.id);
	if (builds_load(rq, &b) != 0)
		return;
	http_reply_json(rq, 200, json_pack("{s:b, s:s, s:{s:o, s:{s:s, s:i}}}",
	    "success", 1, "message", "Build queued again", "data",
	    "build", builds_detail_json(rq, &b), "job", "id", job.id,
	    "priority", job.priority));
}
