/*
 * Unit tests for src/auth: JWTs and base64url, passwords, validation.
 *
 * Hostile tokens are built here from header and payload JSON texts,
 * signed with the real HS256 key, so that each case reaches exactly the
 * check it is about.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"

#define TEST_SECRET     "0123456789abcdef0123456789abcdef"
#define TEST_NOW        1764781200      /* 2025-12-03T17:00:00Z */
#define TEST_TTL        86400
#define TEST_USER       "9f2c6a1e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
#define TEST_HEADER     "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define TEST_PASSWORD   "correct horse battery staple"

static const char test_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Replaces a base64url digit by another one. */
static void
test_flip(char *c)
{
	*c = *c == 'A' ? 'B' : 'A';
}

/* The token text of three parts, or of two when sig_b64 is NULL. */
static void
test_join(char *out, size_t outlen, const char *header_b64,
    const char *payload_b64, const char *sig_b64)
{
	int n;

	if (sig_b64 != NULL)
		n = snprintf(out, outlen, "%s.%s.%s", header_b64,
		    payload_b64, sig_b64);
	else
		n = snprintf(out, outlen, "%s.%s", header_b64, payload_b64);
	assert_true(n > 0 && (size_t)n < outlen);
}

static void
test_b64(const char *text, char *out, size_t outlen)
{
	assert_int_equal(auth_b64url_encode(text, strlen(text), out, outlen),
	    0);
}

/* Base64url of HMAC-SHA256(TEST_SECRET, signing_input). */
static void
test_sign_input(const char *signing_input, char *out, size_t outlen)
{
	unsigned char sig[EVP_MAX_MD_SIZE];
	unsigned int sig_len = 0;

	assert_non_null(HMAC(EVP_sha256(), TEST_SECRET,
	    (int)strlen(TEST_SECRET), (const unsigned char *)signing_input,
	    strlen(signing_input), sig, &sig_len));
	assert_int_equal(auth_b64url_encode(sig, sig_len, out, outlen), 0);
}

/*
 * A token of header and payload JSON, correctly signed for TEST_SECRET
 * whatever the header says, into out (>= 4096 bytes).
 */
static char *
test_token(const char *header, const char *payload, char *out)
{
	char h[2048], p[2048], input[4096], sig[64];

	test_b64(header, h, sizeof(h));
	test_b64(payload, p, sizeof(p));
	test_join(input, sizeof(input), h, p, NULL);
	test_sign_input(input, sig, sizeof(sig));
	test_join(out, 4096, h, p, sig);
	return out;
}

/* As test_token, with the signature part left empty ("h.p."). */
static char *
test_token_unsigned(const char *header, const char *payload, char *out)
{
	char h[2048], p[2048];

	test_b64(header, h, sizeof(h));
	test_b64(payload, p, sizeof(p));
	test_join(out, 4096, h, p, "");
	return out;
}

static const char *
test_claims(char *buf, size_t len, const char *user, int64_t exp)
{
	snprintf(buf, len, "{\"userId\":\"%s\",\"iat\":%d,\"exp\":%lld}",
	    user, TEST_NOW, (long long)exp);
	return buf;
}

static enum auth_result
test_verify(const char *token, int64_t now, char user[WHARF_ID_LEN + 1])
{
	return auth_jwt_verify(TEST_SECRET, strlen(TEST_SECRET), token, now,
	    user);
}

static void
test_sign(const char *user, char out[AUTH_TOKEN_MAX], int64_t *exp)
{
	assert_int_equal(auth_jwt_sign(TEST_SECRET, strlen(TEST_SECRET),
	    user, TEST_NOW, TEST_TTL, out, exp), AUTH_OK);
}

/* Base64url */

static void
test_b64url_vectors(void **state)
{
	static const struct { const char *plain, *coded; } vectors[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" },
		{ "\xff\xff\xfe", "___-" },
	};
	char coded[32];
	unsigned char plain[32];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t len = strlen(vectors[i].plain);

		assert_int_equal(auth_b64url_encode(vectors[i].plain, len,
		    coded, sizeof(coded)), 0);
		assert_string_equal(coded, vectors[i].coded);
		assert_int_equal(auth_b64url_len(len), strlen(coded));
		assert_int_equal(auth_b64url_decode(coded, strlen(coded),
		    plain, sizeof(plain)), (ssize_t)len);
		assert_memory_equal(plain, vectors[i].plain, len);
	}
}

