/*
 * test_store: the metadata store on SQLite.  Each test gets a fresh
 * database in its own mkdtemp() folder, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "core/log.h"
#include "store/store.h"

#define TEST_THREADS            8
#define TEST_USERS_PER_THREAD   50

struct test_db {
	char            dir[64];
	char            path[128];
	struct store   *st;
	char            user_id[WHARF_ID_LEN + 1];      /* after seeding */
};

/* Setup and teardown */

static int
test_setup(void **state)
{
	struct test_db *db = calloc(1, sizeof(*db));
	char err[256];

	if (db == NULL)
		return -1;
	snprintf(db->dir, sizeof(db->dir), "/tmp/wharf-store-XXXXXX");
	if (mkdtemp(db->dir) == NULL)
		goto fail;
	snprintf(db->path, sizeof(db->path), "%s/wharf.db", db->dir);
	db->st = store_open(db->path, err, sizeof(err));
	if (db->st == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		goto fail;
	}
	*state = db;
	return 0;
fail:
	free(db);
	return -1;
}

/* A fresh database at the current schema. */
static int
test_setup_migrated(void **state)
{
	struct test_db *db;

	if (test_setup(state) != 0)
		return -1;
	db = *state;
	return store_migrate(db->st, NULL, NULL) == STORE_OK ? 0 : -1;
}

/* Migrated, with tenant "acme" and user alice@example.com. */
static int
test_setup_seeded(void **state)
{
	struct store_user user;
	struct test_db *db;

	if (test_setup_migrated(state) != 0)
		return -1;
	db = *state;
	if (store_tenant_add(db->st, "acme", "Acme", NULL) != STORE_OK ||
	    store_user_add(db->st, "alice@example.com", "$y$hash", &user) !=
	    STORE_OK)
		return -1;
	memcpy(db->user_id, user.id, sizeof(db->user_id));
	return 0;
}

static int
test_teardown(void **state)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	struct test_db *db = *state;
	char path[160];

	store_close(db->st);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db->path, suffixes[i]);
		(void)unlink(path);
	}
	(void)rmdir(db->dir);
	free(db);
	return 0;
}

/* Fills a build of tenant "acme" as the upload handler would. */
static void
test_build_fill(struct store_build *b, const struct test_db *db,
    int64_t uploaded_at, const char *status)
{
	memset(b, 0, sizeof(*b));
	util_uuid(b->id);
	snprintf(b->tenant, sizeof(b->tenant), "acme");
	memcpy(b->user_id, db->user_id, sizeof(b->user_id));
	snprintf(b->version, sizeof(b->version), "v%lld-abcdefghi",
	    (long long)uploaded_at);
	snprintf(b->status, sizeof(b->status), "%s", status);
	snprintf(b->framework, sizeof(b->framework), "vite");
	snprintf(b->env_names, sizeof(b->env_names), "[\"API_URL\"]");
	snprintf(b->source_key, sizeof(b->source_key),
	    "tenants/acme/builds/%s/source.zip", b->id);
	snprintf(b->original_name, sizeof(b->original_name), "site.zip");
	b->size = 1234;
	b->uploaded_at = uploaded_at;
}

static void
test_job_fill(struct store_job *job)
{
	memset(job, 0, sizeof(*job));
	util_uuid(job->id);
	job->priority = 10;
	job->max_attempts = 3;
}

static void
test_build_add(const struct test_db *db, int64_t uploaded_at,
    const char *status, struct store_build *out)
{
	struct store_job job;

	test_build_fill(out, db, uploaded_at, status);
	test_job_fill(&job);
	assert_int_equal(store_build_create(db->st, out, NULL, &job),
	    STORE_OK);
}

/* Migrations */

static void
test_migrate_empty(void **state)
{
	struct test_db *db = *state;
	int from = -1, to = -1, version = -1;

	assert_int_equal(store_schema_version(db->st, &version), STORE_OK);
	assert_int_equal(version, 0);
	assert_int_equal(store_migrate(db->st, &from, &to), STORE_OK);
	assert_int_equal(from, 0);
	assert_int_equal(to, STORE_SCHEMA_VERSION);
	assert_int_equal(store_schema_version(db->st, &version), STORE_OK);
	assert_int_equal(version, STORE_SCHEMA_VERSION);
}

static void
test_migrate_again(void **state)
{
	struct test_db *db = *state;
	int from = -1, to = -1;

	assert_int_equal(store_migrate(db->st, NULL, NULL), STORE_OK);
	assert_int_equal(store_migrate(db->st, &from, &to), STORE_OK);
	assert_int_equal(from, STORE_SCHEMA_VERSION);
	assert_int_equal(to, STORE_SCHEMA_VERSION);
}

/* A later binary migrated this file: this one must not touch it. */
static void
test_migrate_newer_refused(void **state)
{
	struct test_db *db = *state;
	sqlite3 *raw = NULL;
	char sql[128];
	int from = -1;

	assert_int_equal(store_migrate(db->st, NULL, NULL), STORE_OK);
	assert_int_equal(sqlite3_open(db->path, &raw), SQLITE_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations "
	    "VALUES (%d, 0)", STORE_SCHEMA_VERSION + 1);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	assert_int_equal(store_migrate(db->st, &from, NULL), STORE_CONFLICT);
	assert_int_equal(from, STORE_SCHEMA_VERSION + 1);
	assert_non_null(strstr(store_errmsg(), "newer"));
}

/* Opening */

