/*
 * routes_auth: POST /api/auth/login, email and password for a token.
 */
#include <ctype.h>
#include <string.h>

#include "api/http.h"
#include "auth/auth.h"
#include "core/log.h"

/* Every refusal looks the same, so a caller cannot probe for emails. */
static void
routes_login_refuse(struct http_request *rq, const char *why)
{
	log_info("auth.login_refused", "req=%s reason=%s", rq->id, why);
	http_reply_error(rq, 401, "Invalid credentials",
	    "The email or password is wrong, or the account is disabled");
}

static json_t *
routes_login_body(struct http_request *rq, const char **email,
    const char **password)
{
	json_t *body = http_body_json(rq);

	if (body == NULL)
		return NULL;
	*email = json_string_value(json_object_get(body, "email"));
	*password = json_string_value(json_object_get(body, "password"));
	if (*email == NULL || *password == NULL) {
		json_decref(body);
		http_reply_error(rq, 400, "Invalid request",
		    "Send {\"email\": \"...\", \"password\": \"...\"} "
		    "with both values as strings");
		return NULL;
	}
	return body;
}

void
routes_login(struct http_request *rq)
{
	const struct config *cfg = rq->srv->cfg;
	const char *email, *password;
	char token[AUTH_TOKEN_MAX], expires[32], qe[300];
	struct store_user user;
	int64_t exp_sec;
	json_t *body;

	body = routes_login_body(rq, &email, &password);
	if (body == NULL)
		return;

	switch (store_user_by_email(rq->srv->store, email, &user)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		auth_password_burn(password);
		routes_login_refuse(rq, "unknown_email");
		goto out;
	default:
		http_reply_store_error(rq, "loading the user");
		goto out;
	}
	if (!auth_password_verify(password, user.password_hash)) {
		routes_login_refuse(rq, "wrong_password");
		goto out;
	}
	if (!user.is_active) {
		routes_login_refuse(rq, "user_disabled");
		goto out;
	}

	if (auth_jwt_sign(cfg->jwt_secret, cfg->jwt_secret_len, user.id,
	    util_now_ms() / 1000, cfg->token_ttl_sec, token, &exp_sec)
	    != AUTH_OK) {
		http_reply_error(rq, 500, "Internal error",
		    "Cannot sign a token");
		goto out;
	}
	util_iso8601(exp_sec * 1000, expires, sizeof(expires));
	log_info("auth.login", "req=%s user=%s email=%s", rq->id, user.id,
	    log_q(qe, sizeof(qe), user.email));
	memcpy(&rq->user, &user, sizeof(user));
	http_reply_json(rq, 200, json_pack("{s:s, s:s, s:{s:s, s:s}}",
	    "token", token, "expiresAt", expires,
	    "user", "id", user.id, "email", user.email));
out:
	json_decref(body);
}