static void
test_b64url_refused(void **state)
{
	static const char *const bad[] = {
		"Zg==", "Zg=", "Zm9v=", "Z", "Zm9vY", "Zm9v+A", "Zm9v/A",
		"Zm 9v", "Zm9v\n", "Zm.v", "Zm9\x80", "Zh", "Zm9", "-_9",
	};
	unsigned char plain[32];
	char coded[8];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(auth_b64url_decode(bad[i], strlen(bad[i]),
		    plain, sizeof(plain)), -1);

	/* Output buffers one byte too small. */
	assert_int_equal(auth_b64url_decode("Zm9vYmFy", 8, plain, 5), -1);
	assert_int_equal(auth_b64url_decode("Zm9vYmFy", 8, plain, 6), 6);
	assert_int_equal(auth_b64url_encode("foobar", 6, coded, 8), -1);
	assert_int_equal(auth_b64url_encode("fooba", 5, coded, 8), 0);
}

/* JWT: signing and the happy path */

static void
test_jwt_round_trip(void **state)
{
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1];
	char want[4096], claims[256];
	int64_t exp = 0;

	test_sign(TEST_USER, token, &exp);
	assert_int_equal(exp, TEST_NOW + TEST_TTL);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
	assert_string_equal(user, TEST_USER);

	/* Exactly the header and claims we document, in this order. */
	test_token(TEST_HEADER, test_claims(claims, sizeof(claims),
	    TEST_USER, TEST_NOW + TEST_TTL), want);
	assert_string_equal(token, want);

	/* exp_sec may be NULL. */
	assert_int_equal(auth_jwt_sign(TEST_SECRET, strlen(TEST_SECRET),
	    "u", TEST_NOW, 60, token, NULL), AUTH_OK);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
	assert_string_equal(user, "u");
}

static void
test_jwt_sign_refused(void **state)
{
	char token[AUTH_TOKEN_MAX], long_user[WHARF_ID_LEN + 2];
	size_t slen = strlen(TEST_SECRET);

	memset(long_user, 'u', WHARF_ID_LEN + 1);
	long_user[WHARF_ID_LEN + 1] = '\0';

	assert_int_equal(auth_jwt_sign(TEST_SECRET, 0, TEST_USER, TEST_NOW,
	    60, token, NULL), AUTH_ERROR);
	assert_string_equal(token, "");
	assert_int_equal(auth_jwt_sign(NULL, slen, TEST_USER, TEST_NOW, 60,
	    token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, NULL, TEST_NOW, 60,
	    token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, "", TEST_NOW, 60,
	    token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, long_user,
	    TEST_NOW, 60, token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, TEST_USER,
	    TEST_NOW, 0, token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, TEST_USER,
	    TEST_NOW, -1, token, NULL), AUTH_ERROR);
	assert_int_equal(auth_jwt_sign(TEST_SECRET, slen, TEST_USER,
	    INT64_MAX - 10, 60, token, NULL), AUTH_ERROR);
	assert_string_equal(token, "");
}

static void
test_jwt_expiry(void **state)
{
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1];
	int64_t exp;

	test_sign(TEST_USER, token, &exp);
	assert_int_equal(test_verify(token, exp - 1, user), AUTH_OK);
	assert_int_equal(test_verify(token, exp, user), AUTH_EXPIRED);
	assert_string_equal(user, "");
	assert_int_equal(test_verify(token, exp + 1, user), AUTH_EXPIRED);
	assert_int_equal(test_verify(token, INT64_MAX, user), AUTH_EXPIRED);
}

/* JWT: signatures */

