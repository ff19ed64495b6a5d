/*
 * test_upload_pipe: the upload's helper threads, which hash and write
 * the file through a blob writer.  Each test gets a local blob
 * store in its own mkdtemp() folder, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/evp.h>

#include "api/upload_pipe.h"
#include "blob/blob.h"
#include "core/log.h"

#define TEST_KEY  "tenants/a/builds/b/source.zip"

struct test_env {
	char               dir[64];            /* mkdtemp folder */
	struct blob_store *bs;
};

static int
test_remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

static int
test_setup(void **state)
{
	struct test_env *env = calloc(1, sizeof(*env));
	char root[96], err[256];

	if (env == NULL)
		return -1;
	snprintf(env->dir, sizeof(env->dir), "/tmp/wharf-pipe-XXXXXX");
	if (mkdtemp(env->dir) == NULL) {
		free(env);
		return -1;
	}
	snprintf(root, sizeof(root), "%s/blobs", env->dir);
	env->bs = blob_open_local(root, err, sizeof(err));
	if (env->bs == NULL) {
		fprintf(stderr, "blob_open_local: %s\n", err);
		(void)nftw(env->dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(env);
		return -1;
	}
	*state = env;
	return 0;
}

static int
test_teardown(void **state)
{
	struct test_env *env = *state;

	blob_close(env->bs);
	(void)nftw(env->dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(env);
	return 0;
}

/* Helpers */

/* len bytes of a pattern that shows misplaced or repeated buffers. */
static char *
test_pattern(size_t len)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('A' + (i * 7 + i / 251) % 26);
	return buf;
}

static size_t
test_temps(struct blob_store *bs)
{
	size_t count = 99;

	assert_int_equal(blob_temp_count(bs, &count), 0);
	return count;
}

/*
 * Streams data (len bytes) through a pipe in pieces of step bytes,
 * commits, and checks the object and the digest.
 */
static void
test_roundtrip(struct blob_store *bs, const char *data, size_t len,
    size_t step)
{
	unsigned char sha[UPLOAD_PIPE_SHA_LEN], want[UPLOAD_PIPE_SHA_LEN];
	struct upload_pipe *p;
	struct blob_writer *w;
	size_t got_len = 0, n;
	char *got = NULL;

	assert_int_equal(blob_writer_begin(bs, TEST_KEY, &w), 0);
	assert_int_equal(upload_pipe_start(w, &p), 0);
	for (size_t off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		assert_int_equal(upload_pipe_write(p, data + off, n), 0);
	}
	assert_int_equal(upload_pipe_finish(p, sha), 0);
	upload_pipe_free(p);
	assert_int_equal(blob_writer_commit(w), 0);

	assert_int_equal(EVP_Digest(data, len, want, NULL, EVP_sha256(),
	    NULL), 1);
	assert_memory_equal(sha, want, sizeof(want));
	assert_int_equal(blob_get(bs, TEST_KEY, SIZE_MAX, &got, &got_len), 0);
	assert_int_equal(got_len, len);
	if (len > 0)
		assert_memory_equal(got, data, len);
	free(got);
	assert_int_equal(test_temps(bs), 0);
}

/* Tests */

/* Sizes around the buffer's, in pieces that do and do not divide it. */
static void
test_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 4, UPLOAD_PIPE_BUF - 1,
	    UPLOAD_PIPE_BUF, UPLOAD_PIPE_BUF + 1,
	    (UPLOAD_PIPE_BUFS + 3) * (size_t)UPLOAD_PIPE_BUF + 123 };
	static const size_t steps[] = { 1000, 65536, UPLOAD_PIPE_BUF,
	    3 * UPLOAD_PIPE_BUF };
	struct test_env *env = *state;
	size_t max = sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
	char *data = test_pattern(max);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++)
			test_roundtrip(env->bs, data, sizes[i], steps[j]);
	free(data);
}

