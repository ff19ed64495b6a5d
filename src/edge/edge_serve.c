/*
 * edge_serve: one request of a site, answered from one manifest.
 *
 *   1. the Host names a site (edge_site.c), else a plain 404 page;
 *   2. the path is normalised; one that would leave the site is 404;
 *   3. _redirects: a forced rule applies first; others only when no
 *      file answers the path;
 *   4. the file: the path, path.html, path/index.html;
 *   5. not found: a fingerprinted asset of a deployment of the last
 *      hour (skew protection), else 404.html with 404, else index.html
 *      with 200 (SPA fallback), else a plain 404;
 *   6. the response: ETag and 304, Range and 416, the encoding
 *      Accept-Encoding allows, Cache-Control, _headers, nosniff.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/log.h"
#include "edge/edge_impl.h"
#include "edge/http1.h"
#include "edge/httputil.h"

static const char edge_no_site[] =
    "<!doctype html><title>404 Not Found</title>"
    "<h1>404 Not Found</h1><p>No site is deployed at this address.</p>\n";
static const char edge_not_found[] =
    "<!doctype html><title>404 Not Found</title>"
    "<h1>404 Not Found</h1><p>This page does not exist.</p>\n";

/* What one request resolved to. */
struct edge_hit {
	struct edge_manifest   *m;      /* referenced */
	const struct edge_file *f;
	int                     status;
};

static void
edge_plain(struct edge_response *resp, int status, const char *html)
{
	edge_response_status(resp, status);
	edge_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	edge_response_header(resp, "Cache-Control", "no-cache");
	edge_response_header(resp, "X-Content-Type-Options", "nosniff");
	edge_response_body_mem(resp, html, strlen(html), NULL, NULL);
}

/* The file for a clean URL: path, path.html, path/index.html. */
static const struct edge_file *
edge_find(const struct edge_manifest *m, const char *path)
{
	char alt[EDGE_PATH_MAX + 16];
	const struct edge_file *f;
	size_t n = strlen(path);

	if (n > 0 && path[n - 1] == '/') {
		snprintf(alt, sizeof(alt), "%sindex.html", path);
		return edge_manifest_find(m, alt);
	}
	if ((f = edge_manifest_find(m, path)) != NULL)
		return f;
	snprintf(alt, sizeof(alt), "%s.html", path);
	if ((f = edge_manifest_find(m, alt)) != NULL)
		return f;
	snprintf(alt, sizeof(alt), "%s/index.html", path);
	return edge_manifest_find(m, alt);
}

static bool
edge_is_html(const struct edge_file *f)
{
	return strncmp(f->type, "text/html", 9) == 0;
}

/*
 * The _redirects rule for path, if one applies.  Returns 0 when none
 * does, the status of a redirect to send (Location in target), or 200
 * and 404 with target the path to serve instead.
 */
static int
edge_redirect(const struct edge_manifest *m, const char *path,
    const char *query, bool file_exists, char *target, size_t len)
{
	int status = 0, r;
	bool force = false;

	if (m->redirects == NULL)
		return 0;
	if (file_exists)
		r = rules_redirect_match_forced(m->redirects, path, query,
		    target, len, &status, &force);
	else
		r = rules_redirect_match(m->redirects, path, query, target,
		    len, &status, &force);
	return r == 1 ? status : 0;
}

/* Steps 3 to 5: the file that answers path, and with what status. */
static int
edge_resolve(struct edge *e, struct edge_hit *hit, const char *path,
    const char *query, struct edge_response *resp)
{
	char target[RULES_TARGET_MAX], clean[EDGE_PATH_MAX + 1];
	const struct edge_file *f = edge_find(hit->m, path);
	int status;

	status = edge_redirect(hit->m, path, query, f != NULL, target,
	    sizeof(target));
	if (status == 301 || status == 302) {
		edge_response_status(resp, status);
		edge_response_header(resp, "Location", target);
		edge_response_header(resp, "Cache-Control", "no-cache");
		edge_response_body_mem(resp, NULL, 0, NULL, NULL);
		return 1;
	}
	if ((status == 200 || status == 404) &&
	    edge_path_normalize(target, clean, sizeof(clean)) == 0) {
		f = edge_find(hit->m, clean);
		hit->status = status;
	} else
		hit->status = 200;
	if (f != NULL) {
		hit->f = f;
		return 0;
	}

	/* A fingerprinted asset of a page loaded before the last deploy. */
	if (edge_path_fingerprinted(path)) {
		struct edge_manifest *old = edge_site_skew(e, hit->m, path,
		    &hit->f);

		if (old != NULL) {
			edge_manifest_put(e, hit->m);
			hit->m = old;
			hit->status = 200;
			return 0;
		}
	}
	hit->status = 404;
	if ((hit->f = edge_manifest_find(hit->m, "/404.html")) != NULL)
		return 0;
	if ((hit->f = edge_manifest_find(hit->m, "/index.html")) != NULL) {
		hit->status = 200;              /* SPA fallback */
		return 0;
	}
	edge_plain(resp, 404, edge_not_found);
	return 1;
}

