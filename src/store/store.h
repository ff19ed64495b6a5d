/*
 * store: the metadata database.  Every SQL statement of Wharf lives
 * behind this interface; the rest of the code sees only the records
 * below.  The embedded backend is SQLite (WAL mode); PostgreSQL comes
 * as a second backend behind the same functions, so nothing here may
 * expose a SQLite type.
 *
 * Errors: every function returns an enum store_result.  STORE_ERROR
 * means the database failed or an argument cannot be stored (too
 * long, an unknown role); the cause is logged (event store.error) and
 * store_errmsg() of the same thread returns it.  A reference to a row
 * that does not exist (a membership of an unknown user, a build of an
 * unknown tenant) is STORE_NOT_FOUND.
 *
 * Records passed in are only read; records filled out belong to the
 * caller.  The "out" argument of an add function may be NULL.
 *
 * Threads: one struct store is shared by every thread of a process;
 * the backend serialises or pools connections as it needs.
 *
 * Times are int64 milliseconds since the epoch, 0 meaning "not set".
 * Ids are UUID text (users, builds, jobs, deployments); a tenant's id
 * is its slug.
 */
#ifndef WHARF_STORE_H
#define WHARF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum store_result {
	STORE_OK = 0,
	STORE_NOT_FOUND,        /* no such row */
	STORE_CONFLICT,         /* unique key taken, or state forbids */
	STORE_ERROR,            /* database failure */
};

struct store;

/* Schema version this binary migrates to. */
#define STORE_SCHEMA_VERSION 1

#define STORE_ROLE_MAX   16
#define STORE_STATUS_MAX 16
#define STORE_HASH_MAX   256            /* password hash text */
#define STORE_OWNER_MAX  64             /* a job's lease owner, with NUL */

struct store_user {
	char    id[WHARF_ID_LEN + 1];
	char    email[WHARF_EMAIL_MAX + 1];
	char    password_hash[STORE_HASH_MAX];
	bool    is_active;
	int64_t created_at;
};

struct store_tenant {
	char    slug[WHARF_SLUG_MAX + 1];
	char    name[WHARF_NAME_MAX + 1];
	char    current_deployment[WHARF_ID_LEN + 1];  /* "" when none */
	int64_t created_at;
};

struct store_membership {
	char    tenant[WHARF_SLUG_MAX + 1];
	char    user_id[WHARF_ID_LEN + 1];
	char    role[STORE_ROLE_MAX];   /* owner, admin, member */
	bool    is_active;
	int64_t created_at;
};

/*
 * A build as the API shows it.  Strings are "" when unset.  The values
 * of environment variables are secrets and never loaded into this
 * record: env_names is a JSON array text of the names only.
 */
struct store_build {
	char    id[WHARF_ID_LEN + 1];
	char    tenant[WHARF_SLUG_MAX + 1];
	char    user_id[WHARF_ID_LEN + 1];
	char    version[40];
	char    status[STORE_STATUS_MAX];
	int     progress;
	char    framework[32];
	char    build_command[512];
	char    output_dir[256];
	char    node_version[32];
	char    env_names[2048];
	char    source_key[512];
	char    original_name[256];
	int64_t size;
	char    sha256[65];
	int64_t uploaded_at;
	int64_t started_at;
	int64_t finished_at;
	char    error[1024];
	char    error_step[32];
	char    node[STORE_OWNER_MAX];     /* owner of the latest claim */
	int64_t queue_wait_ms;
	int     attempts;
};

/* A queued build's job, as the queue sees it. */
struct store_job {
	char    id[WHARF_ID_LEN + 1];
	char    build_id[WHARF_ID_LEN + 1];
	int     priority;               /* lower runs first; default 10 */
	char    state[STORE_STATUS_MAX]; /* waiting active completed failed */
	int     attempts;               /* attempts made */
	int     max_attempts;           /* attempts allowed; default 3 */
	int64_t run_at;                 /* not claimable before */
	char    lease_owner[STORE_OWNER_MAX]; /* "" when not claimed */
	int64_t lease_expires;
	char    last_error[1024];
	int64_t created_at;
	int64_t finished_at;
};

