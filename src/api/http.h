/*
 * http: what the API's route handlers share inside the api component:
 * the request being served, replies, and the route table.  Private to
 * src/api/.
 *
 * A request moves through: routed (first call of the access handler),
 * body read (bounded by the route's max_body), authenticated and
 * authorized by the route's flags, handled.  A handler ends by calling
 * exactly one http_reply_* function.
 */
#ifndef WHARF_API_HTTP_H
#define WHARF_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/router.h"
#include "core/core.h"
#include "store/store.h"

struct blob_store;
struct queue;

#define HTTP_JSON_BODY_MAX  (64 * 1024)   /* JSON request bodies */
/*
 * A connection's memory pool: its headers and its read buffer.  256 KiB
 * lets an upload move in large reads (bench/upload: a quarter less CPU
 * than 32 KiB); it also bounds the request headers.
 */
#define HTTP_CONN_MEM       (256 * 1024)
#define HTTP_CONN_TIMEOUT   60            /* seconds idle */
#define HTTP_REQ_ID_LEN     16
#define HTTP_DISCARD_MAX    (4u << 20)    /* refused body read on, then close */

/* Route flags. */
#define HTTP_PUBLIC   0x0u      /* no authentication */
#define HTTP_USER     0x1u      /* a valid token of an active user */
#define HTTP_TENANT   0x2u      /* ...and a membership in :tenantId */
#define HTTP_STREAM   0x4u      /* body streamed: handler is stream ops */

struct http_request;

/*
 * A route whose body is too large to gather (uploads) is served by
 * stream ops instead of a handler.  Authentication and authorization
 * run before begin, on the request's headers, so a refused upload is
 * never read.  begin may reply (the body is then never read); data may
 * only refuse, with http_reply_midbody (libmicrohttpd cannot queue a
 * response in the middle of a body), after which the rest of the body
 * is dropped and the connection closed; end must reply.  cleanup runs
 * when the request is over, whatever happened, and frees rq->stream.
 */
struct http_stream_ops {
	void (*begin)(struct http_request *rq);
	void (*data)(struct http_request *rq, const char *buf, size_t len);
	void (*end)(struct http_request *rq);
	void (*cleanup)(struct http_request *rq);
};

struct api_server {
	struct MHD_Daemon     *mhd;
	const struct config   *cfg;
	struct store          *store;
	struct blob_store     *blob;
	struct queue          *queue;   /* NULL: no workers in process */
	const struct deploy_env *deploy;
	uint16_t               port;
};

struct http_request {
	struct api_server     *srv;
	struct MHD_Connection *conn;
	char                   id[HTTP_REQ_ID_LEN + 1];
	const char            *method;
	char                   path[ROUTER_PATH_MAX + 1];
	struct router_match    match;   /* match.route NULL if unrouted */
	enum router_result     routed;
	char                   allow[64];
	int64_t                start_ns;

	char                  *body;    /* NUL-terminated, owned */
	size_t                 body_len;
	bool                   body_too_large;

	int                    status;  /* 0 until a reply is queued */
	bool                   broken;  /* no reply could be queued */
	bool                   replied_raw; /* answered on the socket */
	uint64_t               discarded; /* body bytes read and dropped */
	void                  *stream;  /* state of stream ops */
	bool                   streaming; /* begin was called */

	/* Set by authentication and tenant authorization. */
	struct store_user      user;
	struct store_tenant    tenant;
	struct store_membership member;
};

typedef void http_handler_fn(struct http_request *rq);

/* The route table (routes.c of each endpoint group adds its rows). */
extern const struct router_route http_routes[];
extern const size_t http_nroutes;

/* Replies.  Each takes over nothing but json, which it always frees. */
void http_reply_json(struct http_request *rq, int status, json_t *json);
void http_reply_text(struct http_request *rq, int status,
    const char *content_type, const char *body, size_t len);
void http_reply_error(struct http_request *rq, int status,
    const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * A refusal in the middle of a body: written straight to the socket
 * with "Connection: close"; the server then drops the rest of the body
 * and closes the connection.
 */
void http_reply_midbody(struct http_request *rq, int status,
    const char *error, const char *message);
/* A 500 for a store failure, logged with the request id. */
void http_reply_store_error(struct http_request *rq, const char *what);
/*
 * After a store's page query that returned rc: 0 when rc is STORE_OK;
 * else replies (400 for a cursor the store does not know, a 500 for the
 * rest, as http_reply_store_error) and returns -1.
 */
int http_reply_page_error(struct http_request *rq, enum store_result rc,
    const char *what);

/* A query parameter, or NULL. */
const char *http_query(struct http_request *rq, const char *name);
/*
 * The "limit" query parameter: fallback when absent, else 1 to max.
 * Returns 0, or -1 after replying 400.
 */
int http_query_limit(struct http_request *rq, size_t fallback, size_t max,
    size_t *limit);
/* A route parameter by position. */
const char *http_param(struct http_request *rq, size_t i);

/*
 * The request body as a JSON object, or NULL after replying 400 with
 * what is wrong.  The caller frees the result with json_decref.
 */
json_t *http_body_json(struct http_request *rq);

/*
 * Authentication and tenant authorization, as DESIGN.md states them.
 * Each returns 0 when the request may go on, or replies with the error
 * and returns -1.
 */
int authz_user(struct http_request *rq);
int authz_tenant(struct http_request *rq, const char *tenant,
    unsigned roles);

/* Endpoint handlers. */
http_handler_fn routes_healthz, routes_metrics;
http_handler_fn routes_login;
http_handler_fn routes_build_list, routes_build_get, routes_build_logs;
http_handler_fn routes_build_delete, routes_build_retry;
http_handler_fn routes_deployment_list, routes_deployment_activate;
http_handler_fn routes_domain_add, routes_domain_list, routes_domain_remove;
extern const struct http_stream_ops routes_upload_ops;

/* The API's view of a build; env values never appear, names only. */
json_t *builds_json(const struct store_build *b);
/* ...with its URLs: {"site", "deployment"}, null when not published. */
json_t *builds_urls_json(struct http_request *rq,
    const struct store_build *b);

/* metrics: counters and latency histograms by route, method, status. */
void metrics_observe(const char *route, const char *method, int status,
    double seconds);
/* Prometheus text exposition; caller frees *out. */
int metrics_render(char **out, size_t *len);

#endif
