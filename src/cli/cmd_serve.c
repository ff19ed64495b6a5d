/*
 * cmd_serve: the long-running roles.  `wharf serve` runs the API and
 * WHARF_WORKERS build workers in one process; `wharf api` the API
 * alone; `wharf worker` the workers alone.  Each migrates, starts,
 * waits for SIGINT or SIGTERM and stops cleanly: the API first (no new
 * uploads), then the workers (running builds are handed back to the
 * queue).
 *
 * The signals are blocked before any thread starts, so every thread
 * inherits the mask and only the main thread, in sigwait(), sees them.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "blob/blob.h"
#include "build/build.h"
#include "build/sandbox.h"
#include "cli/cli.h"
#include "core/log.h"
#include "deploy/deploy.h"
#include "edge/edge.h"
#include "queue/queue.h"

#define SERVE_API     0x1
#define SERVE_WORKERS 0x2
#define SERVE_EDGE    0x4

static const char serve_usage[] =
"usage: wharf serve | wharf api | wharf worker | wharf edge\n"
"serve runs the API on WHARF_LISTEN, the edge on WHARF_EDGE_LISTEN and\n"
"WHARF_WORKERS build workers; api, worker and edge run one role each.\n"
"Each runs until SIGINT or SIGTERM.  Configuration comes from the\n"
"environment; README.md lists every variable.\n";

/* Everything a role runs, so that stopping undoes starting. */
struct serve_parts {
	struct config       cfg;
	struct store       *store;
	struct blob_store  *blob;
	struct build_env    build;
	struct deploy_env   deploy;
	struct edge        *edge;
	struct queue_opts   qopts;
	char                node[128];
	struct queue       *queue;
	struct api_server  *api;
};

/* "http://host:port" for the address printed to the user. */
static void
serve_url(const char *listen, uint16_t port, char *out, size_t len)
{
	char host[256];
	uint16_t ignored;

	if (config_parse_listen(listen, host, sizeof(host), &ignored) != 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (strchr(host, ':') != NULL)
		snprintf(out, len, "http://[%s]:%u", host, (unsigned)port);
	else
		snprintf(out, len, "http://%s:%u", host, (unsigned)port);
}

static int
serve_wait(void)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

static void
serve_stop(struct serve_parts *p)
{
	api_stop(p->api);
	edge_stop(p->edge);
	if (p->queue != NULL)
		queue_stop(p->queue);
	if (p->blob != NULL)
		blob_close(p->blob);
	if (p->store != NULL)
		store_close(p->store);
}

static int
serve_start_workers(struct serve_parts *p)
{
	char host[64];

	if (p->cfg.workers == 0)
		return 0;
	if (!p->cfg.sandbox_none && !sandbox_available())
		log_errorx("serve.no_sandbox", "msg=\"bubblewrap (bwrap) is "
		    "missing or does not work: builds will fail until it is "
		    "installed, or WHARF_SANDBOX=none is set\"");
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(p->node, sizeof(p->node), "%s:%ld", host, (long)getpid());

	p->build = (struct build_env){ &p->cfg, p->store, p->blob,
	    &p->deploy };
	queue_opts_default(&p->qopts);
	p->qopts.workers = p->cfg.workers;
	p->qopts.lease_ms = p->cfg.job_lease_sec * 1000;
	p->qopts.node = p->node;
	p->queue = queue_start(p->store, &p->qopts, build_run, &p->build);
	if (p->queue == NULL) {
		cli_error("cannot start the build workers");
		return -1;
	}
	printf("%d build workers running (WHARF_WORKERS)\n", p->cfg.workers);
	return 0;
}

/* The edge, and its in-process view of pointer flips. */
static int
serve_start_edge(struct serve_parts *p)
{
	char err[WHARF_ERRMSG_MAX], url[300];

	p->edge = edge_start(&p->cfg, p->store, p->blob, err, sizeof(err));
	if (p->edge == NULL) {
		cli_error("%s", err);
		return -1;
	}
	p->deploy.on_flip = edge_invalidate;
	p->deploy.flip_ctx = p->edge;
	p->deploy.edge_port = edge_port(p->edge);
	serve_url(p->cfg.edge_listen, edge_port(p->edge), url, sizeof(url));
	log_info("edge.started", "edge=%s domain=%s", url,
	    p->cfg.sites_domain);
	printf("edge listening on %s (sites at http://TENANT.%s:%u/)\n", url,
	    p->cfg.sites_domain, (unsigned)edge_port(p->edge));
	return 0;
}

static int
serve_start(struct serve_parts *p, int roles)
{
	char err[WHARF_ERRMSG_MAX], path[WHARF_PATH_MAX + 8], url[300];

	if (cli_setup(&p->cfg, &p->store) != CLI_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/blobs", p->cfg.data_dir);
	p->blob = blob_open_local(path, err, sizeof(err));
	if (p->blob == NULL) {
		cli_error("%s", err);
		return -1;
	}
	p->deploy = (struct deploy_env){ .cfg = &p->cfg, .store = p->store,
	    .blob = p->blob };
	if ((roles & SERVE_EDGE) && serve_start_edge(p) != 0)
		return -1;
	if ((roles & SERVE_WORKERS) && serve_start_workers(p) != 0)
		return -1;
	if (!(roles & SERVE_API))
		return 0;

	struct api_deps deps = { &p->cfg, p->store, p->blob, p->queue,
	    &p->deploy };
	p->api = api_start(&deps, err, sizeof(err));
	if (p->api == NULL) {
		cli_error("%s", err);
		return -1;
	}
	serve_url(p->cfg.listen, api_port(p->api), url, sizeof(url));
	log_info("serve.started", "api=%s db=%s secret=%s workers=%d", url,
	    strncmp(p->cfg.db_url, "postgres", 8) == 0 ? "postgres" :
	    "sqlite", p->cfg.jwt_secret_generated ? "generated" : "loaded",
	    p->queue ? p->cfg.workers : 0);
	printf("api listening on %s\n", url);
	printf("get a token: wharf token EMAIL, or POST %s/api/auth/login\n",
	    url);
	return 0;
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_parts parts = { 0 };
	int roles, sig, rc = CLI_OK;
	sigset_t set;
	int64_t t0;

	if (cli_wants_help(argc, argv) || argc != 1) {
		fputs(serve_usage, cli_wants_help(argc, argv) ? stdout :
		    stderr);
		return cli_wants_help(argc, argv) ? CLI_OK : CLI_USAGE;
	}
	roles = strcmp(argv[0], "api") == 0 ? SERVE_API :
	    strcmp(argv[0], "worker") == 0 ? SERVE_WORKERS :
	    strcmp(argv[0], "edge") == 0 ? SERVE_EDGE :
	    SERVE_API | SERVE_WORKERS | SERVE_EDGE;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (serve_start(&parts, roles) != 0) {
		rc = CLI_FAIL;
		goto out;
	}
	fflush(stdout);
	sig = serve_wait();
	log_info("serve.stopping", "signal=%s", strsignal(sig));
out:
	t0 = util_mono_ns();
	serve_stop(&parts);
	if (rc == CLI_OK)
		log_info("serve.stopped", "dur_ms=%.1f",
		    (double)(util_mono_ns() - t0) / 1e6);
	return rc;
}
