/*
 * test_blob: the blob store on its local-folder backend.  Each test
 * gets a store rooted in its own mkdtemp() folder, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/core.h"
#include "core/log.h"

#define TEST_RACE_ROUNDS        300
#define TEST_RACE_READERS       3
#define TEST_BIG                (3 * BLOB_CHUNK_SIZE + 123)

struct test_env {
	char               dir[64];            /* mkdtemp folder */
	char               root[96];           /* dir/blobs, the store */
	struct blob_store *bs;
};

/* One row of the key table. */
struct test_key {
	const char *key;
	int         valid;
};

/* What the concurrent readers and the writer share. */
struct test_race {
	struct blob_store *bs;
	const char        *key;
	size_t             len_a;              /* all 'a' */
	size_t             len_b;              /* all 'b' */
	atomic_int         done;
	int                bad_reads;          /* torn, missing or error */
	int                bad_writes;
	int                reads;
	pthread_mutex_t    lock;
};

/* Setup and teardown */

static int
test_remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

static void
test_remove_tree(const char *path)
{
	(void)nftw(path, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
test_setup(void **state)
{
	struct test_env *env = calloc(1, sizeof(*env));
	char err[256];

	if (env == NULL)
		return -1;
	snprintf(env->dir, sizeof(env->dir), "/tmp/wharf-blob-XXXXXX");
	if (mkdtemp(env->dir) == NULL)
		goto fail;
	snprintf(env->root, sizeof(env->root), "%s/blobs", env->dir);
	env->bs = blob_open_local(env->root, err, sizeof(err));
	if (env->bs == NULL) {
		fprintf(stderr, "blob_open_local: %s\n", err);
		test_remove_tree(env->dir);
		goto fail;
	}
	*state = env;
	return 0;
fail:
	free(env);
	return -1;
}

static int
test_teardown(void **state)
{
	struct test_env *env = *state;

	blob_close(env->bs);
	test_remove_tree(env->dir);
	free(env);
	return 0;
}

/* Helpers */

/* The path of name under the store's root. */
static void
test_path(const struct test_env *env, const char *name, char *out,
    size_t len)
{
	assert_int_equal(util_fmt(out, len, "%s/%s", env->root, name), 0);
}

static int
test_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static size_t
test_temps(struct blob_store *bs)
{
	size_t count = 99;

	assert_int_equal(blob_temp_count(bs, &count), 0);
	return count;
}

/* Asserts that key holds exactly the len bytes at want. */
static void
test_expect(struct blob_store *bs, const char *key, const void *want,
    size_t len)
{
	size_t got_len = 0;
	char *got = NULL;

	assert_int_equal(blob_get(bs, key, SIZE_MAX, &got, &got_len), 0);
	assert_non_null(got);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, want, len);
	assert_int_equal(got[len], '\0');
	free(got);
}

/* A buffer of len bytes of a pattern that shows misplaced chunks. */
static char *
test_pattern(size_t len)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('A' + (i * 7 + i / 251) % 26);
	return buf;
}

/* Key validation */

static void
test_key_table(void **state)
{
	static const struct test_key table[] = {
		{ "a", 1 },
		{ "tenants/acme/builds/0b9f2c6e-1d7a-4c2b-9e1f-3a5b7c9d1e2f/"
		  "source.zip", 1 },
		{ "tenants/acme/deployments/b1/manifest.json", 1 },
		{ "pointers/acme/current.json", 1 },
		{ "a/.hidden", 1 },
		{ "a/...", 1 },
		{ "a/.tmp", 1 },
		{ "a.tmp/x", 1 },
		{ "Az09._~-/x", 1 },
		{ "", 0 },
		{ ".", 0 },
		{ "..", 0 },
		{ "a/../b", 0 },
		{ "a/..", 0 },
		{ "a/.", 0 },
		{ "./a", 0 },
		{ "../a", 0 },
		{ "/abs", 0 },
		{ "/", 0 },
		{ "a//b", 0 },
		{ "a/", 0 },
		{ "a\\b", 0 },
		{ "..\\a", 0 },
		{ ".tmp/x", 0 },
		{ ".tmp", 0 },
		{ ".tmpx/y", 0 },
		{ ".hidden", 0 },
		{ "a b", 0 },
		{ " a", 0 },
		{ "a\tb", 0 },
		{ "a\nb", 0 },
		{ "a\rb", 0 },
		{ "\x01", 0 },
		{ "a\x1b[31m", 0 },
		{ "a\x7f", 0 },
		{ "caf\xc3\xa9", 0 },
		{ "a\xff", 0 },
		{ "a:b", 0 },
		{ "a?b", 0 },
		{ "a#b", 0 },
		{ "a*b", 0 },
		{ "a%2e%2e", 0 },
		{ "a\"b", 0 },
		{ "a'b", 0 },
		{ "a;b", 0 },
		{ "$(x)", 0 },
		{ "a|b", 0 },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (blob_key_valid(table[i].key) != table[i].valid)
			fail_msg("key #%zu \"%s\": expected %d", i,
			    table[i].key, table[i].valid);
	}
	assert_int_equal(blob_key_valid(NULL), 0);
}

