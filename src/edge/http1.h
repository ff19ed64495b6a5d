/*
 * http1: the edge's HTTP/1.1 server core.  It owns the sockets and the
 * event loop; what to answer is the handler's business.
 *
 * N loop threads, each with its own epoll instance and its own
 * listening socket bound to the same address with SO_REUSEPORT, so the
 * kernel spreads new connections over the threads and no accept queue
 * is shared.  A connection lives on one thread for its whole life.
 * Sockets are non-blocking and registered level-triggered for the one
 * event the connection waits for (EPOLLIN for a request, EPOLLOUT for
 * the rest of a response); docs/edge.md says why.
 *
 * Per connection: a read buffer of EDGE_HEAD_MAX bytes that must hold
 * the whole request head (request line and headers; 414 or 431 past
 * it), keep-alive by HTTP/1.0 and 1.1 rules, pipelined requests
 * answered in order (the next one is parsed from the buffer once the
 * previous response is fully written), an idle timeout, and a cap on
 * connections per thread past which a new connection gets a 503 and is
 * closed.  Request bodies are refused: Content-Length > 0 or any
 * Transfer-Encoding is answered 413 and the connection closed.
 *
 * Errors: edge_server_start() returns NULL with a message in err; the
 * response functions return 0 or a negative errno.
 */
#ifndef WHARF_EDGE_HTTP1_H
#define WHARF_EDGE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EDGE_HEAD_MAX           8192    /* request line + headers */
#define EDGE_HEADERS_MAX        64      /* header fields per request */
#define EDGE_RESP_HEADERS_MAX   4096    /* handler's header bytes */
#define EDGE_THREADS_MAX        64
#define EDGE_CONNS_DEFAULT      4096    /* per thread */
#define EDGE_IDLE_TIMEOUT_MS    30000
#define EDGE_LINGER_MS          2000    /* draining before a close */
#define EDGE_BACKLOG            4096
#define EDGE_ACCEPT_BATCH       64      /* accepts per wakeup */
#define EDGE_SENDFILE_CHUNK     (1 << 20) /* bytes per sendfile call */

/* One header field of a request, NUL-terminated, value trimmed. */
struct edge_header {
	const char *name;
	const char *value;
};

/*
 * A parsed request, read-only for the handler and valid only during
 * the handler's call: every string points into the connection's read
 * buffer.
 */
struct edge_request {
	const char         *method;     /* "GET", "HEAD", ... as sent */
	const char         *path;       /* raw target before '?', never */
	                                /* decoded; "*" for OPTIONS * */
	const char         *query;      /* after '?', or NULL */
	const char         *host;       /* Host (or absolute-form */
	                                /* authority), or NULL */
	int                 minor;      /* HTTP/1.<minor>: 0 or 1 */
	bool                head;       /* method is HEAD */
	size_t              nheaders;
	struct edge_header  headers[EDGE_HEADERS_MAX];
};

/*
 * The value of the first header field called name (any case), or NULL.
 * A linear scan: requests hold few fields.
 */
const char *edge_request_header(const struct edge_request *req,
    const char *name);

/* What the request parser learns besides struct edge_request. */
struct edge_head_info {
	bool      has_body;             /* Content-Length > 0, or */
	                                /* Transfer-Encoding */
	bool      conn_close;           /* Connection: close */
	bool      conn_keep_alive;      /* Connection: keep-alive */
	bool      has_length;
	uint64_t  length;               /* Content-Length */
};

/*
 * Where the request head that starts at in[*off] ends (the index past
 * its empty line), or 0 while in[0..len) holds no whole head.  Empty
 * lines before a request line are skipped (*off moves past them).
 * Lines end in LF, optionally after a CR.  *scan is where the search
 * resumes when more bytes arrive: start it at *off and keep it between
 * calls on the same buffer, so that each byte is looked at once.
 */
size_t edge_head_find(const char *in, size_t len, size_t *off,
    size_t *scan);

/*
 * Parses a request head in place: the request line, the header lines
 * and the empty line that ends them, len bytes in all (as
 * edge_head_find found them).  Fills req, whose strings then point
 * into head, and info.  Returns 0, or the status to answer: 400 (malformed, a NUL anywhere,
 * no Host in HTTP/1.1, two Hosts, Content-Lengths that differ), 413 (a
 * request with a body: the edge takes none), 431 (more than
 * EDGE_HEADERS_MAX fields) or 505 (not HTTP/1.x).  The connection loop
 * is the caller of both; they are public for the fuzz target
 * (fuzz/fuzz_http1.c).
 */
