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

/* A DNS name: labels of at most 63 characters, 253 in all. */
#define STORE_LABEL_MAX         63
#define STORE_HOST_LEN_MAX      253

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

/* Deployments */

/* A DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'. */
static bool
store_valid_label(const char *label, size_t len)
{
	if (len == 0 || len > STORE_LABEL_MAX || label[0] == '-' ||
	    label[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(label[i] >= 'a' && label[i] <= 'z') &&
		    !(label[i] >= '0' && label[i] <= '9') && label[i] != '-')
			return false;
	return true;
}

/* A tenant's slug is a DNS label; anything else names no tenant. */
static bool
store_valid_slug(const char *slug)
{
	return store_valid_label(slug, strnlen(slug, WHARF_SLUG_MAX + 1));
}

/* An id that could be stored: 1 to WHARF_ID_LEN bytes. */
static bool
store_valid_id(const char *id)
{
	size_t len = strnlen(id, WHARF_ID_LEN + 1);

	return len > 0 && len <= WHARF_ID_LEN;
}

enum store_result
store_deployment_create(struct store *st, const struct store_deployment *d)
{
	struct store_deployment row;

	assert(st != NULL && d != NULL);
	if (!store_valid_id(d->id))
		return store_error("deployment_create", "a deployment needs "
		    "an id of 1 to %d bytes", WHARF_ID_LEN);
	if (!store_valid_slug(d->tenant) || !store_valid_id(d->build_id))
		return STORE_NOT_FOUND;
	if (d->file_count < 0 || d->bytes < 0)
		return store_error("deployment_create", "negative file count "
		    "or size");
	if (strnlen(d->manifest_key, sizeof(d->manifest_key)) ==
	    sizeof(d->manifest_key))
		return store_error("deployment_create", "manifest key not "
		    "terminated");

	/* Only the caller's fields; the flip sets the rest. */
	row = *d;
	row.version[0] = '\0';
	(void)store_copy(row.status, sizeof(row.status), "pending");
	row.activated_at = 0;
	row.deactivated_at = 0;
	return st->ops->deployment_create(st, &row);
}

enum store_result
store_deployment_activate(struct store *st, const char *tenant,
    const char *deployment_id, int64_t now, struct store_deployment *prev)
{
	struct store_deployment prev_ignored;
	enum store_result r;

	assert(st != NULL && tenant != NULL && deployment_id != NULL);
	if (prev == NULL)
		prev = &prev_ignored;
	memset(prev, 0, sizeof(*prev));
	if (!store_valid_slug(tenant) || !store_valid_id(deployment_id))
		return STORE_NOT_FOUND;

	r = st->ops->deployment_activate(st, tenant, deployment_id, now,
	    prev);
	if (r != STORE_OK)
		memset(prev, 0, sizeof(*prev));
	return r;
}

enum store_result
store_deployment_fail(struct store *st, const char *deployment_id)
{
	assert(st != NULL && deployment_id != NULL);
	if (!store_valid_id(deployment_id))
		return STORE_NOT_FOUND;
	return st->ops->deployment_fail(st, deployment_id);
}

enum store_result
store_deployment_get(struct store *st, const char *tenant,
    const char *deployment_id, struct store_deployment *out)
{
	assert(st != NULL && tenant != NULL && deployment_id != NULL);
	assert(out != NULL);
	if (!store_valid_slug(tenant) || !store_valid_id(deployment_id))
		return STORE_NOT_FOUND;
	return st->ops->deployment_get(st, tenant, deployment_id, out);
}

enum store_result
store_deployment_of_build(struct store *st, const char *tenant,
    const char *build_id, struct store_deployment *out)
{
	assert(st != NULL && tenant != NULL && build_id != NULL);
	assert(out != NULL);
	if (!store_valid_slug(tenant) || !store_valid_id(build_id))
		return STORE_NOT_FOUND;
	return st->ops->deployment_of_build(st, tenant, build_id, out);
}

enum store_result
store_deployment_current(struct store *st, const char *tenant,
    struct store_deployment *out)
{
	assert(st != NULL && tenant != NULL && out != NULL);
	if (!store_valid_slug(tenant))
		return STORE_NOT_FOUND;
	return st->ops->deployment_current(st, tenant, out);
}

enum store_result
store_deployment_list(struct store *st, const char *tenant,
    const char *cursor, struct store_deployment *out, size_t max,
    size_t *count, bool *more)
{
	bool more_ignored;

	assert(st != NULL && tenant != NULL && count != NULL);
	assert(out != NULL || max == 0);
	*count = 0;
	if (more == NULL)
		more = &more_ignored;
	*more = false;

	/* An unknown tenant has no deployments, and no cursor among them. */
	if (!store_valid_slug(tenant) ||
	    (cursor != NULL && !store_valid_id(cursor)))
		return cursor != NULL ? STORE_NOT_FOUND : STORE_OK;
	return st->ops->deployment_list(st, tenant, cursor, out, max, count,
	    more);
}

enum store_result
store_deployment_recent(struct store *st, const char *tenant,
    int64_t since, struct store_deployment *out, size_t max, size_t *count)
{
	assert(st != NULL && tenant != NULL && count != NULL);
	assert(out != NULL || max == 0);
	*count = 0;
	if (!store_valid_slug(tenant) || max == 0)
		return STORE_OK;
	return st->ops->deployment_recent(st, tenant, since, out, max, count);
}

/*
 * Walks the changes page by page, so that fn runs with no lock of the
 * backend held and a walk from 0 needs no memory for every tenant.  A
 * tenant that flips during the walk comes again, later, with its new
 * deployment: the order is the sequence's.
 */
enum store_result
store_pointer_changes(struct store *st, int64_t *seq,
    int (*fn)(void *ctx, const char *tenant, const char *deployment_id),
    void *ctx)
{
	struct store_pointer page[STORE_POINTER_PAGE];
	enum store_result r;
	size_t count;
	int rc;

	assert(st != NULL && seq != NULL && fn != NULL);
	do {
		count = 0;
		/* Never below 0: tenants never flipped are at 0. */
		r = st->ops->pointer_changes(st, *seq > 0 ? *seq : 0, page,
		    STORE_POINTER_PAGE, &count);
		if (r != STORE_OK)
			return r;

		for (size_t i = 0; i < count; i++) {
			rc = fn(ctx, page[i].tenant, page[i].deployment_id);
			if (rc != 0)
				return store_error("pointer_changes", "stopped "
				    "by its callback (%d) at tenant %s", rc,
				    page[i].tenant);
			*seq = page[i].seq;
		}
	} while (count == STORE_POINTER_PAGE);
	return STORE_OK;
}

/* Custom domains */

/*
 * The key a hostname is stored and looked up under: the name in
 * lowercase (ASCII, the same folding on every backend), when it is a
 * DNS name as store.h defines it.  0, or -1 when it is not one.
 */
static int
store_host_key(const char *hostname, char key[STORE_HOST_MAX + 1])
{
	size_t len = strnlen(hostname, STORE_HOST_LEN_MAX + 1);
	const char *label = key;
	bool digits = true;
	int dots = 0;

	if (len == 0 || len > STORE_HOST_LEN_MAX)
		return -1;
	for (size_t i = 0; i <= len; i++)
		key[i] = hostname[i] >= 'A' && hostname[i] <= 'Z' ?
		    (char)(hostname[i] - 'A' + 'a') : hostname[i];

	/* Each label, the one ending at the NUL included. */
	for (const char *p = key; ; p++) {
		if (*p != '.' && *p != '\0') {
			digits = digits && *p >= '0' && *p <= '9';
			continue;
		}
		if (!store_valid_label(label, (size_t)(p - label)))
			return -1;
		if (*p == '\0')
			break;
		dots++;
		label = p + 1;
		digits = true;
	}

	/* The last label all digits: an IPv4 address, not a name. */
	return dots > 0 && !digits ? 0 : -1;
}

enum store_result
store_domain_add(struct store *st, const char *tenant, const char *hostname,
    int64_t now)
{
	char key[STORE_HOST_MAX + 1];

	assert(st != NULL && tenant != NULL && hostname != NULL);
	if (store_host_key(hostname, key) != 0)
		return store_error("domain_add", "a hostname is a DNS name: "
		    "at most %d characters, two or more labels of [a-z0-9-], "
		    "not all digits at the end", STORE_HOST_LEN_MAX);
	if (!store_valid_slug(tenant))
		return STORE_NOT_FOUND;
	return st->ops->domain_add(st, tenant, key, now);
}

enum store_result
store_domain_remove(struct store *st, const char *tenant,
    const char *hostname)
{
	char key[STORE_HOST_MAX + 1];

	assert(st != NULL && tenant != NULL && hostname != NULL);
	if (!store_valid_slug(tenant) || store_host_key(hostname, key) != 0)
		return STORE_NOT_FOUND;
	return st->ops->domain_remove(st, tenant, key);
}

enum store_result
store_domain_lookup(struct store *st, const char *hostname,
    char tenant[WHARF_SLUG_MAX + 1])
{
	char key[STORE_HOST_MAX + 1];

	assert(st != NULL && hostname != NULL && tenant != NULL);
	tenant[0] = '\0';
	/* A name we could never have stored is simply not there. */
	if (store_host_key(hostname, key) != 0)
		return STORE_NOT_FOUND;
	return st->ops->domain_lookup(st, key, tenant);
}

enum store_result
store_domain_list(struct store *st, const char *tenant,
    char (*out)[STORE_HOST_MAX + 1], size_t max, size_t *count)
{
	assert(st != NULL && tenant != NULL && count != NULL);
	assert(out != NULL || max == 0);
	*count = 0;
	if (!store_valid_slug(tenant) || max == 0)
		return STORE_OK;
	return st->ops->domain_list(st, tenant, out, max, count);
}
