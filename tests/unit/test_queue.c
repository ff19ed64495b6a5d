/*
 * test_queue: the durable build queue, in the store (claims, leases,
 * retries, pruning, cancel/retry/delete of builds) and in the worker
 * pool of src/queue.  Each test gets a fresh SQLite database in its own
 * mkdtemp() folder, with tenant "acme" and one user made through the
 * store, removed afterwards.
 *
 * The store tests pass their own clock (now) to every call; the pool
 * tests run on the real clock with short leases and polls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "core/log.h"
#include "queue/queue.h"
#include "store/store.h"

#define TEST_LEASE_MS           30000
#define TEST_KEEP               1000    /* no pruning where not tested */
#define TEST_RACE_JOBS          200
#define TEST_RACE_THREADS       8
#define TEST_POOL_JOBS          20
#define TEST_WAIT_MS            10000   /* longest wait for the pool */

struct test_db {
	char            dir[64];
	char            path[128];
	struct store   *st;
	char            user_id[WHARF_ID_LEN + 1];
	int64_t         t;              /* a time after every job's run_at */
};

/* Setup and teardown */

static int
test_setup(void **state)
{
	struct test_db *db = calloc(1, sizeof(*db));
	struct store_user user;
	char err[256];

	if (db == NULL)
		return -1;
	*state = db;
	snprintf(db->dir, sizeof(db->dir), "/tmp/wharf-queue-XXXXXX");
	if (mkdtemp(db->dir) == NULL)
		return -1;
	snprintf(db->path, sizeof(db->path), "%s/wharf.db", db->dir);
	db->st = store_open(db->path, err, sizeof(err));
	if (db->st == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	if (store_migrate(db->st, NULL, NULL) != STORE_OK ||
	    store_tenant_add(db->st, "acme", "Acme", NULL) != STORE_OK ||
	    store_tenant_add(db->st, "other", NULL, NULL) != STORE_OK ||
	    store_user_add(db->st, "alice@example.com", "$y$hash", &user) !=
	    STORE_OK)
		return -1;
	memcpy(db->user_id, user.id, sizeof(db->user_id));
	db->t = util_now_ms() + 60000;
	return 0;
}

static int
test_teardown(void **state)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	struct test_db *db = *state;
	char path[160];

	if (db == NULL)
		return 0;
	store_close(db->st);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db->path, suffixes[i]);
		(void)unlink(path);
	}
	(void)rmdir(db->dir);
	free(db);
	return 0;
}

/* Helpers */

static void
test_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Adds a pending build of tenant and its job, as an upload would. */
static void
test_add_tenant_build(struct test_db *db, const char *tenant, int priority,
    int max_attempts, struct store_build *b, struct store_job *job)
{
	memset(b, 0, sizeof(*b));
	util_uuid(b->id);
	snprintf(b->tenant, sizeof(b->tenant), "%s", tenant);
	memcpy(b->user_id, db->user_id, sizeof(b->user_id));
	snprintf(b->version, sizeof(b->version), "v1-abcdefghi");
	snprintf(b->status, sizeof(b->status), "pending");
	snprintf(b->source_key, sizeof(b->source_key),
	    "tenants/%s/builds/%s/source.zip", tenant, b->id);
	b->uploaded_at = util_now_ms();

	memset(job, 0, sizeof(*job));
	util_uuid(job->id);
	job->priority = priority;
	job->max_attempts = max_attempts;
	assert_int_equal(store_build_create(db->st, b, NULL, job), STORE_OK);
}

static void
test_add_build(struct test_db *db, int priority, int max_attempts,
    struct store_build *b, struct store_job *job)
{
	test_add_tenant_build(db, "acme", priority, max_attempts, b, job);
}

static enum store_result
test_claim(struct test_db *db, const char *owner, int64_t now,
    struct store_job *job, struct store_build *build)
{
	return store_job_claim(db->st, owner, now, TEST_LEASE_MS, job, build);
}

static int64_t
test_count(struct test_db *db, const char *state)
{
	int64_t n = -1;

	assert_int_equal(store_job_count(db->st, state, &n), STORE_OK);
	return n;
}

static void
test_get_build(struct test_db *db, const char *id, struct store_build *b)
{
	assert_int_equal(store_build_get(db->st, "acme", id, b), STORE_OK);
}

/* Runs sql on the database through a connection of its own. */
static void
test_sql(struct test_db *db, const char *sql)
{
	sqlite3 *conn = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(db->path, &conn), SQLITE_OK);
	sqlite3_busy_timeout(conn, 5000);
	if (sqlite3_exec(conn, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
	sqlite3_free(err);
	sqlite3_close(conn);
}

/* Backoff */

static void
test_backoff(void **state)
{
	(void)state;
	assert_int_equal(queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, 1), 2000);
	assert_int_equal(queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, 2), 4000);
	assert_int_equal(queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, 3), 8000);
	assert_int_equal(queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, 0), 2000);
	assert_int_equal(queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, 1000),
	    QUEUE_BACKOFF_MAX_MS);
	assert_int_equal(queue_backoff_ms(INT64_MAX, 2), QUEUE_BACKOFF_MAX_MS);
	assert_int_equal(queue_backoff_ms(0, 3), 0);
}

