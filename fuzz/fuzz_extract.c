/*
 * fuzz_extract: the build's ZIP extractor (src/build/extract.c), which
 * unpacks what a tenant uploaded.
 *
 * Input: a ZIP.  It is written to a scratch folder and extracted into
 * "out" beside it, with small limits.  Properties, besides memory
 * safety:
 *   - nothing appears in the scratch folder but the ZIP and "out";
 *   - under "out" there are only regular files and folders (no link,
 *     device or FIFO), none with a set-uid, set-gid or sticky bit;
 *   - a success counts the files it wrote and stays within the limits;
 *     a failure says why.
 * The scratch folder is made once per process and emptied after each
 * input.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/extract.h"
#include "fuzz.h"

static char fuzz_root[64];
static uint64_t fuzz_files, fuzz_bytes;

static int
fuzz_visit(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	fuzz_check(flag == FTW_F || flag == FTW_D || flag == FTW_DP);
	fuzz_check(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode));
	fuzz_check((st->st_mode & (S_ISUID | S_ISGID | S_ISVTX)) == 0);
	if (S_ISREG(st->st_mode)) {
		fuzz_files++;
		fuzz_bytes += (uint64_t)st->st_size;
	}
	return 0;
}

static int
fuzz_remove(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

/* Only "in.zip" and "out" (when made) in the scratch folder. */
static void
fuzz_check_root(void)
{
	DIR *d = opendir(fuzz_root);
	struct dirent *e;

	fuzz_check(d != NULL);
	while ((e = readdir(d)) != NULL)
		fuzz_check(strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, "in.zip") == 0 ||
		    strcmp(e->d_name, "out") == 0);
	closedir(d);
}

static void
fuzz_cleanup(void)
{
	if (fuzz_root[0] != '\0')
		(void)nftw(fuzz_root, fuzz_remove, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct extract_limits lim = { 64, 1 << 20, 256 };
	struct extract_stats stats = { 0 };
	enum extract_result rc;
	char zip[96], out[96], err[1024] = "";
	int fd;

	if (fuzz_root[0] == '\0') {
		snprintf(fuzz_root, sizeof(fuzz_root),
		    "/tmp/wharf-fuzz-extract-XXXXXX");
		fuzz_check(mkdtemp(fuzz_root) != NULL);
		atexit(fuzz_cleanup);
	}
	snprintf(zip, sizeof(zip), "%s/in.zip", fuzz_root);
	snprintf(out, sizeof(out), "%s/out", fuzz_root);
	fd = open(zip, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fuzz_check(fd >= 0);
	fuzz_check(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);

	rc = build_extract(zip, out, &lim, &stats, err, sizeof(err));
	fuzz_check_root();
	fuzz_files = fuzz_bytes = 0;
	if (access(out, F_OK) == 0)
		fuzz_check(nftw(out, fuzz_visit, 16, FTW_PHYS) == 0);
	if (rc == EXTRACT_OK) {
		fuzz_check(fuzz_files == stats.files);
		fuzz_check(fuzz_bytes == stats.bytes);
		fuzz_check(stats.entries <= lim.max_entries &&
		    stats.bytes <= lim.max_bytes);
	} else {
		fuzz_check(err[0] != '\0');
	}
	(void)nftw(out, fuzz_remove, 16, FTW_DEPTH | FTW_PHYS);
	unlink(zip);
	return 0;
}
