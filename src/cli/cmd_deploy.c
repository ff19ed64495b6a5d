/*
 * cmd_deploy: `wharf deploy`, the client.  Zips a folder (or takes a
 * .zip), uploads it to POST /api/builds/:tenantId, follows the build
 * and prints the site's URL.
 *
 * It speaks HTTP to the API only (libcurl); it never opens the store.
 * A folder is zipped into a temp file that is removed before the build
 * is followed, and also when the upload fails or a signal stops it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <jansson.h>

#include "auth/auth.h"
#include "cli/cli.h"

#define DEPLOY_CLI_API_DEFAULT  "http://127.0.0.1:8080"
#define DEPLOY_CLI_URL_MAX      2048
#define DEPLOY_CLI_TOKEN_MAX    8192
#define DEPLOY_CLI_POLL_MS      500
#define DEPLOY_CLI_JSON_MAX     (1024 * 1024)   /* one API answer */
#define DEPLOY_CLI_LOG_KEEP     (256 * 1024)    /* tail of a log kept */
#define DEPLOY_CLI_LOG_LINES    20
#define DEPLOY_CLI_DEPTH_MAX    64              /* folder nesting */
#define DEPLOY_CLI_CHUNK        (64 * 1024)     /* file read size */
#define DEPLOY_CLI_CONNECT_SEC  10L
#define DEPLOY_CLI_STALL_SEC    60L     /* no byte moved: give up */

static const char deploy_cli_usage[] =
"usage: wharf deploy PATH --tenant SLUG [--api URL] [--token TOKEN]\n"
"                    [--config JSON] [--no-wait]\n"
"Uploads PATH, a folder (zipped on the fly) or a .zip file, as a new\n"
"build of the tenant SLUG, follows the build and prints the site's URL.\n"
"  --api URL      the API; default $WHARF_API_URL, else http:// and\n"
"                 $WHARF_LISTEN, else " DEPLOY_CLI_API_DEFAULT "\n"
"  --token TOKEN  an API token; default $WHARF_TOKEN.  Get one with\n"
"                 `wharf token EMAIL` or POST /api/auth/login\n"
"  --config JSON  the buildConfig, e.g. '{\"framework\":\"vite\"}'\n"
"  --no-wait      print the build id once uploaded; do not follow it\n"
"In a folder, symbolic links are skipped and .git and node_modules\n"
"are left out.  Ctrl-C stops following; the build goes on.\n";

struct deploy_cli_opts {
	const char *path;
	const char *tenant;
	const char *api;
	const char *token;
	const char *config;
	bool        no_wait;
};

/* One client session: the API, its credentials, the build uploaded. */
struct deploy_cli {
	const struct deploy_cli_opts *opt;
	char                api[DEPLOY_CLI_URL_MAX];  /* no trailing '/' */
	char                build_url[DEPLOY_CLI_URL_MAX];
	char                build_id[WHARF_ID_LEN + 1];
	CURL               *curl;
	struct curl_slist  *headers;                  /* Authorization */
	char                curl_err[CURL_ERROR_SIZE];
};

/* An answer's body: at most max bytes, or with tail its last max. */
struct deploy_cli_buf {
	char   *data;           /* NUL-terminated once anything came */
	size_t  len;
	size_t  size;
	size_t  max;
	bool    tail;
	bool    overflow;
};

/* A folder being zipped. */
struct deploy_cli_zip {
	struct archive *ar;
	char            rel[WHARF_PATH_MAX];    /* entry path in the ZIP */
	unsigned char  *chunk;
	long            files;
	long            folders;
};

/* What the user was last told about the build. */
struct deploy_cli_seen {
	char            status[16];
	json_int_t      progress;
	json_int_t      ahead;
};

/* The signal that asked us to stop while a temp file exists, or 0. */
static volatile sig_atomic_t deploy_cli_stop;
static const int deploy_cli_signals[] = { SIGINT, SIGTERM, SIGHUP };
static struct sigaction deploy_cli_saved[3];

static void
deploy_cli_on_signal(int sig)
{
	deploy_cli_stop = sig;
}

/*
 * With on, SIGINT, SIGTERM and SIGHUP (unless ignored) only set
 * deploy_cli_stop, so that the work stops and the temp ZIP is removed;
 * without, the previous handlers come back.
 */