/* Claim order and run_at */

static void
test_priority_order(void **state)
{
	struct test_db *db = *state;
	static const int priorities[] = { 10, 5, 10, 5, 1 };
	static const int expected[] = { 4, 1, 3, 0, 2 };
	struct store_build builds[5], b;
	struct store_job jobs[5], job;
	int64_t ahead = -1;

	/* Apart in time, so that creation order is FIFO order. */
	for (int i = 0; i < 5; i++) {
		test_add_build(db, priorities[i], 3, &builds[i], &jobs[i]);
		test_sleep_ms(2);
	}
	assert_int_equal(store_job_position(db->st, jobs[4].id, &ahead),
	    STORE_OK);
	assert_int_equal(ahead, 0);
	assert_int_equal(store_job_position(db->st, jobs[2].id, &ahead),
	    STORE_OK);
	assert_int_equal(ahead, 4);
	assert_int_equal(store_job_position(db->st, jobs[0].id, &ahead),
	    STORE_OK);
	assert_int_equal(ahead, 3);
	assert_int_equal(store_job_position(db->st, "no-such-job", &ahead),
	    STORE_NOT_FOUND);

	for (int i = 0; i < 5; i++) {
		assert_int_equal(test_claim(db, "n/w0", db->t, &job, &b),
		    STORE_OK);
		assert_string_equal(job.id, jobs[expected[i]].id);
		assert_string_equal(b.id, builds[expected[i]].id);
	}
	assert_int_equal(test_claim(db, "n/w0", db->t, &job, &b),
	    STORE_NOT_FOUND);

	/* An active job has nothing ahead of it. */
	assert_int_equal(store_job_position(db->st, jobs[2].id, &ahead),
	    STORE_OK);
	assert_int_equal(ahead, 0);
}

static void
test_run_at(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;

	/* Not before it was created... */
	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "n/w0", job.run_at - 1, &claimed,
	    &got), STORE_NOT_FOUND);

	/* ...nor before the retry time of a failed run. */
	assert_int_equal(test_claim(db, "n/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_int_equal(store_job_fail(db->st, job.id, "n/w0", db->t,
	    db->t + 5000, "timeout", "install", TEST_KEEP, NULL), STORE_OK);
	assert_int_equal(test_claim(db, "n/w1", db->t + 4999, &claimed,
	    &got), STORE_NOT_FOUND);
	assert_int_equal(test_claim(db, "n/w1", db->t + 5000, &claimed,
	    &got), STORE_OK);
	assert_string_equal(claimed.id, job.id);
	assert_int_equal(claimed.attempts, 2);
}

static void
test_claim_fills(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed, of_build;
	int64_t started;

	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "host:1/w3", db->t, &claimed, &got),
	    STORE_OK);
	assert_string_equal(claimed.state, "active");
	assert_string_equal(claimed.lease_owner, "host:1/w3");
	assert_int_equal(claimed.lease_expires, db->t + TEST_LEASE_MS);
	assert_int_equal(claimed.attempts, 1);
	assert_int_equal(claimed.max_attempts, 3);
	assert_string_equal(got.status, "building");
	assert_string_equal(got.node, "host:1/w3");
	assert_int_equal(got.attempts, 1);
	assert_int_equal(got.started_at, db->t);
	assert_int_equal(got.queue_wait_ms, db->t - job.created_at);
	started = got.started_at;

	assert_int_equal(store_job_of_build(db->st, b.id, &of_build),
	    STORE_OK);
	assert_string_equal(of_build.id, job.id);
	assert_int_equal(of_build.lease_expires, db->t + TEST_LEASE_MS);

	/* A second claim keeps the first start time. */
	assert_int_equal(store_job_fail(db->st, job.id, "host:1/w3", db->t,
	    db->t, "x", "", TEST_KEEP, NULL), STORE_OK);
	assert_int_equal(test_claim(db, "host:1/w4", db->t + 10, &claimed,
	    &got), STORE_OK);
	assert_int_equal(got.started_at, started);
	assert_int_equal(got.attempts, 2);
	assert_string_equal(got.node, "host:1/w4");
}

static void
test_bad_owner(void **state)
{
	struct test_db *db = *state;
	char owner[STORE_OWNER_MAX + 1];
	struct store_build got;
	struct store_job claimed;

	memset(owner, 'o', sizeof(owner) - 1);
	owner[sizeof(owner) - 1] = '\0';
	assert_int_equal(test_claim(db, owner, db->t, &claimed, &got),
	    STORE_ERROR);
	assert_int_equal(test_claim(db, "", db->t, &claimed, &got),
	    STORE_ERROR);
}

/* Leases */

