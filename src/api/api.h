/*
 * api: the control plane's HTTP server (libmicrohttpd, a pool of
 * poll(2) threads): routing, authentication and tenant authorization, JSON
 * endpoints, /healthz and /metrics.
 */
#ifndef WHARF_API_H
#define WHARF_API_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

struct api_server;
struct blob_store;
struct deploy_env;
struct queue;

/* What the API serves from; all borrowed, outliving the server. */
struct api_deps {
	const struct config     *cfg;
	struct store            *store;
	struct blob_store       *blob;
	struct queue            *queue;  /* NULL: no workers in process */
	const struct deploy_env *deploy; /* pointer flips, site URLs */
};

/*
 * Starts listening on cfg->listen and serving in background threads.
 * Returns NULL with a message in err when the address cannot be bound.
 */
struct api_server *api_start(const struct api_deps *deps, char *err,
    size_t errlen);

/* The port really bound (useful when cfg->listen asked for port 0). */
uint16_t api_port(const struct api_server *srv);

/* Stops accepting, finishes the requests in flight and frees srv. */
void api_stop(struct api_server *srv);

#endif
