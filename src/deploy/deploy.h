/*
 * deploy: publishing a build's output as an immutable deployment, and
 * the pointer flip that makes a deployment the one a tenant serves.
 *
 * Publishing walks the output folder, hashes every file, stores each
 * file once per tenant under tenants/<t>/objects/<sha256> (skipping
 * what the tenant's store already holds, so a redeploy uploads only
 * what changed), adds precompressed variants of text files
 * (<sha256>.gz, <sha256>.br) when they are smaller, parses _redirects
 * and _headers, and writes the deployment's manifest to
 * tenants/<t>/deployments/<build>/manifest.json.
 *
 * The manifest (JSON):
 *
 *   {"version": 1, "tenant": "acme", "buildId": "...",
 *    "deploymentId": "...", "createdAt": "2026-...Z",
 *    "files": {"/index.html": {"hash": "<sha256>", "size": 1234,
 *              "type": "text/html; charset=utf-8",
 *              "gzip": 512, "br": 431}, ...},
 *    "redirects": [...], "headers": [...]}
 *
 * where "gzip" and "br" are the sizes of the variants that exist, and
 * the rules are in the form rules.h serialises.
 */
#ifndef WHARF_DEPLOY_H
#define WHARF_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

struct blob_store;

#define DEPLOY_MAX_FILES      100000
#define DEPLOY_PATH_MAX       1024        /* URL path of one file */
#define DEPLOY_COMPRESS_MAX   (16 << 20)  /* larger files: not compressed */
#define DEPLOY_COMPRESS_MIN   256         /* smaller ones neither */
#define DEPLOY_THREADS        4
#define DEPLOY_RULES_MAX      1000        /* rules per file */
#define DEPLOY_RULE_LINE_MAX  2048

/* What publishing needs; borrowed. */
struct deploy_env {
	const struct config *cfg;
	struct store        *store;
	struct blob_store   *blob;
	/* Called after every pointer flip, e.g. to drop an edge's cache. */
	void               (*on_flip)(void *ctx, const char *tenant);
	void                *flip_ctx;
	/* The edge's port for the URLs it prints; 0: from WHARF_EDGE_LISTEN. */
	uint16_t             edge_port;
};

enum deploy_status {
	DEPLOY_OK = 0,
	DEPLOY_INVALID,         /* the output is at fault: message says how */
	DEPLOY_RETRY,           /* the blob store or database failed */
};

struct deploy_result {
	struct store_deployment deployment;
	int64_t  files;
	int64_t  bytes;
	int64_t  uploaded;              /* objects the tenant did not have */
	int64_t  compressed;            /* variants written */
	char     site_url[300];
	char     deployment_url[400];
};

/* A line for the build log. */
typedef void deploy_log_fn(void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Publishes output_dir (absolute) as the deployment of build b and
 * makes it the tenant's current one.  A build that already has a live
 * deployment (a worker died after publishing) is not published again:
 * that deployment is activated.  On failure err says what to fix.
 */
enum deploy_status deploy_publish(const struct deploy_env *env,
    const struct store_build *b, const char *output_dir,
    struct deploy_result *res, deploy_log_fn *log, void *log_ctx,
    char *err, size_t errlen);

/*
 * The pointer flip: deployment_id becomes the tenant's current one in
 * the database (one transaction, the truth every edge reads), then the
 * mirror pointers/<t>/current.json is rewritten and on_flip called.
 * STORE results as store_deployment_activate; the mirror's failure is
 * logged, not returned (the next flip rewrites it).
 */
enum store_result deploy_activate(const struct deploy_env *env,
    const char *tenant, const char *deployment_id,
    struct store_deployment *activated);

/* "http://acme.localhost:8081/" and the immutable deployment URL. */
void deploy_site_url(const struct deploy_env *env, const char *tenant,
    char *out, size_t len);
void deploy_deployment_url(const struct deploy_env *env, const char *tenant,
    const char *build_id, char *out, size_t len);

#endif