static void
deploy_cli_catch(bool on)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = deploy_cli_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < 3; i++) {
		int sig = deploy_cli_signals[i];

		if (!on)
			sigaction(sig, &deploy_cli_saved[i], NULL);
		else if (sigaction(sig, NULL, &deploy_cli_saved[i]) == 0 &&
		    deploy_cli_saved[i].sa_handler != SIG_IGN)
			sigaction(sig, &sa, NULL);      /* nohup stays */
	}
}

/* -- the command line ---------------------------------------------- */

static const char **
deploy_cli_slot(struct deploy_cli_opts *opt, const char *name)
{
	if (strcmp(name, "--tenant") == 0)
		return &opt->tenant;
	if (strcmp(name, "--api") == 0)
		return &opt->api;
	if (strcmp(name, "--token") == 0)
		return &opt->token;
	if (strcmp(name, "--config") == 0)
		return &opt->config;
	return NULL;
}

/* Fills opt from argv.  0, or -1 after saying what is wrong. */
static int
deploy_cli_parse(int argc, char **argv, struct deploy_cli_opts *opt)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], **slot = deploy_cli_slot(opt, arg);

		if (strcmp(arg, "--no-wait") == 0) {
			opt->no_wait = true;
		} else if (slot != NULL && i + 1 < argc) {
			*slot = argv[++i];
		} else if (slot != NULL) {
			cli_error("%s needs a value", arg);
			return -1;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			cli_error("unknown option '%s'", arg);
			return -1;
		} else if (opt->path == NULL) {
			opt->path = arg;
		} else {
			cli_error("one PATH only ('%s' is a second)", arg);
			return -1;
		}
	}
	if (opt->path == NULL || opt->tenant == NULL) {
		cli_error("PATH and --tenant SLUG are needed");
		return -1;
	}
	return 0;
}

/* The API's base URL into out: the flag, the environment, the default. */
static int
deploy_cli_api_url(const char *flag, char *out, size_t len)
{
	const char *env = getenv("WHARF_API_URL");
	const char *listen = getenv("WHARF_LISTEN");
	char host[256];
	uint16_t port = 0;
	size_t n;
	int rc;

	if (flag != NULL || (env != NULL && env[0] != '\0'))
		rc = util_fmt(out, len, "%s", flag != NULL ? flag : env);
	else if (listen != NULL && config_parse_listen(listen, host,
	    sizeof(host), &port) == 0 && port != 0)
		rc = util_fmt(out, len, strchr(host, ':') != NULL ?
		    "http://[%s]:%u" : "http://%s:%u", host, (unsigned)port);
	else
		rc = util_fmt(out, len, "%s", DEPLOY_CLI_API_DEFAULT);

	if (rc != 0 || (strncmp(out, "http://", 7) != 0 &&
	    strncmp(out, "https://", 8) != 0)) {
		cli_error("the API URL must be http:// or https:// and at "
		    "most %zu bytes", len - 1);
		return -1;
	}
	for (n = strlen(out); n > 0 && out[n - 1] == '/'; n--)
		out[n - 1] = '\0';
	return 0;
}

/* The token from the flag or WHARF_TOKEN, or NULL (reported). */
static const char *
deploy_cli_token(const char *flag)
{
	const char *token = flag != NULL ? flag : getenv("WHARF_TOKEN");

	if (token == NULL || token[0] == '\0') {
		cli_error("no API token: pass --token TOKEN or set "
		    "WHARF_TOKEN.  Get one with `wharf token EMAIL` on the "
		    "server, or from POST /api/auth/login");
		return NULL;
	}
	for (const char *p = token; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f) {
			cli_error("the token holds a space or a control "
			    "character: it is not an API token");
			return NULL;
		}
	if (strlen(token) > DEPLOY_CLI_TOKEN_MAX) {
		cli_error("the token is longer than %d bytes",
		    DEPLOY_CLI_TOKEN_MAX);
		return NULL;
	}
	return token;
}

/* --config must be a JSON object; the server checks its keys. */
static int
deploy_cli_check_config(const char *config)
{
	json_error_t jerr;
	json_t *json;
	int rc = 0;

	if (config == NULL)
		return 0;
	json = json_loads(config, 0, &jerr);
	if (!json_is_object(json)) {
		cli_error("--config must be a JSON object (%s)", json == NULL ?
		    jerr.text : "this is another JSON value");
		rc = -1;
	}
	json_decref(json);
	return rc;
}