static void
test_jwt_tampered_payload(void **state)
{
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1];
	char forged[4096], claims[256], payload[512];
	char *p1, *p2;

	test_sign(TEST_USER, token, NULL);
	p1 = strchr(token, '.') + 1;
	p2 = strchr(p1, '.');

	/* Another user's claims under the first token's signature. */
	test_b64(test_claims(claims, sizeof(claims),
	    "00000000-0000-4000-8000-000000000000", TEST_NOW + TEST_TTL),
	    payload, sizeof(payload));
	snprintf(forged, sizeof(forged), "%.*s%s%s", (int)(p1 - token), token,
	    payload, p2);
	assert_int_equal(test_verify(forged, TEST_NOW, user),
	    AUTH_BAD_SIGNATURE);
	assert_string_equal(user, "");

	/* One character of the payload changed. */
	snprintf(forged, sizeof(forged), "%s", token);
	test_flip(&forged[p1 - token + 5]);
	assert_int_equal(test_verify(forged, TEST_NOW, user),
	    AUTH_BAD_SIGNATURE);
}

static void
test_jwt_tampered_signature(void **state)
{
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1], forged[4096];
	char claims[256], h[64], p[512], input[1024], sig[128];
	static const size_t sig_lens[] = { 1, 16, 31, 33, 64 };
	unsigned char raw[64] = { 0 };
	size_t last;
	char *s;

	test_sign(TEST_USER, token, NULL);
	s = strrchr(token, '.') + 1;

	/* One character of the signature changed. */
	snprintf(forged, sizeof(forged), "%s", token);
	test_flip(&forged[s - token]);
	assert_int_equal(test_verify(forged, TEST_NOW, user),
	    AUTH_BAD_SIGNATURE);

	/* Empty, short and long signatures. */
	test_b64(TEST_HEADER, h, sizeof(h));
	test_b64(test_claims(claims, sizeof(claims), TEST_USER,
	    TEST_NOW + TEST_TTL), p, sizeof(p));
	test_join(input, sizeof(input), h, p, "");
	assert_int_equal(test_verify(input, TEST_NOW, user),
	    AUTH_BAD_SIGNATURE);
	for (size_t i = 0; i < sizeof(sig_lens) / sizeof(sig_lens[0]); i++) {
		assert_int_equal(auth_b64url_encode(raw, sig_lens[i], sig,
		    sizeof(sig)), 0);
		test_join(forged, sizeof(forged), h, p, sig);
		assert_int_equal(test_verify(forged, TEST_NOW, user),
		    AUTH_BAD_SIGNATURE);
	}

	/* The signature's unused low bits set: one value, one text. */
	snprintf(forged, sizeof(forged), "%s", token);
	last = strlen(forged) - 1;
	forged[last] = test_digits[(strchr(test_digits, forged[last]) -
	    test_digits) | 1];
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);
}

static void
test_jwt_wrong_secret(void **state)
{
	static const char other[] = "0123456789abcdef0123456789abcdeF";
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1];

	test_sign(TEST_USER, token, NULL);
	assert_int_equal(auth_jwt_verify(other, strlen(other), token,
	    TEST_NOW, user), AUTH_BAD_SIGNATURE);
	assert_int_equal(auth_jwt_verify(TEST_SECRET, strlen(TEST_SECRET) - 1,
	    token, TEST_NOW, user), AUTH_BAD_SIGNATURE);
	assert_int_equal(auth_jwt_verify(TEST_SECRET, 0, token, TEST_NOW,
	    user), AUTH_ERROR);
}

/* JWT: headers */