int edge_parse_head(char *head, size_t len, struct edge_request *req,
    struct edge_head_info *info);

/* The handler's answer; opaque, filled through the functions below. */
struct edge_response;

/*
 * Called once the server is done with a body (sent, not needed, or the
 * connection died), exactly once per body handed over.  Runs on the
 * connection's loop thread.
 */
typedef void edge_release_fn(void *arg);

/*
 * Answers one request.  Runs on the connection's loop thread, so it
 * must not block: every connection of that thread waits for it.  It
 * sets a status (200-599; anything else, or none, becomes 500), may
 * add headers and set one body.  The server adds Date, Content-Length
 * and, when needed, Connection.  For HEAD, 204 and 304 no body is sent
 * (HEAD still gets the body's Content-Length).  resp is valid only
 * during the call.
 */
typedef void edge_handler_fn(void *ctx, const struct edge_request *req,
    struct edge_response *resp);

void edge_response_status(struct edge_response *resp, int status);

/*
 * Appends "name: value" (both copied).  -EINVAL for a name that is
 * not a token, a value with a control character other than tab (CR and
 * LF included), or a header the server owns (Date, Content-Length,
 * Connection, Transfer-Encoding, Keep-Alive).  -ENOSPC
 * when EDGE_RESP_HEADERS_MAX would be passed: the response then becomes
 * a bare 500, so that it is never sent with part of its headers.
 */
int edge_response_header(struct edge_response *resp, const char *name,
    const char *value);

/*
 * The body is len bytes at data, borrowed until release(arg) is called
 * (release may be NULL).  A body set earlier is released at once.
 */
void edge_response_body_mem(struct edge_response *resp, const void *data,
    size_t len, edge_release_fn *release, void *arg);

/*
 * The body is len bytes of fd from offset, sent with sendfile(2).  The
 * server never closes fd; release(arg) does, if it should.  A file
 * shorter than offset + len ends the connection mid-body.
 */
void edge_response_body_file(struct edge_response *resp, int fd,
    off_t offset, size_t len, edge_release_fn *release, void *arg);

/* Closes the connection once this response is sent. */
void edge_response_close(struct edge_response *resp);

struct edge_opts {
	int threads;            /* 1..EDGE_THREADS_MAX; 0: one per CPU */
	int max_conns;          /* per thread; 0: EDGE_CONNS_DEFAULT */
	int idle_timeout_ms;    /* 0: EDGE_IDLE_TIMEOUT_MS */
};

struct edge_server;

/*
 * Binds listen ("host:port", "[v6]:port"; port 0 picks a free port
 * shared by every thread) and starts the loop threads.  handler and
 * ctx are borrowed until edge_server_stop() returns.  NULL on failure,
 * with a message in err.  Loop threads block every signal.
 */
struct edge_server *edge_server_start(const char *listen, int threads,
    edge_handler_fn *handler, void *ctx, char *err, size_t errlen);

/* As edge_server_start(), with every tunable; opts may be NULL. */
struct edge_server *edge_server_start_opts(const char *listen,
    const struct edge_opts *opts, edge_handler_fn *handler, void *ctx,
    char *err, size_t errlen);

/* The bound port (the chosen one when listen asked for port 0). */
uint16_t edge_server_port(const struct edge_server *srv);

/* Number of loop threads. */
int edge_server_threads(const struct edge_server *srv);

/*
 * Stops accepting, closes every connection (releasing their bodies on
 * their loop threads), joins the threads and frees srv.  Does not wait
 * for responses in flight.  Never from a handler: it joins the thread
 * the handler runs on.  srv may be NULL.
 */
void edge_server_stop(struct edge_server *srv);

/* Counters since start; each loop thread keeps its own. */
struct edge_stats {
	uint64_t requests;      /* responses started, errors included */
	uint64_t bytes_out;     /* bytes written to sockets */
	uint64_t conns_accepted;
	uint64_t conns_refused; /* over the cap: 503 and closed */
	uint64_t conns_open;    /* now */
	uint64_t conns_handed;  /* accepted, then given to a less busy thread */
	uint64_t status_4xx;
	uint64_t status_5xx;
};

/*
 * Counters of loop thread i (0 <= i < edge_server_threads()), or their
 * sum over every thread when i is -1.  Safe from any thread; the
 * values of different counters are not one atomic snapshot.
 */
void edge_server_stats(const struct edge_server *srv, int i,
    struct edge_stats *out);

#endif