/* -- zipping a folder ---------------------------------------------- */

static int deploy_cli_zip_dir(struct deploy_cli_zip *z, int fd, int depth);

/*
 * Why the server's extractor would refuse this entry name, or NULL.
 * Runs in the C.UTF-8 locale, where mbstowcs() checks the encoding.
 */
static const char *
deploy_cli_bad_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "holds a control character";
		else if (*p == '\\')
			return "holds a backslash";
	if (mbstowcs(NULL, name, 0) == (size_t)-1)
		return "is not valid UTF-8";
	return NULL;
}

static int
deploy_cli_zip_header(struct deploy_cli_zip *z, const struct stat *st)
{
	const char *why = deploy_cli_bad_name(z->rel);
	struct archive_entry *entry;
	int r;

	if (why != NULL) {
		cli_error("cannot zip %s: its name %s, which the server "
		    "refuses; rename it", z->rel, why);
		return -1;
	}
	if ((entry = archive_entry_new()) == NULL) {
		cli_error("out of memory");
		return -1;
	}
	archive_entry_copy_pathname(entry, z->rel);
	archive_entry_set_filetype(entry, S_ISDIR(st->st_mode) ? AE_IFDIR :
	    AE_IFREG);
	archive_entry_set_perm(entry, S_ISDIR(st->st_mode) ? 0755 :
	    st->st_mode & 0755);
	archive_entry_set_size(entry, S_ISDIR(st->st_mode) ? 0 :
	    st->st_size);
	archive_entry_set_mtime(entry, st->st_mtim.tv_sec, 0);

	r = archive_write_header(z->ar, entry);
	archive_entry_free(entry);
	if (r == ARCHIVE_WARN)
		fprintf(stderr, "wharf: %s: %s\n", z->rel,
		    archive_error_string(z->ar));
	else if (r != ARCHIVE_OK) {
		cli_error("cannot zip %s: %s", z->rel,
		    archive_error_string(z->ar));
		return -1;
	}
	return 0;
}

/* A regular file, opened without following a link, streamed in. */
static int
deploy_cli_zip_file(struct deploy_cli_zip *z, int dir, const char *name)
{
	struct stat st;
	off_t left;
	ssize_t n;
	int fd, rc = -1;

	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0) {
		cli_error("cannot open %s: %s", z->rel, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cli_error("%s changed while it was being zipped", z->rel);
		goto out;
	}
	if (deploy_cli_zip_header(z, &st) != 0)
		goto out;

	for (left = st.st_size; left > 0 && !deploy_cli_stop; left -= n) {
		n = read(fd, z->chunk, left < DEPLOY_CLI_CHUNK ? (size_t)left :
		    DEPLOY_CLI_CHUNK);
		if (n <= 0) {
			cli_error("cannot read %s: %s", z->rel, n < 0 ?
			    strerror(errno) : "it shrank while being zipped");
			goto out;
		}
		if (archive_write_data(z->ar, z->chunk, (size_t)n) != n) {
			cli_error("cannot zip %s: %s", z->rel,
			    archive_error_string(z->ar));
			goto out;
		}
	}
	z->files++;
	rc = deploy_cli_stop ? -1 : 0;
out:
	close(fd);
	return rc;
}

/* A subfolder: its own entry ("name/"), then what it holds. */
static int
deploy_cli_zip_subdir(struct deploy_cli_zip *z, int dir, const char *name,
    const struct stat *st, int depth)
{
	size_t len = strlen(z->rel);
	int fd;

	if (depth >= DEPLOY_CLI_DEPTH_MAX || len + 2 > sizeof(z->rel)) {
		cli_error("%s: folders nested too deep", z->rel);
		return -1;
	}
	fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0) {
		cli_error("cannot open %s: %s", z->rel, strerror(errno));
		return -1;
	}
	memcpy(z->rel + len, "/", 2);
	if (deploy_cli_zip_header(z, st) != 0) {
		close(fd);
		return -1;
	}
	z->folders++;
	return deploy_cli_zip_dir(z, fd, depth + 1);
}

