/*
 * main: `wharf COMMAND ...`, dispatched to the cmd_* functions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static const char main_usage[] =
"usage: wharf COMMAND [ARGS]\n"
"\n"
"Server roles:\n"
"  serve                          API, edge and build workers, one process\n"
"  api                            the API alone\n"
"  worker                         build workers alone (WHARF_WORKERS of them)\n"
"  edge                           the edge alone, serving sites\n"
"  migrate                        create or upgrade the database schema\n"
"\n"
"Administration:\n"
"  user add EMAIL                 add a user; the password is read from stdin\n"
"  user disable EMAIL             disable a user: their tokens stop working\n"
"  tenant add SLUG [--name NAME]  add a tenant; SLUG is its DNS label\n"
"  member add TENANT EMAIL ROLE   make EMAIL an owner, admin or member\n"
"  member remove TENANT EMAIL     deactivate a membership\n"
"  token EMAIL [--ttl DURATION]   print an API token (JWT) for EMAIL\n"
"\n"
"Client:\n"
"  deploy PATH --tenant SLUG      upload a site and follow its build\n"
"\n"
"Run `wharf COMMAND --help` for one command.  Configuration comes from\n"
"the environment (WHARF_DATA_DIR, WHARF_DB, WHARF_LISTEN, JWT_SECRET...);\n"
"README.md lists every variable.\n";

struct main_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct main_cmd main_cmds[] = {
	{ "serve", cmd_serve },
	{ "api", cmd_serve },
	{ "worker", cmd_serve },
	{ "edge", cmd_serve },
	{ "migrate", cmd_migrate },
	{ "user", cmd_user },
	{ "tenant", cmd_tenant },
	{ "member", cmd_member },
	{ "token", cmd_token },
	{ "deploy", cmd_deploy },
};

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("wharf: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(main_usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(main_usage, stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (strcmp(argv[1], main_cmds[i].name) == 0)
			return main_cmds[i].run(argc - 1, argv + 1);

	cli_error("unknown command '%s'; run `wharf --help`", argv[1]);
	return CLI_USAGE;
}
