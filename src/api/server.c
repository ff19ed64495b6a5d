/*
 * server: the libmicrohttpd daemon of the API and the life of one
 * request through it.
 *
 * libmicrohttpd calls the access handler several times per request:
 * first with the headers only, then once per chunk of body, then once
 * more with no data.  The request is routed on the first call, the body
 * gathered (bounded) on the middle ones, and the handler runs on the
 * last, so the response is queued on a later call than the first; that
 * keeps the connection alive (queueing on the first call makes 0.9.75
 * answer "Connection: close").
 *
 * libmicrohttpd 0.9.75 accepts a response only on the first call (the
 * body unread: it is then skipped and the connection closed) or on the
 * last: MHD_queue_response fails in between.  So a body refused while
 * it streams (too large, not a ZIP) is answered by writing the response
 * straight to the socket (http_reply_midbody, with "Connection: close"),
 * then the rest of the body is read and dropped for a while, so that
 * the client can read the answer before the close, up to
 * HTTP_DISCARD_MAX bytes; then the connection is closed.  A request
 * whose response could not be queued is "broken": the handler returns
 * MHD_NO and the connection closes, rather than wait for a response
 * that never comes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/api.h"
#include "api/http.h"
#include "core/log.h"

static void
server_new_id(char out[HTTP_REQ_ID_LEN + 1])
{
	unsigned char raw[HTTP_REQ_ID_LEN / 2];

	if (util_random(raw, sizeof(raw)) != 0)
		memset(raw, 0, sizeof(raw));
	util_hex(raw, sizeof(raw), out);
}

static void
server_queue(struct http_request *rq, int status, struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Request-Id", rq->id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED && rq->allow[0] != '\0')
		MHD_add_response_header(resp, "Allow", rq->allow);
	if (MHD_queue_response(rq->conn, (unsigned)status, resp) == MHD_YES)
		rq->status = status;
	else {
		log_warnx("http.queue_failed", "req=%s status=%d", rq->id,
		    status);
		rq->broken = true;
	}
	MHD_destroy_response(resp);
}

void
http_reply_text(struct http_request *rq, int status,
    const char *content_type, const char *body, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL) {
		rq->broken = true;
		return;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	server_queue(rq, status, resp);
}

void
http_reply_json(struct http_request *rq, int status, json_t *json)
{
	struct MHD_Response *resp;
	char *text;

	text = json_dumps(json, JSON_COMPACT);
	json_decref(json);
	if (text == NULL) {
		rq->broken = true;
		return;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		rq->broken = true;
		return;
	}
	MHD_add_response_header(resp, "Content-Type",
	    "application/json; charset=utf-8");
	server_queue(rq, status, resp);
}

void
http_reply_error(struct http_request *rq, int status, const char *error,
    const char *fmt, ...)
{
	char message[WHARF_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	http_reply_json(rq, status, json_pack("{s:s, s:s}", "error", error,
	    "message", message));
}

void
http_reply_store_error(struct http_request *rq, const char *what)
{
	char q[256];

	log_errorx("api.store_error", "req=%s what=%s err=%s", rq->id, what,
	    log_q(q, sizeof(q), store_errmsg()));
	http_reply_error(rq, 500, "Internal error",
	    "The database failed while %s; the request id is %s", what,
	    rq->id);
}

int
http_reply_page_error(struct http_request *rq, enum store_result rc,
    const char *what)
{
	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_NOT_FOUND)
		http_reply_error(rq, 400, "Invalid cursor", "cursor must be "
		    "the nextCursor of a previous page");
	else
		http_reply_store_error(rq, what);
	return -1;
}

const char *
http_query(struct http_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

int
http_query_limit(struct http_request *rq, size_t fallback, size_t max,
    size_t *limit)
{
	const char *s = http_query(rq, "limit");
	char *end;
	long n;

	*limit = fallback;
	if (s == NULL)
		return 0;
	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 1 || (size_t)n > max) {
		http_reply_error(rq, 400, "Invalid limit", "limit must be a "
		    "whole number from 1 to %zu", max);
		return -1;
	}
	*limit = (size_t)n;
	return 0;
}

const char *
http_param(struct http_request *rq, size_t i)
{
	return i < rq->match.nparams ? rq->match.params[i] : "";
}

json_t *
http_body_json(struct http_request *rq)
{
	json_error_t jerr;
	json_t *json;

	if (rq->body_len == 0) {
		http_reply_error(rq, 400, "Invalid request",
		    "The body must be a JSON object");
		return NULL;
	}
	json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (json == NULL) {
		http_reply_error(rq, 400, "Invalid request",
		    "The body is not valid JSON: %s (line %d)", jerr.text,
		    jerr.line);
		return NULL;
	}
	if (!json_is_object(json)) {
		json_decref(json);
		http_reply_error(rq, 400, "Invalid request",
		    "The body must be a JSON object");
		return NULL;
	}
	return json;
}

/* Writes all of buf to the connection's socket, waiting a little. */
static int
server_write_raw(struct http_request *rq, const char *buf, size_t len)
{
	const union MHD_ConnectionInfo *info;
	struct pollfd pfd;
	int64_t until = util_mono_ns() + 2000000000LL;

	info = MHD_get_connection_info(rq->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info == NULL)
		return -1;
	pfd.fd = info->connect_fd;
	pfd.events = POLLOUT;
	while (len > 0 && util_mono_ns() < until) {
		ssize_t n = send(pfd.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			poll(&pfd, 1, 100);
		else
			return -1;
	}
	return len == 0 ? 0 : -1;
}

void
http_reply_midbody(struct http_request *rq, int status, const char *error,
    const char *message)
{
	json_t *json = json_pack("{s:s, s:s}", "error", error, "message",
	    message);
	char *body = json ? json_dumps(json, JSON_COMPACT) : NULL;
	char head[512];
	int n;

	json_decref(json);
	rq->replied_raw = true;
	rq->status = status;
	if (body == NULL)
		return;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n"
	    "Cache-Control: no-store\r\nX-Request-Id: %s\r\n\r\n", status,
	    MHD_get_reason_phrase_for((unsigned)status), strlen(body), rq->id);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    server_write_raw(rq, head, (size_t)n) != 0 ||
	    server_write_raw(rq, body, strlen(body)) != 0)
		log_info("http.raw_reply_failed", "req=%s status=%d", rq->id,
		    status);
	free(body);
}