/*
 * Opens the database named by url ("sqlite:/path/wharf.db"; a bare path
 * is taken as SQLite).  Does not migrate.  On failure returns NULL and
 * writes the reason into err.
 */
struct store *store_open(const char *url, char *err, size_t errlen);
void store_close(struct store *st);

/*
 * Message of the last STORE_ERROR on this thread, or of store_migrate
 * refusing a newer schema ("" if none).  Valid until the thread's next
 * failing store call.
 */
const char *store_errmsg(void);

/*
 * Brings the schema up to STORE_SCHEMA_VERSION, each migration in its
 * own transaction.  *from and *to (either may be NULL) receive the
 * versions before and after.  Refuses (STORE_CONFLICT, with a message
 * for store_errmsg) a database newer than this binary.  Safe to run
 * from several processes at once: each step re-checks the version in
 * its transaction.
 */
enum store_result store_migrate(struct store *st, int *from, int *to);
/* Current schema version (0 for an empty database). */
enum store_result store_schema_version(struct store *st, int *version);

/*
 * Users.  Emails are compared case-insensitively (stored lowercase).
 * user_add makes the id, sets is_active and created_at, and needs a
 * password_hash (the KDF's text, never the password); a taken email is
 * STORE_CONFLICT.
 */
enum store_result store_user_add(struct store *st, const char *email,
    const char *password_hash, struct store_user *out);
enum store_result store_user_by_email(struct store *st, const char *email,
    struct store_user *out);
enum store_result store_user_by_id(struct store *st, const char *id,
    struct store_user *out);
enum store_result store_user_set_active(struct store *st, const char *email,
    bool active);

/*
 * Tenants.  The caller validates the slug; name NULL means the slug.
 * A taken slug is STORE_CONFLICT.
 */
enum store_result store_tenant_add(struct store *st, const char *slug,
    const char *name, struct store_tenant *out);
enum store_result store_tenant_get(struct store *st, const char *slug,
    struct store_tenant *out);

/*
 * Memberships.  member_set adds the membership, or updates the role and
 * reactivates an existing one.  member_remove deactivates it (the row
 * stays, so history and "inactive membership" remain visible);
 * STORE_NOT_FOUND when there is none.  member_set of an unknown tenant
 * or user is STORE_NOT_FOUND, of a role other than owner, admin or
 * member STORE_ERROR.
 */
enum store_result store_member_set(struct store *st, const char *tenant,
    const char *user_id, const char *role);
enum store_result store_member_remove(struct store *st, const char *tenant,
    const char *user_id);
enum store_result store_member_get(struct store *st, const char *tenant,
    const char *user_id, struct store_membership *out);

/*
 * Builds of a tenant, newest first (uploaded_at, then id, descending).
 * status filters when not NULL.  cursor is NULL for the first page, or
 * the id of the last build of the previous page.  Fills at most max
 * records into out and sets *count.  *more (may be NULL) is set when
 * further builds follow.  A cursor that is no build of the tenant is
 * STORE_NOT_FOUND.
 */
enum store_result store_build_list(struct store *st, const char *tenant,
    const char *status, const char *cursor, struct store_build *out,
    size_t max, size_t *count, bool *more);
/*
 * Inserts build (id, tenant, user_id, version, status and the upload
 * fields set by the caller) and its job in one transaction: either both
 * rows exist afterwards or neither.  env_values_json is the JSON object
 * of environment variable values (secret; may be NULL).  job->id,
 * priority and max_attempts come from the caller; the rest of job is
 * filled in: build_id, state "waiting", attempts 0, run_at and
 * created_at now, no lease.  STORE_NOT_FOUND if the tenant or the user
 * does not exist, STORE_CONFLICT if either id is taken.
 */
enum store_result store_build_create(struct store *st,
    const struct store_build *b, const char *env_values_json,
    struct store_job *job);
enum store_result store_build_get(struct store *st, const char *tenant,
    const char *build_id, struct store_build *out);
/*
 * The build's environment variable values: the JSON object text given
 * to store_build_create, secret.  *json is a new string the caller
 * wipes and frees, or NULL when the build has none.
 */
