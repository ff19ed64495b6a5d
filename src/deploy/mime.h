/*
 * mime: a file's content type from its extension, through the system
 * table /etc/mime.types (Debian's media-types package), and whether a
 * type is worth compressing.
 *
 * The table maps extensions, compared without letter case, to types.
 * When an extension is listed under several types the first wins, as
 * the file's order puts the usual one first (sh: application/x-sh).  A
 * few types a web site cannot do without (html, css, js, json, map,
 * svg, wasm, woff2, ...) are built in and fill what the file lacks, so
 * the edge still serves them right when the file is missing.
 *
 * Text types carry "; charset=utf-8": every text/ type (JavaScript is
 * text/javascript), application/javascript, application/json,
 * application/xml and every +json and +xml type
 * (image/svg+xml, application/manifest+json, ...), since a site's text
 * is UTF-8 and a browser guessing otherwise garbles it.
 *
 * Lookups are thread-safe: the shared table is loaded once, on the
 * first call (pthread_once), and only read afterwards.
 */
#ifndef WHARF_DEPLOY_MIME_H
#define WHARF_DEPLOY_MIME_H

#include <stdbool.h>

#define MIME_TYPES_FILE         "/etc/mime.types"
#define MIME_DEFAULT            "application/octet-stream"
#define MIME_LINE_MAX           4096    /* longer lines are skipped */
#define MIME_EXT_MAX            32      /* longer extensions: default */
#define MIME_TYPE_MAX           127     /* longer types are skipped */
#define MIME_ENTRIES_MAX        16384   /* extensions past it are ignored */

struct mime_table;

/*
 * Loads file (in mime.types format) and the built-in types into a new
 * table, which the caller frees with mime_table_free.  Returns 0; or a
 * negative errno when file cannot be read, *out then holding the
 * built-in types only; or -ENOMEM with *out NULL.
 */
int mime_table_load(const char *file, struct mime_table **out);

void mime_table_free(struct mime_table *table);

/* Number of extensions in table. */
unsigned mime_table_count(const struct mime_table *table);

/*
 * The content type for path's extension (after the last '.' of its
 * last segment, not a leading one), MIME_DEFAULT when there is none or
 * it is unknown.  The string belongs to table.
 */
const char *mime_table_lookup(const struct mime_table *table,
    const char *path);

/*
 * Loads the shared table from MIME_TYPES_FILE once; later calls return
 * the first result (0 or a negative errno, logged once as a warning:
 * the built-in types are served meanwhile).
 */
int mime_init(void);

/* mime_table_lookup on the shared table; a static string. */
const char *mime_type_for(const char *path);

/*
 * Whether a body of this type (parameters ignored, letter case too)
 * shrinks under gzip or brotli: every text/ type, JavaScript, JSON and
 * XML with their +json and +xml kin (SVG among them), WebAssembly,
 * uncompressed fonts (ttf, otf, eot) and icons (ico, bmp).  Images,
 * audio, video, archives and woff/woff2 are compressed already.
 */
bool mime_is_compressible(const char *type);

#endif