static void
test_jwt_alg_refused(void **state)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\"}",
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"None\",\"typ\":\"JWT\"}",
		"{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
		"{\"alg\":\"\",\"typ\":\"JWT\"}",
		"{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
		"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
		"{\"typ\":\"JWT\"}",                      /* missing alg */
		"{}",
		"{\"alg\":null,\"typ\":\"JWT\"}",
		"{\"alg\":256,\"typ\":\"JWT\"}",
		"{\"alg\":[\"HS256\"],\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
		"{\"alg\":\"HS256\",\"typ\":null}",
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
	};
	char token[4096], claims[256], user[WHARF_ID_LEN + 1];

	test_claims(claims, sizeof(claims), TEST_USER, TEST_NOW + TEST_TTL);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		/* Refused even with a signature that would match... */
		test_token(headers[i], claims, token);
		assert_int_equal(test_verify(token, TEST_NOW, user),
		    AUTH_BAD_ALG);
		assert_string_equal(user, "");

		/* ...without one ("h.p.")... */
		test_token_unsigned(headers[i], claims, token);
		assert_int_equal(test_verify(token, TEST_NOW, user),
		    AUTH_BAD_ALG);

		/* ...and before the signature is even decoded. */
		strcat(token, "!not*base64");
		assert_int_equal(test_verify(token, TEST_NOW, user),
		    AUTH_BAD_ALG);
	}

	/* "alg":"none" with no signature part at all is two parts. */
	test_token_unsigned("{\"alg\":\"none\"}", claims, token);
	token[strlen(token) - 1] = '\0';
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_MALFORMED);

	/* The documented header with a typ left out is fine. */
	test_token("{\"alg\":\"HS256\"}", claims, token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
}

static void
test_jwt_header_not_object(void **state)
{
	static const char *const headers[] = {
		"[]", "[\"HS256\"]", "\"HS256\"", "null", "42", "true", "{",
		"", "{\"alg\":\"HS256\",\"alg\":\"none\"}",
		"{\"alg\":\"none\",\"alg\":\"HS256\"}",
		"{\"alg\":\"HS256\"} trailing",
	};
	char token[4096], claims[256], user[WHARF_ID_LEN + 1];

	test_claims(claims, sizeof(claims), TEST_USER, TEST_NOW + TEST_TTL);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		test_token(headers[i], claims, token);
		assert_int_equal(test_verify(token, TEST_NOW, user),
		    AUTH_MALFORMED);
	}
}

/* JWT: shape */

static void
test_jwt_garbage_base64(void **state)
{
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1], forged[4096];
	static const char outside[] = "+/=! %\x01";
	char h[64], input[1024], sig[64];
	char *p1;

	test_sign(TEST_USER, token, NULL);
	p1 = strchr(token, '.') + 1;

	/* In the header: a character from outside the alphabet, padding. */
	for (size_t i = 0; i < sizeof(outside) - 1; i++) {
		snprintf(forged, sizeof(forged), "%s", token);
		forged[3] = outside[i];
		assert_int_equal(test_verify(forged, TEST_NOW, user),
		    AUTH_MALFORMED);
	}
	snprintf(forged, sizeof(forged), "%.*s==%s", (int)(p1 - token - 1),
	    token, p1 - 1);
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);

	/* In a signed payload: caught after the signature, still refused. */
	test_b64(TEST_HEADER, h, sizeof(h));
	test_join(input, sizeof(input), h, "eyJ1c2VySWQi+/==", NULL);
	test_sign_input(input, sig, sizeof(sig));
	test_join(forged, sizeof(forged), h, "eyJ1c2VySWQi+/==", sig);
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);

	/* In the signature. */
	test_join(forged, sizeof(forged), h, "e30", "****");
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);
	assert_int_equal(test_verify("$$$.$$$.$$$", TEST_NOW, user),
	    AUTH_MALFORMED);
}

static void
test_jwt_parts(void **state)
{
	static const char *const shapes[] = {
		"", ".", "..", "...", "abc", "abc.def", "a.b.c.d",
		"eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.e30",
	};
	char token[AUTH_TOKEN_MAX], user[WHARF_ID_LEN + 1], forged[4096];

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		assert_int_equal(test_verify(shapes[i], TEST_NOW, user),
		    AUTH_MALFORMED);
	assert_int_equal(test_verify(NULL, TEST_NOW, user), AUTH_MALFORMED);

	/* A good token with a fourth part, or with its last one cut. */
	test_sign(TEST_USER, token, NULL);
	snprintf(forged, sizeof(forged), "%s.", token);
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);
	snprintf(forged, sizeof(forged), "%s.%s", token, strrchr(token, '.'));
	assert_int_equal(test_verify(forged, TEST_NOW, user), AUTH_MALFORMED);
	*strrchr(token, '.') = '\0';
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_MALFORMED);
}

/* JWT: claims */

