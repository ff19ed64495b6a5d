/*
 * upload_pipe: hashes (SHA-256) and stores an upload's file on a
 * helper thread, so that the connection's thread only receives and
 * parses while the last megabyte is hashed and written.  Private to
 * src/api/.
 *
 * The caller copies the file's bytes in with upload_pipe_write; they
 * gather in UPLOAD_PIPE_BUF-byte buffers, and each full one goes to the
 * helper, which hashes it and hands it to the blob writer.  At most
 * UPLOAD_PIPE_BUFS buffers exist, allocated as needed: when all are
 * full the caller waits, so memory stays flat whatever the upload's
 * size or the disk's speed.
 *
 * The blob writer stays the caller's: the pipe borrows it from start
 * until upload_pipe_finish or upload_pipe_free returns, both of which
 * join the helper, and the caller then commits or aborts it.  Nothing
 * here knows the backend behind the writer.
 *
 * At most UPLOAD_PIPES_MAX pipes in the process run helpers at once;
 * one started beyond that hashes and writes on the caller's thread, in
 * upload_pipe_write, with no buffer: slower, but memory and threads
 * stay bounded however many uploads arrive together.
 *
 * One thread drives a pipe: start, write, finish, free.
 */
#ifndef WHARF_API_UPLOAD_PIPE_H
#define WHARF_API_UPLOAD_PIPE_H

#include <stdbool.h>
#include <stddef.h>

struct blob_writer;
struct upload_pipe;

#define UPLOAD_PIPE_BUF     (1024 * 1024)  /* bytes per hand-over */
#define UPLOAD_PIPE_BUFS    4              /* buffers at most */
#define UPLOAD_PIPE_SHA_LEN 32
#define UPLOAD_PIPES_MAX    8              /* with helpers, at once */

/* A pipe into w, its helper running.  0 or a negative errno. */
int upload_pipe_start(struct blob_writer *w, struct upload_pipe **out);
/* Whether p runs helper threads (false past UPLOAD_PIPES_MAX). */
bool upload_pipe_threaded(const struct upload_pipe *p);
/*
 * Appends len bytes, waiting for a free buffer if need be.  0, or the
 * first error of the helper (a negative errno: the writer's, or
 * -ENOMEM); after an error every call returns it.
 */
int upload_pipe_write(struct upload_pipe *p, const void *buf, size_t len);
/*
 * Hands over what is left, waits until the helper has hashed and
 * written everything and joins it; stores the SHA-256 of all the bytes
 * in sha.  0 or the first error.  Free the pipe afterwards.
 */
int upload_pipe_finish(struct upload_pipe *p,
    unsigned char sha[UPLOAD_PIPE_SHA_LEN]);
/*
 * Stops the helper (buffers not yet written are dropped), joins it and
 * frees everything.  NULL is fine.
 */
void upload_pipe_free(struct upload_pipe *p);

#endif