/* One name in a folder: zipped, recursed into, or skipped (said so). */
static int
deploy_cli_zip_name(struct deploy_cli_zip *z, int dir, const char *name,
    int depth)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		cli_error("cannot read %s: %s", z->rel, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode))
		return deploy_cli_zip_file(z, dir, name);
	if (S_ISLNK(st.st_mode)) {
		fprintf(stderr, "wharf: skipping %s: a symbolic link\n",
		    z->rel);
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "wharf: skipping %s: not a regular file or "
		    "a folder\n", z->rel);
		return 0;
	}
	if (strcmp(name, ".git") == 0 || strcmp(name, "node_modules") == 0) {
		fprintf(stderr, "wharf: leaving out %s/\n", z->rel);
		return 0;
	}
	return deploy_cli_zip_subdir(z, dir, name, &st, depth);
}

/*
 * Adds what the open folder fd holds, its path in the ZIP being z->rel
 * ("" or ending in '/').  Takes fd over.
 */
static int
deploy_cli_zip_dir(struct deploy_cli_zip *z, int fd, int depth)
{
	size_t base = strlen(z->rel);
	struct dirent *de;
	DIR *dir;
	int rc = -1;

	dir = fdopendir(fd);
	if (dir == NULL) {
		cli_error("cannot read the folder %s: %s", z->rel,
		    strerror(errno));
		close(fd);
		return -1;
	}
	while (!deploy_cli_stop) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0)
				cli_error("cannot read the folder %s: %s",
				    z->rel, strerror(errno));
			rc = errno != 0 ? -1 : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (util_fmt(z->rel + base, sizeof(z->rel) - base, "%s",
		    de->d_name) != 0) {
			cli_error("a path in the folder is too long: %s",
			    z->rel);
			break;
		}
		if (deploy_cli_zip_name(z, dirfd(dir), de->d_name, depth) != 0)
			break;
		z->rel[base] = '\0';
	}
	z->rel[base] = '\0';
	closedir(dir);
	return rc;
}

/*
 * Zips folder into a new temp file in $TMPDIR (or /tmp) whose name is
 * written into path as soon as it exists: the caller removes it,
 * whatever this returns.  0, or -1 (reported).
 */
static int
deploy_cli_zip_folder(const char *folder, char *path, size_t pathlen)
{
	const char *tmpdir = getenv("TMPDIR");
	struct deploy_cli_zip z = { 0 };
	int fd = -1, dir = -1, rc = -1;
	locale_t utf8, saved;

	if (tmpdir == NULL || tmpdir[0] == '\0')
		tmpdir = "/tmp";
	if (util_fmt(path, pathlen, "%s/wharf-deploy-XXXXXX", tmpdir) != 0 ||
	    (fd = mkostemp(path, O_CLOEXEC)) < 0) {
		cli_error("cannot create a temp file in %s: %s", tmpdir,
		    strerror(errno));
		path[0] = '\0';
		return -1;
	}
	dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		cli_error("cannot open %s: %s", folder, strerror(errno));
		goto out;
	}

	z.ar = archive_write_new();
	z.chunk = malloc(DEPLOY_CLI_CHUNK);
	if (z.ar == NULL || z.chunk == NULL ||
	    archive_write_set_format_zip(z.ar) != ARCHIVE_OK ||
	    archive_write_zip_set_compression_deflate(z.ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(z.ar, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(z.ar, fd) != ARCHIVE_OK) {
		cli_error("cannot start the ZIP: %s", z.ar != NULL ?
		    archive_error_string(z.ar) : "out of memory");
		goto out;
	}

	/* UTF-8 names, flagged as such in the ZIP, whatever LANG says. */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	saved = utf8 != (locale_t)0 ? uselocale(utf8) : (locale_t)0;
	rc = deploy_cli_zip_dir(&z, dir, 0);
	dir = -1;                               /* closed by zip_dir */
	if (rc == 0 && archive_write_close(z.ar) != ARCHIVE_OK) {
		cli_error("cannot finish the ZIP %s: %s", path,
		    archive_error_string(z.ar));
		rc = -1;
	}
	if (utf8 != (locale_t)0) {
		uselocale(saved);
		freelocale(utf8);
	}
	if (deploy_cli_stop)
		cli_error("interrupted");
	else if (rc == 0 && z.files == 0) {
		cli_error("%s holds no file to deploy", folder);
		rc = -1;
	} else if (rc == 0)
		fprintf(stderr, "zipped %ld files in %ld folders\n", z.files,
		    z.folders);
out:
	archive_write_free(z.ar);
	free(z.chunk);
	if (dir >= 0)
		close(dir);
	close(fd);
	return deploy_cli_stop ? -1 : rc;
}

/* -- HTTP ------------------------------------------------------------ */

static int
deploy_cli_buf_grow(struct deploy_cli_buf *buf, size_t need)
{
	size_t size = buf->size > 0 ? buf->size : 4096;
	char *data;

	if (need <= buf->size)
		return 0;
	while (size < need)
		size *= 2;
	data = realloc(buf->data, size);
	if (data == NULL)
		return -1;
	buf->data = data;
	buf->size = size;
	return 0;
}

/* libcurl's write callback: appends, keeping within buf->max. */
static size_t
deploy_cli_collect(char *ptr, size_t one, size_t count, void *arg)
{
	struct deploy_cli_buf *buf = arg;
	size_t len = one * count, drop;

	if (buf->len + len > buf->max) {
		buf->overflow = true;
		if (!buf->tail)
			return 0;                       /* aborts */
		if (len >= buf->max) {                  /* only its end */
			ptr += len - buf->max;
			len = buf->max;
			buf->len = 0;
		} else {                                /* drop the oldest */
			drop = buf->len + len - buf->max;
			memmove(buf->data, buf->data + drop, buf->len - drop);
			buf->len -= drop;
		}
	}
	if (deploy_cli_buf_grow(buf, buf->len + len + 1) != 0)
		return 0;
	memcpy(buf->data + buf->len, ptr, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return one * count;
}

/* libcurl's progress callback: a signal aborts the transfer. */
static int
deploy_cli_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	return deploy_cli_stop != 0;
}

/* Resets the handle for one request to url, its body into buf. */
static void
deploy_cli_prepare(struct deploy_cli *s, const char *url,
    struct deploy_cli_buf *buf)
{
	CURL *curl = s->curl;

	curl_easy_reset(curl);                  /* keeps the connection */
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "wharf-deploy");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, s->curl_err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, DEPLOY_CLI_CONNECT_SEC);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, DEPLOY_CLI_STALL_SEC);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, deploy_cli_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, buf);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, deploy_cli_progress);
	buf->len = 0;
	buf->overflow = false;
}

