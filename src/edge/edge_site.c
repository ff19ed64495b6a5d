/*
 * edge_site: from a Host header to the manifest that answers it, and
 * the caches that keep the request path off the database.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "blob/blob.h"
#include "core/log.h"
#include "edge/edge_impl.h"
#include "store/store.h"

/*
 * A tenant's current deployment, or a remembered absence.  Every cached
 * value starts with its expiry, which edge_cached reads.
 */
struct edge_pointer {
	int64_t expires;                        /* 0: until invalidated */
	char    deployment[WHARF_ID_LEN + 1];  /* "" when none */
	char    manifest_key[256];
	char    tenant[WHARF_SLUG_MAX + 1];
};

/* Older deployments of a tenant that skew protection may serve. */
struct edge_skew {
	int64_t expires;
	size_t  n;
	struct edge_pointer d[EDGE_SKEW_MAX];
};

/* Moves on every flip, of any tenant: what was looked up before a
 * move may be old.  Process-wide, as flips are. */
static _Atomic uint64_t edge_generation;

uint64_t
edge_site_generation(void)
{
	return atomic_load(&edge_generation);
}

/* Pointers. */

static void
edge_free_value(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	free(value);
}

/* Caches p under key in map (the lock held by the caller). */
static void
edge_remember(struct edge_map *map, const char *key, const void *value,
    size_t size)
{
	void *copy = malloc(size);

	if (copy == NULL)
		return;
	memcpy(copy, value, size);
	free(edge_map_put(map, key, copy));
}

/* A cached entry of map under key still valid, copied into out. */
static bool
edge_cached(struct edge *e, struct edge_map *map, const char *key,
    void *out, size_t size)
{
	const int64_t *expires;
	bool hit = false;

	pthread_mutex_lock(&e->lock);
	expires = edge_map_get(map, key);
	if (expires != NULL && (*expires == 0 || *expires > util_now_ms())) {
		memcpy(out, expires, size);
		hit = true;
	}
	pthread_mutex_unlock(&e->lock);
	return hit;
}

static void
edge_pointer_from(struct edge_pointer *p, const struct store_deployment *d)
{
	_Static_assert(sizeof(p->deployment) == sizeof(d->id), "id size");
	_Static_assert(sizeof(p->manifest_key) == sizeof(d->manifest_key),
	    "key size");
	_Static_assert(sizeof(p->tenant) == sizeof(d->tenant), "slug size");
	memcpy(p->deployment, d->id, sizeof(p->deployment));
	memcpy(p->manifest_key, d->manifest_key, sizeof(p->manifest_key));
	memcpy(p->tenant, d->tenant, sizeof(p->tenant));
}

/* The tenant's current deployment; -1 when it has none. */
static int
edge_pointer_get(struct edge *e, const char *tenant, struct edge_pointer *p)
{
	uint64_t gen = atomic_load(&edge_generation);
	struct store_deployment d;
	enum store_result r;

	if (edge_cached(e, e->pointers, tenant, p, sizeof(*p)))
		return p->deployment[0] ? 0 : -1;

	memset(p, 0, sizeof(*p));
	r = store_deployment_current(e->store, tenant, &d);
	if (r == STORE_OK)
		edge_pointer_from(p, &d);
	else if (r == STORE_NOT_FOUND)
		p->expires = util_now_ms() + EDGE_NEGATIVE_TTL_MS;
	else
		return -1;              /* not cached: the next try asks again */

	/* A flip during the query: what was read may be old; keep it out. */
	pthread_mutex_lock(&e->lock);
	if (atomic_load(&edge_generation) == gen)
		edge_remember(e->pointers, tenant, p, sizeof(*p));
	pthread_mutex_unlock(&e->lock);
	return p->deployment[0] ? 0 : -1;
}

/* The deployment of an immutable <build>--<tenant> name. */
static int
edge_pointer_of_build(struct edge *e, const char *tenant,
    const char *build_id, struct edge_pointer *p)
{
	struct store_deployment d;
	char key[WHARF_ID_LEN + WHARF_SLUG_MAX + 8];
	enum store_result r;

	snprintf(key, sizeof(key), "b:%s/%s", tenant, build_id);
	if (edge_cached(e, e->names, key, p, sizeof(*p)))
		return p->deployment[0] ? 0 : -1;

	memset(p, 0, sizeof(*p));
	r = store_deployment_of_build(e->store, tenant, build_id, &d);
	if (r == STORE_OK && strcmp(d.status, "pending") != 0 &&
	    strcmp(d.status, "failed") != 0)
		edge_pointer_from(p, &d);
	else if (r == STORE_ERROR)
		return -1;
	p->expires = util_now_ms() + (p->deployment[0] ? EDGE_NAME_TTL_MS :
	    EDGE_NEGATIVE_TTL_MS);
	pthread_mutex_lock(&e->lock);
	edge_remember(e->names, key, p, sizeof(*p));
	pthread_mutex_unlock(&e->lock);
	return p->deployment[0] ? 0 : -1;
}