static void
test_key_lengths(void **state)
{
	char key[BLOB_KEY_MAX + 2];

	/* Segments of 255: the longest key is 1024 bytes. */
	memset(key, 'k', sizeof(key));
	for (size_t i = 200; i < BLOB_KEY_MAX - 200; i += 201)
		key[i] = '/';
	key[BLOB_KEY_MAX] = '\0';
	assert_int_equal(key[BLOB_KEY_MAX - 1], 'k');
	assert_int_equal(blob_key_valid(key), 1);
	key[BLOB_KEY_MAX] = 'k';
	key[BLOB_KEY_MAX + 1] = '\0';
	assert_int_equal(blob_key_valid(key), 0);

	/* One segment too long. */
	memset(key, 'k', BLOB_SEGMENT_MAX + 1);
	key[BLOB_SEGMENT_MAX] = '\0';
	assert_int_equal(blob_key_valid(key), 1);
	key[BLOB_SEGMENT_MAX] = 'k';
	key[BLOB_SEGMENT_MAX + 1] = '\0';
	assert_int_equal(blob_key_valid(key), 0);
}

static void
test_key_nul(void **state)
{
	assert_int_equal(blob_key_valid_len("a\0b", 3), 0);
	assert_int_equal(blob_key_valid_len("a/\0", 3), 0);
	assert_int_equal(blob_key_valid_len("\0", 1), 0);
	assert_int_equal(blob_key_valid_len("ab", 2), 1);
	assert_int_equal(blob_key_valid_len("abc", 2), 1);
	assert_int_equal(blob_key_valid_len("a/b", 0), 0);
	assert_int_equal(blob_key_valid_len(NULL, 1), 0);
}

static int
test_list_count(void *ctx, const char *key, uint64_t size)
{
	(*(size_t *)ctx)++;
	return 0;
}

static int
test_stream_ignore(void *ctx, const void *buf, size_t len)
{
	return 0;
}

