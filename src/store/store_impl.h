/*
 * store_impl: what the store shares inside itself, between the
 * backend-neutral front (store.c, migrations.c) and the backends
 * (store_sqlite.c; a PostgreSQL one later).  Nothing outside src/store
 * includes this header.
 *
 * The front validates arguments, generates ids and times and fills the
 * records; a backend only moves records in and out of its database.
 * Every backend operation returns an enum store_result; on STORE_ERROR
 * it has already called store_error(), so the message is recorded for
 * store_errmsg() and logged.
 */
#ifndef WHARF_STORE_IMPL_H
#define WHARF_STORE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Pointer changes are read in pages of this many tenants. */
#define STORE_POINTER_PAGE      64

/* A tenant's pointer, as a pointer change reports it. */
struct store_pointer {
	int64_t seq;                            /* its pointer sequence */
	char    tenant[WHARF_SLUG_MAX + 1];
	char    deployment_id[WHARF_ID_LEN + 1]; /* "" when none */
};

/*
 * A backend's operations.  Each one is called with a struct store its
 * own open function made, and is safe to call from many threads at
 * once.  Strings passed in are owned by the caller and only read.
 */
struct store_ops {
	/* Frees everything the backend holds, st included. */
	void (*close)(struct store *st);

	/* Highest applied migration, 0 when none ever ran. */
	enum store_result (*schema_version)(struct store *st, int *version);
	/*
	 * In one transaction: creates the schema_migrations table if
	 * needed, and when the schema is at version - 1 runs sql and
	 * records version applied at now.  When another process got
	 * there first (the schema is already at version or beyond)
	 * changes nothing and sets *applied to false.
	 */
	enum store_result (*migration_apply)(struct store *st, int version,
	    const char *sql, int64_t now, bool *applied);

	enum store_result (*user_add)(struct store *st,
	    const struct store_user *user);
	/* email is already lowercase. */
	enum store_result (*user_by_email)(struct store *st,
	    const char *email, struct store_user *out);
	enum store_result (*user_by_id)(struct store *st, const char *id,
	    struct store_user *out);
	enum store_result (*user_set_active)(struct store *st,
	    const char *email, bool active);

	enum store_result (*tenant_add)(struct store *st,
	    const struct store_tenant *tenant);
	enum store_result (*tenant_get)(struct store *st, const char *slug,
	    struct store_tenant *out);

	/* Upsert: a new row as given, or role updated and reactivated. */
	enum store_result (*member_set)(struct store *st,
	    const struct store_membership *member);
	enum store_result (*member_remove)(struct store *st,
	    const char *tenant, const char *user_id);
	enum store_result (*member_get)(struct store *st, const char *tenant,
	    const char *user_id, struct store_membership *out);

	/* As store_build_list; more is never NULL here. */
	enum store_result (*build_list)(struct store *st, const char *tenant,
	    const char *status, const char *cursor, struct store_build *out,
	    size_t max, size_t *count, bool *more);
	/* Inserts both rows in one transaction; job is complete. */
	enum store_result (*build_create)(struct store *st,
	    const struct store_build *build, const char *env_values_json,
	    const struct store_job *job);
	enum store_result (*build_get)(struct store *st, const char *tenant,
	    const char *build_id, struct store_build *out);
	/* *json is a new string, or NULL when the build has none. */
	enum store_result (*build_env_values)(struct store *st,
	    const char *build_id, char **json);
	enum store_result (*build_plan)(struct store *st,
	    const char *build_id, const char *framework,
	    const char *build_command, const char *output_dir);

	/*
	 * The job queue, as in store.h, each one transaction.  The front
	 * has checked the arguments and turned durations into times; text
	 * arguments are never NULL and already fit the records.
	 */

	/*
	 * Claims as store_job_claim, the lease running to lease_expires.
	 * When the job claimed was a stalled one, copies its previous
	 * owner into stalled_owner (left "" otherwise), for the front to
	 * log.  Logs each job it fails as lost (store_log_job_lost).
	 */
	enum store_result (*job_claim)(struct store *st, const char *owner,
	    int64_t now, int64_t lease_expires, struct store_job *job,
	    struct store_build *build, char stalled_owner[STORE_OWNER_MAX]);
	enum store_result (*job_heartbeat)(struct store *st,
	    const char *job_id, const char *owner, int64_t lease_expires);
	enum store_result (*job_complete)(struct store *st,
	    const char *job_id, const char *owner, int64_t now,
	    int keep_completed);
	/* final is never NULL here. */
	enum store_result (*job_fail)(struct store *st, const char *job_id,
	    const char *owner, int64_t now, int64_t retry_at,
	    const char *error, const char *error_step, int keep_failed,
	    bool *final);
	enum store_result (*job_position)(struct store *st,
	    const char *job_id, int64_t *ahead);
	enum store_result (*job_of_build)(struct store *st,
	    const char *build_id, struct store_job *out);
	/* state NULL counts every job. */
	enum store_result (*job_count)(struct store *st, const char *state,
	    int64_t *count);