static void
test_lease_reclaim(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;
	const int64_t t = db->t;

	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "a/w0", t, &claimed, &got), STORE_OK);
	assert_int_equal(test_claim(db, "b/w0", t + TEST_LEASE_MS - 1,
	    &claimed, &got), STORE_NOT_FOUND);

	assert_int_equal(test_claim(db, "b/w0", t + TEST_LEASE_MS, &claimed,
	    &got), STORE_OK);
	assert_string_equal(claimed.id, job.id);
	assert_int_equal(claimed.attempts, 2);
	assert_string_equal(claimed.lease_owner, "b/w0");
	assert_string_equal(got.node, "b/w0");
	assert_int_equal(got.attempts, 2);

	/* The first owner has lost it for good. */
	assert_int_equal(store_job_heartbeat(db->st, job.id, "a/w0",
	    t + TEST_LEASE_MS + 1, TEST_LEASE_MS), STORE_CONFLICT);
	assert_int_equal(store_job_complete(db->st, job.id, "a/w0",
	    t + TEST_LEASE_MS + 1, TEST_KEEP), STORE_CONFLICT);
	assert_int_equal(store_job_fail(db->st, job.id, "a/w0",
	    t + TEST_LEASE_MS + 1, 0, "x", "", TEST_KEEP, NULL),
	    STORE_CONFLICT);

	/* The new owner's renewal holds it past the first lease. */
	assert_int_equal(store_job_heartbeat(db->st, job.id, "b/w0",
	    t + 2 * TEST_LEASE_MS - 1, TEST_LEASE_MS), STORE_OK);
	assert_int_equal(test_claim(db, "c/w0", t + 2 * TEST_LEASE_MS,
	    &claimed, &got), STORE_NOT_FOUND);
	assert_int_equal(store_job_complete(db->st, job.id, "b/w0",
	    t + 2 * TEST_LEASE_MS, TEST_KEEP), STORE_OK);
	assert_int_equal(test_count(db, "completed"), 1);
}

static void
test_stalled_no_attempts(void **state)
{
	struct test_db *db = *state;
	struct store_build lost, next, got;
	struct store_job lost_job, next_job, claimed;
	const int64_t t = db->t;

	test_add_build(db, 1, 2, &lost, &lost_job);
	test_add_build(db, 10, 3, &next, &next_job);

	/* Two runs of the first job are lost in turn. */
	assert_int_equal(test_claim(db, "a/w0", t, &claimed, &got), STORE_OK);
	assert_string_equal(claimed.id, lost_job.id);
	assert_int_equal(test_claim(db, "b/w0", t + TEST_LEASE_MS, &claimed,
	    &got), STORE_OK);
	assert_string_equal(claimed.id, lost_job.id);
	assert_int_equal(claimed.attempts, 2);

	/* The third claim fails it and goes on to the next job. */
	assert_int_equal(test_claim(db, "c/w0", t + 2 * TEST_LEASE_MS,
	    &claimed, &got), STORE_OK);
	assert_string_equal(claimed.id, next_job.id);
	assert_int_equal(test_count(db, "failed"), 1);

	test_get_build(db, lost.id, &got);
	assert_string_equal(got.status, "failed");
	assert_non_null(strstr(got.error, "worker lost"));
	assert_non_null(strstr(got.error, "b/w0"));
	assert_int_equal(got.finished_at, t + 2 * TEST_LEASE_MS);
	assert_int_equal(store_job_of_build(db->st, lost.id, &claimed),
	    STORE_NOT_FOUND);
}

static void
test_stalled_after_success(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;
	const int64_t t = db->t;

	/* The worker published, then died before ending the job. */
	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "a/w0", t, &claimed, &got), STORE_OK);
	assert_int_equal(store_build_finish(db->st, b.id, "success", NULL,
	    NULL, t + 5), STORE_OK);
	assert_int_equal(test_claim(db, "b/w0", t + TEST_LEASE_MS, &claimed,
	    &got), STORE_NOT_FOUND);
	assert_int_equal(test_count(db, "completed"), 1);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "success");
	assert_int_equal(got.attempts, 1);
}

/* Failures and retries */

static void
test_fail_retry(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed, waiting;
	bool final = true;

	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_int_equal(store_build_progress(db->st, b.id, 40), STORE_OK);
	assert_int_equal(store_job_fail(db->st, job.id, "a/w0", db->t + 10,
	    db->t + 2010, "registry timeout", "install", TEST_KEEP, &final),
	    STORE_OK);
	assert_false(final);

	assert_int_equal(store_job_of_build(db->st, b.id, &waiting),
	    STORE_OK);
	assert_string_equal(waiting.state, "waiting");
	assert_int_equal(waiting.run_at, db->t + 2010);
	assert_int_equal(waiting.attempts, 1);
	assert_string_equal(waiting.lease_owner, "");
	assert_string_equal(waiting.last_error, "registry timeout");

	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "pending");
	assert_string_equal(got.error, "registry timeout");
	assert_string_equal(got.error_step, "install");
	assert_int_equal(got.progress, 0);
	assert_int_equal(got.finished_at, 0);

	/* Its lease is gone with the run. */
	assert_int_equal(store_job_heartbeat(db->st, job.id, "a/w0",
	    db->t + 20, TEST_LEASE_MS), STORE_CONFLICT);
}

