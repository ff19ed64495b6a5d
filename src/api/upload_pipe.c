/*
 * upload_pipe: the upload's file hashed and stored on helper threads
 * (see upload_pipe.h).
 *
 * Two stages read each full buffer: one hashes it, the other writes
 * it, each on its own thread, since neither needs the other's result
 * (SHA-256 alone costs about as much as receiving).  Buffers are
 * numbered in the order they are handed over; buffer n lives in slot
 * n % UPLOAD_PIPE_BUFS, and its slot is free again once both stages
 * are past it.  Only the counters and the flags are shared, under the
 * lock; a buffer's bytes are written by the caller before it is handed
 * over and only read afterwards, and the lock orders the two.
 *
 * A pipe started when UPLOAD_PIPES_MAX others run helpers has none: its
 * writes hash and store the caller's bytes at once, and the counters,
 * buffers and lock go unused.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/upload_pipe.h"
#include "blob/blob.h"

enum {
	UPLOAD_STAGE_HASH,
	UPLOAD_STAGE_WRITE,
	UPLOAD_STAGES,
};

struct upload_pipe;

/* Pipes that hold one of the UPLOAD_PIPES_MAX places, process-wide. */
static atomic_int upload_pipes_threaded;

/* A helper thread and how far it got. */
struct upload_stage {
	struct upload_pipe *pipe;
	int               (*work)(struct upload_pipe *p, const char *buf,
	    size_t len);
	pthread_t           thread;
	bool                running;    /* created and not yet joined */
	uint64_t            done;       /* buffers it is past */
};

struct upload_pipe {
	pthread_mutex_t     lock;
	pthread_cond_t      filled;     /* to the stages: work, or the end */
	pthread_cond_t      drained;    /* to the caller: a slot is free */
	struct upload_stage stage[UPLOAD_STAGES];

	/* Each the one stage's until it is joined. */
	EVP_MD_CTX         *sha;
	struct blob_writer *writer;

	char               *buf[UPLOAD_PIPE_BUFS];
	size_t              len[UPLOAD_PIPE_BUFS];
	uint64_t            handed;     /* buffers handed over */
	bool                closing;    /* no more buffers: finish, exit */
	bool                stopping;   /* exit now, drop the rest */
	int                 error;      /* first error, then sticky */
	bool                threaded;   /* holds a place: has helpers */

	/* The caller's own. */
	size_t              fill;       /* bytes in slot handed % BUFS */
	int                 seen;       /* error, once the caller knows it */
};

static int
upload_pipe_hash(struct upload_pipe *p, const char *buf, size_t len)
{
	return EVP_DigestUpdate(p->sha, buf, len) == 1 ? 0 : -EIO;
}

static int
upload_pipe_store(struct upload_pipe *p, const char *buf, size_t len)
{
	return blob_writer_write(p->writer, buf, len);
}

/* A stage's thread: its work on each buffer, in order. */
static void *
upload_stage_main(void *arg)
{
	struct upload_stage *st = arg;
	struct upload_pipe *p = st->pipe;
	unsigned slot;
	int rc;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (st->done == p->handed && !p->closing && !p->stopping &&
		    p->error == 0)
			pthread_cond_wait(&p->filled, &p->lock);
		if (p->stopping || p->error != 0 || st->done == p->handed)
			break;
		slot = st->done % UPLOAD_PIPE_BUFS;
		pthread_mutex_unlock(&p->lock);
		rc = st->work(p, p->buf[slot], p->len[slot]);
		pthread_mutex_lock(&p->lock);
		st->done++;
		if (rc != 0 && p->error == 0) {
			p->error = rc;
			/* The other stage stops too. */
			pthread_cond_broadcast(&p->filled);
		}
		pthread_cond_signal(&p->drained);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Buffers handed over that a stage still needs.  Under the lock. */
static uint64_t
upload_pipe_busy(const struct upload_pipe *p)
{
	uint64_t least = p->handed;

	for (size_t i = 0; i < UPLOAD_STAGES; i++)
		if (p->stage[i].done < least)
			least = p->stage[i].done;
	return p->handed - least;
}

/* Records a failure of the caller's side; returns the first error. */
static int
upload_pipe_fail(struct upload_pipe *p, int rc)
{
	pthread_mutex_lock(&p->lock);
	if (p->error == 0)
		p->error = rc;
	rc = p->error;
	pthread_cond_broadcast(&p->filled);
	pthread_mutex_unlock(&p->lock);
	p->seen = rc;
	return rc;
}

/*
 * Hands the caller's buffer to the stages; then, when more is to come
 * (wait), waits until the next slot is free.
 */
static int
upload_pipe_queue(struct upload_pipe *p, bool wait)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	if (p->error == 0) {
		p->len[p->handed % UPLOAD_PIPE_BUFS] = p->fill;
		p->handed++;
		pthread_cond_broadcast(&p->filled);
	}
	while (wait && p->error == 0 &&
	    upload_pipe_busy(p) == UPLOAD_PIPE_BUFS)
		pthread_cond_wait(&p->drained, &p->lock);
	rc = p->error;
	pthread_mutex_unlock(&p->lock);
	p->fill = 0;
	p->seen = rc;
	return rc;
}

