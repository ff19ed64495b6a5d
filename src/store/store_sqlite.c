/*
 * store_sqlite: the embedded backend.
 *
 * One connection per process, opened in SQLite's serialized mode, and
 * a mutex of our own held across each store operation, so that the
 * statements of one transaction never interleave with another
 * thread's.  WAL journal with synchronous=NORMAL: readers in other
 * processes do not block the writer, and a commit costs no fsync of
 * the database file.  Several processes may share the file: write
 * transactions start with BEGIN IMMEDIATE and wait up to
 * STORE_SQLITE_BUSY_MS for the lock.
 *
 * Statements are prepared on first use and kept for the life of the
 * connection; every value goes through a bound parameter.  A
 * statement's parameters are numbered ?1, ?2... in the order the
 * store_sqlite_bind_*() calls bind them.
 */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/core.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store_impl.h"

#define STORE_SQLITE_BUSY_MS    5000

/* Every statement this backend runs, prepared once on first use. */
enum store_sqlite_query {
	STORE_SQLITE_BEGIN,
	STORE_SQLITE_COMMIT,
	STORE_SQLITE_ROLLBACK,
	STORE_SQLITE_HAS_MIGRATIONS,
	STORE_SQLITE_SCHEMA_VERSION,
	STORE_SQLITE_MIGRATION_RECORD,
	STORE_SQLITE_USER_ADD,
	STORE_SQLITE_USER_BY_EMAIL,
	STORE_SQLITE_USER_BY_ID,
	STORE_SQLITE_USER_SET_ACTIVE,
	STORE_SQLITE_TENANT_ADD,
	STORE_SQLITE_TENANT_GET,
	STORE_SQLITE_TENANT_EXISTS,
	STORE_SQLITE_MEMBER_SET,
	STORE_SQLITE_MEMBER_REMOVE,
	STORE_SQLITE_MEMBER_GET,
	STORE_SQLITE_BUILD_ADD,
	STORE_SQLITE_BUILD_GET,
	STORE_SQLITE_BUILD_CURSOR,
	STORE_SQLITE_BUILD_LIST,
	STORE_SQLITE_JOB_ADD,
	STORE_SQLITE_BUILD_BY_ID,
	STORE_SQLITE_BUILD_EXISTS,
	STORE_SQLITE_BUILD_EXISTS_IN,
	STORE_SQLITE_BUILD_ENV,
	STORE_SQLITE_BUILD_START,
	STORE_SQLITE_BUILD_REQUEUE,
	STORE_SQLITE_BUILD_FAIL,
	STORE_SQLITE_BUILD_PROGRESS,
	STORE_SQLITE_BUILD_FINISH,
	STORE_SQLITE_BUILD_PLAN,
	STORE_SQLITE_BUILD_CANCEL,
	STORE_SQLITE_BUILD_SERVED,
	STORE_SQLITE_BUILD_DELETE,
	STORE_SQLITE_BUILD_RESET,
	STORE_SQLITE_JOB_NEXT,
	STORE_SQLITE_JOB_HELD,
	STORE_SQLITE_JOB_LEASE,
	STORE_SQLITE_JOB_RENEW,
	STORE_SQLITE_JOB_WAIT,
	STORE_SQLITE_JOB_END,
	STORE_SQLITE_JOB_PRUNE,
	STORE_SQLITE_JOB_POSITION,
	STORE_SQLITE_JOB_OF_BUILD,
	STORE_SQLITE_JOB_COUNT,
	STORE_SQLITE_JOB_DROP_LIVE,
	STORE_SQLITE_JOB_DROP_ALL,
	STORE_SQLITE_DEPLOYMENT_ADD,
	STORE_SQLITE_DEPLOYMENT_GET,
	STORE_SQLITE_DEPLOYMENT_OF_BUILD,
	STORE_SQLITE_DEPLOYMENT_CURRENT,
	STORE_SQLITE_DEPLOYMENT_CURSOR,
	STORE_SQLITE_DEPLOYMENT_LIST,
	STORE_SQLITE_DEPLOYMENT_RECENT,
	STORE_SQLITE_DEPLOYMENT_EXISTS,
	STORE_SQLITE_DEPLOYMENT_FAIL,
	STORE_SQLITE_DEPLOYMENT_RETIRE,
	STORE_SQLITE_DEPLOYMENT_ACTIVATE,
	STORE_SQLITE_TENANT_POINTER,
	STORE_SQLITE_TENANT_FLIP,
	STORE_SQLITE_POINTER_CHANGES,
	STORE_SQLITE_DOMAIN_ADD,
	STORE_SQLITE_DOMAIN_REMOVE,
	STORE_SQLITE_DOMAIN_LOOKUP,
	STORE_SQLITE_DOMAIN_LIST,
	STORE_SQLITE_NQUERIES
};

#define STORE_SQLITE_USER_COLS \
	"id, email, password_hash, is_active, created_at"

#define STORE_SQLITE_BUILD_COLS \
	"id, tenant, user_id, version, status, progress, framework, " \
	"build_command, output_dir, node_version, env_names, source_key, " \
	"original_name, size, sha256, uploaded_at, started_at, " \
	"finished_at, error, error_step, node, queue_wait_ms, attempts"

#define STORE_SQLITE_JOB_COLS \
	"id, build_id, priority, state, attempts, max_attempts, run_at, " \
	"lease_owner, lease_expires, last_error, created_at, finished_at"

/* A deployment with its build's version: d, joined with b. */
#define STORE_SQLITE_DEPLOYMENT_COLS \
	"d.id, d.build_id, d.tenant, b.version, d.status, d.file_count, " \
	"d.bytes, d.manifest_key, d.created_at, d.activated_at, " \
	"d.deactivated_at"
#define STORE_SQLITE_DEPLOYMENT_FROM \
	" FROM deployments d JOIN builds b ON b.id = d.build_id"

/* The claim order, which store_job_position counts in too. */
#define STORE_SQLITE_JOB_ORDER "priority, run_at, created_at, id"