enum store_result store_build_env_values(struct store *st,
    const char *build_id, char **json);

/*
 * The job queue.  Jobs live in the database next to their builds; a
 * claimed job is leased to one worker ("owner", unique per worker
 * thread and process, 1 to STORE_OWNER_MAX - 1 bytes) until
 * lease_expires, renewed by heartbeats.  Every transition below is one
 * transaction, and claiming is safe from many threads and processes at
 * once: no job is ever leased to two owners at the same time.
 *
 * Claim order is priority, then run_at, then created_at (then id, so
 * that jobs created in the same millisecond still have one order).
 * The error texts given to the functions below are cut to fit the
 * build record (store_build.error, store_build.error_step).
 */

/*
 * Claims the next runnable job: a waiting job with run_at <= now, or
 * an active job whose lease expired (lease_expires <= now: a stalled
 * job; the lost run counts as an attempt).  The job becomes active,
 * leased to owner until now + lease_ms, its attempts incremented; its
 * build becomes "building" with node = owner, attempts copied,
 * started_at (first claim only) and queue_wait_ms (now minus the job's
 * created_at) set.  On the way, a stalled job that has no attempts
 * left is failed instead ("worker lost", its build failed), and one
 * whose build already succeeded (its worker died between publishing
 * and ending the job) is completed without running again; the search
 * goes on.  Taking over a stalled job is logged (queue.reclaimed), as
 * is each job lost (queue.lost).  Fills job and build.
 * STORE_NOT_FOUND when nothing is runnable.
 */
enum store_result store_job_claim(struct store *st, const char *owner,
    int64_t now, int64_t lease_ms, struct store_job *job,
    struct store_build *build);

/*
 * Extends the lease of a job owner still holds to now + lease_ms, even
 * when it expired meanwhile as long as no one took the job over.
 * STORE_CONFLICT when owner no longer holds it (another worker took it
 * over, or the build was cancelled or deleted, or the job is gone for
 * any reason): the worker must stop working on it.
 */
enum store_result store_job_heartbeat(struct store *st, const char *job_id,
    const char *owner, int64_t now, int64_t lease_ms);

/*
 * Ends a job owner holds as completed (the handler has already set the
 * build's final status), then prunes completed jobs beyond the newest
 * keep_completed (by finished_at, across the whole queue; builds are
 * never pruned).  STORE_CONFLICT if owner does not hold it.
 */
enum store_result store_job_complete(struct store *st, const char *job_id,
    const char *owner, int64_t now, int keep_completed);

/*
 * Ends a run of a job owner holds as failed.  When retry_at > 0 and
 * attempts remain, the job waits again until retry_at (last_error =
 * error) and its build goes back to "pending" with progress 0 and
 * error and error_step noted; otherwise the job is failed and its
 * build "failed" with error, error_step and finished_at.  In that
 * second case failed jobs beyond the newest keep_failed are then
 * pruned, as store_job_complete does.  error and error_step may be
 * NULL for "".  *final (may be NULL) tells which happened.
 * STORE_CONFLICT if owner does not hold the job.
 */
enum store_result store_job_fail(struct store *st, const char *job_id,
    const char *owner, int64_t now, int64_t retry_at, const char *error,
    const char *error_step, int keep_failed, bool *final);

/*
 * Number of waiting jobs that will be claimed before job_id (in claim
 * order, whatever their run_at): 0 when it is first, or when it is no
 * longer waiting.  STORE_NOT_FOUND when the job does not exist.
 */
enum store_result store_job_position(struct store *st, const char *job_id,
    int64_t *ahead);

/*
 * The job of a build that is waiting or active, if any (the newest
 * one); STORE_NOT_FOUND when there is none.
 */
enum store_result store_job_of_build(struct store *st, const char *build_id,
    struct store_job *out);

/* Jobs in a state (NULL: all jobs), for tests and operators. */
enum store_result store_job_count(struct store *st, const char *state,
    int64_t *count);

/*
 * Records what the pipeline decided for a building build: framework,
 * build command ("" for none) and output folder.  STORE_CONFLICT when
 * the build is not building.
 */
enum store_result store_build_plan(struct store *st, const char *build_id,
    const char *framework, const char *build_command,
    const char *output_dir);

