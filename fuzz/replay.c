/*
 * replay: runs a fuzz target over files, without libFuzzer, so that any
 * compiler builds it and `make check` can run a corpus under ASan and
 * UBSan.
 *
 *   fuzz_<target> FILE|FOLDER...
 *
 * Each file (a folder stands for the files in it) is one input; prints
 * one TAP line per input.  A property that fails aborts (see fuzz.h):
 * the last line printed names the input to blame.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_count;

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)len + 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		printf("not ok %d - %s: %s\n", ++replay_count, path,
		    strerror(errno ? errno : EIO));
		free(buf);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	printf("# %s\n", path);
	fflush(stdout);
	(void)LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	printf("ok %d - %s\n", ++replay_count, path);
	return 0;
}

static int
replay_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	char sub[4096];
	int n, rc = 0;

	if (stat(path, &st) != 0) {
		printf("not ok %d - %s: %s\n", ++replay_count, path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	n = scandir(path, &names, NULL, alphasort);   /* a stable order */
	if (n < 0) {
		printf("not ok %d - %s: %s\n", ++replay_count, path,
		    strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path,
			    names[i]->d_name);
			if (replay_path(sub) != 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i]) != 0)
			rc = 1;
	printf("1..%d\n", replay_count);
	return rc;
}