static const char *const store_sqlite_sql[STORE_SQLITE_NQUERIES] = {
	[STORE_SQLITE_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_SQLITE_COMMIT] = "COMMIT",
	[STORE_SQLITE_ROLLBACK] = "ROLLBACK",
	[STORE_SQLITE_HAS_MIGRATIONS] =
	    "SELECT 1 FROM sqlite_master"
	    " WHERE type = 'table' AND name = 'schema_migrations'",
	[STORE_SQLITE_SCHEMA_VERSION] =
	    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
	[STORE_SQLITE_MIGRATION_RECORD] =
	    "INSERT INTO schema_migrations (version, applied_at)"
	    " VALUES (?1, ?2)",

	[STORE_SQLITE_USER_ADD] =
	    "INSERT INTO users (" STORE_SQLITE_USER_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5)",
	[STORE_SQLITE_USER_BY_EMAIL] =
	    "SELECT " STORE_SQLITE_USER_COLS " FROM users WHERE email = ?1",
	[STORE_SQLITE_USER_BY_ID] =
	    "SELECT " STORE_SQLITE_USER_COLS " FROM users WHERE id = ?1",
	[STORE_SQLITE_USER_SET_ACTIVE] =
	    "UPDATE users SET is_active = ?1 WHERE email = ?2",

	[STORE_SQLITE_TENANT_ADD] =
	    "INSERT INTO tenants (slug, name, current_deployment, created_at)"
	    " VALUES (?1, ?2, NULL, ?3)",
	[STORE_SQLITE_TENANT_GET] =
	    "SELECT slug, name, current_deployment, created_at"
	    " FROM tenants WHERE slug = ?1",
	[STORE_SQLITE_TENANT_EXISTS] =
	    "SELECT 1 FROM tenants WHERE slug = ?1",

	[STORE_SQLITE_MEMBER_SET] =
	    "INSERT INTO memberships"
	    " (tenant, user_id, role, is_active, created_at)"
	    " VALUES (?1, ?2, ?3, 1, ?4)"
	    " ON CONFLICT (tenant, user_id)"
	    " DO UPDATE SET role = excluded.role, is_active = 1",
	[STORE_SQLITE_MEMBER_REMOVE] =
	    "UPDATE memberships SET is_active = 0"
	    " WHERE tenant = ?1 AND user_id = ?2",
	[STORE_SQLITE_MEMBER_GET] =
	    "SELECT tenant, user_id, role, is_active, created_at"
	    " FROM memberships WHERE tenant = ?1 AND user_id = ?2",

	[STORE_SQLITE_BUILD_ADD] =
	    "INSERT INTO builds (" STORE_SQLITE_BUILD_COLS ", env_values)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
	    " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
	[STORE_SQLITE_BUILD_GET] =
	    "SELECT " STORE_SQLITE_BUILD_COLS
	    " FROM builds WHERE tenant = ?1 AND id = ?2",
	[STORE_SQLITE_BUILD_ENV] =
	    "SELECT env_values FROM builds WHERE id = ?1",
	[STORE_SQLITE_BUILD_CURSOR] =
	    "SELECT uploaded_at FROM builds WHERE tenant = ?1 AND id = ?2",
	/* Row values keep the cursor a range seek on the index. */
	[STORE_SQLITE_BUILD_LIST] =
	    "SELECT " STORE_SQLITE_BUILD_COLS " FROM builds"
	    " WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2)"
	    " AND (uploaded_at, id) < (?3, ?4)"
	    " ORDER BY uploaded_at DESC, id DESC LIMIT ?5",

	[STORE_SQLITE_JOB_ADD] =
	    "INSERT INTO jobs (" STORE_SQLITE_JOB_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",

	/* The job queue's builds. */
	[STORE_SQLITE_BUILD_BY_ID] =
	    "SELECT " STORE_SQLITE_BUILD_COLS " FROM builds WHERE id = ?1",
	[STORE_SQLITE_BUILD_EXISTS] =
	    "SELECT 1 FROM builds WHERE id = ?1",
	[STORE_SQLITE_BUILD_EXISTS_IN] =
	    "SELECT 1 FROM builds WHERE tenant = ?1 AND id = ?2",
	[STORE_SQLITE_BUILD_START] =
	    "UPDATE builds SET status = 'building', node = ?1, attempts = ?2,"
	    " started_at = CASE WHEN started_at = 0 THEN ?3"
	    "  ELSE started_at END,"
	    " queue_wait_ms = ?4 WHERE id = ?5",
	[STORE_SQLITE_BUILD_REQUEUE] =
	    "UPDATE builds SET status = 'pending', progress = 0, error = ?1,"
	    " error_step = ?2"
	    " WHERE id = ?3 AND status IN ('building', 'failed')",
	[STORE_SQLITE_BUILD_FAIL] =
	    "UPDATE builds SET status = 'failed', error = ?1, error_step = ?2,"
	    " finished_at = ?3"
	    " WHERE id = ?4 AND status IN ('pending', 'building', 'failed')",
	[STORE_SQLITE_BUILD_PROGRESS] =
	    "UPDATE builds SET progress = ?1"
	    " WHERE id = ?2 AND status = 'building'",
	[STORE_SQLITE_BUILD_FINISH] =
	    "UPDATE builds SET status = ?1, error = ?2, error_step = ?3,"
	    " finished_at = ?4,"
	    " progress = CASE WHEN ?1 = 'success' THEN 100 ELSE progress END"
	    " WHERE id = ?5 AND status = 'building'",
	[STORE_SQLITE_BUILD_PLAN] =
	    "UPDATE builds SET framework = ?1, build_command = ?2,"
	    " output_dir = ?3 WHERE id = ?4 AND status = 'building'",
	[STORE_SQLITE_BUILD_CANCEL] =
	    "UPDATE builds SET status = 'cancelled', finished_at = ?1"
	    " WHERE tenant = ?2 AND id = ?3"
	    " AND status IN ('pending', 'building')",
	/* The tenant serves a deployment of this build. */
	[STORE_SQLITE_BUILD_SERVED] =
	    "SELECT 1 FROM tenants t"
	    " JOIN deployments d ON d.id = t.current_deployment"
	    " WHERE t.slug = ?1 AND d.build_id = ?2",
	[STORE_SQLITE_BUILD_DELETE] =
	    "DELETE FROM builds WHERE tenant = ?1 AND id = ?2",
	[STORE_SQLITE_BUILD_RESET] =
	    "UPDATE builds SET status = 'pending', progress = 0, error = '',"
	    " error_step = '', node = '', started_at = 0, finished_at = 0,"
	    " queue_wait_ms = 0, attempts = 0"
	    " WHERE tenant = ?1 AND id = ?2"
	    " AND status IN ('failed', 'cancelled')",

	/* Jobs. */
	[STORE_SQLITE_JOB_NEXT] =
	    "SELECT " STORE_SQLITE_JOB_COLS " FROM jobs"
	    " WHERE (state = 'waiting' AND run_at <= ?1)"
	    " OR (state = 'active' AND lease_expires <= ?1)"
	    " ORDER BY " STORE_SQLITE_JOB_ORDER " LIMIT 1",
	[STORE_SQLITE_JOB_HELD] =
	    "SELECT " STORE_SQLITE_JOB_COLS " FROM jobs"
	    " WHERE id = ?1 AND state = 'active' AND lease_owner = ?2",
	[STORE_SQLITE_JOB_LEASE] =
	    "UPDATE jobs SET state = 'active', attempts = attempts + 1,"
	    " lease_owner = ?1, lease_expires = ?2 WHERE id = ?3",
	[STORE_SQLITE_JOB_RENEW] =
	    "UPDATE jobs SET lease_expires = ?1"
	    " WHERE id = ?2 AND state = 'active' AND lease_owner = ?3",
	[STORE_SQLITE_JOB_WAIT] =
	    "UPDATE jobs SET state = 'waiting', run_at = ?1,"
	    " lease_owner = '', lease_expires = 0, last_error = ?2"
	    " WHERE id = ?3",
	[STORE_SQLITE_JOB_END] =
	    "UPDATE jobs SET state = ?1, lease_owner = '', lease_expires = 0,"
	    " last_error = ?2, finished_at = ?3 WHERE id = ?4",
	/* Ended jobs of a state but the newest ?2. */
	[STORE_SQLITE_JOB_PRUNE] =
	    "DELETE FROM jobs WHERE state = ?1 AND id NOT IN"
	    " (SELECT id FROM jobs WHERE state = ?1"
	    "  ORDER BY finished_at DESC, id DESC LIMIT ?2)",
	/* Row values: the waiting jobs that sort before this one. */
	[STORE_SQLITE_JOB_POSITION] =
	    "SELECT me.state, (SELECT COUNT(*) FROM jobs j"
	    "  WHERE j.state = 'waiting'"
	    "  AND (j.priority, j.run_at, j.created_at, j.id)"
	    "  < (me.priority, me.run_at, me.created_at, me.id))"
	    " FROM jobs me WHERE me.id = ?1",
	[STORE_SQLITE_JOB_OF_BUILD] =
	    "SELECT " STORE_SQLITE_JOB_COLS " FROM jobs"
	    " WHERE build_id = ?1 AND state IN ('waiting', 'active')"
	    " ORDER BY created_at DESC, id DESC LIMIT 1",
	[STORE_SQLITE_JOB_COUNT] =
	    "SELECT COUNT(*) FROM jobs WHERE ?1 IS NULL OR state = ?1",
	[STORE_SQLITE_JOB_DROP_LIVE] =
	    "DELETE FROM jobs"
	    " WHERE build_id = ?1 AND state IN ('waiting', 'active')",
	[STORE_SQLITE_JOB_DROP_ALL] =
	    "DELETE FROM jobs WHERE build_id = ?1",

	/* Deployments. */
	[STORE_SQLITE_DEPLOYMENT_ADD] =
	    "INSERT INTO deployments (id, build_id, tenant, status,"
	    " file_count, bytes, manifest_key, created_at, activated_at,"
	    " deactivated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[STORE_SQLITE_DEPLOYMENT_GET] =
	    "SELECT " STORE_SQLITE_DEPLOYMENT_COLS STORE_SQLITE_DEPLOYMENT_FROM
	    " WHERE d.tenant = ?1 AND d.id = ?2",
	[STORE_SQLITE_DEPLOYMENT_OF_BUILD] =
	    "SELECT " STORE_SQLITE_DEPLOYMENT_COLS STORE_SQLITE_DEPLOYMENT_FROM
	    " WHERE d.tenant = ?1 AND d.build_id = ?2"
	    " AND d.status <> 'failed'",
	[STORE_SQLITE_DEPLOYMENT_CURRENT] =
	    "SELECT " STORE_SQLITE_DEPLOYMENT_COLS STORE_SQLITE_DEPLOYMENT_FROM
	    " JOIN tenants t ON t.current_deployment = d.id"
	    " AND t.slug = d.tenant"
	    " WHERE t.slug = ?1",
	[STORE_SQLITE_DEPLOYMENT_CURSOR] =
	    "SELECT created_at FROM deployments WHERE tenant = ?1 AND id = ?2",
	/* Row values keep the cursor a range seek on the index. */
	[STORE_SQLITE_DEPLOYMENT_LIST] =
	    "SELECT " STORE_SQLITE_DEPLOYMENT_COLS STORE_SQLITE_DEPLOYMENT_FROM
	    " WHERE d.tenant = ?1 AND (d.created_at, d.id) < (?2, ?3)"
	    " ORDER BY d.created_at DESC, d.id DESC LIMIT ?4",
	[STORE_SQLITE_DEPLOYMENT_RECENT] =
	    "SELECT " STORE_SQLITE_DEPLOYMENT_COLS STORE_SQLITE_DEPLOYMENT_FROM
	    " WHERE d.tenant = ?1 AND d.status = 'inactive'"
	    " AND d.deactivated_at >= ?2"
	    " ORDER BY d.deactivated_at DESC, d.id DESC LIMIT ?3",
	[STORE_SQLITE_DEPLOYMENT_EXISTS] =
	    "SELECT 1 FROM deployments WHERE id = ?1",
	[STORE_SQLITE_DEPLOYMENT_FAIL] =
	    "UPDATE deployments SET status = 'failed'"
	    " WHERE id = ?1 AND status = 'pending'",
	/* Every active one but the new: the invariant, even if broken. */
	[STORE_SQLITE_DEPLOYMENT_RETIRE] =
	    "UPDATE deployments SET status = 'inactive', deactivated_at = ?1"
	    " WHERE tenant = ?2 AND status = 'active' AND id <> ?3",
	[STORE_SQLITE_DEPLOYMENT_ACTIVATE] =
	    "UPDATE deployments SET status = 'active', activated_at = ?1"
	    " WHERE tenant = ?2 AND id = ?3 AND status <> 'failed'",
	[STORE_SQLITE_TENANT_POINTER] =
	    "SELECT current_deployment FROM tenants WHERE slug = ?1",
	/*
	 * The next pointer sequence value: SQLite serialises writers
	 * (BEGIN IMMEDIATE), so MAX + 1 read inside the flip's
	 * transaction is unique and the values commit in their order.
	 * PostgreSQL will use a SEQUENCE (nextval) instead, and must
	 * make flips commit in sequence order (or its readers look back)
	 * so that no edge skips a value committed late.
	 */
	[STORE_SQLITE_TENANT_FLIP] =
	    "UPDATE tenants SET current_deployment = ?1,"
	    " pointer_seq = (SELECT COALESCE(MAX(pointer_seq), 0) + 1"
	    "  FROM tenants)"
	    " WHERE slug = ?2",
	[STORE_SQLITE_POINTER_CHANGES] =
	    "SELECT pointer_seq, slug, current_deployment FROM tenants"
	    " WHERE pointer_seq > ?1 ORDER BY pointer_seq LIMIT ?2",

	/* Custom domains. */
	[STORE_SQLITE_DOMAIN_ADD] =
	    "INSERT INTO domains (hostname, tenant, created_at)"
	    " VALUES (?1, ?2, ?3)",
	[STORE_SQLITE_DOMAIN_REMOVE] =
	    "DELETE FROM domains WHERE tenant = ?1 AND hostname = ?2",
	[STORE_SQLITE_DOMAIN_LOOKUP] =
	    "SELECT tenant FROM domains WHERE hostname = ?1",
	/* Byte order (on PostgreSQL, the column's collation must be C). */
	[STORE_SQLITE_DOMAIN_LIST] =
	    "SELECT hostname FROM domains WHERE tenant = ?1"
	    " ORDER BY hostname LIMIT ?2",
};

struct store_sqlite {
	struct store    base;           /* first: cast from struct store */
	sqlite3        *db;
	pthread_mutex_t lock;           /* held across each operation */
	sqlite3_stmt   *stmts[STORE_SQLITE_NQUERIES];
};