/* Every call refuses a bad key or prefix and touches nothing. */
static void
test_key_everywhere(void **state)
{
	struct test_env *env = *state;
	struct blob_writer *w = (struct blob_writer *)&w;
	struct blob_stat st;
	size_t len = 7, n = 0;
	char *buf = (char *)&buf;

	assert_int_equal(blob_put(env->bs, "../x", "x", 1), -EINVAL);
	assert_int_equal(blob_put(env->bs, ".tmp/x", "x", 1), -EINVAL);
	assert_int_equal(blob_put_file(env->bs, "a//b", "/etc/hostname"),
	    -EINVAL);
	assert_int_equal(blob_writer_begin(env->bs, "/x", &w), -EINVAL);
	assert_null(w);
	assert_int_equal(blob_get(env->bs, "..", 10, &buf, &len), -EINVAL);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(blob_get_fd(env->bs, "a/", 1), -EINVAL);
	assert_int_equal(blob_get_stream(env->bs, "a\\b",
	    test_stream_ignore, NULL), -EINVAL);
	assert_int_equal(blob_stat(env->bs, "a b", &st), -EINVAL);
	assert_int_equal(blob_delete(env->bs, "./a"), -EINVAL);

	/* Prefixes: one trailing '/' is fine, "" only for listing. */
	assert_int_equal(blob_delete_prefix(env->bs, "", &n), -EINVAL);
	assert_int_equal(blob_delete_prefix(env->bs, "/", &n), -EINVAL);
	assert_int_equal(blob_delete_prefix(env->bs, "a//", &n), -EINVAL);
	assert_int_equal(blob_delete_prefix(env->bs, "../", &n), -EINVAL);
	assert_int_equal(blob_delete_prefix(env->bs, ".tmp/", &n), -EINVAL);
	assert_int_equal(blob_delete_prefix(env->bs, "a/", &n), 0);
	assert_int_equal(blob_list(env->bs, "..", test_list_count, &n),
	    -EINVAL);
	assert_int_equal(blob_list(env->bs, "/", test_list_count, &n),
	    -EINVAL);
	assert_int_equal(blob_list(env->bs, "", test_list_count, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(test_temps(env->bs), 0);
}

/* Writes and reads */

static void
test_put_get(void **state)
{
	struct test_env *env = *state;
	size_t len = 1;
	char *buf = NULL;

	assert_int_equal(blob_put(env->bs, "pointers/acme/current.json",
	    "{\"v\":1}", 7), 0);
	test_expect(env->bs, "pointers/acme/current.json", "{\"v\":1}", 7);

	/* An empty object is an empty, NUL-terminated buffer. */
	assert_int_equal(blob_put(env->bs, "empty", NULL, 0), 0);
	assert_int_equal(blob_get(env->bs, "empty", 0, &buf, &len), 0);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);

	assert_int_equal(blob_get(env->bs, "missing", 10, &buf, &len),
	    -ENOENT);
	assert_null(buf);
	assert_int_equal(blob_get(env->bs, "pointers/acme/current.json/x",
	    10, &buf, &len), -ENOENT);
	assert_int_equal(test_temps(env->bs), 0);
}

static void
test_writer_chunks(void **state)
{
	static const size_t sizes[] = { 1, 0, 4096, BLOB_CHUNK_SIZE, 17,
	    BLOB_CHUNK_SIZE + 1, 70000 };
	struct test_env *env = *state;
	struct blob_writer *w;
	size_t total = 0, off = 0;
	char *data;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		total += sizes[i];
	data = test_pattern(total);

	assert_int_equal(blob_writer_begin(env->bs, "tenants/a/builds/b/"
	    "source.zip", &w), 0);
	assert_int_equal(test_temps(env->bs), 1);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(blob_writer_write(w, data + off, sizes[i]),
		    0);
		off += sizes[i];
	}

	/* Invisible until committed. */
	assert_int_equal(blob_get(env->bs, "tenants/a/builds/b/source.zip",
	    SIZE_MAX, &(char *){ NULL }, &(size_t){ 0 }), -ENOENT);
	assert_int_equal(blob_writer_commit(w), 0);
	test_expect(env->bs, "tenants/a/builds/b/source.zip", data, total);
	assert_int_equal(test_temps(env->bs), 0);
	free(data);
}

static void
test_writer_abort(void **state)
{
	struct test_env *env = *state;
	struct blob_writer *w;
	struct blob_stat st;
	char path[256];

	assert_int_equal(blob_writer_begin(env->bs, "tenants/a/log", &w), 0);
	assert_int_equal(blob_writer_write(w, "partial", 7), 0);
	assert_int_equal(test_temps(env->bs), 1);
	blob_writer_abort(w);

	assert_int_equal(test_temps(env->bs), 0);
	assert_int_equal(blob_stat(env->bs, "tenants/a/log", &st), -ENOENT);
	test_path(env, "tenants", path, sizeof(path));
	assert_false(test_exists(path));
	blob_writer_abort(NULL);
}

static void
test_overwrite(void **state)
{
	struct test_env *env = *state;
	struct blob_writer *w;

	assert_int_equal(blob_put(env->bs, "k", "old content", 11), 0);
	assert_int_equal(blob_put(env->bs, "k", "new", 3), 0);
	test_expect(env->bs, "k", "new", 3);

	/* An aborted overwrite leaves the object as it was. */
	assert_int_equal(blob_writer_begin(env->bs, "k", &w), 0);
	assert_int_equal(blob_writer_write(w, "never", 5), 0);
	blob_writer_abort(w);
	test_expect(env->bs, "k", "new", 3);
	assert_int_equal(test_temps(env->bs), 0);
}

