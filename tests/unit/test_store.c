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
	};

	/* Expected failures log warnings; keep the output to results. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