/* The tenant of a custom domain, kept EDGE_NAME_TTL_MS. */
static int
edge_tenant_of_domain(struct edge *e, const char *host, char *tenant)
{
	char key[STORE_HOST_MAX + 4];
	struct edge_pointer p;
	enum store_result r;

	snprintf(key, sizeof(key), "h:%s", host);
	if (!edge_cached(e, e->names, key, &p, sizeof(p))) {
		memset(&p, 0, sizeof(p));
		r = store_domain_lookup(e->store, host, p.tenant);
		if (r == STORE_ERROR)
			return -1;
		if (r != STORE_OK)
			p.tenant[0] = '\0';
		p.expires = util_now_ms() + EDGE_NAME_TTL_MS;
		pthread_mutex_lock(&e->lock);
		edge_remember(e->names, key, &p, sizeof(p));
		pthread_mutex_unlock(&e->lock);
	}
	snprintf(tenant, WHARF_SLUG_MAX + 1, "%s", p.tenant);
	return tenant[0] ? 0 : -1;
}

/* Manifests. */

static int
edge_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct edge_file *)a)->path,
	    ((const struct edge_file *)b)->path);
}

const struct edge_file *
edge_manifest_find(const struct edge_manifest *m, const char *path)
{
	struct edge_file key = { .path = path };

	return bsearch(&key, m->files, m->nfiles, sizeof(*m->files),
	    edge_file_cmp);
}

static void
edge_manifest_free(struct edge_manifest *m)
{
	if (m == NULL)
		return;
	rules_redirects_free(m->redirects);
	rules_headers_free(m->headers);
	free(m->files);
	free(m->arena);
	free(m);
}

void
edge_manifest_put(struct edge *e, struct edge_manifest *m)
{
	(void)e;
	if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1)
		edge_manifest_free(m);
}

/* Copies the files of the manifest JSON into m's arrays. */
static int
edge_manifest_files(struct edge_manifest *m, json_t *files)
{
	size_t arena = 0, o = 0, i = 0;
	const char *path;
	json_t *f;

	json_object_foreach(files, path, f)
		arena += strlen(path) + 1 + strlen(json_string_value(
		    json_object_get(f, "type")) ?: "") + 1;
	m->nfiles = json_object_size(files);
	m->files = calloc(m->nfiles ? m->nfiles : 1, sizeof(*m->files));
	m->arena = malloc(arena ? arena : 1);
	if (m->files == NULL || m->arena == NULL)
		return -1;

	json_object_foreach(files, path, f) {
		struct edge_file *ef = &m->files[i++];
		const char *hash = json_string_value(json_object_get(f,
		    "hash"));
		const char *type = json_string_value(json_object_get(f,
		    "type")) ?: "";

		if (hash == NULL || strlen(hash) != 64)
			return -1;
		memcpy(ef->hash, hash, 65);
		ef->size = (uint64_t)json_integer_value(json_object_get(f,
		    "size"));
		ef->gzip = (uint64_t)json_integer_value(json_object_get(f,
		    "gzip"));
		ef->br = (uint64_t)json_integer_value(json_object_get(f, "br"));
		ef->path = strcpy(m->arena + o, path);
		o += strlen(path) + 1;
		ef->type = strcpy(m->arena + o, type);
		o += strlen(type) + 1;
	}
	qsort(m->files, m->nfiles, sizeof(*m->files), edge_file_cmp);
	m->bytes = sizeof(*m) + arena + m->nfiles * sizeof(*m->files);
	return 0;
}

