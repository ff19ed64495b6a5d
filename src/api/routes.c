/*
 * routes: the API's route table, and the endpoints too small for a
 * file of their own (/healthz, /metrics).
 */
#include <stdlib.h>

#include "api/http.h"
#include "auth/auth.h"

#define R(m, p, h, f, r) { m, p, (const void *)(h), f, r, 0 }
#define B "/api/builds/:tenantId"
#define T "/api/tenants/:tenantId"

const struct router_route http_routes[] = {
	R("GET",  "/healthz", routes_healthz, HTTP_PUBLIC, 0),
	R("GET",  "/metrics", routes_metrics, HTTP_PUBLIC, 0),
	R("POST", "/api/auth/login", routes_login, HTTP_PUBLIC, 0),
	R("POST", B, &routes_upload_ops, HTTP_TENANT | HTTP_STREAM,
	    AUTH_ROLES_ALL),
	R("GET",  B "/builds", routes_build_list, HTTP_TENANT, AUTH_ROLES_ALL),
	R("GET",  B "/builds/:buildId", routes_build_get, HTTP_TENANT,
	    AUTH_ROLES_ALL),
	R("GET",  B "/builds/:buildId/logs", routes_build_logs, HTTP_TENANT,
	    AUTH_ROLES_ALL),
	R("DELETE", B "/builds/:buildId", routes_build_delete, HTTP_TENANT,
	    AUTH_ROLES_ADMIN),
	R("POST", B "/builds/:buildId/retry", routes_build_retry,
	    HTTP_TENANT, AUTH_ROLES_ADMIN),
	R("GET",  T "/deployments", routes_deployment_list, HTTP_TENANT,
	    AUTH_ROLES_ALL),
	R("POST", T "/deployments/:deploymentId/activate",
	    routes_deployment_activate, HTTP_TENANT, AUTH_ROLES_ADMIN),
	R("GET",  T "/domains", routes_domain_list, HTTP_TENANT,
	    AUTH_ROLES_ADMIN),
	R("POST", T "/domains", routes_domain_add, HTTP_TENANT,
	    AUTH_ROLES_ADMIN),
	R("DELETE", T "/domains/:hostname", routes_domain_remove, HTTP_TENANT,
	    AUTH_ROLES_ADMIN),
};
const size_t http_nroutes = sizeof(http_routes) / sizeof(http_routes[0]);

void
routes_healthz(struct http_request *rq)
{
	http_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

void
routes_metrics(struct http_request *rq)
{
	char *text;
	size_t len;

	if (metrics_render(&text, &len) != 0) {
		http_reply_error(rq, 500, "Internal error",
		    "Cannot render metrics");
		return;
	}
	http_reply_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, len);
	free(text);
}