/*
 * One use of a prepared statement: parameters bound in order, columns
 * read in order.  rc keeps the first failure of a prepare or bind.
 */
struct store_sqlite_call {
	sqlite3_stmt   *stmt;
	int             param;          /* last parameter bound */
	int             col;            /* next column to read */
	int             rc;
};

static struct store_sqlite *
store_sqlite_of(struct store *st)
{
	return (struct store_sqlite *)st;
}

static void
store_sqlite_lock(struct store_sqlite *sq)
{
	int rc = pthread_mutex_lock(&sq->lock);

	assert(rc == 0);
	(void)rc;
}

static void
store_sqlite_unlock(struct store_sqlite *sq)
{
	int rc = pthread_mutex_unlock(&sq->lock);

	assert(rc == 0);
	(void)rc;
}

/*
 * Maps a failed SQLite call to a result: a taken unique key is a
 * conflict, a missing referenced row (foreign key) is "not found", and
 * anything else an error, recorded and logged with op.
 */
static enum store_result
store_sqlite_result(struct store_sqlite *sq, const char *op, int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_CONFLICT;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return STORE_NOT_FOUND;
	default:
		return store_error(op, "%s (%s)", sqlite3_errmsg(sq->db),
		    sqlite3_errstr(rc));
	}
}

/* Starts a call of query q, preparing its statement the first time. */
static void
store_sqlite_prepare(struct store_sqlite *sq, enum store_sqlite_query q,
    struct store_sqlite_call *call)
{
	memset(call, 0, sizeof(*call));
	if (sq->stmts[q] == NULL)
		call->rc = sqlite3_prepare_v3(sq->db, store_sqlite_sql[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &sq->stmts[q], NULL);
	call->stmt = sq->stmts[q];
}

/*
 * Ends a call: resets the statement, which ends its read of the
 * database, and unbinds the caller's strings it pointed to.
 */
static void
store_sqlite_finish(struct store_sqlite_call *call)
{
	if (call->stmt == NULL)
		return;
	sqlite3_reset(call->stmt);
	sqlite3_clear_bindings(call->stmt);
	call->stmt = NULL;
}

/*
 * Binds s (NULL binds SQL NULL) without copying it: s must outlive the
 * call, which store_sqlite_finish() ends.
 */
static void
store_sqlite_bind_text(struct store_sqlite_call *call, const char *s)
{
	if (call->rc != SQLITE_OK)
		return;
	call->param++;
	if (s == NULL)
		call->rc = sqlite3_bind_null(call->stmt, call->param);
	else
		call->rc = sqlite3_bind_text(call->stmt, call->param, s, -1,
		    SQLITE_STATIC);
}

static void
store_sqlite_bind_int64(struct store_sqlite_call *call, int64_t v)
{
	if (call->rc != SQLITE_OK)
		return;
	call->param++;
	call->rc = sqlite3_bind_int64(call->stmt, call->param, v);
}

/* SQLITE_ROW, SQLITE_DONE, or the failure code. */
static int
store_sqlite_step(struct store_sqlite_call *call)
{
	if (call->rc != SQLITE_OK)
		return call->rc;
	call->col = 0;
	return sqlite3_step(call->stmt);
}

/* Copies the next column into dst, truncated to size; NULL reads "". */
static void
store_sqlite_col_text(struct store_sqlite_call *call, char *dst,
    size_t size)
{
	const unsigned char *text = sqlite3_column_text(call->stmt,
	    call->col++);

	snprintf(dst, size, "%s", text != NULL ? (const char *)text : "");
}

static int64_t
store_sqlite_col_int64(struct store_sqlite_call *call)
{
	return sqlite3_column_int64(call->stmt, call->col++);
}

static int
store_sqlite_col_int(struct store_sqlite_call *call)
{
	return sqlite3_column_int(call->stmt, call->col++);
}

/*
 * Runs the prepared write of call to completion.  *changes (when not
 * NULL) receives the number of rows it changed.
 */
static enum store_result
store_sqlite_write(struct store_sqlite *sq, const char *op,
    struct store_sqlite_call *call, int *changes)
{
	int rc = store_sqlite_step(call);

	if (rc != SQLITE_DONE)
		return store_sqlite_result(sq, op, rc);
	if (changes != NULL)
		*changes = sqlite3_changes(sq->db);
	return STORE_OK;
}

/*
 * Runs the one-value query q with up to two text parameters (NULL
 * ones are not bound) and reads its first column into *value when not
 * NULL.  STORE_NOT_FOUND when it returns no row.
 */
static enum store_result
store_sqlite_scalar(struct store_sqlite *sq, const char *op,
    enum store_sqlite_query q, const char *arg1, const char *arg2,
    int64_t *value)
{
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_prepare(sq, q, &call);
	if (arg1 != NULL)
		store_sqlite_bind_text(&call, arg1);
	if (arg2 != NULL)
		store_sqlite_bind_text(&call, arg2);

	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW && value != NULL)
		*value = store_sqlite_col_int64(&call);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		r = store_sqlite_result(sq, op, rc);
	store_sqlite_finish(&call);
	return r;
}

/* Runs BEGIN IMMEDIATE, COMMIT or ROLLBACK. */
static enum store_result
store_sqlite_tx(struct store_sqlite *sq, const char *op,
    enum store_sqlite_query q)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, q, &call);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/*
 * Rolls back the open transaction, if SQLite has not already done so
 * itself after the failure that brought us here.  A failure here is
 * logged but leaves store_errmsg() with the cause of the first one.
 */
static void
store_sqlite_rollback(struct store_sqlite *sq)
{
	struct store_sqlite_call call;
	char quoted[WHARF_ERRMSG_MAX];
	int rc;

	if (sqlite3_get_autocommit(sq->db))
		return;
	store_sqlite_prepare(sq, STORE_SQLITE_ROLLBACK, &call);
	rc = store_sqlite_step(&call);
	if (rc != SQLITE_DONE)
		log_warnx("store.error", "op=rollback err=%s",
		    log_q(quoted, sizeof(quoted), sqlite3_errmsg(sq->db)));
	store_sqlite_finish(&call);
}

static void
store_sqlite_close(struct store *st)
{
	struct store_sqlite *sq = store_sqlite_of(st);

	for (int q = 0; q < STORE_SQLITE_NQUERIES; q++)
		sqlite3_finalize(sq->stmts[q]);
	if (sq->db != NULL && sqlite3_close(sq->db) != SQLITE_OK)
		log_warnx("store.close", "err=busy");
	pthread_mutex_destroy(&sq->lock);
	free(sq);
}

/* Schema */

static enum store_result
store_sqlite_schema_version_locked(struct store_sqlite *sq, int *version)
{
	enum store_result r;
	int64_t v = 0;

	*version = 0;
	r = store_sqlite_scalar(sq, "schema_version",
	    STORE_SQLITE_HAS_MIGRATIONS, NULL, NULL, NULL);
	if (r == STORE_NOT_FOUND)
		return STORE_OK;                /* never migrated */
	if (r != STORE_OK)
		return r;

	r = store_sqlite_scalar(sq, "schema_version",
	    STORE_SQLITE_SCHEMA_VERSION, NULL, NULL, &v);
	if (r == STORE_OK)
		*version = (int)v;
	return r;
}

static enum store_result
store_sqlite_schema_version(struct store *st, int *version)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	store_sqlite_lock(sq);
	r = store_sqlite_schema_version_locked(sq, version);
	store_sqlite_unlock(sq);
	return r;
}

/* Runs sql, a constant script of several statements, and records it. */
static enum store_result
store_sqlite_migration_run(struct store_sqlite *sq, int version,
    const char *sql, int64_t now)
{
	struct store_sqlite_call call;
	enum store_result r;
	int rc;

	rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_result(sq, "migrate", rc);

	store_sqlite_prepare(sq, STORE_SQLITE_MIGRATION_RECORD, &call);
	store_sqlite_bind_int64(&call, version);
	store_sqlite_bind_int64(&call, now);
	r = store_sqlite_write(sq, "migrate", &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/*
 * Inside the migration's transaction: makes sure schema_migrations
 * exists, then applies version when the schema is just below it.
 */
static enum store_result
store_sqlite_migration_step(struct store_sqlite *sq, int version,
    const char *sql, int64_t now, bool *applied)
{
	enum store_result r;
	int current = 0, rc;

	rc = sqlite3_exec(sq->db, store_migrations_table, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_result(sq, "migrate", rc);
	r = store_sqlite_schema_version_locked(sq, &current);
	if (r != STORE_OK || current >= version)
		return r;               /* another process was first */
	if (current != version - 1)
		return store_error("migrate", "schema at version %d cannot "
		    "take migration %d", current, version);

	r = store_sqlite_migration_run(sq, version, sql, now);
	*applied = r == STORE_OK;
	return r;
}

static enum store_result
store_sqlite_migration_apply(struct store *st, int version,
    const char *sql, int64_t now, bool *applied)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	*applied = false;
	store_sqlite_lock(sq);
	r = store_sqlite_tx(sq, "migrate", STORE_SQLITE_BEGIN);
	if (r != STORE_OK)
		goto out;
	r = store_sqlite_migration_step(sq, version, sql, now, applied);
	if (r == STORE_OK)
		r = store_sqlite_tx(sq, "migrate", STORE_SQLITE_COMMIT);
out:
	if (r != STORE_OK) {
		*applied = false;
		store_sqlite_rollback(sq);
	}
	store_sqlite_unlock(sq);
	return r;
}

/* Users */

static void
store_sqlite_read_user(struct store_sqlite_call *call,
    struct store_user *user)
{
	memset(user, 0, sizeof(*user));
	store_sqlite_col_text(call, user->id, sizeof(user->id));
	store_sqlite_col_text(call, user->email, sizeof(user->email));
	store_sqlite_col_text(call, user->password_hash,
	    sizeof(user->password_hash));
	user->is_active = store_sqlite_col_int(call) != 0;
	user->created_at = store_sqlite_col_int64(call);
}

static enum store_result
store_sqlite_user_add(struct store *st, const struct store_user *user)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_USER_ADD, &call);
	store_sqlite_bind_text(&call, user->id);
	store_sqlite_bind_text(&call, user->email);
	store_sqlite_bind_text(&call, user->password_hash);
	store_sqlite_bind_int64(&call, user->is_active);
	store_sqlite_bind_int64(&call, user->created_at);
	r = store_sqlite_write(sq, "user_add", &call, NULL);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* The user whose email or id (as query q selects) is key. */
static enum store_result
store_sqlite_user_get(struct store_sqlite *sq, enum store_sqlite_query q,
    const char *key, struct store_user *out)
{
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, q, &call);
	store_sqlite_bind_text(&call, key);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW)
		store_sqlite_read_user(&call, out);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "user_get", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_user_by_email(struct store *st, const char *email,
    struct store_user *out)
{
	return store_sqlite_user_get(store_sqlite_of(st),
	    STORE_SQLITE_USER_BY_EMAIL, email, out);
}

