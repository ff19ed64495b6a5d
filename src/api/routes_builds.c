/*
 * routes_builds: the build endpoints under /api/builds/:tenantId.
 */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/log.h"

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
builds_parse_limit(const char *s, size_t *limit)
{
	char *end;
	long n;

	if (s == NULL) {
		*limit = BUILDS_PAGE_DEFAULT;
		return 0;
	}
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 1 || n > BUILDS_PAGE_MAX)
		return -1;
	*limit = (size_t)n;
	return 0;
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
	if (builds_parse_limit(http_query(rq, "limit"), &limit) != 0) {
		http_reply_error(rq, 400, "Invalid limit",
		    "limit must be a whole number from 1 to %d",
		    BUILDS_PAGE_MAX);
		return;
	}
	page = calloc(limit, sizeof(*page));
	if (page == NULL) {
		http_reply_error(rq, 500, "Internal error", "Out of memory");
		return;
	}

	switch (store_build_list(rq->srv->store, rq->tenant.slug, status,
	    cursor, page, limit, &count, &more)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 400, "Invalid cursor", "cursor must be "
		    "the nextCursor of a previous page");
		goto out;
	default:
		http_reply_store_error(rq, "listing builds");
		goto out;
	}

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
