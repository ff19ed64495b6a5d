/*
 * queue: worker threads over the store's job queue.
 *
 * Each worker loops: claim a job (store_job_claim, owner "<node>/w<i>"),
 * run the handler, end the job as the handler said.  When nothing is
 * runnable it sleeps on a condition variable for poll_ms, or until
 * queue_wake() or queue_stop() signals it.
 *
 * One heartbeat thread renews the lease of every running job each
 * lease_ms / 3 (at most every QUEUE_HEARTBEAT_MAX_MS).  A renewal the
 * store refuses means the job is no longer the worker's (cancelled,
 * deleted, or taken over after a stall): the run is told to stop, and
 * when its handler returns its outcome is only logged, never written.
 *
 * q->lock guards the flags of the queue and each worker's busy, seq and
 * lease_lost; no store call is made while holding it.  A worker's run
 * is read by the heartbeat thread only through a snapshot taken under
 * the lock; seq tells one claim from the next, so that a late refusal
 * never stops the wrong run.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/log.h"
#include "queue/queue.h"
#include "store/store.h"

#define QUEUE_QUOTED_MAX        (WHARF_ERRMSG_MAX + 16)

struct queue_worker {
	struct queue       *queue;
	pthread_t           thread;
	bool                started;
	char                owner[STORE_OWNER_MAX];
	struct queue_run    run;
	/* Guarded by queue->lock. */
	bool                busy;           /* run holds a claimed job */
	uint64_t            seq;            /* claims made so far */
	bool                lease_lost;     /* a renewal was refused */
};

/* A running job as the heartbeat thread saw it under the lock. */
struct queue_lease {
	struct queue_worker *worker;
	uint64_t             seq;
	char                 job_id[WHARF_ID_LEN + 1];
};

struct queue {
	struct store           *st;
	struct queue_opts       opts;
	queue_handler_fn       *handler;
	void                   *ctx;

	pthread_mutex_t         lock;
	pthread_cond_t          idle;           /* idle workers wait here */
	pthread_cond_t          beat;           /* the heartbeat waits here */
	bool                    stopping;       /* no more claims */
	bool                    beat_stop;      /* workers joined */
	int                     wakeups;        /* queue_wake()s not taken */

	struct queue_worker    *workers;        /* opts.workers of them */
	struct queue_lease     *leases;         /* the heartbeat's snapshot */
	pthread_t               heartbeat;
	bool                    heartbeat_started;
};

static pthread_once_t queue_node_once = PTHREAD_ONCE_INIT;
static char queue_node_default[QUEUE_NODE_MAX];

/* Options and small helpers */

/* "<hostname>:<pid>", the hostname cut so that the whole fits. */
static void
queue_node_init(void)
{
	char host[256] = "localhost", pid[24];
	int room;

	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(pid, sizeof(pid), ":%ld", (long)getpid());
	room = (int)(sizeof(queue_node_default) - 1 - strlen(pid));
	snprintf(queue_node_default, sizeof(queue_node_default), "%.*s%s",
	    room, host, pid);
}

void
queue_opts_default(struct queue_opts *opts)
{
	assert(opts != NULL);
	pthread_once(&queue_node_once, queue_node_init);
	memset(opts, 0, sizeof(*opts));
	opts->workers = QUEUE_WORKERS_DEFAULT;
	opts->lease_ms = QUEUE_LEASE_MS_DEFAULT;
	opts->poll_ms = QUEUE_POLL_MS_DEFAULT;
	opts->backoff_base_ms = QUEUE_BACKOFF_BASE_MS;
	opts->keep_completed = QUEUE_KEEP_COMPLETED;
	opts->keep_failed = QUEUE_KEEP_FAILED;
	opts->node = queue_node_default;
}

int64_t
queue_backoff_ms(int64_t base_ms, int attempt)
{
	int64_t delay = base_ms;

	if (base_ms <= 0)
		return 0;
	/* Below the cap, doubling cannot overflow. */
	for (int n = 1; n < attempt && delay < QUEUE_BACKOFF_MAX_MS; n++)
		delay *= 2;
	return delay < QUEUE_BACKOFF_MAX_MS ? delay : QUEUE_BACKOFF_MAX_MS;
}

