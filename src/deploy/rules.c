/*
 * rules: _redirects and _headers, parsed, compiled, matched, stored.
 *
 * A rule is built from its fields (rules_redirect_build,
 * rules_hblock_add) whether the fields come from a line of the file or
 * from the manifest's JSON, so both paths check the same things.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "deploy/rules.h"

#define RULES_WHY_MAX           256
#define RULES_TOKENS_MAX        (RULES_QUERY_MAX + 4)
#define RULES_NO_SLOT           SIZE_MAX
#define RULES_SHOW              64      /* bytes of a token in a message */

enum rules_part_kind {
	RULES_LIT,              /* decoded bytes, '/' included */
	RULES_PARAM,            /* one whole segment, captured */
	RULES_STAR,             /* any text */
};

struct rules_part {
	enum rules_part_kind kind;
	char                *text;  /* LIT: the bytes; PARAM: the name */
	size_t               len;
};

/* A compiled path pattern. */
struct rules_pattern {
	char              *source;      /* as written, minus a trailing '/' */
	struct rules_part *parts;
	size_t             nparts;
	size_t             star;        /* index of the STAR part, or nparts */
	size_t             nparams;
	bool               slash_star;  /* ends in '/' and '*' */
};

/* A matched piece of the request. */
struct rules_capture {
	const char *text;
	size_t      len;
	bool        raw;        /* from the query: keeps its escapes */
};

/* A piece of a TO: literal text (already URL-safe) or a capture. */
struct rules_tpl {
	size_t  slot;           /* RULES_NO_SLOT for literal text */
	char   *text;
	size_t  len;
};

struct rules_query {
	char   *name;
	char   *value;          /* as written: ":id" or a literal */
	size_t  slot;           /* RULES_NO_SLOT when value is a literal */
};

struct rules_redirect {
	unsigned              line;
	struct rules_pattern  from;
	struct rules_query   *query;
	size_t                nquery;
	char                 *to;       /* as written */
	struct rules_tpl     *tpl;
	size_t                ntpl;
	int                   status;
	bool                  force;
	bool                  url;      /* TO is an http(s) URL */
	bool                  to_query; /* TO has a '?' of its own */
};

struct rules_redirects {
	struct rules_redirect *rules;
	size_t                 count;
	size_t                 cap;
};

struct rules_hfield {
	char *name;
	char *value;
};

struct rules_hblock {
	unsigned             line;
	struct rules_pattern pattern;
	struct rules_hfield *fields;
	size_t               nfields;
	size_t               cap;
};

struct rules_headers {
	struct rules_hblock *blocks;
	size_t               count;
	size_t               cap;
	size_t               nlines;    /* header lines, for the limit */
};

/* The fields of one redirect, strings borrowed. */
struct rules_redirect_fields {
	const char *from;
	const char *qname[RULES_QUERY_MAX];
	const char *qvalue[RULES_QUERY_MAX];
	size_t      nquery;
	const char *to;
	int         status;
	bool        force;
};

/* Reads a buffer line by line. */
struct rules_reader {
	const char *buf;
	size_t      len;
	size_t      pos;
	unsigned    line;
	size_t      max_line;
};

/* A bounded output buffer; overflow is remembered, not reported. */
struct rules_out {
	char   *buf;
	size_t  cap;
	size_t  len;
	bool    overflow;
};

enum rules_enc {
	RULES_ENC_PATH,         /* decoded path text: all but unreserved, / */
	RULES_ENC_QUERY,        /* raw query text: keeps '%', encodes '#' */
	RULES_ENC_LITERAL,      /* a TO as written: keeps '%' and '#' */
};

/* Header names a _headers file may not set, and why. */
struct rules_refused {
	const char *name;
	const char *why;
};

#define RULES_HOP   "is a hop-by-hop field"
#define RULES_EDGE  "is set by the edge for each response"

static const struct rules_refused rules_refused_names[] = {
	{ "Connection",         RULES_HOP },
	{ "Keep-Alive",         RULES_HOP },
	{ "Proxy-Connection",   RULES_HOP },
	{ "TE",                 RULES_HOP },
	{ "Trailer",            RULES_HOP },
	{ "Transfer-Encoding",  RULES_HOP },
	{ "Upgrade",            RULES_HOP },
	{ "Content-Length",     RULES_EDGE },
	{ "Content-Range",      RULES_EDGE },
	{ "Content-Encoding",   RULES_EDGE },
	{ "Accept-Ranges",      RULES_EDGE },
	{ "ETag",               RULES_EDGE },
	{ "Date",               RULES_EDGE },
	{ "Location",           "is set by _redirects" },
};

#define RULES_NREFUSED \
	(sizeof(rules_refused_names) / sizeof(rules_refused_names[0]))

static bool
rules_name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool
rules_name_char(unsigned char c)
{
	return rules_name_start(c) || (c >= '0' && c <= '9');
}

