/*
 * httputil: pure helpers for the edge's requests: the URL path, Range,
 * Accept-Encoding, If-None-Match and the Cache-Control policy.  No I/O,
 * no allocation, no state: every function is thread-safe.
 */
#ifndef WHARF_EDGE_HTTPUTIL_H
#define WHARF_EDGE_HTTPUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_PATH_MAX           1024    /* bytes of a raw request path */

/*
 * Turns the raw path of a request (the request-target up to '?', still
 * percent-encoded) into the path to look up in a manifest, into out
 * (EDGE_PATH_MAX + 1 bytes always suffice).  Returns 0, or -1 when the
 * path is refused: the caller answers 400 or 404, never another file.
 *
 *   - raw must start with '/' and be at most EDGE_PATH_MAX bytes.
 *   - Escapes are decoded exactly once: "%2e%2e" is "..", while
 *     "%252e%252e" is the literal name "%2e%2e".
 *   - Refused, raw or encoded: NUL, a backslash, control characters
 *     (below 0x20, and 0x7f); an encoded '/' (%2F), which must never
 *     become a separator; an invalid escape ("%", "%4", "%zz"); raw
 *     '?', '#' and space, which a request path cannot hold (the caller
 *     strips the query first); a result that is not valid UTF-8
 *     (overlong forms such as %C0%AE included).
 *   - "." segments are dropped and ".." removes the segment before it;
 *     a ".." above the root is refused, not clamped: no honest link
 *     does that, so it is an attack or a broken link, and serving the
 *     root instead would hide either.
 *   - Empty segments ("//") collapse.  A trailing slash is kept (clean
 *     URLs tell "/about/" from "/about"), and so is the slash after a
 *     final "." or ".." ("/a/b/.." is "/a/").
 */
int edge_path_normalize(const char *raw, char *out, size_t outlen);

enum edge_range {
	EDGE_RANGE_NONE = 0,            /* serve 200 with the whole body */
	EDGE_RANGE_OK,                  /* serve 206 with *start, *len */
	EDGE_RANGE_UNSATISFIABLE,       /* serve 416 */
};

/*
 * Reads a Range header (NULL when absent) for a body of size bytes.
 * One range of the unit "bytes" (any letter case) is served:
 * "bytes=a-b" (b past the end is clamped to size - 1), "bytes=a-" and
 * "bytes=-n" (the last n bytes; the whole body when n >= size).
 *   - UNSATISFIABLE: a >= size, or n = 0.
 *   - NONE, RFC 9110 letting a server ignore Range: no header, another
 *     unit, several ranges, or a malformed one (b < a, no digits,
 *     a number past 2^64, anything after the range).
 *   - size 0: always NONE; no range of an empty body can be sent as
 *     206, and a 200 with the empty body is the honest answer.
 */
enum edge_range edge_range_parse(const char *header, uint64_t size,
    uint64_t *start, uint64_t *len);

/* Content codings, as bits of what a file has precompressed. */
#define EDGE_ENC_IDENTITY       0u
#define EDGE_ENC_GZIP           1u
#define EDGE_ENC_BR             2u

/*
 * The coding to send, given an Accept-Encoding header (NULL when
 * absent) and the variants available (EDGE_ENC_BR | EDGE_ENC_GZIP).
 *   - q-values are honoured, q=0 refuses; "*" stands for every coding
 *     the header does not name; "x-gzip" is gzip; names are compared
 *     without letter case; an element with a malformed q is ignored.
 *   - br and gzip with the same q: br (it is smaller).
 *   - identity stays acceptable unless refused ("identity;q=0", or
 *     "*;q=0" without an identity entry); when the header names it with
 *     a higher q than every available coding, identity is chosen.
 *   - When nothing available is acceptable, identity is returned even
 *     if refused: a body beats a 406.
 *   - No header, or an empty one: identity.
 * The caller sends "Vary: Accept-Encoding" whenever a file has variants.
 */
unsigned edge_accept_encoding(const char *header, unsigned available);

/*
 * Whether If-None-Match (NULL when absent) matches etag, the validator
 * the edge sends ("\"<hash>\"", or weak "W/\"<hash>\""), so that the
 * answer is 304.  "*" matches; otherwise a comma-separated list of
 * entity tags compared weakly (RFC 9110 13.1.2: "W/" is ignored on
 * both sides).  A malformed list matches nothing from the point where
 * it breaks (the body is sent, which is always safe).
 */
bool edge_etag_match(const char *if_none_match, const char *etag);

#define EDGE_CACHE_REVALIDATE   "public, max-age=0, must-revalidate"
#define EDGE_CACHE_IMMUTABLE    "public, max-age=31536000, immutable"

/*
 * Whether path names a fingerprinted asset, one whose name changes
 * whenever its content does:
 *   - any file under "/_next/static/" (Next.js puts its build id or a
 *     content hash in each of those paths);
 *   - a file under "/assets/" (at any depth) whose name carries a hash:
 *     name = STEM SEP HASH "." EXT, where SEP is '-' or '.', STEM is
 *     not empty, EXT is the last extension (or the last two, as in
 *     "x-HASH.js.map"), and HASH is 8 to 64 characters of
 *     [A-Za-z0-9_] holding at least one digit and one letter, whose
 *     letters are all hex digits (webpack, older Vite: "3f9a2c1b") or
 *     include a capital (Rollup, Vite, esbuild: "BXt3kQ2a").  So
 *     "index-3f9a2c1b.js" and "app.3f9a2c1b.css" are fingerprinted;
 *     "logo-2024.png" (too short), "chunk-20240101.js" (no letter),
 *     "ubuntu-release2204.iso" (lowercase non-hex letters) are not.
 * A miss is safe (the file is revalidated); a false hit would pin a
 * changed file for a year, hence the narrow rule.
 */
bool edge_path_fingerprinted(const char *path);

/*
 * The Cache-Control policy (DESIGN.md, Edge) for a file found in the
 * manifest and served 200 or 206: HTML revalidates every time;
 * fingerprinted assets are EDGE_CACHE_IMMUTABLE; every other file
 * revalidates too (EDGE_CACHE_REVALIDATE), so that a deploy shows at
 * once, its ETag making the check a cheap 304.  A static string.
 * A 404 (the site's 404.html included) must never be immutable: the
 * caller sends EDGE_CACHE_REVALIDATE for it, whatever its path.
 */
const char *edge_cache_control(const char *path, bool is_html);

#endif
