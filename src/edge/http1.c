/*
 * http1: connection loop, request parser and response writer of the
 * edge.  See http1.h for the contract and docs/edge.md for the design.
 *
 * A connection is in one of three states:
 *
 *   READING    waits for (the rest of) a request head: EPOLLIN
 *   WRITING    a response is partly written: EPOLLOUT
 *   LINGERING  closing: our side is shut, what the client still sends
 *              is read and dropped so that close() does not reset the
 *              connection before the client has read our answer
 *
 * Readiness is level-triggered and the connection is registered for the
 * one event its state waits for, so the kernel reports any readiness
 * that exists when epoll_wait() is called and none is lost between
 * calls.  Whenever a response completes, the read buffer is parsed
 * again before the connection goes back to waiting for input: a
 * pipelined request already read is never left waiting for bytes that
 * will not come.
 *
 * Timeouts: each thread keeps its READING and WRITING connections on
 * one list ordered by last progress (accept, a complete request, a
 * write that moved bytes) and LINGERING ones on another; both lists
 * have one fixed timeout, so a sweep only looks at their heads.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/log.h"
#include "edge/http1.h"

#define EDGE_STATUS_LINE_MAX    64      /* "HTTP/1.1 NNN reason\r\n" */
#define EDGE_SERVER_HEADERS_MAX 160     /* Date, Content-Length, ... */
#define EDGE_OUT_MAX            (EDGE_STATUS_LINE_MAX + \
	EDGE_RESP_HEADERS_MAX + EDGE_SERVER_HEADERS_MAX)
#define EDGE_EVENTS_MAX         32      /* per epoll_wait(), see below */
#define EDGE_FREE_CONNS_MAX     64      /* kept for reuse per thread */
#define EDGE_SWEEP_MAX_MS       1000
#define EDGE_ACCEPT_PAUSE_MS    100     /* after EMFILE and the like */
#define EDGE_DATE_LEN           37      /* "Date: ...GMT\r\n" */
#define EDGE_REFUSE_READS       4       /* drained before a refusal */
#define EDGE_BALANCE_SLACK      2       /* connections above the least */
#define EDGE_INBOX_MAX          256     /* handed-over fds waiting */

/* Date, "Content-Length: " + 20 digits, "Connection: keep-alive", end. */
_Static_assert(EDGE_DATE_LEN + 38 + 24 + 2 <= EDGE_SERVER_HEADERS_MAX,
    "room for the server's headers");

enum edge_state {
	EDGE_READING = 0,
	EDGE_WRITING,
	EDGE_LINGERING,
};

enum edge_body {
	EDGE_BODY_NONE = 0,
	EDGE_BODY_MEM,
	EDGE_BODY_FILE,
};

struct edge_response {
	int              status;
	bool             close;         /* handler asked for a close */
	bool             overflow;      /* headers did not fit: 500 */
	enum edge_body   body;
	const char      *mem;
	int              fd;
	off_t            offset;        /* file: next byte to send */
	size_t           len;           /* body length */
	edge_release_fn *release;
	void            *arg;
	char            *hdr;           /* handler's header lines */
	size_t           hdr_len;
};

/* A doubly linked list with one timeout, oldest first. */
struct edge_list {
	struct edge_conn *head;
	struct edge_conn *tail;
	int64_t           timeout_ms;
};

struct edge_conn {
	int                   fd;
	enum edge_state       state;
	uint32_t              events;   /* current epoll interest */
	struct edge_conn     *prev;
	struct edge_conn     *next;
	struct edge_list     *list;
	int64_t               touched;  /* monotonic ms */
	size_t                in_off;   /* first unparsed byte */
	size_t                in_len;   /* bytes in in[] */
	size_t                scan;     /* head-end search resumes here */
	bool                  keep_alive;
	bool                  linger;   /* drain input before closing */
	bool                  corked;   /* TCP_CORK set for a file body */
	size_t                out_off;  /* head bytes out[out_off..end) */
	size_t                out_end;
	size_t                body_left; /* body bytes still to send */
	struct edge_response  resp;
	char                  in[EDGE_HEAD_MAX];
	char                  out[EDGE_OUT_MAX];
};

/* Written by the owning thread only, read by anyone. */
struct edge_counters {
	_Atomic uint64_t requests;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t conns_accepted;
	_Atomic uint64_t conns_refused;
	_Atomic uint64_t conns_open;
	_Atomic uint64_t conns_handed;
	_Atomic uint64_t status_4xx;
	_Atomic uint64_t status_5xx;
};

struct edge_thread {
	struct edge_server   *srv;
	pthread_t             tid;
	int                   index;
	bool                  started;
	int                   epfd;
	int                   lfd;      /* this thread's listening socket */
	int                   wakefd;   /* eventfd: stop, or inbox */
	int                   lfd_tag;  /* epoll data for lfd: &lfd_tag */
	int                   wake_tag;
	int                   nconns;
	int64_t               now;      /* monotonic ms, per wakeup */
	int64_t               next_sweep;
	int64_t               accept_paused_until; /* 0: accepting */
	time_t                date_sec;
	char                  date[EDGE_DATE_LEN + 1];
	struct edge_list      idle;     /* READING and WRITING */
	struct edge_list      lingering;
	struct edge_conn     *free_conns;
	int                   nfree;
	struct edge_request   req;      /* scratch for the handler */
	struct edge_counters  counters;

	/* Connections other threads accepted for this one (see below). */
	pthread_mutex_t       inbox_lock;
	int                   inbox[EDGE_INBOX_MAX];
	int                   ninbox;
	atomic_int            inbox_len; /* ninbox, readable unlocked */
};

struct edge_server {
	edge_handler_fn      *handler;
	void                 *ctx;
	int                   nthreads;
	int                   max_conns;
	int                   idle_timeout_ms;
	uint16_t              port;
	atomic_bool           stopping;
	struct edge_thread   *threads[EDGE_THREADS_MAX];
};