/* Reads and parses one manifest; NULL (logged) when it cannot. */
static struct edge_manifest *
edge_manifest_load(struct edge *e, const struct edge_pointer *p)
{
	struct edge_manifest *m = NULL;
	char err[256], *text = NULL;
	json_t *root = NULL;
	size_t len;
	int r;

	r = blob_get(e->blob, p->manifest_key, EDGE_MANIFEST_MAX, &text,
	    &len);
	if (r != 0)
		goto fail;
	root = json_loadb(text, len, 0, NULL);
	m = calloc(1, sizeof(*m));
	if (root == NULL || m == NULL ||
	    edge_manifest_files(m, json_object_get(root, "files")) != 0 ||
	    rules_redirects_from_json(json_object_get(root, "redirects"),
	    &m->redirects, err, sizeof(err)) != 0 ||
	    rules_headers_from_json(json_object_get(root, "headers"),
	    &m->headers, err, sizeof(err)) != 0) {
		r = -EINVAL;
		goto fail;
	}
	snprintf(m->id, sizeof(m->id), "%s", p->deployment);
	snprintf(m->tenant, sizeof(m->tenant), "%s", p->tenant);
	snprintf(m->build_id, sizeof(m->build_id), "%s",
	    json_string_value(json_object_get(root, "buildId")) ?: "");
	atomic_init(&m->refs, 1);
	json_decref(root);
	free(text);
	return m;
fail:
	log_warnx("edge.manifest_unreadable", "tenant=%s deployment=%s "
	    "key=%s err=%d", p->tenant, p->deployment, p->manifest_key, r);
	edge_manifest_free(m);
	json_decref(root);
	free(text);
	return NULL;
}

static void
edge_lru_unlink(struct edge *e, struct edge_manifest *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		e->m_head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		e->m_tail = m->prev;
	m->prev = m->next = NULL;
}

static void
edge_lru_front(struct edge *e, struct edge_manifest *m)
{
	m->next = e->m_head;
	m->prev = NULL;
	if (e->m_head)
		e->m_head->prev = m;
	e->m_head = m;
	if (e->m_tail == NULL)
		e->m_tail = m;
}

/* Drops least recently used manifests past the bound (lock held). */
static void
edge_manifest_evict(struct edge *e)
{
	while (e->m_bytes > EDGE_MANIFEST_BYTES && e->m_tail != NULL &&
	    e->m_tail != e->m_head) {
		struct edge_manifest *m = e->m_tail;

		edge_lru_unlink(e, m);
		edge_map_del(e->manifests, m->id);
		e->m_bytes -= m->bytes;
		atomic_store(&m->cached, false);
		edge_manifest_put(e, m);
	}
}

/* The manifest of p's deployment, referenced. */
static struct edge_manifest *
edge_manifest_get(struct edge *e, const struct edge_pointer *p)
{
	struct edge_manifest *m, *loaded;

	pthread_mutex_lock(&e->lock);
	m = edge_map_get(e->manifests, p->deployment);
	if (m != NULL) {
		atomic_fetch_add(&m->refs, 1);
		edge_lru_unlink(e, m);
		edge_lru_front(e, m);
	}
	pthread_mutex_unlock(&e->lock);
	if (m != NULL)
		return m;

	loaded = edge_manifest_load(e, p);
	if (loaded == NULL)
		return NULL;
	pthread_mutex_lock(&e->lock);
	m = edge_map_get(e->manifests, p->deployment);
	if (m == NULL && edge_map_put(e->manifests, p->deployment,
	    loaded) == NULL && edge_map_get(e->manifests, p->deployment)) {
		m = loaded;
		loaded = NULL;
		atomic_store(&m->cached, true);
		atomic_fetch_add(&m->refs, 1);          /* the cache's */
		edge_lru_front(e, m);
		e->m_bytes += m->bytes;
		edge_manifest_evict(e);
	}
	if (m != NULL && loaded != NULL)
		atomic_fetch_add(&m->refs, 1);
	pthread_mutex_unlock(&e->lock);
	if (loaded != NULL && m != NULL)
		edge_manifest_put(e, loaded);   /* another thread won */
	return m != NULL ? m : loaded;
}

void
edge_invalidate(void *ctx, const char *tenant)
{
	struct edge *e = ctx;
	struct edge_pointer p;

	atomic_fetch_add(&edge_generation, 1);
	pthread_mutex_lock(&e->lock);
	free(edge_map_del(e->pointers, tenant));
	pthread_mutex_unlock(&e->lock);

	/*
	 * Read the new pointer and its manifest now, on the flipping
	 * thread (a deploy, or the poll thread), so that the first
	 * request after the flip finds them cached instead of querying
	 * the database and the blob store on a loop thread.  A flip that
	 * races this one keeps what is read here out of the cache.
	 */
	if (edge_pointer_get(e, tenant, &p) == 0)
		edge_manifest_put(e, edge_manifest_get(e, &p));
}

/* Hosts. */

