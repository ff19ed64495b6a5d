/*
 * password: yescrypt hashes through libcrypt.
 *
 * Only the reentrant calls are used (crypt_gensalt_rn, crypt_rn), each
 * with its own struct crypt_data.  That struct is 32 KiB, too large for
 * the stack of a server thread, so it is allocated, and wiped before it
 * is freed since it held the password.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"

#define PASSWORD_PREFIX "$y$"

_Static_assert(AUTH_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
    "AUTH_PASSWORD_MAX must stay below libcrypt's limit");

/*
 * A valid yescrypt setting at libcrypt's default cost ("j9T"), the cost
 * auth_password_hash uses, so that a burn costs what a verify costs.
 */
static const char password_burn_setting[] = "$y$j9T$K5vhTQzFDUnpqKnnnXz/x.";

/* Non-empty and at most AUTH_PASSWORD_MAX bytes. */
static bool
password_usable(const char *password)
{
	return password != NULL && password[0] != '\0' &&
	    strnlen(password, AUTH_PASSWORD_MAX + 1) <= AUTH_PASSWORD_MAX;
}

/* A stored hash we produced: yescrypt, and short enough for libcrypt. */
static bool
password_hash_usable(const char *hash)
{
	return hash != NULL &&
	    strncmp(hash, PASSWORD_PREFIX, strlen(PASSWORD_PREFIX)) == 0 &&
	    strnlen(hash, CRYPT_OUTPUT_SIZE) < CRYPT_OUTPUT_SIZE;
}

/*
 * Hashes password with setting and writes the hash into out.  Returns
 * 0, or -1 with out "" when libcrypt fails (NULL, or its "*" failure
 * token) or out is too small.
 */
static int
password_crypt(const char *password, const char *setting, char *out,
    size_t outlen)
{
	struct crypt_data *cd;
	const char *hash;
	int rc = -1;

	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	hash = crypt_rn(password, setting, cd, sizeof(*cd));
	if (hash == NULL || hash[0] == '*')
		goto out;
	if (util_fmt(out, outlen, "%s", hash) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && outlen > 0)
		out[0] = '\0';
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return rc;
}

int
auth_password_hash(const char *password, char *out, size_t outlen)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (outlen > 0)
		out[0] = '\0';
	if (!password_usable(password))
		return -1;
	/* NULL random bytes: libcrypt draws the salt from the OS. */
	if (crypt_gensalt_rn(PASSWORD_PREFIX, 0, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return -1;
	return password_crypt(password, setting, out, outlen);
}

bool
auth_password_verify(const char *password, const char *hash)
{
	char computed[CRYPT_OUTPUT_SIZE];
	size_t len;
	bool ok;

	if (!password_usable(password))
		return false;
	/* A broken stored hash costs the same time as a good one. */
	if (!password_hash_usable(hash) ||
	    password_crypt(password, hash, computed, sizeof(computed)) != 0) {
		auth_password_burn(password);
		return false;
	}

	/* A yescrypt hash's length is public; only its bytes are secret. */
	len = strlen(hash);
	ok = strlen(computed) == len && CRYPTO_memcmp(computed, hash, len) == 0;
	OPENSSL_cleanse(computed, sizeof(computed));
	return ok;
}

void
auth_password_burn(const char *password)
{
	char computed[CRYPT_OUTPUT_SIZE];

	if (!password_usable(password))
		return;
	(void)password_crypt(password, password_burn_setting, computed,
	    sizeof(computed));
	OPENSSL_cleanse(computed, sizeof(computed));
}