static enum store_result
store_sqlite_user_by_id(struct store *st, const char *id,
    struct store_user *out)
{
	return store_sqlite_user_get(store_sqlite_of(st),
	    STORE_SQLITE_USER_BY_ID, id, out);
}

static enum store_result
store_sqlite_user_set_active(struct store *st, const char *email,
    bool active)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;
	int changes = 0;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_USER_SET_ACTIVE, &call);
	store_sqlite_bind_int64(&call, active);
	store_sqlite_bind_text(&call, email);
	r = store_sqlite_write(sq, "user_set_active", &call, &changes);
	if (r == STORE_OK && changes == 0)
		r = STORE_NOT_FOUND;
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* Tenants */

static enum store_result
store_sqlite_tenant_add(struct store *st, const struct store_tenant *tenant)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_TENANT_ADD, &call);
	store_sqlite_bind_text(&call, tenant->slug);
	store_sqlite_bind_text(&call, tenant->name);
	store_sqlite_bind_int64(&call, tenant->created_at);
	r = store_sqlite_write(sq, "tenant_add", &call, NULL);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_tenant_get(struct store *st, const char *slug,
    struct store_tenant *out)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_TENANT_GET, &call);
	store_sqlite_bind_text(&call, slug);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		store_sqlite_col_text(&call, out->slug, sizeof(out->slug));
		store_sqlite_col_text(&call, out->name, sizeof(out->name));
		store_sqlite_col_text(&call, out->current_deployment,
		    sizeof(out->current_deployment));
		out->created_at = store_sqlite_col_int64(&call);
	} else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "tenant_get", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* Memberships */

static enum store_result
store_sqlite_member_set(struct store *st,
    const struct store_membership *member)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	/* An unknown tenant or user fails its foreign key: not found. */
	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_MEMBER_SET, &call);
	store_sqlite_bind_text(&call, member->tenant);
	store_sqlite_bind_text(&call, member->user_id);
	store_sqlite_bind_text(&call, member->role);
	store_sqlite_bind_int64(&call, member->created_at);
	r = store_sqlite_write(sq, "member_set", &call, NULL);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_member_remove(struct store *st, const char *tenant,
    const char *user_id)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;
	int changes = 0;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_MEMBER_REMOVE, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, user_id);
	r = store_sqlite_write(sq, "member_remove", &call, &changes);
	if (r == STORE_OK && changes == 0)
		r = STORE_NOT_FOUND;
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_member_get(struct store *st, const char *tenant,
    const char *user_id, struct store_membership *out)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_MEMBER_GET, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, user_id);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		store_sqlite_col_text(&call, out->tenant, sizeof(out->tenant));
		store_sqlite_col_text(&call, out->user_id,
		    sizeof(out->user_id));
		store_sqlite_col_text(&call, out->role, sizeof(out->role));
		out->is_active = store_sqlite_col_int(&call) != 0;
		out->created_at = store_sqlite_col_int64(&call);
	} else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "member_get", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* Builds and their jobs */

/* Reads the STORE_SQLITE_BUILD_COLS of the current row, in order. */
static void
store_sqlite_read_build(struct store_sqlite_call *call,
    struct store_build *b)
{
	memset(b, 0, sizeof(*b));
	store_sqlite_col_text(call, b->id, sizeof(b->id));
	store_sqlite_col_text(call, b->tenant, sizeof(b->tenant));
	store_sqlite_col_text(call, b->user_id, sizeof(b->user_id));
	store_sqlite_col_text(call, b->version, sizeof(b->version));
	store_sqlite_col_text(call, b->status, sizeof(b->status));
	b->progress = store_sqlite_col_int(call);
	store_sqlite_col_text(call, b->framework, sizeof(b->framework));
	store_sqlite_col_text(call, b->build_command,
	    sizeof(b->build_command));
	store_sqlite_col_text(call, b->output_dir, sizeof(b->output_dir));
	store_sqlite_col_text(call, b->node_version, sizeof(b->node_version));
	store_sqlite_col_text(call, b->env_names, sizeof(b->env_names));
	store_sqlite_col_text(call, b->source_key, sizeof(b->source_key));
	store_sqlite_col_text(call, b->original_name,
	    sizeof(b->original_name));
	b->size = store_sqlite_col_int64(call);
	store_sqlite_col_text(call, b->sha256, sizeof(b->sha256));
	b->uploaded_at = store_sqlite_col_int64(call);
	b->started_at = store_sqlite_col_int64(call);
	b->finished_at = store_sqlite_col_int64(call);
	store_sqlite_col_text(call, b->error, sizeof(b->error));
	store_sqlite_col_text(call, b->error_step, sizeof(b->error_step));
	store_sqlite_col_text(call, b->node, sizeof(b->node));
	b->queue_wait_ms = store_sqlite_col_int64(call);
	b->attempts = store_sqlite_col_int(call);
}

/* Binds the STORE_SQLITE_BUILD_COLS of b, in order. */
static void
store_sqlite_bind_build(struct store_sqlite_call *call,
    const struct store_build *b)
{
	store_sqlite_bind_text(call, b->id);
	store_sqlite_bind_text(call, b->tenant);
	store_sqlite_bind_text(call, b->user_id);
	store_sqlite_bind_text(call, b->version);
	store_sqlite_bind_text(call, b->status);
	store_sqlite_bind_int64(call, b->progress);
	store_sqlite_bind_text(call, b->framework);
	store_sqlite_bind_text(call, b->build_command);
	store_sqlite_bind_text(call, b->output_dir);
	store_sqlite_bind_text(call, b->node_version);
	store_sqlite_bind_text(call, b->env_names[0] != '\0' ?
	    b->env_names : "[]");
	store_sqlite_bind_text(call, b->source_key);
	store_sqlite_bind_text(call, b->original_name);
	store_sqlite_bind_int64(call, b->size);
	store_sqlite_bind_text(call, b->sha256);
	store_sqlite_bind_int64(call, b->uploaded_at);
	store_sqlite_bind_int64(call, b->started_at);
	store_sqlite_bind_int64(call, b->finished_at);
	store_sqlite_bind_text(call, b->error);
	store_sqlite_bind_text(call, b->error_step);
	store_sqlite_bind_text(call, b->node);
	store_sqlite_bind_int64(call, b->queue_wait_ms);
	store_sqlite_bind_int64(call, b->attempts);
}

static enum store_result
store_sqlite_build_insert(struct store_sqlite *sq,
    const struct store_build *b, const char *env_values_json)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_ADD, &call);
	store_sqlite_bind_build(&call, b);
	store_sqlite_bind_text(&call, env_values_json);
	r = store_sqlite_write(sq, "build_create", &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

static enum store_result
store_sqlite_job_insert(struct store_sqlite *sq, const char *op,
    const struct store_job *job)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_ADD, &call);
	store_sqlite_bind_text(&call, job->id);
	store_sqlite_bind_text(&call, job->build_id);
	store_sqlite_bind_int64(&call, job->priority);
	store_sqlite_bind_text(&call, job->state);
	store_sqlite_bind_int64(&call, job->attempts);
	store_sqlite_bind_int64(&call, job->max_attempts);
	store_sqlite_bind_int64(&call, job->run_at);
	store_sqlite_bind_text(&call, job->lease_owner);
	store_sqlite_bind_int64(&call, job->lease_expires);
	store_sqlite_bind_text(&call, job->last_error);
	store_sqlite_bind_int64(&call, job->created_at);
	store_sqlite_bind_int64(&call, job->finished_at);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

static enum store_result
store_sqlite_build_create(struct store *st, const struct store_build *b,
    const char *env_values_json, const struct store_job *job)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	store_sqlite_lock(sq);
	r = store_sqlite_tx(sq, "build_create", STORE_SQLITE_BEGIN);
	if (r != STORE_OK)
		goto out;

	/* Checked first so that an unknown tenant reads as one. */
	r = store_sqlite_scalar(sq, "build_create",
	    STORE_SQLITE_TENANT_EXISTS, b->tenant, NULL, NULL);
	if (r != STORE_OK)
		goto out;

	r = store_sqlite_build_insert(sq, b, env_values_json);
	if (r != STORE_OK)
		goto out;
	r = store_sqlite_job_insert(sq, "build_create", job);
	if (r != STORE_OK)
		goto out;
	r = store_sqlite_tx(sq, "build_create", STORE_SQLITE_COMMIT);
out:
	if (r != STORE_OK)
		store_sqlite_rollback(sq);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_build_get(struct store *st, const char *tenant,
    const char *build_id, struct store_build *out)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_GET, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, build_id);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW)
		store_sqlite_read_build(&call, out);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "build_get", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_build_env_values(struct store *st, const char *build_id,
    char **json)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	const unsigned char *text;
	int rc;

	*json = NULL;
	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_ENV, &call);
	store_sqlite_bind_text(&call, build_id);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW) {
		text = sqlite3_column_text(call.stmt, 0);
		if (text != NULL && (*json = strdup((const char *)text)) ==
		    NULL)
			r = STORE_ERROR;
	} else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "build_env_values", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/*
 * Reads up to max rows of the list query into out, then one more row
 * to learn whether further builds follow.
 */
static enum store_result
store_sqlite_build_rows(struct store_sqlite *sq,
    struct store_sqlite_call *call, struct store_build *out, size_t max,
    size_t *count, bool *more)
{
	int rc;

	while ((rc = store_sqlite_step(call)) == SQLITE_ROW) {
		if (*count == max) {
			*more = true;
			return STORE_OK;
		}
		store_sqlite_read_build(call, &out[*count]);
		(*count)++;
	}
	if (rc != SQLITE_DONE)
		return store_sqlite_result(sq, "build_list", rc);
	return STORE_OK;
}