static void
test_open_urls(void **state)
{
	struct test_db *db = *state;
	struct store *st;
	char url[160], err[256];

	snprintf(url, sizeof(url), "sqlite:%s", db->path);
	st = store_open(url, err, sizeof(err));
	assert_non_null(st);
	store_close(st);

	st = store_open("postgres://u@localhost/wharf", err, sizeof(err));
	assert_null(st);
	assert_non_null(strstr(err, "PostgreSQL"));
	assert_null(store_open("postgresql://localhost/w", err, sizeof(err)));
	assert_null(store_open("mysql://localhost/w", err, sizeof(err)));
	assert_null(store_open("sqlite:", err, sizeof(err)));
	assert_null(store_open("sqlite:/nonexistent-dir/x/wharf.db", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
}

/* Before any migration a call fails cleanly, with a message. */
static void
test_unmigrated_error(void **state)
{
	struct test_db *db = *state;

	assert_int_equal(store_user_add(db->st, "a@example.com", "h", NULL),
	    STORE_ERROR);
	assert_non_null(strstr(store_errmsg(), "users"));
}

/* Users */

static void
test_user(void **state)
{
	struct test_db *db = *state;
	struct store_user user, found;

	assert_int_equal(store_user_add(db->st, "Bob@Example.COM", "$y$h",
	    &user), STORE_OK);
	assert_string_equal(user.email, "bob@example.com");
	assert_int_equal(strlen(user.id), WHARF_ID_LEN);
	assert_true(user.is_active);
	assert_true(user.created_at > 0);
	assert_int_equal(store_user_add(db->st, "BOB@example.com", "$y$x",
	    NULL), STORE_CONFLICT);

	assert_int_equal(store_user_by_email(db->st, "bOb@eXample.com",
	    &found), STORE_OK);
	assert_string_equal(found.id, user.id);
	assert_string_equal(found.password_hash, "$y$h");
	assert_int_equal(found.created_at, user.created_at);
	assert_int_equal(store_user_by_email(db->st, "carol@example.com",
	    &found), STORE_NOT_FOUND);

	assert_int_equal(store_user_by_id(db->st, user.id, &found), STORE_OK);
	assert_string_equal(found.email, "bob@example.com");
	assert_int_equal(store_user_by_id(db->st, "no-such-id", &found),
	    STORE_NOT_FOUND);
}

static void
test_user_set_active(void **state)
{
	struct test_db *db = *state;
	struct store_user user;

	assert_int_equal(store_user_set_active(db->st, "ALICE@example.com",
	    false), STORE_OK);
	assert_int_equal(store_user_by_id(db->st, db->user_id, &user),
	    STORE_OK);
	assert_false(user.is_active);
	assert_int_equal(store_user_set_active(db->st, "alice@example.com",
	    true), STORE_OK);
	assert_int_equal(store_user_by_id(db->st, db->user_id, &user),
	    STORE_OK);
	assert_true(user.is_active);
	assert_int_equal(store_user_set_active(db->st, "nobody@example.com",
	    false), STORE_NOT_FOUND);
}

/* Tenants */

static void
test_tenant(void **state)
{
	struct test_db *db = *state;
	struct store_tenant tenant, found;

	assert_int_equal(store_tenant_add(db->st, "beta", "Beta Inc.",
	    &tenant), STORE_OK);
	assert_int_equal(store_tenant_add(db->st, "beta", "Other", NULL),
	    STORE_CONFLICT);
	assert_int_equal(store_tenant_add(db->st, "gamma", NULL, NULL),
	    STORE_OK);

	assert_int_equal(store_tenant_get(db->st, "beta", &found), STORE_OK);
	assert_string_equal(found.slug, "beta");
	assert_string_equal(found.name, "Beta Inc.");
	assert_string_equal(found.current_deployment, "");
	assert_int_equal(found.created_at, tenant.created_at);
	assert_int_equal(store_tenant_get(db->st, "gamma", &found), STORE_OK);
	assert_string_equal(found.name, "gamma");
	assert_int_equal(store_tenant_get(db->st, "nope", &found),
	    STORE_NOT_FOUND);
}

/* Memberships */

static void
test_member(void **state)
{
	struct test_db *db = *state;
	struct store_membership m;

	assert_int_equal(store_member_set(db->st, "acme", db->user_id,
	    "member"), STORE_OK);
	assert_int_equal(store_member_get(db->st, "acme", db->user_id, &m),
	    STORE_OK);
	assert_string_equal(m.tenant, "acme");
	assert_string_equal(m.user_id, db->user_id);
	assert_string_equal(m.role, "member");
	assert_true(m.is_active);

	assert_int_equal(store_member_set(db->st, "acme", db->user_id,
	    "admin"), STORE_OK);
	assert_int_equal(store_member_get(db->st, "acme", db->user_id, &m),
	    STORE_OK);
	assert_string_equal(m.role, "admin");

	/* Removal keeps the row, inactive; setting again revives it. */
	assert_int_equal(store_member_remove(db->st, "acme", db->user_id),
	    STORE_OK);
	assert_int_equal(store_member_get(db->st, "acme", db->user_id, &m),
	    STORE_OK);
	assert_false(m.is_active);
	assert_string_equal(m.role, "admin");
	assert_int_equal(store_member_set(db->st, "acme", db->user_id,
	    "owner"), STORE_OK);
	assert_int_equal(store_member_get(db->st, "acme", db->user_id, &m),
	    STORE_OK);
	assert_true(m.is_active);
	assert_string_equal(m.role, "owner");
}

static void
test_member_unknown(void **state)
{
	struct test_db *db = *state;
	struct store_membership m;

	assert_int_equal(store_member_remove(db->st, "acme", "no-such-user"),
	    STORE_NOT_FOUND);
	assert_int_equal(store_member_get(db->st, "acme", db->user_id, &m),
	    STORE_NOT_FOUND);
	assert_int_equal(store_member_set(db->st, "nope", db->user_id,
	    "member"), STORE_NOT_FOUND);
	assert_int_equal(store_member_set(db->st, "acme", "no-such-user",
	    "member"), STORE_NOT_FOUND);
	assert_int_equal(store_member_set(db->st, "acme", db->user_id,
	    "root"), STORE_ERROR);
	assert_non_null(strstr(store_errmsg(), "role"));
}

/* Builds */

static void
test_build_create(void **state)
{
	struct test_db *db = *state;
	struct store_build b, found;
	struct store_job job;
	int64_t before = util_now_ms();

	test_build_fill(&b, db, 1000, "pending");
	test_job_fill(&job);
	job.priority = 5;
	assert_int_equal(store_build_create(db->st, &b, "{\"API_URL\":\"x\"}",
	    &job), STORE_OK);
	assert_string_equal(job.build_id, b.id);
	assert_string_equal(job.state, "waiting");
	assert_int_equal(job.attempts, 0);
	assert_int_equal(job.priority, 5);
	assert_int_equal(job.max_attempts, 3);
	assert_true(job.run_at >= before && job.created_at == job.run_at);

	assert_int_equal(store_build_get(db->st, "acme", b.id, &found),
	    STORE_OK);
	assert_memory_equal(&found, &b, sizeof(b));
	assert_int_equal(store_build_get(db->st, "other", b.id, &found),
	    STORE_NOT_FOUND);
	assert_int_equal(store_build_get(db->st, "acme", "no-such-build",
	    &found), STORE_NOT_FOUND);
}

/*
 * A build of an unknown tenant leaves nothing behind: the very same
 * build and job ids go in cleanly afterwards.
 */
static void
test_build_create_unknown_tenant(void **state)
{
	struct test_db *db = *state;
	struct store_build b, found;
	struct store_job job;
	size_t count = 99;
	bool more = true;

	test_build_fill(&b, db, 1000, "pending");
	snprintf(b.tenant, sizeof(b.tenant), "nope");
	test_job_fill(&job);
	assert_int_equal(store_build_create(db->st, &b, NULL, &job),
	    STORE_NOT_FOUND);
	assert_int_equal(store_build_list(db->st, "nope", NULL, NULL, &found,
	    1, &count, &more), STORE_OK);
	assert_int_equal(count, 0);
	assert_false(more);

	/* An unknown user fails its foreign key the same way. */
	snprintf(b.tenant, sizeof(b.tenant), "acme");
	snprintf(b.user_id, sizeof(b.user_id), "no-such-user");
	assert_int_equal(store_build_create(db->st, &b, NULL, &job),
	    STORE_NOT_FOUND);

	memcpy(b.user_id, db->user_id, sizeof(b.user_id));
	assert_int_equal(store_build_create(db->st, &b, NULL, &job),
	    STORE_OK);
}

/* A job that cannot be inserted takes its build down with it. */
static void
test_build_create_atomic(void **state)
{
	struct test_db *db = *state;
	struct store_build first, second, found;
	struct store_job job;

	test_build_fill(&first, db, 1000, "pending");
	test_job_fill(&job);
	assert_int_equal(store_build_create(db->st, &first, NULL, &job),
	    STORE_OK);

	test_build_fill(&second, db, 2000, "pending");
	assert_int_equal(store_build_create(db->st, &second, NULL, &job),
	    STORE_CONFLICT);
	assert_int_equal(store_build_get(db->st, "acme", second.id, &found),
	    STORE_NOT_FOUND);
	assert_int_equal(store_build_create(db->st, &first, NULL, &job),
	    STORE_CONFLICT);
}

static void
test_build_list(void **state)
{
	static const char *const statuses[] = { "success", "failed" };
	struct test_db *db = *state;
	struct store_build b[6], page[4];
	size_t count = 0;
	bool more = false;

	/* b[i] uploaded at 1000 * (i + 1): b[5] is the newest. */
	for (int i = 0; i < 6; i++)
		test_build_add(db, 1000 * (i + 1), statuses[i % 2], &b[i]);

	assert_int_equal(store_build_list(db->st, "acme", NULL, NULL, page, 4,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 4);
	assert_true(more);
	for (int i = 0; i < 4; i++)
		assert_string_equal(page[i].id, b[5 - i].id);

	assert_int_equal(store_build_list(db->st, "acme", NULL, page[3].id,
	    page, 4, &count, &more), STORE_OK);
	assert_int_equal(count, 2);
	assert_false(more);
	assert_string_equal(page[0].id, b[1].id);
	assert_string_equal(page[1].id, b[0].id);

	/* Failed builds are b[1], b[3], b[5]. */
	assert_int_equal(store_build_list(db->st, "acme", "failed", NULL,
	    page, 2, &count, &more), STORE_OK);
	assert_int_equal(count, 2);
	assert_true(more);
	assert_string_equal(page[0].id, b[5].id);
	assert_string_equal(page[1].id, b[3].id);
	assert_int_equal(store_build_list(db->st, "acme", "failed",
	    page[1].id, page, 2, &count, &more), STORE_OK);
	assert_int_equal(count, 1);
	assert_false(more);
	assert_string_equal(page[0].id, b[1].id);
}

static void
test_build_list_edges(void **state)
{
	struct test_db *db = *state;
	struct store_build b[3], page[3];
	const struct store_build *hi, *lo;
	size_t count = 0;
	bool more = false;

	/* Equal times: the id decides, and a cursor splits them. */
	test_build_add(db, 5000, "pending", &b[0]);
	test_build_add(db, 5000, "pending", &b[1]);
	test_build_add(db, 4000, "pending", &b[2]);
	hi = strcmp(b[0].id, b[1].id) > 0 ? &b[0] : &b[1];
	lo = hi == &b[0] ? &b[1] : &b[0];

	assert_int_equal(store_build_list(db->st, "acme", NULL, NULL, page, 1,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 1);
	assert_string_equal(page[0].id, hi->id);
	assert_int_equal(store_build_list(db->st, "acme", NULL, hi->id, page,
	    1, &count, &more), STORE_OK);
	assert_string_equal(page[0].id, lo->id);
	assert_true(more);
	assert_int_equal(store_build_list(db->st, "acme", NULL, lo->id, page,
	    3, &count, &more), STORE_OK);
	assert_int_equal(count, 1);
	assert_string_equal(page[0].id, b[2].id);
	assert_false(more);

	/* max 0 only asks whether there is anything. */
	assert_int_equal(store_build_list(db->st, "acme", NULL, NULL, NULL, 0,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 0);
	assert_true(more);

	assert_int_equal(store_build_list(db->st, "acme", NULL,
	    "no-such-build", page, 3, &count, &more), STORE_NOT_FOUND);
	assert_int_equal(store_build_list(db->st, "acme", "cancelled", NULL,
	    page, 3, &count, &more), STORE_OK);
	assert_int_equal(count, 0);
	assert_false(more);
}

/* Deployments */

#define TEST_FLIP_TENANTS       4
#define TEST_FLIP_DEPLOYMENTS   3
#define TEST_FLIPS_PER_THREAD   50
#define TEST_POINTER_TENANTS    70      /* more than one page */

/* A build of tenant, uploaded at uploaded_at, with its job. */
static void
test_build_add_to(const struct test_db *db, const char *tenant,
    int64_t uploaded_at, struct store_build *out)
{
	struct store_job job;

	test_build_fill(out, db, uploaded_at, "success");
	snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
	test_job_fill(&job);
	assert_int_equal(store_build_create(db->st, out, NULL, &job),
	    STORE_OK);
}

/* A deployment of build b, as publishing fills it. */
static void
test_deployment_fill(struct store_deployment *d, const struct store_build *b,
    int64_t created_at)
{
	memset(d, 0, sizeof(*d));
	util_uuid(d->id);
	memcpy(d->build_id, b->id, sizeof(d->build_id));
	memcpy(d->tenant, b->tenant, sizeof(d->tenant));
	d->file_count = 3;
	d->bytes = 4096;
	snprintf(d->manifest_key, sizeof(d->manifest_key),
	    "tenants/%s/deployments/%s/manifest.json", b->tenant, b->id);
	d->created_at = created_at;
}

/* A build of tenant and its pending deployment, both at time t. */
static void
test_deployment_add(const struct test_db *db, const char *tenant, int64_t t,
    struct store_build *b, struct store_deployment *d)
{
	test_build_add_to(db, tenant, t, b);
	test_deployment_fill(d, b, t);
	assert_int_equal(store_deployment_create(db->st, d), STORE_OK);
}

/* The one integer that sql, run on a connection of its own, returns. */
static int64_t
test_sql_int64(const struct test_db *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *raw = NULL;
	int64_t value;

	assert_int_equal(sqlite3_open(db->path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &stmt, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(raw);
	return value;
}

static int64_t
test_pointer_seq(const struct test_db *db, const char *tenant)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT pointer_seq FROM tenants"
	    " WHERE slug = '%s'", tenant);
	return test_sql_int64(db, sql);
}

static void
test_deployment_status(const struct test_db *db, const char *tenant,
    const char *id, const char *status, struct store_deployment *got)
{
	assert_int_equal(store_deployment_get(db->st, tenant, id, got),
	    STORE_OK);
	assert_string_equal(got->status, status);
}

static void
test_deployment_create(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d, again, got;
	struct store_build b, other;

	test_build_add(db, 1000, "building", &b);
	test_deployment_fill(&d, &b, 1500);
	snprintf(d.status, sizeof(d.status), "active");  /* ignored */
	d.activated_at = 7;
	assert_int_equal(store_deployment_create(db->st, &d), STORE_OK);

	test_deployment_status(db, "acme", d.id, "pending", &got);
	assert_string_equal(got.build_id, b.id);
	assert_string_equal(got.tenant, "acme");
	assert_string_equal(got.version, b.version);
	assert_int_equal(got.file_count, 3);
	assert_int_equal(got.bytes, 4096);
	assert_string_equal(got.manifest_key, d.manifest_key);
	assert_int_equal(got.created_at, 1500);
	assert_int_equal(got.activated_at, 0);
	assert_int_equal(got.deactivated_at, 0);
	assert_int_equal(store_deployment_get(db->st, "beta", d.id, &got),
	    STORE_NOT_FOUND);

	/* Unknown build, another tenant's build, unknown tenant. */
	assert_int_equal(store_tenant_add(db->st, "beta", NULL, NULL),
	    STORE_OK);
	test_build_add_to(db, "beta", 2000, &other);
	test_deployment_fill(&again, &b, 2000);
	snprintf(again.build_id, sizeof(again.build_id), "no-such-build");
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_NOT_FOUND);
	memcpy(again.build_id, other.id, sizeof(again.build_id));
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_NOT_FOUND);
	snprintf(again.tenant, sizeof(again.tenant), "Not_A_Slug");
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_NOT_FOUND);

	/* A taken id; a second live deployment of the same build. */
	test_deployment_fill(&again, &b, 2000);
	memcpy(again.id, d.id, sizeof(again.id));
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_CONFLICT);
	util_uuid(again.id);
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_CONFLICT);
	assert_int_equal(store_deployment_get(db->st, "acme", again.id, &got),
	    STORE_NOT_FOUND);

	/* Bad records. */
	again.id[0] = '\0';
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_ERROR);
	util_uuid(again.id);
	again.bytes = -1;
	assert_int_equal(store_deployment_create(db->st, &again),
	    STORE_ERROR);
}

