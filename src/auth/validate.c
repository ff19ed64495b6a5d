/*
 * validate: the names authorization depends on (tenant slugs, roles,
 * emails), and the texts of auth results.  Checks are on bytes, in the
 * C locale's sense of a letter or digit, whatever the process locale.
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

#define VALIDATE_LOCAL_MAX      64      /* RFC 5321, local part */
#define VALIDATE_LABEL_MAX      63      /* one DNS label */

/* Roles strongest first: the order auth_roles_str writes them in. */
static const struct validate_role {
	const char *name;
	unsigned    bit;
} validate_roles[] = {
	{ "owner",  AUTH_ROLE_OWNER },
	{ "admin",  AUTH_ROLE_ADMIN },
	{ "member", AUTH_ROLE_MEMBER },
};

#define VALIDATE_NROLES (sizeof(validate_roles) / sizeof(validate_roles[0]))

static bool
validate_is_lower_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
validate_is_alnum(char c)
{
	return validate_is_lower_digit(c) || (c >= 'A' && c <= 'Z');
}

bool
auth_valid_slug(const char *slug)
{
	size_t len;

	if (slug == NULL)
		return false;
	len = strnlen(slug, WHARF_SLUG_MAX + 1);
	if (len == 0 || len > WHARF_SLUG_MAX)
		return false;
	if (slug[0] == '-' || slug[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!validate_is_lower_digit(slug[i]) && slug[i] != '-')
			return false;
	return true;
}

unsigned
auth_role_bit(const char *role)
{
	if (role == NULL)
		return 0;
	for (size_t i = 0; i < VALIDATE_NROLES; i++)
		if (strcmp(role, validate_roles[i].name) == 0)
			return validate_roles[i].bit;
	return 0;
}

bool
auth_valid_role(const char *role)
{
	return auth_role_bit(role) != 0;
}

const char *
auth_roles_str(unsigned roles, char *buf, size_t len)
{
	size_t pos = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < VALIDATE_NROLES && pos < len; i++) {
		int n;

		if ((roles & validate_roles[i].bit) == 0)
			continue;
		n = snprintf(buf + pos, len - pos, "%s%s",
		    pos > 0 ? ", " : "", validate_roles[i].name);
		if (n < 0)
			break;
		pos += (size_t)n;
	}
	return buf;
}

/* Local part: 1 to 64 printable ASCII chars other than '@' and space. */
static bool
validate_email_local(const char *local, size_t len)
{
	if (len == 0 || len > VALIDATE_LOCAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];

		if (c <= ' ' || c >= 0x7f || c == '@')
			return false;
	}
	return true;
}

/* Domain: labels of [A-Za-z0-9-], 1 to 63 chars, no '-' at an end. */
static bool
validate_email_domain(const char *domain)
{
	size_t label = 0;
	char prev = '.';

	for (const char *p = domain; *p != '\0'; prev = *p++) {
		if (*p == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
			continue;
		}
		if (!validate_is_alnum(*p) && *p != '-')
			return false;
		if ((label == 0 && *p == '-') || ++label > VALIDATE_LABEL_MAX)
			return false;
	}
	return label > 0 && prev != '-';
}

bool
auth_valid_email(const char *email)
{
	const char *at;
	size_t len;

	if (email == NULL)
		return false;
	len = strnlen(email, WHARF_EMAIL_MAX + 1);
	if (len > WHARF_EMAIL_MAX)
		return false;
	at = strchr(email, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	return validate_email_local(email, (size_t)(at - email)) &&
	    validate_email_domain(at + 1);
}

const char *
auth_result_str(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_MALFORMED:
		return "malformed token";
	case AUTH_BAD_ALG:
		return "unsupported algorithm";
	case AUTH_BAD_SIGNATURE:
		return "bad signature";
	case AUTH_EXPIRED:
		return "expired";
	case AUTH_ERROR:
		return "internal error";
	}
	return "unknown result";
}
