/*
 * migrations: the schema, as an ordered list of versioned steps.
 *
 * Migration N brings the schema from version N - 1 to N and runs in
 * its own transaction together with the row that records it in
 * schema_migrations, so a crash leaves the schema at a whole version.
 * A released migration is never edited: a change is a new migration.
 *
 * The SQL is shared by every backend, so it keeps to what SQLite and
 * PostgreSQL both accept: TEXT, INTEGER (0/1 for booleans), BIGINT
 * (times in milliseconds since the epoch, 0 meaning "not set"),
 * CHECK, REFERENCES, plain indexes and partial unique indexes
 * (CREATE UNIQUE INDEX ... WHERE).
 */
#include <assert.h>
#include <stdbool.h>

#include "core/core.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store_impl.h"

const char store_migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version INTEGER PRIMARY KEY,"
	" applied_at BIGINT NOT NULL)";

/*
 * Version 1: users, tenants, memberships, builds with their jobs,
 * deployments and custom domains.
 *
 * tenants.current_deployment names a row of deployments but carries no
 * foreign key: the two tables would reference each other.  builds
 * keeps env_values (the secret JSON object of environment values)
 * apart from env_names so that reading a build never loads secrets.
 * A build may get several jobs over its life (a retry queues a new
 * one), hence no unique key on jobs.build_id.  jobs_claim serves the
 * claim order, jobs_finished the pruning of ended jobs (newest kept).
 *
 * tenants.pointer_seq is the tenant's place in the global order of
 * pointer flips (0: never flipped); edges ask for the tenants past the
 * last value they saw, hence its index.  Two partial unique indexes
 * hold the deployments' invariants whatever the backend's locking: a
 * build has at most one deployment that is not failed, and a tenant
 * at most one active deployment.  deployments_recent serves skew
 * protection (the deployments that stopped being current lately).
 */