static void
test_stat(void **state)
{
	struct test_env *env = *state;
	int64_t before = util_now_ms();
	struct blob_stat st;

	assert_int_equal(blob_put(env->bs, "a/b", "12345", 5), 0);
	assert_int_equal(blob_stat(env->bs, "a/b", &st), 0);
	assert_int_equal(st.size, 5);
	assert_true(st.mtime_ms >= before - 2000);
	assert_true(st.mtime_ms <= util_now_ms() + 2000);

	/* A folder is no object. */
	assert_int_equal(blob_stat(env->bs, "a", &st), -ENOENT);
	assert_int_equal(blob_stat(env->bs, "a/c", &st), -ENOENT);
	assert_int_equal(blob_stat(env->bs, "a/b/c", &st), -ENOENT);
}

static void
test_put_file(void **state)
{
	struct test_env *env = *state;
	char path[128], *data = test_pattern(TEST_BIG);
	int fd;

	snprintf(path, sizeof(path), "%s/upload", env->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, TEST_BIG), TEST_BIG);
	close(fd);

	assert_int_equal(blob_put_file(env->bs, "up/source.zip", path), 0);
	test_expect(env->bs, "up/source.zip", data, TEST_BIG);
	assert_int_equal(blob_put_file(env->bs, "up/none", "/nonexistent/f"),
	    -ENOENT);
	assert_int_equal(test_temps(env->bs), 0);
	free(data);
}

/* One chunk of a stream: checks the chunk size, appends. */
static int
test_stream_collect(void *ctx, const void *buf, size_t len)
{
	char **cursor = ctx;

	if (len == 0 || len > BLOB_CHUNK_SIZE)
		return -1000;
	memcpy(*cursor, buf, len);
	*cursor += len;
	return 0;
}

static int
test_stream_stop(void *ctx, const void *buf, size_t len)
{
	(*(int *)ctx)++;
	return 42;
}

static void
test_get_stream(void **state)
{
	struct test_env *env = *state;
	char *data = test_pattern(TEST_BIG);
	char *copy = malloc(TEST_BIG), *cursor = copy;
	int calls = 0;

	assert_int_equal(blob_put(env->bs, "big", data, TEST_BIG), 0);
	assert_int_equal(blob_get_stream(env->bs, "big", test_stream_collect,
	    &cursor), 0);
	assert_int_equal(cursor - copy, TEST_BIG);
	assert_memory_equal(copy, data, TEST_BIG);

	assert_int_equal(blob_get_stream(env->bs, "big", test_stream_stop,
	    &calls), 42);
	assert_int_equal(calls, 1);
	assert_int_equal(blob_get_stream(env->bs, "nope", test_stream_stop,
	    &calls), -ENOENT);
	free(copy);
	free(data);
}

/* Reads what fd holds from its start. */
static void
test_fd_expect(int fd, const char *want, size_t len)
{
	char *got = malloc(len + 1);

	assert_int_equal(pread(fd, got, len + 1, 0), len);
	assert_memory_equal(got, want, len);
	free(got);
}