static void
test_fail_final(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;
	int64_t now = db->t;
	bool final = true;

	test_add_build(db, 10, 3, &b, &job);
	for (int attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(test_claim(db, "a/w0", now, &claimed, &got),
		    STORE_OK);
		assert_int_equal(claimed.attempts, attempt);
		assert_int_equal(store_job_fail(db->st, job.id, "a/w0", now,
		    now + queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, attempt),
		    "npm ci failed", "install", TEST_KEEP, &final), STORE_OK);
		assert_int_equal(final, attempt == 3);
		now += queue_backoff_ms(QUEUE_BACKOFF_BASE_MS, attempt);
	}

	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "failed");
	assert_string_equal(got.error, "npm ci failed");
	assert_string_equal(got.error_step, "install");
	assert_int_equal(got.attempts, 3);
	assert_true(got.finished_at > 0);
	assert_int_equal(test_count(db, "failed"), 1);
	assert_int_equal(test_count(db, "waiting"), 0);
	assert_int_equal(test_claim(db, "a/w0", now + 1000000, &claimed,
	    &got), STORE_NOT_FOUND);
}

static void
test_fail_permanent(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;
	char long_error[2000];
	bool final = false;

	/* retry_at 0 fails at once; a long message is cut to fit. */
	memset(long_error, 'e', sizeof(long_error) - 1);
	long_error[sizeof(long_error) - 1] = '\0';
	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_int_equal(store_job_fail(db->st, job.id, "a/w0", db->t, 0,
	    long_error, "extract", TEST_KEEP, &final), STORE_OK);
	assert_true(final);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "failed");
	assert_int_equal(strlen(got.error), sizeof(got.error) - 1);
	assert_string_equal(got.error_step, "extract");
}

/* Retention */

static void
test_prune(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got, first_b;
	struct store_job job, claimed, first;
	int64_t now = db->t, ahead = 0;

	for (int i = 0; i < 15; i++) {
		test_add_build(db, 10, 1, &b, &job);
		if (i == 0) {
			first = job;
			first_b = b;
		}
		assert_int_equal(test_claim(db, "a/w0", now, &claimed, &got),
		    STORE_OK);
		assert_int_equal(store_job_complete(db->st, claimed.id, "a/w0",
		    ++now, QUEUE_KEEP_COMPLETED), STORE_OK);
	}
	assert_int_equal(test_count(db, "completed"), 10);
	assert_int_equal(store_job_position(db->st, first.id, &ahead),
	    STORE_NOT_FOUND);

	for (int i = 0; i < 60; i++) {
		test_add_build(db, 10, 1, &b, &job);
		assert_int_equal(test_claim(db, "a/w0", now, &claimed, &got),
		    STORE_OK);
		assert_int_equal(store_job_fail(db->st, claimed.id, "a/w0",
		    ++now, 0, "bad zip", "extract", QUEUE_KEEP_FAILED, NULL),
		    STORE_OK);
	}
	assert_int_equal(test_count(db, "failed"), 50);
	assert_int_equal(test_count(db, "completed"), 10);
	assert_int_equal(test_count(db, NULL), 60);

	/* The newest job survives; builds are never pruned. */
	assert_int_equal(store_job_position(db->st, job.id, &ahead),
	    STORE_OK);
	test_get_build(db, first_b.id, &got);
	assert_string_equal(got.id, first_b.id);
}

/* Builds: progress, finish, cancel, retry, delete */

static void
test_progress_finish(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed;

	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(store_build_progress(db->st, b.id, 10),
	    STORE_CONFLICT);
	assert_int_equal(store_build_progress(db->st, "no-such-build", 10),
	    STORE_NOT_FOUND);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_int_equal(store_build_progress(db->st, b.id, 101),
	    STORE_ERROR);
	assert_int_equal(store_build_progress(db->st, b.id, 60), STORE_OK);
	assert_int_equal(store_build_finish(db->st, b.id, "cancelled", "", "",
	    db->t), STORE_ERROR);
	assert_int_equal(store_build_finish(db->st, b.id, "success", "", "",
	    db->t + 7), STORE_OK);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "success");
	assert_int_equal(got.progress, 100);   /* a success ends at 100 */
	assert_int_equal(got.finished_at, db->t + 7);
	assert_int_equal(store_build_finish(db->st, b.id, "failed", "x", "",
	    db->t), STORE_CONFLICT);
	assert_int_equal(store_job_complete(db->st, job.id, "a/w0", db->t + 8,
	    TEST_KEEP), STORE_OK);
}