static void
test_deployment_fail(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d, again, got;
	struct store_build b;

	test_deployment_add(db, "acme", 1000, &b, &d);
	assert_int_equal(store_deployment_of_build(db->st, "acme", b.id,
	    &got), STORE_OK);
	assert_string_equal(got.id, d.id);

	assert_int_equal(store_deployment_fail(db->st, d.id), STORE_OK);
	test_deployment_status(db, "acme", d.id, "failed", &got);
	assert_int_equal(store_deployment_fail(db->st, d.id), STORE_CONFLICT);
	assert_int_equal(store_deployment_fail(db->st, "no-such-deployment"),
	    STORE_NOT_FOUND);
	assert_int_equal(store_deployment_fail(db->st, ""), STORE_NOT_FOUND);
	assert_int_equal(store_deployment_of_build(db->st, "acme", b.id,
	    &got), STORE_NOT_FOUND);

	/* A failed publish frees the build for another deployment. */
	test_deployment_fill(&again, &b, 2000);
	assert_int_equal(store_deployment_create(db->st, &again), STORE_OK);
	assert_int_equal(store_deployment_of_build(db->st, "acme", b.id,
	    &got), STORE_OK);
	assert_string_equal(got.id, again.id);
	assert_int_equal(store_deployment_of_build(db->st, "beta", b.id,
	    &got), STORE_NOT_FOUND);

	/* Only a pending one can fail, and a failed one never serves. */
	assert_int_equal(store_deployment_activate(db->st, "acme", d.id, 3000,
	    NULL), STORE_CONFLICT);
	assert_int_equal(store_deployment_activate(db->st, "acme", again.id,
	    3000, NULL), STORE_OK);
	assert_int_equal(store_deployment_fail(db->st, again.id),
	    STORE_CONFLICT);
}