/* Whether s (len bytes) is a placeholder name. */
static bool
rules_name_valid(const char *s, size_t len)
{
	if (len == 0 || !rules_name_start((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!rules_name_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool
rules_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/*
 * Length of the UTF-8 sequence at s (n bytes left; strict: no overlong
 * form, surrogate or code point past U+10FFFF), 0 when invalid.
 */
static size_t
rules_utf8_len(const unsigned char *s, size_t n)
{
	size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ?
	    3 : 2;
	uint32_t cp = s[0] & (0x7f >> need);
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (need == 1)
		return 1;
	if (s[0] < 0xc2 || s[0] > 0xf4 || n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static char *
rules_strndup(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/* Output buffer. */

static void
rules_out_init(struct rules_out *out, char *buf, size_t cap)
{
	out->buf = buf;
	out->cap = cap;
	out->len = 0;
	out->overflow = cap == 0;
	if (cap > 0)
		buf[0] = '\0';
}

static void
rules_out_put(struct rules_out *out, const char *s, size_t len)
{
	if (out->overflow || len >= out->cap - out->len) {
		out->overflow = true;
		return;
	}
	memcpy(out->buf + out->len, s, len);
	out->len += len;
	out->buf[out->len] = '\0';
}

static bool
rules_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Whether c may stand as itself in a URL we emit, for enc. */
static bool
rules_keep(unsigned char c, enum rules_enc enc)
{
	if (enc == RULES_ENC_PATH)
		return rules_unreserved(c) || c == '/';
	if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c) != NULL)
		return false;
	return enc == RULES_ENC_LITERAL || c != '#';
}

/* Appends len bytes of s, percent-encoding what enc does not keep. */
static void
rules_out_encode(struct rules_out *out, const char *s, size_t len,
    enum rules_enc enc)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (rules_keep(c, enc))
			rules_out_put(out, s + i, 1);
		else
			rules_out_put(out, esc, 3);
	}
}

/* Patterns. */

static void
rules_pattern_free(struct rules_pattern *pat)
{
	for (size_t i = 0; i < pat->nparts; i++)
		free(pat->parts[i].text);
	free(pat->parts);
	free(pat->source);
	memset(pat, 0, sizeof(*pat));
}

static int
rules_pattern_push(struct rules_pattern *pat, enum rules_part_kind kind,
    const char *text, size_t len)
{
	struct rules_part *part = &pat->parts[pat->nparts];

	part->kind = kind;
	part->len = len;
	part->text = rules_strndup(text, len);
	if (part->text == NULL)
		return -1;
	pat->nparts++;
	if (kind == RULES_PARAM)
		pat->nparams++;
	return 0;
}

/*
 * Checks the segments of a pattern as written: none empty, none "." or
 * "..", since a normalized path never holds them.
 */
static int
rules_pattern_segments(const char *s, size_t len, char *why, size_t whylen)
{
	size_t start = 1;

	if (len == 1)
		return 0;
	for (size_t i = 1; i <= len; i++) {
		size_t seglen = i - start;

		if (i < len && s[i] != '/')
			continue;
		if (seglen == 0)
			return util_fail(why, whylen, "'%.*s' has an empty "
			    "segment, which never matches", RULES_SHOW, s);
		if ((seglen == 1 && s[start] == '.') ||
		    (seglen == 2 && s[start] == '.' && s[start + 1] == '.'))
			return util_fail(why, whylen, "'%.*s' has a '.' or "
			    "'..' segment, which never matches", RULES_SHOW, s);
		start = i + 1;
	}
	return 0;
}

/* Reads ":name" at s[*i] (a segment's start) into pat. */
static int
rules_pattern_param(struct rules_pattern *pat, const char *s, size_t len,
    size_t *i, char *why, size_t whylen)
{
	size_t start = *i + 1, end = start;

	while (end < len && s[end] != '/')
		end++;
	if (!rules_name_valid(s + start, end - start))
		return util_fail(why, whylen, "placeholder ':%.*s' must be a "
		    "whole segment named with letters, digits and '_'",
		    (int)(end - start > RULES_SHOW ? RULES_SHOW : end - start),
		    s + start);
	if (end - start == 5 && memcmp(s + start, "splat", 5) == 0)
		return util_fail(why, whylen, "':splat' is reserved for '*'");
	*i = end;
	if (rules_pattern_push(pat, RULES_PARAM, s + start, end - start) < 0)
		return util_fail(why, whylen, "out of memory");
	return 0;
}

/* Decodes the escape at s[i] ('%') into *c, refusing what never matches. */
static int
rules_pattern_escape(const char *s, size_t len, size_t i, char *c,
    char *why, size_t whylen)
{
	int hi = i + 2 < len ? util_hexval((unsigned char)s[i + 1]) : -1;
	int lo = i + 2 < len ? util_hexval((unsigned char)s[i + 2]) : -1;

	if (hi < 0 || lo < 0)
		return util_fail(why, whylen, "'%.*s' has an invalid percent "
		    "escape", RULES_SHOW, s);
	*c = (char)(hi * 16 + lo);
	if (*c == '/')
		return util_fail(why, whylen, "'%.*s' has an encoded '/' "
		    "(%%2F), which never matches", RULES_SHOW, s);
	if (rules_control((unsigned char)*c) || *c == '\t')
		return util_fail(why, whylen, "'%.*s' has an encoded control "
		    "character, which never matches", RULES_SHOW, s);
	if (*c == '\\')
		return util_fail(why, whylen, "'%.*s' has a backslash, which "
		    "never matches", RULES_SHOW, s);
	return 0;
}

/* Flushes the pending literal bytes into pat. */
static int
rules_pattern_flush(struct rules_pattern *pat, char *lit, size_t *litlen,
    char *why, size_t whylen)
{
	if (*litlen == 0)
		return 0;
	if (rules_pattern_push(pat, RULES_LIT, lit, *litlen) < 0)
		return util_fail(why, whylen, "out of memory");
	*litlen = 0;
	return 0;
}

/* Reads the pattern's text s into parts. */
static int
rules_pattern_parts(struct rules_pattern *pat, const char *s, size_t len,
    bool star_last, char *lit, char *why, size_t whylen)
{
	size_t i = 0, litlen = 0;

	while (i < len) {
		if (s[i] == ':' && i > 0 && s[i - 1] == '/') {
			if (rules_pattern_flush(pat, lit, &litlen, why,
			    whylen) < 0 || rules_pattern_param(pat, s, len, &i,
			    why, whylen) < 0)
				return -1;
			if (pat->nparams >= RULES_CAPTURES_MAX)
				return util_fail(why, whylen, "more than %d "
				    "placeholders", RULES_CAPTURES_MAX - 1);
			continue;
		}
		if (s[i] == '*') {
			if (pat->star != SIZE_MAX)
				return util_fail(why, whylen, "'%.*s' has more "
				    "than one '*'", RULES_SHOW, s);
			if (star_last && i + 1 < len)
				return util_fail(why, whylen, "'*' may only end "
				    "the pattern '%.*s'", RULES_SHOW, s);
			if (rules_pattern_flush(pat, lit, &litlen, why,
			    whylen) < 0)
				return -1;
			pat->star = pat->nparts;
			if (rules_pattern_push(pat, RULES_STAR, "", 0) < 0)
				return util_fail(why, whylen, "out of memory");
			i++;
			continue;
		}
		if (s[i] == '%') {
			if (rules_pattern_escape(s, len, i, &lit[litlen], why,
			    whylen) < 0)
				return -1;
			litlen++;
			i += 3;
			continue;
		}
		if (s[i] == '\\')
			return util_fail(why, whylen, "'%.*s' has a backslash, "
			    "which never matches", RULES_SHOW, s);
		if (s[i] == '?')
			return util_fail(why, whylen, "'%.*s' has a '?': match "
			    "the query with name=value after it", RULES_SHOW, s);
		lit[litlen++] = s[i++];
	}
	return rules_pattern_flush(pat, lit, &litlen, why, whylen);
}

/*
 * Compiles text into pat.  star_last: '*' may only end it (_redirects).
 * On -1, pat holds nothing to free.
 */
static int
rules_pattern_compile(struct rules_pattern *pat, const char *text,
    bool star_last, char *why, size_t whylen)
{
	size_t len = strlen(text);
	char *lit = NULL;
	int rc = -1;

	memset(pat, 0, sizeof(*pat));
	pat->star = SIZE_MAX;
	if (len == 0 || text[0] != '/') {
		rc = util_fail(why, whylen, "'%.*s' must start with '/'",
		    RULES_SHOW, text);
		goto out;
	}
	if (len > 1 && text[len - 1] == '/')
		len--;
	if (rules_pattern_segments(text, len, why, whylen) < 0)
		goto out;

	/* Parts: never more than one per byte. */
	pat->source = rules_strndup(text, len);
	pat->parts = calloc(len + 1, sizeof(*pat->parts));
	lit = malloc(len + 1);
	if (pat->source == NULL || pat->parts == NULL || lit == NULL) {
		util_fail(why, whylen, "out of memory");
		goto out;
	}
	if (rules_pattern_parts(pat, text, len, star_last, lit, why,
	    whylen) < 0)
		goto out;

	if (pat->star == SIZE_MAX)
		pat->star = pat->nparts;
	pat->slash_star = pat->star + 1 == pat->nparts && pat->star > 0 &&
	    pat->parts[pat->star - 1].kind == RULES_LIT &&
	    pat->parts[pat->star - 1].text[pat->parts[pat->star - 1].len - 1]
	    == '/';
	rc = 0;
out:
	free(lit);
	if (rc < 0)
		rules_pattern_free(pat);
	return rc;
}

/* Matches the parts before the star from the left; *pos ends there. */
static bool
rules_match_left(const struct rules_pattern *pat, const char *path,
    size_t len, size_t *pos, struct rules_capture *caps)
{
	size_t p = 0, param = 0;

	for (size_t i = 0; i < pat->star; i++) {
		const struct rules_part *part = &pat->parts[i];
		size_t end = p;

		if (part->kind == RULES_LIT) {
			if (len - p >= part->len &&
			    memcmp(path + p, part->text, part->len) == 0) {
				p += part->len;
				continue;
			}
			/* "/app/" and '*' also match "/app". */
			if (pat->slash_star && i + 1 == pat->star &&
			    len - p == part->len - 1 &&
			    memcmp(path + p, part->text, len - p) == 0) {
				p = len;
				continue;
			}
			return false;
		}
		while (end < len && path[end] != '/')
			end++;
		if (end == p)
			return false;
		caps[param++] = (struct rules_capture){ path + p, end - p,
		    false };
		p = end;
	}
	*pos = p;
	return true;
}

/* Matches the parts after the star from the right, down to lo. */
static bool
rules_match_right(const struct rules_pattern *pat, const char *path,
    size_t lo, size_t *pos, struct rules_capture *caps)
{
	size_t p = *pos, param = pat->nparams;

	for (size_t i = pat->nparts; i > pat->star + 1; i--) {
		const struct rules_part *part = &pat->parts[i - 1];
		size_t start = p;

		if (part->kind == RULES_LIT) {
			if (p - lo < part->len || memcmp(path + p - part->len,
			    part->text, part->len) != 0)
				return false;
			p -= part->len;
			continue;
		}
		while (start > lo && path[start - 1] != '/')
			start--;
		if (start == p)
			return false;
		caps[--param] = (struct rules_capture){ path + start,
		    p - start, false };
		p = start;
	}
	*pos = p;
	return true;
}

/*
 * Matches len bytes of path.  caps gets the params in pattern order,
 * then the star's text.
 */
static bool
rules_pattern_match_len(const struct rules_pattern *pat, const char *path,
    size_t len, struct rules_capture *caps)
{
	size_t lo, hi = len;

	if (!rules_match_left(pat, path, len, &lo, caps))
		return false;
	if (pat->star == pat->nparts)
		return lo == len;
	if (!rules_match_right(pat, path, lo, &hi, caps))
		return false;
	caps[pat->nparams] = (struct rules_capture){ path + lo, hi - lo,
	    false };
	return true;
}

/* As above, one trailing slash of path aside. */
static bool
rules_pattern_match(const struct rules_pattern *pat, const char *path,
    size_t len, struct rules_capture *caps)
{
	if (rules_pattern_match_len(pat, path, len, caps))
		return true;
	return len > 1 && path[len - 1] == '/' &&
	    rules_pattern_match_len(pat, path, len - 1, caps);
}

/* Redirect rules: building. */

static void
rules_redirect_free(struct rules_redirect *r)
{
	rules_pattern_free(&r->from);
	for (size_t i = 0; i < r->nquery; i++) {
		free(r->query[i].name);
		free(r->query[i].value);
	}
	free(r->query);
	for (size_t i = 0; i < r->ntpl; i++)
		free(r->tpl[i].text);
	free(r->tpl);
	free(r->to);
	memset(r, 0, sizeof(*r));
}

/* The capture names of a rule, by slot: params, "splat", query ones. */
struct rules_slots {
	const char *name[RULES_CAPTURES_MAX + RULES_QUERY_MAX];
	size_t      len[RULES_CAPTURES_MAX + RULES_QUERY_MAX];
	size_t      n;
};

static void
rules_slot_add(struct rules_slots *slots, const char *name, size_t len)
{
	slots->name[slots->n] = name;
	slots->len[slots->n++] = len;
}

static void
rules_slot_names(const struct rules_redirect *r, struct rules_slots *slots)
{
	slots->n = 0;
	for (size_t i = 0; i < r->from.nparts; i++)
		if (r->from.parts[i].kind == RULES_PARAM)
			rules_slot_add(slots, r->from.parts[i].text,
			    r->from.parts[i].len);
	if (r->from.star < r->from.nparts)
		rules_slot_add(slots, "splat", 5);
	for (size_t i = 0; i < r->nquery; i++)
		if (r->query[i].slot != RULES_NO_SLOT)
			rules_slot_add(slots, r->query[i].value + 1,
			    strlen(r->query[i].value + 1));
}

/* The slot of name among the first n, or RULES_NO_SLOT. */
static size_t
rules_slot_find(const struct rules_slots *slots, size_t n,
    const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (slots->len[i] == len &&
		    memcmp(slots->name[i], name, len) == 0)
			return i;
	return RULES_NO_SLOT;
}

/* Checks that no capture name is defined twice. */
static int
rules_slots_check(const struct rules_redirect *r, char *why, size_t whylen)
{
	struct rules_slots slots;

	rules_slot_names(r, &slots);
	if (slots.n > RULES_CAPTURES_MAX)
		return util_fail(why, whylen, "more than %d captures",
		    RULES_CAPTURES_MAX);
	for (size_t i = 1; i < slots.n; i++)
		if (rules_slot_find(&slots, i, slots.name[i], slots.len[i]) !=
		    RULES_NO_SLOT)
			return util_fail(why, whylen, "':%.*s' is defined "
			    "twice", (int)slots.len[i], slots.name[i]);
	return 0;
}

/* Adds the query condition name=value to r. */
static int
rules_query_add(struct rules_redirect *r, const char *name,
    const char *value, char *why, size_t whylen)
{
	struct rules_query *q = &r->query[r->nquery];
	size_t slots = r->from.nparams + (r->from.star < r->from.nparts);

	if (name[0] == '\0' || strpbrk(name, "&#") != NULL ||
	    strpbrk(value, "&#") != NULL)
		return util_fail(why, whylen, "query condition '%.*s=%.*s' "
		    "is not name=value", RULES_SHOW, name, RULES_SHOW, value);
	q->slot = RULES_NO_SLOT;
	if (value[0] == ':') {
		if (!rules_name_valid(value + 1, strlen(value + 1)) ||
		    strcmp(value + 1, "splat") == 0)
			return util_fail(why, whylen, "query capture '%.*s' "
			    "must be ':' and a name", RULES_SHOW, value);
		for (size_t i = 0; i < r->nquery; i++)
			if (r->query[i].slot != RULES_NO_SLOT)
				slots++;
		q->slot = slots;
	}
	q->name = strdup(name);
	q->value = strdup(value);
	r->nquery++;
	if (q->name == NULL || q->value == NULL)
		return util_fail(why, whylen, "out of memory");
	return 0;
}

static int
rules_tpl_push(struct rules_redirect *r, size_t slot, const char *text,
    size_t len)
{
	struct rules_tpl *t = &r->tpl[r->ntpl];

	t->slot = slot;
	t->len = len;
	t->text = rules_strndup(text, len);
	if (t->text == NULL)
		return -1;
	r->ntpl++;
	return 0;
}

/* Where the substitutions of TO may start: after a URL's host. */
static int
rules_to_start(struct rules_redirect *r, const char *to, size_t *start,
    char *why, size_t whylen)
{
	size_t skip;

	if (to[0] == '/' && to[1] != '/' && to[1] != '\\') {
		*start = 0;
		return 0;
	}
	if (strncasecmp(to, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(to, "https://", 8) == 0)
		skip = 8;
	else
		return util_fail(why, whylen, "TO '%.*s' must be a path "
		    "starting with one '/' or an http(s) URL", RULES_SHOW, to);
	if (r->status != 301 && r->status != 302)
		return util_fail(why, whylen, "status %d to a URL (proxying) "
		    "is not supported: use 301 or 302", r->status);
	*start = skip + strcspn(to + skip, "/?#");
	if (*start == skip)
		return util_fail(why, whylen, "TO '%.*s' has no host",
		    RULES_SHOW, to);
	r->url = true;
	return 0;
}

/* Flushes pending literal TO text, encoded, into r. */
static int
rules_tpl_literal(struct rules_redirect *r, const char *s, size_t len,
    char *buf, size_t buflen)
{
	struct rules_out out;

	if (len == 0)
		return 0;
	rules_out_init(&out, buf, buflen);
	rules_out_encode(&out, s, len, RULES_ENC_LITERAL);
	assert(!out.overflow);
	return rules_tpl_push(r, RULES_NO_SLOT, out.buf, out.len);
}

/*
 * At to[*i], ":name" of a capture: adds the literal text since *lit,
 * then the capture; moves *i and *lit past the name.
 */
static int
rules_tpl_var(struct rules_redirect *r, const struct rules_slots *slots,
    size_t *i, size_t *lit, char *buf, size_t buflen, char *why,
    size_t whylen)
{
	const char *name = r->to + *i + 1;
	size_t len = 0, slot;

	while (rules_name_char((unsigned char)name[len]))
		len++;
	slot = rules_slot_find(slots, slots->n, name, len);
	if (slot == RULES_NO_SLOT)
		return util_fail(why, whylen, "TO uses ':%.*s', which FROM "
		    "does not define", (int)len, name);
	if (rules_tpl_literal(r, r->to + *lit, *i - *lit, buf, buflen) < 0 ||
	    rules_tpl_push(r, slot, "", 0) < 0)
		return util_fail(why, whylen, "out of memory");
	*i = *lit = *i + 1 + len;
	return 0;
}

/* Compiles r->to into literal pieces and captures. */
static int
rules_tpl_compile(struct rules_redirect *r, char *why, size_t whylen)
{
	struct rules_slots slots;
	size_t len = strlen(r->to), buflen = 3 * len + 1, lit = 0, i = 0;
	char *buf = NULL;
	int rc = -1;

	rules_slot_names(r, &slots);
	if (rules_to_start(r, r->to, &i, why, whylen) < 0)
		goto out;
	r->tpl = calloc(len + 1, sizeof(*r->tpl));
	buf = malloc(buflen);
	if (r->tpl == NULL || buf == NULL) {
		util_fail(why, whylen, "out of memory");
		goto out;
	}
	while (i < len) {
		if (r->to[i] != ':' ||
		    !rules_name_start((unsigned char)r->to[i + 1]))
			i++;
		else if (rules_tpl_var(r, &slots, &i, &lit, buf, buflen, why,
		    whylen) < 0)
			goto out;
	}
	if (rules_tpl_literal(r, r->to + lit, len - lit, buf, buflen) < 0) {
		util_fail(why, whylen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static bool
rules_status_valid(int status)
{
	return status == 200 || status == 301 || status == 302 ||
	    status == 404;
}

/* Builds r from f.  On -1, r holds nothing to free. */
static int
rules_redirect_build(struct rules_redirect *r,
    const struct rules_redirect_fields *f, char *why, size_t whylen)
{
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->status = f->status;
	r->force = f->force;
	if (!rules_status_valid(f->status)) {
		util_fail(why, whylen, "status %d is not one of 200, 301, 302, "
		    "404", f->status);
		goto out;
	}
	if (rules_pattern_compile(&r->from, f->from, true, why, whylen) < 0)
		goto out;

	r->query = calloc(f->nquery + 1, sizeof(*r->query));
	r->to = strdup(f->to);
	if (r->query == NULL || r->to == NULL) {
		util_fail(why, whylen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < f->nquery; i++)
		if (rules_query_add(r, f->qname[i], f->qvalue[i], why,
		    whylen) < 0)
			goto out;
	if (rules_slots_check(r, why, whylen) < 0 ||
	    rules_tpl_compile(r, why, whylen) < 0)
		goto out;
	r->to_query = strchr(r->to, '?') != NULL;
	rc = 0;
out:
	if (rc < 0)
		rules_redirect_free(r);
	return rc;
}

static int
rules_redirects_grow(struct rules_redirects *rules)
{
	struct rules_redirect *grown;
	size_t cap = rules->cap == 0 ? 16 : rules->cap * 2;

	if (rules->count < rules->cap)
		return 0;
	grown = realloc(rules->rules, cap * sizeof(*grown));
	if (grown == NULL)
		return -1;
	rules->rules = grown;
	rules->cap = cap;
	return 0;
}

void
rules_redirects_free(struct rules_redirects *rules)
{
	if (rules == NULL)
		return;
	for (size_t i = 0; i < rules->count; i++)
		rules_redirect_free(&rules->rules[i]);
	free(rules->rules);
	free(rules);
}

size_t
rules_redirects_count(const struct rules_redirects *rules)
{
	return rules == NULL ? 0 : rules->count;
}

/* Reading lines. */

static const char *
rules_file_name(const char *file, const char *dflt)
{
	return file != NULL && file[0] != '\0' ? file : dflt;
}

/*
 * The next line of rd into scratch (max_line + 1 bytes), its line break
 * and a CR before it removed.  Returns 1, 0 at the end, -1 with why.
 */
static int
rules_next_line(struct rules_reader *rd, char *scratch, char *why,
    size_t whylen)
{
	const char *line = rd->buf + rd->pos, *nl;
	size_t len;

	if (rd->pos >= rd->len)
		return 0;
	nl = memchr(line, '\n', rd->len - rd->pos);
	len = nl != NULL ? (size_t)(nl - line) : rd->len - rd->pos;
	rd->pos += len + (nl != NULL);
	rd->line++;
	if (len > 0 && line[len - 1] == '\r')
		len--;

	if (len > rd->max_line)
		return util_fail(why, whylen, "the line is longer than %zu "
		    "bytes", rd->max_line);
	for (size_t i = 0, n; i < len; i += n) {
		n = rules_utf8_len((const unsigned char *)line + i, len - i);
		if (n == 0)
			return util_fail(why, whylen, "invalid UTF-8 at column "
			    "%zu", i + 1);
		if (rules_control((unsigned char)line[i]))
			return util_fail(why, whylen, "control byte 0x%02x at "
			    "column %zu", (unsigned char)line[i], i + 1);
	}
	memcpy(scratch, line, len);
	scratch[len] = '\0';
	return 1;
}

static void
rules_reader_init(struct rules_reader *rd, const char *buf, size_t len,
    const struct rules_limits *limits)
{
	static const struct rules_limits dflt = RULES_LIMITS_DEFAULT;

	if (limits == NULL)
		limits = &dflt;
	rd->buf = buf;
	rd->len = len;
	rd->pos = 0;
	rd->line = 0;
	rd->max_line = limits->max_line;
	/* A UTF-8 byte order mark, as some editors write. */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		rd->pos = 3;
}

/* Splits line into tokens at spaces and tabs, up to a '#' token. */
static size_t
rules_tokens(char *line, char **tok, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0' || *p == '#')
			return n;
		if (n == max)
			return max + 1;
		tok[n++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
}

static bool
rules_is_url(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 ||
	    strncasecmp(s, "https://", 8) == 0;
}

/* Reads the status token ("301", "200!") into f. */
static int
rules_status_token(const char *tok, struct rules_redirect_fields *f,
    char *why, size_t whylen)
{
	size_t digits = strspn(tok, "0123456789");
	bool bang = tok[digits] == '!' && tok[digits + 1] == '\0';

	if (digits == 0 || (tok[digits] != '\0' && !bang))
		return util_fail(why, whylen, "'%.*s' is not a status",
		    RULES_SHOW, tok);
	f->status = digits > 4 ? 9999 : atoi(tok);
	f->force = bang;
	if (!rules_status_valid(f->status))
		return util_fail(why, whylen, "status %.*s is not one of 200, "
		    "301, 302, 404", (int)(digits > 8 ? 8 : digits), tok);
	return 0;
}

/* Splits one line's tokens into the fields of a redirect. */
static int
rules_redirect_fields(char **tok, size_t ntok,
    struct rules_redirect_fields *f, char *why, size_t whylen)
{
	size_t i = 1;

	memset(f, 0, sizeof(*f));
	f->status = 301;
	f->from = tok[0];
	if (rules_is_url(tok[0]))
		return util_fail(why, whylen, "domain rules (FROM as a URL) "
		    "are not supported");
	if (tok[0][0] != '/')
		return util_fail(why, whylen, "FROM '%.*s' must be a path "
		    "starting with '/'", RULES_SHOW, tok[0]);

	/* Query conditions until TO. */
	for (; i < ntok && tok[i][0] != '/' && !rules_is_url(tok[i]); i++) {
		char *eq = strchr(tok[i], '=');

		if (eq == NULL)
			return util_fail(why, whylen, "expected TO (a path or "
			    "an http(s) URL), got '%.*s'", RULES_SHOW, tok[i]);
		if (f->nquery == RULES_QUERY_MAX)
			return util_fail(why, whylen, "more than %d query "
			    "conditions", RULES_QUERY_MAX);
		*eq = '\0';
		f->qname[f->nquery] = tok[i];
		f->qvalue[f->nquery++] = eq + 1;
	}
	if (i == ntok)
		return util_fail(why, whylen, "missing TO after FROM");
	f->to = tok[i++];

	if (i < ntok && rules_status_token(tok[i++], f, why, whylen) < 0)
		return -1;
	if (i < ntok && strchr(tok[i], '=') != NULL)
		return util_fail(why, whylen, "conditions such as '%.*s' are "
		    "not supported", RULES_SHOW, tok[i]);
	if (i < ntok)
		return util_fail(why, whylen, "unexpected '%.*s' after the "
		    "status", RULES_SHOW, tok[i]);
	return 0;
}

/* Parses one non-empty line into a new rule of rules. */
static int
rules_redirect_line(struct rules_redirects *rules, char *line,
    size_t max_rules, char *why, size_t whylen)
{
	char *tok[RULES_TOKENS_MAX];
	size_t ntok = rules_tokens(line, tok, RULES_TOKENS_MAX);
	struct rules_redirect_fields f;

	if (ntok == 0)
		return 0;
	if (ntok > RULES_TOKENS_MAX)
		return util_fail(why, whylen, "too many fields");
	if (rules_redirect_fields(tok, ntok, &f, why, whylen) < 0)
		return -1;
	if (rules->count == max_rules)
		return util_fail(why, whylen, "more than %zu rules", max_rules);
	if (rules_redirects_grow(rules) < 0)
		return util_fail(why, whylen, "out of memory");
	if (rules_redirect_build(&rules->rules[rules->count], &f, why,
	    whylen) < 0)
		return -1;
	rules->count++;
	return 0;
}

int
rules_redirects_parse(const char *buf, size_t len, const char *file,
    const struct rules_limits *limits, struct rules_redirects **out,
    char *err, size_t errlen)
{
	static const struct rules_limits dflt = RULES_LIMITS_DEFAULT;
	struct rules_redirects *rules = NULL;
	struct rules_reader rd;
	char why[RULES_WHY_MAX] = "out of memory";
	char *scratch = NULL;
	int rc = -1, more;

	*out = NULL;
	if (limits == NULL)
		limits = &dflt;
	rules_reader_init(&rd, buf, len, limits);
	rules = calloc(1, sizeof(*rules));
	scratch = malloc(limits->max_line + 1);
	if (rules == NULL || scratch == NULL)
		goto out;

	while ((more = rules_next_line(&rd, scratch, why, sizeof(why))) > 0) {
		size_t before = rules->count;

		if (rules_redirect_line(rules, scratch, limits->max_rules, why,
		    sizeof(why)) < 0)
			goto out;
		if (rules->count > before)      /* a rule, not a comment */
			rules->rules[before].line = rd.line;
	}
	if (more < 0)
		goto out;
	*out = rules;
	rules = NULL;
	rc = 0;
out:
	if (rc < 0)
		util_fail(err, errlen, "%s line %u: %s",
		    rules_file_name(file, "_redirects"), rd.line, why);
	rules_redirects_free(rules);
	free(scratch);
	return rc;
}

/* Redirect rules: matching. */

/* Finds name in the raw query; *value gets its value ("" for none). */
static bool
rules_query_get(const char *query, const char *name,
    struct rules_capture *value)
{
	size_t namelen = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		size_t pairlen = strcspn(p, "&");
		size_t keylen = strcspn(p, "=&");

		if (keylen == namelen && memcmp(p, name, namelen) == 0) {
			bool eq = keylen < pairlen;

			value->text = p + keylen + eq;
			value->len = pairlen - keylen - eq;
			value->raw = true;
			return true;
		}
		p += pairlen;
		if (*p == '&')
			p++;
	}
	return false;
}

/* Whether every query condition of r holds; fills the query captures. */
static bool
rules_query_match(const struct rules_redirect *r, const char *query,
    struct rules_capture *caps)
{
	for (size_t i = 0; i < r->nquery; i++) {
		const struct rules_query *q = &r->query[i];
		struct rules_capture value;

		if (!rules_query_get(query, q->name, &value))
			return false;
		if (q->slot != RULES_NO_SLOT)
			caps[q->slot] = value;
		else if (value.len != strlen(q->value) ||
		    memcmp(value.text, q->value, value.len) != 0)
			return false;
	}
	return true;
}

/* Reverses len bytes of s. */
static void
rules_reverse(char *s, size_t len)
{
	for (size_t i = 0; i < len / 2; i++) {
		char c = s[i];

		s[i] = s[len - 1 - i];
		s[len - 1 - i] = c;
	}
}

/* Appends "?" and query to out, before the fragment out may end with. */
static void
rules_out_query(struct rules_out *out, const char *query)
{
	const char *hash = memchr(out->buf, '#', out->len);
	size_t before = out->len;
	size_t at = hash != NULL ? (size_t)(hash - out->buf) : before;

	rules_out_put(out, "?", 1);
	rules_out_encode(out, query, strlen(query), RULES_ENC_QUERY);
	if (out->overflow || at == before)
		return;
	/* Fragment, query -> query, fragment. */
	rules_reverse(out->buf + at, before - at);
	rules_reverse(out->buf + before, out->len - before);
	rules_reverse(out->buf + at, out->len - at);
}

/*
 * Writes r's target for caps into out; for a 301 or 302 whose TO has no
 * '?' and which has no query conditions, the request's query follows.
 */
static void
rules_render(const struct rules_redirect *r,
    const struct rules_capture *caps, const char *query,
    struct rules_out *out)
{
	for (size_t i = 0; i < r->ntpl; i++) {
		const struct rules_tpl *t = &r->tpl[i];

		if (t->slot == RULES_NO_SLOT)
			rules_out_put(out, t->text, t->len);
		else
			rules_out_encode(out, caps[t->slot].text,
			    caps[t->slot].len, caps[t->slot].raw ?
			    RULES_ENC_QUERY : RULES_ENC_PATH);
	}
	if ((r->status == 301 || r->status == 302) && !r->to_query &&
	    r->nquery == 0 && query != NULL && query[0] != '\0')
		rules_out_query(out, query);
}

static bool
rules_path_end(char c)
{
	return c == '\0' || c == '?' || c == '#';
}

/*
 * Whether the path of target (up to '?' or '#', decoded) is path, one
 * trailing slash aside.
 */
static bool
rules_same_path(const char *target, const char *path, size_t len)
{
	size_t i = 0, p = 0;

	while (!rules_path_end(target[i]) && p < len) {
		int hi = util_hexval((unsigned char)target[i + 1]);
		int lo = hi < 0 ? -1 :
		    util_hexval((unsigned char)target[i + 2]);
		char c = target[i];
		size_t step = 1;

		if (c == '%' && lo >= 0) {
			c = (char)(hi * 16 + lo);
			step = 3;
		}
		if (path[p] != c)
			break;
		i += step;
		p++;
	}
	if (rules_path_end(target[i]))
		return p == len || (p + 1 == len && path[p] == '/');
	return p == len && target[i] == '/' && rules_path_end(target[i + 1]);
}

/* Whether a rendered target must not be used: a loop or "//host". */
static bool
rules_target_refused(const struct rules_redirect *r, const char *target,
    const char *path, size_t len)
{
	if (r->url)
		return false;
	if (target[1] == '/' || target[1] == '\\')
		return true;
	return (r->status == 301 || r->status == 302) &&
	    rules_same_path(target, path, len);
}

static int
rules_redirect_find(const struct rules_redirects *rules, const char *path,
    const char *query, bool only_forced, char *target, size_t targetlen,
    int *status, bool *force)
{
	size_t len = strlen(path);

	for (size_t i = 0; rules != NULL && i < rules->count; i++) {
		const struct rules_redirect *r = &rules->rules[i];
		struct rules_capture caps[RULES_CAPTURES_MAX];
		struct rules_out out;

		if (only_forced && !r->force)
			continue;
		if (!rules_pattern_match(&r->from, path, len, caps) ||
		    !rules_query_match(r, query, caps))
			continue;
		rules_out_init(&out, target, targetlen);
		rules_render(r, caps, query, &out);
		if (out.overflow)
			return -1;
		if (rules_target_refused(r, target, path, len))
			continue;
		*status = r->status;
		*force = r->force;
		return 1;
	}
	if (targetlen > 0)
		target[0] = '\0';
	return 0;
}

int
rules_redirect_match(const struct rules_redirects *rules, const char *path,
    const char *query, char *target, size_t targetlen, int *status,
    bool *force)
{
	return rules_redirect_find(rules, path, query, false, target,
	    targetlen, status, force);
}

int
rules_redirect_match_forced(const struct rules_redirects *rules,
    const char *path, const char *query, char *target, size_t targetlen,
    int *status, bool *force)
{
	return rules_redirect_find(rules, path, query, true, target,
	    targetlen, status, force);
}

/* Headers: building. */

static const char *
rules_header_refused(const char *name)
{
	for (size_t i = 0; i < RULES_NREFUSED; i++)
		if (strcasecmp(name, rules_refused_names[i].name) == 0)
			return rules_refused_names[i].why;
	return NULL;
}

static bool
rules_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Checks a header's name and value (value already trimmed). */
static int
rules_header_check(const char *name, const char *value, char *why,
    size_t whylen)
{
	size_t len = strlen(name);
	const char *refused;

	if (len == 0)
		return util_fail(why, whylen, "empty header name");
	if (len > RULES_HEADER_NAME_MAX)
		return util_fail(why, whylen, "header name longer than %d "
		    "bytes", RULES_HEADER_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if (!rules_tchar((unsigned char)name[i]))
			return util_fail(why, whylen, "header name '%.*s' is "
			    "not an HTTP token", RULES_SHOW, name);
	refused = rules_header_refused(name);
	if (refused != NULL)
		return util_fail(why, whylen, "%s %s and cannot be set here",
		    name, refused);

	if (value[0] == '\0')
		return util_fail(why, whylen, "%s has an empty value", name);
	for (const char *p = value; *p != '\0'; p++)
		if (rules_control((unsigned char)*p))
			return util_fail(why, whylen, "the value of %s holds "
			    "a control character", name);
	return 0;
}

static bool
rules_joinable(const char *name)
{
	return strcasecmp(name, "Set-Cookie") != 0;
}

/* Appends ", " and value to the value of f. */
static int
rules_hfield_join(struct rules_hfield *f, const char *value)
{
	size_t have = strlen(f->value), add = strlen(value);
	char *joined = realloc(f->value, have + 2 + add + 1);

	if (joined == NULL)
		return -1;
	memcpy(joined + have, ", ", 2);
	memcpy(joined + have + 2, value, add + 1);
	f->value = joined;
	return 0;
}

/* Adds a checked header to b, joining it to an earlier one of its name. */
static int
rules_hblock_add(struct rules_hblock *b, const char *name,
    const char *value, char *why, size_t whylen)
{
	struct rules_hfield *f;

	if (rules_header_check(name, value, why, whylen) < 0)
		return -1;
	for (size_t i = 0; i < b->nfields && rules_joinable(name); i++) {
		if (strcasecmp(b->fields[i].name, name) != 0)
			continue;
		if (rules_hfield_join(&b->fields[i], value) < 0)
			return util_fail(why, whylen, "out of memory");
		return 0;
	}

	if (b->nfields == b->cap) {
		size_t cap = b->cap == 0 ? 4 : b->cap * 2;
		struct rules_hfield *grown = realloc(b->fields,
		    cap * sizeof(*grown));

		if (grown == NULL)
			return util_fail(why, whylen, "out of memory");
		b->fields = grown;
		b->cap = cap;
	}
	f = &b->fields[b->nfields];
	f->name = strdup(name);
	f->value = strdup(value);
	b->nfields++;
	if (f->name == NULL || f->value == NULL)
		return util_fail(why, whylen, "out of memory");
	return 0;
}

static void
rules_hblock_free(struct rules_hblock *b)
{
	rules_pattern_free(&b->pattern);
	for (size_t i = 0; i < b->nfields; i++) {
		free(b->fields[i].name);
		free(b->fields[i].value);
	}
	free(b->fields);
	memset(b, 0, sizeof(*b));
}

void
rules_headers_free(struct rules_headers *rules)
{
	if (rules == NULL)
		return;
	for (size_t i = 0; i < rules->count; i++)
		rules_hblock_free(&rules->blocks[i]);
	free(rules->blocks);
	free(rules);
}

size_t
rules_headers_count(const struct rules_headers *rules)
{
	return rules == NULL ? 0 : rules->count;
}

/* A new block for pattern text; NULL with why on failure. */
static struct rules_hblock *
rules_hblock_new(struct rules_headers *rules, const char *text,
    unsigned line, char *why, size_t whylen)
{
	struct rules_hblock *b;

	if (rules->count == rules->cap) {
		size_t cap = rules->cap == 0 ? 8 : rules->cap * 2;
		struct rules_hblock *grown = realloc(rules->blocks,
		    cap * sizeof(*grown));

		if (grown == NULL) {
			util_fail(why, whylen, "out of memory");
			return NULL;
		}
		rules->blocks = grown;
		rules->cap = cap;
	}
	b = &rules->blocks[rules->count];
	memset(b, 0, sizeof(*b));
	if (rules_pattern_compile(&b->pattern, text, false, why, whylen) < 0)
		return NULL;
	b->line = line;
	rules->count++;
	return b;
}

/* Headers: parsing. */

static char *
rules_trim(char *s)
{
	size_t len;

	s += strspn(s, " \t");
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
	return s;
}

/* An indented "Name: value" line for block b. */
static int
rules_headers_field(struct rules_headers *rules, struct rules_hblock *b,
    char *line, size_t max_rules, char *why, size_t whylen)
{
	char *colon = strchr(line, ':');

	if (b == NULL)
		return util_fail(why, whylen, "a header line before any path");
	if (colon == NULL)
		return util_fail(why, whylen, "expected 'Name: value', got "
		    "'%.*s'", RULES_SHOW, rules_trim(line));
	if (rules->nlines == max_rules)
		return util_fail(why, whylen, "more than %zu header lines",
		    max_rules);
	*colon = '\0';
	if (rules_hblock_add(b, rules_trim(line), rules_trim(colon + 1), why,
	    whylen) < 0)
		return -1;
	rules->nlines++;
	return 0;
}

/* A path line: a new block, once the one before has headers. */
static int
rules_headers_path(struct rules_headers *rules, struct rules_hblock **b,
    char *line, unsigned lineno, unsigned *errline, char *why,
    size_t whylen)
{
	char *text = rules_trim(line);

	if (*b != NULL && (*b)->nfields == 0) {
		*errline = (*b)->line;
		return util_fail(why, whylen, "path '%.*s' has no header "
		    "lines", RULES_SHOW, (*b)->pattern.source);
	}
	if (rules_is_url(text))
		return util_fail(why, whylen, "paths given as URLs are not "
		    "supported");
	if (strpbrk(text, " \t") != NULL)
		return util_fail(why, whylen, "a path line holds a space: "
		    "'%.*s'", RULES_SHOW, text);
	*b = rules_hblock_new(rules, text, lineno, why, whylen);
	return *b == NULL ? -1 : 0;
}

int
rules_headers_parse(const char *buf, size_t len, const char *file,
    const struct rules_limits *limits, struct rules_headers **out,
    char *err, size_t errlen)
{
	static const struct rules_limits dflt = RULES_LIMITS_DEFAULT;
	struct rules_headers *rules = NULL;
	struct rules_hblock *b = NULL;
	struct rules_reader rd;
	char why[RULES_WHY_MAX] = "out of memory";
	char *scratch = NULL;
	unsigned errline = 0;
	int rc = -1, more;

	*out = NULL;
	if (limits == NULL)
		limits = &dflt;
	rules_reader_init(&rd, buf, len, limits);
	rules = calloc(1, sizeof(*rules));
	scratch = malloc(limits->max_line + 1);
	if (rules == NULL || scratch == NULL)
		goto out;

	while ((more = rules_next_line(&rd, scratch, why, sizeof(why))) > 0) {
		size_t lead = strspn(scratch, " \t");

		if (scratch[lead] == '\0' || scratch[lead] == '#')
			continue;
		if (lead > 0) {
			if (rules_headers_field(rules, b, scratch,
			    limits->max_rules, why, sizeof(why)) < 0)
				goto out;
		} else if (rules_headers_path(rules, &b, scratch, rd.line,
		    &errline, why, sizeof(why)) < 0) {
			goto out;
		}
	}
	if (more < 0)
		goto out;
	if (b != NULL && b->nfields == 0) {
		errline = b->line;
		util_fail(why, sizeof(why), "path '%.*s' has no header lines",
		    RULES_SHOW, b->pattern.source);
		goto out;
	}
	*out = rules;
	rules = NULL;
	rc = 0;
out:
	if (rc < 0)
		util_fail(err, errlen, "%s line %u: %s",
		    rules_file_name(file, "_headers"),
		    errline != 0 ? errline : rd.line, why);
	rules_headers_free(rules);
	free(scratch);
	return rc;
}

/* Headers: matching. */

/* One header of the answer while it is put together. */
struct rules_hslot {
	const char *name;
	size_t      vlen;
	char       *cursor;
};

static size_t
rules_hslot_find(const struct rules_hslot *slots, size_t n, const char *name)
{
	if (!rules_joinable(name))
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(slots[i].name, name) == 0)
			return i;
	return n;
}

/*
 * Lays out the answer in one allocation: the fields, then each name and
 * value.  Returns it with the cursors of slots set, or NULL.
 */
static struct rules_header_field *
rules_hslots_layout(struct rules_hslot *slots, size_t n)
{
	size_t size = n * sizeof(struct rules_header_field);
	struct rules_header_field *fields;
	char *p;

	for (size_t i = 0; i < n; i++)
		size += strlen(slots[i].name) + 1 + slots[i].vlen + 1;
	fields = malloc(size);
	if (fields == NULL)
		return NULL;
	p = (char *)(fields + n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(slots[i].name) + 1;

		fields[i].name = memcpy(p, slots[i].name, len);
		p += len;
		fields[i].value = p;
		slots[i].cursor = p;
		*p = '\0';
		p += slots[i].vlen + 1;
	}
	return fields;
}

/* Appends value to its slot, after ", " when the slot has one already. */
static void
rules_hslot_append(struct rules_hslot *slot, const char *start,
    const char *value)
{
	size_t len = strlen(value);

	if (slot->cursor != start) {
		memcpy(slot->cursor, ", ", 2);
		slot->cursor += 2;
	}
	memcpy(slot->cursor, value, len + 1);
	slot->cursor += len;
}

/*
 * Pass 1: one slot a name (a slot for each Set-Cookie), with the size
 * of its joined value; slotof[k] is the slot of the k-th matched field.
 * Returns the number of slots.
 */
static size_t
rules_hslots_fill(const struct rules_headers *rules, const size_t *which,
    size_t nmatch, struct rules_hslot *slots, size_t *slotof)
{
	size_t nslots = 0, k = 0;

	for (size_t m = 0; m < nmatch; m++) {
		const struct rules_hblock *b = &rules->blocks[which[m]];

		for (size_t i = 0; i < b->nfields; i++, k++) {
			size_t s = rules_hslot_find(slots, nslots,
			    b->fields[i].name);

			if (s == nslots)
				slots[nslots++].name = b->fields[i].name;
			else
				slots[s].vlen += 2;
			slots[s].vlen += strlen(b->fields[i].value);
			slotof[k] = s;
		}
	}
	return nslots;
}

/* Pass 2: the values into their slots, in file order. */
static void
rules_hslots_write(const struct rules_headers *rules, const size_t *which,
    size_t nmatch, struct rules_hslot *slots, const size_t *slotof,
    const struct rules_header_field *fields)
{
	size_t k = 0;

	for (size_t m = 0; m < nmatch; m++) {
		const struct rules_hblock *b = &rules->blocks[which[m]];

		for (size_t i = 0; i < b->nfields; i++, k++)
			rules_hslot_append(&slots[slotof[k]],
			    fields[slotof[k]].value, b->fields[i].value);
	}
}

int
rules_headers_match(const struct rules_headers *rules, const char *path,
    struct rules_header_list *out)
{
	struct rules_capture caps[RULES_CAPTURES_MAX];
	struct rules_hslot *slots = NULL;
	size_t *which = NULL, *slotof = NULL;
	size_t len = strlen(path), nmatch = 0, nfields = 0, nslots;
	int rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (rules == NULL || rules->count == 0)
		return 0;
	which = malloc(rules->count * sizeof(*which));
	if (which == NULL)
		goto out;
	for (size_t i = 0; i < rules->count; i++) {
		if (!rules_pattern_match(&rules->blocks[i].pattern, path, len,
		    caps))
			continue;
		which[nmatch++] = i;
		nfields += rules->blocks[i].nfields;
	}
	rc = 0;
	if (nfields == 0)
		goto out;

	rc = -ENOMEM;
	slots = calloc(nfields, sizeof(*slots));
	slotof = calloc(nfields, sizeof(*slotof));
	if (slots == NULL || slotof == NULL)
		goto out;
	nslots = rules_hslots_fill(rules, which, nmatch, slots, slotof);
	out->fields = rules_hslots_layout(slots, nslots);
	if (out->fields == NULL)
		goto out;
	out->count = nslots;
	rules_hslots_write(rules, which, nmatch, slots, slotof, out->fields);
	rc = 0;
out:
	free(which);
	free(slots);
	free(slotof);
	return rc;
}

void
rules_header_list_free(struct rules_header_list *list)
{
	if (list == NULL)
		return;
	free(list->fields);
	list->fields = NULL;
	list->count = 0;
}

/* JSON. */

/*
 * Sets key of obj to value, a new reference that obj takes over, also
 * on failure (value NULL is a failure).
 */
static int
rules_json_set(json_t *obj, const char *key, json_t *value)
{
	return json_object_set_new(obj, key, value);
}

/* {"name", "value"} into arr. */
static int
rules_json_pair(json_t *arr, const char *name, const char *value)
{
	json_t *pair = json_object();

	if (pair == NULL || rules_json_set(pair, "name",
	    json_string(name)) < 0 || rules_json_set(pair, "value",
	    json_string(value)) < 0) {
		json_decref(pair);
		return -1;
	}
	return json_array_append_new(arr, pair);
}

static json_t *
rules_redirect_json(const struct rules_redirect *r)
{
	json_t *obj = json_object(), *query = json_array();
	bool ok = false;

	if (obj == NULL) {
		json_decref(query);
		return NULL;
	}
	/* obj takes query over at once, even on failure. */
	if (rules_json_set(obj, "query", query) < 0)
		goto out;
	for (size_t i = 0; i < r->nquery; i++)
		if (rules_json_pair(query, r->query[i].name,
		    r->query[i].value) < 0)
			goto out;
	if (rules_json_set(obj, "line", json_integer(r->line)) < 0 ||
	    rules_json_set(obj, "from", json_string(r->from.source)) < 0 ||
	    rules_json_set(obj, "to", json_string(r->to)) < 0 ||
	    rules_json_set(obj, "status", json_integer(r->status)) < 0 ||
	    rules_json_set(obj, "force", json_boolean(r->force)) < 0)
		goto out;
	ok = true;
out:
	if (!ok) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

json_t *
rules_redirects_to_json(const struct rules_redirects *rules)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < rules_redirects_count(rules);
	    i++) {
		if (json_array_append_new(arr,
		    rules_redirect_json(&rules->rules[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The string at key of obj, without NUL inside; NULL otherwise. */
static const char *
rules_json_string(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

/* Line number of a rule or block: optional, else 0. */
static int
rules_json_line(const json_t *obj, unsigned *line)
{
	json_t *v = json_object_get(obj, "line");

	*line = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return -1;
	*line = (unsigned)json_integer_value(v);
	return 0;
}

/* Reads the query conditions of a rule's JSON into f. */
static int
rules_json_query(const json_t *query, struct rules_redirect_fields *f,
    char *why, size_t whylen)
{
	size_t i;
	json_t *pair;

	if (query == NULL)
		return 0;
	if (!json_is_array(query))
		return util_fail(why, whylen, "\"query\" is not an array");
	if (json_array_size(query) > RULES_QUERY_MAX)
		return util_fail(why, whylen, "more than %d query conditions",
		    RULES_QUERY_MAX);
	json_array_foreach(query, i, pair) {
		f->qname[i] = rules_json_string(pair, "name");
		f->qvalue[i] = rules_json_string(pair, "value");
		if (f->qname[i] == NULL || f->qvalue[i] == NULL)
			return util_fail(why, whylen, "query condition %zu "
			    "lacks a name or a value", i + 1);
	}
	f->nquery = json_array_size(query);
	return 0;
}

/* Reads one rule's JSON into f. */
static int
rules_json_redirect(const json_t *obj, struct rules_redirect_fields *f,
    unsigned *line, char *why, size_t whylen)
{
	json_t *status = json_object_get(obj, "status");
	json_t *force = json_object_get(obj, "force");

	memset(f, 0, sizeof(*f));
	if (!json_is_object(obj))
		return util_fail(why, whylen, "not an object");
	f->from = rules_json_string(obj, "from");
	f->to = rules_json_string(obj, "to");
	if (f->from == NULL || f->to == NULL)
		return util_fail(why, whylen, "\"from\" or \"to\" is missing");
	if (!json_is_integer(status) || json_integer_value(status) < 0 ||
	    json_integer_value(status) > 999)
		return util_fail(why, whylen, "\"status\" is not a status");
	if (force != NULL && !json_is_boolean(force))
		return util_fail(why, whylen, "\"force\" is not a boolean");
	if (rules_json_line(obj, line) < 0)
		return util_fail(why, whylen, "\"line\" is not a line number");
	f->status = (int)json_integer_value(status);
	f->force = json_is_true(force);
	return rules_json_query(json_object_get(obj, "query"), f, why,
	    whylen);
}

int
rules_redirects_from_json(const json_t *json, struct rules_redirects **out,
    char *err, size_t errlen)
{
	struct rules_redirects *rules = NULL;
	struct rules_redirect_fields f;
	char why[RULES_WHY_MAX] = "out of memory";
	size_t i = 0;
	json_t *item;
	int rc = -1;

	*out = NULL;
	if (json != NULL && !json_is_array(json)) {
		util_fail(why, sizeof(why), "not an array");
		goto out;
	}
	rules = calloc(1, sizeof(*rules));
	if (rules == NULL)
		goto out;
	json_array_foreach(json, i, item) {
		unsigned line;

		if (rules_json_redirect(item, &f, &line, why,
		    sizeof(why)) < 0)
			goto out;
		if (rules_redirects_grow(rules) < 0) {
			util_fail(why, sizeof(why), "out of memory");
			goto out;
		}
		if (rules_redirect_build(&rules->rules[rules->count], &f, why,
		    sizeof(why)) < 0)
			goto out;
		rules->rules[rules->count++].line = line;
	}
	*out = rules;
	rules = NULL;
	rc = 0;
out:
	if (rc < 0)
		util_fail(err, errlen, "redirect %zu: %s", i + 1, why);
	rules_redirects_free(rules);
	return rc;
}

static json_t *
rules_hblock_json(const struct rules_hblock *b)
{
	json_t *obj = json_object(), *values = json_array();
	bool ok = false;

	if (obj == NULL) {
		json_decref(values);
		return NULL;
	}
	/* obj takes values over at once, even on failure. */
	if (rules_json_set(obj, "values", values) < 0)
		goto out;
	for (size_t i = 0; i < b->nfields; i++)
		if (rules_json_pair(values, b->fields[i].name,
		    b->fields[i].value) < 0)
			goto out;
	if (rules_json_set(obj, "line", json_integer(b->line)) < 0 ||
	    rules_json_set(obj, "for", json_string(b->pattern.source)) < 0)
		goto out;
	ok = true;
out:
	if (!ok) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

json_t *
rules_headers_to_json(const struct rules_headers *rules)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < rules_headers_count(rules);
	    i++) {
		if (json_array_append_new(arr,
		    rules_hblock_json(&rules->blocks[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Reads one block's JSON into a new block of rules. */
static int
rules_json_hblock(struct rules_headers *rules, const json_t *obj,
    char *why, size_t whylen)
{
	const char *text = rules_json_string(obj, "for");
	json_t *values = json_object_get(obj, "values"), *pair;
	struct rules_hblock *b;
	unsigned line;
	size_t i;

	if (text == NULL || !json_is_array(values) ||
	    json_array_size(values) == 0)
		return util_fail(why, whylen, "\"for\" or \"values\" is "
		    "missing");
	if (rules_json_line(obj, &line) < 0)
		return util_fail(why, whylen, "\"line\" is not a line number");
	b = rules_hblock_new(rules, text, line, why, whylen);
	if (b == NULL)
		return -1;
	json_array_foreach(values, i, pair) {
		const char *name = rules_json_string(pair, "name");
		const char *value = rules_json_string(pair, "value");

		if (name == NULL || value == NULL)
			return util_fail(why, whylen, "value %zu lacks a name "
			    "or a value", i + 1);
		if (rules_hblock_add(b, name, value, why, whylen) < 0)
			return -1;
	}
	return 0;
}

int
rules_headers_from_json(const json_t *json, struct rules_headers **out,
    char *err, size_t errlen)
{
	struct rules_headers *rules = NULL;
	char why[RULES_WHY_MAX] = "out of memory";
	size_t i = 0;
	json_t *item;
	int rc = -1;

	*out = NULL;
	if (json != NULL && !json_is_array(json)) {
		util_fail(why, sizeof(why), "not an array");
		goto out;
	}
	rules = calloc(1, sizeof(*rules));
	if (rules == NULL)
		goto out;
	json_array_foreach(json, i, item)
		if (rules_json_hblock(rules, item, why, sizeof(why)) < 0)
			goto out;
	*out = rules;
	rules = NULL;
	rc = 0;
out:
	if (rc < 0)
		util_fail(err, errlen, "headers block %zu: %s", i + 1, why);
	rules_headers_free(rules);
	return rc;
}
