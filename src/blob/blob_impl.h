/*
 * blob_impl: what the blob store shares inside itself, between the
 * backend-neutral front (blob.c) and the backends (blob_local.c; an S3
 * one later).  Nothing outside src/blob includes this header.
 *
 * The front checks keys and prefixes, keeps a writer's first error,
 * and builds the whole-object calls (put, put_file, get) from the
 * streaming ones; a backend only moves bytes.  A backend is handed
 * valid keys and prefixes only, returns 0 or a negative errno, and
 * logs the system errors it did not expect (not -ENOENT for a missing
 * object).  Every operation may be called from many threads at once.
 */
#ifndef WHARF_BLOB_IMPL_H
#define WHARF_BLOB_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

struct blob_ops {
	/* Frees everything the backend holds, bs included. */
	void (*close)(struct blob_store *bs);

	/*
	 * Allocates a writer (its head first) for key; the front fills
	 * the head after this returns.
	 */
	int (*writer_begin)(struct blob_store *bs, const char *key,
	    struct blob_writer **w);
	/* Appends all len bytes or fails. */
	int (*writer_write)(struct blob_writer *w, const void *buf,
	    size_t len);
	/* Publishes under w->key; frees w whatever it returns. */
	int (*writer_commit)(struct blob_writer *w);
	/* Discards the temp object and frees w. */
	void (*writer_abort)(struct blob_writer *w);

	int (*get_fd)(struct blob_store *bs, const char *key, int fd);
	/* Chunks of at most BLOB_CHUNK_SIZE bytes. */
	int (*get_stream)(struct blob_store *bs, const char *key,
	    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx);
	int (*stat)(struct blob_store *bs, const char *key,
	    struct blob_stat *st);
	/* NULL when the backend has no files to lend. */
	int (*open_fd)(struct blob_store *bs, const char *key, int *fd,
	    uint64_t *size);

	int (*remove)(struct blob_store *bs, const char *key);
	/* prefix is not empty; *removed is never NULL, preset to 0. */
	int (*remove_prefix)(struct blob_store *bs, const char *prefix,
	    size_t *removed);
	/*
	 * May report keys that are not valid or do not start with
	 * prefix: the front filters them out.
	 */
	int (*list)(struct blob_store *bs, const char *prefix,
	    int (*fn)(void *ctx, const char *key, uint64_t size), void *ctx);

	int (*temp_count)(struct blob_store *bs, size_t *count);
};

/*
 * The common head of every backend's store: a backend embeds it as its
 * first member and casts back.
 */
struct blob_store {
	const struct blob_ops *ops;
};

/* The common head of every backend's writer, filled by the front. */
struct blob_writer {
	struct blob_store *bs;
	int                error;          /* first failed write, or 0 */
	char               key[BLOB_KEY_MAX + 1];
};

/*
 * Opens the local-folder store at root; see blob_open_local() in
 * blob.h.  Defined in blob_local.c.
 */
struct blob_store *blob_local_open(const char *root, char *err,
    size_t errlen);

#endif