/* First call: a fresh request, routed. */
static struct http_request *
server_begin(struct api_server *srv, struct MHD_Connection *conn,
    const char *method, const char *url)
{
	struct http_request *rq;

	rq = calloc(1, sizeof(*rq));
	if (rq == NULL)
		return NULL;
	rq->srv = srv;
	rq->conn = conn;
	rq->method = method;
	rq->start_ns = util_mono_ns();
	server_new_id(rq->id);

	/* MHD has already split off the query string. */
	if (util_fmt(rq->path, sizeof(rq->path), "%s", url) != 0)
		rq->routed = ROUTER_NOT_FOUND;
	else
		rq->routed = router_match(http_routes, http_nroutes, method,
		    rq->path, &rq->match, rq->allow, sizeof(rq->allow));
	return rq;
}

/* Middle calls: gather the body up to the route's bound. */
static void
server_body(struct http_request *rq, const char *data, size_t len)
{
	size_t max = HTTP_JSON_BODY_MAX;
	char *grown;

	if (rq->match.route != NULL && rq->match.route->max_body > 0)
		max = rq->match.route->max_body;
	if (rq->body_too_large || rq->body_len + len > max) {
		if (!rq->body_too_large)
			http_reply_midbody(rq, 413, "Payload too large",
			    "The request body is over the limit of this "
			    "endpoint");
		rq->body_too_large = true;
		rq->discarded += len;
		return;
	}
	grown = realloc(rq->body, rq->body_len + len + 1);
	if (grown == NULL) {
		rq->body_too_large = true;
		return;
	}
	rq->body = grown;
	memcpy(rq->body + rq->body_len, data, len);
	rq->body_len += len;
	rq->body[rq->body_len] = '\0';
}

/* Refusals that need no body: unknown route, wrong method. */
static int
server_refuse_route(struct http_request *rq)
{
	if (rq->routed == ROUTER_NOT_FOUND) {
		http_reply_error(rq, 404, "Not found",
		    "No API endpoint at %s; see docs/api.md", rq->path);
		return -1;
	}
	if (rq->routed == ROUTER_BAD_METHOD) {
		http_reply_error(rq, 405, "Method not allowed",
		    "%s is not allowed here; allowed: %s", rq->method,
		    rq->allow);
		return -1;
	}
	return 0;
}

/* Authentication and authorization as the route asks; 0 to go on. */
static int
server_authorize(struct http_request *rq)
{
	const struct router_route *route = rq->match.route;

	if ((route->flags & (HTTP_USER | HTTP_TENANT)) && authz_user(rq) != 0)
		return -1;
	if ((route->flags & HTTP_TENANT) &&
	    authz_tenant(rq, http_param(rq, 0), route->roles) != 0)
		return -1;
	return 0;
}

/* Last call: authenticate, authorize, run the handler. */
static void
server_dispatch(struct http_request *rq)
{
	const struct router_route *route = rq->match.route;
	http_handler_fn *handler;

	if (server_refuse_route(rq) != 0)
		return;
	if (rq->body_too_large) {
		http_reply_error(rq, 413, "Payload too large",
		    "The request body must be at most %zu bytes",
		    route->max_body ? route->max_body : HTTP_JSON_BODY_MAX);
		return;
	}
	if (server_authorize(rq) != 0)
		return;

	handler = (http_handler_fn *)route->handler;
	handler(rq);
	if (rq->status == 0)
		http_reply_error(rq, 500, "Internal error",
		    "The server could not build a response");
}