/* Stops (when told) or lets finish the stages, and joins them. */
static void
upload_pipe_join(struct upload_pipe *p, bool stop)
{
	pthread_mutex_lock(&p->lock);
	if (stop)
		p->stopping = true;
	else
		p->closing = true;
	pthread_cond_broadcast(&p->filled);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < UPLOAD_STAGES; i++) {
		if (p->stage[i].running)
			pthread_join(p->stage[i].thread, NULL);
		p->stage[i].running = false;
	}
}

int
upload_pipe_start(struct blob_writer *w, struct upload_pipe **out)
{
	static const char *const names[UPLOAD_STAGES] = {
		[UPLOAD_STAGE_HASH] = "wharf-up-hash",
		[UPLOAD_STAGE_WRITE] = "wharf-up-write",
	};
	struct upload_pipe *p;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->filled, NULL);
	pthread_cond_init(&p->drained, NULL);
	p->writer = w;
	p->sha = EVP_MD_CTX_new();
	if (p->sha == NULL ||
	    EVP_DigestInit_ex(p->sha, EVP_sha256(), NULL) != 1) {
		upload_pipe_free(p);
		return -ENOMEM;
	}
	p->stage[UPLOAD_STAGE_HASH].work = upload_pipe_hash;
	p->stage[UPLOAD_STAGE_WRITE].work = upload_pipe_store;
	if (atomic_fetch_add(&upload_pipes_threaded, 1) >= UPLOAD_PIPES_MAX) {
		atomic_fetch_sub(&upload_pipes_threaded, 1);
		*out = p;               /* no place: the caller's thread works */
		return 0;
	}
	p->threaded = true;
	for (size_t i = 0; i < UPLOAD_STAGES; i++) {
		p->stage[i].pipe = p;
		rc = pthread_create(&p->stage[i].thread, NULL,
		    upload_stage_main, &p->stage[i]);
		if (rc != 0) {
			upload_pipe_free(p);
			return -rc;
		}
		p->stage[i].running = true;
		pthread_setname_np(p->stage[i].thread, names[i]);
	}
	*out = p;
	return 0;
}

bool
upload_pipe_threaded(const struct upload_pipe *p)
{
	return p->threaded;
}

int
upload_pipe_write(struct upload_pipe *p, const void *buf, size_t len)
{
	const char *in = buf;
	unsigned slot;
	size_t n;
	int rc;

	if (p->seen != 0)
		return p->seen;
	if (!p->threaded) {
		rc = upload_pipe_hash(p, in, len);
		if (rc == 0)
			rc = upload_pipe_store(p, in, len);
		p->error = p->seen = rc;
		return rc;
	}
	while (len > 0) {
		/* handed changes only here, on the caller's thread. */
		slot = p->handed % UPLOAD_PIPE_BUFS;
		if (p->buf[slot] == NULL) {
			p->buf[slot] = malloc(UPLOAD_PIPE_BUF);
			if (p->buf[slot] == NULL)
				return upload_pipe_fail(p, -ENOMEM);
		}
		n = UPLOAD_PIPE_BUF - p->fill;
		n = n < len ? n : len;
		memcpy(p->buf[slot] + p->fill, in, n);
		p->fill += n;
		in += n;
		len -= n;
		if (p->fill == UPLOAD_PIPE_BUF) {
			rc = upload_pipe_queue(p, true);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int
upload_pipe_finish(struct upload_pipe *p,
    unsigned char sha[UPLOAD_PIPE_SHA_LEN])
{
	int rc;

	if (p->fill > 0)
		(void)upload_pipe_queue(p, false);
	upload_pipe_join(p, false);
	rc = p->error;
	if (rc == 0 && EVP_DigestFinal_ex(p->sha, sha, NULL) != 1)
		rc = -EIO;
	return rc;
}

void
upload_pipe_free(struct upload_pipe *p)
{
	if (p == NULL)
		return;
	upload_pipe_join(p, true);
	if (p->threaded)
		atomic_fetch_sub(&upload_pipes_threaded, 1);
	for (size_t i = 0; i < UPLOAD_PIPE_BUFS; i++)
		free(p->buf[i]);
	EVP_MD_CTX_free(p->sha);
	pthread_cond_destroy(&p->drained);
	pthread_cond_destroy(&p->filled);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
