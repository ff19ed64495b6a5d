/*
 * rules: a site's _redirects and _headers files, in Netlify's syntax.
 * Parsed and validated at publish (step 13), stored in the deployment's
 * manifest as JSON, matched by the edge on every request.
 *
 * Patterns (a _redirects FROM, a _headers path line):
 *
 *   - start with '/'; case-sensitive; written URL-encoded, decoded once
 *     when compiled, so they match the edge's decoded, normalized path
 *     (edge_path_normalize).  An invalid escape, %00 or an encoded '/'
 *     (%2F, which never matches a normalized path) is an error.
 *   - ":name" as a whole segment matches one non-empty segment and
 *     captures it; name is [A-Za-z_][A-Za-z0-9_]*, "splat" is reserved.
 *     A ':' inside a segment is a literal.
 *   - '*' matches any text, '/' included, possibly empty; at most one.
 *     In _redirects it must end the pattern (its text is ":splat"); in
 *     _headers it may stand anywhere (between "/assets/" and ".js").
 *     A pattern ending in '/' and '*' also matches the path without
 *     that slash ("/app/" and '*' match "/app").
 *   - One trailing slash is not significant: "/about" and "/about/"
 *     match each other (as Netlify does); a rule is stored without it.
 *
 * _redirects: one rule a line, fields separated by spaces or tabs:
 *
 *   FROM [name=value ...] TO [STATUS[!]] [# comment]
 *
 *   - name=value between FROM and TO are query conditions: every one
 *     must be in the request's query; a value ":id" captures the value
 *     (any, even empty) as :id, another value must be equal.  Names and
 *     values are compared as written in the request, not decoded.
 *   - TO is a path starting with a single '/', or an http:// or
 *     https:// URL for 301 and 302.  ":name" in TO (after a URL's
 *     host) is replaced by the capture of that name, ":splat" by the
 *     '*'; a name FROM does not define is an error (write %3A for a
 *     literal ':' followed by a letter).  Captured path text is
 *     percent-encoded (all but A-Z a-z 0-9 - . _ ~ /); query captures
 *     keep their escapes; bytes that may not appear in a URL (controls,
 *     space, non-ASCII, "<>\^`{|}) are encoded, so a target can never
 *     carry a line break or a backslash.
 *   - STATUS: 200 (rewrite: serve TO's file with 200), 301, 302, 404
 *     (serve TO's file with 404); 301 when absent.  A trailing '!'
 *     forces the rule: it applies even when a file exists at the path.
 *     Proxying (200 or 404 to a URL), domain rules (FROM a URL) and
 *     conditions after the status (Country=, Language=, Role=, Cookie=)
 *     are not supported: each is an error.
 *   - For 301 and 302, the request's query is passed on (as Netlify
 *     does), before a '#' fragment of TO, unless TO has a '?' of its
 *     own or the rule has query conditions (they consumed the query:
 *     "/store id=:id /blog/:id" sends "/store?id=7" to "/blog/7").
 *     For 200 and 404 the target is a path for the edge to serve: the
 *     edge normalizes it with edge_path_normalize, which decodes it.
 *
 * _headers: blocks of a path line (no leading whitespace) followed by
 * indented "Name: value" lines:
 *
 *   - names are HTTP tokens of at most RULES_HEADER_NAME_MAX bytes;
 *     values are trimmed, not empty, without CR, LF, NUL or another
 *     control byte but tab.
 *   - Refused names, each an error: the hop-by-hop fields (Connection,
 *     Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
 *     Upgrade), the framing the edge computes per response
 *     (Content-Length, Content-Range, Content-Encoding, Accept-Ranges,
 *     ETag, Date) and Location (use _redirects).  Any other may be set:
 *     Cache-Control and Content-Type from _headers replace the edge's
 *     own; a Vary is sent with the edge's Accept-Encoding added.
 *   - A name repeated in a block, or in several matching blocks, gives
 *     one header whose values are joined with ", " in file order (what
 *     HTTP defines as the same), the spelling of the first kept; but
 *     every Set-Cookie stays a header of its own.
 *   - A path line without header lines is an error.
 *
 * Both files: UTF-8 text (a byte order mark is skipped); '#' starts a
 * comment line; blank lines are skipped; CRLF is accepted; invalid
 * UTF-8, a NUL or a control byte but tab is an error.  The limits
 * are settings (struct rules_limits): the rule count is the number of
 * redirect rules, or of header lines in _headers.
 *
 * Errors: parsing returns -1 and writes "FILE line N: reason" into err
 * (FILE is the name the caller passes, N counts from 1).
 *
 * Thread safety: parsed rules are read-only; any number of threads may
 * match against them at once.
 */