static const char store_migration_1[] =
	"CREATE TABLE users ("
	" id TEXT PRIMARY KEY,"
	" email TEXT NOT NULL UNIQUE CHECK (email = lower(email)),"
	" password_hash TEXT NOT NULL,"
	" is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),"
	" created_at BIGINT NOT NULL);"

	"CREATE TABLE tenants ("
	" slug TEXT PRIMARY KEY"
	"  CHECK (length(slug) BETWEEN 1 AND 63),"
	" name TEXT NOT NULL,"
	" current_deployment TEXT NULL,"
	" pointer_seq BIGINT NOT NULL DEFAULT 0,"
	" created_at BIGINT NOT NULL);"
	"CREATE INDEX tenants_pointer_seq ON tenants (pointer_seq);"

	"CREATE TABLE memberships ("
	" tenant TEXT NOT NULL REFERENCES tenants (slug),"
	" user_id TEXT NOT NULL REFERENCES users (id),"
	" role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),"
	" is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),"
	" created_at BIGINT NOT NULL,"
	" PRIMARY KEY (tenant, user_id));"
	"CREATE INDEX memberships_user ON memberships (user_id);"

	"CREATE TABLE builds ("
	" id TEXT PRIMARY KEY,"
	" tenant TEXT NOT NULL REFERENCES tenants (slug),"
	" user_id TEXT NOT NULL REFERENCES users (id),"
	" version TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('pending', 'building',"
	"  'success', 'failed', 'cancelled')),"
	" progress INTEGER NOT NULL DEFAULT 0"
	"  CHECK (progress BETWEEN 0 AND 100),"
	" framework TEXT NOT NULL DEFAULT '',"
	" build_command TEXT NOT NULL DEFAULT '',"
	" output_dir TEXT NOT NULL DEFAULT '',"
	" node_version TEXT NOT NULL DEFAULT '',"
	" env_names TEXT NOT NULL DEFAULT '[]',"
	" env_values TEXT NULL,"
	" source_key TEXT NOT NULL DEFAULT '',"
	" original_name TEXT NOT NULL DEFAULT '',"
	" size BIGINT NOT NULL DEFAULT 0,"
	" sha256 TEXT NOT NULL DEFAULT '',"
	" uploaded_at BIGINT NOT NULL,"
	" started_at BIGINT NOT NULL DEFAULT 0,"
	" finished_at BIGINT NOT NULL DEFAULT 0,"
	" error TEXT NOT NULL DEFAULT '',"
	" error_step TEXT NOT NULL DEFAULT '',"
	" node TEXT NOT NULL DEFAULT '',"
	" queue_wait_ms BIGINT NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX builds_tenant_uploaded"
	" ON builds (tenant, uploaded_at DESC, id DESC);"

	"CREATE TABLE jobs ("
	" id TEXT PRIMARY KEY,"
	" build_id TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,"
	" priority INTEGER NOT NULL DEFAULT 10,"
	" state TEXT NOT NULL CHECK (state IN ('waiting', 'active',"
	"  'completed', 'failed')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" max_attempts INTEGER NOT NULL DEFAULT 3,"
	" run_at BIGINT NOT NULL,"
	" lease_owner TEXT NOT NULL DEFAULT '',"
	" lease_expires BIGINT NOT NULL DEFAULT 0,"
	" last_error TEXT NOT NULL DEFAULT '',"
	" created_at BIGINT NOT NULL,"
	" finished_at BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_claim ON jobs (state, priority, run_at);"
	"CREATE INDEX jobs_finished ON jobs (state, finished_at);"
	"CREATE INDEX jobs_build ON jobs (build_id);"

	"CREATE TABLE deployments ("
	" id TEXT PRIMARY KEY,"
	" build_id TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,"
	" tenant TEXT NOT NULL REFERENCES tenants (slug),"
	" status TEXT NOT NULL CHECK (status IN ('pending', 'active',"
	"  'inactive', 'failed')),"
	" file_count BIGINT NOT NULL DEFAULT 0,"
	" bytes BIGINT NOT NULL DEFAULT 0,"
	" manifest_key TEXT NOT NULL DEFAULT '',"
	" created_at BIGINT NOT NULL,"
	" activated_at BIGINT NOT NULL DEFAULT 0,"
	" deactivated_at BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX deployments_tenant_created"
	" ON deployments (tenant, created_at DESC, id DESC);"
	"CREATE INDEX deployments_build ON deployments (build_id);"
	"CREATE UNIQUE INDEX deployments_build_live ON deployments (build_id)"
	" WHERE status <> 'failed';"
	"CREATE UNIQUE INDEX deployments_tenant_active ON deployments (tenant)"
	" WHERE status = 'active';"
	"CREATE INDEX deployments_recent"
	" ON deployments (tenant, deactivated_at DESC, id DESC);"

	"CREATE TABLE domains ("
	" hostname TEXT PRIMARY KEY CHECK (hostname = lower(hostname)),"
	" tenant TEXT NOT NULL REFERENCES tenants (slug),"
	" created_at BIGINT NOT NULL);"
	"CREATE INDEX domains_tenant ON domains (tenant);";

const char *const store_migrations[STORE_SCHEMA_VERSION] = {
	store_migration_1,
};

/* Refuses a schema this binary does not know. */
static enum store_result
store_migration_refuse(int version)
{
	store_errmsg_set("database schema version %d is newer than this "
	    "binary's %d: upgrade wharf", version, STORE_SCHEMA_VERSION);
	log_warnx("store.migrate", "refused db_version=%d binary_version=%d",
	    version, STORE_SCHEMA_VERSION);
	return STORE_CONFLICT;
}

enum store_result
store_migrate(struct store *st, int *from, int *to)
{
	enum store_result r;
	int before = 0, after = 0;

	assert(st != NULL);
	r = st->ops->schema_version(st, &before);
	if (r != STORE_OK)
		goto out;
	after = before;
	if (before > STORE_SCHEMA_VERSION) {
		r = store_migration_refuse(before);
		goto out;
	}

	/* Each step re-checks the version inside its transaction. */
	for (int v = before + 1; v <= STORE_SCHEMA_VERSION; v++) {
		int64_t start = util_mono_ns();
		bool applied = false;

		r = st->ops->migration_apply(st, v, store_migrations[v - 1],
		    util_now_ms(), &applied);
		if (r != STORE_OK)
			goto out;
		if (applied)
			log_info("store.migration", "version=%d dur_ms=%.2f", v,
			    (double)(util_mono_ns() - start) / 1e6);
	}

	r = st->ops->schema_version(st, &after);
	if (r == STORE_OK && after > STORE_SCHEMA_VERSION)
		r = store_migration_refuse(after);
	if (r == STORE_OK && after != before)
		log_info("store.migrate", "from=%d to=%d", before, after);
out:
	if (from != NULL)
		*from = before;
	if (to != NULL)
		*to = after;
	return r;
}