/* Runs the prepared request: the HTTP status, or -1 (reported). */
static long
deploy_cli_perform(struct deploy_cli *s, const char *method,
    const char *url, const struct deploy_cli_buf *buf)
{
	long status = 0;
	CURLcode res;

	s->curl_err[0] = '\0';
	res = curl_easy_perform(s->curl);
	if (res == CURLE_ABORTED_BY_CALLBACK && deploy_cli_stop) {
		cli_error("interrupted");
		return -1;
	}
	if (res == CURLE_WRITE_ERROR && buf->overflow) {
		cli_error("%s %s: the answer is larger than %zu bytes", method,
		    url, buf->max);
		return -1;
	}
	if (res != CURLE_OK) {
		cli_error("%s %s: %s%s%s%s", method, url,
		    curl_easy_strerror(res), s->curl_err[0] ? " (" : "",
		    s->curl_err, s->curl_err[0] ? ")" : "");
		return -1;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* Reports an answer other than 200, with the server's message. */
static void
deploy_cli_refused(const struct deploy_cli_buf *buf, long status,
    const char *what)
{
	json_t *json = json_loadb(buf->data, buf->len, 0, NULL);
	const char *message = json_string_value(json_object_get(json,
	    "message"));
	const char *error = json_string_value(json_object_get(json, "error"));

	if (message == NULL)
		message = error;
	if (message != NULL)
		cli_error("%s refused (HTTP %ld): %s", what, status, message);
	else
		cli_error("%s refused (HTTP %ld)", what, status);
	json_decref(json);
}

/* GET url, expecting 200 and JSON: the parsed answer, or NULL. */
static json_t *
deploy_cli_get_json(struct deploy_cli *s, const char *url,
    struct deploy_cli_buf *buf, const char *what)
{
	json_t *json;
	long status;

	deploy_cli_prepare(s, url, buf);
	status = deploy_cli_perform(s, "GET", url, buf);
	if (status < 0)
		return NULL;
	if (status != 200) {
		deploy_cli_refused(buf, status, what);
		return NULL;
	}
	json = json_loadb(buf->data, buf->len, 0, NULL);
	if (json == NULL)
		cli_error("GET %s: the answer is not JSON", url);
	return json;
}

/* -- uploading ----------------------------------------------------- */

static bool
deploy_cli_valid_id(const char *id)
{
	if (id == NULL || strlen(id) != WHARF_ID_LEN)
		return false;
	for (; *id != '\0'; id++)
		if (strchr("0123456789abcdef-", *id) == NULL)
			return false;
	return true;
}

/* Reads the build's id from the upload's answer. */
static int
deploy_cli_uploaded(struct deploy_cli *s, const struct deploy_cli_buf *buf)
{
	json_t *json = json_loadb(buf->data, buf->len, 0, NULL);
	json_t *build = json_object_get(json_object_get(json, "data"),
	    "build");
	const char *id = json_string_value(json_object_get(build, "id"));
	const char *version = json_string_value(json_object_get(build,
	    "version"));
	int rc = -1;

	if (!deploy_cli_valid_id(id)) {
		cli_error("the upload's answer has no build id");
		goto out;
	}
	memcpy(s->build_id, id, WHARF_ID_LEN + 1);
	if (util_fmt(s->build_url, sizeof(s->build_url),
	    "%s/api/builds/%s/builds/%s", s->api, s->opt->tenant, id) != 0) {
		cli_error("the API URL is too long");
		goto out;
	}
	fprintf(stderr, "build %s queued (version %s, %lld ahead)\n", id,
	    version != NULL ? version : "?", (long long)json_integer_value(
	    json_object_get(build, "queuePosition")));
	rc = 0;
out:
	json_decref(json);
	return rc;
}

/*
 * POSTs the ZIP at file, named name in the form, streamed from disk by
 * libcurl, with --config as buildConfig.  0, or -1 (reported).
 */
static int
deploy_cli_upload(struct deploy_cli *s, const char *file, const char *name)
{
	struct deploy_cli_buf buf = { .max = DEPLOY_CLI_JSON_MAX };
	char url[DEPLOY_CLI_URL_MAX];
	curl_mimepart *part, *config = NULL;
	curl_mime *form;
	long status;
	int rc = -1;

	form = curl_mime_init(s->curl);
	part = curl_mime_addpart(form);
	if (s->opt->config != NULL)
		config = curl_mime_addpart(form);
	if (part == NULL || (s->opt->config != NULL && (config == NULL ||
	    curl_mime_name(config, "buildConfig") != CURLE_OK ||
	    curl_mime_data(config, s->opt->config, CURL_ZERO_TERMINATED) !=
	    CURLE_OK)) ||
	    curl_mime_name(part, "file") != CURLE_OK ||
	    curl_mime_filedata(part, file) != CURLE_OK ||
	    curl_mime_filename(part, name) != CURLE_OK ||
	    curl_mime_type(part, "application/zip") != CURLE_OK) {
		cli_error("cannot prepare the upload form");
		goto out;
	}
	if (util_fmt(url, sizeof(url), "%s/api/builds/%s", s->api,
	    s->opt->tenant) != 0) {
		cli_error("the API URL is too long");
		goto out;
	}

	deploy_cli_prepare(s, url, &buf);
	curl_easy_setopt(s->curl, CURLOPT_MIMEPOST, form);
	status = deploy_cli_perform(s, "POST", url, &buf);
	curl_easy_setopt(s->curl, CURLOPT_MIMEPOST, NULL);
	if (status == 200)
		rc = deploy_cli_uploaded(s, &buf);
	else if (status > 0)
		deploy_cli_refused(&buf, status, "the upload was");
out:
	curl_mime_free(form);
	free(buf.data);
	return rc;
}

static bool
deploy_cli_is_zip(const char *path)
{
	size_t len = strlen(path);

	return len > 4 && strcasecmp(path + len - 4, ".zip") == 0;
}

/* The file's name in the form: a .zip's own, else the folder's + .zip. */
static int
deploy_cli_form_name(const char *path, bool folder, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	char *real = NULL;
	int rc;

	if (folder) {                   /* ".", "site/": the real name */
		if ((real = realpath(path, NULL)) == NULL) {
			cli_error("cannot resolve %s: %s", path,
			    strerror(errno));
			return -1;
		}
		slash = strrchr(real, '/');
		rc = util_fmt(out, len, "%s.zip", slash != NULL &&
		    slash[1] != '\0' ? slash + 1 : "site");
	} else
		rc = util_fmt(out, len, "%s", slash != NULL ? slash + 1 : path);
	free(real);
	if (rc != 0)
		cli_error("the name of %s is too long", path);
	return rc;
}

/*
 * Zips PATH when it is a folder and uploads it.  The temp ZIP is gone
 * when this returns, whatever happened.  0, or -1 (reported).
 */
static int
deploy_cli_send(struct deploy_cli *s)
{
	char zip[WHARF_PATH_MAX] = "", name[NAME_MAX + 1];
	const char *path = s->opt->path, *file = path;
	struct stat st;
	int rc = -1;

	if (stat(path, &st) != 0) {
		cli_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) &&
	    deploy_cli_is_zip(path))) {
		cli_error("%s is neither a folder nor a .zip file", path);
		return -1;
	}
	if (deploy_cli_form_name(path, S_ISDIR(st.st_mode), name,
	    sizeof(name)) != 0)
		return -1;

	deploy_cli_catch(true);
	if (S_ISDIR(st.st_mode)) {
		if (deploy_cli_zip_folder(path, zip, sizeof(zip)) != 0)
			goto out;
		file = zip;
	}
	if (stat(file, &st) == 0)
		fprintf(stderr, "uploading %s (%lld bytes) to %s\n", name,
		    (long long)st.st_size, s->api);
	rc = deploy_cli_upload(s, file, name);
out:
	if (zip[0] != '\0')
		unlink(zip);
	deploy_cli_catch(false);
	return rc;
}

