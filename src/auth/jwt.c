/*
 * jwt: HS256 JSON Web Tokens (RFC 7519) and the base64url encoding
 * (RFC 4648, section 5, without padding) they are written in.
 *
 * Verification runs in a fixed order, each step refusing before the
 * next one starts: length, three parts, header (alg must be HS256),
 * signature, then the claims.  Nothing in the payload is read before
 * the signature has been checked.
 */
#include <limits.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"

#define JWT_SIG_LEN     32      /* HMAC-SHA256 */
#define JWT_HEADER      "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* A token split at its two dots; the parts point into the token. */
struct jwt_parts {
	const char *header;
	size_t      header_len;
	const char *payload;
	size_t      payload_len;
	const char *sig;
	size_t      sig_len;
	size_t      signed_len;     /* header "." payload */
};

static const char jwt_b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
auth_b64url_len(size_t len)
{
	return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

int
auth_b64url_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = in;
	uint32_t bits = 0;
	size_t o = 0;
	int nbits = 0;

	/* len <= outlen keeps auth_b64url_len() from overflowing. */
	if (len > outlen || auth_b64url_len(len) >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++) {
		bits = (bits << 8) | p[i];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			out[o++] = jwt_b64_digits[(bits >> nbits) & 0x3f];
		}
	}
	if (nbits > 0)
		out[o++] = jwt_b64_digits[(bits << (6 - nbits)) & 0x3f];
	out[o] = '\0';
	return 0;
}

/* Value of one base64url digit, or -1 ('=' included: no padding). */
static int
jwt_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

ssize_t
auth_b64url_decode(const char *in, size_t len, void *out, size_t outlen)
{
	unsigned char *p = out;
	uint32_t bits = 0;
	size_t o = 0;
	int nbits = 0;

	/* One digit left over carries fewer than 8 bits: not an encoding. */
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = jwt_b64_value(in[i]);

		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (o == outlen)
				return -1;
			p[o++] = (unsigned char)(bits >> nbits);
		}
	}

	/* The unused low bits must be zero, so each value has one text. */
	if ((bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return (ssize_t)o;
}

/* HMAC-SHA256 of msg under secret into sig.  Returns 0 or -1. */
static int
jwt_hmac(const char *secret, size_t secret_len, const char *msg,
    size_t msg_len, unsigned char sig[JWT_SIG_LEN])
{
	unsigned int sig_len = 0;

	if (secret_len > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), secret, (int)secret_len,
	    (const unsigned char *)msg, msg_len, sig, &sig_len) == NULL)
		return -1;
	return sig_len == JWT_SIG_LEN ? 0 : -1;
}

/*
 * Appends the base64url text of len bytes to out at *pos, followed by
 * sep unless sep is NUL.  Returns 0, or -1 when out is full.
 */
static int
jwt_append(char *out, size_t *pos, const void *in, size_t len, char sep)
{
	if (auth_b64url_encode(in, len, out + *pos, AUTH_TOKEN_MAX - *pos)
	    != 0)
		return -1;
	*pos += strlen(out + *pos);
	if (sep == '\0')
		return 0;
	if (*pos + 1 >= AUTH_TOKEN_MAX)
		return -1;
	out[(*pos)++] = sep;
	out[*pos] = '\0';
	return 0;
}

enum auth_result
auth_jwt_sign(const char *secret, size_t secret_len, const char *user_id,
    int64_t now_sec, int64_t ttl_sec, char out[AUTH_TOKEN_MAX],
    int64_t *exp_sec)
{
	unsigned char sig[JWT_SIG_LEN];
	enum auth_result r = AUTH_ERROR;
	json_t *claims = NULL;
	char *payload = NULL;
	size_t pos = 0;
	int64_t exp;

	if (secret == NULL || secret_len == 0 || user_id == NULL ||
	    user_id[0] == '\0' || strlen(user_id) > WHARF_ID_LEN ||
	    ttl_sec <= 0 || now_sec > INT64_MAX - ttl_sec)
		goto out;
	exp = now_sec + ttl_sec;

	claims = json_pack("{s:s, s:I, s:I}", "userId", user_id,
	    "iat", (json_int_t)now_sec, "exp", (json_int_t)exp);
	if (claims == NULL)
		goto out;
	payload = json_dumps(claims, JSON_COMPACT);
	if (payload == NULL)
		goto out;

	/* header "." payload, signed, then "." signature */
	if (jwt_append(out, &pos, JWT_HEADER, strlen(JWT_HEADER), '.') != 0 ||
	    jwt_append(out, &pos, payload, strlen(payload), '.') != 0 ||
	    jwt_hmac(secret, secret_len, out, pos - 1, sig) != 0 ||
	    jwt_append(out, &pos, sig, sizeof(sig), '\0') != 0)
		goto out;

	if (exp_sec != NULL)
		*exp_sec = exp;
	r = AUTH_OK;
out:
	if (r != AUTH_OK)
		out[0] = '\0';
	free(payload);
	json_decref(claims);
	return r;
}