/* The reason opts cannot run a queue, or NULL when they can. */
static const char *
queue_opts_invalid(const struct queue_opts *opts)
{
	if (opts->workers < 1 || opts->workers > QUEUE_WORKERS_MAX)
		return "workers out of range";
	if (opts->lease_ms < 3)
		return "lease_ms below 3";
	if (opts->poll_ms < 1)
		return "poll_ms below 1";
	if (opts->backoff_base_ms < 0)
		return "negative backoff_base_ms";
	if (opts->keep_completed < 0 || opts->keep_failed < 0)
		return "negative keep_completed or keep_failed";
	if (opts->node == NULL || opts->node[0] == '\0' ||
	    strlen(opts->node) >= QUEUE_NODE_MAX)
		return "node empty or too long";
	return NULL;
}

/* The monotonic time ms from now, for pthread_cond_timedwait. */
static void
queue_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static double
queue_ms_since(int64_t start_ns)
{
	return (double)(util_mono_ns() - start_ns) / 1e6;
}

static void
queue_lock(struct queue *q)
{
	int rc = pthread_mutex_lock(&q->lock);

	assert(rc == 0);
	(void)rc;
}

static void
queue_unlock(struct queue *q)
{
	int rc = pthread_mutex_unlock(&q->lock);

	assert(rc == 0);
	(void)rc;
}

/* Ending runs */

/*
 * Ends the run as failed: to be retried from retry_at if attempts
 * remain (retry_at > 0), else for good.  fallback is the error noted
 * when the handler gave none.
 */
static enum store_result
queue_run_fail(struct queue_worker *w, int64_t retry_at,
    const char *fallback, double dur_ms)
{
	struct queue *q = w->queue;
	struct queue_run *run = &w->run;
	char err[QUEUE_QUOTED_MAX], step[64];
	const char *error = run->error[0] != '\0' ? run->error : fallback;
	int64_t now = util_now_ms();
	enum store_result r;
	bool final = false;

	r = store_job_fail(q->st, run->job.id, w->owner, now, retry_at,
	    error, run->error_step, q->opts.keep_failed, &final);
	if (r != STORE_OK)
		return r;

	log_q(err, sizeof(err), error);
	log_q(step, sizeof(step), run->error_step);
	if (final)
		log_warnx("queue.failed", "job=%s build=%s tenant=%s "
		    "attempt=%d dur_ms=%.2f step=%s err=%s", run->job.id,
		    run->build.id, run->build.tenant, run->job.attempts,
		    dur_ms, step, err);
	else
		log_info("queue.retry", "job=%s build=%s tenant=%s "
		    "attempt=%d dur_ms=%.2f retry_in_ms=%lld step=%s err=%s",
		    run->job.id, run->build.id, run->build.tenant,
		    run->job.attempts, dur_ms, (long long)(retry_at - now),
		    step, err);
	return STORE_OK;
}

static enum store_result
queue_run_complete(struct queue_worker *w, double dur_ms)
{
	struct queue *q = w->queue;
	struct queue_run *run = &w->run;
	enum store_result r;

	r = store_job_complete(q->st, run->job.id, w->owner, util_now_ms(),
	    q->opts.keep_completed);
	if (r == STORE_OK)
		log_info("queue.done", "job=%s build=%s tenant=%s attempt=%d "
		    "dur_ms=%.2f", run->job.id, run->build.id,
		    run->build.tenant, run->job.attempts, dur_ms);
	return r;
}

static const char *
queue_outcome_name(enum queue_outcome outcome)
{
	switch (outcome) {
	case QUEUE_DONE:
		return "done";
	case QUEUE_RETRY:
		return "retry";
	case QUEUE_FAIL:
		return "fail";
	}
	return "unknown";
}

