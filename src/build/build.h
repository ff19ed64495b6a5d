/*
 * build: the build pipeline, run by a queue worker for each claimed
 * job.  DESIGN.md's thirteen steps, one function each (pipeline.c),
 * over the pieces of this component: safe extraction (extract.h),
 * project discovery and framework detection (discover.h), the
 * environment file (envfile.h) and the sandbox (sandbox.h).
 *
 * Each step logs its start, duration and outcome to the build log (the
 * build's build.log blob, rewritten as the build goes so that it can be
 * read while the build runs) and to the server log, and moves the
 * build's progress.  A failure fails the build with the step's name and
 * a message a user can act on; transient failures (the blob store or
 * database unreachable) are retried through the queue, a bad ZIP or a
 * failing user build is not.
 */
#ifndef WHARF_BUILD_H
#define WHARF_BUILD_H

#include "core/core.h"
#include "queue/queue.h"

struct store;
struct blob_store;
struct deploy_env;

/* What the pipeline needs; borrowed, outliving the queue. */
struct build_env {
	const struct config     *cfg;
	struct store            *store;
	struct blob_store       *blob;
	const struct deploy_env *deploy;  /* step 13 */
};

/*
 * The queue handler: runs one build to its end.  ctx is a struct
 * build_env.  The workspace is removed afterwards, success or not.
 */
enum queue_outcome build_run(void *ctx, struct queue_run *run);

#endif