static const struct http_stream_ops *
server_stream_ops(struct http_request *rq)
{
	const struct router_route *route = rq->match.route;

	if (rq->routed != ROUTER_FOUND || !(route->flags & HTTP_STREAM))
		return NULL;
	return route->handler;
}

/*
 * A streamed route, on the first call: refuse what needs no body,
 * authorize on the headers, then let the stream begin.
 */
static void
server_stream_begin(struct http_request *rq)
{
	const struct http_stream_ops *ops = server_stream_ops(rq);

	if (server_authorize(rq) != 0)
		return;
	rq->streaming = true;
	ops->begin(rq);
}

static enum MHD_Result
server_stream_access(struct http_request *rq, const char *upload_data,
    size_t *upload_data_size)
{
	const struct http_stream_ops *ops = server_stream_ops(rq);

	if (*upload_data_size > 0) {
		if (rq->replied_raw) {
			rq->discarded += *upload_data_size;
			if (rq->discarded > HTTP_DISCARD_MAX)
				return MHD_NO;
		} else if (rq->status == 0)
			ops->data(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->replied_raw)
		return MHD_NO;          /* answered on the socket: close */
	if (rq->status == 0 && !rq->broken)
		ops->end(rq);
	if (rq->status == 0 && !rq->broken)
		http_reply_error(rq, 500, "Internal error",
		    "The server could not build a response");
	return rq->broken ? MHD_NO : MHD_YES;
}

static enum MHD_Result
server_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_request *rq = *con_cls;

	if (rq == NULL) {
		rq = server_begin(cls, conn, method, url);
		if (rq == NULL)
			return MHD_NO;
		*con_cls = rq;
		if (server_stream_ops(rq) != NULL)
			server_stream_begin(rq);
		return rq->broken ? MHD_NO : MHD_YES;
	}
	if (rq->broken)
		return MHD_NO;
	if (server_stream_ops(rq) != NULL)
		return server_stream_access(rq, upload_data, upload_data_size);
	if (*upload_data_size > 0) {
		if (rq->status == 0 || rq->replied_raw)
			server_body(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		/* Too large: answered; read on (bounded), then close. */
		return rq->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	if (rq->replied_raw)
		return MHD_NO;
	if (rq->status == 0)
		server_dispatch(rq);
	return rq->broken ? MHD_NO : MHD_YES;
}

/* Every request ends here: one log line, metrics, memory back. */
static void
server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_request *rq = *con_cls;
	const char *route;
	char qpath[256];
	double secs;

	if (rq == NULL)
		return;
	secs = (double)(util_mono_ns() - rq->start_ns) / 1e9;
	route = rq->match.route ? rq->match.route->pattern : "unmatched";
	metrics_observe(route, rq->method, rq->status, secs);
	log_info("http.request", "req=%s method=%s path=%s route=%s "
	    "status=%d dur_ms=%.2f user=%s tenant=%s%s", rq->id, rq->method,
	    log_q(qpath, sizeof(qpath), rq->path), route, rq->status,
	    secs * 1e3, rq->user.id[0] ? rq->user.id : "-",
	    rq->tenant.slug[0] ? rq->tenant.slug : "-",
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
	    " aborted=true");
	if (rq->streaming)
		server_stream_ops(rq)->cleanup(rq);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], q[600];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warnx("http.mhd", "msg=%s", log_q(q, sizeof(q), msg));
}

static int
server_sockaddr(const char *listen, struct sockaddr_storage *ss,
    bool *v6)
{
	char host[256];
	uint16_t port;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (config_parse_listen(listen, host, sizeof(host), &port) != 0)
		return -1;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*v6 = true;
		return 0;
	}
	return -1;
}

struct api_server *
api_start(const struct api_deps *deps, char *err, size_t errlen)
{
	const struct config *cfg = deps->cfg;
	struct sockaddr_storage ss;
	struct api_server *srv;
	const union MHD_DaemonInfo *info;
	/*
	 * poll(2), not epoll: under load libmicrohttpd 0.9.75's epoll mode
	 * can lose a wakeup and stall every connection (docs/edge.md).
	 * The API's traffic is light; level-triggered poll is safe.
	 */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	bool v6;

	if (server_sockaddr(cfg->listen, &ss, &v6) != 0) {
		snprintf(err, errlen, "WHARF_LISTEN=%s: host must be an IP "
		    "address or localhost", cfg->listen);
		return NULL;
	}
	if (v6)
		flags |= MHD_USE_IPv6;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->store = deps->store;
	srv->blob = deps->blob;
	srv->queue = deps->queue;
	srv->deploy = deps->deploy;

	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL,
	    server_access, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEM,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s (WHARF_LISTEN): "
		    "%s", cfg->listen, errno ? strerror(errno) :
		    "address in use or not available");
		free(srv);
		return NULL;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : 0;
	return srv;
}

uint16_t
api_port(const struct api_server *srv)
{
	return srv->port;
}

void
api_stop(struct api_server *srv)
{
	if (srv == NULL)
		return;
	MHD_stop_daemon(srv->mhd);
	free(srv);
}
