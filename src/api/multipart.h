/*
 * multipart: a streaming parser of multipart/form-data bodies, for the
 * upload route.  Private to src/api/.
 *
 * The body may come in pieces of any size, split anywhere (inside a
 * delimiter or a header line too); a part's content is handed on in
 * place, straight out of the caller's buffer, apart from the few bytes
 * that might start a delimiter at the end of a piece, which are held
 * back until the next one shows what they are.  The delimiter is found
 * with memmem, so a large file costs about a memcpy to parse.
 *
 * It reads what libmicrohttpd's post processor read before it (which
 * still parses urlencoded forms): anything before the first delimiter
 * is skipped; a delimiter is followed by "--" (the last one) or a line
 * break; a part's header lines end in "\n" or "\r\n", and the empty one
 * ends them; "Content-disposition: " (any case) gives the quoted name
 * and filename, "Content-type: " anywhere in a line the type; after
 * the last delimiter only one line break may follow.  Nested
 * multipart/mixed parts, which no browser or HTTP library sends, are
 * not unpacked: such a part is one part of that type.
 */
#ifndef WHARF_API_MULTIPART_H
#define WHARF_API_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

/* A header line, at most (libmicrohttpd's post processor's buffer). */
#define MULTIPART_LINE_MAX      (64 * 1024)
/* The boundary parameter, at most, in bytes. */
#define MULTIPART_BOUNDARY_MAX  (MULTIPART_LINE_MAX / 2 - 8)

struct multipart;

/*
 * What the parser calls; a non-zero return stops it.  begin starts a
 * part: name, filename and content_type are NULL when the part has no
 * such header, and valid only during the call.  data hands on the next
 * bytes of the part's content (never 0 of them).
 */
struct multipart_ops {
	int (*begin)(void *ctx, const char *name, const char *filename,
	    const char *content_type);
	int (*data)(void *ctx, const char *buf, size_t len);
};

/*
 * A parser of a body sent with this Content-Type, or NULL when it is
 * not multipart/form-data with a boundary of 1 to
 * MULTIPART_BOUNDARY_MAX bytes (quotes around it are dropped), or when
 * memory runs out.
 */
struct multipart *multipart_new(const char *content_type,
    const struct multipart_ops *ops, void *ctx);
/*
 * Parses the next len bytes of the body.  0, or -1 when the body is
 * malformed or a callback stopped the parser; every later call then
 * returns -1 too.
 */
int multipart_feed(struct multipart *mp, const char *buf, size_t len);
/*
 * Whether the body may end here: after the last delimiter (and its
 * line break, if any), or before the first one (a form with no part).
 */
bool multipart_complete(const struct multipart *mp);
void multipart_free(struct multipart *mp);

#endif