/* -- following the build ----------------------------------------- */

/* Tells status, progress and queue changes on stderr. */
static void
deploy_cli_show(struct deploy_cli_seen *seen, json_t *build,
    const char *status)
{
	json_int_t progress = json_integer_value(json_object_get(build,
	    "progress"));
	json_int_t ahead = json_integer_value(json_object_get(build,
	    "queuePosition"));

	if (strcmp(seen->status, status) == 0 && seen->progress == progress &&
	    seen->ahead == ahead)
		return;
	snprintf(seen->status, sizeof(seen->status), "%s", status);
	seen->progress = progress;
	seen->ahead = ahead;
	if (strcmp(status, "pending") == 0)
		fprintf(stderr, "pending (%lld ahead)\n", (long long)ahead);
	else
		fprintf(stderr, "%s %lld%%\n", status, (long long)progress);
}

/* The site URL on stdout, the immutable one on stderr. */
static int
deploy_cli_success(json_t *build)
{
	json_t *urls = json_object_get(build, "urls");
	const char *site = json_string_value(json_object_get(urls, "site"));
	const char *pinned = json_string_value(json_object_get(urls,
	    "deployment"));

	if (site == NULL && pinned == NULL) {
		cli_error("the build succeeded but the API gives no URL");
		return CLI_FAIL;
	}
	if (site == NULL) {
		fprintf(stderr, "wharf: published, but another deployment "
		    "is live now; this one stays at:\n");
		site = pinned;
	}
	printf("%s\n", site);
	fflush(stdout);
	if (pinned != NULL)
		fprintf(stderr, "immutable URL: %s\n", pinned);
	return CLI_OK;
}

