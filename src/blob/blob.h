/*
 * blob: the object store for sources, logs, manifests and site files.
 *
 * Keys are slash-separated relative names laid out as DESIGN.md says
 * ("tenants/<t>/builds/<build>/source.zip").  A key is valid when:
 *
 *   - it is 1 to BLOB_KEY_MAX bytes, each one of A-Z a-z 0-9 . _ ~ -
 *     or '/' (RFC 3986 unreserved characters: safe unquoted in a URL,
 *     a SigV4 canonical path, a shell word, a log line and a file
 *     name; no space, control character, backslash, NUL or non-ASCII);
 *   - '/' only separates segments: none leading or trailing, no empty
 *     segment ("a//b");
 *   - every segment is 1 to BLOB_SEGMENT_MAX bytes and is not "." or
 *     "..";
 *   - the first segment does not begin with '.': names like ".tmp" at
 *     the top are reserved for the backends' own use.
 *
 * A prefix (blob_list, blob_delete_prefix) is a plain string prefix of
 * keys, as in S3: "tenants/a" also matches "tenants/abc/...", so pass
 * "tenants/a/" for one tenant.  A prefix may end in '/'; with that one
 * '/' removed it must be a valid key.  Every function checks its key
 * or prefix and returns -EINVAL when it is not valid.
 *
 * The backend is chosen at open: a local folder now (under the data
 * dir), S3 later; nothing in this interface assumes a filesystem, so
 * the same calls must work over HTTP.
 *
 * Writes are atomic: a reader sees the whole object or none of it.
 * Every function returns 0 or a negative errno (-EINVAL for a bad key,
 * -ENOENT for a missing object, -EIO and others from the system).
 *
 * Threads: a struct blob_store may be shared; a struct blob_writer
 * belongs to one thread at a time.
 */
#ifndef WHARF_BLOB_H
#define WHARF_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLOB_KEY_MAX            1024    /* bytes, as S3 allows */
#define BLOB_SEGMENT_MAX        255     /* bytes between slashes */
#define BLOB_CHUNK_SIZE         65536   /* blob_get_stream's chunks */
#define BLOB_TEMP_STALE_SEC     (24 * 60 * 60)  /* idle temp: removed */

struct blob_store;
struct blob_writer;

struct blob_stat {
	uint64_t size;
	int64_t  mtime_ms;
};

/*
 * Opens the local-folder store rooted at root (created if missing,
 * mode 0700), and removes temp files left behind by processes that no
 * longer run (a crash mid-write leaves only such a file), and any
 * untouched for BLOB_TEMP_STALE_SEC, whose pid may since have been
 * reused.  Returns NULL with a message in err on failure; the caller
 * frees the store with blob_close().
 *
 * Objects are files at <root>/<key>, so this backend cannot hold a key
 * that is also a folder of another ("a" beside "a/b"): such a write
 * fails with -EISDIR or -ENOTDIR.  Symlinks in the tree are never
 * followed (-ELOOP).  Processes sharing root must share a pid
 * namespace.
 */
struct blob_store *blob_open_local(const char *root, char *err,
    size_t errlen);
void blob_close(struct blob_store *bs);

/* 1 when key (NUL-terminated; NULL is invalid) is valid, else 0. */
int blob_key_valid(const char *key);
/* As blob_key_valid for the len bytes at key, which may hold a NUL. */
int blob_key_valid_len(const char *key, size_t len);

/*
 * Streaming write.  begin creates a temp object; write appends; commit
 * makes it visible under key atomically and durably (fsync of the file
 * and of its folder), replacing any object there; abort discards it.
 * commit and abort free w, whatever they return.  After a failed
 * write, further writes return the same error and commit discards the
 * object and returns it too.
 */
int blob_writer_begin(struct blob_store *bs, const char *key,
    struct blob_writer **w);
int blob_writer_write(struct blob_writer *w, const void *buf, size_t len);
int blob_writer_commit(struct blob_writer *w);
void blob_writer_abort(struct blob_writer *w);

/*
 * Whole-object writes, atomic like the writer.  put_file copies the
 * local file at path (the caller's own file; symlinks to it are fine).
 */
int blob_put(struct blob_store *bs, const char *key, const void *buf,
    size_t len);
int blob_put_file(struct blob_store *bs, const char *key, const char *path);

/*
 * Copies the object to fd from fd's current offset, which it advances;
 * fd stays the caller's.  On an error part of the object may have been
 * written.
 */
int blob_get_fd(struct blob_store *bs, const char *key, int fd);
/*
 * Calls fn for each chunk of the object (at most BLOB_CHUNK_SIZE bytes,
 * valid only during the call), in order; a non-zero return from fn
 * stops the read and is returned.
 */
int blob_get_stream(struct blob_store *bs, const char *key,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx);
/*
 * The whole object in a new buffer (NUL-terminated, not counted in
 * *len) if it is at most max bytes, else -EFBIG.  Caller frees *buf;
 * on an error *buf is NULL and *len 0.
 */
int blob_get(struct blob_store *bs, const char *key, size_t max, char **buf,
    size_t *len);

int blob_stat(struct blob_store *bs, const char *key, struct blob_stat *st);

/*
 * Opens the object for reading: *fd is a descriptor the caller closes,
 * *size its length.  -ENOTSUP on a backend without files (S3): read it
 * with blob_get or blob_get_stream instead.
 */
int blob_open_fd(struct blob_store *bs, const char *key, int *fd,
    uint64_t *size);

/* Removes the object; -ENOENT if it was not there. */
int blob_delete(struct blob_store *bs, const char *key);
/*
 * Removes every object whose key starts with prefix ("" is refused:
 * -EINVAL) and stores how many in *removed (may be NULL), also on an
 * error part-way.  Objects written meanwhile may survive.
 */
int blob_delete_prefix(struct blob_store *bs, const char *prefix,
    size_t *removed);

/*
 * Calls fn with each key starting with prefix (in no set order), and
 * its size; key is valid only during the call.  A non-zero return
 * from fn stops the listing and is returned.  prefix "" lists
 * everything.  Objects written or removed meanwhile may or may not be
 * seen.
 */
int blob_list(struct blob_store *bs, const char *prefix,
    int (*fn)(void *ctx, const char *key, uint64_t size), void *ctx);

/* Number of temp objects now in flight or left over (for tests). */
int blob_temp_count(struct blob_store *bs, size_t *count);

#endif
