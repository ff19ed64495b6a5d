/*
 * test_http1: the edge's HTTP/1.1 core over raw loopback sockets.  One
 * server (two loop threads, 127.0.0.1, a free port) answers most
 * tests through test_handler; the tests of timeouts, the connection
 * cap and stopping start servers of their own.
 *
 * Every client socket has a receive timeout, so a server that stalls
 * fails a test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "edge/http1.h"

#define TEST_FILE_LEN           (300 * 1024)    /* > a socket buffer */
#define TEST_BIG_FILE_LEN       (16 * 1024 * 1024)
#define TEST_RECV_TIMEOUT_S     5
#define TEST_BUF                (TEST_BIG_FILE_LEN + 65536)
#define TEST_SEQUENTIAL         1000
#define TEST_CLIENTS            16
#define TEST_CLIENT_REQUESTS    50
#define TEST_WAIT_MS            5000

static const char test_mem_body[] = "hello world";

/* Shared with the handler, which runs on the server's threads. */
struct test_env {
	struct edge_server *srv;
	uint16_t            port;
	char                path[64];
	int                 file_fd;
	int                 big_fd;
	char               *file_data;
	atomic_int          mem_released;
	atomic_int          file_released;
	atomic_int          big_released;
};

static struct test_env test_env;

/* One client connection with its own receive buffer. */
struct test_conn {
	int     fd;
	char   *buf;
	size_t  len;
};

struct test_resp {
	int     status;
	char    head[8192];
	char   *body;
	size_t  body_len;
	long    content_length;
};

/* Handler */

static void
test_release_count(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void
test_release_free(void *arg)
{
	free(arg);
}

/* Body: what the server parsed, for the tests to check. */
static void
test_echo(const struct edge_request *req, struct edge_response *resp)
{
	const char *x = edge_request_header(req, "x-TEST");
	char *body = malloc(1024);
	int n;

	n = snprintf(body, 1024, "%s|%s|%s|%s|%s|%d|%d", req->method,
	    req->path, req->query ? req->query : "(null)",
	    req->host ? req->host : "(null)", x ? x : "(null)", req->minor,
	    (int)req->nheaders);
	edge_response_status(resp, 200);
	edge_response_body_mem(resp, body, (size_t)n, test_release_free,
	    body);
}

/* Body: the return codes of edge_response_header for bad input. */
static void
test_hdrcheck(struct edge_response *resp)
{
	char *body = malloc(256);
	int n;

	/* Each name the server owns, in any case; then names of their
	 * lengths that it does not own; then every punctuation a token
	 * allows, and two it does not. */
	n = snprintf(body, 256, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d",
	    edge_response_header(resp, "Content-Length", "5"),
	    edge_response_header(resp, "connection", "close"),
	    edge_response_header(resp, "DATE", "x"),
	    edge_response_header(resp, "transfer-encoding", "chunked"),
	    edge_response_header(resp, "Keep-alive", "1"),
	    edge_response_header(resp, "Bad Name", "x"),
	    edge_response_header(resp, "X-Split", "a\r\nX-Evil: 1"),
	    edge_response_header(resp, "", "x"),
	    edge_response_header(resp, "X-Ok", "fine"),
	    edge_response_header(resp, "Dates", "x"),
	    edge_response_header(resp, "Connectio", "x"),
	    edge_response_header(resp, "X!#$%&'*+-.^_`|~9z", "x"),
	    edge_response_header(resp, "X(", "x"),
	    edge_response_header(resp, "X@", "x"));
	edge_response_status(resp, 200);
	edge_response_body_mem(resp, body, (size_t)n, test_release_free,
	    body);
}

static void
test_overflow(struct edge_response *resp)
{
	char value[1000];

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	edge_response_status(resp, 200);
	while (edge_response_header(resp, "X-Filler", value) == 0)
		;
	edge_response_body_mem(resp, test_mem_body, 11, test_release_count,
	    &test_env.mem_released);
}

static void
test_handler(void *ctx, const struct edge_request *req,
    struct edge_response *resp)
{
	struct test_env *env = ctx;

	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0) {
		edge_response_status(resp, 405);
		edge_response_header(resp, "Allow", "GET, HEAD");
	} else if (strcmp(req->path, "/mem") == 0) {
		edge_response_status(resp, 200);
		edge_response_header(resp, "Content-Type", "text/plain");
		edge_response_body_mem(resp, test_mem_body, 11,
		    test_release_count, &env->mem_released);
	} else if (strcmp(req->path, "/file") == 0) {
		edge_response_status(resp, 200);
		edge_response_body_file(resp, env->file_fd, 0, TEST_FILE_LEN,
		    test_release_count, &env->file_released);
	} else if (strcmp(req->path, "/big") == 0) {
		edge_response_status(resp, 200);
		edge_response_body_file(resp, env->big_fd, 0,
		    TEST_BIG_FILE_LEN, test_release_count, &env->big_released);
	} else if (strcmp(req->path, "/short") == 0) {
		/* Claims more than the file holds. */
		edge_response_status(resp, 200);
		edge_response_body_file(resp, env->file_fd, 0,
		    TEST_FILE_LEN + 100, test_release_count,
		    &env->file_released);
	} else if (strcmp(req->path, "/notmod") == 0) {
		edge_response_status(resp, 304);
		edge_response_body_mem(resp, test_mem_body, 11,
		    test_release_count, &env->mem_released);
	} else if (strcmp(req->path, "/close") == 0) {
		edge_response_status(resp, 200);
		edge_response_close(resp);
	} else if (strcmp(req->path, "/hdrcheck") == 0) {
		test_hdrcheck(resp);
	} else if (strcmp(req->path, "/overflow") == 0) {
		test_overflow(resp);
	} else if (strcmp(req->path, "/nostatus") == 0) {
		return;
	} else {
		test_echo(req, resp);
	}
}