static void
test_jwt_claims_refused(void **state)
{
	static const char *const payloads[] = {
		"{\"exp\":1864781200}",                         /* no userId */
		"{\"userId\":42,\"exp\":1864781200}",
		"{\"userId\":null,\"exp\":1864781200}",
		"{\"userId\":\"\",\"exp\":1864781200}",
		"{\"userId\":\"a\\u0000b\",\"exp\":1864781200}",
		"{\"userId\":\"u\"}",                           /* no exp */
		"{\"userId\":\"u\",\"exp\":\"1864781200\"}",
		"{\"userId\":\"u\",\"exp\":1864781200.0}",
		"{\"userId\":\"u\",\"exp\":1.8e9}",
		"{\"userId\":\"u\",\"exp\":true}",
		"{\"userId\":\"u\",\"exp\":null}",
		"{\"userId\":\"u\",\"exp\":1864781200,\"exp\":1}",
		"[\"u\",1864781200]", "\"u\"", "", "userId=u",
	};
	static const char too_long[] = "0123456789012345678901234567890123456";
	char token[4096], claims[256], user[WHARF_ID_LEN + 1];

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		test_token(TEST_HEADER, payloads[i], token);
		assert_int_equal(test_verify(token, TEST_NOW, user),
		    AUTH_MALFORMED);
		assert_string_equal(user, "");
	}

	/* A userId of 37 chars, one more than an id has. */
	test_token(TEST_HEADER, test_claims(claims, sizeof(claims), too_long,
	    TEST_NOW + TEST_TTL), token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_MALFORMED);
}

