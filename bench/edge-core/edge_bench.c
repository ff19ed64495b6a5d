/*
 * edge_bench: serves the regular files of one folder through the
 * edge's HTTP/1.1 core (src/edge/http1.c), for bench/edge-core/run.sh.
 * Not a test and not part of wharf: the routing, caching and safety of
 * the real edge live elsewhere.
 *
 *   edge_bench [-l HOST:PORT] [-t THREADS] [-m mem|fd] [-r] DIR
 *
 * -m mem serves each file from a copy in memory (writev), -m fd from
 * an open descriptor (sendfile).  -r prints the requests answered in
 * each second on stdout, so that a stall cannot hide in an average.
 * Runs until SIGINT or SIGTERM, then prints the server's counters.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edge/http1.h"

#define BENCH_FILES_MAX         64

struct bench_file {
	char    path[256];      /* "/name" */
	char   *data;
	int     fd;
	size_t  size;
	char    etag[40];
	const char *type;
};

struct bench_site {
	struct bench_file files[BENCH_FILES_MAX];
	size_t            nfiles;
	bool              from_fd;
	char              last_modified[64];
};

static const char *
bench_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	return "application/octet-stream";
}

static int
bench_load_file(struct bench_site *site, const char *dir, const char *name)
{
	struct bench_file *f = &site->files[site->nfiles];
	char full[4096];
	struct stat st;

	snprintf(full, sizeof(full), "%s/%s", dir, name);
	f->fd = open(full, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto skip;
	f->size = (size_t)st.st_size;
	f->data = malloc(f->size + 1);
	if (f->data == NULL ||
	    pread(f->fd, f->data, f->size, 0) != (ssize_t)f->size)
		goto skip;
	if (strlen(name) + 2 > sizeof(f->path))
		goto skip;
	f->path[0] = '/';
	memcpy(f->path + 1, name, strlen(name) + 1);
	snprintf(f->etag, sizeof(f->etag), "\"%lx-%zx\"",
	    (unsigned long)st.st_mtime, f->size);
	f->type = bench_type(name);
	site->nfiles++;
	return 0;

skip:
	if (f->fd >= 0)
		close(f->fd);
	free(f->data);
	memset(f, 0, sizeof(*f));
	return -1;
}

static int
bench_load(struct bench_site *site, const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	time_t now = time(NULL);
	struct tm tm;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && site->nfiles < BENCH_FILES_MAX)
		if (de->d_name[0] != '.')
			bench_load_file(site, dir, de->d_name);
	closedir(d);
	gmtime_r(&now, &tm);
	strftime(site->last_modified, sizeof(site->last_modified),
	    "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return site->nfiles > 0 ? 0 : -1;
}

/* What nginx would send for a static file, minus Server. */
static void
bench_handler(void *ctx, const struct edge_request *req,
    struct edge_response *resp)
{
	struct bench_site *site = ctx;
	struct bench_file *f = NULL;

	if (strcmp(req->method, "GET") != 0 && !req->head) {
		edge_response_status(resp, 405);
		edge_response_header(resp, "Allow", "GET, HEAD");
		return;
	}
	for (size_t i = 0; i < site->nfiles && f == NULL; i++)
		if (strcmp(site->files[i].path, req->path) == 0)
			f = &site->files[i];
	if (f == NULL) {
		edge_response_status(resp, 404);
		return;
	}
	edge_response_status(resp, 200);
	edge_response_header(resp, "Content-Type", f->type);
	edge_response_header(resp, "Last-Modified", site->last_modified);
	edge_response_header(resp, "ETag", f->etag);
	edge_response_header(resp, "Accept-Ranges", "bytes");
	if (site->from_fd)
		edge_response_body_file(resp, f->fd, 0, f->size, NULL, NULL);
	else
		edge_response_body_mem(resp, f->data, f->size, NULL, NULL);
}

static int
bench_usage(void)
{
	fprintf(stderr, "usage: edge_bench [-l HOST:PORT] [-t THREADS] "
	    "[-m mem|fd] [-r] DIR\n");
	return 2;
}

/* Waits for SIGINT or SIGTERM, printing per-second rates if asked. */
static void
bench_wait(struct edge_server *srv, bool rates)
{
	struct timespec second = { 1, 0 };
	uint64_t last = 0;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		struct edge_stats st;

		sig = sigtimedwait(&set, NULL, &second);
		if (sig == SIGINT || sig == SIGTERM)
			return;
		if (!rates)
			continue;
		edge_server_stats(srv, -1, &st);
		printf("%llu\n", (unsigned long long)(st.requests - last));
		fflush(stdout);
		last = st.requests;
	}
}

int
main(int argc, char **argv)
{
	static struct bench_site site;
	const char *listen = "127.0.0.1:8090";
	struct edge_server *srv;
	struct edge_stats st;
	bool rates = false;
	int threads = 0, opt;
	char err[256];
	sigset_t set;

	while ((opt = getopt(argc, argv, "l:t:m:r")) != -1) {
		switch (opt) {
		case 'l': listen = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'm': site.from_fd = strcmp(optarg, "fd") == 0; break;
		case 'r': rates = true; break;
		default: return bench_usage();
		}
	}
	if (optind != argc - 1)
		return bench_usage();
	if (bench_load(&site, argv[optind]) != 0) {
		fprintf(stderr, "edge_bench: no files in %s\n", argv[optind]);
		return 1;
	}

	/* Blocked before the loop threads start, which inherit nothing. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	srv = edge_server_start(listen, threads, bench_handler, &site, err,
	    sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, "edge_bench: %s\n", err);
		return 1;
	}
	fprintf(stderr, "edge_bench: %zu files on port %u, %d threads, %s\n",
	    site.nfiles, (unsigned)edge_server_port(srv),
	    edge_server_threads(srv), site.from_fd ? "sendfile" : "memory");

	bench_wait(srv, rates);
	for (int i = 0; i < edge_server_threads(srv); i++) {
		edge_server_stats(srv, i, &st);
		fprintf(stderr, "edge_bench: thread %d: requests=%llu "
		    "conns=%llu\n", i, (unsigned long long)st.requests,
		    (unsigned long long)st.conns_accepted);
	}
	edge_server_stats(srv, -1, &st);
	edge_server_stop(srv);
	fprintf(stderr, "edge_bench: requests=%llu bytes=%llu conns=%llu "
	    "refused=%llu 4xx=%llu 5xx=%llu\n",
	    (unsigned long long)st.requests,
	    (unsigned long long)st.bytes_out,
	    (unsigned long long)st.conns_accepted,
	    (unsigned long long)st.conns_refused,
	    (unsigned long long)st.status_4xx,
	    (unsigned long long)st.status_5xx);
	return 0;
}