/* Lowercase host without its port, into out; -1 when unusable. */
static int
edge_host_clean(const char *host, char *out, size_t len)
{
	size_t n = 0;

	if (host == NULL || host[0] == '[')
		return -1;
	for (; *host && *host != ':'; host++) {
		unsigned char c = (unsigned char)*host;

		if (n + 1 >= len || !(isalnum(c) || c == '-' || c == '.'))
			return -1;
		out[n++] = (char)tolower(c);
	}
	if (n > 0 && out[n - 1] == '.')         /* "acme.localhost." */
		n--;
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

struct edge_manifest *
edge_site_lookup(struct edge *e, const char *host)
{
	char name[STORE_HOST_MAX + 1], tenant[WHARF_SLUG_MAX + 1];
	struct edge_pointer p;
	char *label_end, *sep;
	size_t n;
	int r;

	if (edge_host_clean(host, name, sizeof(name)) != 0)
		return NULL;
	n = strlen(name);
	label_end = name + n - e->domain_len - 1;
	if (n > e->domain_len + 1 && *label_end == '.' &&
	    strcmp(label_end + 1, e->cfg->sites_domain) == 0) {
		/* One label under the sites domain. */
		if (memchr(name, '.', (size_t)(label_end - name)) != NULL ||
		    (size_t)(label_end - name) > WHARF_ID_LEN + 2 +
		    WHARF_SLUG_MAX)
			return NULL;
		*label_end = '\0';
		sep = strstr(name, "--");
		if (sep != NULL && sep - name == WHARF_ID_LEN) {
			*sep = '\0';
			r = edge_pointer_of_build(e, sep + 2, name, &p);
		} else
			r = edge_pointer_get(e, name, &p);
	} else {
		r = edge_tenant_of_domain(e, name, tenant);
		if (r == 0)
			r = edge_pointer_get(e, tenant, &p);
	}
	return r == 0 ? edge_manifest_get(e, &p) : NULL;
}

/* Skew protection. */

static int
edge_skew_list(struct edge *e, const char *tenant, struct edge_skew *s)
{
	struct store_deployment d[EDGE_SKEW_MAX];
	char key[WHARF_SLUG_MAX + 4];
	size_t count = 0;

	snprintf(key, sizeof(key), "s:%s", tenant);
	if (edge_cached(e, e->names, key, s, sizeof(*s)))
		return 0;
	memset(s, 0, sizeof(*s));
	if (store_deployment_recent(e->store, tenant, util_now_ms() -
	    EDGE_SKEW_WINDOW_MS, d, EDGE_SKEW_MAX, &count) == STORE_ERROR)
		return -1;
	for (size_t i = 0; i < count; i++)
		edge_pointer_from(&s->d[s->n++], &d[i]);
	s->expires = util_now_ms() + EDGE_NAME_TTL_MS;
	pthread_mutex_lock(&e->lock);
	edge_remember(e->names, key, s, sizeof(*s));
	pthread_mutex_unlock(&e->lock);
	return 0;
}

struct edge_manifest *
edge_site_skew(struct edge *e, const struct edge_manifest *current,
    const char *path, const struct edge_file **file)
{
	struct edge_skew *s = malloc(sizeof(*s));
	struct edge_manifest *m = NULL;

	if (s == NULL || edge_skew_list(e, current->tenant, s) != 0)
		goto out;
	for (size_t i = 0; i < s->n && m == NULL; i++) {
		if (strcmp(s->d[i].deployment, current->id) == 0)
			continue;
		m = edge_manifest_get(e, &s->d[i]);
		if (m == NULL)
			continue;
		*file = edge_manifest_find(m, path);
		if (*file == NULL) {
			edge_manifest_put(e, m);
			m = NULL;
		}
	}
out:
	free(s);
	return m;
}

/* Bodies of small files. */

static void
edge_body_unlink(struct edge *e, struct edge_body *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		e->b_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		e->b_tail = b->prev;
	b->prev = b->next = NULL;
}

static void
edge_body_front(struct edge *e, struct edge_body *b)
{
	b->next = e->b_head;
	b->prev = NULL;
	if (e->b_head)
		e->b_head->prev = b;
	e->b_head = b;
	if (e->b_tail == NULL)
		e->b_tail = b;
}

void
edge_body_put(struct edge *e, struct edge_body *b)
{
	(void)e;
	if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1) {
		free(b->key);
		free(b);
	}
}

static void
edge_body_evict(struct edge *e)
{
	while (e->b_bytes > EDGE_BODY_BYTES && e->b_tail != NULL &&
	    e->b_tail != e->b_head) {
		struct edge_body *b = e->b_tail;

		edge_body_unlink(e, b);
		edge_map_del(e->bodies, b->key);
		e->b_bytes -= b->len;
		atomic_store(&b->cached, false);
		edge_body_put(e, b);
	}
}