/* The run is no longer this worker's: nothing of it is written. */
static void
queue_run_lost(struct queue_worker *w, enum queue_outcome outcome,
    double dur_ms)
{
	struct queue_run *run = &w->run;
	char owner[STORE_OWNER_MAX + 8];

	log_warnx("queue.lease_lost", "job=%s build=%s tenant=%s attempt=%d "
	    "owner=%s outcome=%s dur_ms=%.2f", run->job.id, run->build.id,
	    run->build.tenant, run->job.attempts,
	    log_q(owner, sizeof(owner), w->owner),
	    queue_outcome_name(outcome), dur_ms);
}

/*
 * Ends the run as its handler said.  A run queue_stop() interrupted
 * (stopped, and not DONE) is put back to run again at once.
 */
static void
queue_run_end(struct queue_worker *w, enum queue_outcome outcome,
    bool stopped, double dur_ms)
{
	struct queue *q = w->queue;
	enum store_result r;
	char err[QUEUE_QUOTED_MAX];

	if (stopped && outcome != QUEUE_DONE)
		r = queue_run_fail(w, util_now_ms(), "worker stopped", dur_ms);
	else if (outcome == QUEUE_DONE)
		r = queue_run_complete(w, dur_ms);
	else if (outcome == QUEUE_RETRY)
		r = queue_run_fail(w, util_now_ms() + queue_backoff_ms(
		    q->opts.backoff_base_ms, w->run.job.attempts),
		    "build failed, to be retried", dur_ms);
	else
		r = queue_run_fail(w, 0, "build failed", dur_ms);

	/* Lost between the last renewal and now. */
	if (r == STORE_CONFLICT)
		queue_run_lost(w, outcome, dur_ms);
	else if (r != STORE_OK)
		log_warnx("queue.end_error", "job=%s build=%s err=%s",
		    w->run.job.id, w->run.build.id,
		    log_q(err, sizeof(err), store_errmsg()));
}

/* Workers */

/* Claims the next job into w->run and publishes it to the heartbeat. */
static enum store_result
queue_worker_claim(struct queue_worker *w)
{
	struct queue *q = w->queue;
	struct queue_run *run = &w->run;
	char owner[STORE_OWNER_MAX + 8];
	enum store_result r;

	/* Not busy: the heartbeat and queue_stop leave run alone. */
	run->error[0] = '\0';
	run->error_step[0] = '\0';
	snprintf(run->owner, sizeof(run->owner), "%s", w->owner);
	atomic_store(&run->stop, false);
	r = store_job_claim(q->st, w->owner, util_now_ms(), q->opts.lease_ms,
	    &run->job, &run->build);
	if (r != STORE_OK)
		return r;

	/* A stop that came during the claim applies to this run too. */
	queue_lock(q);
	w->busy = true;
	w->seq++;
	w->lease_lost = false;
	if (q->stopping)
		atomic_store(&run->stop, true);
	queue_unlock(q);

	log_info("queue.claimed", "job=%s build=%s tenant=%s attempt=%d "
	    "owner=%s queue_wait_ms=%lld", run->job.id, run->build.id,
	    run->build.tenant, run->job.attempts,
	    log_q(owner, sizeof(owner), w->owner),
	    (long long)run->build.queue_wait_ms);
	return STORE_OK;
}

/* Runs the claimed job's handler, then ends the job if still ours. */
static void
queue_worker_run(struct queue_worker *w)
{
	struct queue *q = w->queue;
	enum queue_outcome outcome = QUEUE_RETRY;
	int64_t start = util_mono_ns();
	bool lost, stopped;
	double dur_ms;

	if (!queue_run_stopped(&w->run))
		outcome = q->handler(q->ctx, &w->run);
	dur_ms = queue_ms_since(start);

	/* From here on the heartbeat no longer renews this lease. */
	queue_lock(q);
	w->busy = false;
	lost = w->lease_lost;
	stopped = queue_run_stopped(&w->run);
	queue_unlock(q);

	if (lost)
		queue_run_lost(w, outcome, dur_ms);
	else
		queue_run_end(w, outcome, stopped, dur_ms);
}