static void
test_cancel(void **state)
{
	struct test_db *db = *state;
	struct store_build running, waiting, got;
	struct store_job running_job, waiting_job, claimed;

	test_add_build(db, 1, 3, &running, &running_job);
	test_add_build(db, 10, 3, &waiting, &waiting_job);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_string_equal(claimed.id, running_job.id);

	/* A running build: its worker loses the job. */
	assert_int_equal(store_build_cancel(db->st, "acme", running.id,
	    db->t + 1), STORE_OK);
	test_get_build(db, running.id, &got);
	assert_string_equal(got.status, "cancelled");
	assert_int_equal(got.finished_at, db->t + 1);
	assert_int_equal(store_job_heartbeat(db->st, running_job.id, "a/w0",
	    db->t + 2, TEST_LEASE_MS), STORE_CONFLICT);
	assert_int_equal(store_job_complete(db->st, running_job.id, "a/w0",
	    db->t + 2, TEST_KEEP), STORE_CONFLICT);
	assert_int_equal(store_job_of_build(db->st, running.id, &claimed),
	    STORE_NOT_FOUND);

	/* A waiting build: never claimed afterwards. */
	assert_int_equal(store_build_cancel(db->st, "other", waiting.id,
	    db->t), STORE_NOT_FOUND);
	assert_int_equal(store_build_cancel(db->st, "acme", waiting.id,
	    db->t), STORE_OK);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(test_count(db, NULL), 0);

	assert_int_equal(store_build_cancel(db->st, "acme", waiting.id,
	    db->t), STORE_CONFLICT);
	assert_int_equal(store_build_cancel(db->st, "acme", "no-such-build",
	    db->t), STORE_NOT_FOUND);
}

static void
test_retry(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, claimed, again, of_build;

	test_add_build(db, 10, 3, &b, &job);
	memset(&again, 0, sizeof(again));
	util_uuid(again.id);
	again.priority = 5;
	again.max_attempts = 3;

	/* pending, building and success builds are not retried. */
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t,
	    &again), STORE_CONFLICT);
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t,
	    &again), STORE_CONFLICT);
	assert_int_equal(store_job_fail(db->st, job.id, "a/w0", db->t, 0,
	    "bad zip", "extract", TEST_KEEP, NULL), STORE_OK);

	/* A failed one is, with a new job and a clean record. */
	assert_int_equal(store_build_retry(db->st, "other", b.id, db->t + 5,
	    &again), STORE_NOT_FOUND);
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t + 5,
	    &again), STORE_OK);
	assert_string_equal(again.state, "waiting");
	assert_string_equal(again.build_id, b.id);
	assert_int_equal(again.run_at, db->t + 5);
	assert_int_equal(store_job_of_build(db->st, b.id, &of_build),
	    STORE_OK);
	assert_string_equal(of_build.id, again.id);
	assert_int_equal(of_build.priority, 5);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "pending");
	assert_string_equal(got.error, "");
	assert_string_equal(got.error_step, "");
	assert_int_equal(got.attempts, 0);
	assert_int_equal(got.finished_at, 0);

	/* It runs and succeeds; now it cannot be retried. */
	assert_int_equal(test_claim(db, "a/w0", db->t + 5, &claimed, &got),
	    STORE_OK);
	assert_string_equal(claimed.id, again.id);
	assert_int_equal(claimed.attempts, 1);
	assert_int_equal(store_build_finish(db->st, b.id, "success", NULL,
	    NULL, db->t + 6), STORE_OK);
	util_uuid(again.id);
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t + 7,
	    &again), STORE_CONFLICT);
}

static void
test_retry_cancelled(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, again;

	test_add_build(db, 10, 3, &b, &job);
	assert_int_equal(store_build_cancel(db->st, "acme", b.id, db->t),
	    STORE_OK);
	memset(&again, 0, sizeof(again));
	util_uuid(again.id);
	again.priority = 10;
	again.max_attempts = 3;
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t,
	    &again), STORE_OK);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "pending");
	assert_int_equal(test_count(db, "waiting"), 1);

	/* A taken job id is a conflict and changes nothing. */
	assert_int_equal(store_build_cancel(db->st, "acme", b.id, db->t),
	    STORE_OK);
	test_sql(db, "INSERT INTO jobs (id, build_id, state, run_at,"
	    " created_at) VALUES ('taken', (SELECT id FROM builds), 'failed',"
	    " 0, 0)");
	snprintf(again.id, sizeof(again.id), "taken");
	assert_int_equal(store_build_retry(db->st, "acme", b.id, db->t,
	    &again), STORE_CONFLICT);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "cancelled");
}