static enum store_result
store_sqlite_build_list(struct store *st, const char *tenant,
    const char *status, const char *cursor, struct store_build *out,
    size_t max, size_t *count, bool *more)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	int64_t before_time = INT64_MAX;
	const char *before_id = "";
	enum store_result r;

	/* The first page starts before any possible (time, id). */
	store_sqlite_lock(sq);
	if (cursor != NULL) {
		r = store_sqlite_scalar(sq, "build_list",
		    STORE_SQLITE_BUILD_CURSOR, tenant, cursor, &before_time);
		if (r != STORE_OK)
			goto out;
		before_id = cursor;
	}

	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_LIST, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, status);
	store_sqlite_bind_int64(&call, before_time);
	store_sqlite_bind_text(&call, before_id);
	store_sqlite_bind_int64(&call, max < INT32_MAX ? (int64_t)max + 1 :
	    INT32_MAX);
	r = store_sqlite_build_rows(sq, &call, out, max, count, more);
out:
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* The job queue */

/*
 * Takes the lock and opens a write transaction.  store_sqlite_end()
 * must follow, whatever this returns.
 */
static enum store_result
store_sqlite_begin(struct store_sqlite *sq, const char *op)
{
	store_sqlite_lock(sq);
	return store_sqlite_tx(sq, op, STORE_SQLITE_BEGIN);
}

/*
 * Commits when r is STORE_OK, else rolls back, then releases the lock.
 * Returns r, or the failure of the commit.
 */
static enum store_result
store_sqlite_end(struct store_sqlite *sq, const char *op,
    enum store_result r)
{
	if (r == STORE_OK)
		r = store_sqlite_tx(sq, op, STORE_SQLITE_COMMIT);
	if (r != STORE_OK)
		store_sqlite_rollback(sq);
	store_sqlite_unlock(sq);
	return r;
}

/* Reads the STORE_SQLITE_JOB_COLS of the current row, in order. */
static void
store_sqlite_read_job(struct store_sqlite_call *call, struct store_job *job)
{
	memset(job, 0, sizeof(*job));
	store_sqlite_col_text(call, job->id, sizeof(job->id));
	store_sqlite_col_text(call, job->build_id, sizeof(job->build_id));
	job->priority = store_sqlite_col_int(call);
	store_sqlite_col_text(call, job->state, sizeof(job->state));
	job->attempts = store_sqlite_col_int(call);
	job->max_attempts = store_sqlite_col_int(call);
	job->run_at = store_sqlite_col_int64(call);
	store_sqlite_col_text(call, job->lease_owner,
	    sizeof(job->lease_owner));
	job->lease_expires = store_sqlite_col_int64(call);
	store_sqlite_col_text(call, job->last_error, sizeof(job->last_error));
	job->created_at = store_sqlite_col_int64(call);
	job->finished_at = store_sqlite_col_int64(call);
}

/*
 * Runs the prepared job query of call, reads its first row into job
 * and ends the call.  STORE_NOT_FOUND when it returns no row.
 */
static enum store_result
store_sqlite_job_row(struct store_sqlite *sq, const char *op,
    struct store_sqlite_call *call, struct store_job *job)
{
	enum store_result r = STORE_OK;
	int rc = store_sqlite_step(call);

	if (rc == SQLITE_ROW)
		store_sqlite_read_job(call, job);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, op, rc);
	store_sqlite_finish(call);
	return r;
}

static enum store_result
store_sqlite_build_by_id(struct store_sqlite *sq, const char *op,
    const char *build_id, struct store_build *out)
{
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_BY_ID, &call);
	store_sqlite_bind_text(&call, build_id);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW)
		store_sqlite_read_build(&call, out);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, op, rc);
	store_sqlite_finish(&call);
	return r;
}

/*
 * Runs the prepared update of one build in call, guarded by the
 * build's status, and ends the call.  When it changed nothing, tells
 * why: STORE_NOT_FOUND when there is no such build (of tenant, unless
 * tenant is NULL), else STORE_CONFLICT, its status forbidding it.
 */
static enum store_result
store_sqlite_build_update(struct store_sqlite *sq, const char *op,
    struct store_sqlite_call *call, const char *tenant,
    const char *build_id)
{
	enum store_result r;
	int changes = 0;

	r = store_sqlite_write(sq, op, call, &changes);
	store_sqlite_finish(call);
	if (r != STORE_OK || changes > 0)
		return r;

	if (tenant != NULL)
		r = store_sqlite_scalar(sq, op, STORE_SQLITE_BUILD_EXISTS_IN,
		    tenant, build_id, NULL);
	else
		r = store_sqlite_scalar(sq, op, STORE_SQLITE_BUILD_EXISTS,
		    build_id, NULL, NULL);
	return r == STORE_OK ? STORE_CONFLICT : r;
}

/*
 * Fails the build of an ending job, unless it already ended otherwise
 * (success, cancelled): the build's own status wins.
 */
static enum store_result
store_sqlite_build_fail(struct store_sqlite *sq, const char *op,
    const char *build_id, const char *error, const char *error_step,
    int64_t now)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_FAIL, &call);
	store_sqlite_bind_text(&call, error);
	store_sqlite_bind_text(&call, error_step);
	store_sqlite_bind_int64(&call, now);
	store_sqlite_bind_text(&call, build_id);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* Ends a job as state ("completed" or "failed") with last_error. */
static enum store_result
store_sqlite_job_end(struct store_sqlite *sq, const char *op,
    const char *job_id, const char *state, const char *last_error,
    int64_t now)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_END, &call);
	store_sqlite_bind_text(&call, state);
	store_sqlite_bind_text(&call, last_error);
	store_sqlite_bind_int64(&call, now);
	store_sqlite_bind_text(&call, job_id);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* Deletes the jobs in state but the keep newest ended ones. */
static enum store_result
store_sqlite_job_prune(struct store_sqlite *sq, const char *op,
    const char *state, int keep)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_PRUNE, &call);
	store_sqlite_bind_text(&call, state);
	store_sqlite_bind_int64(&call, keep);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* The job owner holds, into job; STORE_CONFLICT when none. */
static enum store_result
store_sqlite_job_held(struct store_sqlite *sq, const char *op,
    const char *job_id, const char *owner, struct store_job *job)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_HELD, &call);
	store_sqlite_bind_text(&call, job_id);
	store_sqlite_bind_text(&call, owner);
	r = store_sqlite_job_row(sq, op, &call, job);
	return r == STORE_NOT_FOUND ? STORE_CONFLICT : r;
}

/* Runs the one-parameter write q (deleting a build's jobs). */
static enum store_result
store_sqlite_job_drop(struct store_sqlite *sq, const char *op,
    enum store_sqlite_query q, const char *build_id)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, q, &call);
	store_sqlite_bind_text(&call, build_id);
	r = store_sqlite_write(sq, op, &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* Claiming */

/* One claim's arguments, and whether it found a job. */
struct store_sqlite_claim {
	const char         *owner;
	int64_t             now;
	int64_t             lease_expires;
	struct store_job   *job;
	struct store_build *build;
	char               *stalled_owner;  /* STORE_OWNER_MAX bytes */
	bool                found;
};

/* The first job in claim order that is runnable at now, and its build. */
static enum store_result
store_sqlite_job_next(struct store_sqlite *sq,
    struct store_sqlite_claim *c)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_NEXT, &call);
	store_sqlite_bind_int64(&call, c->now);
	r = store_sqlite_job_row(sq, "job_claim", &call, c->job);
	if (r != STORE_OK)
		return r;

	r = store_sqlite_build_by_id(sq, "job_claim", c->job->build_id,
	    c->build);
	if (r == STORE_NOT_FOUND)
		r = store_error("job_claim", "job %s has no build %s",
		    c->job->id, c->job->build_id);
	return r;
}

/* Fails a stalled job that has no attempts left, and its build. */
static enum store_result
store_sqlite_job_lost(struct store_sqlite *sq, const struct store_job *job,
    const struct store_build *build, int64_t now)
{
	char message[sizeof(STORE_WORKER_LOST_FMT) + STORE_OWNER_MAX];
	enum store_result r;

	snprintf(message, sizeof(message), STORE_WORKER_LOST_FMT,
	    job->lease_owner);
	r = store_sqlite_job_end(sq, "job_claim", job->id, "failed", message,
	    now);
	if (r == STORE_OK)
		r = store_sqlite_build_fail(sq, "job_claim", job->build_id,
		    message, "", now);
	if (r == STORE_OK)
		store_log_job_lost(job, build->tenant);
	return r;
}

/* Leases the job found to the claim's owner and starts its build. */
static enum store_result
store_sqlite_job_lease(struct store_sqlite *sq,
    struct store_sqlite_claim *c)
{
	struct store_job *job = c->job;
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_LEASE, &call);
	store_sqlite_bind_text(&call, c->owner);
	store_sqlite_bind_int64(&call, c->lease_expires);
	store_sqlite_bind_text(&call, job->id);
	r = store_sqlite_write(sq, "job_claim", &call, NULL);
	store_sqlite_finish(&call);
	if (r != STORE_OK)
		return r;

	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_START, &call);
	store_sqlite_bind_text(&call, c->owner);
	store_sqlite_bind_int64(&call, job->attempts + 1);
	store_sqlite_bind_int64(&call, c->now);
	store_sqlite_bind_int64(&call, c->now - job->created_at);
	store_sqlite_bind_text(&call, job->build_id);
	r = store_sqlite_write(sq, "job_claim", &call, NULL);
	store_sqlite_finish(&call);
	if (r != STORE_OK)
		return r;

	/* The job as now stored; the build read back whole. */
	snprintf(job->state, sizeof(job->state), "active");
	job->attempts++;
	snprintf(job->lease_owner, sizeof(job->lease_owner), "%s", c->owner);
	job->lease_expires = c->lease_expires;
	return store_sqlite_build_by_id(sq, "job_claim", job->build_id,
	    c->build);
}

/*
 * Inside the claim's transaction: skips over (ending them) the jobs
 * that must not run, then leases the first one that may.
 */
static enum store_result
store_sqlite_job_claim_tx(struct store_sqlite *sq,
    struct store_sqlite_claim *c)
{
	enum store_result r;
	bool stalled;