/*
 * Progress (0-100) of a build that is building.  STORE_CONFLICT when
 * it is in another status, STORE_NOT_FOUND when absent, STORE_ERROR
 * for a progress out of range.
 */
enum store_result store_build_progress(struct store *st,
    const char *build_id, int progress);

/*
 * Sets a building build's final status ("success" or "failed"),
 * error and error_step ("" or NULL for none) and finished_at; a
 * success also sets progress 100.  STORE_CONFLICT when it is not
 * building, STORE_NOT_FOUND when absent, STORE_ERROR for another
 * status.
 */
enum store_result store_build_finish(struct store *st, const char *build_id,
    const char *status, const char *error, const char *error_step,
    int64_t now);

/*
 * Cancels a pending or building build: status "cancelled", finished_at
 * now, its waiting or active job removed (a worker holding it loses it
 * at its next heartbeat).  STORE_CONFLICT when the build is in another
 * status; STORE_NOT_FOUND when the tenant has no such build.
 */
enum store_result store_build_cancel(struct store *st, const char *tenant,
    const char *build_id, int64_t now);

/*
 * Deletes a build, its jobs and its deployments.  A worker running it
 * loses its lease at the next heartbeat.  STORE_CONFLICT when one of
 * its deployments is the tenant's current deployment; STORE_NOT_FOUND
 * when the tenant has no such build.
 */
enum store_result store_build_delete(struct store *st, const char *tenant,
    const char *build_id);

/*
 * Queues a failed or cancelled build again: status "pending", progress
 * 0, error, error_step, node, started/finished times, queue wait and
 * attempts cleared, and a new job (job->id, priority and max_attempts
 * from the caller; the rest filled in as store_build_create does, with
 * now as run_at and created_at).  STORE_CONFLICT in another status or
 * when the job id is taken; STORE_NOT_FOUND when the tenant has no
 * such build.
 */
enum store_result store_build_retry(struct store *st, const char *tenant,
    const char *build_id, int64_t now, struct store_job *job);

/*
 * Deployments: a published build's files, listed in its manifest.  A
 * tenant serves at most one deployment at a time, its "current" one
 * (store_tenant.current_deployment), which is the only one in status
 * active.  The pointer flip that changes it is one transaction, and
 * every flip takes the next value of one global pointer sequence, so
 * an edge can ask for the flips it has not seen yet.
 *
 * Ids of tenants, builds and deployments that cannot exist (empty,
 * too long, not a slug) read as STORE_NOT_FOUND.
 */
struct store_deployment {
	char    id[WHARF_ID_LEN + 1];
	char    build_id[WHARF_ID_LEN + 1];
	char    tenant[WHARF_SLUG_MAX + 1];
	char    version[40];            /* the build's version (joined) */
	char    status[STORE_STATUS_MAX]; /* pending active inactive failed */
	int64_t file_count;
	int64_t bytes;
	char    manifest_key[256];
	int64_t created_at;
	int64_t activated_at;           /* last time it became current */
	int64_t deactivated_at;         /* last time it stopped being */
};

/*
 * Inserts d (id, build_id, tenant, file_count, bytes, manifest_key and
 * created_at set by the caller; its other fields are ignored) with
 * status "pending".  STORE_NOT_FOUND when the build is not the
 * tenant's; STORE_CONFLICT when the id is taken or the build already
 * has a deployment that is not failed; STORE_ERROR for an empty id or
 * a negative count.
 */
enum store_result store_deployment_create(struct store *st,
    const struct store_deployment *d);

/*
 * The pointer flip, one transaction: deployment_id (pending, active or
 * inactive) becomes the tenant's current deployment (status active,
 * activated_at now), the previous current one becomes inactive
 * (deactivated_at now), and the tenant takes the next pointer sequence
 * value.  prev (may be NULL) receives the previous current deployment
 * as it is after the flip, or an empty id when there was none.
 * Activating the current deployment again changes nothing (no new
 * sequence value) and succeeds, with the deployment itself in prev:
 * prev->id equal to deployment_id tells that nothing changed.
 * STORE_NOT_FOUND when the deployment is not the tenant's;
 * STORE_CONFLICT when it is failed.
 */
