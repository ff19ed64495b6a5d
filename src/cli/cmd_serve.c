/*
 * cmd_serve: `wharf serve` (and `wharf api`): migrate, start the API,
 * wait for SIGINT or SIGTERM, stop cleanly.
 *
 * The signals are blocked before any thread starts, so every thread
 * inherits the mask and only the main thread, in sigwait(), sees them.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/log.h"

static const char serve_usage[] =
"usage: wharf serve\n"
"Runs the API on WHARF_LISTEN until SIGINT or SIGTERM.  Configuration\n"
"comes from the environment; README.md lists every variable.\n";

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

int
cmd_serve(int argc, char **argv)
{
	char err[WHARF_ERRMSG_MAX], url[300];
	struct api_server *api;
	struct config cfg;
	struct store *st;
	sigset_t set;
	int64_t t0;
	int sig;

	if (cli_wants_help(argc, argv) || argc != 1) {
		fputs(serve_usage, cli_wants_help(argc, argv) ? stdout :
		    stderr);
		return cli_wants_help(argc, argv) ? CLI_OK : CLI_USAGE;
	}

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	api = api_start(&cfg, st, err, sizeof(err));
	if (api == NULL) {
		cli_error("%s", err);
		store_close(st);
		return CLI_FAIL;
	}

	serve_url(cfg.listen, api_port(api), url, sizeof(url));
	log_info("serve.started", "api=%s db=%s secret=%s", url,
	    strncmp(cfg.db_url, "postgres", 8) == 0 ? "postgres" : "sqlite",
	    cfg.jwt_secret_generated ? "generated" : "loaded");
	printf("api listening on %s\n", url);
	printf("get a token: wharf token EMAIL, or POST %s/api/auth/login\n",
	    url);
	fflush(stdout);

	sig = serve_wait();
	t0 = util_mono_ns();
	log_info("serve.stopping", "signal=%s", strsignal(sig));
	api_stop(api);
	store_close(st);
	log_info("serve.stopped", "dur_ms=%.1f",
	    (double)(util_mono_ns() - t0) / 1e6);
	return CLI_OK;
}
