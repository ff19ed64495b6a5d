/*
 * queue: the durable build queue's workers.  Jobs live in the store
 * (store_job_*); this component runs N worker threads that claim jobs
 * under a lease, renews the leases of running jobs from one heartbeat
 * thread, and ends each run as its handler says: done, retry later
 * (exponential backoff), or failed for good.
 *
 * A worker that dies (the process is killed) stops renewing its leases;
 * once a lease expires any worker, in any process, claims the job again
 * and the lost run counts as an attempt.
 */
#ifndef WHARF_QUEUE_H
#define WHARF_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define QUEUE_PRIORITY_DEFAULT   10
#define QUEUE_ATTEMPTS_DEFAULT   3
#define QUEUE_BACKOFF_BASE_MS    2000    /* 2 s, 4 s, 8 s ... */
#define QUEUE_BACKOFF_MAX_MS     86400000 /* one day: the longest delay */
#define QUEUE_KEEP_COMPLETED     10
#define QUEUE_KEEP_FAILED        50
#define QUEUE_WORKERS_DEFAULT    2
#define QUEUE_WORKERS_MAX        64
#define QUEUE_LEASE_MS_DEFAULT   30000
#define QUEUE_POLL_MS_DEFAULT    1000
#define QUEUE_HEARTBEAT_MAX_MS   2000    /* a cancel is seen this soon */
/* A node name, with its NUL: room is left for the "/w<i>" of owners. */
#define QUEUE_NODE_MAX           48

enum queue_outcome {
	QUEUE_DONE = 0,         /* handler set the build's final status */
	QUEUE_RETRY,            /* transient failure: run again later */
	QUEUE_FAIL,             /* permanent failure: build failed */
};

/* One claimed job, handed to the handler. */
struct queue_run {
	struct store_job   job;
	struct store_build build;
	char               owner[64];
	/* Set by the handler when it returns RETRY or FAIL. */
	char               error[1024];
	char               error_step[32];
	/* Set by the queue: the lease was lost or the queue is stopping. */
	atomic_bool        stop;
};

typedef enum queue_outcome queue_handler_fn(void *ctx,
    struct queue_run *run);

struct queue_opts {
	int         workers;            /* 1 to QUEUE_WORKERS_MAX threads */
	int64_t     lease_ms;           /* lease per claim, >= 3 */
	int64_t     poll_ms;            /* idle wait between claims, >= 1 */
	int64_t     backoff_base_ms;    /* first retry delay, >= 0 */
	int         keep_completed;     /* >= 0 */
	int         keep_failed;        /* >= 0 */
	const char *node;               /* this process, e.g. host:pid; */
	                                /* shorter than QUEUE_NODE_MAX */
};

/*
 * The defaults above (lease 30 s, poll 1 s) and node "<hostname>:<pid>"
 * (the hostname cut to fit QUEUE_NODE_MAX), which points to storage
 * that lives as long as the process.
 */
void queue_opts_default(struct queue_opts *opts);

/*
 * Delay before the retry that follows attempt n (1-based):
 * base * 2^(n-1), at most QUEUE_BACKOFF_MAX_MS; 0 when base <= 0.
 */
int64_t queue_backoff_ms(int64_t base_ms, int attempt);

struct queue;

/*
 * Starts the workers and the heartbeat thread.  st, opts->node and ctx
 * are borrowed and must outlive the queue.  NULL on failure (logged),
 * invalid options included.
 *
 * The handler runs on a worker thread, one run at a time per worker.
 * It returns DONE once it has set the build's final status itself
 * (store_build_finish); for RETRY and FAIL it fills run->error and
 * run->error_step, and the queue ends the job and the build.  It checks
 * queue_run_stopped() between steps and returns soon once it is set
 * (any outcome but DONE then means "interrupted").  A run whose lease
 * was lost is not ended by the queue: the job is no longer its own.
 */
struct queue *queue_start(struct store *st, const struct queue_opts *opts,
    queue_handler_fn *handler, void *ctx);

/* Wakes an idle worker now (a job was just added in this process). */
void queue_wake(struct queue *q);

/*
 * Stops claiming, sets stop on every running job, waits for the
 * handlers to return, and frees q.  A run stopped this way (its
 * handler returned anything but DONE) is ended with
 * store_job_fail(retry_at = now): it runs again at once, in this or
 * another process, if attempts remain, since the run counts as one.
 */
void queue_stop(struct queue *q);

/* True when the handler should give up: lease lost or stopping. */
static inline bool
queue_run_stopped(struct queue_run *run)
{
	return atomic_load(&run->stop);
}

#endif