static const char edge_refusal[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";

/* Counters */

static void
edge_count(_Atomic uint64_t *counter, uint64_t n)
{
	uint64_t v = atomic_load_explicit(counter, memory_order_relaxed);

	atomic_store_explicit(counter, v + n, memory_order_relaxed);
}

static void
edge_count_sub(_Atomic uint64_t *counter, uint64_t n)
{
	uint64_t v = atomic_load_explicit(counter, memory_order_relaxed);

	atomic_store_explicit(counter, v - n, memory_order_relaxed);
}

static void
edge_stats_add(struct edge_stats *out, const struct edge_counters *c)
{
	out->requests += atomic_load_explicit(&c->requests,
	    memory_order_relaxed);
	out->bytes_out += atomic_load_explicit(&c->bytes_out,
	    memory_order_relaxed);
	out->conns_accepted += atomic_load_explicit(&c->conns_accepted,
	    memory_order_relaxed);
	out->conns_refused += atomic_load_explicit(&c->conns_refused,
	    memory_order_relaxed);
	out->conns_open += atomic_load_explicit(&c->conns_open,
	    memory_order_relaxed);
	out->conns_handed += atomic_load_explicit(&c->conns_handed,
	    memory_order_relaxed);
	out->status_4xx += atomic_load_explicit(&c->status_4xx,
	    memory_order_relaxed);
	out->status_5xx += atomic_load_explicit(&c->status_5xx,
	    memory_order_relaxed);
}

/* Clocks: one reading per wakeup, the Date header once a second. */

static char *
edge_put(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

/* Two decimal digits of v. */
static char *
edge_put2(char *p, int v)
{
	*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/*
 * "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", by hand: strftime's
 * names follow the locale.
 */
static void
edge_date_format(char out[EDGE_DATE_LEN + 1], time_t sec)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int year;
	struct tm tm;
	char *p;

	gmtime_r(&sec, &tm);
	year = tm.tm_year + 1900;
	p = edge_put(out, "Date: ", 6);
	p = edge_put(p, days[tm.tm_wday % 7], 3);
	p = edge_put2(edge_put(p, ", ", 2), tm.tm_mday);
	p = edge_put(edge_put(p, " ", 1), months[tm.tm_mon % 12], 3);
	p = edge_put2(edge_put2(edge_put(p, " ", 1), year / 100), year);
	p = edge_put2(edge_put(p, " ", 1), tm.tm_hour);
	p = edge_put2(edge_put(p, ":", 1), tm.tm_min);
	p = edge_put2(edge_put(p, ":", 1), tm.tm_sec);
	edge_put(p, " GMT\r\n", 6);
	out[EDGE_DATE_LEN] = '\0';
}

static void
edge_clock_update(struct edge_thread *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	t->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != t->date_sec) {
		t->date_sec = ts.tv_sec;
		edge_date_format(t->date, ts.tv_sec);
	}
}

/* Timeout lists */

static void
edge_list_remove(struct edge_conn *c)
{
	struct edge_list *l = c->list;

	if (l == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	c->list = NULL;
}

/* Moves c to the tail of l, stamped now. */
static void
edge_list_touch(struct edge_thread *t, struct edge_list *l,
    struct edge_conn *c)
{
	c->touched = t->now;
	if (c->list == l && l->tail == c)
		return;
	edge_list_remove(c);
	c->list = l;
	c->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

/* Response API */

static bool
edge_tchar(unsigned char ch)
{
	unsigned char lower = ch | 0x20;        /* 'A'-'Z' to 'a'-'z' */

	if ((lower >= 'a' && lower <= 'z') || (ch >= '0' && ch <= '9'))
		return true;
	switch (ch) {   /* a jump table or a bit test, not a string scan */
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '.': case '^': case '_':
	case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

static bool
edge_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!edge_tchar((unsigned char)*s))
			return false;
	return true;
}

/* A field value byte: visible, space, tab or obs-text. */
static bool
edge_vchar(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool
edge_server_owned(const char *name, size_t len)
{
#define EDGE_OWNED(s) { s, sizeof(s) - 1 }
	static const struct { const char *name; size_t len; } owned[] = {
		EDGE_OWNED("Date"), EDGE_OWNED("Content-Length"),
		EDGE_OWNED("Connection"), EDGE_OWNED("Transfer-Encoding"),
		EDGE_OWNED("Keep-Alive"),
	};
#undef EDGE_OWNED

	/* The length first: most names are compared with none of these. */
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		if (owned[i].len == len &&
		    strcasecmp(name, owned[i].name) == 0)
			return true;
	return false;
}

static void
edge_body_release(struct edge_response *resp)
{
	edge_release_fn *release = resp->release;

	resp->body = EDGE_BODY_NONE;
	resp->release = NULL;
	if (release != NULL)
		release(resp->arg);
}

void
edge_response_status(struct edge_response *resp, int status)
{
	resp->status = status;
}

int
edge_response_header(struct edge_response *resp, const char *name,
    const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	char *p;

	if (!edge_token(name) || edge_server_owned(name, nlen))
		return -EINVAL;
	for (const char *v = value; *v != '\0'; v++)
		if (!edge_vchar((unsigned char)*v))
			return -EINVAL;
	if (nlen + vlen + 4 > EDGE_RESP_HEADERS_MAX - resp->hdr_len) {
		resp->overflow = true;
		return -ENOSPC;
	}

	p = resp->hdr + resp->hdr_len;
	memcpy(p, name, nlen);
	memcpy(p + nlen, ": ", 2);
	memcpy(p + nlen + 2, value, vlen);
	memcpy(p + nlen + 2 + vlen, "\r\n", 2);
	resp->hdr_len += nlen + vlen + 4;
	return 0;
}

void
edge_response_body_mem(struct edge_response *resp, const void *data,
    size_t len, edge_release_fn *release, void *arg)
{
	edge_body_release(resp);
	resp->body = EDGE_BODY_MEM;
	resp->mem = data;
	resp->len = len;
	resp->release = release;
	resp->arg = arg;
}

void
edge_response_body_file(struct edge_response *resp, int fd,
    off_t offset, size_t len, edge_release_fn *release, void *arg)
{
	edge_body_release(resp);
	resp->body = EDGE_BODY_FILE;
	resp->fd = fd;
	resp->offset = offset;
	resp->len = len;
	resp->release = release;
	resp->arg = arg;
}

void
edge_response_close(struct edge_response *resp)
{
	resp->close = true;
}

/* Request parsing */

const char *
edge_request_header(const struct edge_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

size_t
edge_head_find(const char *in, size_t len, size_t *off, size_t *scan)
{
	const char *nl;

	while (*off < len) {
		if (in[*off] == '\n')
			(*off)++;
		else if (in[*off] == '\r' && *off + 1 < len &&
		    in[*off + 1] == '\n')
			*off += 2;
		else
			break;
	}
	if (*scan < *off)
		*scan = *off;

	while ((nl = memchr(in + *scan, '\n', len - *scan)) != NULL) {
		size_t i = (size_t)(nl - in);

		*scan = i + 1;
		if (i > *off && in[i - 1] == '\n')
			return i + 1;
		if (i > *off + 1 && in[i - 1] == '\r' && in[i - 2] == '\n')
			return i + 1;
	}
	*scan = len;
	return 0;
}

/* NUL-terminates the line at *p (dropping its CR LF) and steps over. */
static char *
edge_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	/* The head was checked to end in an empty line. */
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	*p = nl + 1;
	return line;
}

static bool
edge_list_has(const char *list, const char *token)
{
	size_t tlen = strlen(token);

	while (*list != '\0') {
		const char *end;
		size_t len;

		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		end = list;
		while (*end != '\0' && *end != ',')
			end++;
		len = (size_t)(end - list);
		while (len > 0 && (list[len - 1] == ' ' ||
		    list[len - 1] == '\t'))
			len--;
		if (len == tlen && strncasecmp(list, token, tlen) == 0)
			return true;
		list = end;
	}
	return false;
}

/* Content-Length: digits only; every copy must agree. */
static int
edge_parse_length(struct edge_head_info *pi, const char *v)
{
	uint64_t n = 0;

	if (*v == '\0')
		return 400;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return 400;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	if (pi->has_length && pi->length != n)
		return 400;
	pi->has_length = true;
	pi->length = n;
	if (n > 0)
		pi->has_body = true;
	return 0;
}

/* The fields the server itself acts on. */
static int
edge_parse_known(struct edge_request *req, struct edge_head_info *pi,
    const char *name, const char *value)
{
	switch (name[0] | 0x20) {
	case 'h':
		if (strcasecmp(name, "Host") != 0)
			return 0;
		if (req->host != NULL)
			return 400;
		req->host = value;
		return 0;
	case 'c':
		if (strcasecmp(name, "Content-Length") == 0)
			return edge_parse_length(pi, value);
		if (strcasecmp(name, "Connection") != 0)
			return 0;
		if (edge_list_has(value, "close"))
			pi->conn_close = true;
		if (edge_list_has(value, "keep-alive"))
			pi->conn_keep_alive = true;
		return 0;
	case 't':
		if (strcasecmp(name, "Transfer-Encoding") == 0)
			pi->has_body = true;
		return 0;
	default:
		return 0;
	}
}

/* One "name: value" line; 0 or an HTTP status. */
static int
edge_parse_header(struct edge_request *req, struct edge_head_info *pi,
    char *line)
{
	char *colon = line, *value, *end;

	while (edge_tchar((unsigned char)*colon))
		colon++;
	if (colon == line || *colon != ':')
		return 400;             /* also obs-fold and "name :" */
	*colon = '\0';

	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	for (end = value; *end != '\0'; end++)
		if (!edge_vchar((unsigned char)*end))
			return 400;
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';

	if (req->nheaders == EDGE_HEADERS_MAX)
		return 431;
	req->headers[req->nheaders].name = line;
	req->headers[req->nheaders].value = value;
	req->nheaders++;
	return edge_parse_known(req, pi, line, value);
}

/*
 * Takes the authority of an absolute-form target ("http://host/p?q")
 * as the host, NUL-terminated in place: it moves one byte left over
 * the scheme's second slash to make room.  *rest is the path that
 * follows, or NULL when there is none (the query, if any, is set).
 */
static int
edge_parse_absolute(struct edge_request *req, char *target, char **rest)
{
	char *auth, *end;
	size_t skip, len;

	if (strncasecmp(target, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		skip = 8;
	else
		return 400;
	auth = target + skip;
	len = strcspn(auth, "/?");
	if (len == 0)
		return 400;

	end = auth + len;
	memmove(auth - 1, auth, len);
	end[-1] = '\0';
	req->host = auth - 1;
	*rest = *end == '/' ? end : NULL;
	if (*end == '?')
		req->query = end + 1;
	return 0;
}

/* "METHOD SP target SP HTTP/1.x"; 0 or an HTTP status. */
static int
edge_parse_request_line(struct edge_request *req, char *line,
    char **target)
{
	char *p = line, *t;

	while (edge_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ' ')
		return 400;
	*p++ = '\0';
	req->method = line;

	t = p;
	while ((unsigned char)*p > 0x20 && *p != 0x7f)
		p++;
	if (p == t || *p != ' ')
		return 400;
	*p++ = '\0';
	*target = t;

	if (strncmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
	    p[6] != '.' || p[7] < '0' || p[7] > '9' || p[8] != '\0')
		return 400;
	if (p[5] != '1')
		return 505;
	req->minor = p[7] == '0' ? 0 : 1;
	return 0;
}

/* Path and query from the target, in place. */
static int
edge_parse_target(struct edge_request *req, char *target)
{
	char *path = target, *q;

	if (target[0] == '*' && target[1] == '\0') {
		req->path = target;
		return 0;
	}
	if (target[0] != '/') {
		int status = edge_parse_absolute(req, target, &path);

		if (status != 0)
			return status;
		if (path == NULL) {
			req->path = "/";
			return 0;
		}
	}
	q = strchr(path, '?');
	if (q != NULL) {
		*q = '\0';
		req->query = q + 1;
	}
	req->path = path;
	return 0;
}

int
edge_parse_head(char *head, size_t len, struct edge_request *req,
    struct edge_head_info *pi)
{
	char *p = head, *line, *target, *abs_host;
	int status;

	if (memchr(p, '\0', len) != NULL)
		return 400;
	/* A C string from here on: the last LF becomes its NUL. */
	head[len - 1] = '\0';
	memset(req, 0, offsetof(struct edge_request, headers));
	memset(pi, 0, sizeof(*pi));

	line = p;
	p = strchr(p, '\n');
	if (p == NULL)
		return 400;
	*p++ = '\0';
	if (p - line >= 2 && p[-2] == '\r')
		p[-2] = '\0';
	status = edge_parse_request_line(req, line, &target);
	if (status != 0)
		return status;
	status = edge_parse_target(req, target);
	if (status != 0)
		return status;
	abs_host = (char *)req->host;
	req->host = NULL;

	while (*p != '\0' && !(*p == '\r' && p[1] == '\0')) {
		status = edge_parse_header(req, pi, edge_line(&p));
		if (status != 0)
			return status;
	}

	if (req->minor == 1 && req->host == NULL)
		return 400;
	if (abs_host != NULL)
		req->host = abs_host;
	req->head = strcmp(req->method, "HEAD") == 0;
	return pi->has_body ? 413 : 0;
}

/* Response head */

static const char *
edge_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default:  return "";
	}
}

static char *
edge_put_u64(char *p, uint64_t n)
{
	char digits[20];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	return edge_put(p, digits + i, sizeof(digits) - i);
}

/* Writes the status line so that it ends where the headers start. */
static size_t
edge_status_line(struct edge_conn *c, int status)
{
	const char *reason = edge_reason(status);
	size_t rlen = strlen(reason);
	size_t len = 9 + 3 + 1 + rlen + 2;
	char *p = c->out + EDGE_STATUS_LINE_MAX - len;

	p = edge_put(p, "HTTP/1.1 ", 9);
	*p++ = (char)('0' + status / 100);
	*p++ = (char)('0' + status / 10 % 10);
	*p++ = (char)('0' + status % 10);
	*p++ = ' ';
	p = edge_put(p, reason, rlen);
	edge_put(p, "\r\n", 2);
	return EDGE_STATUS_LINE_MAX - len;
}

static void
edge_response_reset(struct edge_conn *c)
{
	struct edge_response *resp = &c->resp;

	memset(resp, 0, sizeof(*resp));
	resp->fd = -1;
	resp->hdr = c->out + EDGE_STATUS_LINE_MAX;
}

/*
 * Date, Content-Length, Connection and the empty line, after the
 * handler's headers.  Returns the end of the head in out[].
 */
static size_t
edge_server_headers(struct edge_thread *t, struct edge_conn *c,
    bool bodiless, int minor)
{
	char *p = c->resp.hdr + c->resp.hdr_len;

	p = edge_put(p, t->date, EDGE_DATE_LEN);
	if (!bodiless) {
		p = edge_put(p, "Content-Length: ", 16);
		p = edge_put_u64(p, c->resp.len);
		p = edge_put(p, "\r\n", 2);
	}
	if (!c->keep_alive)
		p = edge_put(p, "Connection: close\r\n", 19);
	else if (minor == 0)
		p = edge_put(p, "Connection: keep-alive\r\n", 24);
	p = edge_put(p, "\r\n", 2);
	return (size_t)(p - c->out);
}

/*
 * Turns the handler's answer into the bytes to send: status line and
 * the server's headers around the handler's ones, and how much body.
 * head_only: the request was HEAD.
 */
static void
edge_response_finish(struct edge_thread *t, struct edge_conn *c,
    bool head_only, int minor)
{
	struct edge_response *resp = &c->resp;
	bool bodiless;

	if (resp->status < 200 || resp->status > 599 || resp->overflow) {
		resp->status = 500;
		resp->hdr_len = 0;
		edge_body_release(resp);
	}
	bodiless = resp->status == 204 || resp->status == 304;
	if (resp->body == EDGE_BODY_NONE || bodiless)
		resp->len = 0;
	if (bodiless || head_only)
		edge_body_release(resp);
	c->body_left = resp->body == EDGE_BODY_NONE ? 0 : resp->len;
	if (resp->close)
		c->keep_alive = false;

	c->out_end = edge_server_headers(t, c, bodiless, minor);
	c->out_off = edge_status_line(c, resp->status);

	edge_count(&t->counters.requests, 1);
	if (resp->status >= 500)
		edge_count(&t->counters.status_5xx, 1);
	else if (resp->status >= 400)
		edge_count(&t->counters.status_4xx, 1);
}

/* A response of the server's own: an error, then a close. */
static void
edge_respond_error(struct edge_thread *t, struct edge_conn *c, int status)
{
	const char *reason = edge_reason(status);

	edge_response_reset(c);
	c->resp.status = status;
	edge_response_header(&c->resp, "Content-Type",
	    "text/plain; charset=utf-8");
	edge_response_body_mem(&c->resp, reason, strlen(reason), NULL,
	    NULL);
	c->keep_alive = false;
	c->linger = true;
	edge_response_finish(t, c, false, 1);
}

/* Writing */

/*
 * The unsent head and memory body in one sendmsg; MSG_MORE when file
 * bytes follow.  *want: the bytes offered.
 */
static ssize_t
edge_send_iov(struct edge_conn *c, bool mem, bool file, size_t *want)
{
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };

	*want = 0;
	if (c->out_off < c->out_end) {
		iov[msg.msg_iovlen].iov_base = c->out + c->out_off;
		iov[msg.msg_iovlen++].iov_len = c->out_end - c->out_off;
		*want += c->out_end - c->out_off;
	}
	if (mem) {
		iov[msg.msg_iovlen].iov_base = (char *)c->resp.mem +
		    (c->resp.len - c->body_left);
		iov[msg.msg_iovlen++].iov_len = c->body_left;
		*want += c->body_left;
	}
	return sendmsg(c->fd, &msg, MSG_NOSIGNAL | (file ? MSG_MORE : 0));
}

/* n bytes went out: the head's first, then the body's. */
static void
edge_sent(struct edge_conn *c, size_t n)
{
	size_t head = c->out_end - c->out_off;
	size_t used = n < head ? n : head;

	c->out_off += used;
	c->body_left -= n - used;
}

/*
 * Sets or clears TCP_CORK.  A failure costs only the coalescing, which
 * MSG_MORE on the head still gives in part, so it is not an error.
 */
static void
edge_cork(struct edge_conn *c, bool on)
{
	int v = on;

	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
	c->corked = on;
}

/*
 * Sends what is pending: head, then body.  Returns 1 when the response
 * is out, 0 when the socket is full (wait for EPOLLOUT), -1 when the
 * connection is lost.
 *
 * A file body goes out corked (TCP_CORK from before the head until the
 * last byte), as nginx's tcp_nopush does: MSG_MORE holds the head back
 * for the body, but sendfile then pushes each of its chunks as it goes,
 * and on loopback every push runs the receiver's side of TCP too.  For
 * the 200 KiB image of bench/edge, corking raised the edge from 0.88 to
 * 0.95 of nginx's requests/s at 64 connections and from 0.96 to 1.01 at
 * 256 (docs/benchmarks.md), for two setsockopt calls a response.
 * Memory bodies need none of it: head and body leave in one sendmsg.
 */
static int
edge_flush(struct edge_thread *t, struct edge_conn *c)
{
	struct edge_response *resp = &c->resp;

	for (;;) {
		bool head = c->out_off < c->out_end;
		bool mem = resp->body == EDGE_BODY_MEM && c->body_left > 0;
		bool file = resp->body == EDGE_BODY_FILE && c->body_left > 0;
		size_t want;
		ssize_t n;

		if (head && file && !c->corked)
			edge_cork(c, true);
		if (head || mem) {
			n = edge_send_iov(c, mem, file, &want);
		} else if (file) {
			want = c->body_left < EDGE_SENDFILE_CHUNK ?
			    c->body_left : EDGE_SENDFILE_CHUNK;
			n = sendfile(c->fd, resp->fd, &resp->offset, want);
			if (n == 0)
				return -1;      /* the file is shorter */
		} else {
			if (c->corked)
				edge_cork(c, false);    /* the last bytes go */
			return 1;
		}

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		edge_count(&t->counters.bytes_out, (uint64_t)n);
		edge_list_touch(t, &t->idle, c);
		edge_sent(c, (size_t)n);
		if ((size_t)n < want)
			return 0;       /* the socket buffer is full */
	}
}

/* Connections */

static void
edge_conn_set_events(struct edge_thread *t, struct edge_conn *c,
    uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		log_warn("edge.epoll_mod", "fd=%d", c->fd);
	c->events = events;
}

static void
edge_conn_free(struct edge_thread *t, struct edge_conn *c)
{
	if (t->nfree < EDGE_FREE_CONNS_MAX) {
		c->next = t->free_conns;
		t->free_conns = c;
		t->nfree++;
		return;
	}
	free(c);
}

/*
 * Closes c and frees it.  The socket leaves the epoll set before it is
 * closed: a child forked by another thread of the process may hold a
 * copy of it, and a closed but still open file would keep reporting
 * events for a freed connection.
 */
static void
edge_conn_close(struct edge_thread *t, struct edge_conn *c)
{
	edge_body_release(&c->resp);
	edge_list_remove(c);
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	t->nconns--;
	edge_count_sub(&t->counters.conns_open, 1);
	edge_conn_free(t, c);
}

/* After a final response: close now, or shut our side and drain. */
static void
edge_conn_end(struct edge_thread *t, struct edge_conn *c)
{
	if (!c->linger && c->in_off == c->in_len) {
		edge_conn_close(t, c);
		return;
	}
	if (shutdown(c->fd, SHUT_WR) != 0) {
		edge_conn_close(t, c);
		return;
	}
	c->state = EDGE_LINGERING;
	edge_list_touch(t, &t->lingering, c);
	edge_conn_set_events(t, c, EPOLLIN);
}

static struct edge_conn *
edge_conn_new(struct edge_thread *t, int fd)
{
	struct edge_conn *c = t->free_conns;

	if (c != NULL) {
		t->free_conns = c->next;
		t->nfree--;
	} else {
		c = malloc(sizeof(*c));
		if (c == NULL)
			return NULL;
	}
	c->fd = fd;
	c->state = EDGE_READING;
	c->events = EPOLLIN;
	c->prev = c->next = NULL;
	c->list = NULL;
	c->in_off = c->in_len = c->scan = 0;
	c->keep_alive = false;
	c->linger = false;
	c->corked = false;
	c->out_off = c->out_end = c->body_left = 0;
	edge_response_reset(c);
	return c;
}

/* Requests */

/* Parses the request at in[in_off..end), runs the handler. */
static void
edge_request_run(struct edge_thread *t, struct edge_conn *c, size_t end)
{
	struct edge_request *req = &t->req;
	struct edge_head_info pi;
	int status;

	status = edge_parse_head(c->in + c->in_off, end - c->in_off, req,
	    &pi);
	c->in_off = end;
	c->scan = end;
	if (status != 0) {
		edge_respond_error(t, c, status);
		return;
	}

	if (req->minor == 1)
		c->keep_alive = !pi.conn_close;
	else
		c->keep_alive = pi.conn_keep_alive && !pi.conn_close;
	if (atomic_load_explicit(&t->srv->stopping, memory_order_relaxed))
		c->keep_alive = false;
	edge_response_reset(c);
	t->srv->handler(t->srv->ctx, req, &c->resp);
	edge_response_finish(t, c, req->head, req->minor);
}

/* The head did not fit in the buffer: 414 or 431. */
static void
edge_request_too_large(struct edge_thread *t, struct edge_conn *c)
{
	bool line_done = memchr(c->in + c->in_off, '\n',
	    c->in_len - c->in_off) != NULL;

	c->in_off = c->in_len;
	edge_respond_error(t, c, line_done ? 431 : 414);
}

/* The response is out: release its body, close or go on. */
static bool
edge_response_done(struct edge_thread *t, struct edge_conn *c)
{
	edge_body_release(&c->resp);
	if (!c->keep_alive) {
		edge_conn_end(t, c);
		return false;
	}
	c->state = EDGE_READING;
	return true;
}

/*
 * Answers every complete request in the buffer, in order, until one
 * response blocks or the buffer holds no complete request; then waits
 * for the event that lets it go on.  c may be freed on return.
 */
static void
edge_conn_serve(struct edge_thread *t, struct edge_conn *c)
{
	for (;;) {
		size_t end = edge_head_find(c->in, c->in_len, &c->in_off,
		    &c->scan);
		int r;

		if (end == 0) {
			if (c->in_len - c->in_off < EDGE_HEAD_MAX) {
				edge_conn_set_events(t, c, EPOLLIN);
				return;
			}
			edge_request_too_large(t, c);
		} else {
			edge_request_run(t, c, end);
			edge_list_touch(t, &t->idle, c);
		}

		r = edge_flush(t, c);
		if (r < 0) {
			edge_conn_close(t, c);
			return;
		}
		if (r == 0) {
			c->state = EDGE_WRITING;
			edge_conn_set_events(t, c, EPOLLOUT);
			return;
		}
		if (!edge_response_done(t, c))
			return;
	}
}

/* Makes room at the end of in[]: the unparsed bytes move to the front. */
static void
edge_conn_compact(struct edge_conn *c)
{
	size_t left = c->in_len - c->in_off;

	if (c->in_off == 0)
		return;
	if (left > 0)
		memmove(c->in, c->in + c->in_off, left);
	c->scan -= c->in_off;
	c->in_off = 0;
	c->in_len = left;
}

static void
edge_conn_readable(struct edge_thread *t, struct edge_conn *c)
{
	ssize_t n;

	edge_conn_compact(c);
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		edge_conn_close(t, c);
		return;
	}
	c->in_len += (size_t)n;
	edge_conn_serve(t, c);
}

static void
edge_conn_writable(struct edge_thread *t, struct edge_conn *c)
{
	int r = edge_flush(t, c);

	if (r < 0) {
		edge_conn_close(t, c);
		return;
	}
	if (r > 0 && edge_response_done(t, c))
		edge_conn_serve(t, c);
}

/* Reads and drops what a closing client still sends, until its EOF. */
static void
edge_conn_drain(struct edge_thread *t, struct edge_conn *c)
{
	ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		edge_conn_close(t, c);
}

static void
edge_conn_event(struct edge_thread *t, struct edge_conn *c,
    uint32_t events)
{
	switch (c->state) {
	case EDGE_READING:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			edge_conn_readable(t, c);
		break;
	case EDGE_WRITING:
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			edge_conn_writable(t, c);
		break;
	case EDGE_LINGERING:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			edge_conn_drain(t, c);
		break;
	}
}

/* Accepting */

/*
 * Over the cap: a 503 and a close.  What the client already sent is
 * read first, when it fits, so that the close ends with a FIN and not
 * with a reset that could destroy the 503 before it is read.
 */
static void
edge_refuse(struct edge_thread *t, int fd)
{
	char scratch[1024];
	ssize_t n;

	edge_count(&t->counters.conns_refused, 1);
	n = send(fd, edge_refusal, sizeof(edge_refusal) - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		edge_count(&t->counters.bytes_out, (uint64_t)n);
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < EDGE_REFUSE_READS && recv(fd, scratch,
	    sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

static void
edge_accept_pause(struct edge_thread *t)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &t->lfd_tag };

	log_warn("edge.accept", "thread=%d pause_ms=%d", t->index,
	    EDGE_ACCEPT_PAUSE_MS);
	epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->lfd, &ev);
	t->accept_paused_until = t->now + EDGE_ACCEPT_PAUSE_MS;
}

static void
edge_accept_resume(struct edge_thread *t)
{
	struct epoll_event ev = { .events = EPOLLIN,
	    .data.ptr = &t->lfd_tag };

	if (t->accept_paused_until == 0 || t->now < t->accept_paused_until)
		return;
	epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->lfd, &ev);
	t->accept_paused_until = 0;
}

static void
edge_accept_one(struct edge_thread *t, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct edge_conn *c;
	int one = 1;

	if (t->nconns >= t->srv->max_conns) {
		edge_refuse(t, fd);
		return;
	}
	c = edge_conn_new(t, fd);
	if (c == NULL) {
		edge_refuse(t, fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.ptr = c;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		edge_conn_free(t, c);
		edge_refuse(t, fd);
		return;
	}
	t->nconns++;
	edge_count(&t->counters.conns_open, 1);
	edge_count(&t->counters.conns_accepted, 1);
	edge_list_touch(t, &t->idle, c);
}

/*
 * Balance.  Every thread listens on its own SO_REUSEPORT socket and the
 * kernel spreads new connections over them by a hash of their
 * addresses, so one thread may get noticeably more than another: with
 * 256 connections and two threads a split of 136 to 120 is common, and
 * the thread with more answers each of its connections later, which is
 * what the p99 measures.  So a thread that accepts a connection while
 * it has EDGE_BALANCE_SLACK more than the least loaded one hands the
 * descriptor over: into that thread's inbox, and a write to its
 * eventfd wakes it.  A thread's load is its open connections plus its
 * inbox; both are read without a lock, which is good enough for a
 * heuristic: a race costs a connection on a busier thread, not
 * correctness.
 */
static int
edge_load(struct edge_thread *t)
{
	return (int)atomic_load_explicit(&t->counters.conns_open,
	    memory_order_relaxed) +
	    atomic_load_explicit(&t->inbox_len, memory_order_relaxed);
}

/* The least loaded thread, when t carries the slack more; or NULL. */
static struct edge_thread *
edge_balance_target(struct edge_thread *t)
{
	struct edge_server *srv = t->srv;
	struct edge_thread *best = NULL;
	int least = edge_load(t) - EDGE_BALANCE_SLACK;

	for (int i = 0; i < srv->nthreads; i++) {
		struct edge_thread *o = srv->threads[i];
		int load;

		if (o == t)
			continue;
		load = edge_load(o);
		if (load < least) {
			least = load;
			best = o;
		}
	}
	return best;
}

/* Queues fd on to's inbox and wakes it; false when the inbox is full. */
static bool
edge_hand_over(struct edge_thread *from, struct edge_thread *to, int fd)
{
	uint64_t one = 1;
	bool queued;
	ssize_t w;

	pthread_mutex_lock(&to->inbox_lock);
	queued = to->ninbox < EDGE_INBOX_MAX;
	if (queued) {
		to->inbox[to->ninbox++] = fd;
		atomic_store_explicit(&to->inbox_len, to->ninbox,
		    memory_order_relaxed);
	}
	pthread_mutex_unlock(&to->inbox_lock);
	if (!queued)
		return false;
	/* Fails only with the counter at 2^64 - 2: it is read each time. */
	w = write(to->wakefd, &one, sizeof(one));
	(void)w;
	edge_count(&from->counters.conns_handed, 1);
	return true;
}

/* Takes in what other threads handed over; on a wakeup of wakefd. */
static void
edge_adopt(struct edge_thread *t)
{
	int fds[EDGE_INBOX_MAX], n;
	uint64_t count;
	ssize_t r;

	/* Clears the eventfd; a stop sets srv->stopping before writing. */
	r = read(t->wakefd, &count, sizeof(count));
	(void)r;
	pthread_mutex_lock(&t->inbox_lock);
	n = t->ninbox;
	memcpy(fds, t->inbox, (size_t)n * sizeof(fds[0]));
	t->ninbox = 0;
	atomic_store_explicit(&t->inbox_len, 0, memory_order_relaxed);
	pthread_mutex_unlock(&t->inbox_lock);
	for (int i = 0; i < n; i++)
		edge_accept_one(t, fds[i]);
}

static void
edge_accept(struct edge_thread *t)
{
	for (int i = 0; i < EDGE_ACCEPT_BATCH; i++) {
		int fd = accept4(t->lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct edge_thread *to;

		if (fd >= 0) {
			to = edge_balance_target(t);
			if (to == NULL || !edge_hand_over(t, to, fd))
				edge_accept_one(t, fd);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;
		default:
			/*
			 * EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending
			 * connection keeps the socket readable; wait.
			 */
			edge_accept_pause(t);
			return;
		}
	}
}

/* The loop */

static void
edge_sweep_list(struct edge_thread *t, struct edge_list *l)
{
	while (l->head != NULL &&
	    t->now - l->head->touched >= l->timeout_ms)
		edge_conn_close(t, l->head);
}

static int
edge_sweep_interval(const struct edge_thread *t)
{
	int64_t ms = EDGE_SWEEP_MAX_MS;

	if (t->idle.timeout_ms / 4 < ms)
		ms = t->idle.timeout_ms / 4;
	if (ms < 10)
		ms = 10;
	return (int)ms;
}

static void
edge_sweep(struct edge_thread *t)
{
	if (t->now < t->next_sweep)
		return;
	edge_sweep_list(t, &t->idle);
	edge_sweep_list(t, &t->lingering);
	edge_accept_resume(t);
	t->next_sweep = t->now + edge_sweep_interval(t);
}

static void
edge_thread_close_all(struct edge_thread *t)
{
	while (t->idle.head != NULL)
		edge_conn_close(t, t->idle.head);
	while (t->lingering.head != NULL)
		edge_conn_close(t, t->lingering.head);
	while (t->free_conns != NULL) {
		struct edge_conn *c = t->free_conns;

		t->free_conns = c->next;
		free(c);
	}
	t->nfree = 0;
}

static void
edge_thread_dispatch(struct edge_thread *t, struct epoll_event *ev)
{
	if (ev->data.ptr == &t->lfd_tag)
		edge_accept(t);
	else if (ev->data.ptr == &t->wake_tag)
		edge_adopt(t);
	else
		edge_conn_event(t, ev->data.ptr, ev->events);
}

/*
 * The loop yields the CPU after every batch of events it handled, and a
 * batch is at most EDGE_EVENTS_MAX events.  Both are for the tail
 * latency when the loop threads share CPUs with each other or with
 * anything else (builds, the API, a load generator): a thread with
 * work keeps its CPU until the scheduler preempts it, a whole slice of
 * several milliseconds, while the connections of the thread waiting
 * behind it sit unanswered; under wrk on 2 CPUs that made the edge's
 * p99 two slices (7 ms) where nginx, whose workers block more often,
 * had 4.  Yielding after a batch hands the CPU over at the finest point
 * where no connection is half done; on an idle CPU sched_yield() costs
 * one system call and returns at once.  A small batch bounds the time
 * between two yields to a few dozen responses.  Measured in
 * docs/benchmarks.md (bench/edge).
 */
static void *
edge_thread_main(void *arg)
{
	struct edge_thread *t = arg;
	struct epoll_event events[EDGE_EVENTS_MAX];

	edge_clock_update(t);
	t->next_sweep = t->now + edge_sweep_interval(t);
	while (!atomic_load(&t->srv->stopping)) {
		int64_t wait = t->next_sweep - t->now;
		int n;

		n = epoll_wait(t->epfd, events, EDGE_EVENTS_MAX,
		    wait > 0 ? (int)wait : 0);
		if (n < 0 && errno != EINTR) {
			log_error("edge.epoll_wait", "fd=%d", t->epfd);
			break;
		}
		edge_clock_update(t);
		for (int i = 0; i < n; i++)
			edge_thread_dispatch(t, &events[i]);
		edge_sweep(t);
		if (n > 0)
			sched_yield();
	}
	edge_thread_close_all(t);
	return NULL;
}

/* Start and stop */

static int
edge_listen_socket(const struct sockaddr *addr, socklen_t addrlen,
    bool reuseport)
{
	int fd, one = 1;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) != 0) ||
	    bind(fd, addr, addrlen) != 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/*
 * SO_REUSEPORT would let us share a port with another process of the
 * same user still listening on it; a plain bind first makes that an
 * "address in use" error.
 */
static int
edge_probe_port(const struct sockaddr *addr, socklen_t addrlen)
{
	int fd = edge_listen_socket(addr, addrlen, false);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static void
edge_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static uint16_t
edge_get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int
edge_resolve(const char *where, struct sockaddr_storage *ss,
    socklen_t *sslen, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256], port_s[8];
	uint16_t port;
	int rc;

	if (config_parse_listen(where, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "%s is not HOST:PORT", where);
		return -1;
	}
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
	rc = getaddrinfo(host, port_s, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Binds every thread's listening socket to the same address. */
static int
edge_bind_all(struct edge_server *srv, const char *where, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc;

	if (edge_resolve(where, &ss, &sslen, err, errlen) != 0)
		return -1;
	if (edge_get_port(&ss) != 0 &&
	    (rc = edge_probe_port((struct sockaddr *)&ss, sslen)) < 0)
		goto fail;

	for (int i = 0; i < srv->nthreads; i++) {
		struct edge_thread *t = srv->threads[i];

		rc = edge_listen_socket((struct sockaddr *)&ss, sslen, true);
		if (rc < 0)
			goto fail;
		t->lfd = rc;
		if (listen(t->lfd, EDGE_BACKLOG) != 0) {
			rc = -errno;
			goto fail;
		}
		if (i == 0) {
			struct sockaddr_storage bound;
			socklen_t blen = sizeof(bound);

			/* Port 0: every other socket takes the one chosen. */
			getsockname(t->lfd, (struct sockaddr *)&bound, &blen);
			srv->port = edge_get_port(&bound);
			edge_set_port(&ss, srv->port);
		}
	}
	return 0;

fail:
	snprintf(err, errlen, "cannot listen on %s: %s", where,
	    strerror(-rc));
	return -1;
}

static struct edge_thread *
edge_thread_new(struct edge_server *srv, int index)
{
	struct edge_thread *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->srv = srv;
	t->index = index;
	t->lfd = -1;
	t->wakefd = -1;
	pthread_mutex_init(&t->inbox_lock, NULL);
	t->idle.timeout_ms = srv->idle_timeout_ms;
	t->lingering.timeout_ms = EDGE_LINGER_MS;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0) {
		pthread_mutex_destroy(&t->inbox_lock);
		free(t);
		return NULL;
	}
	return t;
}

static int
edge_thread_register(struct edge_thread *t)
{
	struct epoll_event lev = { .events = EPOLLIN,
	    .data.ptr = &t->lfd_tag };
	struct epoll_event wev = { .events = EPOLLIN,
	    .data.ptr = &t->wake_tag };

	t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wakefd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &lev) != 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &wev) != 0)
		return -errno;
	return 0;
}