static void
test_delete(void **state)
{
	struct test_db *db = *state;
	struct store_build served, other, got;
	struct store_job served_job, other_job, claimed;
	int64_t ahead = 0;
	char sql[512];

	test_add_build(db, 10, 3, &served, &served_job);
	test_sleep_ms(2);               /* so that served is claimed first */
	test_add_build(db, 10, 3, &other, &other_job);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO deployments (id, build_id, tenant, status,"
	    " created_at) VALUES ('dep-1', '%s', 'acme', 'active', 1),"
	    " ('dep-2', '%s', 'acme', 'inactive', 2);"
	    "UPDATE tenants SET current_deployment = 'dep-1'"
	    " WHERE slug = 'acme'", served.id, other.id);
	test_sql(db, sql);

	assert_int_equal(store_build_delete(db->st, "acme", served.id),
	    STORE_CONFLICT);
	test_get_build(db, served.id, &got);
	assert_int_equal(store_build_delete(db->st, "other", other.id),
	    STORE_NOT_FOUND);

	/* A build not served goes with its jobs and deployments. */
	assert_int_equal(test_claim(db, "a/w0", db->t, &claimed, &got),
	    STORE_OK);
	assert_string_equal(claimed.id, served_job.id);
	assert_int_equal(store_build_delete(db->st, "acme", other.id),
	    STORE_OK);
	assert_int_equal(store_build_get(db->st, "acme", other.id, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_job_position(db->st, other_job.id, &ahead),
	    STORE_NOT_FOUND);
	assert_int_equal(store_build_delete(db->st, "acme", other.id),
	    STORE_NOT_FOUND);

	/* Served no more: it can go, and its worker loses the job. */
	test_sql(db, "UPDATE tenants SET current_deployment = NULL");
	assert_int_equal(store_build_delete(db->st, "acme", served.id),
	    STORE_OK);
	assert_int_equal(store_job_heartbeat(db->st, served_job.id, "a/w0",
	    db->t + 1, TEST_LEASE_MS), STORE_CONFLICT);
	assert_int_equal(test_count(db, NULL), 0);
}

/* Many threads claiming at once */

struct test_racer {
	struct store   *st;
	char            owner[32];
	char            (*handled)[WHARF_ID_LEN + 1];
	int             count;
	int             errors;
};

static void *
test_racer_run(void *arg)
{
	struct test_racer *racer = arg;
	struct store_build b;
	struct store_job job;
	enum store_result r;

	for (;;) {
		r = store_job_claim(racer->st, racer->owner, util_now_ms(),
		    TEST_LEASE_MS, &job, &b);
		if (r == STORE_NOT_FOUND)
			break;
		if (r != STORE_OK ||
		    store_job_complete(racer->st, job.id, racer->owner,
		    util_now_ms(), QUEUE_KEEP_COMPLETED) != STORE_OK) {
			racer->errors++;
			break;
		}
		memcpy(racer->handled[racer->count++], b.id, sizeof(b.id));
	}
	return NULL;
}

static void
test_claim_race(void **state)
{
	struct test_db *db = *state;
	static char handled[TEST_RACE_THREADS][TEST_RACE_JOBS]
	    [WHARF_ID_LEN + 1];
	struct store_build builds[TEST_RACE_JOBS];
	struct test_racer racers[TEST_RACE_THREADS];
	pthread_t threads[TEST_RACE_THREADS];
	struct store_job job;
	int seen[TEST_RACE_JOBS] = { 0 };

	for (int i = 0; i < TEST_RACE_JOBS; i++)
		test_add_build(db, 10, 3, &builds[i], &job);
	for (int t = 0; t < TEST_RACE_THREADS; t++) {
		racers[t] = (struct test_racer){ .st = db->st,
		    .handled = handled[t] };
		snprintf(racers[t].owner, sizeof(racers[t].owner),
		    "race:1/w%d", t);
		assert_int_equal(pthread_create(&threads[t], NULL,
		    test_racer_run, &racers[t]), 0);
	}

	/* Every build handled exactly once, by whichever thread. */
	for (int t = 0; t < TEST_RACE_THREADS; t++) {
		assert_int_equal(pthread_join(threads[t], NULL), 0);
		assert_int_equal(racers[t].errors, 0);
		for (int k = 0; k < racers[t].count; k++)
			for (int i = 0; i < TEST_RACE_JOBS; i++)
				if (strcmp(handled[t][k], builds[i].id) == 0)
					seen[i]++;
	}
	for (int i = 0; i < TEST_RACE_JOBS; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(test_count(db, "completed"), QUEUE_KEEP_COMPLETED);
	assert_int_equal(test_count(db, NULL), QUEUE_KEEP_COMPLETED);
}

/* The worker pool */

struct test_pool {
	struct store       *st;
	pthread_mutex_t     lock;
	char                ids[TEST_POOL_JOBS][WHARF_ID_LEN + 1];
	int                 calls[TEST_POOL_JOBS];
	int                 njobs;
	int                 retry_index;    /* RETRY the first time */
	int                 fail_index;     /* FAIL */
	int                 errors;
	/* For the handlers that wait for a stop. */
	atomic_bool         entered;
	atomic_bool         saw_stop;
	atomic_bool         returned;
};

static void
test_pool_init(struct test_pool *pool, struct store *st)
{
	memset(pool, 0, sizeof(*pool));
	pool->st = st;
	pool->retry_index = -1;
	pool->fail_index = -1;
	assert_int_equal(pthread_mutex_init(&pool->lock, NULL), 0);
}

static void
test_pool_opts(struct queue_opts *opts, int workers, int64_t lease_ms,
    int64_t poll_ms)
{
	queue_opts_default(opts);
	opts->workers = workers;
	opts->lease_ms = lease_ms;
	opts->poll_ms = poll_ms;
	opts->backoff_base_ms = 5;
	opts->keep_completed = TEST_KEEP;
	opts->keep_failed = TEST_KEEP;
	opts->node = "test:1";
}

/* Counts the call; the index of the build, or -1 if unknown. */
static int
test_pool_count(struct test_pool *pool, const char *build_id, int *calls)
{
	int index = -1;

	pthread_mutex_lock(&pool->lock);
	for (int i = 0; i < pool->njobs; i++)
		if (strcmp(pool->ids[i], build_id) == 0)
			index = i;
	if (index >= 0)
		*calls = ++pool->calls[index];
	else
		pool->errors++;
	pthread_mutex_unlock(&pool->lock);
	return index;
}

static enum queue_outcome
test_pool_handler(void *ctx, struct queue_run *run)
{
	struct test_pool *pool = ctx;
	int calls = 0, index;

	index = test_pool_count(pool, run->build.id, &calls);
	if (index == pool->retry_index && calls == 1) {
		snprintf(run->error, sizeof(run->error), "registry timeout");
		snprintf(run->error_step, sizeof(run->error_step), "install");
		return QUEUE_RETRY;
	}
	if (index == pool->fail_index) {
		snprintf(run->error, sizeof(run->error), "bad zip");
		snprintf(run->error_step, sizeof(run->error_step), "extract");
		return QUEUE_FAIL;
	}
	if (store_build_finish(pool->st, run->build.id, "success", NULL, NULL,
	    util_now_ms()) != STORE_OK) {
		pthread_mutex_lock(&pool->lock);
		pool->errors++;
		pthread_mutex_unlock(&pool->lock);
	}
	return QUEUE_DONE;
}

/* Waits (bounded) until the queue holds completed and failed jobs. */
static bool
test_pool_settled(struct test_db *db, int64_t completed, int64_t failed)
{
	for (int ms = 0; ms < TEST_WAIT_MS; ms += 5) {
		if (test_count(db, "completed") == completed &&
		    test_count(db, "failed") == failed &&
		    test_count(db, NULL) == completed + failed)
			return true;
		test_sleep_ms(5);
	}
	return false;
}

static void
test_pool_end_to_end(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job;
	struct test_pool pool;
	struct queue_opts opts;
	struct queue *q;
	int64_t start;

	test_pool_init(&pool, db->st);
	for (int i = 0; i < TEST_POOL_JOBS; i++) {
		test_add_build(db, 10, 3, &b, &job);
		memcpy(pool.ids[i], b.id, sizeof(b.id));
	}
	pool.njobs = TEST_POOL_JOBS;
	pool.retry_index = 3;
	pool.fail_index = 7;

	test_pool_opts(&opts, 4, 3000, 20);
	q = queue_start(db->st, &opts, test_pool_handler, &pool);
	assert_non_null(q);
	assert_true(test_pool_settled(db, TEST_POOL_JOBS - 1, 1));
	start = util_mono_ns();
	queue_stop(q);
	assert_true(util_mono_ns() - start < 1000000000LL);

	assert_int_equal(pool.errors, 0);
	for (int i = 0; i < TEST_POOL_JOBS; i++) {
		test_get_build(db, pool.ids[i], &got);
		assert_int_equal(pool.calls[i], i == pool.retry_index ? 2 : 1);
		assert_int_equal(got.attempts, i == pool.retry_index ? 2 : 1);
		assert_string_equal(got.status,
		    i == pool.fail_index ? "failed" : "success");
		assert_non_null(strstr(got.node, "test:1/w"));
	}
	test_get_build(db, pool.ids[pool.fail_index], &got);
	assert_string_equal(got.error, "bad zip");
	assert_string_equal(got.error_step, "extract");
	pthread_mutex_destroy(&pool.lock);
}

static void
test_pool_wake(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job;
	struct test_pool pool;
	struct queue_opts opts;
	struct queue *q;
	int64_t start;

	/* The worker idles for a minute unless woken. */
	test_pool_init(&pool, db->st);
	test_pool_opts(&opts, 1, 3000, 60000);
	q = queue_start(db->st, &opts, test_pool_handler, &pool);
	assert_non_null(q);
	test_sleep_ms(50);

	test_add_build(db, 10, 3, &b, &job);
	pthread_mutex_lock(&pool.lock);
	memcpy(pool.ids[0], b.id, sizeof(b.id));
	pool.njobs = 1;
	pthread_mutex_unlock(&pool.lock);
	queue_wake(q);
	assert_true(test_pool_settled(db, 1, 0));

	start = util_mono_ns();
	queue_stop(q);
	assert_true(util_mono_ns() - start < 1000000000LL);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "success");
	assert_int_equal(pool.errors, 0);
	pthread_mutex_destroy(&pool.lock);
}

/* Waits for the stop flag (bounded), then returns outcome. */
static enum queue_outcome
test_pool_wait_stop(struct test_pool *pool, struct queue_run *run,
    enum queue_outcome outcome)
{
	atomic_store(&pool->entered, true);
	for (int ms = 0; ms < TEST_WAIT_MS && !queue_run_stopped(run); ms++)
		test_sleep_ms(1);
	atomic_store(&pool->saw_stop, queue_run_stopped(run));
	atomic_store(&pool->returned, true);
	return outcome;
}

static enum queue_outcome
test_pool_until_stop_retry(void *ctx, struct queue_run *run)
{
	return test_pool_wait_stop(ctx, run, QUEUE_RETRY);
}

static enum queue_outcome
test_pool_until_stop_done(void *ctx, struct queue_run *run)
{
	return test_pool_wait_stop(ctx, run, QUEUE_DONE);
}

static bool
test_pool_flag(atomic_bool *flag)
{
	for (int ms = 0; ms < TEST_WAIT_MS && !atomic_load(flag); ms++)
		test_sleep_ms(1);
	return atomic_load(flag);
}

static void
test_pool_stop_interrupts(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job, waiting;
	struct test_pool pool;
	struct queue_opts opts;
	struct queue *q;
	int64_t before;

	test_pool_init(&pool, db->st);
	test_add_build(db, 10, 3, &b, &job);
	test_pool_opts(&opts, 2, 3000, 20);
	q = queue_start(db->st, &opts, test_pool_until_stop_retry, &pool);
	assert_non_null(q);
	assert_true(test_pool_flag(&pool.entered));

	/* Stopped mid-run: the job is at once runnable again. */
	before = util_now_ms();
	queue_stop(q);
	assert_true(atomic_load(&pool.saw_stop));
	assert_int_equal(store_job_of_build(db->st, b.id, &waiting),
	    STORE_OK);
	assert_string_equal(waiting.state, "waiting");
	assert_int_equal(waiting.attempts, 1);
	assert_true(waiting.run_at >= before);
	assert_true(waiting.run_at <= util_now_ms());
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "pending");
	assert_string_equal(got.error, "worker stopped");
	pthread_mutex_destroy(&pool.lock);
}