static void
edge_release_body(void *arg)
{
	struct edge_body *b = arg;

	edge_body_put(NULL, b);
}

static void
edge_release_fobj(void *arg)
{
	edge_fobj_put(arg);
}

/*
 * The object's bytes into the response: a small one from memory, a
 * larger one by sendfile from a descriptor the thread keeps open.
 * Memory wins for small files (one send for head and body); past
 * EDGE_BODY_MAX sendfile does, as it spares the copy into the heap.
 */
static int
edge_body(struct edge *e, struct edge_response *resp, const char *key,
    uint64_t size, uint64_t start, uint64_t len)
{
	struct edge_body *b;
	struct edge_fobj *f;

	if (size <= EDGE_BODY_MAX) {
		b = edge_body_get(e, key, size);
		if (b == NULL)
			return -1;
		edge_response_body_mem(resp, b->data + start, (size_t)len,
		    edge_release_body, b);
		return 0;
	}
	f = edge_local_file(e, edge_local(e), key, size);
	if (f == NULL)
		return -1;
	edge_response_body_file(resp, f->fd, (off_t)start, (size_t)len,
	    edge_release_fobj, f);
	return 0;
}

/* The value _headers gives name for this path, or NULL. */
static const char *
edge_rules_value(const struct rules_header_list *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcasecmp(list->fields[i].name, name) == 0)
			return list->fields[i].value;
	return NULL;
}

/*
 * The headers of the response: ours, where _headers may replace
 * Content-Type and Cache-Control and extend Vary, then the rest of
 * _headers.  Not Cache-Control on an error page: a 404 is never
 * cached as if it were an asset.
 */
static void
edge_headers(struct edge_response *resp, const struct rules_header_list *list,
    const char *type, const char *cache, bool vary, bool error)
{
	const char *v;
	char joined[512];

	v = edge_rules_value(list, "Content-Type");
	edge_response_header(resp, "Content-Type", v ? v : type);
	v = error ? NULL : edge_rules_value(list, "Cache-Control");
	edge_response_header(resp, "Cache-Control", v ? v : cache);
	edge_response_header(resp, "X-Content-Type-Options", "nosniff");
	v = edge_rules_value(list, "Vary");
	if (v != NULL && vary) {
		snprintf(joined, sizeof(joined), "%s, Accept-Encoding", v);
		edge_response_header(resp, "Vary", joined);
	} else if (v != NULL || vary)
		edge_response_header(resp, "Vary", v ? v : "Accept-Encoding");
	for (size_t i = 0; i < list->count; i++) {
		const char *name = list->fields[i].name;

		if (strcasecmp(name, "Content-Type") != 0 &&
		    strcasecmp(name, "Cache-Control") != 0 &&
		    strcasecmp(name, "Vary") != 0 &&
		    strcasecmp(name, "X-Content-Type-Options") != 0)
			edge_response_header(resp, name,
			    list->fields[i].value);
	}
}

/*
 * dst (cap bytes) becomes the n parts joined, cut to fit as snprintf
 * would: what every response builds its object key and ETag with,
 * where snprintf's reading of a format showed in profiles.
 */
static void
edge_join(char *dst, size_t cap, const char *const *parts, size_t n)
{
	size_t used = 0;

	for (size_t i = 0; i < n && used + 1 < cap; i++) {
		size_t len = strlen(parts[i]);

		if (len > cap - 1 - used)
			len = cap - 1 - used;
		memcpy(dst + used, parts[i], len);
		used += len;
	}
	dst[used] = '\0';
}

