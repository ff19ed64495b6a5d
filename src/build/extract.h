/*
 * extract: step 5 of the build pipeline, unpacking a tenant's ZIP into
 * the build's source folder without trusting anything the archive says.
 *
 * Rules, checked for every entry:
 *
 *   - only regular files and folders are created: symbolic links, hard
 *     links, devices, FIFOs and sockets are refused, and so are entries
 *     with a set-uid, set-gid or sticky bit;
 *   - names are relative UTF-8 paths with '/' as separator: absolute
 *     paths, drive letters ("C:"), backslashes, '..' segments (even
 *     those that would stay inside), NUL and control characters, empty
 *     names and names over the length limit are refused; "." segments
 *     and doubled slashes are dropped ("./a//b" is "a/b");
 *   - the archive is read from its central directory, which must end
 *     the file (trailing bytes, multi-disk and self-extracting archives
 *     are refused), list every entry libarchive reads, and name each
 *     entry as its local header does; the name libarchive takes (an
 *     Info-ZIP Unicode Path field can replace it) is checked again;
 *     encrypted entries and empty archives are refused;
 *   - a path is created once: a second file at the same path, or a file
 *     where a folder is, is refused (a folder listed twice is not);
 *   - files get mode 0644, or 0755 when the archive marks them
 *     executable; folders 0755 (less the umask); times are not kept;
 *   - at most max_entries entries and max_bytes of data, the bytes
 *     counted as they are written, never taken from a header.
 *
 * Files are opened with O_CREAT | O_EXCL | O_NOFOLLOW through a walk of
 * directory descriptors from the destination, so nothing is ever written
 * through a link, even one put there by someone else.
 *
 * On any failure part of the tree may have been written: the caller
 * deletes the destination.  No descriptor is left open.
 */
#ifndef WHARF_BUILD_EXTRACT_H
#define WHARF_BUILD_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#define EXTRACT_MAX_ENTRIES     10000
#define EXTRACT_MAX_BYTES       (500ULL << 20)  /* 500 MiB */
#define EXTRACT_MAX_NAME        1024            /* bytes, whole path */
#define EXTRACT_MAX_SEGMENT     255             /* bytes, one segment */

enum extract_result {
	EXTRACT_OK = 0,
	EXTRACT_INVALID,        /* not a ZIP, truncated, corrupt data */
	EXTRACT_REFUSED,        /* an entry breaks a rule above */
	EXTRACT_LIMIT,          /* too many entries or too many bytes */
	EXTRACT_IO,             /* the system failed: disk full, EACCES */
};

/* A zero field means the default above. */
struct extract_limits {
	uint64_t max_entries;
	uint64_t max_bytes;
	size_t   max_name;
};

/* What was done, also filled in as far as it got on a failure. */
struct extract_stats {
	uint64_t entries;       /* entries read */
	uint64_t files;         /* regular files written */
	uint64_t dirs;          /* folders created, listed or implied */
	uint64_t bytes;         /* data bytes written */
};

/*
 * Extracts zip_path into dest_dir, which is created (mode 0755) when it
 * does not exist; its parent must.  lim may be NULL for the defaults;
 * stats may be NULL.  On failure writes a message for the user into err,
 * naming the entry: "entry 7 '../../etc/passwd': path leaves the
 * archive".  EXTRACT_INVALID and EXTRACT_REFUSED mean the archive is
 * bad and retrying cannot help; EXTRACT_IO may pass.
 */
enum extract_result build_extract(const char *zip_path, const char *dest_dir,
    const struct extract_limits *lim, struct extract_stats *stats,
    char *err, size_t errlen);

/*
 * Checks one entry name of len bytes (NUL bytes included) against the
 * name rules above; a trailing '/' marks a folder and is allowed.
 * Returns 0, or -1 with the reason written into why ("path leaves the
 * archive").  max_name 0 means EXTRACT_MAX_NAME.
 */
int build_extract_check_name(const char *name, size_t len, size_t max_name,
    char *why, size_t whylen);

#endif