static struct edge_body *
edge_body_load(struct edge *e, const char *key, uint64_t size)
{
	struct edge_body *b;
	char *data = NULL;
	size_t len = 0;

	if (blob_get(e->blob, key, EDGE_BODY_MAX, &data, &len) != 0)
		return NULL;
	if (len != size) {                      /* not the manifest's object */
		free(data);
		return NULL;
	}
	b = malloc(sizeof(*b) + len);
	if (b == NULL || (b->key = strdup(key)) == NULL) {
		free(b);
		free(data);
		return NULL;
	}
	memcpy(b->data, data, len);
	free(data);
	b->len = len;
	b->prev = b->next = NULL;
	atomic_init(&b->cached, false);
	atomic_init(&b->refs, 1);
	return b;
}

struct edge_body *
edge_body_lookup(struct edge *e, const char *key, uint64_t size)
{
	struct edge_body *b, *loaded;

	pthread_mutex_lock(&e->lock);
	b = edge_map_get(e->bodies, key);
	if (b != NULL) {
		atomic_fetch_add(&b->refs, 1);
		edge_body_unlink(e, b);
		edge_body_front(e, b);
	}
	pthread_mutex_unlock(&e->lock);
	if (b != NULL)
		return b;

	loaded = edge_body_load(e, key, size);
	if (loaded == NULL)
		return NULL;
	pthread_mutex_lock(&e->lock);
	b = edge_map_get(e->bodies, key);
	if (b != NULL) {
		atomic_fetch_add(&b->refs, 1);
	} else if (edge_map_put(e->bodies, key, loaded) == NULL &&
	    edge_map_get(e->bodies, key) == loaded) {
		atomic_store(&loaded->cached, true);
		atomic_fetch_add(&loaded->refs, 1);     /* the cache's */
		edge_body_front(e, loaded);
		e->b_bytes += loaded->len;
		edge_body_evict(e);
	}
	pthread_mutex_unlock(&e->lock);
	if (b != NULL) {
		edge_body_put(e, loaded);
		return b;
	}
	return loaded;
}

/* Pointer flips from other processes. */

static int
edge_poll_flip(void *ctx, const char *tenant, const char *deployment_id)
{
	(void)deployment_id;
	edge_invalidate(ctx, tenant);
	return 0;
}

void *
edge_site_poll_main(void *arg)
{
	struct edge *e = arg;
	struct timespec ts;

	pthread_mutex_lock(&e->poll_lock);
	while (!e->stopping) {
		pthread_mutex_unlock(&e->poll_lock);
		if (store_pointer_changes(e->store, &e->pointer_seq,
		    edge_poll_flip, e) == STORE_ERROR)
			log_warnx("edge.poll_failed", "msg=\"cannot read pointer "
			    "changes; retrying\"");
		pthread_mutex_lock(&e->poll_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)EDGE_POINTER_POLL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!e->stopping)
			pthread_cond_timedwait(&e->poll_cond, &e->poll_lock,
			    &ts);
	}
	pthread_mutex_unlock(&e->poll_lock);
	return NULL;
}

static void
edge_drop_manifest(void *ctx, const char *key, void *value)
{
	(void)key;
	edge_manifest_put(ctx, value);
}

static void
edge_drop_body(void *ctx, const char *key, void *value)
{
	(void)key;
	edge_body_put(ctx, value);
}

int
edge_site_init(struct edge *e)
{
	e->domain_len = strlen(e->cfg->sites_domain);
	e->pointers = edge_map_new();
	e->manifests = edge_map_new();
	e->bodies = edge_map_new();
	e->names = edge_map_new();
	if (e->pointers == NULL || e->manifests == NULL ||
	    e->bodies == NULL || e->names == NULL)
		return -1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->poll_lock, NULL);
	pthread_cond_init(&e->poll_cond, NULL);
	return 0;
}

void
edge_site_fini(struct edge *e)
{
	edge_local_fini(e);
	if (e->pointers)
		edge_map_each(e->pointers, edge_free_value, NULL);
	if (e->names)
		edge_map_each(e->names, edge_free_value, NULL);
	if (e->manifests)
		edge_map_each(e->manifests, edge_drop_manifest, e);
	if (e->bodies)
		edge_map_each(e->bodies, edge_drop_body, e);
	edge_map_free(e->pointers);
	edge_map_free(e->names);
	edge_map_free(e->manifests);
	edge_map_free(e->bodies);
}