	enum store_result (*build_progress)(struct store *st,
	    const char *build_id, int progress);
	enum store_result (*build_finish)(struct store *st,
	    const char *build_id, const char *status, const char *error,
	    const char *error_step, int64_t now);
	enum store_result (*build_cancel)(struct store *st, const char *tenant,
	    const char *build_id, int64_t now);
	enum store_result (*build_delete)(struct store *st, const char *tenant,
	    const char *build_id);
	/* job is complete, as for build_create. */
	enum store_result (*build_retry)(struct store *st, const char *tenant,
	    const char *build_id, const struct store_job *job);

	/*
	 * Deployments, as in store.h.  The front has checked the ids and
	 * slugs; records and lists are as there, with prev, more and
	 * count never NULL and *count, *more preset to 0 and false.
	 */

	/* d is complete, status "pending". */
	enum store_result (*deployment_create)(struct store *st,
	    const struct store_deployment *d);
	/* The flip; prev receives what store_deployment_activate says. */
	enum store_result (*deployment_activate)(struct store *st,
	    const char *tenant, const char *deployment_id, int64_t now,
	    struct store_deployment *prev);
	enum store_result (*deployment_fail)(struct store *st,
	    const char *deployment_id);
	enum store_result (*deployment_get)(struct store *st,
	    const char *tenant, const char *deployment_id,
	    struct store_deployment *out);
	enum store_result (*deployment_of_build)(struct store *st,
	    const char *tenant, const char *build_id,
	    struct store_deployment *out);
	enum store_result (*deployment_current)(struct store *st,
	    const char *tenant, struct store_deployment *out);
	enum store_result (*deployment_list)(struct store *st,
	    const char *tenant, const char *cursor,
	    struct store_deployment *out, size_t max, size_t *count,
	    bool *more);
	enum store_result (*deployment_recent)(struct store *st,
	    const char *tenant, int64_t since, struct store_deployment *out,
	    size_t max, size_t *count);

	/*
	 * One page of pointer changes: the tenants whose pointer sequence
	 * is greater than after, in sequence order, at most max.  The
	 * front walks the pages and calls the caller's function between
	 * them, outside the backend.
	 */
	enum store_result (*pointer_changes)(struct store *st, int64_t after,
	    struct store_pointer *out, size_t max, size_t *count);

	/* Custom domains; hostname is valid and lowercase. */
	enum store_result (*domain_add)(struct store *st, const char *tenant,
	    const char *hostname, int64_t now);
	enum store_result (*domain_remove)(struct store *st,
	    const char *tenant, const char *hostname);
	enum store_result (*domain_lookup)(struct store *st,
	    const char *hostname, char tenant[WHARF_SLUG_MAX + 1]);
	enum store_result (*domain_list)(struct store *st, const char *tenant,
	    char (*out)[STORE_HOST_MAX + 1], size_t max, size_t *count);
};

/*
 * The common head of every backend's handle: a backend embeds it as
 * its first member and casts back.
 */
struct store {
	const struct store_ops *ops;
};

/*
 * Opens the SQLite database file at path (created if missing) and
 * returns a handle that store_close() frees, or NULL with the reason
 * in err.
 */
struct store *store_sqlite_open(const char *path, char *err,
    size_t errlen);

/*
 * SQL creating the schema_migrations table if it does not exist, and
 * the migrations, in order: store_migrations[0] brings version 0 to 1.
 * Portable between SQLite and PostgreSQL.  Defined in migrations.c.
 */
extern const char store_migrations_table[];
extern const char *const store_migrations[STORE_SCHEMA_VERSION];

/*
 * Records the message for store_errmsg() on this thread, logs it as
 * event store.error with op, and returns STORE_ERROR.
 */
enum store_result store_error(const char *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the message for store_errmsg() without logging it. */
void store_errmsg_set(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * What a claim writes when a stalled job had no attempts left: the
 * job's last_error and its build's error, lost_owner being the owner
 * whose lease expired.  Every backend uses the same words.
 */
#define STORE_WORKER_LOST_FMT   "worker lost: the lease of %s expired"

/*
 * Logs (event queue.lost) a stalled job that a claim failed for want
 * of attempts; job is as it was found, tenant its build's.
 */
void store_log_job_lost(const struct store_job *job, const char *tenant);

#endif
