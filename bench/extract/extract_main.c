/*
 * extract_main: runs Wharf's extractor, build_extract(), alone on one
 * archive, for bench/extract/run.sh.
 *
 *   extract_main ZIP DEST
 *
 * Extracts ZIP into DEST with the default limits and prints one line:
 * "entries=N files=N dirs=N bytes=N seconds=S" (S: the call alone, on
 * the monotonic clock).  On failure prints the extractor's message on
 * stderr and exits 1; a wrong command line exits 2.
 */
#include <stdio.h>
#include <time.h>

#include "build/extract.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct extract_stats stats;
	enum extract_result res;
	char err[1024];
	double t0, t1;

	if (argc != 3) {
		fprintf(stderr, "usage: extract_main ZIP DEST\n");
		return 2;
	}
	t0 = now();
	res = build_extract(argv[1], argv[2], NULL, &stats, err, sizeof(err));
	t1 = now();
	if (res != EXTRACT_OK) {
		fprintf(stderr, "extract_main: %s (result %d)\n", err,
		    (int)res);
		return 1;
	}
	printf("entries=%llu files=%llu dirs=%llu bytes=%llu seconds=%.6f\n",
	    (unsigned long long)stats.entries,
	    (unsigned long long)stats.files,
	    (unsigned long long)stats.dirs,
	    (unsigned long long)stats.bytes, t1 - t0);
	return 0;
}