/* Where the last lines of text (len bytes) start. */
static const char *
deploy_cli_last_lines(const char *text, size_t len, int lines)
{
	size_t i = len;

	if (i > 0 && text[i - 1] == '\n')
		i--;
	for (; i > 0; i--)
		if (text[i - 1] == '\n' && --lines == 0)
			return text + i;
	return text;
}

/* The last lines of the build's log, on stderr. */
static void
deploy_cli_log_tail(struct deploy_cli *s)
{
	struct deploy_cli_buf buf = { .max = DEPLOY_CLI_LOG_KEEP,
	    .tail = true };
	char url[DEPLOY_CLI_URL_MAX + 8];
	long status;

	snprintf(url, sizeof(url), "%s/logs", s->build_url);
	deploy_cli_prepare(s, url, &buf);
	status = deploy_cli_perform(s, "GET", url, &buf);
	if (status != 200) {
		if (status > 0)
			deploy_cli_refused(&buf, status, "reading the log was");
		goto out;
	}
	if (buf.len == 0) {
		fputs("(the build log is empty)\n", stderr);
		goto out;
	}
	fprintf(stderr, "--- last %d lines of the build log ---\n%s",
	    DEPLOY_CLI_LOG_LINES, deploy_cli_last_lines(buf.data, buf.len,
	    DEPLOY_CLI_LOG_LINES));
	if (buf.data[buf.len - 1] != '\n')
		fputc('\n', stderr);
out:
	free(buf.data);
}