static void
test_jwt_claims_accepted(void **state)
{
	static const char longest[] = "012345678901234567890123456789012345";
	char token[4096], claims[256], user[WHARF_ID_LEN + 1];

	/* A 36-char userId, and claims we do not know, are fine. */
	test_token(TEST_HEADER, test_claims(claims, sizeof(claims), longest,
	    TEST_NOW + 1), token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
	assert_string_equal(user, longest);

	test_token(TEST_HEADER, "{\"exp\":1864781200,\"userId\":\"u\","
	    "\"role\":\"owner\"}", token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
	assert_string_equal(user, "u");
}

/* A good token padded with a claim to exactly len chars, into out. */
static void
test_token_of_length(size_t len, char *out)
{
	char payload[2048];

	for (size_t pad = 0; pad < 1000; pad++) {
		snprintf(payload, sizeof(payload), "{\"userId\":\"u\","
		    "\"exp\":1864781200,\"pad\":\"%0*d\"}", (int)pad, 0);
		test_token(TEST_HEADER, payload, out);
		if (strlen(out) == len)
			return;
	}
	fail_msg("no padding gives a token of %zu chars", len);
}

static void
test_jwt_too_long(void **state)
{
	char token[4096], user[WHARF_ID_LEN + 1];
	char *huge;

	test_token_of_length(AUTH_TOKEN_MAX - 1, token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_OK);
	test_token_of_length(AUTH_TOKEN_MAX, token);
	assert_int_equal(test_verify(token, TEST_NOW, user), AUTH_MALFORMED);

	huge = malloc(1 << 20);
	assert_non_null(huge);
	memset(huge, 'A', (1 << 20) - 1);
	huge[(1 << 20) - 1] = '\0';
	assert_int_equal(test_verify(huge, TEST_NOW, user), AUTH_MALFORMED);
	free(huge);
}

static void
test_auth_result_str(void **state)
{
	for (int r = AUTH_OK; r <= AUTH_ERROR; r++) {
		const char *s = auth_result_str((enum auth_result)r);

		assert_non_null(s);
		assert_true(s[0] != '\0');
		for (int q = AUTH_OK; q < r; q++)
			assert_string_not_equal(s,
			    auth_result_str((enum auth_result)q));
	}
	assert_string_equal(auth_result_str(AUTH_EXPIRED), "expired");
	assert_string_equal(auth_result_str(AUTH_BAD_SIGNATURE),
	    "bad signature");
}

/* Passwords */

static void
test_password_round_trip(void **state)
{
	char hash[128];

	assert_int_equal(auth_password_hash(TEST_PASSWORD, hash,
	    sizeof(hash)), 0);
	assert_true(strncmp(hash, "$y$", 3) == 0);
	assert_true(auth_password_verify(TEST_PASSWORD, hash));
	assert_false(auth_password_verify("correct horse battery stapl",
	    hash));
	assert_false(auth_password_verify("correct horse battery staple ",
	    hash));
	assert_false(auth_password_verify("Correct horse battery staple",
	    hash));
	assert_false(auth_password_verify(NULL, hash));
}

static void
test_password_salted(void **state)
{
	char a[128], b[128];

	assert_int_equal(auth_password_hash(TEST_PASSWORD, a, sizeof(a)), 0);
	assert_int_equal(auth_password_hash(TEST_PASSWORD, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_true(auth_password_verify(TEST_PASSWORD, a));
	assert_true(auth_password_verify(TEST_PASSWORD, b));
}

/* Correct hashes of TEST_PASSWORD in other schemes, refused all the same. */
static void
test_password_other_schemes(void)
{
	static const char *const settings[] = {
		"ab", "$1$saltsalt$", "$5$saltsalt$", "$6$saltsalt$",
	};
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *hash;

	assert_non_null(cd);
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		hash = crypt_rn(TEST_PASSWORD, settings[i], cd, sizeof(*cd));
		if (hash == NULL || hash[0] == '*')
			continue;       /* scheme disabled in libcrypt */
		assert_false(auth_password_verify(TEST_PASSWORD, hash));
	}
	free(cd);
}

static void
test_password_malformed(void **state)
{
	static const char *const bad[] = {
		"", "*", "*0", "*1", "$", "$y$", "$y$j9T$", "$y$j9T$$",
		"$y$j9T$K5vhTQzFDUnpqKnnnXz/x.",        /* a setting only */
		"$y$!!!$salt$hash", "plaintext", TEST_PASSWORD,
		"$7$CU..../....saltsalt$hash",
	};
	char hash[128], broken[512];
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(auth_password_verify(TEST_PASSWORD, bad[i]));
	assert_false(auth_password_verify(TEST_PASSWORD, NULL));

	/* A good hash cut short, lengthened, or with a byte changed. */
	assert_int_equal(auth_password_hash(TEST_PASSWORD, hash,
	    sizeof(hash)), 0);
	len = strlen(hash);
	snprintf(broken, sizeof(broken), "%.*s", (int)len - 1, hash);
	assert_false(auth_password_verify(TEST_PASSWORD, broken));
	snprintf(broken, sizeof(broken), "%sA", hash);
	assert_false(auth_password_verify(TEST_PASSWORD, broken));
	snprintf(broken, sizeof(broken), "%s", hash);
	broken[len - 2] = broken[len - 2] == 'A' ? 'B' : 'A';
	assert_false(auth_password_verify(TEST_PASSWORD, broken));

	/* Longer than libcrypt will take. */
	memset(broken, 'a', sizeof(broken) - 1);
	broken[sizeof(broken) - 1] = '\0';
	memcpy(broken, hash, len);
	assert_false(auth_password_verify(TEST_PASSWORD, broken));

	test_password_other_schemes();
}

static void
test_password_empty(void **state)
{
	char hash[128] = "unchanged";

	/* Refused to hash, and never matches, whatever the hash. */
	assert_int_equal(auth_password_hash("", hash, sizeof(hash)), -1);
	assert_string_equal(hash, "");
	assert_int_equal(auth_password_hash(NULL, hash, sizeof(hash)), -1);
	assert_false(auth_password_verify("", ""));
	assert_false(auth_password_verify("", "$y$j9T$"));

	assert_int_equal(auth_password_hash(TEST_PASSWORD, hash,
	    sizeof(hash)), 0);
	assert_false(auth_password_verify("", hash));
}

static void
test_password_length(void **state)
{
	char *pw = malloc(AUTH_PASSWORD_MAX + 2);
	char hash[128];

	assert_non_null(pw);
	memset(pw, 'p', AUTH_PASSWORD_MAX + 1);
	pw[AUTH_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(auth_password_hash(pw, hash, sizeof(hash)), -1);

	/* The longest password works; one byte more never matches. */
	pw[AUTH_PASSWORD_MAX] = '\0';
	assert_int_equal(auth_password_hash(pw, hash, sizeof(hash)), 0);
	assert_true(auth_password_verify(pw, hash));
	pw[AUTH_PASSWORD_MAX] = 'p';
	assert_false(auth_password_verify(pw, hash));

	/* An output buffer too small for the hash. */
	assert_int_equal(auth_password_hash("pw", hash, 16), -1);
	assert_string_equal(hash, "");
	free(pw);
}

static int64_t
test_min_ns(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void
test_password_burn(void **state)
{
	int64_t burn = INT64_MAX, verify = INT64_MAX, t;
	char hash[128];

	assert_int_equal(auth_password_hash(TEST_PASSWORD, hash,
	    sizeof(hash)), 0);
	auth_password_burn(NULL);
	auth_password_burn("");

	/* Best of three each: a burn costs what a verification costs. */
	for (int i = 0; i < 3; i++) {
		t = util_mono_ns();
		auth_password_burn(TEST_PASSWORD);
		burn = test_min_ns(burn, util_mono_ns() - t);
		t = util_mono_ns();
		assert_false(auth_password_verify("wrong", hash));
		verify = test_min_ns(verify, util_mono_ns() - t);
	}
	assert_true(burn * 4 >= verify);
	assert_true(verify * 4 >= burn);
}

/* Validation */

static void
test_valid_slug(void **state)
{
	static const struct { const char *slug; bool ok; } cases[] = {
		{ "a", true }, { "0", true }, { "acme", true },
		{ "acme-corp", true }, { "a1-b2-c3", true }, { "a--b", true },
		{ "123", true },
		{ "", false }, { "-", false }, { "-acme", false },
		{ "acme-", false }, { "Acme", false }, { "ACME", false },
		{ "acme_corp", false }, { "acme.corp", false },
		{ "acme corp", false }, { "ac/me", false }, { "../x", false },
		{ "acm\xc3\xa9", false }, { "acme\n", false },
	};
	char slug[WHARF_SLUG_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(auth_valid_slug(cases[i].slug), cases[i].ok);
	assert_false(auth_valid_slug(NULL));

	memset(slug, 'a', WHARF_SLUG_MAX);
	slug[WHARF_SLUG_MAX] = '\0';
	assert_true(auth_valid_slug(slug));
	slug[WHARF_SLUG_MAX] = 'a';
	slug[WHARF_SLUG_MAX + 1] = '\0';
	assert_false(auth_valid_slug(slug));
}

static void
test_roles(void **state)
{
	static const struct { const char *role; unsigned bit; } cases[] = {
		{ "owner", AUTH_ROLE_OWNER }, { "admin", AUTH_ROLE_ADMIN },
		{ "member", AUTH_ROLE_MEMBER }, { "Owner", 0 }, { "ADMIN", 0 },
		{ "", 0 }, { "owners", 0 }, { "own", 0 }, { "viewer", 0 },
		{ "member ", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(auth_role_bit(cases[i].role), cases[i].bit);
		assert_int_equal(auth_valid_role(cases[i].role),
		    cases[i].bit != 0);
	}
	assert_int_equal(auth_role_bit(NULL), 0);
	assert_false(auth_valid_role(NULL));
}

static void
test_roles_str(void **state)
{
	static const struct { unsigned roles; const char *text; } cases[] = {
		{ AUTH_ROLES_ALL, "owner, admin, member" },
		{ AUTH_ROLES_ADMIN, "owner, admin" },
		{ AUTH_ROLE_OWNER, "owner" },
		{ AUTH_ROLE_MEMBER, "member" },
		{ AUTH_ROLE_ADMIN | AUTH_ROLE_MEMBER, "admin, member" },
		{ 0, "" }, { 0x8, "" }, { 0x8 | AUTH_ROLE_ADMIN, "admin" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(auth_roles_str(cases[i].roles, buf,
		    sizeof(buf)), cases[i].text);

	/* A small buffer truncates and stays within its length. */
	memset(buf, '#', sizeof(buf));
	assert_string_equal(auth_roles_str(AUTH_ROLES_ALL, buf, 8), "owner, ");
	assert_int_equal(buf[8], '#');
	assert_string_equal(auth_roles_str(AUTH_ROLES_ALL, buf, 1), "");
	assert_int_equal(buf[1], 'w');          /* left from the call above */
	buf[0] = '#';
	auth_roles_str(AUTH_ROLES_ALL, buf, 0);
	assert_int_equal(buf[0], '#');
}

static void
test_valid_email(void **state)
{
	static const struct { const char *email; bool ok; } cases[] = {
		{ "a@b.c", true }, { "user@example.com", true },
		{ "first.last+tag@sub.example.co.uk", true },
		{ "admin@localhost", true }, { "x@a-b.com", true },
		{ "UPPER@EXAMPLE.COM", true }, { "o'brien@example.com", true },
		{ "1@2.3", true },
		{ "", false }, { "@", false }, { "a@", false },
		{ "@b.com", false }, { "a@@b.com", false },
		{ "a@b@c.com", false }, { "plainaddress", false },
		{ "a b@c.com", false }, { "a@b c.com", false },
		{ " a@b.com", false }, { "a@b.com ", false },
		{ "a@b..com", false }, { "a@.b.com", false },
		{ "a@b.com.", false }, { "a@.", false }, { "a@-b.com", false },
		{ "a@b-.com", false }, { "a@b.-c", false },
		{ "a@b_c.com", false }, { "a\n@b.com", false },
		{ "a@b.com\n", false }, { "a\t@b.com", false },
		{ "\x7f@b.com", false }, { "\xc3\xa9@b.com", false },
		{ "a@\xc3\xa9.com", false }, { "a@[127.0.0.1]", false },
	};
	char email[WHARF_EMAIL_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(auth_valid_email(cases[i].email),
		    cases[i].ok);
	assert_false(auth_valid_email(NULL));

	/* 64-char local part + '@' + 63.63.61 = 254 bytes: the longest. */
	snprintf(email, sizeof(email), "%064d@%063d.%063d.%061d", 0, 0, 0, 0);
	assert_int_equal(strlen(email), WHARF_EMAIL_MAX);
	assert_true(auth_valid_email(email));
	snprintf(email, sizeof(email), "%064d@%063d.%063d.%062d", 0, 0, 0, 0);
	assert_false(auth_valid_email(email));
	snprintf(email, sizeof(email), "%065d@b.com", 0);
	assert_false(auth_valid_email(email));
	snprintf(email, sizeof(email), "a@%064d.com", 0);
	assert_false(auth_valid_email(email));
	snprintf(email, sizeof(email), "a@%063d.com", 0);
	assert_true(auth_valid_email(email));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_refused),
		cmocka_unit_test(test_jwt_round_trip),
		cmocka_unit_test(test_jwt_sign_refused),
		cmocka_unit_test(test_jwt_expiry),
		cmocka_unit_test(test_jwt_tampered_payload),
		cmocka_unit_test(test_jwt_tampered_signature),
		cmocka_unit_test(test_jwt_wrong_secret),
		cmocka_unit_test(test_jwt_alg_refused),
		cmocka_unit_test(test_jwt_header_not_object),
		cmocka_unit_test(test_jwt_garbage_base64),
		cmocka_unit_test(test_jwt_parts),
		cmocka_unit_test(test_jwt_claims_refused),
		cmocka_unit_test(test_jwt_claims_accepted),
		cmocka_unit_test(test_jwt_too_long),
		cmocka_unit_test(test_auth_result_str),
		cmocka_unit_test(test_password_round_trip),
		cmocka_unit_test(test_password_salted),
		cmocka_unit_test(test_password_malformed),
		cmocka_unit_test(test_password_empty),
		cmocka_unit_test(test_password_length),
		cmocka_unit_test(test_password_burn),
		cmocka_unit_test(test_valid_slug),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_roles_str),
		cmocka_unit_test(test_valid_email),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
