/*
 * blob: the backend-neutral front.  Checks every key and prefix, keeps
 * a writer's first error, builds put, put_file and get out of the
 * streaming calls, and hands the rest to the backend.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "blob/blob_impl.h"

/* What blob_get collects into. */
struct blob_buffer {
	char   *data;
	size_t  len;
	size_t  cap;
	size_t  max;
};

/* What blob_list hands its filter. */
struct blob_filter {
	const char *prefix;
	size_t      prefix_len;
	int       (*fn)(void *ctx, const char *key, uint64_t size);
	void       *ctx;
};

/* Key checks */

/* The RFC 3986 unreserved characters: A-Z a-z 0-9 . _ ~ - */
static int
blob_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
	    c == '-';
}

static int
blob_segment_valid(const char *seg, size_t len)
{
	if (len == 0 || len > BLOB_SEGMENT_MAX)
		return 0;
	if (seg[0] == '.' && (len == 1 || (len == 2 && seg[1] == '.')))
		return 0;
	return 1;
}

int
blob_key_valid_len(const char *key, size_t len)
{
	size_t start = 0;

	if (key == NULL || len == 0 || len > BLOB_KEY_MAX)
		return 0;
	/* Top-level dot names are the backends' (".tmp"). */
	if (key[0] == '.')
		return 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && key[i] != '/') {
			if (!blob_key_char(key[i]))
				return 0;
			continue;
		}
		if (!blob_segment_valid(key + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}

int
blob_key_valid(const char *key)
{
	if (key == NULL)
		return 0;
	return blob_key_valid_len(key, strnlen(key, BLOB_KEY_MAX + 1));
}

/* A prefix with one trailing '/' removed is a key; "" when empty_ok. */
static int
blob_prefix_valid(const char *prefix, int empty_ok)
{
	size_t len;

	if (prefix == NULL)
		return 0;
	len = strnlen(prefix, BLOB_KEY_MAX + 2);
	if (len == 0)
		return empty_ok;
	if (prefix[len - 1] == '/')
		len--;
	return blob_key_valid_len(prefix, len);
}

/* Opening and closing */

struct blob_store *
blob_open_local(const char *root, char *err, size_t errlen)
{
	assert(root != NULL && err != NULL);
	return blob_local_open(root, err, errlen);
}

void
blob_close(struct blob_store *bs)
{
	if (bs != NULL)
		bs->ops->close(bs);
}

/* Streaming writes */

int
blob_writer_begin(struct blob_store *bs, const char *key,
    struct blob_writer **w)
{
	int rc;

	assert(bs != NULL && w != NULL);
	*w = NULL;
	if (!blob_key_valid(key))
		return -EINVAL;

	rc = bs->ops->writer_begin(bs, key, w);
	if (rc != 0)
		return rc;
	(*w)->bs = bs;
	(*w)->error = 0;
	memcpy((*w)->key, key, strlen(key) + 1);
	return 0;
}

int
blob_writer_write(struct blob_writer *w, const void *buf, size_t len)
{
	assert(w != NULL && (buf != NULL || len == 0));
	if (w->error != 0)
		return w->error;
	if (len == 0)
		return 0;
	w->error = w->bs->ops->writer_write(w, buf, len);
	return w->error;
}

int
blob_writer_commit(struct blob_writer *w)
{
	int rc;

	assert(w != NULL);
	if (w->error != 0) {
		rc = w->error;
		w->bs->ops->writer_abort(w);
		return rc;
	}
	return w->bs->ops->writer_commit(w);
}

void
blob_writer_abort(struct blob_writer *w)
{
	if (w != NULL)
		w->bs->ops->writer_abort(w);
}

/* Whole-object writes */

int
blob_put(struct blob_store *bs, const char *key, const void *buf,
    size_t len)
{
	struct blob_writer *w;
	int rc;

	rc = blob_writer_begin(bs, key, &w);
	if (rc != 0)
		return rc;
	(void)blob_writer_write(w, buf, len);
	return blob_writer_commit(w);
}

/* Reads all of fd into w, in chunks; 0 or -errno (w keeps it). */
static int
blob_copy_in(struct blob_writer *w, int fd, char *chunk)
{
	for (;;) {
		ssize_t n = read(fd, chunk, BLOB_CHUNK_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->error = -errno;
			return w->error;
		}
		if (n == 0)
			return 0;
		if (blob_writer_write(w, chunk, (size_t)n) != 0)
			return w->error;
	}
}

int
blob_put_file(struct blob_store *bs, const char *key, const char *path)
{
	struct blob_writer *w = NULL;
	char *chunk = NULL;
	int fd = -1, rc;

	assert(path != NULL);
	rc = blob_writer_begin(bs, key, &w);
	if (rc != 0)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	chunk = malloc(BLOB_CHUNK_SIZE);
	if (fd < 0 || chunk == NULL) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}

	(void)blob_copy_in(w, fd, chunk);
	rc = blob_writer_commit(w);
	w = NULL;
out:
	blob_writer_abort(w);
	if (fd >= 0)
		close(fd);
	free(chunk);
	return rc;
}