	for (;;) {
		r = store_sqlite_job_next(sq, c);
		if (r == STORE_NOT_FOUND)
			return STORE_OK;        /* nothing runnable */
		if (r != STORE_OK)
			return r;

		/* Each case below ends the job: the loop moves on. */
		stalled = strcmp(c->job->state, "active") == 0;
		if (strcmp(c->build->status, "success") == 0)
			r = store_sqlite_job_end(sq, "job_claim", c->job->id,
			    "completed", c->job->last_error, c->now);
		else if (stalled && c->job->attempts >= c->job->max_attempts)
			r = store_sqlite_job_lost(sq, c->job, c->build, c->now);
		else
			break;
		if (r != STORE_OK)
			return r;
	}

	if (stalled)
		snprintf(c->stalled_owner, STORE_OWNER_MAX, "%s",
		    c->job->lease_owner);
	r = store_sqlite_job_lease(sq, c);
	c->found = r == STORE_OK;
	return r;
}

static enum store_result
store_sqlite_job_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_expires, struct store_job *job, struct store_build *build,
    char stalled_owner[STORE_OWNER_MAX])
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_claim c = {
		.owner = owner, .now = now, .lease_expires = lease_expires,
		.job = job, .build = build, .stalled_owner = stalled_owner,
	};
	enum store_result r;

	r = store_sqlite_begin(sq, "job_claim");
	if (r == STORE_OK)
		r = store_sqlite_job_claim_tx(sq, &c);
	/* Commits the jobs ended on the way even when none was found. */
	r = store_sqlite_end(sq, "job_claim", r);
	if (r == STORE_OK && !c.found)
		r = STORE_NOT_FOUND;
	return r;
}

/* Runs, renewals and ends */

static enum store_result
store_sqlite_job_heartbeat(struct store *st, const char *job_id,
    const char *owner, int64_t lease_expires)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	enum store_result r;
	int changes = 0;

	r = store_sqlite_begin(sq, "job_heartbeat");
	if (r != STORE_OK)
		goto out;
	store_sqlite_prepare(sq, STORE_SQLITE_JOB_RENEW, &call);
	store_sqlite_bind_int64(&call, lease_expires);
	store_sqlite_bind_text(&call, job_id);
	store_sqlite_bind_text(&call, owner);
	r = store_sqlite_write(sq, "job_heartbeat", &call, &changes);
	if (r == STORE_OK && changes == 0)
		r = STORE_CONFLICT;             /* not owner's any more */
out:
	store_sqlite_finish(&call);
	return store_sqlite_end(sq, "job_heartbeat", r);
}

static enum store_result
store_sqlite_job_complete(struct store *st, const char *job_id,
    const char *owner, int64_t now, int keep_completed)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_job job;
	enum store_result r;

	r = store_sqlite_begin(sq, "job_complete");
	if (r == STORE_OK)
		r = store_sqlite_job_held(sq, "job_complete", job_id, owner,
		    &job);
	if (r == STORE_OK)
		r = store_sqlite_job_end(sq, "job_complete", job_id,
		    "completed", job.last_error, now);
	if (r == STORE_OK)
		r = store_sqlite_job_prune(sq, "job_complete", "completed",
		    keep_completed);
	return store_sqlite_end(sq, "job_complete", r);
}

/* Puts a failed run's job back to wait until retry_at. */
static enum store_result
store_sqlite_job_requeue(struct store_sqlite *sq,
    const struct store_job *job, int64_t retry_at, const char *error,
    const char *error_step)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_JOB_WAIT, &call);
	store_sqlite_bind_int64(&call, retry_at);
	store_sqlite_bind_text(&call, error);
	store_sqlite_bind_text(&call, job->id);
	r = store_sqlite_write(sq, "job_fail", &call, NULL);
	store_sqlite_finish(&call);
	if (r != STORE_OK)
		return r;

	/* A build the handler already ended as failed waits again too. */
	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_REQUEUE, &call);
	store_sqlite_bind_text(&call, error);
	store_sqlite_bind_text(&call, error_step);
	store_sqlite_bind_text(&call, job->build_id);
	r = store_sqlite_write(sq, "job_fail", &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* Fails a job for good, with its build, and prunes failed jobs. */
static enum store_result
store_sqlite_job_fail_final(struct store_sqlite *sq,
    const struct store_job *job, int64_t now, const char *error,
    const char *error_step, int keep_failed)
{
	enum store_result r;

	r = store_sqlite_job_end(sq, "job_fail", job->id, "failed", error,
	    now);
	if (r == STORE_OK)
		r = store_sqlite_build_fail(sq, "job_fail", job->build_id,
		    error, error_step, now);
	if (r == STORE_OK)
		r = store_sqlite_job_prune(sq, "job_fail", "failed",
		    keep_failed);
	return r;
}

static enum store_result
store_sqlite_job_fail(struct store *st, const char *job_id,
    const char *owner, int64_t now, int64_t retry_at, const char *error,
    const char *error_step, int keep_failed, bool *final)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_job job;
	enum store_result r;

	r = store_sqlite_begin(sq, "job_fail");
	if (r == STORE_OK)
		r = store_sqlite_job_held(sq, "job_fail", job_id, owner, &job);
	if (r != STORE_OK)
		goto out;

	/* Another run while attempts remain, else failed for good. */
	*final = retry_at <= 0 || job.attempts >= job.max_attempts;
	if (*final)
		r = store_sqlite_job_fail_final(sq, &job, now, error,
		    error_step, keep_failed);
	else
		r = store_sqlite_job_requeue(sq, &job, retry_at, error,
		    error_step);
out:
	r = store_sqlite_end(sq, "job_fail", r);
	if (r != STORE_OK)
		*final = false;
	return r;
}

/* Reading the queue */

static enum store_result
store_sqlite_job_position(struct store *st, const char *job_id,
    int64_t *ahead)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	char state[STORE_STATUS_MAX];
	enum store_result r = STORE_OK;
	int rc;

	/* One statement: the job and the count read one snapshot. */
	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_JOB_POSITION, &call);
	store_sqlite_bind_text(&call, job_id);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW) {
		store_sqlite_col_text(&call, state, sizeof(state));
		*ahead = store_sqlite_col_int64(&call);
		if (strcmp(state, "waiting") != 0)
			*ahead = 0;
	} else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, "job_position", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_job_of_build(struct store *st, const char *build_id,
    struct store_job *out)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_JOB_OF_BUILD, &call);
	store_sqlite_bind_text(&call, build_id);
	r = store_sqlite_job_row(sq, "job_of_build", &call, out);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_job_count(struct store *st, const char *state,
    int64_t *count)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	/* A NULL state is left unbound: ?1 reads NULL, counting all. */
	store_sqlite_lock(sq);
	r = store_sqlite_scalar(sq, "job_count", STORE_SQLITE_JOB_COUNT,
	    state, NULL, count);
	store_sqlite_unlock(sq);
	return r;
}

/* Builds, as the pipeline and the API change them */

static enum store_result
store_sqlite_build_progress(struct store *st, const char *build_id,
    int progress)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_progress");
	if (r == STORE_OK) {
		store_sqlite_prepare(sq, STORE_SQLITE_BUILD_PROGRESS, &call);
		store_sqlite_bind_int64(&call, progress);
		store_sqlite_bind_text(&call, build_id);
		r = store_sqlite_build_update(sq, "build_progress", &call,
		    NULL, build_id);
	}
	return store_sqlite_end(sq, "build_progress", r);
}

static enum store_result
store_sqlite_build_plan(struct store *st, const char *build_id,
    const char *framework, const char *build_command,
    const char *output_dir)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_plan");
	if (r == STORE_OK) {
		store_sqlite_prepare(sq, STORE_SQLITE_BUILD_PLAN, &call);
		store_sqlite_bind_text(&call, framework);
		store_sqlite_bind_text(&call, build_command);
		store_sqlite_bind_text(&call, output_dir);
		store_sqlite_bind_text(&call, build_id);
		r = store_sqlite_build_update(sq, "build_plan", &call,
		    NULL, build_id);
	}
	return store_sqlite_end(sq, "build_plan", r);
}

static enum store_result
store_sqlite_build_finish(struct store *st, const char *build_id,
    const char *status, const char *error, const char *error_step,
    int64_t now)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_finish");
	if (r == STORE_OK) {
		store_sqlite_prepare(sq, STORE_SQLITE_BUILD_FINISH, &call);
		store_sqlite_bind_text(&call, status);
		store_sqlite_bind_text(&call, error);
		store_sqlite_bind_text(&call, error_step);
		store_sqlite_bind_int64(&call, now);
		store_sqlite_bind_text(&call, build_id);
		r = store_sqlite_build_update(sq, "build_finish", &call, NULL,
		    build_id);
	}
	return store_sqlite_end(sq, "build_finish", r);
}

static enum store_result
store_sqlite_build_cancel(struct store *st, const char *tenant,
    const char *build_id, int64_t now)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_cancel");
	if (r != STORE_OK)
		goto out;
	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_CANCEL, &call);
	store_sqlite_bind_int64(&call, now);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, build_id);
	r = store_sqlite_build_update(sq, "build_cancel", &call, tenant,
	    build_id);

	/* Its worker, if any, learns it at the next heartbeat. */
	if (r == STORE_OK)
		r = store_sqlite_job_drop(sq, "build_cancel",
		    STORE_SQLITE_JOB_DROP_LIVE, build_id);
out:
	return store_sqlite_end(sq, "build_cancel", r);
}

static enum store_result
store_sqlite_build_delete(struct store *st, const char *tenant,
    const char *build_id)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_delete");
	if (r == STORE_OK)
		r = store_sqlite_scalar(sq, "build_delete",
		    STORE_SQLITE_BUILD_EXISTS_IN, tenant, build_id, NULL);
	if (r != STORE_OK)
		goto out;

	/* The site the tenant serves cannot lose its build. */
	r = store_sqlite_scalar(sq, "build_delete", STORE_SQLITE_BUILD_SERVED,
	    tenant, build_id, NULL);
	if (r == STORE_OK)
		r = STORE_CONFLICT;
	else if (r == STORE_NOT_FOUND)
		r = store_sqlite_job_drop(sq, "build_delete",
		    STORE_SQLITE_JOB_DROP_ALL, build_id);
	if (r != STORE_OK)
		goto out;

	/* Its deployments go with it (ON DELETE CASCADE). */
	store_sqlite_prepare(sq, STORE_SQLITE_BUILD_DELETE, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, build_id);
	r = store_sqlite_write(sq, "build_delete", &call, NULL);
	store_sqlite_finish(&call);
out:
	return store_sqlite_end(sq, "build_delete", r);
}

