/*
 * cmd_admin: migrate, user, tenant, member and token: administration
 * and bootstrap straight against the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/log.h"

#define ADMIN_PASSWORD_MIN 8

static const char admin_user_usage[] =
"usage: wharf user add EMAIL      (password: one line on stdin)\n"
"       wharf user disable EMAIL\n";
static const char admin_tenant_usage[] =
"usage: wharf tenant add SLUG [--name NAME]\n"
"SLUG: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'.\n";
static const char admin_member_usage[] =
"usage: wharf member add TENANT EMAIL ROLE    (ROLE: owner, admin, member)\n"
"       wharf member remove TENANT EMAIL\n";
static const char admin_token_usage[] =
"usage: wharf token EMAIL [--ttl DURATION]\n"
"Prints a JWT for EMAIL.  DURATION: seconds, or 90m, 24h, 7d\n"
"(default WHARF_TOKEN_TTL, 24h).\n";
static const char admin_migrate_usage[] =
"usage: wharf migrate\n"
"Creates the database schema, or upgrades it to this version.\n";

int
cli_setup(struct config *cfg, struct store **st)
{
	char err[WHARF_ERRMSG_MAX];
	if (config_load(cfg, err, sizeof(err)) != 0 ||
	    config_prepare_data_dir(cfg, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		return CLI_FAIL;
	}
	log_set_level(cfg->log_level);
	if (st == NULL)
		return CLI_OK;

	*st = store_open(cfg->db_url, err, sizeof(err));
	if (*st == NULL) {
		cli_error("%s", err);
		return CLI_FAIL;
	}
	if (store_migrate(*st, NULL, NULL) != STORE_OK) {
		cli_error("cannot migrate the database: %s", store_errmsg());
		store_close(*st);
		*st = NULL;
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Usage on stdout for --help (exit 0), on stderr otherwise (exit 2). */
static int
admin_usage(const char *usage, int help)
{
	fputs(usage, help ? stdout : stderr);
	return help ? CLI_OK : CLI_USAGE;
}

int
cmd_migrate(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	int version;

	if (cli_wants_help(argc, argv) || argc != 1)
		return admin_usage(admin_migrate_usage,
		    cli_wants_help(argc, argv));
	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	if (store_schema_version(st, &version) != STORE_OK) {
		cli_error("cannot read the schema version: %s",
		    store_errmsg());
		store_close(st);
		return CLI_FAIL;
	}
	printf("database schema at version %d (%s)\n", version, cfg.db_url);
	store_close(st);
	return CLI_OK;
}

/*
 * One line of password from stdin, without its line end.  Echo is off
 * while a terminal types it.
 */