/* Splits token (len bytes) at exactly two dots.  Returns 0 or -1. */
static int
jwt_split(const char *token, size_t len, struct jwt_parts *parts)
{
	const char *dot1, *dot2;

	dot1 = memchr(token, '.', len);
	if (dot1 == NULL)
		return -1;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (dot2 == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return -1;

	parts->header = token;
	parts->header_len = (size_t)(dot1 - token);
	parts->payload = dot1 + 1;
	parts->payload_len = (size_t)(dot2 - parts->payload);
	parts->sig = dot2 + 1;
	parts->sig_len = len - (size_t)(parts->sig - token);
	parts->signed_len = (size_t)(dot2 - token);
	return 0;
}

/*
 * Decodes one part and parses it as a JSON object; the caller frees
 * *obj with json_decref.  Duplicate keys are refused, so that no two
 * readers can disagree on which "alg" a header names.
 */
static enum auth_result
jwt_decode_object(const char *part, size_t len, json_t **obj)
{
	char text[AUTH_TOKEN_MAX];
	json_error_t jerr;
	ssize_t n;

	*obj = NULL;
	n = auth_b64url_decode(part, len, text, sizeof(text));
	if (n < 0)
		return AUTH_MALFORMED;
	*obj = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (*obj == NULL)
		return AUTH_MALFORMED;
	if (!json_is_object(*obj)) {
		json_decref(*obj);
		*obj = NULL;
		return AUTH_MALFORMED;
	}
	return AUTH_OK;
}

/* True when v is a JSON string equal to want. */
static bool
jwt_string_is(const json_t *v, const char *want)
{
	const char *s = json_string_value(v);

	return s != NULL && strcmp(s, want) == 0;
}

/*
 * The header must name HS256, and JWT when it names a type.  A "crit"
 * member asks us to understand extensions we do not know: refused.
 */
static enum auth_result
jwt_check_header(const struct jwt_parts *parts)
{
	enum auth_result r;
	json_t *header, *typ;

	r = jwt_decode_object(parts->header, parts->header_len, &header);
	if (r != AUTH_OK)
		return r;

	typ = json_object_get(header, "typ");
	if (!jwt_string_is(json_object_get(header, "alg"), "HS256") ||
	    (typ != NULL && !jwt_string_is(typ, "JWT")) ||
	    json_object_get(header, "crit") != NULL)
		r = AUTH_BAD_ALG;
	json_decref(header);
	return r;
}

/* The signature must be 32 bytes and the HMAC of header "." payload. */
static enum auth_result
jwt_check_signature(const char *secret, size_t secret_len,
    const char *token, const struct jwt_parts *parts)
{
	unsigned char given[AUTH_TOKEN_MAX], want[JWT_SIG_LEN];
	ssize_t n;

	n = auth_b64url_decode(parts->sig, parts->sig_len, given,
	    sizeof(given));
	if (n < 0)
		return AUTH_MALFORMED;
	if (n != JWT_SIG_LEN)
		return AUTH_BAD_SIGNATURE;
	if (jwt_hmac(secret, secret_len, token, parts->signed_len, want) != 0)
		return AUTH_ERROR;
	if (CRYPTO_memcmp(given, want, JWT_SIG_LEN) != 0)
		return AUTH_BAD_SIGNATURE;
	return AUTH_OK;
}

/* Reads userId and exp from a payload whose signature is good. */
static enum auth_result
jwt_read_claims(const struct jwt_parts *parts, int64_t now_sec,
    char user_id[WHARF_ID_LEN + 1])
{
	const char *uid;
	enum auth_result r;
	json_t *claims, *exp;

	r = jwt_decode_object(parts->payload, parts->payload_len, &claims);
	if (r != AUTH_OK)
		return r;

	uid = json_string_value(json_object_get(claims, "userId"));
	exp = json_object_get(claims, "exp");
	if (uid == NULL || uid[0] == '\0' || strlen(uid) > WHARF_ID_LEN ||
	    !json_is_integer(exp))
		r = AUTH_MALFORMED;
	else if (json_integer_value(exp) <= now_sec)
		r = AUTH_EXPIRED;
	else
		memcpy(user_id, uid, strlen(uid) + 1);
	json_decref(claims);
	return r;
}

enum auth_result
auth_jwt_verify(const char *secret, size_t secret_len, const char *token,
    int64_t now_sec, char user_id[WHARF_ID_LEN + 1])
{
	struct jwt_parts parts;
	enum auth_result r;
	size_t len;

	user_id[0] = '\0';
	if (secret == NULL || secret_len == 0)
		return AUTH_ERROR;
	if (token == NULL)
		return AUTH_MALFORMED;
	len = strnlen(token, AUTH_TOKEN_MAX);
	if (len >= AUTH_TOKEN_MAX || jwt_split(token, len, &parts) != 0)
		return AUTH_MALFORMED;

	r = jwt_check_header(&parts);
	if (r != AUTH_OK)
		return r;
	r = jwt_check_signature(secret, secret_len, token, &parts);
	if (r != AUTH_OK)
		return r;
	return jwt_read_claims(&parts, now_sec, user_id);
}