static const char *
edge_header(const struct edge_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* Step 6: headers, validators, encoding, range, body. */
static void
edge_send(struct edge *e, const struct edge_request *req,
    struct edge_response *resp, struct edge_hit *hit, const char *path)
{
	const struct edge_file *f = hit->f;
	const char *range = edge_header(req, "Range");
	unsigned avail = (f->br ? EDGE_ENC_BR : 0) |
	    (f->gzip ? EDGE_ENC_GZIP : 0);
	struct rules_header_list list = { 0 };
	char key[BLOB_KEY_MAX], etag[80], crange[96];
	uint64_t size = f->size, start = 0, len;
	int enc = EDGE_ENC_IDENTITY, status = hit->status;

	/* Ranges count bytes of the file itself, never of a variant. */
	if (range == NULL && avail)
		enc = edge_accept_encoding(edge_header(req, "Accept-Encoding"),
		    avail);
	if (enc == EDGE_ENC_BR)
		size = f->br;
	else if (enc == EDGE_ENC_GZIP)
		size = f->gzip;
	edge_join(key, sizeof(key), (const char *const[]){ "tenants/",
	    hit->m->tenant, "/objects/", f->hash, enc == EDGE_ENC_BR ? ".br" :
	    enc == EDGE_ENC_GZIP ? ".gz" : "" }, 5);
	edge_join(etag, sizeof(etag), (const char *const[]){ "\"", f->hash,
	    enc == EDGE_ENC_BR ? "-br" : enc == EDGE_ENC_GZIP ? "-gz" : "",
	    "\"" }, 4);
	len = size;

	if (hit->m->headers == NULL ||
	    rules_headers_match(hit->m->headers, path, &list) != 0)
		list.count = 0;
	edge_headers(resp, &list, f->type, status == 200 ?
	    edge_cache_control(path, edge_is_html(f)) : "no-cache",
	    avail != 0, status != 200);
	rules_header_list_free(&list);
	if (enc != EDGE_ENC_IDENTITY)
		edge_response_header(resp, "Content-Encoding",
		    enc == EDGE_ENC_BR ? "br" : "gzip");
	if (status != 200) {
		edge_response_status(resp, status);
		goto body;
	}
	edge_response_header(resp, "ETag", etag);
	edge_response_header(resp, "Accept-Ranges", "bytes");
	if (edge_etag_match(edge_header(req, "If-None-Match"), etag)) {
		edge_response_status(resp, 304);
		edge_response_body_mem(resp, NULL, 0, NULL, NULL);
		return;
	}
	switch (edge_range_parse(range, size, &start, &len)) {
	case EDGE_RANGE_OK:
		status = 206;
		snprintf(crange, sizeof(crange), "bytes %llu-%llu/%llu",
		    (unsigned long long)start,
		    (unsigned long long)(start + len - 1),
		    (unsigned long long)size);
		edge_response_header(resp, "Content-Range", crange);
		break;
	case EDGE_RANGE_UNSATISFIABLE:
		snprintf(crange, sizeof(crange), "bytes */%llu",
		    (unsigned long long)size);
		edge_response_status(resp, 416);
		edge_response_header(resp, "Content-Range", crange);
		edge_response_body_mem(resp, NULL, 0, NULL, NULL);
		return;
	default:
		start = 0;
		len = size;
	}
	edge_response_status(resp, status);
body:
	if (edge_body(e, resp, key, size, start, len) != 0) {
		log_warnx("edge.object_missing", "tenant=%s deployment=%s "
		    "key=%s", hit->m->tenant, hit->m->id, key);
		edge_response_status(resp, 502);
		edge_response_body_mem(resp, NULL, 0, NULL, NULL);
	}
}

static void
edge_handle(void *ctx, const struct edge_request *req,
    struct edge_response *resp)
{
	struct edge *e = ctx;
	struct edge_hit hit = { 0 };
	char path[EDGE_PATH_MAX + 1];

	if (strcmp(req->method, "GET") != 0 && !req->head) {
		edge_response_status(resp, 405);
		edge_response_header(resp, "Allow", "GET, HEAD");
		edge_response_body_mem(resp, NULL, 0, NULL, NULL);
		return;
	}
	hit.m = edge_site_for_host(e, req->host);
	if (hit.m == NULL) {
		edge_plain(resp, 404, edge_no_site);
		return;
	}
	if (edge_path_normalize(req->path, path, sizeof(path)) != 0)
		edge_plain(resp, 404, edge_not_found);
	else if (edge_resolve(e, &hit, path, req->query, resp) == 0)
		edge_send(e, req, resp, &hit, path);
	edge_manifest_put(e, hit.m);
}

struct edge *
edge_start(const struct config *cfg, struct store *st, struct blob_store *bs,
    char *err, size_t errlen)
{
	struct edge *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->cfg = cfg;
	e->store = st;
	e->blob = bs;
	if (edge_site_init(e) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pthread_create(&e->poller, NULL, edge_site_poll_main, e) != 0) {
		snprintf(err, errlen, "cannot start the edge's poll thread");
		goto fail;
	}
	e->server = edge_server_start(cfg->edge_listen, cfg->edge_threads,
	    edge_handle, e, err, errlen);
	if (e->server != NULL)
		return e;
	edge_stop(e);
	return NULL;
fail:
	edge_site_fini(e);
	free(e);
	return NULL;
}

uint16_t
edge_port(const struct edge *e)
{
	return edge_server_port(e->server);
}

void
edge_stop(struct edge *e)
{
	if (e == NULL)
		return;
	if (e->server != NULL)
		edge_server_stop(e->server);
	pthread_mutex_lock(&e->poll_lock);
	e->stopping = true;
	pthread_cond_signal(&e->poll_cond);
	pthread_mutex_unlock(&e->poll_lock);
	pthread_join(e->poller, NULL);
	edge_site_fini(e);
	free(e);
}
