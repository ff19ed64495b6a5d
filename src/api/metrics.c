/*
 * metrics: request counters and latency histograms, kept in a fixed
 * table under one mutex and rendered in Prometheus' text format.
 *
 * A series is (route pattern, method, status).  Route patterns come
 * from the route table, so the label set stays small whatever paths
 * clients send; unknown methods are folded into "OTHER".  Past
 * METRICS_SERIES_MAX series, observations are counted as dropped.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"

#define METRICS_SERIES_MAX 256

static const double metrics_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
};
#define METRICS_NBOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

struct metrics_series {
	const char *route;              /* static: route table or literal */
	const char *method;             /* static: metrics_methods */
	int         status;
	uint64_t    count;
	double      sum;
	uint64_t    buckets[METRICS_NBOUNDS];   /* not cumulative */
};

static const char *const metrics_methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_series metrics_table[METRICS_SERIES_MAX];
static size_t metrics_used;
static uint64_t metrics_dropped;

static const char *
metrics_method(const char *method)
{
	for (size_t i = 0; i < sizeof(metrics_methods) /
	    sizeof(metrics_methods[0]); i++)
		if (strcmp(method, metrics_methods[i]) == 0)
			return metrics_methods[i];
	return "OTHER";
}

/* The series for the labels, created if new; NULL when full. */
static struct metrics_series *
metrics_find(const char *route, const char *method, int status)
{
	struct metrics_series *s;

	for (size_t i = 0; i < metrics_used; i++) {
		s = &metrics_table[i];
		if (s->status == status && s->method == method &&
		    strcmp(s->route, route) == 0)
			return s;
	}
	if (metrics_used == METRICS_SERIES_MAX)
		return NULL;
	s = &metrics_table[metrics_used++];
	s->route = route;
	s->method = method;
	s->status = status;
	return s;
}

void
metrics_observe(const char *route, const char *method, int status,
    double seconds)
{
	const char *m = metrics_method(method);
	struct metrics_series *s;
	size_t b = 0;

	while (b < METRICS_NBOUNDS && seconds > metrics_bounds[b])
		b++;

	pthread_mutex_lock(&metrics_lock);
	s = metrics_find(route, m, status);
	if (s == NULL) {
		metrics_dropped++;
	} else {
		s->count++;
		s->sum += seconds;
		if (b < METRICS_NBOUNDS)
			s->buckets[b]++;
	}
	pthread_mutex_unlock(&metrics_lock);
}

/* Appends to a growing buffer; on failure the buffer is marked bad. */
struct metrics_buf {
	char  *data;
	size_t len, cap;
	int    failed;
};

static void
metrics_put(struct metrics_buf *mb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_put(struct metrics_buf *mb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (mb->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(mb->data + mb->len, mb->cap - mb->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			mb->failed = 1;
			return;
		}
		if ((size_t)n < mb->cap - mb->len) {
			mb->len += (size_t)n;
			return;
		}
		char *grown = realloc(mb->data, mb->cap * 2 + (size_t)n);
		if (grown == NULL) {
			mb->failed = 1;
			return;
		}
		mb->data = grown;
		mb->cap = mb->cap * 2 + (size_t)n;
	}
}

static void
metrics_labels(char *buf, size_t len, const struct metrics_series *s)
{
	snprintf(buf, len, "method=\"%s\",route=\"%s\",status=\"%d\"",
	    s->method, s->route, s->status);
}

static void
metrics_render_histogram(struct metrics_buf *mb,
    const struct metrics_series *s)
{
	const char *name = "wharf_http_request_duration_seconds";
	uint64_t cumulative = 0;
	char labels[512];

	metrics_labels(labels, sizeof(labels), s);
	for (size_t b = 0; b < METRICS_NBOUNDS; b++) {
		cumulative += s->buckets[b];
		metrics_put(mb, "%s_bucket{%s,le=\"%g\"} %llu\n", name,
		    labels, metrics_bounds[b], (unsigned long long)cumulative);
	}
	metrics_put(mb, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
	    (unsigned long long)s->count);
	metrics_put(mb, "%s_sum{%s} %.6f\n", name, labels, s->sum);
	metrics_put(mb, "%s_count{%s} %llu\n", name, labels,
	    (unsigned long long)s->count);
}

int
metrics_render(char **out, size_t *len)
{
	struct metrics_buf mb = { .cap = 4096 };
	struct metrics_series *copy;
	size_t used;
	uint64_t dropped;

	/* Copy under the lock; format outside it. */
	copy = malloc(sizeof(metrics_table));
	mb.data = malloc(mb.cap);
	if (copy == NULL || mb.data == NULL) {
		free(copy);
		free(mb.data);
		return -1;
	}
	pthread_mutex_lock(&metrics_lock);
	used = metrics_used;
	dropped = metrics_dropped;
	memcpy(copy, metrics_table, used * sizeof(*copy));
	pthread_mutex_unlock(&metrics_lock);

	metrics_put(&mb, "# HELP wharf_http_requests_total HTTP requests "
	    "served by the API.\n# TYPE wharf_http_requests_total counter\n");
	for (size_t i = 0; i < used; i++) {
		char labels[512];

		metrics_labels(labels, sizeof(labels), &copy[i]);
		metrics_put(&mb, "wharf_http_requests_total{%s} %llu\n",
		    labels, (unsigned long long)copy[i].count);
	}
	metrics_put(&mb, "# HELP wharf_http_request_duration_seconds Time "
	    "from request headers to response queued.\n"
	    "# TYPE wharf_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < used; i++)
		metrics_render_histogram(&mb, &copy[i]);
	metrics_put(&mb, "# HELP wharf_http_metrics_dropped_total "
	    "Observations beyond the series limit.\n"
	    "# TYPE wharf_http_metrics_dropped_total counter\n"
	    "wharf_http_metrics_dropped_total %llu\n",
	    (unsigned long long)dropped);
	free(copy);
	if (mb.failed) {
		free(mb.data);
		return -1;
	}
	*out = mb.data;
	*len = mb.len;
	return 0;
}
