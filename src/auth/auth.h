/*
 * auth: passwords, JSON Web Tokens, and the validation of the names
 * that authorization depends on (emails, tenant slugs, roles).
 *
 * JWTs are HS256 only: a token naming any other algorithm, "none"
 * included, is refused before its signature is looked at.  The payload
 * carries "userId", "iat" and "exp".
 *
 * Passwords are hashed with yescrypt through libcrypt and verified in
 * constant time.
 */
#ifndef WHARF_AUTH_H
#define WHARF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define AUTH_TOKEN_MAX 1024     /* longest JWT we sign or accept */

enum auth_result {
	AUTH_OK = 0,
	AUTH_MALFORMED,         /* not three base64url parts, bad JSON */
	AUTH_BAD_ALG,           /* header alg is not HS256 */
	AUTH_BAD_SIGNATURE,
	AUTH_EXPIRED,
	AUTH_ERROR,             /* allocation or crypto library failure */
};

/* Short English text for a result ("expired", "bad signature"...). */
const char *auth_result_str(enum auth_result r);

/*
 * Signs a token for user_id valid from now_sec for ttl_sec seconds.
 * Writes it NUL-terminated into out (AUTH_TOKEN_MAX bytes) and its
 * expiry into *exp_sec when not NULL.  Returns AUTH_OK or AUTH_ERROR.
 */
enum auth_result auth_jwt_sign(const char *secret, size_t secret_len,
    const char *user_id, int64_t now_sec, int64_t ttl_sec,
    char out[AUTH_TOKEN_MAX], int64_t *exp_sec);

/*
 * Verifies token against secret at time now_sec.  On AUTH_OK writes
 * the userId claim into user_id.  A token without a string userId or a
 * numeric exp is AUTH_MALFORMED.
 */
enum auth_result auth_jwt_verify(const char *secret, size_t secret_len,
    const char *token, int64_t now_sec, char user_id[WHARF_ID_LEN + 1]);

/*
 * Hashes password with yescrypt and a fresh salt into out (outlen >=
 * 128).  Returns 0, or -1 on a library failure.
 */
int auth_password_hash(const char *password, char *out, size_t outlen);

/*
 * True when password matches hash.  The comparison is constant-time;
 * a malformed hash never matches.
 */
bool auth_password_verify(const char *password, const char *hash);

/*
 * A dummy verification of the same cost as a real one, run when the
 * email is unknown so that login time does not reveal which emails
 * exist.
 */
void auth_password_burn(const char *password);

/* Tenant slug: [a-z0-9-]{1,63}, not starting or ending with '-'. */
bool auth_valid_slug(const char *slug);
/* One of "owner", "admin", "member". */
bool auth_valid_role(const char *role);
/* A plausible address: local@domain, printable, <= 254 bytes. */
bool auth_valid_email(const char *email);

/*
 * Roles as a bit set, for routes: AUTH_ROLES_ALL lets every member in,
 * AUTH_ROLES_ADMIN owners and admins.
 */
#define AUTH_ROLE_OWNER  0x1u
#define AUTH_ROLE_ADMIN  0x2u
#define AUTH_ROLE_MEMBER 0x4u
#define AUTH_ROLES_ALL   (AUTH_ROLE_OWNER | AUTH_ROLE_ADMIN | AUTH_ROLE_MEMBER)
#define AUTH_ROLES_ADMIN (AUTH_ROLE_OWNER | AUTH_ROLE_ADMIN)

/* Bit of a role name, 0 if unknown. */
unsigned auth_role_bit(const char *role);
/* "owner, admin" for a bit set, into buf. */
const char *auth_roles_str(unsigned roles, char *buf, size_t len);

#endif
