/*
 * edge: the server that serves every tenant's current deployment, by
 * Host: <tenant>.<WHARF_SITES_DOMAIN>, <build>--<tenant>.<domain> for
 * one deployment forever, and custom domains from the domains table.
 * Files come from the deployment's manifest and the tenant's
 * content-addressed objects; docs/edge.md explains routing, caching,
 * redirects and headers.
 */
#ifndef WHARF_EDGE_H
#define WHARF_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct blob_store;
struct edge;

/*
 * Starts the edge on cfg->edge_listen with its own threads, and a
 * thread that follows pointer flips in the database (seen within
 * EDGE_POINTER_POLL_MS).  cfg, st and bs are borrowed.  NULL with a
 * message in err on failure.
 */
struct edge *edge_start(const struct config *cfg, struct store *st,
    struct blob_store *bs, char *err, size_t errlen);
uint16_t edge_port(const struct edge *e);
void edge_stop(struct edge *e);

/*
 * Forgets what the edge knows of tenant's pointer, so that the next
 * request reads the new one: a deploy_env on_flip callback (ctx is the
 * struct edge).
 */
void edge_invalidate(void *ctx, const char *tenant);

#endif
