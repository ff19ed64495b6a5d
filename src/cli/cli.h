/*
 * cli: the `wharf` command line.  Private to src/cli/.
 *
 * Exit statuses: 0 success, 1 the operation failed (the message says
 * why), 2 the command line was wrong (usage printed).
 */
#ifndef WHARF_CLI_H
#define WHARF_CLI_H

#include "core/core.h"
#include "store/store.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* Prints "wharf: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

/*
 * Loads the configuration and prepares the data dir; with st, opens
 * the store and migrates it.  Returns CLI_OK or CLI_FAIL (reported).
 */
int cli_setup(struct config *cfg, struct store **st);

int cmd_migrate(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_tenant(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_deploy(int argc, char **argv);

#endif
