/*
 * edge_impl: what the edge's files share.  Private to src/edge/.
 *
 * The request path reads only memory: the caches below, filled from the
 * database and the blob store on a miss.
 *
 *   pointers   tenant -> its current deployment (id, manifest key);
 *              dropped on a flip (in process) or when the poll thread
 *              sees the pointer sequence move (other processes)
 *   manifests  deployment id -> parsed manifest, refcounted, LRU under
 *              a byte bound
 *   bodies     object key -> the bytes of a small file, refcounted,
 *              LRU under a byte bound; larger files go by sendfile
 *   names      custom host -> tenant, build id -> deployment, with a
 *              short time to live (negative answers too)
 *
 * Those are shared by the loop threads under one mutex.  In front of
 * them each loop thread keeps its own small caches (edge_local.c),
 * read without any lock: Host -> manifest (valid while no pointer has
 * flipped anywhere, and for at most EDGE_LOCAL_TTL_MS), object key ->
 * body (while the shared cache still holds it), and object key -> an
 * open descriptor for sendfile.  A hot site is thus served without
 * touching the mutex at all.
 *
 * A request takes one reference to one manifest and is answered from
 * it alone, so a flip in the middle of a request never mixes two
 * deployments.
 */
#ifndef WHARF_EDGE_IMPL_H
#define WHARF_EDGE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "deploy/rules.h"
#include "edge/edge.h"

#define EDGE_POINTER_POLL_MS    500
#define EDGE_MANIFEST_BYTES     (128u << 20)    /* manifests cached */
#define EDGE_BODY_BYTES         (256u << 20)    /* small files cached */
#define EDGE_BODY_MAX           (64u << 10)     /* larger: sendfile */
#define EDGE_NAME_TTL_MS        5000            /* hosts, builds */
#define EDGE_NEGATIVE_TTL_MS    1000            /* unknown tenants */
#define EDGE_SKEW_WINDOW_MS     (3600 * 1000)   /* skew protection */
#define EDGE_SKEW_MAX           8               /* older deployments */
#define EDGE_MANIFEST_MAX       (64u << 20)     /* one manifest's JSON */
#define EDGE_THREADS            2
#define EDGE_LOCAL_HOSTS        64              /* per loop thread */
#define EDGE_LOCAL_BODIES       256
#define EDGE_LOCAL_FILES        128             /* open descriptors */
#define EDGE_LOCAL_TTL_MS       1000

struct edge_map;

/* One file of a manifest. */
struct edge_file {
	const char *path;               /* "/css/site.css" */
	const char *type;
	char        hash[65];
	uint64_t    size;
	uint64_t    gzip, br;           /* variant sizes, 0: none */
};

struct edge_manifest {
	atomic_int              refs;
	char                    id[WHARF_ID_LEN + 1];      /* deployment */
	char                    build_id[WHARF_ID_LEN + 1];
	char                    tenant[WHARF_SLUG_MAX + 1];
	struct edge_file       *files;  /* sorted by path */
	size_t                  nfiles;
	char                   *arena;  /* the strings of files */
	struct rules_redirects *redirects;
	struct rules_headers   *headers;
	size_t                  bytes;  /* memory, for the bound */
	struct edge_manifest   *prev, *next;   /* LRU, under the lock */
	atomic_bool             cached; /* in the shared cache */
};

/* The bytes of one small object, lent to responses. */
struct edge_body {
	atomic_int          refs;
	char               *key;
	size_t              len;
	struct edge_body   *prev, *next;       /* LRU */
	atomic_bool         cached;             /* in the shared cache */
	unsigned char       data[];
};

/* An open object for sendfile, owned by one loop thread's cache. */
struct edge_fobj {
	int         refs;       /* the cache's and each response's */
	int         fd;
	uint64_t    size;
	char        key[];
};

struct edge_local;

struct edge {
	const struct config   *cfg;
	struct store          *store;
	struct blob_store     *blob;
	struct edge_server    *server;
	size_t                 domain_len;     /* strlen(sites_domain) */

