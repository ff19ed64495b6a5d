/*
 * api: the control plane's HTTP server (libmicrohttpd, epoll thread
 * pool): routing, authentication and tenant authorization, JSON
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
struct queue;

/*
 * Starts listening on cfg->listen and serving in background threads.
 * cfg, st and bs are borrowed and must outlive the server; q, when not
 * NULL, is this process's queue, woken when an upload adds a job.
 * Returns NULL with a message in err when the address cannot be bound.
 */
struct api_server *api_start(const struct config *cfg, struct store *st,
    struct blob_store *bs, struct queue *q, char *err, size_t errlen);

/* The port really bound (useful when cfg->listen asked for port 0). */
uint16_t api_port(const struct api_server *srv);

/* Stops accepting, finishes the requests in flight and frees srv. */
void api_stop(struct api_server *srv);

#endif