/* Sleeps until poll_ms passed, queue_wake() or queue_stop(). */
static void
queue_worker_idle(struct queue_worker *w)
{
	struct queue *q = w->queue;
	struct timespec deadline;

	queue_deadline(&deadline, q->opts.poll_ms);
	queue_lock(q);
	while (!q->stopping && q->wakeups == 0)
		if (pthread_cond_timedwait(&q->idle, &q->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	if (q->wakeups > 0)
		q->wakeups--;
	queue_unlock(q);
}

static bool
queue_stopping(struct queue *q)
{
	bool stopping;

	queue_lock(q);
	stopping = q->stopping;
	queue_unlock(q);
	return stopping;
}

static void *
queue_worker_main(void *arg)
{
	struct queue_worker *w = arg;

	while (!queue_stopping(w->queue)) {
		/* A failing store is waited out like an empty queue. */
		if (queue_worker_claim(w) == STORE_OK)
			queue_worker_run(w);
		else
			queue_worker_idle(w);
	}
	return NULL;
}

/* Heartbeat */

/* Copies the running jobs into q->leases; returns how many. */
static int
queue_heartbeat_snapshot(struct queue *q)
{
	int n = 0;

	for (int i = 0; i < q->opts.workers; i++) {
		struct queue_worker *w = &q->workers[i];

		if (!w->busy || w->lease_lost)
			continue;
		q->leases[n].worker = w;
		q->leases[n].seq = w->seq;
		memcpy(q->leases[n].job_id, w->run.job.id,
		    sizeof(q->leases[n].job_id));
		n++;
	}
	return n;
}

/* A renewal was refused: stops the run, if it is still the same. */
static void
queue_heartbeat_refused(struct queue *q, const struct queue_lease *lease)
{
	struct queue_worker *w = lease->worker;

	queue_lock(q);
	if (w->busy && w->seq == lease->seq) {
		w->lease_lost = true;
		atomic_store(&w->run.stop, true);
	}
	queue_unlock(q);
	log_debug("queue.renew_refused", "job=%s", lease->job_id);
}

/* Renews the n leases of the snapshot, without the lock. */
static void
queue_heartbeat_renew(struct queue *q, int n)
{
	enum store_result r;

	for (int i = 0; i < n; i++) {
		const struct queue_lease *lease = &q->leases[i];

		/* A failure is logged by the store; the next beat retries. */
		r = store_job_heartbeat(q->st, lease->job_id,
		    lease->worker->owner, util_now_ms(), q->opts.lease_ms);
		if (r == STORE_CONFLICT)
			queue_heartbeat_refused(q, lease);
	}
}

static void *
queue_heartbeat_main(void *arg)
{
	struct queue *q = arg;
	/* Often enough to keep the lease, and to see a cancel in seconds. */
	int64_t interval = q->opts.lease_ms / 3 < QUEUE_HEARTBEAT_MAX_MS ?
	    q->opts.lease_ms / 3 : QUEUE_HEARTBEAT_MAX_MS;
	struct timespec next;
	int n;

	queue_lock(q);
	queue_deadline(&next, interval);
	while (!q->beat_stop) {
		if (pthread_cond_timedwait(&q->beat, &q->lock, &next) !=
		    ETIMEDOUT)
			continue;       /* woken: the loop checks why */

		n = queue_heartbeat_snapshot(q);
		queue_unlock(q);
		queue_heartbeat_renew(q, n);
		queue_lock(q);
		queue_deadline(&next, interval);
	}
	queue_unlock(q);
	return NULL;
}

/* Starting and stopping */

/* The lock and the two condition variables, on the monotonic clock. */
static int
queue_sync_init(struct queue *q)
{
	pthread_condattr_t attr;
	int rc;

	if (pthread_condattr_init(&attr) != 0)
		return -1;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0 && (rc = pthread_mutex_init(&q->lock, NULL)) == 0) {
		rc = pthread_cond_init(&q->idle, &attr);
		if (rc == 0 && (rc = pthread_cond_init(&q->beat, &attr)) != 0)
			pthread_cond_destroy(&q->idle);
		if (rc != 0)
			pthread_mutex_destroy(&q->lock);
	}
	pthread_condattr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

/* Frees q and what it holds, once its threads are joined. */
static void
queue_free(struct queue *q)
{
	pthread_cond_destroy(&q->beat);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->lock);
	free(q->leases);
	free(q->workers);
	free(q);
}

/* Allocates q for opts, its sync objects and its workers' owners. */
static struct queue *
queue_new(struct store *st, const struct queue_opts *opts,
    queue_handler_fn *handler, void *ctx)
{
	struct queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->workers = calloc((size_t)opts->workers, sizeof(*q->workers));
	q->leases = calloc((size_t)opts->workers, sizeof(*q->leases));
	if (q->workers == NULL || q->leases == NULL ||
	    queue_sync_init(q) != 0) {
		free(q->leases);
		free(q->workers);
		free(q);
		return NULL;
	}

	q->st = st;
	q->opts = *opts;
	q->handler = handler;
	q->ctx = ctx;
	for (int i = 0; i < opts->workers; i++) {
		q->workers[i].queue = q;
		/* Fits: node is shorter than QUEUE_NODE_MAX. */
		snprintf(q->workers[i].owner, sizeof(q->workers[i].owner),
		    "%s/w%d", opts->node, i);
	}
	return q;
}

/* Starts the heartbeat thread, then the workers.  0 or an errno. */
static int
queue_threads_start(struct queue *q)
{
	int rc;

	rc = pthread_create(&q->heartbeat, NULL, queue_heartbeat_main, q);
	if (rc != 0)
		return rc;
	q->heartbeat_started = true;

	for (int i = 0; i < q->opts.workers; i++) {
		struct queue_worker *w = &q->workers[i];

		rc = pthread_create(&w->thread, NULL, queue_worker_main, w);
		if (rc != 0)
			return rc;
		w->started = true;
	}
	return 0;
}

struct queue *
queue_start(struct store *st, const struct queue_opts *opts,
    queue_handler_fn *handler, void *ctx)
{
	const char *invalid;
	struct queue *q;
	char node[QUEUE_NODE_MAX + 8];
	int rc;

	assert(st != NULL && opts != NULL && handler != NULL);
	invalid = queue_opts_invalid(opts);
	if (invalid != NULL) {
		log_errorx("queue.start", "err=\"%s\"", invalid);
		return NULL;
	}
	q = queue_new(st, opts, handler, ctx);
	if (q == NULL) {
		log_errorx("queue.start", "err=\"out of memory\"");
		return NULL;
	}

	rc = queue_threads_start(q);
	if (rc != 0) {
		errno = rc;
		log_error("queue.start", "workers=%d", opts->workers);
		queue_stop(q);
		return NULL;
	}
	log_info("queue.started", "node=%s workers=%d lease_ms=%lld "
	    "poll_ms=%lld", log_q(node, sizeof(node), opts->node),
	    opts->workers, (long long)opts->lease_ms,
	    (long long)opts->poll_ms);
	return q;
}

void
queue_wake(struct queue *q)
{
	assert(q != NULL);
	queue_lock(q);
	if (q->wakeups < q->opts.workers)
		q->wakeups++;
	pthread_cond_signal(&q->idle);
	queue_unlock(q);
}

void
queue_stop(struct queue *q)
{
	int64_t start = util_mono_ns();

	if (q == NULL)
		return;

	/* No more claims; every running handler is asked to stop. */
	queue_lock(q);
	q->stopping = true;
	for (int i = 0; i < q->opts.workers; i++)
		if (q->workers[i].busy)
			atomic_store(&q->workers[i].run.stop, true);
	pthread_cond_broadcast(&q->idle);
	queue_unlock(q);

	/* Leases are renewed until the last handler has returned. */
	for (int i = 0; i < q->opts.workers; i++)
		if (q->workers[i].started)
			pthread_join(q->workers[i].thread, NULL);
	queue_lock(q);
	q->beat_stop = true;
	pthread_cond_signal(&q->beat);
	queue_unlock(q);
	if (q->heartbeat_started)
		pthread_join(q->heartbeat, NULL);

	log_info("queue.stopped", "dur_ms=%.2f", queue_ms_since(start));
	queue_free(q);
}