static int
admin_read_password(char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO);
	size_t n;

	if (tty) {
		fputs("Password: ", stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n')
		return -1;                      /* longer than the buffer */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 0;
}

static int
admin_user_add(struct store *st, const char *email)
{
	char password[WHARF_PASSWORD_MAX + 2], hash[STORE_HASH_MAX];
	struct store_user user;
	int rc = CLI_FAIL;

	if (!auth_valid_email(email)) {
		cli_error("'%s' is not an email address", email);
		return CLI_FAIL;
	}
	if (admin_read_password(password, sizeof(password)) != 0 ||
	    strlen(password) < ADMIN_PASSWORD_MIN) {
		cli_error("the password (one line on stdin) must have %d to %d "
		    "characters", ADMIN_PASSWORD_MIN, WHARF_PASSWORD_MAX);
		goto out;
	}
	if (auth_password_hash(password, hash, sizeof(hash)) != 0) {
		cli_error("cannot hash the password");
		goto out;
	}
	switch (store_user_add(st, email, hash, &user)) {
	case STORE_OK:
		printf("user %s added (id %s)\n", user.email, user.id);
		rc = CLI_OK;
		break;
	case STORE_CONFLICT:
		cli_error("user %s already exists", email);
		break;
	default:
		cli_error("cannot add the user: %s", store_errmsg());
	}
out:
	explicit_bzero(password, sizeof(password));
	return rc;
}

static int
admin_user_disable(struct store *st, const char *email)
{
	switch (store_user_set_active(st, email, false)) {
	case STORE_OK:
		printf("user %s disabled\n", email);
		return CLI_OK;
	case STORE_NOT_FOUND:
		cli_error("no user %s", email);
		return CLI_FAIL;
	default:
		cli_error("cannot disable the user: %s", store_errmsg());
		return CLI_FAIL;
	}
}

int
cmd_user(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	int rc;

	if (cli_wants_help(argc, argv))
		return admin_usage(admin_user_usage, 1);
	if (argc != 3 || (strcmp(argv[1], "add") != 0 &&
	    strcmp(argv[1], "disable") != 0))
		return admin_usage(admin_user_usage, 0);
	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	if (strcmp(argv[1], "add") == 0)
		rc = admin_user_add(st, argv[2]);
	else
		rc = admin_user_disable(st, argv[2]);
	store_close(st);
	return rc;
}

static unsigned
admin_edge_port(const struct config *cfg)
{
	char host[256];
	uint16_t port = 0;

	config_parse_listen(cfg->edge_listen, host, sizeof(host), &port);
	return port;
}

int
cmd_tenant(int argc, char **argv)
{
	const char *slug, *name;
	struct store_tenant tenant;
	struct config cfg;
	struct store *st;
	int rc = CLI_FAIL;

	if (cli_wants_help(argc, argv))
		return admin_usage(admin_tenant_usage, 1);
	if (!(argc == 3 || (argc == 5 && strcmp(argv[3], "--name") == 0)) ||
	    strcmp(argv[1], "add") != 0)
		return admin_usage(admin_tenant_usage, 0);
	slug = argv[2];
	name = argc == 5 ? argv[4] : slug;
	if (!auth_valid_slug(slug)) {
		cli_error("'%s' is not a valid tenant slug: use 1 to 63 of "
		    "a-z, 0-9 and '-', not starting or ending with '-'", slug);
		return CLI_FAIL;
	}
	if (strlen(name) > WHARF_NAME_MAX) {
		cli_error("--name must be at most %d bytes", WHARF_NAME_MAX);
		return CLI_FAIL;
	}
	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	switch (store_tenant_add(st, slug, name, &tenant)) {
	case STORE_OK:
		printf("tenant %s added; its site will be served at "
		    "http://%s.%s:%u/\n", slug, slug, cfg.sites_domain,
		    admin_edge_port(&cfg));
		rc = CLI_OK;
		break;
	case STORE_CONFLICT:
		cli_error("tenant %s already exists", slug);
		break;
	default:
		cli_error("cannot add the tenant: %s", store_errmsg());
	}
	store_close(st);
	return rc;
}

/* Resolves TENANT and EMAIL, reporting what is unknown. */
static int
admin_member_lookup(struct store *st, const char *slug, const char *email,
    struct store_user *user)
{
	struct store_tenant tenant;
	enum store_result r;

	r = store_tenant_get(st, slug, &tenant);
	if (r == STORE_OK)
		r = store_user_by_email(st, email, user);
	else if (r == STORE_NOT_FOUND) {
		cli_error("no tenant %s; create it with `wharf tenant add %s`",
		    slug, slug);
		return CLI_FAIL;
	}
	if (r == STORE_NOT_FOUND) {
		cli_error("no user %s; create it with `wharf user add %s`",
		    email, email);
		return CLI_FAIL;
	}
	if (r != STORE_OK) {
		cli_error("cannot read the database: %s", store_errmsg());
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int
admin_member_run(struct store *st, int argc, char **argv)
{
	const char *slug = argv[2], *email = argv[3];
	struct store_user user;
	enum store_result r;

	if (admin_member_lookup(st, slug, email, &user) != CLI_OK)
		return CLI_FAIL;
	if (argc == 5)
		r = store_member_set(st, slug, user.id, argv[4]);
	else
		r = store_member_remove(st, slug, user.id);
	if (r == STORE_NOT_FOUND) {
		cli_error("%s is not a member of %s", email, slug);
		return CLI_FAIL;
	}
	if (r != STORE_OK) {
		cli_error("cannot change the membership: %s", store_errmsg());
		return CLI_FAIL;
	}
	if (argc == 5)
		printf("%s is now %s of %s\n", user.email, argv[4], slug);
	else
		printf("%s removed from %s\n", user.email, slug);
	return CLI_OK;
}

int
cmd_member(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	int rc;

	if (cli_wants_help(argc, argv))
		return admin_usage(admin_member_usage, 1);
	if (!(argc == 5 && strcmp(argv[1], "add") == 0) &&
	    !(argc == 4 && strcmp(argv[1], "remove") == 0))
		return admin_usage(admin_member_usage, 0);
	if (argc == 5 && !auth_valid_role(argv[4])) {
		cli_error("'%s' is not a role: use owner, admin or member",
		    argv[4]);
		return CLI_FAIL;
	}
	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	rc = admin_member_run(st, argc, argv);
	store_close(st);
	return rc;
}

static int
admin_token_print(const struct config *cfg, struct store *st,
    const char *email, int64_t ttl)
{
	char token[AUTH_TOKEN_MAX];
	struct store_user user;

	switch (store_user_by_email(st, email, &user)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		cli_error("no user %s", email);
		return CLI_FAIL;
	default:
		cli_error("cannot read the database: %s", store_errmsg());
		return CLI_FAIL;
	}
	if (!user.is_active) {
		cli_error("user %s is disabled", email);
		return CLI_FAIL;
	}
	if (auth_jwt_sign(cfg->jwt_secret, cfg->jwt_secret_len, user.id,
	    util_now_ms() / 1000, ttl, token, NULL) != AUTH_OK) {
		cli_error("cannot sign the token");
		return CLI_FAIL;
	}
	printf("%s\n", token);
	return CLI_OK;
}

int
cmd_token(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	int64_t ttl = 0;
	int rc;

	if (cli_wants_help(argc, argv))
		return admin_usage(admin_token_usage, 1);
	if (!(argc == 2 || (argc == 4 && strcmp(argv[2], "--ttl") == 0)))
		return admin_usage(admin_token_usage, 0);
	if (argc == 4 && config_parse_duration(argv[3], &ttl) != 0) {
		cli_error("--ttl %s is not a duration (for example 3600, 90m, "
		    "24h, 7d)", argv[3]);
		return CLI_FAIL;
	}
	if (cli_setup(&cfg, &st) != CLI_OK)
		return CLI_FAIL;
	rc = admin_token_print(&cfg, st, argv[1], ttl ? ttl :
	    cfg.token_ttl_sec);
	store_close(st);
	return rc;
}