	pthread_mutex_t        lock;           /* every map and list */
	struct edge_map       *pointers;
	struct edge_map       *manifests;
	struct edge_map       *bodies;
	struct edge_map       *names;
	struct edge_manifest  *m_head, *m_tail;
	size_t                 m_bytes;
	struct edge_body      *b_head, *b_tail;
	size_t                 b_bytes;
	struct edge_local     *locals;         /* every loop thread's */

	pthread_t              poller;
	pthread_mutex_t        poll_lock;
	pthread_cond_t         poll_cond;
	bool                   stopping;
	int64_t                pointer_seq;
};

/* A string -> pointer map (edge_map.c); values are not owned. */
struct edge_map *edge_map_new(void);
void edge_map_free(struct edge_map *m);
void *edge_map_get(const struct edge_map *m, const char *key);
/* Sets key (copied) to value; returns the value it replaced or NULL. */
void *edge_map_put(struct edge_map *m, const char *key, void *value);
void *edge_map_del(struct edge_map *m, const char *key);
/* Calls fn for each entry (do not modify m from fn). */
void edge_map_each(struct edge_map *m,
    void (*fn)(void *ctx, const char *key, void *value), void *ctx);

/* Sites (edge_site.c). */

/*
 * The manifest that answers host, referenced, or NULL when no site is
 * there.  *tenant_out (may be NULL) gets the tenant.
 */
struct edge_manifest *edge_site_for_host(struct edge *e, const char *host);
/* A manifest of an older deployment of the same tenant holding path,
 * activated within EDGE_SKEW_WINDOW_MS, referenced; or NULL. */
struct edge_manifest *edge_site_skew(struct edge *e,
    const struct edge_manifest *current, const char *path,
    const struct edge_file **file);
void edge_manifest_put(struct edge *e, struct edge_manifest *m);
const struct edge_file *edge_manifest_find(const struct edge_manifest *m,
    const char *path);

/*
 * The bytes of a small object, referenced (edge_body_put), or NULL
 * when it cannot be read.
 */
struct edge_body *edge_body_get(struct edge *e, const char *key,
    uint64_t size);
void edge_body_put(struct edge *e, struct edge_body *b);

/* The current flip generation: it moves on every pointer flip seen. */
uint64_t edge_site_generation(void);
/* The shared lookups behind edge_site_for_host (edge_site.c). */
struct edge_manifest *edge_site_lookup(struct edge *e, const char *host);
struct edge_body *edge_body_lookup(struct edge *e, const char *key,
    uint64_t size);

/* Per-loop-thread caches (edge_local.c); e->lock is never taken on a hit. */

/* The calling thread's caches, created on first use; NULL if out of
 * memory (callers then go to the shared caches). */
struct edge_local *edge_local(struct edge *e);
/* The manifest cached for host, referenced, or NULL. */
struct edge_manifest *edge_local_host(struct edge_local *l, const char *host);
/* Remembers m (gets its own reference) for host as looked up at gen. */
void edge_local_host_set(struct edge_local *l, const char *host,
    uint64_t gen, struct edge_manifest *m);
struct edge_body *edge_local_body(struct edge_local *l, const char *key,
    uint64_t size);
void edge_local_body_set(struct edge_local *l, struct edge_body *b);
/*
 * An open descriptor of the object, referenced (edge_fobj_put on the
 * same thread), opened on a miss; NULL when it cannot be read or is not
 * size bytes.
 */
struct edge_fobj *edge_local_file(struct edge *e, struct edge_local *l,
    const char *key, uint64_t size);
void edge_fobj_put(struct edge_fobj *f);
/* Frees every thread's caches; the loop threads have ended. */
void edge_local_fini(struct edge *e);

int edge_site_init(struct edge *e);
void edge_site_fini(struct edge *e);
void *edge_site_poll_main(void *arg);

#endif