static void
test_deployment_activate(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d1, d2, prev, got;
	struct store_build b1, b2;
	struct store_tenant tenant;
	int64_t seq1, seq2;

	test_deployment_add(db, "acme", 1000, &b1, &d1);
	test_deployment_add(db, "acme", 2000, &b2, &d2);
	assert_int_equal(store_tenant_add(db->st, "beta", NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_deployment_current(db->st, "acme", &got),
	    STORE_NOT_FOUND);
	assert_int_equal(test_pointer_seq(db, "acme"), 0);

	/* The first flip: nothing before it. */
	memset(&prev, 'x', sizeof(prev));
	assert_int_equal(store_deployment_activate(db->st, "acme", d1.id, 100,
	    &prev), STORE_OK);
	assert_string_equal(prev.id, "");
	test_deployment_status(db, "acme", d1.id, "active", &got);
	assert_int_equal(got.activated_at, 100);
	assert_int_equal(store_deployment_current(db->st, "acme", &got),
	    STORE_OK);
	assert_string_equal(got.id, d1.id);
	assert_string_equal(got.version, b1.version);
	assert_int_equal(store_tenant_get(db->st, "acme", &tenant), STORE_OK);
	assert_string_equal(tenant.current_deployment, d1.id);
	seq1 = test_pointer_seq(db, "acme");
	assert_true(seq1 > 0);

	/* The second: the first one goes inactive and comes back in prev. */
	assert_int_equal(store_deployment_activate(db->st, "acme", d2.id, 200,
	    &prev), STORE_OK);
	assert_string_equal(prev.id, d1.id);
	assert_string_equal(prev.status, "inactive");
	assert_int_equal(prev.deactivated_at, 200);
	assert_int_equal(prev.activated_at, 100);
	test_deployment_status(db, "acme", d1.id, "inactive", &got);
	assert_int_equal(got.deactivated_at, 200);
	test_deployment_status(db, "acme", d2.id, "active", &got);
	assert_int_equal(got.activated_at, 200);
	assert_int_equal(got.deactivated_at, 0);
	assert_int_equal(store_deployment_current(db->st, "acme", &got),
	    STORE_OK);
	assert_string_equal(got.id, d2.id);
	seq2 = test_pointer_seq(db, "acme");
	assert_true(seq2 > seq1);

	/* The current one again: nothing changes, prev is itself. */
	assert_int_equal(store_deployment_activate(db->st, "acme", d2.id, 300,
	    &prev), STORE_OK);
	assert_string_equal(prev.id, d2.id);
	assert_string_equal(prev.status, "active");
	test_deployment_status(db, "acme", d2.id, "active", &got);
	assert_int_equal(got.activated_at, 200);
	assert_int_equal(test_pointer_seq(db, "acme"), seq2);

	/* Another tenant's, or none at all. */
	memset(&prev, 'x', sizeof(prev));
	assert_int_equal(store_deployment_activate(db->st, "beta", d1.id, 400,
	    &prev), STORE_NOT_FOUND);
	assert_string_equal(prev.id, "");
	assert_int_equal(store_deployment_activate(db->st, "acme",
	    "no-such-deployment", 400, NULL), STORE_NOT_FOUND);
	assert_int_equal(store_deployment_activate(db->st, "nope", d1.id, 400,
	    NULL), STORE_NOT_FOUND);
	assert_int_equal(store_deployment_current(db->st, "beta", &got),
	    STORE_NOT_FOUND);
	assert_int_equal(test_pointer_seq(db, "beta"), 0);
	assert_int_equal(test_pointer_seq(db, "acme"), seq2);
}

/* Rollback: an older deployment flips back in, no rebuild. */
static void
test_deployment_rollback(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d1, d2, prev, got;
	struct store_build b1, b2;

	test_deployment_add(db, "acme", 1000, &b1, &d1);
	test_deployment_add(db, "acme", 2000, &b2, &d2);
	assert_int_equal(store_deployment_activate(db->st, "acme", d1.id, 100,
	    NULL), STORE_OK);
	assert_int_equal(store_deployment_activate(db->st, "acme", d2.id, 200,
	    NULL), STORE_OK);

	assert_int_equal(store_deployment_activate(db->st, "acme", d1.id, 300,
	    &prev), STORE_OK);
	assert_string_equal(prev.id, d2.id);
	assert_int_equal(prev.deactivated_at, 300);
	test_deployment_status(db, "acme", d1.id, "active", &got);
	assert_int_equal(got.activated_at, 300);
	assert_int_equal(got.deactivated_at, 200);     /* the last time */
	assert_int_equal(store_deployment_current(db->st, "acme", &got),
	    STORE_OK);
	assert_string_equal(got.id, d1.id);
	assert_int_equal(test_sql_int64(db, "SELECT COUNT(*) FROM deployments"
	    " WHERE status = 'active'"), 1);

	/* The served build stays; the one rolled back from can go. */
	assert_int_equal(store_build_delete(db->st, "acme", b1.id),
	    STORE_CONFLICT);
	assert_int_equal(store_build_delete(db->st, "acme", b2.id), STORE_OK);
	assert_int_equal(store_deployment_get(db->st, "acme", d2.id, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_deployment_current(db->st, "acme", &got),
	    STORE_OK);
	assert_string_equal(got.id, d1.id);
}

static void
test_deployment_list(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d[5], page[3];
	struct store_build b[5];
	size_t count = 99;
	bool more = false;

	/* d[i] created at 1000 * (i + 1): d[4] is the newest. */
	for (int i = 0; i < 5; i++)
		test_deployment_add(db, "acme", 1000 * (i + 1), &b[i], &d[i]);
	assert_int_equal(store_deployment_fail(db->st, d[2].id), STORE_OK);
	assert_int_equal(store_deployment_activate(db->st, "acme", d[1].id,
	    6000, NULL), STORE_OK);

	assert_int_equal(store_deployment_list(db->st, "acme", NULL, page, 2,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 2);
	assert_true(more);
	assert_string_equal(page[0].id, d[4].id);
	assert_string_equal(page[1].id, d[3].id);
	assert_string_equal(page[0].version, b[4].version);

	/* Failed and pending ones included. */
	assert_int_equal(store_deployment_list(db->st, "acme", page[1].id,
	    page, 2, &count, &more), STORE_OK);
	assert_int_equal(count, 2);
	assert_true(more);
	assert_string_equal(page[0].id, d[2].id);
	assert_string_equal(page[0].status, "failed");
	assert_string_equal(page[1].id, d[1].id);
	assert_string_equal(page[1].status, "active");

	assert_int_equal(store_deployment_list(db->st, "acme", page[1].id,
	    page, 3, &count, &more), STORE_OK);
	assert_int_equal(count, 1);
	assert_false(more);
	assert_string_equal(page[0].id, d[0].id);

	/* max 0 asks whether there is any; NULL more is fine. */
	assert_int_equal(store_deployment_list(db->st, "acme", NULL, NULL, 0,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 0);
	assert_true(more);
	assert_int_equal(store_deployment_list(db->st, "acme", NULL, page, 3,
	    &count, NULL), STORE_OK);
	assert_int_equal(count, 3);

	/* Unknown cursors and tenants. */
	assert_int_equal(store_deployment_list(db->st, "acme",
	    "no-such-deployment", page, 3, &count, &more), STORE_NOT_FOUND);
	assert_int_equal(store_deployment_list(db->st, "beta", d[0].id, page,
	    3, &count, &more), STORE_NOT_FOUND);
	assert_int_equal(store_deployment_list(db->st, "beta", NULL, page, 3,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 0);
	assert_false(more);
}

/* Equal creation times: the id decides, and the cursor splits them. */
static void
test_deployment_list_ties(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d[2], page[2];
	const struct store_deployment *hi, *lo;
	struct store_build b[2];
	size_t count = 0;
	bool more = false;

	test_deployment_add(db, "acme", 5000, &b[0], &d[0]);
	test_deployment_add(db, "acme", 5000, &b[1], &d[1]);
	hi = strcmp(d[0].id, d[1].id) > 0 ? &d[0] : &d[1];
	lo = hi == &d[0] ? &d[1] : &d[0];

	assert_int_equal(store_deployment_list(db->st, "acme", NULL, page, 1,
	    &count, &more), STORE_OK);
	assert_string_equal(page[0].id, hi->id);
	assert_true(more);
	assert_int_equal(store_deployment_list(db->st, "acme", hi->id, page, 2,
	    &count, &more), STORE_OK);
	assert_int_equal(count, 1);
	assert_string_equal(page[0].id, lo->id);
	assert_false(more);
}

static void
test_deployment_recent(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d[4], out[4];
	struct store_build b[4];
	size_t count = 99;

	/* d[i] current from 100 * (i + 1) to 100 * (i + 2). */
	for (int i = 0; i < 4; i++) {
		test_deployment_add(db, "acme", 1000 * (i + 1), &b[i], &d[i]);
		assert_int_equal(store_deployment_activate(db->st, "acme",
		    d[i].id, 100 * (i + 1), NULL), STORE_OK);
	}

	assert_int_equal(store_deployment_recent(db->st, "acme", 0, out, 4,
	    &count), STORE_OK);
	assert_int_equal(count, 3);
	assert_string_equal(out[0].id, d[2].id);
	assert_int_equal(out[0].deactivated_at, 400);
	assert_string_equal(out[1].id, d[1].id);
	assert_string_equal(out[2].id, d[0].id);

	assert_int_equal(store_deployment_recent(db->st, "acme", 300, out, 4,
	    &count), STORE_OK);
	assert_int_equal(count, 2);
	assert_string_equal(out[0].id, d[2].id);
	assert_string_equal(out[1].id, d[1].id);
	assert_int_equal(store_deployment_recent(db->st, "acme", 0, out, 1,
	    &count), STORE_OK);
	assert_int_equal(count, 1);
	assert_string_equal(out[0].id, d[2].id);
	assert_int_equal(store_deployment_recent(db->st, "acme", 401, out, 4,
	    &count), STORE_OK);
	assert_int_equal(count, 0);

	/* Back to d[0]: current again, so no longer among the recent. */
	assert_int_equal(store_deployment_activate(db->st, "acme", d[0].id,
	    500, NULL), STORE_OK);
	assert_int_equal(store_deployment_recent(db->st, "acme", 0, out, 4,
	    &count), STORE_OK);
	assert_int_equal(count, 3);
	assert_string_equal(out[0].id, d[3].id);
	assert_int_equal(out[0].deactivated_at, 500);
	assert_string_equal(out[1].id, d[2].id);
	assert_string_equal(out[2].id, d[1].id);

	assert_int_equal(store_deployment_recent(db->st, "beta", 0, out, 4,
	    &count), STORE_OK);
	assert_int_equal(count, 0);
}

/* Pointer changes */

#define TEST_CHANGES_MAX        (TEST_POINTER_TENANTS + 8)

/* What a walk of the pointer changes delivered. */
struct test_changes {
	struct store   *st;             /* to call back into, or NULL */
	int             stop_at;        /* refuse the change of this index */
	int             count;
	int             errors;
	char            tenant[TEST_CHANGES_MAX][WHARF_SLUG_MAX + 1];
	char            deployment[TEST_CHANGES_MAX][WHARF_ID_LEN + 1];
};

static int
test_changes_fn(void *ctx, const char *tenant, const char *deployment_id)
{
	struct test_changes *c = ctx;
	struct store_tenant found;

	if (c->count == c->stop_at)
		return 7;
	if (c->count == TEST_CHANGES_MAX)
		return -1;

	/* The store is free to use from here. */
	if (c->st != NULL && (store_tenant_get(c->st, tenant, &found) !=
	    STORE_OK || strcmp(found.current_deployment, deployment_id) != 0))
		c->errors++;
	snprintf(c->tenant[c->count], sizeof(c->tenant[0]), "%s", tenant);
	snprintf(c->deployment[c->count], sizeof(c->deployment[0]), "%s",
	    deployment_id);
	c->count++;
	return 0;
}

static void
test_changes_walk(const struct test_db *db, int64_t *seq, int stop_at,
    struct test_changes *c, enum store_result expect)
{
	memset(c, 0, sizeof(*c));
	c->st = db->st;
	c->stop_at = stop_at;
	assert_int_equal(store_pointer_changes(db->st, seq, test_changes_fn,
	    c), expect);
	assert_int_equal(c->errors, 0);
}

static void
test_pointer_changes(void **state)
{
	struct test_db *db = *state;
	struct store_deployment a1, a2, b1;
	struct store_build ba1, ba2, bb1;
	struct test_changes *c = calloc(1, sizeof(*c));
	int64_t seq = 0, first;

	assert_non_null(c);
	assert_int_equal(store_tenant_add(db->st, "beta", NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_tenant_add(db->st, "gamma", NULL, NULL),
	    STORE_OK);
	test_deployment_add(db, "acme", 1000, &ba1, &a1);
	test_deployment_add(db, "acme", 2000, &ba2, &a2);
	test_deployment_add(db, "beta", 1000, &bb1, &b1);

	/* No flip yet: nothing, and seq stays. */
	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, 0);
	assert_int_equal(seq, 0);

	/* From 0: every tenant ever flipped, in flip order; gamma never. */
	assert_int_equal(store_deployment_activate(db->st, "beta", b1.id, 10,
	    NULL), STORE_OK);
	assert_int_equal(store_deployment_activate(db->st, "acme", a1.id, 20,
	    NULL), STORE_OK);
	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, 2);
	assert_string_equal(c->tenant[0], "beta");
	assert_string_equal(c->deployment[0], b1.id);
	assert_string_equal(c->tenant[1], "acme");
	assert_string_equal(c->deployment[1], a1.id);
	assert_int_equal(seq, test_pointer_seq(db, "acme"));

	/* Caught up: nothing new. */
	first = seq;
	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, 0);
	assert_int_equal(seq, first);

	/* After a flip, only that tenant, with its new deployment. */
	assert_int_equal(store_deployment_activate(db->st, "acme", a2.id, 30,
	    NULL), STORE_OK);
	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, 1);
	assert_string_equal(c->tenant[0], "acme");
	assert_string_equal(c->deployment[0], a2.id);
	assert_true(seq > first);

	/* Stopped at the second change: seq at the first one taken. */
	seq = 0;
	test_changes_walk(db, &seq, 1, c, STORE_ERROR);
	assert_int_equal(c->count, 1);
	assert_string_equal(c->tenant[0], "beta");
	assert_int_equal(seq, test_pointer_seq(db, "beta"));
	assert_non_null(strstr(store_errmsg(), "callback"));
	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, 1);
	assert_string_equal(c->tenant[0], "acme");

	/* A refusal of the very first change leaves seq where it was. */
	seq = 0;
	test_changes_walk(db, &seq, 0, c, STORE_ERROR);
	assert_int_equal(seq, 0);
	free(c);
}

/* More flipped tenants than one page holds: one walk, each once. */
static void
test_pointer_changes_pages(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d;
	struct store_build b;
	struct test_changes *c = calloc(1, sizeof(*c));
	char slug[16];
	int64_t seq = 0;

	assert_non_null(c);
	for (int i = 0; i < TEST_POINTER_TENANTS; i++) {
		snprintf(slug, sizeof(slug), "t%02d", i);
		assert_int_equal(store_tenant_add(db->st, slug, NULL, NULL),
		    STORE_OK);
		test_deployment_add(db, slug, 1000 + i, &b, &d);
		assert_int_equal(store_deployment_activate(db->st, slug, d.id,
		    100 + i, NULL), STORE_OK);
	}

	test_changes_walk(db, &seq, -1, c, STORE_OK);
	assert_int_equal(c->count, TEST_POINTER_TENANTS);
	for (int i = 0; i < TEST_POINTER_TENANTS; i++) {
		snprintf(slug, sizeof(slug), "t%02d", i);
		assert_string_equal(c->tenant[i], slug);
	}
	assert_int_equal(seq, TEST_POINTER_TENANTS);
	free(c);
}

/* Custom domains */

static void
test_domain(void **state)
{
	struct test_db *db = *state;
	char hosts[4][STORE_HOST_MAX + 1];
	char tenant[WHARF_SLUG_MAX + 1];
	size_t count = 99;

	assert_int_equal(store_tenant_add(db->st, "beta", NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_domain_add(db->st, "acme", "www.example.com",
	    10), STORE_OK);

	/* Unique across tenants, whatever the case. */
	assert_int_equal(store_domain_add(db->st, "beta", "www.example.com",
	    11), STORE_CONFLICT);
	assert_int_equal(store_domain_add(db->st, "acme", "www.example.com",
	    11), STORE_CONFLICT);
	assert_int_equal(store_domain_add(db->st, "beta", "WWW.Example.COM",
	    11), STORE_CONFLICT);
	assert_int_equal(store_domain_add(db->st, "nope", "a.example.com",
	    11), STORE_NOT_FOUND);
	assert_int_equal(store_domain_add(db->st, "Bad_Slug",
	    "a.example.com", 11), STORE_NOT_FOUND);

	assert_int_equal(store_domain_lookup(db->st, "www.example.com",
	    tenant), STORE_OK);
	assert_string_equal(tenant, "acme");
	assert_int_equal(store_domain_lookup(db->st, "WWW.EXAMPLE.com",
	    tenant), STORE_OK);
	assert_string_equal(tenant, "acme");
	assert_int_equal(store_domain_lookup(db->st, "example.com", tenant),
	    STORE_NOT_FOUND);
	assert_string_equal(tenant, "");
	assert_int_equal(store_domain_lookup(db->st, "www.example.com.",
	    tenant), STORE_NOT_FOUND);

	/* Listed in byte order, at most max. */
	assert_int_equal(store_domain_add(db->st, "acme", "shop.acme.io", 12),
	    STORE_OK);
	assert_int_equal(store_domain_add(db->st, "acme", "a-b.example.org",
	    13), STORE_OK);
	assert_int_equal(store_domain_list(db->st, "acme", hosts, 4, &count),
	    STORE_OK);
	assert_int_equal(count, 3);
	assert_string_equal(hosts[0], "a-b.example.org");
	assert_string_equal(hosts[1], "shop.acme.io");
	assert_string_equal(hosts[2], "www.example.com");
	assert_int_equal(store_domain_list(db->st, "acme", hosts, 2, &count),
	    STORE_OK);
	assert_int_equal(count, 2);
	assert_string_equal(hosts[1], "shop.acme.io");
	assert_int_equal(store_domain_list(db->st, "beta", hosts, 4, &count),
	    STORE_OK);
	assert_int_equal(count, 0);
	assert_int_equal(store_domain_list(db->st, "nope", hosts, 4, &count),
	    STORE_OK);
	assert_int_equal(count, 0);

	/* Removed only by its tenant; then free for another. */
	assert_int_equal(store_domain_remove(db->st, "beta",
	    "www.example.com"), STORE_NOT_FOUND);
	assert_int_equal(store_domain_remove(db->st, "acme",
	    "WWW.example.com"), STORE_OK);
	assert_int_equal(store_domain_remove(db->st, "acme",
	    "www.example.com"), STORE_NOT_FOUND);
	assert_int_equal(store_domain_remove(db->st, "acme", "not a host"),
	    STORE_NOT_FOUND);
	assert_int_equal(store_domain_lookup(db->st, "www.example.com",
	    tenant), STORE_NOT_FOUND);
	assert_int_equal(store_domain_add(db->st, "beta", "www.example.com",
	    14), STORE_OK);
	assert_int_equal(store_domain_lookup(db->st, "www.example.com",
	    tenant), STORE_OK);
	assert_string_equal(tenant, "beta");
}

/* Three labels of 63 characters, then one of last: into name[300]. */
static void
test_long_name(char *name, size_t last)
{
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		memset(name + n, 'c' + i, i < 3 ? 63 : last);
		n += i < 3 ? 63 : last;
		name[n++] = '.';
	}
	name[n - 1] = '\0';
}

static void
test_domain_names(void **state)
{
	static const char *const bad[] = {
		"", "localhost", "example", ".example.com", "example.com.",
		"www..example.com", "-www.example.com", "www-.example.com",
		"www.example-.com", "www.-example.com", "under_score.com",
		"sp ace.example.com", "www.example.com:8080", "1.2.3.4",
		"10.0.0.1", "example.123", "caf\xc3\xa9.example.com",
		"a/b.example.com", "*.example.com", "a.example.com\n",
	};
	static const char *const good[] = {
		"a.co", "xn--bcher-kva.example", "123.example.com",
		"a-b-c.d-e.f9", "0.example.c0m",
	};
	struct test_db *db = *state;
	char tenant[WHARF_SLUG_MAX + 1];
	char name[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (store_domain_add(db->st, "acme", bad[i], 1) != STORE_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(store_domain_lookup(db->st, bad[i], tenant),
		    STORE_NOT_FOUND);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		if (store_domain_add(db->st, "acme", good[i], 1) != STORE_OK)
			fail_msg("refused \"%s\"", good[i]);

	/* Labels up to 63 characters, names up to 253. */
	memset(name, 'a', 63);
	memcpy(name + 63, ".com", 5);
	assert_int_equal(store_domain_add(db->st, "acme", name, 1), STORE_OK);
	memset(name, 'b', 64);
	memcpy(name + 64, ".com", 5);
	assert_int_equal(store_domain_add(db->st, "acme", name, 1),
	    STORE_ERROR);

	/* 63.63.63.61 is 253 characters; 63.63.63.62 one too many. */
	test_long_name(name, 61);
	assert_int_equal(strlen(name), 253);
	assert_int_equal(store_domain_add(db->st, "acme", name, 1), STORE_OK);
	assert_int_equal(store_domain_lookup(db->st, name, tenant), STORE_OK);
	test_long_name(name, 62);
	assert_int_equal(strlen(name), 254);
	assert_int_equal(store_domain_add(db->st, "acme", name, 1),
	    STORE_ERROR);
}

/* Pointer flips from many threads */

struct test_flipper {
	struct store           *st;
	const char             *tenant;
	const struct store_deployment *deployments;  /* of tenant */
	unsigned                seed;
	int                     flips;          /* that changed the pointer */
	int                     failures;
};

static void *
test_flipper_run(void *arg)
{
	struct test_flipper *f = arg;
	struct store_deployment prev;
	const char *id;

	for (int i = 0; i < TEST_FLIPS_PER_THREAD; i++) {
		id = f->deployments[rand_r(&f->seed) %
		    TEST_FLIP_DEPLOYMENTS].id;
		if (store_deployment_activate(f->st, f->tenant, id,
		    util_now_ms(), &prev) != STORE_OK)
			f->failures++;
		else if (strcmp(prev.id, id) != 0)
			f->flips++;
	}
	return NULL;
}

/* An edge polling while the flips go on: seq only ever grows. */
struct test_edge {
	struct store   *st;
	volatile int    done;
	int             failures;
	int64_t         seq;
};

static int
test_edge_fn(void *ctx, const char *tenant, const char *deployment_id)
{
	(void)ctx;
	return tenant[0] != '\0' && deployment_id[0] != '\0' ? 0 : 1;
}

static void *
test_edge_run(void *arg)
{
	struct test_edge *e = arg;
	int64_t before;

	while (!__atomic_load_n(&e->done, __ATOMIC_ACQUIRE)) {
		before = e->seq;
		if (store_pointer_changes(e->st, &e->seq, test_edge_fn,
		    NULL) != STORE_OK || e->seq < before)
			e->failures++;
	}
	return NULL;
}

static void
test_deployment_threads(void **state)
{
	struct test_db *db = *state;
	struct store_deployment d[TEST_FLIP_TENANTS][TEST_FLIP_DEPLOYMENTS];
	struct test_flipper flippers[TEST_THREADS];
	struct store_deployment page[TEST_FLIP_DEPLOYMENTS + 1], current;
	pthread_t threads[TEST_THREADS], edge_thread;
	struct test_edge edge = { .st = db->st };
	char tenants[TEST_FLIP_TENANTS][16];
	struct store_build b;
	int flips = 0, active;
	size_t count;

	for (int t = 0; t < TEST_FLIP_TENANTS; t++) {
		snprintf(tenants[t], sizeof(tenants[t]), "flip-%d", t);
		assert_int_equal(store_tenant_add(db->st, tenants[t], NULL,
		    NULL), STORE_OK);
		for (int i = 0; i < TEST_FLIP_DEPLOYMENTS; i++)
			test_deployment_add(db, tenants[t], 1000 + i, &b,
			    &d[t][i]);
	}

	/* Two threads per tenant, racing on its pointer. */
	assert_int_equal(pthread_create(&edge_thread, NULL, test_edge_run,
	    &edge), 0);
	for (int i = 0; i < TEST_THREADS; i++) {
		flippers[i] = (struct test_flipper){
			.st = db->st, .tenant = tenants[i % TEST_FLIP_TENANTS],
			.deployments = d[i % TEST_FLIP_TENANTS],
			.seed = (unsigned)i * 2654435761u,
		};
		assert_int_equal(pthread_create(&threads[i], NULL,
		    test_flipper_run, &flippers[i]), 0);
	}
	for (int i = 0; i < TEST_THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(flippers[i].failures, 0);
		flips += flippers[i].flips;
	}
	__atomic_store_n(&edge.done, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(edge_thread, NULL), 0);
	assert_int_equal(edge.failures, 0);

	/* Each tenant: exactly one active deployment, its current one. */
	for (int t = 0; t < TEST_FLIP_TENANTS; t++) {
		assert_int_equal(store_deployment_current(db->st, tenants[t],
		    &current), STORE_OK);
		assert_string_equal(current.status, "active");
		assert_int_equal(store_deployment_list(db->st, tenants[t],
		    NULL, page, TEST_FLIP_DEPLOYMENTS + 1, &count, NULL),
		    STORE_OK);
		assert_int_equal(count, TEST_FLIP_DEPLOYMENTS);
		active = 0;
		for (size_t i = 0; i < count; i++)
			if (strcmp(page[i].status, "active") == 0) {
				active++;
				assert_string_equal(page[i].id, current.id);
			}
		assert_int_equal(active, 1);
	}

	/* Every flip took the next value, each value once. */
	assert_true(flips >= TEST_FLIP_TENANTS);
	assert_int_equal(test_sql_int64(db, "SELECT MAX(pointer_seq)"
	    " FROM tenants"), flips);
	assert_int_equal(test_sql_int64(db, "SELECT COUNT(DISTINCT"
	    " pointer_seq) FROM tenants WHERE pointer_seq > 0"),
	    TEST_FLIP_TENANTS);
	edge.seq = 0;
	assert_int_equal(store_pointer_changes(db->st, &edge.seq,
	    test_edge_fn, NULL), STORE_OK);
	assert_int_equal(edge.seq, flips);
}

/* Threads */

struct test_worker {
	struct store   *st;
	int             index;
	int             failures;
};

static void *
test_worker_run(void *arg)
{
	struct test_worker *w = arg;
	struct store_user user;
	char email[64];

	for (int i = 0; i < TEST_USERS_PER_THREAD; i++) {
		snprintf(email, sizeof(email), "u%d-%d@example.com", w->index,
		    i);
		if (store_user_add(w->st, email, "$y$h", NULL) != STORE_OK ||
		    store_user_by_email(w->st, email, &user) != STORE_OK)
			w->failures++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct test_db *db = *state;
	struct test_worker workers[TEST_THREADS];
	pthread_t threads[TEST_THREADS];
	struct store_user user;
	char email[64];

	for (int t = 0; t < TEST_THREADS; t++) {
		workers[t] = (struct test_worker){ db->st, t, 0 };
		assert_int_equal(pthread_create(&threads[t], NULL,
		    test_worker_run, &workers[t]), 0);
	}
	for (int t = 0; t < TEST_THREADS; t++) {
		assert_int_equal(pthread_join(threads[t], NULL), 0);
		assert_int_equal(workers[t].failures, 0);
	}

	for (int t = 0; t < TEST_THREADS; t++)
		for (int i = 0; i < TEST_USERS_PER_THREAD; i++) {
			snprintf(email, sizeof(email), "u%d-%d@example.com",
			    t, i);
			assert_int_equal(store_user_by_email(db->st, email,
			    &user), STORE_OK);
		}
}

#define TEST_FRESH(f) \
	cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
#define TEST_MIGRATED(f) \
	cmocka_unit_test_setup_teardown(f, test_setup_migrated, test_teardown)
#define TEST_SEEDED(f) \
	cmocka_unit_test_setup_teardown(f, test_setup_seeded, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_FRESH(test_migrate_empty),
		TEST_FRESH(test_migrate_again),
		TEST_FRESH(test_migrate_newer_refused),
		TEST_FRESH(test_open_urls),
		TEST_FRESH(test_unmigrated_error),
		TEST_MIGRATED(test_user),
		TEST_SEEDED(test_user_set_active),
		TEST_MIGRATED(test_tenant),
		TEST_SEEDED(test_member),
		TEST_SEEDED(test_member_unknown),
		TEST_SEEDED(test_build_create),
		TEST_SEEDED(test_build_create_unknown_tenant),
		TEST_SEEDED(test_build_create_atomic),
		TEST_SEEDED(test_build_list),
		TEST_SEEDED(test_build_list_edges),
		TEST_MIGRATED(test_threads),
		TEST_SEEDED(test_deployment_create),
		TEST_SEEDED(test_deployment_fail),
		TEST_SEEDED(test_deployment_activate),
		TEST_SEEDED(test_deployment_rollback),
		TEST_SEEDED(test_deployment_list),
		TEST_SEEDED(test_deployment_list_ties),
		TEST_SEEDED(test_deployment_recent),
		TEST_SEEDED(test_pointer_changes),
		TEST_SEEDED(test_pointer_changes_pages),
		TEST_SEEDED(test_domain),
		TEST_SEEDED(test_domain_names),
		TEST_SEEDED(test_deployment_threads),
	};

	/* Expected failures log warnings; keep the output to results. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