/* Client helpers */

static int64_t
test_now_ms(void)
{
	return util_mono_ns() / 1000000;
}

static void
test_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int
test_connect_fd(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	struct timeval tv = { TEST_RECV_TIMEOUT_S, 0 };
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	return fd;
}

static void
test_open(struct test_conn *c, uint16_t port)
{
	c->fd = test_connect_fd(port);
	c->buf = malloc(TEST_BUF);
	assert_non_null(c->buf);
	c->len = 0;
}

static void
test_close(struct test_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static void
test_send_raw(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

static void
test_send(struct test_conn *c, const char *s)
{
	test_send_raw(c->fd, s, strlen(s));
}

/* Reads more into c->buf; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t
test_fill(struct test_conn *c)
{
	ssize_t n;

	assert_true(c->len < TEST_BUF);
	n = recv(c->fd, c->buf + c->len, TEST_BUF - c->len, 0);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

static void
test_consume(struct test_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/*
 * Reads one response.  head_only: the request was HEAD (a
 * Content-Length but no body follows).  Returns 0, or -1 when the
 * connection ended before a whole response.
 */
static int
test_read(struct test_conn *c, struct test_resp *r, bool head_only)
{
	char *end, *cl;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (test_fill(c) <= 0)
			return -1;
	hlen = (size_t)(end + 4 - c->buf);
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = '\0';
	test_consume(c, hlen);
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);

	cl = strcasestr(r->head, "\r\nContent-Length: ");
	if (cl != NULL)
		r->content_length = strtol(cl + 18, NULL, 10);
	r->body_len = head_only || cl == NULL ? 0 :
	    (size_t)r->content_length;
	while (c->len < r->body_len)
		if (test_fill(c) <= 0)
			return -1;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, c->buf, r->body_len);
	r->body[r->body_len] = '\0';
	test_consume(c, r->body_len);
	return 0;
}