static void
edge_thread_free(struct edge_thread *t)
{
	if (t == NULL)
		return;
	if (t->lfd >= 0)
		close(t->lfd);
	if (t->wakefd >= 0)
		close(t->wakefd);
	if (t->epfd >= 0)
		close(t->epfd);
	/* Handed over after the thread's last look at its inbox. */
	for (int i = 0; i < t->ninbox; i++)
		close(t->inbox[i]);
	pthread_mutex_destroy(&t->inbox_lock);
	free(t);
}

/* Threads start with every signal blocked: signals are main's. */
static int
edge_threads_spawn(struct edge_server *srv)
{
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < srv->nthreads && rc == 0; i++) {
		struct edge_thread *t = srv->threads[i];

		rc = pthread_create(&t->tid, NULL, edge_thread_main, t);
		t->started = rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

static int
edge_opts_threads(int threads)
{
	long cpus;

	if (threads > 0)
		return threads;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return 1;
	return cpus > EDGE_THREADS_MAX ? EDGE_THREADS_MAX : (int)cpus;
}

static struct edge_server *
edge_server_new(const struct edge_opts *opts, edge_handler_fn *handler,
    void *ctx, char *err, size_t errlen)
{
	struct edge_opts none = { 0 };
	struct edge_server *srv;

	if (opts == NULL)
		opts = &none;
	if (handler == NULL || opts->threads < 0 ||
	    opts->threads > EDGE_THREADS_MAX || opts->max_conns < 0 ||
	    opts->idle_timeout_ms < 0) {
		snprintf(err, errlen, "invalid edge server options");
		return NULL;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->handler = handler;
	srv->ctx = ctx;
	srv->nthreads = edge_opts_threads(opts->threads);
	srv->max_conns = opts->max_conns > 0 ? opts->max_conns :
	    EDGE_CONNS_DEFAULT;
	srv->idle_timeout_ms = opts->idle_timeout_ms > 0 ?
	    opts->idle_timeout_ms : EDGE_IDLE_TIMEOUT_MS;
	atomic_init(&srv->stopping, false);
	return srv;
}

struct edge_server *
edge_server_start_opts(const char *listen, const struct edge_opts *opts,
    edge_handler_fn *handler, void *ctx, char *err, size_t errlen)
{
	struct edge_server *srv;
	int rc;

	srv = edge_server_new(opts, handler, ctx, err, errlen);
	if (srv == NULL)
		return NULL;
	for (int i = 0; i < srv->nthreads; i++) {
		srv->threads[i] = edge_thread_new(srv, i);
		if (srv->threads[i] == NULL) {
			snprintf(err, errlen, "edge thread: %s",
			    strerror(errno));
			goto fail;
		}
	}
	if (edge_bind_all(srv, listen, err, errlen) != 0)
		goto fail;
	for (int i = 0; i < srv->nthreads; i++) {
		rc = edge_thread_register(srv->threads[i]);
		if (rc < 0) {
			snprintf(err, errlen, "edge epoll: %s", strerror(-rc));
			goto fail;
		}
	}
	rc = edge_threads_spawn(srv);
	if (rc < 0) {
		snprintf(err, errlen, "edge threads: %s", strerror(-rc));
		goto fail;
	}
	return srv;

fail:
	edge_server_stop(srv);
	return NULL;
}

struct edge_server *
edge_server_start(const char *listen, int threads,
    edge_handler_fn *handler, void *ctx, char *err, size_t errlen)
{
	struct edge_opts opts = { .threads = threads };

	return edge_server_start_opts(listen, &opts, handler, ctx, err,
	    errlen);
}

uint16_t
edge_server_port(const struct edge_server *srv)
{
	return srv->port;
}

int
edge_server_threads(const struct edge_server *srv)
{
	return srv->nthreads;
}

void
edge_server_stop(struct edge_server *srv)
{
	uint64_t one = 1;

	if (srv == NULL)
		return;
	atomic_store(&srv->stopping, true);
	for (int i = 0; i < srv->nthreads; i++) {
		struct edge_thread *t = srv->threads[i];

		if (t != NULL && t->started &&
		    write(t->wakefd, &one, sizeof(one)) < 0)
			log_warn("edge.wake", "thread=%d", i);
	}
	/* All joined before any is freed: a thread hands over to others. */
	for (int i = 0; i < srv->nthreads; i++) {
		struct edge_thread *t = srv->threads[i];

		if (t != NULL && t->started)
			pthread_join(t->tid, NULL);
	}
	for (int i = 0; i < srv->nthreads; i++)
		edge_thread_free(srv->threads[i]);
	free(srv);
}

void
edge_server_stats(const struct edge_server *srv, int i,
    struct edge_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= 0) {
		if (i < srv->nthreads)
			edge_stats_add(out, &srv->threads[i]->counters);
		return;
	}
	for (int k = 0; k < srv->nthreads; k++)
		edge_stats_add(out, &srv->threads[k]->counters);
}
