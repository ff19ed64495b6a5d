/*
 * blob_local: the local-folder backend.
 *
 * An object is the file <root>/<key>.  A write goes to a temp file
 * <root>/.tmp/<pid>.<16 hex> on the same filesystem; commit syncs it,
 * creates the key's folders, renames it into place and syncs the
 * folder, so a reader opens either the old file or the new one, never
 * a part.  A crash leaves at most a temp file, which the next open
 * removes once its process is gone.
 *
 * Every path is walked one folder at a time from root's descriptor
 * with O_NOFOLLOW, so a symlink planted anywhere in the tree is never
 * followed.  The descriptors of root and .tmp are set at open and only
 * read afterwards, so a store may be shared by threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "blob/blob_impl.h"
#include "core/core.h"
#include "core/log.h"

#define BLOB_LOCAL_TMP          ".tmp"
#define BLOB_LOCAL_DIR_MODE     0700
#define BLOB_LOCAL_FILE_MODE    0600
#define BLOB_LOCAL_TEMP_MAX     48      /* "<pid>.<16 hex>" and NUL */
#define BLOB_LOCAL_RENAME_TRIES 8       /* against a racing prune */
#define BLOB_LOCAL_DEPTH_MAX    (BLOB_KEY_MAX / 2)
#define BLOB_LOCAL_COPY_MAX     (1 << 30)       /* bytes per syscall */
#define BLOB_LOCAL_PID_MAX      4194304         /* Linux's PID_MAX_LIMIT */
/* A writer starts the write-back of every this many bytes it wrote. */
#define BLOB_LOCAL_FLUSH_STEP   (8u << 20)
/* A copy method that does not apply to these descriptors. */
#define BLOB_LOCAL_UNSUPPORTED  1

struct blob_local {
	struct blob_store head;
	int               root_fd;
	int               tmp_fd;
};

struct blob_local_writer {
	struct blob_writer head;
	int                fd;
	char               temp[BLOB_LOCAL_TEMP_MAX];  /* name in .tmp */
	uint64_t           written;     /* bytes so far */
	uint64_t           flushed;     /* write-back started up to here */
};

/* What blob_local_list walks with. */
struct blob_local_lister {
	char   key[BLOB_KEY_MAX + 1];   /* folder being walked, then name */
	int  (*fn)(void *ctx, const char *key, uint64_t size);
	void  *ctx;
	int    stopped;                 /* fn returned non-zero */
};

/* Helpers */

/* Logs an unexpected error rc (a negative errno) with key; returns rc. */
static int
blob_local_fail(const char *event, const char *key, int rc)
{
	char quoted[BLOB_KEY_MAX + 8];

	errno = -rc;
	log_warn(event, "key=%s", log_q(quoted, sizeof(quoted), key));
	return rc;
}

/*
 * Opens folder name in dirfd without following a symlink: fd, or
 * -ELOOP for a symlink, -ENOTDIR for another file, -errno.
 */
static int
blob_local_open_dir(int dirfd, const char *name)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != ENOTDIR)
		return -errno;

	/* Linux says ENOTDIR for a symlink too: tell them apart. */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return -ELOOP;
	return -ENOTDIR;
}

/*
 * As blob_local_open_dir; when create is set and name is missing,
 * makes it and syncs dirfd so that the new entry is durable.
 */
