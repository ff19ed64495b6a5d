/*
 * routes_deploy: deployments (list, activate: rollback and promote) and
 * custom domains, under /api/tenants/:tenantId.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "core/log.h"
#include "deploy/deploy.h"

#define DEPLOY_PAGE_DEFAULT 20
#define DEPLOY_PAGE_MAX     100
#define DOMAINS_MAX         100

static json_t *
deploy_time(int64_t ms)
{
	char buf[32];

	if (ms == 0)
		return json_null();
	util_iso8601(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
deploy_json(struct http_request *rq, const struct store_deployment *d)
{
	char url[400];

	deploy_deployment_url(rq->srv->deploy, d->tenant, d->build_id, url,
	    sizeof(url));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o,"
	    " s:b, s:s}",
	    "id", d->id, "buildId", d->build_id, "tenantId", d->tenant,
	    "version", d->version, "status", d->status,
	    "fileCount", (json_int_t)d->file_count,
	    "bytes", (json_int_t)d->bytes,
	    "createdAt", deploy_time(d->created_at),
	    "activatedAt", deploy_time(d->activated_at),
	    "deactivatedAt", deploy_time(d->deactivated_at),
	    "current", strcmp(d->id, rq->tenant.current_deployment) == 0,
	    "url", url);
}

json_t *
builds_urls_json(struct http_request *rq, const struct store_build *b)
{
	struct store_deployment d;
	char url[400];
	json_t *urls;

	if (store_deployment_of_build(rq->srv->store, b->tenant, b->id, &d) !=
	    STORE_OK)
		return json_pack("{s:n, s:n}", "site", "deployment");
	deploy_deployment_url(rq->srv->deploy, b->tenant, b->id, url,
	    sizeof(url));
	urls = json_pack("{s:n, s:s}", "site", "deployment", url);
	if (strcmp(d.id, rq->tenant.current_deployment) == 0) {
		deploy_site_url(rq->srv->deploy, b->tenant, url, sizeof(url));
		json_object_set_new(urls, "site", json_string(url));
	}
	return urls;
}

void
routes_deployment_list(struct http_request *rq)
{
	struct store_deployment *page;
	size_t limit, count = 0;
	bool more = false;
	json_t *list;

	if (http_query_limit(rq, DEPLOY_PAGE_DEFAULT, DEPLOY_PAGE_MAX,
	    &limit) != 0)
		return;
	page = calloc(limit, sizeof(*page));
	if (page == NULL) {
		http_reply_error(rq, 500, "Internal error", "Out of memory");
		return;
	}
	if (http_reply_page_error(rq, store_deployment_list(rq->srv->store,
	    rq->tenant.slug, http_query(rq, "cursor"), page, limit, &count,
	    &more), "listing deployments") != 0)
		goto out;
	list = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, deploy_json(rq, &page[i]));
	http_reply_json(rq, 200, json_pack("{s:b, s:{s:o, s:o, s:o}}",
	    "success", 1, "data", "deployments", list, "current",
	    rq->tenant.current_deployment[0] ?
	    json_string(rq->tenant.current_deployment) : json_null(),
	    "nextCursor", more && count > 0 ? json_string(page[count - 1].id) :
	    json_null()));
out:
	free(page);
}

void
routes_deployment_activate(struct http_request *rq)
{
	const char *id = http_param(rq, 1);
	struct store_deployment d;

	switch (deploy_activate(rq->srv->deploy, rq->tenant.slug, id, &d)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 404, "Deployment not found", "No "
		    "deployment '%.40s' in tenant '%s'", id, rq->tenant.slug);
		return;
	case STORE_CONFLICT:
		http_reply_error(rq, 409, "Deployment cannot be activated",
		    "Deployment %.40s failed to publish; activate another one",
		    id);
		return;
	default:
		http_reply_store_error(rq, "activating the deployment");
		return;
	}
	log_info("api.deployment_activated", "req=%s tenant=%s deployment=%s "
	    "user=%s", rq->id, rq->tenant.slug, d.id, rq->user.id);
	snprintf(rq->tenant.current_deployment,
	    sizeof(rq->tenant.current_deployment), "%s", d.id);
	http_reply_json(rq, 200, json_pack("{s:b, s:s, s:{s:o}}", "success",
	    1, "message", "Deployment activated", "data", "deployment",
	    deploy_json(rq, &d)));
}

/* Lowercases a hostname from the request into out; -1 when unusable. */
static int
domain_hostname(const char *in, char out[STORE_HOST_MAX + 1])
{
	size_t n = in ? strlen(in) : 0;

	if (n == 0 || n > STORE_HOST_MAX)
		return -1;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

void
routes_domain_add(struct http_request *rq)
{
	char host[STORE_HOST_MAX + 1];
	json_t *body = http_body_json(rq);

	if (body == NULL)
		return;
	if (domain_hostname(json_string_value(json_object_get(body,
	    "hostname")), host) != 0) {
		http_reply_error(rq, 400, "Invalid hostname", "Send "
		    "{\"hostname\": \"www.example.com\"}");
		goto out;
	}
	switch (store_domain_add(rq->srv->store, rq->tenant.slug, host,
	    util_now_ms())) {
	case STORE_OK:
		break;
	case STORE_CONFLICT:
		http_reply_error(rq, 409, "Domain taken", "%s is already "
		    "attached to a tenant", host);
		goto out;
	case STORE_ERROR:
		http_reply_error(rq, 400, "Invalid hostname", "%s is not a "
		    "DNS name like www.example.com: %s", host, store_errmsg());
		goto out;
	default:
		http_reply_store_error(rq, "adding the domain");
		goto out;
	}
	log_info("api.domain_added", "req=%s tenant=%s host=%s", rq->id,
	    rq->tenant.slug, host);
	http_reply_json(rq, 201, json_pack("{s:b, s:{s:s, s:s}}", "success",
	    1, "data", "hostname", host, "tenantId", rq->tenant.slug));
out:
	json_decref(body);
}

void
routes_domain_list(struct http_request *rq)
{
	char (*hosts)[STORE_HOST_MAX + 1];
	size_t count = 0;
	json_t *list;

	hosts = calloc(DOMAINS_MAX, sizeof(*hosts));
	if (hosts == NULL) {
		http_reply_error(rq, 500, "Internal error", "Out of memory");
		return;
	}
	if (store_domain_list(rq->srv->store, rq->tenant.slug, hosts,
	    DOMAINS_MAX, &count) != STORE_OK) {
		http_reply_store_error(rq, "listing domains");
		free(hosts);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, json_string(hosts[i]));
	free(hosts);
	http_reply_json(rq, 200, json_pack("{s:b, s:{s:o}}", "success", 1,
	    "data", "domains", list));
}

void
routes_domain_remove(struct http_request *rq)
{
	char host[STORE_HOST_MAX + 1];

	if (domain_hostname(http_param(rq, 1), host) != 0) {
		http_reply_error(rq, 404, "Domain not found", "No such domain");
		return;
	}
	switch (store_domain_remove(rq->srv->store, rq->tenant.slug, host)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 404, "Domain not found", "%s is not a "
		    "domain of '%s'", host, rq->tenant.slug);
		return;
	default:
		http_reply_store_error(rq, "removing the domain");
		return;
	}
	log_info("api.domain_removed", "req=%s tenant=%s host=%s", rq->id,
	    rq->tenant.slug, host);
	http_reply_json(rq, 200, json_pack("{s:b, s:s}", "success", 1,
	    "message", "Domain removed"));
}