/* Freed mid-stream, with buffers still queued: nothing is left. */
static void
test_free_midway(void **state)
{
	struct test_env *env = *state;
	size_t len = (UPLOAD_PIPE_BUFS + 2) * (size_t)UPLOAD_PIPE_BUF + 5;
	char *data = test_pattern(len);
	struct upload_pipe *p;
	struct blob_writer *w;

	for (size_t cut = 0; cut <= len; cut += UPLOAD_PIPE_BUF / 2) {
		assert_int_equal(blob_writer_begin(env->bs, TEST_KEY, &w), 0);
		assert_int_equal(upload_pipe_start(w, &p), 0);
		assert_int_equal(upload_pipe_write(p, data, cut), 0);
		upload_pipe_free(p);
		blob_writer_abort(w);
		assert_int_equal(test_temps(env->bs), 0);
	}
	upload_pipe_free(NULL);
	free(data);
}

/*
 * A write that fails on the helper (the file size limit: EFBIG) comes
 * back from a later write or from finish, and the pipe still frees.
 */
static void
test_write_error(void **state)
{
	struct test_env *env = *state;
	size_t len = (UPLOAD_PIPE_BUFS + 4) * (size_t)UPLOAD_PIPE_BUF;
	char *data = test_pattern(len);
	unsigned char sha[UPLOAD_PIPE_SHA_LEN];
	struct rlimit old, low = { UPLOAD_PIPE_BUF / 2, 0 };
	struct upload_pipe *p;
	struct blob_writer *w;
	int rc = 0;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	low.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(blob_writer_begin(env->bs, TEST_KEY, &w), 0);
	assert_int_equal(upload_pipe_start(w, &p), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
	for (size_t off = 0; off < len && rc == 0; off += UPLOAD_PIPE_BUF)
		rc = upload_pipe_write(p, data + off, UPLOAD_PIPE_BUF);
	if (rc == 0)
		rc = upload_pipe_finish(p, sha);
	assert_int_equal(rc, -EFBIG);
	assert_int_equal(upload_pipe_write(p, data, 1), -EFBIG);
	upload_pipe_free(p);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(blob_writer_commit(w), -EFBIG);
	assert_int_equal(test_temps(env->bs), 0);
	free(data);
}

/*
 * Past UPLOAD_PIPES_MAX pipes at once, a pipe works on the caller's
 * thread, with the same result; a place freed is taken again.
 */
static void
test_bounded(void **state)
{
	enum { N = UPLOAD_PIPES_MAX + 2 };
	struct test_env *env = *state;
	size_t len = 2 * (size_t)UPLOAD_PIPE_BUF + 77;
	char *data = test_pattern(len), key[64], *got;
	unsigned char sha[UPLOAD_PIPE_SHA_LEN], want[UPLOAD_PIPE_SHA_LEN];
	struct upload_pipe *p[N];
	struct blob_writer *w[N];
	size_t got_len;

	assert_int_equal(EVP_Digest(data, len, want, NULL, EVP_sha256(),
	    NULL), 1);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "tenants/a/builds/b%d/source.zip",
		    i);
		assert_int_equal(blob_writer_begin(env->bs, key, &w[i]), 0);
		assert_int_equal(upload_pipe_start(w[i], &p[i]), 0);
		assert_int_equal(upload_pipe_threaded(p[i]),
		    i < UPLOAD_PIPES_MAX);
	}
	/* Interleaved, as concurrent uploads would be. */
	for (size_t off = 0; off < len; off += 100000)
		for (int i = 0; i < N; i++)
			assert_int_equal(upload_pipe_write(p[i], data + off,
			    len - off < 100000 ? len - off : 100000), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(upload_pipe_finish(p[i], sha), 0);
		assert_memory_equal(sha, want, sizeof(want));
		upload_pipe_free(p[i]);
		assert_int_equal(blob_writer_commit(w[i]), 0);
		snprintf(key, sizeof(key), "tenants/a/builds/b%d/source.zip",
		    i);
		assert_int_equal(blob_get(env->bs, key, SIZE_MAX, &got,
		    &got_len), 0);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, data, len);
		free(got);
	}
	assert_int_equal(blob_writer_begin(env->bs, TEST_KEY, &w[0]), 0);
	assert_int_equal(upload_pipe_start(w[0], &p[0]), 0);
	assert_true(upload_pipe_threaded(p[0]));
	upload_pipe_free(p[0]);
	blob_writer_abort(w[0]);
	assert_int_equal(test_temps(env->bs), 0);
	free(data);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, test_setup, \
	test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_sizes),
		TEST(test_free_midway),
		TEST(test_write_error),
		TEST(test_bounded),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