static void
test_pool_lease_lost(void **state)
{
	struct test_db *db = *state;
	struct store_build b, got;
	struct store_job job;
	struct test_pool pool;
	struct queue_opts opts;
	struct queue *q;

	/* Renewals every 10 ms; the build is cancelled mid-run. */
	test_pool_init(&pool, db->st);
	test_add_build(db, 10, 3, &b, &job);
	test_pool_opts(&opts, 1, 30, 20);
	q = queue_start(db->st, &opts, test_pool_until_stop_done, &pool);
	assert_non_null(q);
	assert_true(test_pool_flag(&pool.entered));
	assert_int_equal(store_build_cancel(db->st, "acme", b.id,
	    util_now_ms()), STORE_OK);

	/* The heartbeat, not queue_stop, told the handler to stop. */
	assert_true(test_pool_flag(&pool.returned));
	assert_true(atomic_load(&pool.saw_stop));
	queue_stop(q);

	/* Its DONE was not written: nothing was completed. */
	assert_int_equal(test_count(db, NULL), 0);
	test_get_build(db, b.id, &got);
	assert_string_equal(got.status, "cancelled");
	pthread_mutex_destroy(&pool.lock);
}

static void
test_pool_bad_opts(void **state)
{
	struct test_db *db = *state;
	struct test_pool pool;
	struct queue_opts opts;
	char node[QUEUE_NODE_MAX + 1];

	test_pool_init(&pool, db->st);
	queue_opts_default(&opts);
	assert_non_null(opts.node);
	assert_true(strlen(opts.node) < QUEUE_NODE_MAX);
	assert_non_null(strchr(opts.node, ':'));

	opts.workers = 0;
	assert_null(queue_start(db->st, &opts, test_pool_handler, &pool));
	queue_opts_default(&opts);
	memset(node, 'n', sizeof(node) - 1);
	node[sizeof(node) - 1] = '\0';
	opts.node = node;
	assert_null(queue_start(db->st, &opts, test_pool_handler, &pool));
	pthread_mutex_destroy(&pool.lock);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		TEST(test_priority_order),
		TEST(test_run_at),
		TEST(test_claim_fills),
		TEST(test_bad_owner),
		TEST(test_lease_reclaim),
		TEST(test_stalled_no_attempts),
		TEST(test_stalled_after_success),
		TEST(test_fail_retry),
		TEST(test_fail_final),
		TEST(test_fail_permanent),
		TEST(test_prune),
		TEST(test_progress_finish),
		TEST(test_cancel),
		TEST(test_retry),
		TEST(test_retry_cancelled),
		TEST(test_delete),
		TEST(test_claim_race),
		TEST(test_pool_end_to_end),
		TEST(test_pool_wake),
		TEST(test_pool_stop_interrupts),
		TEST(test_pool_lease_lost),
		TEST(test_pool_bad_opts),
	};

	/* Expected failures log warnings; keep the output to results. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