static int
blob_local_subdir(int dirfd, const char *name, int create)
{
	int fd;

	fd = blob_local_open_dir(dirfd, name);
	if (fd != -ENOENT || !create)
		return fd;
	if (mkdirat(dirfd, name, BLOB_LOCAL_DIR_MODE) == 0) {
		if (fsync(dirfd) != 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	return blob_local_open_dir(dirfd, name);
}

/* A directory stream over fd, which it takes over.  0 or -errno. */
static int
blob_local_dir_stream(int fd, DIR **dir)
{
	int rc;

	*dir = fdopendir(fd);
	if (*dir != NULL)
		return 0;
	rc = -errno;
	close(fd);
	return rc;
}

/* Length of key[0..len) up to its last '/', 0 when it has none. */
static size_t
blob_local_dirname_len(const char *key, size_t len)
{
	const char *slash = memrchr(key, '/', len);

	return slash == NULL ? 0 : (size_t)(slash - key);
}

/*
 * Walks the folders of key[0..len) (a key or a folder of one) and
 * returns in *dirfd a descriptor of the folder holding its last
 * segment, which goes into name; creates missing folders when create
 * is set.  The caller closes *dirfd, and uses it only with the *at()
 * calls and fsync(): for root it shares root_fd's read position.
 * 0 or -errno.
 */
static int
blob_local_parent(struct blob_local *bl, const char *key, size_t len,
    int create, int *dirfd, char name[BLOB_SEGMENT_MAX + 1])
{
	const char *seg = key, *end = key + len, *slash;
	size_t seglen;
	int fd, next;

	fd = fcntl(bl->root_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		slash = memchr(seg, '/', (size_t)(end - seg));
		seglen = (size_t)((slash != NULL ? slash : end) - seg);

		memcpy(name, seg, seglen);
		name[seglen] = '\0';
		if (slash == NULL)
			break;
		next = blob_local_subdir(fd, name, create);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
		seg = slash + 1;
	}
	*dirfd = fd;
	return 0;
}

/* Opens the folder key[0..len), root when len is 0. */
static int
blob_local_folder(struct blob_local *bl, const char *key, size_t len,
    int *fd)
{
	char name[BLOB_SEGMENT_MAX + 1];
	int dirfd, rc;

	/* A new open file, not a dup: readdir() moves its position. */
	if (len == 0) {
		*fd = blob_local_open_dir(bl->root_fd, ".");
		return *fd >= 0 ? 0 : *fd;
	}
	rc = blob_local_parent(bl, key, len, 0, &dirfd, name);
	if (rc != 0)
		return rc;
	*fd = blob_local_open_dir(dirfd, name);
	close(dirfd);
	return *fd >= 0 ? 0 : *fd;
}

/*
 * Whether a file of this mode is an object: 0 for a regular file,
 * -ENOENT for a folder (no object there), -ELOOP for a symlink and
 * -EIO for anything else planted in the tree.
 */
static int
blob_local_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return 0;
	if (S_ISDIR(mode))
		return -ENOENT;
	return S_ISLNK(mode) ? -ELOOP : -EIO;
}

/* A missing folder on the way means a missing object. */
static int
blob_local_missing(int rc)
{
	return rc == -ENOTDIR ? -ENOENT : rc;
}

/*
 * Opens the object at key for reading into *fd and fills *st.  Logs
 * errors other than -ENOENT.
 */
static int
blob_local_open_object(struct blob_local *bl, const char *key, int *fd,
    struct stat *st)
{
	char name[BLOB_SEGMENT_MAX + 1];
	int dirfd = -1, rc;

	*fd = -1;
	rc = blob_local_parent(bl, key, strlen(key), 0, &dirfd, name);
	if (rc != 0)
		goto out;

	/* O_NONBLOCK: a FIFO planted at key cannot stall the open. */
	*fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (*fd < 0)
		rc = -errno;
	else if (fstat(*fd, st) != 0)
		rc = -errno;
	else
		rc = blob_local_kind(st->st_mode);
out:
	rc = blob_local_missing(rc);
	if (rc != 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (rc != 0 && rc != -ENOENT)
		blob_local_fail("blob.open_failed", key, rc);
	return rc;
}

/* Writes all len bytes of buf to fd.  0 or -errno. */
static int
blob_local_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writer */

static int
blob_local_writer_begin(struct blob_store *bs, const char *key,
    struct blob_writer **out)
{
	struct blob_local *bl = (struct blob_local *)bs;
	struct blob_local_writer *w;
	unsigned char random[8];
	char hex[2 * sizeof(random) + 1];
	int rc;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->fd = -1;
	rc = util_random(random, sizeof(random));
	if (rc != 0)
		goto out;

	/* The pid lets the next open tell a live writer from debris. */
	util_hex(random, sizeof(random), hex);
	snprintf(w->temp, sizeof(w->temp), "%ld.%s", (long)getpid(), hex);
	w->fd = openat(bl->tmp_fd, w->temp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, BLOB_LOCAL_FILE_MODE);
	if (w->fd < 0)
		rc = blob_local_fail("blob.temp_failed", key, -errno);
out:
	if (rc != 0)
		free(w);
	else
		*out = &w->head;
	return rc;
}

/*
 * Starts the write-back of what was written since the last call, once
 * there is BLOB_LOCAL_FLUSH_STEP of it, without waiting for it: the
 * disk then works while the writer goes on, and commit's fsync finds
 * little left to do.  A hint only: fsync still makes the data durable
 * and reports any error, so a failure here is ignored.
 */
static void
blob_local_flush_start(struct blob_local_writer *w)
{
	if (w->written - w->flushed < BLOB_LOCAL_FLUSH_STEP)
		return;
	(void)sync_file_range(w->fd, (off_t)w->flushed,
	    (off_t)(w->written - w->flushed), SYNC_FILE_RANGE_WRITE);
	w->flushed = w->written;
}

static int
blob_local_writer_write(struct blob_writer *head, const void *buf,
    size_t len)
{
	struct blob_local_writer *w = (struct blob_local_writer *)head;
	int rc;

	rc = blob_local_write_all(w->fd, buf, len);
	if (rc != 0)
		return blob_local_fail("blob.write_failed", head->key, rc);
	w->written += len;
	blob_local_flush_start(w);
	return 0;
}

/*
 * Renames temp into place as key and syncs the key's folder.  A
 * concurrent delete may prune a folder between its creation and the
 * rename (-ENOENT): the folders are then made again.
 */
static int
blob_local_publish(struct blob_local *bl, const char *temp, const char *key)
{
	char name[BLOB_SEGMENT_MAX + 1];
	int dirfd, rc = -ENOENT;

	for (int i = 0; i < BLOB_LOCAL_RENAME_TRIES && rc == -ENOENT; i++) {
		rc = blob_local_parent(bl, key, strlen(key), 1, &dirfd, name);
		if (rc != 0)
			continue;
		rc = renameat(bl->tmp_fd, temp, dirfd, name) == 0 ? 0 : -errno;
		if (rc == 0 && fsync(dirfd) != 0)
			rc = -errno;
		close(dirfd);
	}
	return rc;
}

static int
blob_local_writer_commit(struct blob_writer *head)
{
	struct blob_local_writer *w = (struct blob_local_writer *)head;
	struct blob_local *bl = (struct blob_local *)head->bs;
	int rc;

	/* The data must be on disk before its name is. */
	rc = fsync(w->fd) == 0 ? 0 : -errno;
	if (close(w->fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = blob_local_publish(bl, w->temp, head->key);

	if (rc != 0) {
		blob_local_fail("blob.commit_failed", head->key, rc);
		(void)unlinkat(bl->tmp_fd, w->temp, 0);
	}
	free(w);
	return rc;
}

static void
blob_local_writer_abort(struct blob_writer *head)
{
	struct blob_local_writer *w = (struct blob_local_writer *)head;
	struct blob_local *bl = (struct blob_local *)head->bs;

	close(w->fd);
	if (unlinkat(bl->tmp_fd, w->temp, 0) != 0)
		blob_local_fail("blob.abort_failed", head->key, -errno);
	free(w);
}

/* Reads */

static int
blob_local_get_stream(struct blob_store *bs, const char *key,
    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx)
{
	struct blob_local *bl = (struct blob_local *)bs;
	char *chunk = NULL;
	struct stat st;
	ssize_t n;
	int fd, rc;

	rc = blob_local_open_object(bl, key, &fd, &st);
	if (rc != 0)
		goto out;
	chunk = malloc(BLOB_CHUNK_SIZE);
	if (chunk == NULL) {
		rc = -ENOMEM;
		goto out;
	}

	while (rc == 0) {
		n = read(fd, chunk, BLOB_CHUNK_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				rc = blob_local_fail("blob.read_failed", key,
				    -errno);
			break;
		}
		rc = fn(ctx, chunk, (size_t)n);
	}
out:
	free(chunk);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Copying an object to a descriptor, fastest method first */

/* In-kernel copy between files; *done grows with what it moved. */
static int
blob_local_copy_range(int src, int dst, uint64_t size, uint64_t *done)
{
	while (*done < size) {
		uint64_t left = size - *done;
		ssize_t n = copy_file_range(src, NULL, dst, NULL,
		    left < BLOB_LOCAL_COPY_MAX ? left : BLOB_LOCAL_COPY_MAX, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EINVAL ||
		    errno == EBADF || errno == ENOSYS || errno == EOPNOTSUPP))
			return BLOB_LOCAL_UNSUPPORTED;
		if (n < 0)
			return -errno;
		if (n == 0)
			return BLOB_LOCAL_UNSUPPORTED;
		*done += (uint64_t)n;
	}
	return 0;
}

/* From a file to anything (a socket, a pipe), in the kernel. */
static int
blob_local_copy_sendfile(int src, int dst, uint64_t size, uint64_t *done)
{
	while (*done < size) {
		uint64_t left = size - *done;
		ssize_t n = sendfile(dst, src, NULL,
		    left < BLOB_LOCAL_COPY_MAX ? left : BLOB_LOCAL_COPY_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			return BLOB_LOCAL_UNSUPPORTED;
		if (n < 0)
			return -errno;
		if (n == 0)
			return BLOB_LOCAL_UNSUPPORTED;
		*done += (uint64_t)n;
	}
	return 0;
}

/* Through a buffer, to the end of src. */
static int
blob_local_copy_rw(int src, int dst)
{
	char *chunk;
	ssize_t n;
	int rc = 0;

	chunk = malloc(BLOB_CHUNK_SIZE);
	if (chunk == NULL)
		return -ENOMEM;
	while (rc == 0) {
		n = read(src, chunk, BLOB_CHUNK_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		rc = blob_local_write_all(dst, chunk, (size_t)n);
	}
	free(chunk);
	return rc;
}

/*
 * Copies the size bytes from src's offset to dst's offset.  Each
 * method advances both offsets, so the next one carries on where the
 * last stopped.
 */
static int
blob_local_copy(int src, int dst, uint64_t size)
{
	uint64_t done = 0;
	int rc;

	rc = blob_local_copy_range(src, dst, size, &done);
	if (rc == BLOB_LOCAL_UNSUPPORTED)
		rc = blob_local_copy_sendfile(src, dst, size, &done);
	if (rc == BLOB_LOCAL_UNSUPPORTED)
		rc = blob_local_copy_rw(src, dst);
	return rc;
}

static int
blob_local_get_fd(struct blob_store *bs, const char *key, int out)
{
	struct blob_local *bl = (struct blob_local *)bs;
	struct stat st;
	int fd, rc;

	rc = blob_local_open_object(bl, key, &fd, &st);
	if (rc != 0)
		return rc;
	rc = blob_local_copy(fd, out, (uint64_t)st.st_size);
	if (rc != 0)
		blob_local_fail("blob.copy_failed", key, rc);
	close(fd);
	return rc;
}

static int
blob_local_open_fd(struct blob_store *bs, const char *key, int *fd,
    uint64_t *size)
{
	struct stat st;
	int rc, flags;

	rc = blob_local_open_object((struct blob_local *)bs, key, fd, &st);
	if (rc != 0)
		return rc;
	/* Opened non-blocking against FIFOs; a regular file reads alike. */
	flags = fcntl(*fd, F_GETFL);
	if (flags >= 0)
		fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
blob_local_stat(struct blob_store *bs, const char *key,
    struct blob_stat *out)
{
	struct blob_local *bl = (struct blob_local *)bs;
	char name[BLOB_SEGMENT_MAX + 1];
	struct stat st;
	int dirfd = -1, rc;

	rc = blob_local_parent(bl, key, strlen(key), 0, &dirfd, name);
	if (rc == 0)
		rc = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ?
		    blob_local_kind(st.st_mode) : -errno;
	rc = blob_local_missing(rc);
	if (dirfd >= 0)
		close(dirfd);
	if (rc != 0)
		return rc == -ENOENT ? rc :
		    blob_local_fail("blob.stat_failed", key, rc);

	out->size = (uint64_t)st.st_size;
	out->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000;
	return 0;
}

/* Removal */

/*
 * Removes the folder key[0..len) and then its parents while they are
 * empty, never root.  A folder that a writer fills meanwhile stays.
 */
static void
blob_local_prune(struct blob_local *bl, const char *key, size_t len)
{
	char name[BLOB_SEGMENT_MAX + 1];
	int dirfd, rc;

	while (len > 0) {
		if (blob_local_parent(bl, key, len, 0, &dirfd, name) != 0)
			return;
		rc = unlinkat(dirfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
		close(dirfd);
		if (rc == -ENOTEMPTY || rc == -EEXIST || rc == -ENOENT ||
		    rc == -EBUSY || rc == -ENOTDIR)
			return;
		if (rc != 0) {
			blob_local_fail("blob.prune_failed", key, rc);
			return;
		}
		len = blob_local_dirname_len(key, len);
	}
}

static int
blob_local_remove(struct blob_store *bs, const char *key)
{
	struct blob_local *bl = (struct blob_local *)bs;
	char name[BLOB_SEGMENT_MAX + 1];
	int dirfd, rc;

	rc = blob_local_parent(bl, key, strlen(key), 0, &dirfd, name);
	if (rc == 0) {
		/* A folder at key is no object: -EISDIR becomes -ENOENT. */
		rc = unlinkat(dirfd, name, 0) == 0 ? 0 : -errno;
		close(dirfd);
	}
	rc = blob_local_missing(rc == -EISDIR ? -ENOENT : rc);
	if (rc != 0)
		return rc == -ENOENT ? rc :
		    blob_local_fail("blob.delete_failed", key, rc);

	blob_local_prune(bl, key, blob_local_dirname_len(key, strlen(key)));
	return 0;
}

static int blob_local_sweep(int fd, const char *match, int depth,
    size_t *removed);

/*
 * Removes the entry name of the folder dirfd, a whole folder tree
 * included, counting the objects (regular files) in *removed.
 */
static int
blob_local_remove_entry(int dirfd, const char *name, int depth,
    size_t *removed)
{
	struct stat st;
	int fd, rc;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) != 0)
			return errno == ENOENT ? 0 : -errno;
		*removed += S_ISREG(st.st_mode) ? 1 : 0;
		return 0;
	}

	if (depth >= BLOB_LOCAL_DEPTH_MAX)
		return -ELOOP;
	fd = blob_local_open_dir(dirfd, name);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	rc = blob_local_sweep(fd, "", depth + 1, removed);
	if (rc != 0)
		return rc;

	/* A writer may have just filled it: its object stays. */
	if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT &&
	    errno != ENOTEMPTY && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Calls fn(arg, dirfd, name) for each entry of the folder fd (which it
 * closes) whose name starts with match, until fn returns nonzero.
 * "." and ".." are skipped, and in the store's root (root) every name
 * starting with '.': those are the store's own.
 */
static int
blob_local_each(int fd, const char *match, bool root,
    int (*fn)(void *arg, int dirfd, const char *name), void *arg)
{
	size_t match_len = strlen(match);
	struct dirent *ent;
	DIR *dir;
	int rc = 0;

	rc = blob_local_dir_stream(fd, &dir);
	if (rc != 0)
		return rc;
	while (rc == 0 && (errno = 0, ent = readdir(dir)) != NULL) {
		if (ent->d_name[0] == '.' && (root ||
		    strcmp(ent->d_name, ".") == 0 ||
		    strcmp(ent->d_name, "..") == 0))
			continue;
		if (strncmp(ent->d_name, match, match_len) != 0)
			continue;
		rc = fn(arg, dirfd(dir), ent->d_name);
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(dir);
	return rc;
}

struct blob_local_sweeping {
	int     depth;
	size_t *removed;
};

static int
blob_local_sweep_entry(void *arg, int dirfd, const char *name)
{
	struct blob_local_sweeping *sw = arg;

	return blob_local_remove_entry(dirfd, name, sw->depth, sw->removed);
}

/*
 * Removes every entry of the folder fd (which it closes) whose name
 * starts with match; at depth 0 (root) names starting with '.' are
 * the store's own and stay.
 */
static int
blob_local_sweep(int fd, const char *match, int depth, size_t *removed)
{
	struct blob_local_sweeping sw = { depth, removed };

	return blob_local_each(fd, match, depth == 0, blob_local_sweep_entry,
	    &sw);
}

/*
 * The folder part of prefix ("tenants/a" in "tenants/a/" and in
 * "tenants/a/b") is swept of entries starting with the rest, then
 * pruned if that left it empty.
 */
static int
blob_local_remove_prefix(struct blob_store *bs, const char *prefix,
    size_t *removed)
{
	struct blob_local *bl = (struct blob_local *)bs;
	size_t len = strlen(prefix);
	size_t dir_len = blob_local_dirname_len(prefix, len);
	const char *match = prefix + dir_len + (dir_len > 0 ? 1 : 0);
	int fd, rc;

	rc = blob_local_missing(blob_local_folder(bl, prefix, dir_len, &fd));
	if (rc == 0)
		rc = blob_local_sweep(fd, match, dir_len > 0 ? 1 : 0, removed);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return blob_local_fail("blob.delete_prefix_failed", prefix,
		    rc);

	blob_local_prune(bl, prefix, dir_len);
	return 0;
}

/* Listing */

static int blob_local_list_dir(struct blob_local_lister *l, int fd,
    size_t len, const char *match);

/*
 * Reports l->key[0..len) + name if it is an object, or walks it if it
 * is a folder.  Symlinks and anything else are no objects.
 */
static int
blob_local_list_entry(struct blob_local_lister *l, int dirfd, size_t len,
    const char *name)
{
	size_t name_len = strlen(name), sep = len > 0 ? 1 : 0;
	struct stat st;
	int fd, rc;

	/* Longer than a key can be: planted, not ours. */
	if (len + sep + name_len > BLOB_KEY_MAX)
		return 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (sep)
		l->key[len] = '/';
	memcpy(l->key + len + sep, name, name_len + 1);

	if (S_ISREG(st.st_mode)) {
		rc = l->fn(l->ctx, l->key, (uint64_t)st.st_size);
		l->stopped = rc != 0;
		return rc;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = blob_local_open_dir(dirfd, name);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	return blob_local_list_dir(l, fd, len + sep + name_len, "");
}

struct blob_local_listing {
	struct blob_local_lister *l;
	size_t                    len;
};

static int
blob_local_list_each(void *arg, int dirfd, const char *name)
{
	struct blob_local_listing *li = arg;

	return blob_local_list_entry(li->l, dirfd, li->len, name);
}

/*
 * Walks the folder fd (which it closes) holding the keys that start
 * with l->key[0..len) + '/', reporting entries that start with match.
 * At root (len 0) names starting with '.' are the store's own.
 */
static int
blob_local_list_dir(struct blob_local_lister *l, int fd, size_t len,
    const char *match)
{
	struct blob_local_listing li = { l, len };

	return blob_local_each(fd, match, len == 0, blob_local_list_each,
	    &li);
}

static int
blob_local_list(struct blob_store *bs, const char *prefix,
    int (*fn)(void *ctx, const char *key, uint64_t size), void *ctx)
{
	struct blob_local *bl = (struct blob_local *)bs;
	struct blob_local_lister *l;
	size_t dir_len = blob_local_dirname_len(prefix, strlen(prefix));
	const char *match = prefix + dir_len + (dir_len > 0 ? 1 : 0);
	int fd, rc;

	/* Big for a stack: a key's worth of path. */
	l = malloc(sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->fn = fn;
	l->ctx = ctx;
	l->stopped = 0;
	memcpy(l->key, prefix, dir_len);
	l->key[dir_len] = '\0';

	rc = blob_local_missing(blob_local_folder(bl, prefix, dir_len, &fd));
	if (rc == 0)
		rc = blob_local_list_dir(l, fd, dir_len, match);
	if (rc == -ENOENT)
		rc = 0;
	else if (rc != 0 && !l->stopped)
		blob_local_fail("blob.list_failed", prefix, rc);
	free(l);
	return rc;
}

/* Temp files */

static int
blob_local_temp_count(struct blob_store *bs, size_t *count)
{
	struct blob_local *bl = (struct blob_local *)bs;
	struct dirent *ent;
	DIR *dir;
	int fd, rc = 0;

	fd = blob_local_open_dir(bl->tmp_fd, ".");
	rc = fd >= 0 ? blob_local_dir_stream(fd, &dir) : fd;
	if (rc != 0)
		return rc;
	while ((errno = 0, ent = readdir(dir)) != NULL)
		if (strcmp(ent->d_name, ".") != 0 &&
		    strcmp(ent->d_name, "..") != 0)
			(*count)++;
	if (errno != 0)
		rc = -errno;
	closedir(dir);
	return rc;
}

/*
 * The process that named a temp file "<pid>.<hex>", or 0 when the name
 * is not of that form.
 */
static pid_t
blob_local_temp_pid(const char *name)
{
	long pid = 0;
	const char *p;

	for (p = name; *p >= '0' && *p <= '9'; p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > BLOB_LOCAL_PID_MAX)
			return 0;
	}
	return p > name && *p == '.' ? (pid_t)pid : 0;
}

/*
 * Why the temp file name should go: "owner_gone" when the process that
 * made it no longer runs, "idle" when nobody wrote it for
 * BLOB_TEMP_STALE_SEC (its pid may since belong to another process, as
 * when wharf runs as pid 1 of a container).  NULL when it stays.
 */
static const char *
blob_local_temp_stale(int tmp_fd, const char *name, time_t now)
{
	struct stat st;
	pid_t pid;

	if (fstatat(tmp_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    S_ISDIR(st.st_mode))
		return NULL;
	pid = blob_local_temp_pid(name);
	if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
		return "owner_gone";
	if (now - st.st_mtim.tv_sec > BLOB_TEMP_STALE_SEC)
		return "idle";
	return NULL;
}

/* Removes the temp files that no live writer owns. */
static int
blob_local_clean(struct blob_local *bl)
{
	char quoted[2 * NAME_MAX];
	time_t now = time(NULL);
	const char *reason;
	struct dirent *ent;
	DIR *dir;
	int fd, rc;

	fd = blob_local_open_dir(bl->tmp_fd, ".");
	rc = fd >= 0 ? blob_local_dir_stream(fd, &dir) : fd;
	if (rc != 0)
		return rc;
	while ((ent = readdir(dir)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		reason = blob_local_temp_stale(bl->tmp_fd, ent->d_name, now);
		if (reason == NULL)
			continue;
		log_q(quoted, sizeof(quoted), ent->d_name);
		if (unlinkat(bl->tmp_fd, ent->d_name, 0) != 0 &&
		    errno != ENOENT)
			log_warn("blob.temp_remove_failed", "name=%s", quoted);
		else
			log_info("blob.temp_removed", "name=%s reason=%s",
			    quoted, reason);
	}
	closedir(dir);
	return 0;
}

/* Opening and closing */

static void
blob_local_close(struct blob_store *bs)
{
	struct blob_local *bl = (struct blob_local *)bs;

	if (bl->tmp_fd >= 0)
		close(bl->tmp_fd);
	if (bl->root_fd >= 0)
		close(bl->root_fd);
	free(bl);
}

static const struct blob_ops blob_local_ops = {
	.close = blob_local_close,
	.writer_begin = blob_local_writer_begin,
	.writer_write = blob_local_writer_write,
	.writer_commit = blob_local_writer_commit,
	.writer_abort = blob_local_writer_abort,
	.get_fd = blob_local_get_fd,
	.open_fd = blob_local_open_fd,
	.get_stream = blob_local_get_stream,
	.stat = blob_local_stat,
	.remove = blob_local_remove,
	.remove_prefix = blob_local_remove_prefix,
	.list = blob_local_list,
	.temp_count = blob_local_temp_count,
};

struct blob_store *
blob_local_open(const char *root, char *err, size_t errlen)
{
	struct blob_local *bl;
	const char *step;
	int rc;

	bl = calloc(1, sizeof(*bl));
	if (bl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bl->head.ops = &blob_local_ops;
	bl->root_fd = -1;
	bl->tmp_fd = -1;

	step = "create";
	rc = util_mkdirs(root, BLOB_LOCAL_DIR_MODE);
	if (rc != 0)
		goto out;
	step = "open";
	bl->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = bl->root_fd >= 0 ? 0 : -errno;
	if (rc != 0)
		goto out;

	step = "prepare " BLOB_LOCAL_TMP " in";
	bl->tmp_fd = blob_local_subdir(bl->root_fd, BLOB_LOCAL_TMP, 1);
	rc = bl->tmp_fd >= 0 ? 0 : bl->tmp_fd;
	if (rc == 0) {
		step = "clean " BLOB_LOCAL_TMP " in";
		rc = blob_local_clean(bl);
	}
out:
	if (rc != 0) {
		snprintf(err, errlen, "cannot %s blob folder %s: %s", step,
		    root, strerror(-rc));
		blob_local_close(&bl->head);
		return NULL;
	}
	return &bl->head;
}