static enum store_result
store_sqlite_build_retry(struct store *st, const char *tenant,
    const char *build_id, const struct store_job *job)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;

	r = store_sqlite_begin(sq, "build_retry");
	if (r == STORE_OK) {
		store_sqlite_prepare(sq, STORE_SQLITE_BUILD_RESET, &call);
		store_sqlite_bind_text(&call, tenant);
		store_sqlite_bind_text(&call, build_id);
		r = store_sqlite_build_update(sq, "build_retry", &call, tenant,
		    build_id);
	}
	if (r == STORE_OK)
		r = store_sqlite_job_insert(sq, "build_retry", job);
	return store_sqlite_end(sq, "build_retry", r);
}

/* Deployments */

/* Reads the STORE_SQLITE_DEPLOYMENT_COLS of the current row, in order. */
static void
store_sqlite_read_deployment(struct store_sqlite_call *call,
    struct store_deployment *d)
{
	memset(d, 0, sizeof(*d));
	store_sqlite_col_text(call, d->id, sizeof(d->id));
	store_sqlite_col_text(call, d->build_id, sizeof(d->build_id));
	store_sqlite_col_text(call, d->tenant, sizeof(d->tenant));
	store_sqlite_col_text(call, d->version, sizeof(d->version));
	store_sqlite_col_text(call, d->status, sizeof(d->status));
	d->file_count = store_sqlite_col_int64(call);
	d->bytes = store_sqlite_col_int64(call);
	store_sqlite_col_text(call, d->manifest_key,
	    sizeof(d->manifest_key));
	d->created_at = store_sqlite_col_int64(call);
	d->activated_at = store_sqlite_col_int64(call);
	d->deactivated_at = store_sqlite_col_int64(call);
}

/*
 * Runs the deployment query q with text parameters arg1 and arg2 (NULL
 * ones are not bound) and reads its first row into out.
 * STORE_NOT_FOUND when it returns no row.
 */
static enum store_result
store_sqlite_deployment_row(struct store_sqlite *sq, const char *op,
    enum store_sqlite_query q, const char *arg1, const char *arg2,
    struct store_deployment *out)
{
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_prepare(sq, q, &call);
	store_sqlite_bind_text(&call, arg1);
	if (arg2 != NULL)
		store_sqlite_bind_text(&call, arg2);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW)
		store_sqlite_read_deployment(&call, out);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, op, rc);
	store_sqlite_finish(&call);
	return r;
}

/* As store_sqlite_deployment_row, under the lock. */
static enum store_result
store_sqlite_deployment_read(struct store *st, const char *op,
    enum store_sqlite_query q, const char *arg1, const char *arg2,
    struct store_deployment *out)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	store_sqlite_lock(sq);
	r = store_sqlite_deployment_row(sq, op, q, arg1, arg2, out);
	store_sqlite_unlock(sq);
	return r;
}

/*
 * Reads up to max rows of the prepared list query of call into out,
 * then one more row, if the query has it, to learn whether further
 * deployments follow.
 */
static enum store_result
store_sqlite_deployment_rows(struct store_sqlite *sq, const char *op,
    struct store_sqlite_call *call, struct store_deployment *out,
    size_t max, size_t *count, bool *more)
{
	int rc;

	while ((rc = store_sqlite_step(call)) == SQLITE_ROW) {
		if (*count == max) {
			*more = true;
			return STORE_OK;
		}
		store_sqlite_read_deployment(call, &out[*count]);
		(*count)++;
	}
	if (rc != SQLITE_DONE)
		return store_sqlite_result(sq, op, rc);
	return STORE_OK;
}

/* A LIMIT of max rows (plus extra), within what SQLite binds. */
static int64_t
store_sqlite_limit(size_t max, size_t extra)
{
	return max < INT32_MAX - extra ? (int64_t)(max + extra) : INT32_MAX;
}

/*
 * Runs the one-value query q with the text parameter arg and copies
 * its first column into dst of size bytes (NULL reads "").
 * STORE_NOT_FOUND when it returns no row.
 */
static enum store_result
store_sqlite_text(struct store_sqlite *sq, const char *op,
    enum store_sqlite_query q, const char *arg, char *dst, size_t size)
{
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_prepare(sq, q, &call);
	store_sqlite_bind_text(&call, arg);
	rc = store_sqlite_step(&call);
	if (rc == SQLITE_ROW)
		store_sqlite_col_text(&call, dst, size);
	else if (rc == SQLITE_DONE)
		r = STORE_NOT_FOUND;
	else
		r = store_sqlite_result(sq, op, rc);
	store_sqlite_finish(&call);
	return r;
}

static enum store_result
store_sqlite_deployment_create(struct store *st,
    const struct store_deployment *d)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	enum store_result r;

	/* The build must be the tenant's: its foreign key cannot say. */
	r = store_sqlite_begin(sq, "deployment_create");
	if (r == STORE_OK)
		r = store_sqlite_scalar(sq, "deployment_create",
		    STORE_SQLITE_BUILD_EXISTS_IN, d->tenant, d->build_id,
		    NULL);
	if (r != STORE_OK)
		goto out;

	/* A taken id or a live deployment of the build: unique keys. */
	store_sqlite_prepare(sq, STORE_SQLITE_DEPLOYMENT_ADD, &call);
	store_sqlite_bind_text(&call, d->id);
	store_sqlite_bind_text(&call, d->build_id);
	store_sqlite_bind_text(&call, d->tenant);
	store_sqlite_bind_text(&call, d->status);
	store_sqlite_bind_int64(&call, d->file_count);
	store_sqlite_bind_int64(&call, d->bytes);
	store_sqlite_bind_text(&call, d->manifest_key);
	store_sqlite_bind_int64(&call, d->created_at);
	store_sqlite_bind_int64(&call, d->activated_at);
	store_sqlite_bind_int64(&call, d->deactivated_at);
	r = store_sqlite_write(sq, "deployment_create", &call, NULL);
out:
	store_sqlite_finish(&call);
	return store_sqlite_end(sq, "deployment_create", r);
}

/* Points the tenant at deployment_id, with the next sequence value. */
static enum store_result
store_sqlite_pointer_set(struct store_sqlite *sq, const char *tenant,
    const char *deployment_id)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, STORE_SQLITE_TENANT_FLIP, &call);
	store_sqlite_bind_text(&call, deployment_id);
	store_sqlite_bind_text(&call, tenant);
	r = store_sqlite_write(sq, "deployment_activate", &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/*
 * Runs the flip's write q on the tenant's deployments, with now, the
 * tenant and the deployment becoming current bound in that order.
 */
static enum store_result
store_sqlite_flip_write(struct store_sqlite *sq, enum store_sqlite_query q,
    const char *tenant, const char *deployment_id, int64_t now)
{
	struct store_sqlite_call call;
	enum store_result r;

	store_sqlite_prepare(sq, q, &call);
	store_sqlite_bind_int64(&call, now);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, deployment_id);
	r = store_sqlite_write(sq, "deployment_activate", &call, NULL);
	store_sqlite_finish(&call);
	return r;
}

/* Inside the flip's transaction. */
static enum store_result
store_sqlite_flip(struct store_sqlite *sq, const char *tenant,
    const char *deployment_id, int64_t now, struct store_deployment *prev)
{
	static const char op[] = "deployment_activate";
	char current[WHARF_ID_LEN + 1];
	struct store_deployment d;
	enum store_result r;

	r = store_sqlite_deployment_row(sq, op, STORE_SQLITE_DEPLOYMENT_GET,
	    tenant, deployment_id, &d);
	if (r != STORE_OK)
		return r;
	if (strcmp(d.status, "failed") == 0)
		return STORE_CONFLICT;
	r = store_sqlite_text(sq, op, STORE_SQLITE_TENANT_POINTER, tenant,
	    current, sizeof(current));
	if (r != STORE_OK)
		return r;
	if (strcmp(current, deployment_id) == 0) {
		*prev = d;                      /* already current */
		return STORE_OK;
	}

	/* The tenant's row first: a backend with row locks waits here. */
	r = store_sqlite_pointer_set(sq, tenant, deployment_id);
	if (r == STORE_OK)
		r = store_sqlite_flip_write(sq, STORE_SQLITE_DEPLOYMENT_RETIRE,
		    tenant, deployment_id, now);
	if (r == STORE_OK)
		r = store_sqlite_flip_write(sq,
		    STORE_SQLITE_DEPLOYMENT_ACTIVATE, tenant, deployment_id,
		    now);
	if (r != STORE_OK || current[0] == '\0')
		return r;

	/* The previous one as it is now; a dangling pointer reads none. */
	r = store_sqlite_deployment_row(sq, op, STORE_SQLITE_DEPLOYMENT_GET,
	    tenant, current, prev);
	if (r == STORE_NOT_FOUND) {
		memset(prev, 0, sizeof(*prev));
		r = STORE_OK;
	}
	return r;
}

static enum store_result
store_sqlite_deployment_activate(struct store *st, const char *tenant,
    const char *deployment_id, int64_t now, struct store_deployment *prev)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	r = store_sqlite_begin(sq, "deployment_activate");
	if (r == STORE_OK)
		r = store_sqlite_flip(sq, tenant, deployment_id, now, prev);
	return store_sqlite_end(sq, "deployment_activate", r);
}

static enum store_result
store_sqlite_deployment_fail(struct store *st, const char *deployment_id)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	enum store_result r;
	int changes = 0;

	r = store_sqlite_begin(sq, "deployment_fail");
	if (r != STORE_OK)
		goto out;
	store_sqlite_prepare(sq, STORE_SQLITE_DEPLOYMENT_FAIL, &call);
	store_sqlite_bind_text(&call, deployment_id);
	r = store_sqlite_write(sq, "deployment_fail", &call, &changes);
	store_sqlite_finish(&call);

	/* Nothing changed: absent, or no longer pending. */
	if (r == STORE_OK && changes == 0) {
		r = store_sqlite_scalar(sq, "deployment_fail",
		    STORE_SQLITE_DEPLOYMENT_EXISTS, deployment_id, NULL, NULL);
		if (r == STORE_OK)
			r = STORE_CONFLICT;
	}
out:
	return store_sqlite_end(sq, "deployment_fail", r);
}

static enum store_result
store_sqlite_deployment_get(struct store *st, const char *tenant,
    const char *deployment_id, struct store_deployment *out)
{
	return store_sqlite_deployment_read(st, "deployment_get",
	    STORE_SQLITE_DEPLOYMENT_GET, tenant, deployment_id, out);
}