/* A failed or cancelled build: why, then the end of its log. */
static int
deploy_cli_failure(struct deploy_cli *s, json_t *build, const char *status)
{
	const char *step = json_string_value(json_object_get(build,
	    "errorStep"));
	const char *message = json_string_value(json_object_get(build,
	    "errorMessage"));

	if (strcmp(status, "cancelled") == 0)
		cli_error("build %s was cancelled", s->build_id);
	else
		cli_error("build %s failed at step %s: %s", s->build_id,
		    step != NULL && step[0] != '\0' ? step : "(unknown)",
		    message != NULL && message[0] != '\0' ? message :
		    "(no message)");
	deploy_cli_log_tail(s);
	return CLI_FAIL;
}

static void
deploy_cli_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls the build until it ends.  CLI_OK once it succeeded. */
static int
deploy_cli_follow(struct deploy_cli *s)
{
	struct deploy_cli_buf buf = { .max = DEPLOY_CLI_JSON_MAX };
	struct deploy_cli_seen seen = { "", -1, -1 };
	json_t *json = NULL, *build;
	const char *status;
	int rc = CLI_FAIL;

	fprintf(stderr, "following build %s (Ctrl-C stops following; the "
	    "build goes on)\n", s->build_id);
	for (;;) {
		json_decref(json);
		json = deploy_cli_get_json(s, s->build_url, &buf,
		    "reading the build was");
		build = json_object_get(json_object_get(json, "data"),
		    "build");
		status = json_string_value(json_object_get(build, "status"));
		if (json != NULL && status == NULL)
			cli_error("GET %s: the answer has no build status",
			    s->build_url);
		if (status == NULL)
			break;

		deploy_cli_show(&seen, build, status);
		if (strcmp(status, "success") == 0) {
			rc = deploy_cli_success(build);
			break;
		}
		if (strcmp(status, "failed") == 0 ||
		    strcmp(status, "cancelled") == 0) {
			rc = deploy_cli_failure(s, build, status);
			break;
		}
		deploy_cli_sleep_ms(DEPLOY_CLI_POLL_MS);
	}
	json_decref(json);
	free(buf.data);
	return rc;
}

/* -- the command --------------------------------------------------- */

static int
deploy_cli_run(struct deploy_cli *s, const char *token)
{
	char auth[DEPLOY_CLI_TOKEN_MAX + 32];
	int rc = CLI_FAIL;

	s->curl = curl_easy_init();
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	s->headers = curl_slist_append(NULL, auth);
	explicit_bzero(auth, sizeof(auth));
	if (s->curl == NULL || s->headers == NULL) {
		cli_error("cannot start libcurl");
		goto out;
	}
	if (deploy_cli_send(s) != 0)
		goto out;
	if (s->opt->no_wait) {
		printf("%s\n", s->build_id);
		rc = CLI_OK;
		goto out;
	}
	rc = deploy_cli_follow(s);
out:
	curl_slist_free_all(s->headers);
	curl_easy_cleanup(s->curl);
	return rc;
}

int
cmd_deploy(int argc, char **argv)
{
	struct deploy_cli_opts opt = { 0 };
	struct deploy_cli s = { .opt = &opt };
	const char *token;
	int rc;

	if (cli_wants_help(argc, argv)) {
		fputs(deploy_cli_usage, stdout);
		return CLI_OK;
	}
	if (deploy_cli_parse(argc, argv, &opt) != 0) {
		fputs(deploy_cli_usage, stderr);
		return CLI_USAGE;
	}
	if (!auth_valid_slug(opt.tenant)) {
		cli_error("'%s' is not a tenant slug: use 1 to 63 of a-z, 0-9 "
		    "and '-', not starting or ending with '-'", opt.tenant);
		return CLI_FAIL;
	}
	if ((token = deploy_cli_token(opt.token)) == NULL ||
	    deploy_cli_api_url(opt.api, s.api, sizeof(s.api)) != 0 ||
	    deploy_cli_check_config(opt.config) != 0)
		return CLI_FAIL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_error("cannot initialise libcurl");
		return CLI_FAIL;
	}
	rc = deploy_cli_run(&s, token);
	curl_global_cleanup();
	return rc;
}
