/*
 * store: the backend-neutral front.  Picks a backend from the URL,
 * keeps each thread's last error message, validates arguments and
 * fills ids and times, then hands records to the backend.
 */
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store_impl.h"

static _Thread_local char store_last_error[WHARF_ERRMSG_MAX];

static const char *const store_roles[] = { "owner", "admin", "member" };

const char *
store_errmsg(void)
{
	return store_last_error;
}

void
store_errmsg_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_last_error, sizeof(store_last_error), fmt, ap);
	va_end(ap);
}

enum store_result
store_error(const char *op, const char *fmt, ...)
{
	char quoted[WHARF_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_last_error, sizeof(store_last_error), fmt, ap);
	va_end(ap);

	log_warnx("store.error", "op=%s err=%s", op,
	    log_q(quoted, sizeof(quoted), store_last_error));
	return STORE_ERROR;
}

/* Copies src into dst of size bytes: 0, or -1 when it does not fit. */
static int
store_copy(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

/*
 * The key an email is stored and looked up under: the address in
 * lowercase (ASCII; the same folding on every backend).  0, or -1 when
 * empty or too long.
 */
static int
store_email_key(const char *email, char key[WHARF_EMAIL_MAX + 1])
{
	if (email[0] == '\0' ||
	    store_copy(key, WHARF_EMAIL_MAX + 1, email) != 0)
		return -1;
	for (char *p = key; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/*
 * Copies src (NULL reads "") into dst of size bytes, cut when too long
 * at a UTF-8 character boundary: for messages, which are better short
 * than refused.
 */
static void
store_copy_cut(char *dst, size_t size, const char *src)
{
	size_t len;

	if (src == NULL)
		src = "";
	len = strlen(src);
	if (len >= size) {
		len = size - 1;
		/* src[len] is the first byte left out: not mid-character. */
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static bool
store_valid_owner(const char *owner)
{
	return owner[0] != '\0' && strlen(owner) < STORE_OWNER_MAX;
}

static bool
store_valid_role(const char *role)
{
	for (size_t i = 0; i < sizeof(store_roles) / sizeof(*store_roles); i++)
		if (strcmp(role, store_roles[i]) == 0)
			return true;
	return false;
}

/*
 * Length of url's scheme when it starts like "scheme://", else 0: a
 * bare path ("./data/wharf.db", "/var/lib/wharf.db") has none.
 */
static size_t
store_url_scheme_len(const char *url)
{
	size_t n = 0;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[n]) || url[n] == '+' ||
	    url[n] == '-' || url[n] == '.')
		n++;
	return strncmp(url + n, "://", 3) == 0 ? n : 0;
}

struct store *
store_open(const char *url, char *err, size_t errlen)
{
	const char *path = url;

	assert(url != NULL);
	if (strncmp(url, "postgres://", 11) == 0 ||
	    strncmp(url, "postgresql://", 13) == 0) {
		snprintf(err, errlen, "the PostgreSQL backend is not "
		    "available yet; use sqlite:/path/to/wharf.db");
		return NULL;
	}

	/* "sqlite:/p", "sqlite:///p" and a bare path all name a file. */
	if (strncmp(url, "sqlite:", 7) == 0) {
		path = url + 7;
		if (strncmp(path, "//", 2) == 0)
			path += 2;
	} else if (store_url_scheme_len(url) > 0) {
		snprintf(err, errlen, "unsupported database URL scheme in "
		    "\"%.*s\": use sqlite:/path or postgres://",
		    (int)store_url_scheme_len(url), url);
		return NULL;
	}
	if (path[0] == '\0') {
		snprintf(err, errlen, "database URL \"%s\" names no file",
		    url);
		return NULL;
	}
	return store_sqlite_open(path, err, errlen);
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

enum store_result
store_schema_version(struct store *st, int *version)
{
	assert(st != NULL && version != NULL);
	return st->ops->schema_version(st, version);
}

enum store_result
store_user_add(struct store *st, const char *email,
    const char *password_hash, struct store_user *out)
{
	struct store_user user;
	enum store_result r;

	assert(st != NULL && email != NULL && password_hash != NULL);
	memset(&user, 0, sizeof(user));
	if (store_email_key(email, user.email) != 0)
		return store_error("user_add", "email must be 1 to %d bytes",
		    WHARF_EMAIL_MAX);
	if (store_copy(user.password_hash, sizeof(user.password_hash),
	    password_hash) != 0)
		return store_error("user_add", "password hash longer than "
		    "%d bytes", STORE_HASH_MAX - 1);

	util_uuid(user.id);
	user.is_active = true;
	user.created_at = util_now_ms();
	r = st->ops->user_add(st, &user);
	if (r == STORE_OK && out != NULL)
		*out = user;
	return r;
}

enum store_result
store_user_by_email(struct store *st, const char *email,
    struct store_user *out)
{
	char key[WHARF_EMAIL_MAX + 1];

	assert(st != NULL && email != NULL && out != NULL);
	/* An address we could never have stored is simply not there. */
	if (store_email_key(email, key) != 0)
		return STORE_NOT_FOUND;
	return st->ops->user_by_email(st, key, out);
}

enum store_result
store_user_by_id(struct store *st, const char *id, struct store_user *out)
{
	assert(st != NULL && id != NULL && out != NULL);
	return st->ops->user_by_id(st, id, out);
}

enum store_result
store_user_set_active(struct store *st, const char *email, bool active)
{
	char key[WHARF_EMAIL_MAX + 1];

	assert(st != NULL && email != NULL);
	if (store_email_key(email, key) != 0)
		return STORE_NOT_FOUND;
	return st->ops->user_set_active(st, key, active);
}

enum store_result
store_tenant_add(struct store *st, const char *slug, const char *name,
    struct store_tenant *out)
{
	struct store_tenant tenant;
	enum store_result r;

	assert(st != NULL && slug != NULL);
	memset(&tenant, 0, sizeof(tenant));
	if (slug[0] == '\0' ||
	    store_copy(tenant.slug, sizeof(tenant.slug), slug) != 0)
		return store_error("tenant_add", "slug must be 1 to %d bytes",
		    WHARF_SLUG_MAX);
	if (store_copy(tenant.name, sizeof(tenant.name),
	    name != NULL ? name : slug) != 0)
		return store_error("tenant_add", "name longer than %d bytes",
		    WHARF_NAME_MAX);

	tenant.created_at = util_now_ms();
	r = st->ops->tenant_add(st, &tenant);
	if (r == STORE_OK && out != NULL)
		*out = tenant;
	return r;
}

enum store_result
store_tenant_get(struct store *st, const char *slug,
    struct store_tenant *out)
{
	assert(st != NULL && slug != NULL && out != NULL);
	return st->ops->tenant_get(st, slug, out);
}

enum store_result
store_member_set(struct store *st, const char *tenant, const char *user_id,
    const char *role)
{
	struct store_membership member;

	assert(st != NULL && tenant != NULL && user_id != NULL);
	assert(role != NULL);
	memset(&member, 0, sizeof(member));
	if (!store_valid_role(role))
		return store_error("member_set", "role must be owner, admin "
		    "or member");
	if (store_copy(member.tenant, sizeof(member.tenant), tenant) != 0 ||
	    store_copy(member.user_id, sizeof(member.user_id), user_id) != 0)
		return STORE_NOT_FOUND;

	(void)store_copy(member.role, sizeof(member.role), role);
	member.is_active = true;
	member.created_at = util_now_ms();
	return st->ops->member_set(st, &member);
}

enum store_result
store_member_remove(struct store *st, const char *tenant,
    const char *user_id)
{
	assert(st != NULL && tenant != NULL && user_id != NULL);
	return st->ops->member_remove(st, tenant, user_id);
}

enum store_result
store_member_get(struct store *st, const char *tenant, const char *user_id,
    struct store_membership *out)
{
	assert(st != NULL && tenant != NULL && user_id != NULL);
	assert(out != NULL);
	return st->ops->member_get(st, tenant, user_id, out);
}

enum store_result
store_build_list(struct store *st, const char *tenant, const char *status,
    const char *cursor, struct store_build *out, size_t max, size_t *count,
    bool *more)
{
	bool more_ignored;

	assert(st != NULL && tenant != NULL && count != NULL);
	assert(out != NULL || max == 0);
	*count = 0;
	if (more == NULL)
		more = &more_ignored;
	*more = false;
	return st->ops->build_list(st, tenant, status, cursor, out, max,
	    count, more);
}

/*
 * Fills in a new job of build_id, waiting from now; the caller chose
 * its id, priority and max_attempts.  0, or -1 when build_id is too
 * long to be a build's.
 */
static int
store_job_prepare(struct store_job *job, const char *build_id, int64_t now)
{
	if (store_copy(job->build_id, sizeof(job->build_id), build_id) != 0)
		return -1;
	(void)store_copy(job->state, sizeof(job->state), "waiting");
	job->attempts = 0;
	job->run_at = now;
	job->lease_owner[0] = '\0';
	job->lease_expires = 0;
	job->last_error[0] = '\0';
	job->created_at = now;
	job->finished_at = 0;
	return 0;
}

enum store_result
store_build_create(struct store *st, const struct store_build *b,
    const char *env_values_json, struct store_job *job)
{
	assert(st != NULL && b != NULL && job != NULL);
	if (b->id[0] == '\0' || job->id[0] == '\0')
		return store_error("build_create", "build and job need ids");

	(void)store_job_prepare(job, b->id, util_now_ms());
	return st->ops->build_create(st, b, env_values_json, job);
}

enum store_result
store_build_get(struct store *st, const char *tenant, const char *build_id,
    struct store_build *out)
{
	assert(st != NULL && tenant != NULL && build_id != NULL);
	assert(out != NULL);
	return st->ops->build_get(st, tenant, build_id, out);
}

enum store_result
store_build_env_values(struct store *st, const char *build_id, char **json)
{
	assert(st != NULL && build_id != NULL && json != NULL);
	return st->ops->build_env_values(st, build_id, json);
}

enum store_result
store_build_plan(struct store *st, const char *build_id,
    const char *framework, const char *build_command,
    const char *output_dir)
{
	assert(st != NULL && build_id != NULL && framework != NULL);
	assert(build_command != NULL && output_dir != NULL);
	return st->ops->build_plan(st, build_id, framework, build_command,
	    output_dir);
}

/* The job queue */

void
store_log_job_lost(const struct store_job *job, const char *tenant)
{
	char owner[STORE_OWNER_MAX + 8];

	log_warnx("queue.lost", "job=%s build=%s tenant=%s attempts=%d "
	    "stalled_owner=%s", job->id, job->build_id, tenant,
	    job->attempts, log_q(owner, sizeof(owner), job->lease_owner));
}

static void
store_log_reclaimed(const struct store_job *job,
    const struct store_build *build, const char *stalled_owner)
{
	char owner[STORE_OWNER_MAX + 8], stalled[STORE_OWNER_MAX + 8];

	log_warnx("queue.reclaimed", "job=%s build=%s tenant=%s attempt=%d "
	    "owner=%s stalled_owner=%s", job->id, job->build_id,
	    build->tenant, job->attempts,
	    log_q(owner, sizeof(owner), job->lease_owner),
	    log_q(stalled, sizeof(stalled), stalled_owner));
}

enum store_result
store_job_claim(struct store *st, const char *owner, int64_t now,
    int64_t lease_ms, struct store_job *job, struct store_build *build)
{
	char stalled_owner[STORE_OWNER_MAX] = "";
	enum store_result r;

	assert(st != NULL && owner != NULL && lease_ms > 0);
	assert(job != NULL && build != NULL);
	if (!store_valid_owner(owner))
		return store_error("job_claim", "owner must be 1 to %d bytes",
		    STORE_OWNER_MAX - 1);

	r = st->ops->job_claim(st, owner, now, now + lease_ms, job, build,
	    stalled_owner);
	if (r == STORE_OK && stalled_owner[0] != '\0')
		store_log_reclaimed(job, build, stalled_owner);
	return r;
}

enum store_result
store_job_heartbeat(struct store *st, const char *job_id, const char *owner,
    int64_t now, int64_t lease_ms)
{
	assert(st != NULL && job_id != NULL && owner != NULL);
	assert(lease_ms > 0);
	return st->ops->job_heartbeat(st, job_id, owner, now + lease_ms);
}

enum store_result
store_job_complete(struct store *st, const char *job_id, const char *owner,
    int64_t now, int keep_completed)
{
	assert(st != NULL && job_id != NULL && owner != NULL);
	assert(keep_completed >= 0);
	return st->ops->job_complete(st, job_id, owner, now, keep_completed);
}

enum store_result
store_job_fail(struct store *st, const char *job_id, const char *owner,
    int64_t now, int64_t retry_at, const char *error,
    const char *error_step, int keep_failed, bool *final)
{
	struct store_build cut;          /* only its two text fields */
	bool final_ignored;

	assert(st != NULL && job_id != NULL && owner != NULL);
	assert(keep_failed >= 0);
	if (final == NULL)
		final = &final_ignored;
	*final = false;

	store_copy_cut(cut.error, sizeof(cut.error), error);
	store_copy_cut(cut.error_step, sizeof(cut.error_step), error_step);
	return st->ops->job_fail(st, job_id, owner, now, retry_at, cut.error,
	    cut.error_step, keep_failed, final);
}

enum store_result
store_job_position(struct store *st, const char *job_id, int64_t *ahead)
{
	assert(st != NULL && job_id != NULL && ahead != NULL);
	*ahead = 0;
	return st->ops->job_position(st, job_id, ahead);
}

enum store_result
store_job_of_build(struct store *st, const char *build_id,
    struct store_job *out)
{
	assert(st != NULL && build_id != NULL && out != NULL);
	return st->ops->job_of_build(st, build_id, out);
}

enum store_result
store_job_count(struct store *st, const char *state, int64_t *count)
{
	assert(st != NULL && count != NULL);
	*count = 0;
	return st->ops->job_count(st, state, count);
}

enum store_result
store_build_progress(struct store *st, const char *build_id, int progress)
{
	assert(st != NULL && build_id != NULL);
	if (progress < 0 || progress > 100)
		return store_error("build_progress", "progress %d is not "
		    "within 0 to 100", progress);
	return st->ops->build_progress(st, build_id, progress);
}

enum store_result
store_build_finish(struct store *st, const char *build_id,
    const char *status, const char *error, const char *error_step,
    int64_t now)
{
	struct store_build cut;          /* only its two text fields */

	assert(st != NULL && build_id != NULL && status != NULL);
	if (strcmp(status, "success") != 0 && strcmp(status, "failed") != 0)
		return store_error("build_finish", "a build ends as success "
		    "or failed");

	store_copy_cut(cut.error, sizeof(cut.error), error);
	store_copy_cut(cut.error_step, sizeof(cut.error_step), error_step);
	return st->ops->build_finish(st, build_id, status, cut.error,
	    cut.error_step, now);
}

enum store_result
store_build_cancel(struct store *st, const char *tenant,
    const char *build_id, int64_t now)
{
	assert(st != NULL && tenant != NULL && build_id != NULL);
	return st->ops->build_cancel(st, tenant, build_id, now);
}

enum store_result
store_build_delete(struct store *st, const char *tenant,
    const char *build_id)
{
	assert(st != NULL && tenant != NULL && build_id != NULL);
	return st->ops->build_delete(st, tenant, build_id);
}

enum store_result
store_build_retry(struct store *st, const char *tenant,
    const char *build_id, int64_t now, struct store_job *job)
{
	assert(st != NULL && tenant != NULL && build_id != NULL);
	assert(job != NULL);
	if (job->id[0] == '\0')
		return store_error("build_retry", "the new job needs an id");
	if (store_job_prepare(job, build_id, now) != 0)
		return STORE_NOT_FOUND;         /* no build has such an id */
	return st->ops->build_retry(st, tenant, build_id, job);
}