/* Reads */

int
blob_get_fd(struct blob_store *bs, const char *key, int fd)
{
	assert(bs != NULL && fd >= 0);
	if (!blob_key_valid(key))
		return -EINVAL;
	return bs->ops->get_fd(bs, key, fd);
}

int
blob_open_fd(struct blob_store *bs, const char *key, int *fd,
    uint64_t *size)
{
	assert(bs != NULL && fd != NULL && size != NULL);
	*fd = -1;
	if (!blob_key_valid(key))
		return -EINVAL;
	if (bs->ops->open_fd == NULL)
		return -ENOTSUP;
	return bs->ops->open_fd(bs, key, fd, size);
}

int
blob_get_stream(struct blob_store *bs, const char *key,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx)
{
	assert(bs != NULL && fn != NULL);
	if (!blob_key_valid(key))
		return -EINVAL;
	return bs->ops->get_stream(bs, key, fn, ctx);
}

/* Appends a chunk to a struct blob_buffer, keeping room for a NUL. */
static int
blob_buffer_add(void *ctx, const void *buf, size_t len)
{
	struct blob_buffer *b = ctx;
	size_t cap, need;
	char *data;

	if (len > b->max - b->len)
		return -EFBIG;
	/* b->max < SIZE_MAX, so need cannot overflow. */
	need = b->len + len + 1;
	if (need > b->cap) {
		cap = b->cap == 0 ? 256 : b->cap;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		data = realloc(b->data, cap);
		if (data == NULL)
			return -ENOMEM;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

int
blob_get(struct blob_store *bs, const char *key, size_t max, char **buf,
    size_t *len)
{
	struct blob_buffer b = { .max = max < SIZE_MAX ? max : SIZE_MAX - 1 };
	int rc;

	assert(buf != NULL && len != NULL);
	*buf = NULL;
	*len = 0;
	rc = blob_get_stream(bs, key, blob_buffer_add, &b);
	if (rc == 0 && b.data == NULL) {
		/* An empty object still gets its NUL. */
		b.data = malloc(1);
		rc = b.data == NULL ? -ENOMEM : 0;
	}
	if (rc != 0) {
		free(b.data);
		return rc;
	}

	b.data[b.len] = '\0';
	*buf = b.data;
	*len = b.len;
	return 0;
}

int
blob_stat(struct blob_store *bs, const char *key, struct blob_stat *st)
{
	assert(bs != NULL && st != NULL);
	if (!blob_key_valid(key))
		return -EINVAL;
	return bs->ops->stat(bs, key, st);
}

/* Removal */

int
blob_delete(struct blob_store *bs, const char *key)
{
	assert(bs != NULL);
	if (!blob_key_valid(key))
		return -EINVAL;
	return bs->ops->remove(bs, key);
}

int
blob_delete_prefix(struct blob_store *bs, const char *prefix,
    size_t *removed)
{
	size_t count = 0;
	int rc;

	assert(bs != NULL);
	if (removed != NULL)
		*removed = 0;
	if (!blob_prefix_valid(prefix, 0))
		return -EINVAL;

	rc = bs->ops->remove_prefix(bs, prefix, &count);
	if (removed != NULL)
		*removed = count;
	return rc;
}

/* Listing */

/* Passes on only valid keys under the prefix. */
static int
blob_filter_key(void *ctx, const char *key, uint64_t size)
{
	struct blob_filter *f = ctx;

	if (strncmp(key, f->prefix, f->prefix_len) != 0 ||
	    !blob_key_valid(key))
		return 0;
	return f->fn(f->ctx, key, size);
}

int
blob_list(struct blob_store *bs, const char *prefix,
    int (*fn)(void *ctx, const char *key, uint64_t size), void *ctx)
{
	struct blob_filter f = { .prefix = prefix, .fn = fn, .ctx = ctx };

	assert(bs != NULL && fn != NULL);
	if (!blob_prefix_valid(prefix, 1))
		return -EINVAL;
	f.prefix_len = strlen(prefix);
	return bs->ops->list(bs, prefix, blob_filter_key, &f);
}

int
blob_temp_count(struct blob_store *bs, size_t *count)
{
	assert(bs != NULL && count != NULL);
	*count = 0;
	return bs->ops->temp_count(bs, count);
}
