/*
 * store: the metadata database.  Every SQL statement of Wharf lives
 * behind this interface; the rest of the code sees only the records
 * below.  The embedded backend is SQLite (WAL mode); PostgreSQL comes
 * as a second backend behind the same functions, so nothing here may
 * expose a SQLite type.
 *
 * Errors: every function returns an enum store_result.  STORE_ERROR
 * means the database failed; the backend has logged the cause, and
 * store_errmsg() of the same thread returns it.
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
	char    node[64];
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
	char    lease_owner[64];        /* "" when not claimed */
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

/* Message of the last STORE_ERROR on this thread ("" if none). */
const char *store_errmsg(void);

/*
 * Brings the schema up to STORE_SCHEMA_VERSION, each migration in its
 * own transaction.  *from and *to (either may be NULL) receive the
 * versions before and after.  Refuses (STORE_CONFLICT) a database newer
 * than this binary.
 */
enum store_result store_migrate(struct store *st, int *from, int *to);
/* Current schema version (0 for an empty database). */
enum store_result store_schema_version(struct store *st, int *version);

/* Users.  Emails are compared case-insensitively (stored lowercase). */
enum store_result store_user_add(struct store *st, const char *email,
    const char *password_hash, struct store_user *out);
enum store_result store_user_by_email(struct store *st, const char *email,
    struct store_user *out);
enum store_result store_user_by_id(struct store *st, const char *id,
    struct store_user *out);
enum store_result store_user_set_active(struct store *st, const char *email,
    bool active);

/* Tenants. */
enum store_result store_tenant_add(struct store *st, const char *slug,
    const char *name, struct store_tenant *out);
enum store_result store_tenant_get(struct store *st, const char *slug,
    struct store_tenant *out);

/*
 * Memberships.  member_set adds the membership, or updates the role and
 * reactivates an existing one.  member_remove deactivates it (the row
 * stays, so history and "inactive membership" remain visible);
 * STORE_NOT_FOUND when there is none.
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
 * records into out and sets *count.  *more is set when further builds
 * follow.
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
 * filled in.  STORE_NOT_FOUND if the tenant does not exist.
 */
enum store_result store_build_create(struct store *st,
    const struct store_build *b, const char *env_values_json,
    struct store_job *job);
enum store_result store_build_get(struct store *st, const char *tenant,
    const char *build_id, struct store_build *out);

#endif
