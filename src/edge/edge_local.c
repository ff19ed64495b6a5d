/*
 * edge_local: each loop thread's own caches, in front of the shared
 * ones of edge_site.c, so that a request for a hot site takes no lock.
 *
 * Each cache is a small direct-mapped table (slot = hash of the key),
 * touched only by its thread; a collision simply replaces the slot.
 * An entry holds a reference to what it caches and is valid while:
 *
 *   hosts    no pointer has flipped since the lookup (the generation
 *            is unchanged), EDGE_LOCAL_TTL_MS have not passed (names
 *            of custom domains and builds change without a flip), and
 *            the shared cache still holds the manifest;
 *   bodies   the shared cache still holds the body, so that its byte
 *            bound stays the edge's real bound;
 *   files    always: objects never change, and an open descriptor
 *            keeps serving the bytes it was opened on.
 *
 * The threads register their caches in e->locals (under e->lock, once)
 * so that edge_local_fini can free them after the threads have ended.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "edge/edge_impl.h"
#include "store/store.h"

struct edge_local_host {
	uint64_t                hash;
	uint64_t                gen;
	int64_t                 expires;
	struct edge_manifest   *m;
	char                    host[STORE_HOST_MAX + 8];
};

struct edge_local {
	struct edge            *e;
	struct edge_local      *next;
	struct edge_local_host  hosts[EDGE_LOCAL_HOSTS];
	struct edge_body       *bodies[EDGE_LOCAL_BODIES];
	struct edge_fobj       *files[EDGE_LOCAL_FILES];
};

static _Thread_local struct edge_local *edge_local_cur;

/*
 * FNV-1a taken eight bytes at a step, then mixed so that the low bits,
 * which pick the slot, depend on every byte.  Keys are short and no
 * adversary gains more than a cache miss; a step per byte was 1% of
 * the edge's CPU under wrk.
 */
static uint64_t
edge_local_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull, w;
	size_t n = strlen(s);

	for (; n >= sizeof(w); s += sizeof(w), n -= sizeof(w)) {
		memcpy(&w, s, sizeof(w));
		h = (h ^ w) * 1099511628211ull;
	}
	for (; n > 0; s++, n--)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h ^= h >> 32;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

struct edge_local *
edge_local(struct edge *e)
{
	struct edge_local *l = edge_local_cur;

	if (l != NULL && l->e == e)
		return l;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->e = e;
	pthread_mutex_lock(&e->lock);
	l->next = e->locals;
	e->locals = l;
	pthread_mutex_unlock(&e->lock);
	edge_local_cur = l;
	return l;
}

/* Hosts. */

static void
edge_local_host_drop(struct edge *e, struct edge_local_host *h)
{
	edge_manifest_put(e, h->m);
	h->m = NULL;
}

struct edge_manifest *
edge_local_host(struct edge_local *l, const char *host)
{
	uint64_t hash = edge_local_hash(host);
	struct edge_local_host *h = &l->hosts[hash % EDGE_LOCAL_HOSTS];

	if (h->m == NULL || h->hash != hash || strcmp(h->host, host) != 0)
		return NULL;
	if (h->gen != edge_site_generation() ||
	    h->expires <= util_now_ms() || !atomic_load(&h->m->cached)) {
		edge_local_host_drop(l->e, h);
		return NULL;
	}
	atomic_fetch_add(&h->m->refs, 1);
	return h->m;
}

void
edge_local_host_set(struct edge_local *l, const char *host, uint64_t gen,
    struct edge_manifest *m)
{
	uint64_t hash = edge_local_hash(host);
	struct edge_local_host *h = &l->hosts[hash % EDGE_LOCAL_HOSTS];

	/* Not worth keeping: a lookup that raced a flip, or a manifest the
	 * shared cache did not take. */
	if (gen != edge_site_generation() || !atomic_load(&m->cached) ||
	    strlen(host) >= sizeof(h->host))
		return;
	edge_local_host_drop(l->e, h);
	atomic_fetch_add(&m->refs, 1);
	h->m = m;
	h->hash = hash;
	h->gen = gen;
	h->expires = util_now_ms() + EDGE_LOCAL_TTL_MS;
	strcpy(h->host, host);
}