static enum store_result
store_sqlite_deployment_of_build(struct store *st, const char *tenant,
    const char *build_id, struct store_deployment *out)
{
	return store_sqlite_deployment_read(st, "deployment_of_build",
	    STORE_SQLITE_DEPLOYMENT_OF_BUILD, tenant, build_id, out);
}

static enum store_result
store_sqlite_deployment_current(struct store *st, const char *tenant,
    struct store_deployment *out)
{
	return store_sqlite_deployment_read(st, "deployment_current",
	    STORE_SQLITE_DEPLOYMENT_CURRENT, tenant, NULL, out);
}

static enum store_result
store_sqlite_deployment_list(struct store *st, const char *tenant,
    const char *cursor, struct store_deployment *out, size_t max,
    size_t *count, bool *more)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	int64_t before_time = INT64_MAX;
	const char *before_id = "";
	enum store_result r;

	/* The first page starts before any possible (time, id). */
	store_sqlite_lock(sq);
	if (cursor != NULL) {
		r = store_sqlite_scalar(sq, "deployment_list",
		    STORE_SQLITE_DEPLOYMENT_CURSOR, tenant, cursor,
		    &before_time);
		if (r != STORE_OK)
			goto out;
		before_id = cursor;
	}

	store_sqlite_prepare(sq, STORE_SQLITE_DEPLOYMENT_LIST, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_int64(&call, before_time);
	store_sqlite_bind_text(&call, before_id);
	store_sqlite_bind_int64(&call, store_sqlite_limit(max, 1));
	r = store_sqlite_deployment_rows(sq, "deployment_list", &call, out,
	    max, count, more);
out:
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_deployment_recent(struct store *st, const char *tenant,
    int64_t since, struct store_deployment *out, size_t max, size_t *count)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r;
	bool more = false;              /* the LIMIT reads no extra row */

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_DEPLOYMENT_RECENT, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_int64(&call, since);
	store_sqlite_bind_int64(&call, store_sqlite_limit(max, 0));
	r = store_sqlite_deployment_rows(sq, "deployment_recent", &call, out,
	    max, count, &more);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* Pointer changes */

static enum store_result
store_sqlite_pointer_changes(struct store *st, int64_t after,
    struct store_pointer *out, size_t max, size_t *count)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_POINTER_CHANGES, &call);
	store_sqlite_bind_int64(&call, after);
	store_sqlite_bind_int64(&call, store_sqlite_limit(max, 0));
	while ((rc = store_sqlite_step(&call)) == SQLITE_ROW) {
		assert(*count < max);           /* the LIMIT */
		out[*count].seq = store_sqlite_col_int64(&call);
		store_sqlite_col_text(&call, out[*count].tenant,
		    sizeof(out[*count].tenant));
		store_sqlite_col_text(&call, out[*count].deployment_id,
		    sizeof(out[*count].deployment_id));
		(*count)++;
	}
	if (rc != SQLITE_DONE)
		r = store_sqlite_result(sq, "pointer_changes", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

/* Custom domains */

static enum store_result
store_sqlite_domain_add(struct store *st, const char *tenant,
    const char *hostname, int64_t now)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	enum store_result r;

	/* Checked first so that an unknown tenant reads as one. */
	r = store_sqlite_begin(sq, "domain_add");
	if (r == STORE_OK)
		r = store_sqlite_scalar(sq, "domain_add",
		    STORE_SQLITE_TENANT_EXISTS, tenant, NULL, NULL);
	if (r != STORE_OK)
		goto out;

	/* A hostname taken by any tenant fails its primary key. */
	store_sqlite_prepare(sq, STORE_SQLITE_DOMAIN_ADD, &call);
	store_sqlite_bind_text(&call, hostname);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_int64(&call, now);
	r = store_sqlite_write(sq, "domain_add", &call, NULL);
out:
	store_sqlite_finish(&call);
	return store_sqlite_end(sq, "domain_add", r);
}

static enum store_result
store_sqlite_domain_remove(struct store *st, const char *tenant,
    const char *hostname)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call = { 0 };
	enum store_result r;
	int changes = 0;

	r = store_sqlite_begin(sq, "domain_remove");
	if (r != STORE_OK)
		goto out;
	store_sqlite_prepare(sq, STORE_SQLITE_DOMAIN_REMOVE, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_text(&call, hostname);
	r = store_sqlite_write(sq, "domain_remove", &call, &changes);
	if (r == STORE_OK && changes == 0)
		r = STORE_NOT_FOUND;
out:
	store_sqlite_finish(&call);
	return store_sqlite_end(sq, "domain_remove", r);
}

static enum store_result
store_sqlite_domain_lookup(struct store *st, const char *hostname,
    char tenant[WHARF_SLUG_MAX + 1])
{
	struct store_sqlite *sq = store_sqlite_of(st);
	enum store_result r;

	store_sqlite_lock(sq);
	r = store_sqlite_text(sq, "domain_lookup", STORE_SQLITE_DOMAIN_LOOKUP,
	    hostname, tenant, WHARF_SLUG_MAX + 1);
	store_sqlite_unlock(sq);
	return r;
}

static enum store_result
store_sqlite_domain_list(struct store *st, const char *tenant,
    char (*out)[STORE_HOST_MAX + 1], size_t max, size_t *count)
{
	struct store_sqlite *sq = store_sqlite_of(st);
	struct store_sqlite_call call;
	enum store_result r = STORE_OK;
	int rc;

	store_sqlite_lock(sq);
	store_sqlite_prepare(sq, STORE_SQLITE_DOMAIN_LIST, &call);
	store_sqlite_bind_text(&call, tenant);
	store_sqlite_bind_int64(&call, store_sqlite_limit(max, 0));
	while ((rc = store_sqlite_step(&call)) == SQLITE_ROW) {
		assert(*count < max);           /* the LIMIT */
		store_sqlite_col_text(&call, out[*count], STORE_HOST_MAX + 1);
		(*count)++;
	}
	if (rc != SQLITE_DONE)
		r = store_sqlite_result(sq, "domain_list", rc);
	store_sqlite_finish(&call);
	store_sqlite_unlock(sq);
	return r;
}

static const struct store_ops store_sqlite_ops = {
	.close = store_sqlite_close,
	.schema_version = store_sqlite_schema_version,
	.migration_apply = store_sqlite_migration_apply,
	.user_add = store_sqlite_user_add,
	.user_by_email = store_sqlite_user_by_email,
	.user_by_id = store_sqlite_user_by_id,
	.user_set_active = store_sqlite_user_set_active,
	.tenant_add = store_sqlite_tenant_add,
	.tenant_get = store_sqlite_tenant_get,
	.member_set = store_sqlite_member_set,
	.member_remove = store_sqlite_member_remove,
	.member_get = store_sqlite_member_get,
	.build_list = store_sqlite_build_list,
	.build_create = store_sqlite_build_create,
	.build_get = store_sqlite_build_get,
	.build_env_values = store_sqlite_build_env_values,
	.build_plan = store_sqlite_build_plan,
	.job_claim = store_sqlite_job_claim,
	.job_heartbeat = store_sqlite_job_heartbeat,
	.job_complete = store_sqlite_job_complete,
	.job_fail = store_sqlite_job_fail,
	.job_position = store_sqlite_job_position,
	.job_of_build = store_sqlite_job_of_build,
	.job_count = store_sqlite_job_count,
	.build_progress = store_sqlite_build_progress,
	.build_finish = store_sqlite_build_finish,
	.build_cancel = store_sqlite_build_cancel,
	.build_delete = store_sqlite_build_delete,
	.build_retry = store_sqlite_build_retry,
	.deployment_create = store_sqlite_deployment_create,
	.deployment_activate = store_sqlite_deployment_activate,
	.deployment_fail = store_sqlite_deployment_fail,
	.deployment_get = store_sqlite_deployment_get,
	.deployment_of_build = store_sqlite_deployment_of_build,
	.deployment_current = store_sqlite_deployment_current,
	.deployment_list = store_sqlite_deployment_list,
	.deployment_recent = store_sqlite_deployment_recent,
	.pointer_changes = store_sqlite_pointer_changes,
	.domain_add = store_sqlite_domain_add,
	.domain_remove = store_sqlite_domain_remove,
	.domain_lookup = store_sqlite_domain_lookup,
	.domain_list = store_sqlite_domain_list,
};

/* Opening */

/*
 * Sets the connection up: extended error codes (to tell a unique key
 * from a foreign key), the busy wait, WAL, and foreign keys, which
 * SQLite leaves off unless asked on each connection.
 */
static int
store_sqlite_configure(struct store_sqlite *sq, const char *path)
{
	char quoted[WHARF_PATH_MAX];
	sqlite3_stmt *stmt = NULL;
	const char *mode;
	int rc;

	sqlite3_extended_result_codes(sq->db, 1);
	sqlite3_busy_timeout(sq->db, STORE_SQLITE_BUSY_MS);
	rc = sqlite3_exec(sq->db, "PRAGMA synchronous = NORMAL;"
	    "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto out;

	/* WAL needs shared memory; some filesystems refuse it. */
	rc = sqlite3_prepare_v2(sq->db, "PRAGMA journal_mode = WAL", -1,
	    &stmt, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		mode = (const char *)sqlite3_column_text(stmt, 0);
		if (mode == NULL || strcmp(mode, "wal") != 0)
			log_warnx("store.open", "path=%s journal_mode=%s",
			    log_q(quoted, sizeof(quoted), path),
			    mode != NULL ? mode : "unknown");
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(stmt);
	return rc;
}

struct store *
store_sqlite_open(const char *path, char *err, size_t errlen)
{
	struct store_sqlite *sq;
	int rc;

	if (!sqlite3_threadsafe()) {
		snprintf(err, errlen, "SQLite is built without threads");
		return NULL;
	}
	sq = calloc(1, sizeof(*sq));
	if (sq == NULL || pthread_mutex_init(&sq->lock, NULL) != 0) {
		snprintf(err, errlen, "out of memory opening the database");
		free(sq);
		return NULL;
	}
	sq->base.ops = &store_sqlite_ops;

	rc = sqlite3_open_v2(path, &sq->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = store_sqlite_configure(sq, path);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		    sq->db != NULL ? sqlite3_errmsg(sq->db) :
		    sqlite3_errstr(rc));
		store_sqlite_close(&sq->base);
		return NULL;
	}
	return &sq->base;
}