enum store_result store_deployment_activate(struct store *st,
    const char *tenant, const char *deployment_id, int64_t now,
    struct store_deployment *prev);

/*
 * Marks a pending deployment failed (its publish did not finish), which
 * lets its build get another one.  STORE_NOT_FOUND when there is no
 * such deployment, STORE_CONFLICT when it is not pending.
 */
enum store_result store_deployment_fail(struct store *st,
    const char *deployment_id);

/* STORE_NOT_FOUND when the tenant has no such deployment. */
enum store_result store_deployment_get(struct store *st, const char *tenant,
    const char *deployment_id, struct store_deployment *out);
/*
 * The deployment of the tenant's build that is not failed (there is
 * at most one); STORE_NOT_FOUND when there is none.
 */
enum store_result store_deployment_of_build(struct store *st,
    const char *tenant, const char *build_id, struct store_deployment *out);
/* The tenant's current deployment; STORE_NOT_FOUND when none. */
enum store_result store_deployment_current(struct store *st,
    const char *tenant, struct store_deployment *out);

/*
 * A tenant's deployments, newest first (created_at, id), at most max,
 * pending and failed ones included.  *count is set; *more (may be NULL)
 * tells whether more follow.  cursor: as store_build_list.
 */
enum store_result store_deployment_list(struct store *st,
    const char *tenant, const char *cursor, struct store_deployment *out,
    size_t max, size_t *count, bool *more);

/*
 * The tenant's inactive deployments that stopped being current at or
 * after since (deactivated_at >= since), most recently deactivated
 * first (then id, descending), at most max; *count is set.  What skew
 * protection may still serve from; the current deployment is not
 * among them, even if it was current before.
 */
enum store_result store_deployment_recent(struct store *st,
    const char *tenant, int64_t since, struct store_deployment *out,
    size_t max, size_t *count);

/*
 * Pointer changes: calls fn for each tenant whose pointer sequence is
 * greater than *seq, in sequence order, with the tenant and its current
 * deployment id ("" when none), and advances *seq to the sequence
 * value of each change fn took.  With *seq 0 it lists every tenant
 * that ever had a flip.  A tenant that flipped several times since
 * *seq comes once, with its latest deployment.  fn is called without
 * any lock of the store held, so it may call the store.  A non-zero
 * return from fn stops the walk: *seq stays at the last change fn
 * took (the next call starts again with the one it refused), and the
 * result is STORE_ERROR.
 */
enum store_result store_pointer_changes(struct store *st, int64_t *seq,
    int (*fn)(void *ctx, const char *tenant, const char *deployment_id),
    void *ctx);

/*
 * Custom domains.  A hostname is a DNS name of at most 253 characters:
 * two or more dot-separated labels of 1 to 63 characters [a-z0-9-],
 * none starting or ending with '-', the last not all digits (so no
 * IPv4 address), no trailing dot.  Hostnames are compared
 * case-insensitively: they are stored lowercase (ASCII), and each is
 * unique across tenants.
 *
 * add: STORE_CONFLICT when taken (by any tenant, this one included),
 * STORE_NOT_FOUND when the tenant does not exist, STORE_ERROR when
 * hostname is not a valid one.  remove: STORE_NOT_FOUND when the
 * tenant has no such domain.  lookup: the tenant of hostname,
 * STORE_NOT_FOUND when none.  list: the tenant's hostnames in byte
 * order, at most max, each NUL-terminated in STORE_HOST_MAX + 1 bytes,
 * and *count (0 for an unknown tenant).
 */
#define STORE_HOST_MAX 254
enum store_result store_domain_add(struct store *st, const char *tenant,
    const char *hostname, int64_t now);
enum store_result store_domain_remove(struct store *st, const char *tenant,
    const char *hostname);
enum store_result store_domain_lookup(struct store *st, const char *hostname,
    char tenant[WHARF_SLUG_MAX + 1]);
enum store_result store_domain_list(struct store *st, const char *tenant,
    char (*out)[STORE_HOST_MAX + 1], size_t max, size_t *count);

#endif