static void
test_get_fd(void **state)
{
	struct test_env *env = *state;
	char path[128], *data = test_pattern(TEST_BIG), *copy;
	char small[64];
	int fd, pipefd[2];

	assert_int_equal(blob_put(env->bs, "big", data, TEST_BIG), 0);

	/* A file, from its current offset (copy_file_range). */
	snprintf(path, sizeof(path), "%s/out", env->dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "HEAD", 4), 4);
	assert_int_equal(blob_get_fd(env->bs, "big", fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 4 + TEST_BIG);
	assert_int_equal(pread(fd, small, 4, 0), 4);
	assert_memory_equal(small, "HEAD", 4);
	copy = malloc(TEST_BIG);
	assert_int_equal(pread(fd, copy, TEST_BIG, 4), TEST_BIG);
	assert_memory_equal(copy, data, TEST_BIG);
	free(copy);
	close(fd);

	/* O_APPEND refuses the in-kernel copies: read/write then. */
	fd = open(path, O_WRONLY | O_TRUNC | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(blob_get_fd(env->bs, "big", fd), 0);
	close(fd);
	fd = open(path, O_RDONLY);
	test_fd_expect(fd, data, TEST_BIG);
	close(fd);

	/* A pipe (sendfile). */
	assert_int_equal(blob_put(env->bs, "small", "through a pipe", 14), 0);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(blob_get_fd(env->bs, "small", pipefd[1]), 0);
	assert_int_equal(read(pipefd[0], small, sizeof(small)), 14);
	assert_memory_equal(small, "through a pipe", 14);
	close(pipefd[0]);
	close(pipefd[1]);

	assert_int_equal(blob_get_fd(env->bs, "none", 1), -ENOENT);
	free(data);
}

static void
test_get_too_big(void **state)
{
	struct test_env *env = *state;
	char *buf = (char *)&buf, *data = test_pattern(TEST_BIG);
	size_t len = 5;

	assert_int_equal(blob_put(env->bs, "hundred", data, 100), 0);
	assert_int_equal(blob_get(env->bs, "hundred", 99, &buf, &len),
	    -EFBIG);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(blob_get(env->bs, "hundred", 0, &buf, &len), -EFBIG);
	assert_int_equal(blob_get(env->bs, "hundred", 100, &buf, &len), 0);
	assert_int_equal(len, 100);
	free(buf);

	/* Bigger than a chunk: stops early, still -EFBIG. */
	assert_int_equal(blob_put(env->bs, "big", data, TEST_BIG), 0);
	assert_int_equal(blob_get(env->bs, "big", BLOB_CHUNK_SIZE + 1, &buf,
	    &len), -EFBIG);
	assert_int_equal(blob_get(env->bs, "big", TEST_BIG - 1, &buf, &len),
	    -EFBIG);
	free(data);
}

/* Removal */

static void
test_delete(void **state)
{
	struct test_env *env = *state;
	struct blob_stat st;
	char path[256];

	assert_int_equal(blob_put(env->bs, "t/a/b/c", "1", 1), 0);
	assert_int_equal(blob_put(env->bs, "t/keep", "2", 1), 0);
	assert_int_equal(blob_delete(env->bs, "t/a/b/c"), 0);
	assert_int_equal(blob_stat(env->bs, "t/a/b/c", &st), -ENOENT);
	assert_int_equal(blob_delete(env->bs, "t/a/b/c"), -ENOENT);

	/* Empty folders went, up to the one still holding t/keep. */
	test_path(env, "t/a", path, sizeof(path));
	assert_false(test_exists(path));
	test_path(env, "t", path, sizeof(path));
	assert_true(test_exists(path));
	assert_int_equal(blob_delete(env->bs, "t/keep"), 0);
	assert_false(test_exists(path));
	assert_true(test_exists(env->root));

	/* A folder is not an object; neither is a path through a file. */
	assert_int_equal(blob_put(env->bs, "d/e", "3", 1), 0);
	assert_int_equal(blob_delete(env->bs, "d"), -ENOENT);
	assert_int_equal(blob_delete(env->bs, "d/e/f"), -ENOENT);
	assert_int_equal(blob_delete(env->bs, "nothing/here"), -ENOENT);
	test_expect(env->bs, "d/e", "3", 1);
}

static void
test_delete_prefix(void **state)
{
	static const char *const keys[] = { "tenants/a/x", "tenants/a/sub/y",
	    "tenants/a/sub/deeper/z", "tenants/ab/z", "tenants/b/w", "top" };
	struct test_env *env = *state;
	struct blob_writer *w;
	size_t removed = 99;
	char path[256];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(blob_put(env->bs, keys[i], "v", 1), 0);
	assert_int_equal(blob_writer_begin(env->bs, "tenants/a/pending", &w),
	    0);

	assert_int_equal(blob_delete_prefix(env->bs, "tenants/a/", &removed),
	    0);
	assert_int_equal(removed, 3);
	test_path(env, "tenants/a", path, sizeof(path));
	assert_false(test_exists(path));
	test_expect(env->bs, "tenants/ab/z", "v", 1);

	/* A string prefix: "tenants/a" also covers "tenants/ab". */
	assert_int_equal(blob_delete_prefix(env->bs, "tenants/a", &removed),
	    0);
	assert_int_equal(removed, 1);
	assert_int_equal(blob_delete_prefix(env->bs, "tenants/q/", &removed),
	    0);
	assert_int_equal(removed, 0);
	assert_int_equal(blob_delete_prefix(env->bs, "nowhere/", NULL), 0);
	test_expect(env->bs, "tenants/b/w", "v", 1);

	/* Temp files are not objects, and survive. */
	assert_int_equal(blob_delete_prefix(env->bs, "t", &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(test_temps(env->bs), 1);
	assert_int_equal(blob_writer_commit(w), 0);
	test_expect(env->bs, "tenants/a/pending", "", 0);
}

/* Listing */

struct test_listing {
	char     keys[8][64];
	uint64_t sizes[8];
	size_t   count;
	size_t   stop_after;                   /* 0: never */
};

static int
test_list_collect(void *ctx, const char *key, uint64_t size)
{
	struct test_listing *l = ctx;

	if (l->count >= 8)
		return -1000;
	snprintf(l->keys[l->count], sizeof(l->keys[0]), "%s", key);
	l->sizes[l->count++] = size;
	return l->count == l->stop_after ? 7 : 0;
}

/* The size listed for key, or -1 when it was not listed. */
static int64_t
test_listed(const struct test_listing *l, const char *key)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->keys[i], key) == 0)
			return (int64_t)l->sizes[i];
	return -1;
}