#ifndef WHARF_DEPLOY_RULES_H
#define WHARF_DEPLOY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define RULES_MAX_RULES_DEFAULT 1000
#define RULES_LINE_MAX_DEFAULT  2048
#define RULES_CAPTURES_MAX      16      /* :names and the splat, a rule */
#define RULES_QUERY_MAX         8       /* query conditions, a rule */
#define RULES_HEADER_NAME_MAX   128
#define RULES_TARGET_MAX        8192    /* a target buffer for the edge */

/* Settings: the caller passes them (e.g. from struct config). */
struct rules_limits {
	size_t max_rules;       /* redirect rules, or header lines */
	size_t max_line;        /* bytes a line, without its line break */
};

#define RULES_LIMITS_DEFAULT \
	{ RULES_MAX_RULES_DEFAULT, RULES_LINE_MAX_DEFAULT }

struct rules_redirects;
struct rules_headers;

/* One header of a match.  Both strings belong to the list. */
struct rules_header_field {
	const char *name;
	const char *value;
};

/* What rules_headers_match found; the caller frees it. */
struct rules_header_list {
	size_t                     count;
	struct rules_header_field *fields;      /* in file order */
};

/*
 * Parses a _redirects file of len bytes (it need not end with NUL).
 * file names it in messages ("_redirects").  limits NULL means the
 * defaults.  On success *out is new, the caller frees it with
 * rules_redirects_free; on -1 *out is NULL and err holds the message.
 */
int rules_redirects_parse(const char *buf, size_t len, const char *file,
    const struct rules_limits *limits, struct rules_redirects **out,
    char *err, size_t errlen);

void rules_redirects_free(struct rules_redirects *rules);

size_t rules_redirects_count(const struct rules_redirects *rules);

/*
 * Finds the first rule, in file order, that matches path (decoded and
 * normalized, see edge_path_normalize) and query (the raw text after
 * '?', not decoded; NULL or "" for none), and writes its target into
 * target, its status and whether it is forced.  A 301 or 302 whose
 * target is the request's own path (one trailing slash aside) is
 * skipped: it would loop, and so is a relative target that would start
 * with "//" or with '/' and a backslash.  Returns 1 on a match, 0 when
 * none matches, -1 when the target does not fit in targetlen
 * (RULES_TARGET_MAX is ample for real rules; the edge answers -1 as an
 * error, not as no match).
 */
int rules_redirect_match(const struct rules_redirects *rules,
    const char *path, const char *query, char *target, size_t targetlen,
    int *status, bool *force);

/*
 * As rules_redirect_match, considering forced rules only: for a path
 * where a file exists, since files win over rules that are not forced.
 */
int rules_redirect_match_forced(const struct rules_redirects *rules,
    const char *path, const char *query, char *target, size_t targetlen,
    int *status, bool *force);

/*
 * The rules as a JSON array for the manifest, one object a rule:
 * {"line", "from", "query": [{"name", "value"}], "to", "status",
 * "force"}.  A new reference the caller owns; NULL when out of memory.
 */
json_t *rules_redirects_to_json(const struct rules_redirects *rules);

/*
 * Rules from rules_redirects_to_json's array, checked as the parser
 * checks them (the file syntax is not read again, each pattern and
 * target is compiled).  json NULL (a manifest without the key) gives
 * no rules.  json is only read.  Returns 0 with *out new (free with
 * rules_redirects_free), or -1 with err set.
 */
int rules_redirects_from_json(const json_t *json,
    struct rules_redirects **out, char *err, size_t errlen);

/* As rules_redirects_parse, for a _headers file ("_headers"). */
int rules_headers_parse(const char *buf, size_t len, const char *file,
    const struct rules_limits *limits, struct rules_headers **out,
    char *err, size_t errlen);

void rules_headers_free(struct rules_headers *rules);

/* Number of path blocks. */
size_t rules_headers_count(const struct rules_headers *rules);

/*
 * The headers of every block whose pattern matches path (decoded and
 * normalized), joined as described above, into *out, which the caller
 * frees with rules_header_list_free (also after a failure).  Returns 0,
 * or -ENOMEM.
 */
int rules_headers_match(const struct rules_headers *rules,
    const char *path, struct rules_header_list *out);

void rules_header_list_free(struct rules_header_list *list);

/*
 * The blocks as a JSON array: {"line", "for", "values": [{"name",
 * "value"}]}.  A new reference; NULL when out of memory.
 */
json_t *rules_headers_to_json(const struct rules_headers *rules);

/* As rules_redirects_from_json, for rules_headers_to_json's array. */
int rules_headers_from_json(const json_t *json, struct rules_headers **out,
    char *err, size_t errlen);

#endif
