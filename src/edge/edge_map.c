/*
 * edge_map: a small chained hash table from strings to pointers, grown
 * by doubling.  Callers lock.
 */
#include <stdlib.h>
#include <string.h>

#include "edge/edge_impl.h"

#define EDGE_MAP_INITIAL 64

struct edge_map_node {
	struct edge_map_node *next;
	void                 *value;
	uint64_t              hash;
	char                  key[];
};

struct edge_map {
	struct edge_map_node **buckets;
	size_t                 nbuckets;
	size_t                 count;
};

static uint64_t
edge_map_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= 1099511628211ULL;
	}
	return h;
}

struct edge_map *
edge_map_new(void)
{
	struct edge_map *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->nbuckets = EDGE_MAP_INITIAL;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
edge_map_free(struct edge_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct edge_map_node *n = m->buckets[i], *next;

		for (; n != NULL; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(m->buckets);
	free(m);
}

static struct edge_map_node **
edge_map_slot(const struct edge_map *m, const char *key, uint64_t h)
{
	struct edge_map_node **slot = &m->buckets[h & (m->nbuckets - 1)];

	while (*slot != NULL && ((*slot)->hash != h ||
	    strcmp((*slot)->key, key) != 0))
		slot = &(*slot)->next;
	return slot;
}

void *
edge_map_get(const struct edge_map *m, const char *key)
{
	struct edge_map_node **slot = edge_map_slot(m, key,
	    edge_map_hash(key));

	return *slot ? (*slot)->value : NULL;
}

static void
edge_map_grow(struct edge_map *m)
{
	size_t n = m->nbuckets * 2;
	struct edge_map_node **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;                 /* longer chains; still correct */
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct edge_map_node *node = m->buckets[i], *next;

		for (; node != NULL; node = next) {
			next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void *
edge_map_put(struct edge_map *m, const char *key, void *value)
{
	uint64_t h = edge_map_hash(key);
	struct edge_map_node **slot = edge_map_slot(m, key, h), *n;
	size_t len;
	void *old;

	if (*slot != NULL) {
		old = (*slot)->value;
		(*slot)->value = value;
		return old;
	}
	len = strlen(key);
	n = malloc(sizeof(*n) + len + 1);
	if (n == NULL)
		return NULL;            /* out of memory: not cached */
	memcpy(n->key, key, len + 1);
	n->hash = h;
	n->value = value;
	n->next = NULL;
	*slot = n;
	if (++m->count > m->nbuckets)
		edge_map_grow(m);
	return NULL;
}

void *
edge_map_del(struct edge_map *m, const char *key)
{
	struct edge_map_node **slot = edge_map_slot(m, key,
	    edge_map_hash(key)), *n = *slot;
	void *value;

	if (n == NULL)
		return NULL;
	*slot = n->next;
	value = n->value;
	free(n);
	m->count--;
	return value;
}

void
edge_map_each(struct edge_map *m,
    void (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct edge_map_node *n = m->buckets[i]; n; n = n->next)
			fn(ctx, n->key, n->value);
}
