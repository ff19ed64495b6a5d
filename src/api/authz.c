/*
 * authz: who is calling, and may they touch this tenant.  Every
 * authenticated route goes through authz_user(); every tenant route
 * through authz_tenant() as well.  The statuses are the contract's
 * (DESIGN.md, "HTTP API"): no token 401; a token that fails
 * verification 403; a user missing or deactivated 401; unknown tenant
 * 404; not an active member 403; role too low 403.
 */
#include <string.h>
#include <strings.h>

#include "api/http.h"
#include "auth/auth.h"
#include "core/log.h"

/* The bearer token of the request, or NULL. */
static const char *
authz_token(struct http_request *rq)
{
	const char *h;

	h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (*h != '\0')
			return h;
	}
	h = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, "token");
	return (h != NULL && *h != '\0') ? h : NULL;
}

int
authz_user(struct http_request *rq)
{
	const struct config *cfg = rq->srv->cfg;
	char user_id[WHARF_ID_LEN + 1];
	enum auth_result ar;
	const char *token;

	token = authz_token(rq);
	if (token == NULL) {
		http_reply_error(rq, 401, "Access denied. No token provided.",
		    "Send Authorization: Bearer <token> or a token cookie; "
		    "POST /api/auth/login gives a token");
		return -1;
	}
	ar = auth_jwt_verify(cfg->jwt_secret, cfg->jwt_secret_len, token,
	    util_now_ms() / 1000, user_id);
	if (ar != AUTH_OK) {
		log_info("auth.token_refused", "req=%s reason=%s", rq->id,
		    auth_result_str(ar));
		http_reply_error(rq, 403, "Invalid or expired token",
		    "The token was refused (%s); log in again for a new one",
		    auth_result_str(ar));
		return -1;
	}

	switch (store_user_by_id(rq->srv->store, user_id, &rq->user)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		http_reply_error(rq, 401, "User not found or token invalid",
		    "The token names a user that does not exist");
		return -1;
	default:
		http_reply_store_error(rq, "loading the user");
		return -1;
	}
	if (!rq->user.is_active) {
		http_reply_error(rq, 401, "User account is deactivated",
		    "Ask an administrator to enable the account");
		return -1;
	}
	return 0;
}

int
authz_tenant(struct http_request *rq, const char *tenant, unsigned roles)
{
	struct store *st = rq->srv->store;
	char need[64];
	enum store_result sr;

	sr = auth_valid_slug(tenant) ?
	    store_tenant_get(st, tenant, &rq->tenant) : STORE_NOT_FOUND;
	if (sr == STORE_NOT_FOUND) {
		http_reply_error(rq, 404, "Tenant not found",
		    "No tenant '%.63s'", tenant);
		return -1;
	}
	if (sr != STORE_OK) {
		http_reply_store_error(rq, "loading the tenant");
		return -1;
	}

	sr = store_member_get(st, tenant, rq->user.id, &rq->member);
	if (sr != STORE_OK && sr != STORE_NOT_FOUND) {
		http_reply_store_error(rq, "loading the membership");
		return -1;
	}
	if (sr == STORE_NOT_FOUND || !rq->member.is_active) {
		http_reply_error(rq, 403, "Access denied. You are not a "
		    "member of this tenant.", "Ask an owner of '%s' to add "
		    "you", tenant);
		return -1;
	}
	if ((auth_role_bit(rq->member.role) & roles) == 0) {
		http_reply_error(rq, 403, "Access denied. Insufficient role.",
		    "Required roles: %s. Your role: %s",
		    auth_roles_str(roles, need, sizeof(need)),
		    rq->member.role);
		return -1;
	}
	return 0;
}