struct edge_manifest *
edge_site_for_host(struct edge *e, const char *host)
{
	struct edge_local *l = host != NULL ? edge_local(e) : NULL;
	struct edge_manifest *m;
	uint64_t gen;

	if (l != NULL && (m = edge_local_host(l, host)) != NULL)
		return m;
	gen = edge_site_generation();   /* before the lookup: see _set */
	m = edge_site_lookup(e, host);
	if (l != NULL && m != NULL)
		edge_local_host_set(l, host, gen, m);
	return m;
}

/* Bodies. */

struct edge_body *
edge_local_body(struct edge_local *l, const char *key, uint64_t size)
{
	struct edge_body **slot =
	    &l->bodies[edge_local_hash(key) % EDGE_LOCAL_BODIES];
	struct edge_body *b = *slot;

	if (b == NULL || b->len != size || strcmp(b->key, key) != 0)
		return NULL;
	if (!atomic_load(&b->cached)) {         /* evicted from the bound */
		edge_body_put(l->e, b);
		*slot = NULL;
		return NULL;
	}
	atomic_fetch_add(&b->refs, 1);
	return b;
}

void
edge_local_body_set(struct edge_local *l, struct edge_body *b)
{
	struct edge_body **slot =
	    &l->bodies[edge_local_hash(b->key) % EDGE_LOCAL_BODIES];

	if (!atomic_load(&b->cached))
		return;
	edge_body_put(l->e, *slot);
	atomic_fetch_add(&b->refs, 1);
	*slot = b;
}

struct edge_body *
edge_body_get(struct edge *e, const char *key, uint64_t size)
{
	struct edge_local *l = edge_local(e);
	struct edge_body *b;

	if (l != NULL && (b = edge_local_body(l, key, size)) != NULL)
		return b;
	b = edge_body_lookup(e, key, size);
	if (l != NULL && b != NULL)
		edge_local_body_set(l, b);
	return b;
}

/* Open objects. */

void
edge_fobj_put(struct edge_fobj *f)
{
	if (f != NULL && --f->refs == 0) {
		close(f->fd);
		free(f);
	}
}

static struct edge_fobj *
edge_fobj_open(struct edge *e, const char *key, uint64_t size)
{
	size_t n = strlen(key) + 1;
	struct edge_fobj *f = malloc(sizeof(*f) + n);
	uint64_t real;

	if (f == NULL)
		return NULL;
	if (blob_open_fd(e->blob, key, &f->fd, &real) != 0) {
		free(f);
		return NULL;
	}
	if (real != size) {                     /* not the manifest's object */
		close(f->fd);
		free(f);
		return NULL;
	}
	f->refs = 1;
	f->size = size;
	memcpy(f->key, key, n);
	return f;
}

struct edge_fobj *
edge_local_file(struct edge *e, struct edge_local *l, const char *key,
    uint64_t size)
{
	struct edge_fobj **slot, *f;

	if (l == NULL)
		return edge_fobj_open(e, key, size);
	slot = &l->files[edge_local_hash(key) % EDGE_LOCAL_FILES];
	f = *slot;
	if (f == NULL || f->size != size || strcmp(f->key, key) != 0) {
		if ((f = edge_fobj_open(e, key, size)) == NULL)
			return NULL;
		edge_fobj_put(*slot);   /* responses may still hold it */
		*slot = f;
	}
	f->refs++;
	return f;
}

void
edge_local_fini(struct edge *e)
{
	struct edge_local *l, *next;

	for (l = e->locals; l != NULL; l = next) {
		next = l->next;
		for (size_t i = 0; i < EDGE_LOCAL_HOSTS; i++)
			edge_local_host_drop(e, &l->hosts[i]);
		for (size_t i = 0; i < EDGE_LOCAL_BODIES; i++)
			edge_body_put(e, l->bodies[i]);
		for (size_t i = 0; i < EDGE_LOCAL_FILES; i++)
			edge_fobj_put(l->files[i]);
		free(l);
	}
	e->locals = NULL;
}