static void
test_list(void **state)
{
	struct test_env *env = *state;
	struct test_listing l;
	struct blob_writer *w;

	assert_int_equal(blob_put(env->bs, "tenants/a/x", "1", 1), 0);
	assert_int_equal(blob_put(env->bs, "tenants/a/s/y", "22", 2), 0);
	assert_int_equal(blob_put(env->bs, "tenants/ab/z", "333", 3), 0);
	assert_int_equal(blob_put(env->bs, "pointers/a/current.json", "{}",
	    2), 0);
	assert_int_equal(blob_writer_begin(env->bs, "tenants/a/tmp", &w), 0);

	memset(&l, 0, sizeof(l));
	assert_int_equal(blob_list(env->bs, "", test_list_collect, &l), 0);
	assert_int_equal(l.count, 4);
	assert_int_equal(test_listed(&l, "tenants/a/s/y"), 2);
	assert_int_equal(test_listed(&l, "pointers/a/current.json"), 2);

	memset(&l, 0, sizeof(l));
	assert_int_equal(blob_list(env->bs, "tenants/a/", test_list_collect,
	    &l), 0);
	assert_int_equal(l.count, 2);
	assert_int_equal(test_listed(&l, "tenants/a/x"), 1);
	assert_int_equal(test_listed(&l, "tenants/a/s/y"), 2);

	memset(&l, 0, sizeof(l));
	assert_int_equal(blob_list(env->bs, "tenants/a", test_list_collect,
	    &l), 0);
	assert_int_equal(l.count, 3);
	assert_int_equal(test_listed(&l, "tenants/ab/z"), 3);

	memset(&l, 0, sizeof(l));
	assert_int_equal(blob_list(env->bs, "tenants/a/s/y",
	    test_list_collect, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(blob_list(env->bs, "none/", test_list_collect, &l),
	    0);
	assert_int_equal(blob_list(env->bs, "tenants/a/x/", test_list_collect,
	    &l), 0);
	assert_int_equal(l.count, 1);

	/* fn's non-zero return stops the walk and comes back. */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(blob_list(env->bs, "", test_list_collect, &l), 7);
	assert_int_equal(l.count, 1);
	blob_writer_abort(w);
}

/* The local backend: a key cannot also be a folder of another. */
static void
test_key_folder_clash(void **state)
{
	struct test_env *env = *state;

	assert_int_equal(blob_put(env->bs, "a/b", "1", 1), 0);
	assert_int_equal(blob_put(env->bs, "a", "2", 1), -EISDIR);
	assert_int_equal(blob_put(env->bs, "a/b/c", "3", 1), -ENOTDIR);
	assert_int_equal(test_temps(env->bs), 0);
	test_expect(env->bs, "a/b", "1", 1);
}

/* Temp files at open */

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t
test_dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void
test_make_temp(const struct test_env *env, const char *name,
    time_t mtime)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/.tmp/%s", env->root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "half", 4), 4);
	if (mtime != 0) {
		struct timespec times[2] = { { mtime, 0 }, { mtime, 0 } };

		assert_int_equal(futimens(fd, times), 0);
	}
	close(fd);
}

static void
test_temp_cleanup(void **state)
{
	struct test_env *env = *state;
	char dead[64], live[64], idle[64], path[256], err[256];

	snprintf(dead, sizeof(dead), "%ld.00112233aabbccdd",
	    (long)test_dead_pid());
	snprintf(live, sizeof(live), "%ld.0123456789abcdef", (long)getpid());
	snprintf(idle, sizeof(idle), "%ld.fedcba9876543210", (long)getpid());
	test_make_temp(env, dead, 0);
	test_make_temp(env, live, 0);
	test_make_temp(env, idle, time(NULL) - BLOB_TEMP_STALE_SEC - 60);
	test_make_temp(env, "0.bad", 0);
	assert_int_equal(test_temps(env->bs), 4);

	/* A second open, as after a crash and restart. */
	blob_close(env->bs);
	env->bs = blob_open_local(env->root, err, sizeof(err));
	assert_non_null(env->bs);
	assert_int_equal(test_temps(env->bs), 2);
	snprintf(path, sizeof(path), "%s/.tmp/%s", env->root, live);
	assert_true(test_exists(path));
	snprintf(path, sizeof(path), "%s/.tmp/0.bad", env->root);
	assert_true(test_exists(path));
}

static void
test_open_fails(void **state)
{
	struct test_env *env = *state;
	char path[128], err[256] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/file", env->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(blob_open_local(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
}

/* Symlinks */

static void
test_symlink(void **state)
{
	struct test_env *env = *state;
	char secret[256], outside[128], link[256], planted[256];
	struct test_listing l;
	struct blob_stat st;
	size_t len, removed;
	char *buf = NULL;
	int fd;

	/* A secret file and folder outside the store. */
	snprintf(outside, sizeof(outside), "%s/outside", env->dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(secret, sizeof(secret), "%s/secret", outside);
	fd = open(secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);

	/* A symlink planted at a key: -ELOOP, never the secret. */
	assert_int_equal(blob_put(env->bs, "tenants/acme/ok", "ok", 2), 0);
	test_path(env, "tenants/acme/evil", planted, sizeof(planted));
	assert_int_equal(symlink(secret, planted), 0);
	assert_int_equal(blob_get(env->bs, "tenants/acme/evil", 100, &buf,
	    &len), -ELOOP);
	assert_null(buf);
	assert_int_equal(blob_stat(env->bs, "tenants/acme/evil", &st),
	    -ELOOP);
	assert_int_equal(blob_get_fd(env->bs, "tenants/acme/evil", 1),
	    -ELOOP);

	/* A symlinked folder on the way is not followed either. */
	test_path(env, "tenants/link", planted, sizeof(planted));
	assert_int_equal(symlink(outside, planted), 0);
	assert_int_equal(blob_get(env->bs, "tenants/link/secret", 100, &buf,
	    &len), -ELOOP);
	assert_int_equal(blob_put(env->bs, "tenants/link/new", "x", 1),
	    -ELOOP);
	snprintf(link, sizeof(link), "%s/new", outside);
	assert_false(test_exists(link));

	/* Listing and removal see the links, not through them. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(blob_list(env->bs, "", test_list_collect, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(test_listed(&l, "tenants/acme/ok"), 2);
	assert_int_equal(blob_delete(env->bs, "tenants/acme/evil"), 0);
	assert_int_equal(blob_delete_prefix(env->bs, "tenants/", &removed),
	    0);
	assert_int_equal(removed, 1);
	assert_true(test_exists(secret));
	assert_int_equal(test_temps(env->bs), 0);
}

/* Readers racing a writer of the same key */

/* Whether buf is len bytes of c. */
static int
test_all(const char *buf, size_t len, char c)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != c)
			return 0;
	return 1;
}

static void *
test_race_writer(void *arg)
{
	struct test_race *r = arg;
	char *a = malloc(r->len_a), *b = malloc(r->len_b);
	int bad = 0;

	memset(a, 'a', r->len_a);
	memset(b, 'b', r->len_b);
	for (int i = 0; i < TEST_RACE_ROUNDS; i++) {
		if (blob_put(r->bs, r->key, i % 2 ? a : b,
		    i % 2 ? r->len_a : r->len_b) != 0)
			bad++;
	}
	pthread_mutex_lock(&r->lock);
	r->bad_writes += bad;
	pthread_mutex_unlock(&r->lock);
	r->done = 1;
	free(a);
	free(b);
	return NULL;
}

static void *
test_race_reader(void *arg)
{
	struct test_race *r = arg;
	int bad = 0, reads = 0;
	size_t len;
	char *buf;

	while (!r->done || reads == 0) {
		if (blob_get(r->bs, r->key, SIZE_MAX, &buf, &len) != 0) {
			bad++;
		} else if (!(len == r->len_a && test_all(buf, len, 'a')) &&
		    !(len == r->len_b && test_all(buf, len, 'b'))) {
			bad++;
			free(buf);
		} else {
			free(buf);
		}
		reads++;
	}
	pthread_mutex_lock(&r->lock);
	r->bad_reads += bad;
	r->reads += reads;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void
test_race(void **state)
{
	struct test_env *env = *state;
	pthread_t writer, readers[TEST_RACE_READERS];
	struct test_race r = {
		.bs = env->bs,
		.key = "tenants/acme/objects/race",
		.len_a = 3 * BLOB_CHUNK_SIZE + 1,
		.len_b = 1000,
		.lock = PTHREAD_MUTEX_INITIALIZER,
	};
	char *first = malloc(r.len_b);

	/* Present from the start: a reader never finds it missing. */
	memset(first, 'b', r.len_b);
	assert_int_equal(blob_put(env->bs, r.key, first, r.len_b), 0);
	free(first);

	for (int i = 0; i < TEST_RACE_READERS; i++)
		assert_int_equal(pthread_create(&readers[i], NULL,
		    test_race_reader, &r), 0);
	assert_int_equal(pthread_create(&writer, NULL, test_race_writer, &r),
	    0);
	assert_int_equal(pthread_join(writer, NULL), 0);
	for (int i = 0; i < TEST_RACE_READERS; i++)
		assert_int_equal(pthread_join(readers[i], NULL), 0);

	assert_int_equal(r.bad_writes, 0);
	assert_int_equal(r.bad_reads, 0);
	assert_true(r.reads >= TEST_RACE_READERS);
	assert_int_equal(test_temps(env->bs), 0);
}

/* Deletes racing writes under one folder: no write is lost to pruning. */
static void *
test_prune_deleter(void *arg)
{
	struct test_race *r = arg;

	while (!r->done)
		(void)blob_delete(r->bs, "p/q/r/gone");
	return NULL;
}

static void
test_prune_race(void **state)
{
	struct test_env *env = *state;
	struct test_race r = { .bs = env->bs, .done = 0 };
	pthread_t deleter;
	char key[64];
	int bad = 0;

	assert_int_equal(pthread_create(&deleter, NULL, test_prune_deleter,
	    &r), 0);
	for (int i = 0; i < TEST_RACE_ROUNDS; i++) {
		snprintf(key, sizeof(key), "p/q/r/%s", i % 2 ? "gone" : "kept");
		if (blob_put(env->bs, key, "x", 1) != 0)
			bad++;
		if (i % 2 == 0 && blob_delete(env->bs, key) != 0)
			bad++;
	}
	r.done = 1;
	assert_int_equal(pthread_join(deleter, NULL), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(test_temps(env->bs), 0);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_key_lengths),
		cmocka_unit_test(test_key_nul),
		TEST(test_key_everywhere),
		TEST(test_put_get),
		TEST(test_writer_chunks),
		TEST(test_writer_abort),
		TEST(test_overwrite),
		TEST(test_stat),
		TEST(test_put_file),
		TEST(test_get_stream),
		TEST(test_get_fd),
		TEST(test_get_too_big),
		TEST(test_delete),
		TEST(test_delete_prefix),
		TEST(test_list),
		TEST(test_key_folder_clash),
		TEST(test_temp_cleanup),
		TEST(test_open_fails),
		TEST(test_symlink),
		TEST(test_race),
		TEST(test_prune_race),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