static void
test_resp_free(struct test_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The server closed: EOF (or a reset) with nothing more to read. */
static void
test_expect_eof(struct test_conn *c)
{
	ssize_t n = test_fill(c);

	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* One request on a new connection; returns the status. */
static int
test_request(const char *req, struct test_resp *r)
{
	struct test_conn c;
	int rc;

	test_open(&c, test_env.port);
	test_send(&c, req);
	rc = test_read(&c, r, false);
	test_close(&c);
	assert_int_equal(rc, 0);
	return r->status;
}

static void
test_wait_count(atomic_int *counter, int want)
{
	int64_t until = test_now_ms() + TEST_WAIT_MS;

	while (atomic_load(counter) != want && test_now_ms() < until)
		test_sleep_ms(1);
	assert_int_equal(atomic_load(counter), want);
}

static void
test_wait_open(struct edge_server *srv, uint64_t want)
{
	int64_t until = test_now_ms() + TEST_WAIT_MS;
	struct edge_stats st;

	do {
		edge_server_stats(srv, -1, &st);
		if (st.conns_open == want)
			return;
		test_sleep_ms(2);
	} while (test_now_ms() < until);
	assert_int_equal(st.conns_open, want);
}

/* The Date header is an IMF-fixdate within a second or two of now. */
static void
test_check_date(const char *head)
{
	const char *date = strstr(head, "\r\nDate: ");
	struct tm tm = { 0 };
	const char *end;
	time_t when;

	assert_non_null(date);
	end = strptime(date + 8, "%a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	assert_non_null(end);
	assert_int_equal(end - date, 8 + 29 + 2);
	when = timegm(&tm);
	assert_true(labs((long)(when - time(NULL))) <= 2);
}

/* Setup and teardown */

/* The bytes of the test files, from offset off. */
static void
test_pattern(char *out, size_t off, size_t len)
{
	for (size_t i = off; i < off + len; i++)
		out[i - off] = (char)('a' + (i * 7 + i / 4096) % 26);
}

static int
test_make_file(char *path, size_t pathlen, size_t len, char **data)
{
	char *bytes = malloc(len);
	int fd;

	snprintf(path, pathlen, "/tmp/wharf-http1-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || bytes == NULL)
		return -1;
	unlink(path);
	test_pattern(bytes, 0, len);
	if (write(fd, bytes, len) != (ssize_t)len)
		return -1;
	if (data != NULL)
		*data = bytes;
	else
		free(bytes);
	return fd;
}

static int
test_setup(void **state)
{
	char err[256], path[64];

	test_env.file_fd = test_make_file(test_env.path,
	    sizeof(test_env.path), TEST_FILE_LEN, &test_env.file_data);
	test_env.big_fd = test_make_file(path, sizeof(path),
	    TEST_BIG_FILE_LEN, NULL);
	if (test_env.file_fd < 0 || test_env.big_fd < 0)
		return -1;
	test_env.srv = edge_server_start("127.0.0.1:0", 2, test_handler,
	    &test_env, err, sizeof(err));
	if (test_env.srv == NULL) {
		fprintf(stderr, "edge_server_start: %s\n", err);
		return -1;
	}
	test_env.port = edge_server_port(test_env.srv);
	*state = &test_env;
	return test_env.port != 0 ? 0 : -1;
}

static int
test_teardown(void **state)
{
	edge_server_stop(test_env.srv);
	close(test_env.file_fd);
	close(test_env.big_fd);
	free(test_env.file_data);
	return 0;
}

/* Tests */

static void
test_get_mem(void **state)
{
	struct test_resp r;
	int before = atomic_load(&test_env.mem_released);

	assert_int_equal(test_request("GET /mem HTTP/1.1\r\nHost: a\r\n\r\n",
	    &r), 200);
	assert_int_equal(r.content_length, 11);
	assert_string_equal(r.body, "hello world");
	assert_non_null(strstr(r.head, "\r\nContent-Type: text/plain\r\n"));
	test_check_date(r.head);
	assert_null(strcasestr(r.head, "Connection:"));
	test_resp_free(&r);
	test_wait_count(&test_env.mem_released, before + 1);
}

static void
test_head(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send(&c, "HEAD /mem HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, true), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.content_length, 11);
	test_resp_free(&r);

	/* No body bytes came: the next response starts right here. */
	test_send(&c, "HEAD /file HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, true), 0);
	assert_int_equal(r.content_length, TEST_FILE_LEN);
	test_resp_free(&r);
	test_send(&c, "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "hello world");
	assert_int_equal(c.len, 0);
	test_resp_free(&r);
	test_close(&c);
}

static void
test_file(void **state)
{
	struct test_conn c;
	struct test_resp r;
	int before = atomic_load(&test_env.file_released);

	assert_int_equal(test_request("GET /file HTTP/1.1\r\nHost: a\r\n\r\n",
	    &r), 200);
	assert_int_equal(r.body_len, TEST_FILE_LEN);
	assert_memory_equal(r.body, test_env.file_data, TEST_FILE_LEN);
	test_resp_free(&r);
	test_wait_count(&test_env.file_released, before + 1);

	/* HEAD releases the file too, once. */
	test_open(&c, test_env.port);
	test_send(&c, "HEAD /file HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, true), 0);
	assert_int_equal(r.content_length, TEST_FILE_LEN);
	test_resp_free(&r);
	test_close(&c);
	test_wait_count(&test_env.file_released, before + 2);
	test_sleep_ms(50);
	assert_int_equal(atomic_load(&test_env.file_released), before + 2);
}

static void
test_file_short(void **state)
{
	struct test_conn c;
	struct test_resp r;
	int before = atomic_load(&test_env.file_released);

	/* The server cannot keep its promise: it ends the connection. */
	test_open(&c, test_env.port);
	test_send(&c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), -1);
	test_close(&c);
	test_wait_count(&test_env.file_released, before + 1);
}

static void
test_keep_alive(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	for (int i = 0; i < 3; i++) {
		test_send(&c, "GET /echo?n HTTP/1.1\r\nHost: h\r\n\r\n");
		assert_int_equal(test_read(&c, &r, false), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body, "GET|/echo|n|h|(null)|1|1");
		test_resp_free(&r);
	}
	test_close(&c);
}

static void
test_pipelining(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send(&c, "GET /a?1 HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /file HTTP/1.1\r\nHost: h\r\n\r\n"
	    "HEAD /mem HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /b?2 HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "GET|/a|1|h|(null)|1|1");
	test_resp_free(&r);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.body_len, TEST_FILE_LEN);
	assert_memory_equal(r.body, test_env.file_data, TEST_FILE_LEN);
	test_resp_free(&r);
	assert_int_equal(test_read(&c, &r, true), 0);
	assert_int_equal(r.content_length, 11);
	test_resp_free(&r);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "GET|/b|2|h|(null)|1|1");
	test_resp_free(&r);
	assert_int_equal(c.len, 0);
	test_close(&c);
}

/*
 * A response larger than the socket buffers, to a client that reads
 * late: the server waits for EPOLLOUT, and the request pipelined
 * behind it, already in the server's buffer, is still answered.
 */
static void
test_slow_reader(void **state)
{
	struct test_conn c;
	struct test_resp r;
	int before = atomic_load(&test_env.big_released);
	char expect[4096];

	test_open(&c, test_env.port);
	test_send(&c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /mem HTTP/1.1\r\nHost: h\r\n\r\n");
	test_sleep_ms(200);
	assert_int_equal(atomic_load(&test_env.big_released), before);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.body_len, TEST_BIG_FILE_LEN);
	for (size_t off = 0; off < TEST_BIG_FILE_LEN; off += 4096) {
		test_pattern(expect, off, sizeof(expect));
		assert_memory_equal(r.body + off, expect, sizeof(expect));
	}
	test_resp_free(&r);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "hello world");
	test_resp_free(&r);
	test_close(&c);
	test_wait_count(&test_env.big_released, before + 1);
}

/* Many small requests in one write, more than one read's worth. */
static void
test_pipelining_many(void **state)
{
	static const char one[] = "GET /p HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t n = 1000, len = strlen(one);
	char *all = malloc(n * len);
	struct test_conn c;
	struct test_resp r;

	for (size_t i = 0; i < n; i++)
		memcpy(all + i * len, one, len);
	test_open(&c, test_env.port);
	test_send_raw(c.fd, all, n * len);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(test_read(&c, &r, false), 0);
		assert_string_equal(r.body, "GET|/p|(null)|h|(null)|1|1");
		test_resp_free(&r);
	}
	test_close(&c);
	free(all);
}

static void
test_http10(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send(&c, "GET /mem HTTP/1.0\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);

	/* Keep-alive asked for: kept, and said so. */
	test_open(&c, test_env.port);
	for (int i = 0; i < 2; i++) {
		test_send(&c, "GET /x HTTP/1.0\r\n"
		    "Connection: Keep-Alive\r\n\r\n");
		assert_int_equal(test_read(&c, &r, false), 0);
		assert_non_null(strstr(r.head,
		    "\r\nConnection: keep-alive\r\n"));
		assert_string_equal(r.body, "GET|/x|(null)|(null)|(null)|0|1");
		test_resp_free(&r);
	}
	test_close(&c);
}

static void
test_connection_close(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send(&c, "GET /mem HTTP/1.1\r\nHost: a\r\n"
	    "Connection: foo, close\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);

	/* The handler can ask for it too. */
	test_open(&c, test_env.port);
	test_send(&c, "GET /close HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.content_length, 0);
	assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);
}

static void
test_expect_error(const char *req, size_t len, int status)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send_raw(c.fd, req, len);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.status, status);
	assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);
}

static void
test_too_large(void **state)
{
	char *req = malloc(20000);
	int n;

	/* One header past the limit. */
	n = snprintf(req, 20000, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
	memset(req + n, 'b', 9000);
	memcpy(req + n + 9000, "\r\n\r\n", 4);
	test_expect_error(req, (size_t)n + 9004, 431);

	/* A request line past the limit. */
	memcpy(req, "GET /", 5);
	memset(req + 5, 'p', 9000);
	test_expect_error(req, 9005, 414);

	/* Too many fields, each small. */
	n = snprintf(req, 20000, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < EDGE_HEADERS_MAX + 1; i++)
		n += snprintf(req + n, 20000 - (size_t)n, "X-%d: v\r\n", i);
	n += snprintf(req + n, 20000 - (size_t)n, "\r\n");
	test_expect_error(req, (size_t)n, 431);
	free(req);
}

static void
test_body_refused(void **state)
{
	static const char cl[] = "POST /up HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\nhello";
	static const char te[] = "POST /up HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	struct test_resp r;

	test_expect_error(cl, sizeof(cl) - 1, 413);
	test_expect_error(te, sizeof(te) - 1, 413);

	/* No body: the handler decides. */
	assert_int_equal(test_request("POST /up HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 0\r\n\r\n", &r), 405);
	assert_non_null(strstr(r.head, "\r\nAllow: GET, HEAD\r\n"));
	test_resp_free(&r);
}

static void
test_malformed(void **state)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
		{ "GARBAGE\r\n\r\n", 400 },
		{ "GET /\r\n\r\n", 400 },
		{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\n\r\n", 400 },              /* no Host */
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
		    400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
		    "Content-Length: 1\r\n\r\n", 400 },
		{ "GET relative HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505 },
		{ "GET / http/1.1\r\nHost: a\r\n\r\n", 400 },
	};
	static const char nul[] = "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_expect_error(cases[i].req, strlen(cases[i].req),
		    cases[i].status);
	test_expect_error(nul, sizeof(nul) - 1, 400);
}

static void
test_parsing(void **state)
{
	struct test_resp r;

	/* Header lookup ignores case; values are trimmed. */
	test_request("GET /e?x=1&y HTTP/1.1\r\nhost: Example.COM:81\r\n"
	    "X-Test: \t spaced out \t\r\n\r\n", &r);
	assert_string_equal(r.body,
	    "GET|/e|x=1&y|Example.COM:81|spaced out|1|2");
	test_resp_free(&r);

	/* Absolute form: its authority is the host. */
	test_request("GET http://site.test/p/q?z HTTP/1.1\r\nHost: other\r\n"
	    "\r\n", &r);
	assert_string_equal(r.body, "GET|/p/q|z|site.test|(null)|1|1");
	test_resp_free(&r);
	test_request("GET HTTPS://site.test?z HTTP/1.1\r\nHost: o\r\n\r\n",
	    &r);
	assert_string_equal(r.body, "GET|/|z|site.test|(null)|1|1");
	test_resp_free(&r);

	/* Empty lines before the request, bare LF line ends. */
	test_request("\r\n\r\nGET /lf HTTP/1.1\nHost: h\nX-Test: 1\n\n", &r);
	assert_string_equal(r.body, "GET|/lf|(null)|h|1|1|2");
	test_resp_free(&r);

	/* A raw target is passed as sent, never decoded. */
	test_request("GET /a%2e%2e/../b?c=%20 HTTP/1.1\r\nHost: h\r\n\r\n",
	    &r);
	assert_string_equal(r.body, "GET|/a%2e%2e/../b|c=%20|h|(null)|1|1");
	test_resp_free(&r);

	/* HTTP/1.2 is served as 1.1. */
	test_request("OPTIONS * HTTP/1.2\r\nHost: h\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	test_resp_free(&r);
}

static void
test_response_rules(void **state)
{
	struct test_resp r;
	int before = atomic_load(&test_env.mem_released);

	test_request("GET /hdrcheck HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	assert_string_equal(r.body,
	    "-22 -22 -22 -22 -22 -22 -22 -22 0 0 0 0 -22 -22");
	assert_non_null(strstr(r.head, "\r\nX-Ok: fine\r\n"));
	assert_null(strstr(r.head, "X-Evil"));
	test_resp_free(&r);

	/* 304: neither body nor Content-Length; the body is released. */
	test_request("GET /notmod HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	assert_int_equal(r.status, 304);
	assert_int_equal(r.content_length, -1);
	test_resp_free(&r);
	test_wait_count(&test_env.mem_released, before + 1);

	/* Headers past the limit: a bare 500, never half the headers. */
	test_request("GET /overflow HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	assert_int_equal(r.status, 500);
	assert_null(strstr(r.head, "X-Filler"));
	assert_int_equal(r.content_length, 0);
	test_resp_free(&r);
	test_wait_count(&test_env.mem_released, before + 2);

	/* No status set: 500. */
	test_request("GET /nostatus HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	assert_int_equal(r.status, 500);
	test_resp_free(&r);
}

static void
test_half_request(void **state)
{
	int before = atomic_load(&test_env.big_released);
	struct test_resp r;

	/* Earlier tests' connections are gone once their EOF is read. */
	test_wait_open(test_env.srv, 0);
	for (int i = 0; i < 20; i++) {
		int fd = test_connect_fd(test_env.port);

		test_send_raw(fd, "GET /mem HTTP/1.1\r\nHo", 21);
		close(fd);
	}
	/* Reset in the middle of a response, too. */
	for (int i = 0; i < 5; i++) {
		struct linger lg = { 1, 0 };
		int fd = test_connect_fd(test_env.port);

		test_send_raw(fd, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", 31);
		test_sleep_ms(5);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	test_wait_open(test_env.srv, 0);
	test_wait_count(&test_env.big_released, before + 5);
	assert_int_equal(test_request("GET /mem HTTP/1.1\r\nHost: a\r\n\r\n",
	    &r), 200);
	test_resp_free(&r);
}

/* A client that sends its request and shuts its side is answered. */
static void
test_half_close(void **state)
{
	struct test_conn c;
	struct test_resp r;

	test_open(&c, test_env.port);
	test_send(&c, "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /q?2 HTTP/1.1\r\nHost: a\r\n\r\n");
	shutdown(c.fd, SHUT_WR);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "hello world");
	test_resp_free(&r);
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_string_equal(r.body, "GET|/q|2|a|(null)|1|1");
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);
}

static void
test_sequential(void **state)
{
	struct edge_stats before, after;

	edge_server_stats(test_env.srv, -1, &before);
	for (int i = 0; i < TEST_SEQUENTIAL; i++) {
		struct test_resp r;

		assert_int_equal(test_request("GET /mem HTTP/1.1\r\n"
		    "Host: a\r\n\r\n", &r), 200);
		assert_string_equal(r.body, "hello world");
		test_resp_free(&r);
	}
	edge_server_stats(test_env.srv, -1, &after);
	assert_true(after.conns_accepted - before.conns_accepted >=
	    TEST_SEQUENTIAL);
	assert_true(after.requests - before.requests >= TEST_SEQUENTIAL);
}

static void *
test_client_main(void *arg)
{
	int *failures = arg;
	struct test_conn c;

	test_open(&c, test_env.port);
	for (int i = 0; i < TEST_CLIENT_REQUESTS; i++) {
		struct test_resp r;
		const char *req = i % 10 == 9 ?
		    "GET /file HTTP/1.1\r\nHost: a\r\n\r\n" :
		    "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n";

		test_send(&c, req);
		if (test_read(&c, &r, false) != 0 || r.status != 200)
			(*failures)++;
		test_resp_free(&r);
	}
	test_close(&c);
	return NULL;
}

static void
test_concurrent(void **state)
{
	pthread_t tids[TEST_CLIENTS];
	int failures[TEST_CLIENTS] = { 0 };

	for (int i = 0; i < TEST_CLIENTS; i++)
		assert_int_equal(pthread_create(&tids[i], NULL,
		    test_client_main, &failures[i]), 0);
	for (int i = 0; i < TEST_CLIENTS; i++) {
		pthread_join(tids[i], NULL);
		assert_int_equal(failures[i], 0);
	}
}

static void
test_stats(void **state)
{
	struct edge_stats all, one;
	uint64_t sum = 0;

	edge_server_stats(test_env.srv, -1, &all);
	assert_true(all.requests > 0);
	assert_true(all.bytes_out > 0);
	assert_true(all.status_4xx > 0);
	assert_true(all.status_5xx > 0);
	assert_int_equal(edge_server_threads(test_env.srv), 2);
	for (int i = 0; i < edge_server_threads(test_env.srv); i++) {
		edge_server_stats(test_env.srv, i, &one);
		sum += one.conns_accepted;
	}
	edge_server_stats(test_env.srv, -1, &all);
	assert_true(sum <= all.conns_accepted);
	assert_true(sum > 0);
}

/* Servers of their own */

static struct edge_server *
test_start(const struct edge_opts *opts)
{
	struct edge_server *srv;
	char err[256];

	srv = edge_server_start_opts("127.0.0.1:0", opts, test_handler,
	    &test_env, err, sizeof(err));
	if (srv == NULL)
		fail_msg("edge_server_start: %s", err);
	return srv;
}

static void
test_idle_timeout(void **state)
{
	struct edge_opts opts = { .threads = 1, .idle_timeout_ms = 200 };
	struct edge_server *srv = test_start(&opts);
	struct test_conn idle, half;
	struct test_resp r;
	int64_t t0 = test_now_ms();

	test_open(&idle, edge_server_port(srv));
	test_open(&half, edge_server_port(srv));
	test_send(&idle, "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&idle, &r, false), 0);
	test_resp_free(&r);
	test_send(&half, "GET /mem HTTP/1.1\r\n");
	test_expect_eof(&idle);
	test_expect_eof(&half);
	assert_true(test_now_ms() - t0 < 2000);
	test_close(&idle);
	test_close(&half);
	test_wait_open(srv, 0);
	edge_server_stop(srv);
}

static void
test_conn_cap(void **state)
{
	struct edge_opts opts = { .threads = 1, .max_conns = 2 };
	struct edge_server *srv = test_start(&opts);
	struct test_conn a, b, c;
	struct test_resp r;
	struct edge_stats st;

	test_open(&a, edge_server_port(srv));
	test_open(&b, edge_server_port(srv));
	test_wait_open(srv, 2);

	/* The third is told so and closed; the others go on. */
	test_open(&c, edge_server_port(srv));
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.status, 503);
	test_resp_free(&r);
	test_expect_eof(&c);
	test_close(&c);
	edge_server_stats(srv, -1, &st);
	assert_int_equal(st.conns_refused, 1);

	test_send(&a, "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&a, &r, false), 0);
	assert_int_equal(r.status, 200);
	test_resp_free(&r);
	test_close(&a);
	test_close(&b);
	test_wait_open(srv, 0);

	test_open(&c, edge_server_port(srv));
	test_send(&c, "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(test_read(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	test_resp_free(&r);
	test_close(&c);
	edge_server_stop(srv);
}

/*
 * Connections spread evenly over the threads, whatever the kernel's
 * SO_REUSEPORT hash chose: with 200 connections on 4 threads the hash
 * alone leaves a thread more than 5 away from 50 nearly every time.
 * A connection handed to another thread is served there.
 */
static void
test_balance(void **state)
{
	enum { THREADS = 4, CONNS = 200, SLACK = 5 };
	struct edge_opts opts = { .threads = THREADS };
	struct edge_server *srv = test_start(&opts);
	struct test_conn *conns = calloc(CONNS, sizeof(*conns));
	struct test_resp r;
	struct edge_stats st;

	assert_non_null(conns);
	for (int i = 0; i < CONNS; i++)
		test_open(&conns[i], edge_server_port(srv));
	test_wait_open(srv, CONNS);
	for (int i = 0; i < THREADS; i++) {
		edge_server_stats(srv, i, &st);
		if (st.conns_open + SLACK < CONNS / THREADS ||
		    st.conns_open > CONNS / THREADS + SLACK)
			fail_msg("thread %d holds %llu of %d connections", i,
			    (unsigned long long)st.conns_open, CONNS);
	}
	edge_server_stats(srv, -1, &st);
	assert_true(st.conns_handed > 0);
	assert_int_equal(st.conns_accepted, CONNS);
	for (int i = 0; i < CONNS; i++) {
		test_send(&conns[i], "GET /mem HTTP/1.1\r\nHost: a\r\n\r\n");
		assert_int_equal(test_read(&conns[i], &r, false), 0);
		assert_int_equal(r.status, 200);
		test_resp_free(&r);
		test_close(&conns[i]);
	}
	free(conns);
	test_wait_open(srv, 0);
	edge_server_stop(srv);
}

static void
test_stop_with_connections(void **state)
{
	struct edge_opts opts = { .threads = 2 };
	struct edge_server *srv = test_start(&opts);
	struct test_conn conns[40];
	int before = atomic_load(&test_env.big_released);
	int64_t t0;

	/* Idle, half a request, and a response the client never reads. */
	for (int i = 0; i < 40; i++) {
		test_open(&conns[i], edge_server_port(srv));
		if (i % 3 == 1)
			test_send(&conns[i], "GET /mem HTTP/1.1\r\n");
		if (i % 3 == 2)
			test_send(&conns[i],
			    "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
	}
	test_wait_open(srv, 40);
	test_sleep_ms(50);

	t0 = test_now_ms();
	edge_server_stop(srv);
	assert_true(test_now_ms() - t0 < 1000);
	/* Every body lent was released, once. */
	assert_int_equal(atomic_load(&test_env.big_released), before + 13);
	for (int i = 0; i < 40; i++)
		test_close(&conns[i]);
}

static void
test_bad_listen(void **state)
{
	struct edge_server *srv;
	char err[256], listen[64];

	srv = edge_server_start("nonsense", 1, test_handler, &test_env, err,
	    sizeof(err));
	assert_null(srv);
	assert_non_null(strstr(err, "nonsense"));

	/* A port in use, even by a socket that allows sharing it. */
	snprintf(listen, sizeof(listen), "127.0.0.1:%u",
	    (unsigned)test_env.port);
	srv = edge_server_start(listen, 1, test_handler, &test_env, err,
	    sizeof(err));
	assert_null(srv);
	assert_non_null(strstr(err, "in use"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_mem),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_short),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_pipelining_many),
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_http10),
		cmocka_unit_test(test_connection_close),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_body_refused),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_parsing),
		cmocka_unit_test(test_response_rules),
		cmocka_unit_test(test_half_request),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_sequential),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_conn_cap),
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_stop_with_connections),
		cmocka_unit_test(test_bad_listen),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
