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
#include <sys/types.h>

#include "core/core.h"

#define AUTH_TOKEN_MAX 1024     /* longest JWT we sign or accept */

/* Longest password, in bytes (libcrypt refuses 512 and more). */
#define AUTH_PASSWORD_MAX WHARF_PASSWORD_MAX

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
 * Signs a token for user_id (1 to WHARF_ID_LEN chars) valid from
 * now_sec for ttl_sec (> 0) seconds.  Writes it NUL-terminated into out
 * (AUTH_TOKEN_MAX bytes) and its expiry into *exp_sec when not NULL.
 * Returns AUTH_OK, or AUTH_ERROR (out then "") on an empty secret, an
 * invalid argument or a library failure.
 */
enum auth_result auth_jwt_sign(const char *secret, size_t secret_len,
    const char *user_id, int64_t now_sec, int64_t ttl_sec,
    char out[AUTH_TOKEN_MAX], int64_t *exp_sec);

/*
 * Verifies token against secret at time now_sec.  On AUTH_OK writes
 * the userId claim into user_id; otherwise user_id is "".
 *
 * AUTH_MALFORMED: AUTH_TOKEN_MAX chars or more, not three base64url
 * parts, a header or payload that is not a JSON object, or a payload
 * without a string userId (1 to WHARF_ID_LEN chars) and an integer exp.
 * AUTH_BAD_ALG: the header's alg is not "HS256", its typ, when present,
 * not "JWT", or it has a "crit" member; decided before the signature.
 * AUTH_EXPIRED: exp <= now_sec.  AUTH_ERROR: empty secret.
 */
enum auth_result auth_jwt_verify(const char *secret, size_t secret_len,
    const char *token, int64_t now_sec, char user_id[WHARF_ID_LEN + 1]);

/*
 * Base64url (RFC 4648, section 5) without padding, as JWTs use it.
 * auth_b64url_len: encoded length of len bytes, without the NUL.
 * auth_b64url_encode: writes the text NUL-terminated into out; 0, or -1
 * when outlen is too small.
 * auth_b64url_decode: decodes len chars of in into out; the number of
 * bytes, or -1 on a char outside the alphabet ('=' included), an
 * impossible length, non-zero unused bits, or outlen too small.
 */
size_t auth_b64url_len(size_t len);
int auth_b64url_encode(const void *in, size_t len, char *out,
    size_t outlen);
ssize_t auth_b64url_decode(const char *in, size_t len, void *out,
    size_t outlen);

/*
 * Hashes password with yescrypt and a fresh salt into out (outlen >=
 * 128).  Returns 0, or -1 when password is empty or longer than
 * AUTH_PASSWORD_MAX, or on a library failure.
 */
int auth_password_hash(const char *password, char *out, size_t outlen);

/*
 * True when password matches hash.  The comparison is constant-time.
 * A hash that is not yescrypt ("$y$...") never matches, and costs the
 * time of a real verification; an empty password or one longer than
 * AUTH_PASSWORD_MAX never matches either, and is refused at once.
 */
bool auth_password_verify(const char *password, const char *hash);

/*
 * A dummy verification of the same cost as a real one, run when the
 * email is unknown so that login time does not reveal which emails
 * exist.  Refuses at once what auth_password_verify refuses at once.
 */
void auth_password_burn(const char *password);

/* Tenant slug: [a-z0-9-]{1,63}, not starting or ending with '-'. */
bool auth_valid_slug(const char *slug);
/* One of "owner", "admin", "member". */
bool auth_valid_role(const char *role);
/*
 * A plausible address: one '@'; a local part of 1 to 64 printable
 * ASCII chars; a domain of one or more dot-separated labels of
 * [A-Za-z0-9-] (1 to 63 chars, no '-' at either end); <= 254 bytes.
 */
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
/*
 * Names of the roles in a bit set, strongest first and joined by ", "
 * ("owner, admin"), into buf; unknown bits are ignored, and a buf too
 * small truncates.  Returns buf.
 */
const char *auth_roles_str(unsigned roles, char *buf, size_t len);

#endif
