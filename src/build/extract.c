/*
 * extract: safe ZIP extraction, in two passes over the archive.
 *
 *   1. extract_scan reads the central directory and every local header
 *      itself, before anything is written: the entry count, each name
 *      in full (libarchive cuts a name at its first NUL), the file type
 *      and mode bits (libarchive turns a FIFO or a device into a regular
 *      file), encryption, and that the local header names the entry as
 *      the central directory does (libarchive uses the local name).
 *   2. libarchive's seekable ZIP reader inflates the data; each entry is
 *      checked again as libarchive sees it, then created here with
 *      mkdirat() and openat() under the destination.
 *
 * archive_write_disk is not used: even with its secure flags it creates
 * links that point outside, and it carries on past a refused entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "build/extract.h"
#include "build/utf8.h"
#include "core/core.h"

/* ZIP records, as PKWARE's APPNOTE.TXT lays them out. */
#define EXTRACT_SIG_LOCAL       0x04034b50u
#define EXTRACT_SIG_CENTRAL     0x02014b50u
#define EXTRACT_SIG_EOCD        0x06054b50u
#define EXTRACT_SIG_Z64_LOC     0x07064b50u
#define EXTRACT_SIG_Z64_EOCD    0x06064b50u
#define EXTRACT_LOCAL_SIZE      30
#define EXTRACT_CENTRAL_SIZE    46
#define EXTRACT_EOCD_SIZE       22
#define EXTRACT_Z64_LOC_SIZE    20
#define EXTRACT_Z64_EOCD_SIZE   56
#define EXTRACT_COMMENT_MAX     65535
#define EXTRACT_FIELD_MAX       65535   /* a name or extra field */
#define EXTRACT_HOST_UNIX       3
#define EXTRACT_FLAG_ENCRYPTED  0x0001u
#define EXTRACT_FLAG_STRONG     0x0040u
#define EXTRACT_Z64_TAG         0x0001u
#define EXTRACT_U16_SAT         0xffffu
#define EXTRACT_U32_SAT         0xffffffffu

/* Data blocks; also holds the tail searched for the end record. */
#define EXTRACT_BUF_SIZE        (128 * 1024)
#define EXTRACT_SHOW_MAX        120     /* bytes of a name in a message */

_Static_assert(EXTRACT_BUF_SIZE >= EXTRACT_EOCD_SIZE + EXTRACT_COMMENT_MAX,
    "the end record search reads the whole tail into buf");
_Static_assert(EXTRACT_BUF_SIZE >= EXTRACT_FIELD_MAX,
    "an extra field is read whole into buf");

/* Where the central directory lies, from the end record. */
struct extract_cdir {
	uint64_t entries;
	uint64_t offset;
	uint64_t size;
	uint64_t limit;         /* offset of the end record(s) */
};

/* One extraction.  Buffers are owned; the archive and fds are closed
 * by extract_ctx_close. */
struct extract_ctx {
	struct extract_limits  lim;
	struct extract_stats  *stats;
	char                  *err;
	size_t                 errlen;
	int                    zipfd;
	uint64_t               zipsize;
	int                    rootfd;
	int                    parentfd;   /* cached folder, or -1 */
	char                  *parent;     /* its path under the root */
	char                  *path;       /* normalised path of the entry */
	char                  *name;       /* scan: name, central directory */
	char                  *lname;      /* scan: name, local header */
	unsigned char         *buf;
	struct archive        *ar;
	uint64_t               scanned;    /* entries the scan checked */
	uint64_t               index;      /* 1-based entry at hand, or 0 */
	const char            *shown;      /* its name, for messages */
	size_t                 shownlen;
};

static uint16_t
extract_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
extract_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
extract_le64(const unsigned char *p)
{
	return (uint64_t)extract_le32(p) | (uint64_t)extract_le32(p + 4) << 32;
}

/* Messages */

/*
 * Copies a name for a message: printable ASCII as is, any other byte as
 * \xNN, cut to EXTRACT_SHOW_MAX bytes with "...".
 */
static void
extract_show(const char *name, size_t len, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0;

	for (size_t i = 0; i < len && i < EXTRACT_SHOW_MAX; i++) {
		if (o + 5 >= outlen)
			break;
		if (s[i] >= 0x20 && s[i] < 0x7f)
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
			    s[i]);
	}
	if (len > EXTRACT_SHOW_MAX && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/*
 * Writes lead, then "entry N 'name': " when an entry is at hand, then
 * the message, into the caller's buffer.  Returns res.
 */
static enum extract_result
extract_vfail(struct extract_ctx *ctx, enum extract_result res,
    const char *lead, const char *fmt, va_list ap)
{
	char why[WHARF_ERRMSG_MAX];
	char shown[EXTRACT_SHOW_MAX * 4 + 8];
	unsigned long long n = (unsigned long long)ctx->index;

	vsnprintf(why, sizeof(why), fmt, ap);
	if (ctx->errlen == 0)
		return res;
	if (ctx->index == 0) {
		snprintf(ctx->err, ctx->errlen, "%s%s", lead, why);
	} else if (ctx->shown == NULL) {
		snprintf(ctx->err, ctx->errlen, "%sentry %llu: %s", lead, n,
		    why);
	} else {
		extract_show(ctx->shown, ctx->shownlen, shown, sizeof(shown));
		snprintf(ctx->err, ctx->errlen, "%sentry %llu '%s': %s", lead,
		    n, shown, why);
	}
	return res;
}

static enum extract_result __attribute__((format(printf, 3, 4)))
extract_fail(struct extract_ctx *ctx, enum extract_result res,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	extract_vfail(ctx, res, "", fmt, ap);
	va_end(ap);
	return res;
}

/* "not a valid ZIP archive: ...", for a broken or truncated archive. */
static enum extract_result __attribute__((format(printf, 2, 3)))
extract_invalid(struct extract_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	extract_vfail(ctx, EXTRACT_INVALID, "not a valid ZIP archive: ", fmt,
	    ap);
	va_end(ap);
	return EXTRACT_INVALID;
}

/* libarchive's message about the entry at hand, on one clean line. */
static enum extract_result
extract_ar_invalid(struct extract_ctx *ctx)
{
	const char *msg = archive_error_string(ctx->ar);
	char line[256];
	size_t n;

	snprintf(line, sizeof(line), "%s", msg != NULL ? msg : "read error");
	for (n = 0; line[n] != '\0'; n++)
		if ((unsigned char)line[n] < 0x20)
			line[n] = ' ';
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	return extract_invalid(ctx, "%s", line);
}

/* Maps a failed system call (-errno) on the entry at hand. */
static enum extract_result
extract_sys_fail(struct extract_ctx *ctx, int err, const char *what)
{
	switch (-err) {
	case EEXIST:
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "duplicate entry: the path already exists");
	case ENOTDIR:
	case ELOOP:
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "a folder in its path is a file");
	case ENAMETOOLONG:
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "name too long for the file system");
	default:
		return extract_fail(ctx, EXTRACT_IO, "%s: %s", what,
		    strerror(-err));
	}
}

/* Name rules */

/* Refuses '..' and overlong segments; "." and empty ones pass. */
static int
extract_check_segments(const char *name, size_t len, char *why,
    size_t whylen)
{
	size_t start = 0;

	while (start < len) {
		const char *slash = memchr(name + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - name) : len;
		size_t seglen = end - start;

		if (seglen == 2 && memcmp(name + start, "..", 2) == 0)
			return util_fail(why, whylen,
			    "path leaves the archive ('..' segment)");
		if (seglen > EXTRACT_MAX_SEGMENT)
			return util_fail(why, whylen,
			    "a path segment is over %d bytes",
			    EXTRACT_MAX_SEGMENT);
		start = end + 1;
	}
	return 0;
}

int
build_extract_check_name(const char *name, size_t len, size_t max_name,
    char *why, size_t whylen)
{
	const unsigned char *s = (const unsigned char *)name;

	if (max_name == 0)
		max_name = EXTRACT_MAX_NAME;
	if (len == 0)
		return util_fail(why, whylen, "empty name");
	if (len > max_name)
		return util_fail(why, whylen,
		    "name is %zu bytes, over the limit of %zu", len, max_name);
	if (memchr(name, '\0', len) != NULL)
		return util_fail(why, whylen, "name holds a NUL byte");

	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return util_fail(why, whylen,
			    "name holds a control character");
	if (memchr(name, '\\', len) != NULL)
		return util_fail(why, whylen,
		    "name holds a backslash (a Windows separator)");
	if (!build_utf8_valid(name, len))
		return util_fail(why, whylen, "name is not valid UTF-8");

	if (s[0] == '/')
		return util_fail(why, whylen, "path is absolute");
	if (len >= 2 && s[1] == ':' &&
	    ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return util_fail(why, whylen,
		    "path starts with a drive letter");
	return extract_check_segments(name, len, why, whylen);
}

/*
 * Writes the checked name without "." and empty segments into out (room
 * for len + 1 bytes).  Returns the length; 0 means the destination
 * itself ("./").
 */
static size_t
extract_normalise(const char *name, size_t len, char *out)
{
	size_t start = 0, o = 0;

	while (start < len) {
		const char *slash = memchr(name + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - name) : len;
		size_t seglen = end - start;

		if (seglen > 0 && !(seglen == 1 && name[start] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, name + start, seglen);
			o += seglen;
		}
		start = end + 1;
	}
	out[o] = '\0';
	return o;
}

/* Type and mode bits (AE_IF* are the POSIX values); NULL when fine. */
static const char *
extract_mode_refusal(unsigned mode)
{
	switch (mode & AE_IFMT) {
	case 0:                 /* not stated: regular, or folder by '/' */
	case AE_IFREG:
	case AE_IFDIR:
		break;
	case AE_IFLNK:
		return "symbolic links are not allowed";
	case AE_IFCHR:
	case AE_IFBLK:
		return "device files are not allowed";
	case AE_IFIFO:
		return "FIFOs are not allowed";
	case AE_IFSOCK:
		return "sockets are not allowed";
	default:
		return "unknown file type";
	}
	if (mode & 07000)
		return "set-uid, set-gid and sticky bits are not allowed";
	return NULL;
}

/* Pass 1: the archive's own records */

/* Reads len bytes at off; a record past the end means a cut archive. */
static enum extract_result
extract_read_at(struct extract_ctx *ctx, void *buf, size_t len,
    uint64_t off)
{
	unsigned char *p = buf;

	if (off > ctx->zipsize || len > ctx->zipsize - off)
		return extract_invalid(ctx,
		    "a record runs past the end of the file (truncated?)");
	while (len > 0) {
		ssize_t n = pread(ctx->zipfd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return extract_fail(ctx, EXTRACT_IO,
			    "reading the archive: %s", strerror(errno));
		if (n == 0)
			return extract_invalid(ctx, "the file is truncated");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return EXTRACT_OK;
}

/* The ZIP64 end record, when the classic one has saturated fields. */
static enum extract_result
extract_read_z64_end(struct extract_ctx *ctx, uint64_t eocd,
    struct extract_cdir *cd)
{
	unsigned char loc[EXTRACT_Z64_LOC_SIZE], rec[EXTRACT_Z64_EOCD_SIZE];
	enum extract_result res;
	uint64_t at;

	if (eocd < EXTRACT_Z64_LOC_SIZE)
		return extract_invalid(ctx, "ZIP64 locator missing");
	res = extract_read_at(ctx, loc, sizeof(loc),
	    eocd - EXTRACT_Z64_LOC_SIZE);
	if (res != EXTRACT_OK)
		return res;
	if (extract_le32(loc) != EXTRACT_SIG_Z64_LOC)
		return extract_invalid(ctx, "ZIP64 locator missing");

	at = extract_le64(loc + 8);
	if (at > eocd - EXTRACT_Z64_LOC_SIZE ||
	    eocd - EXTRACT_Z64_LOC_SIZE - at < EXTRACT_Z64_EOCD_SIZE)
		return extract_invalid(ctx, "bad ZIP64 end record offset");
	res = extract_read_at(ctx, rec, sizeof(rec), at);
	if (res != EXTRACT_OK)
		return res;
	if (extract_le32(rec) != EXTRACT_SIG_Z64_EOCD)
		return extract_invalid(ctx, "bad ZIP64 end record");

	cd->entries = extract_le64(rec + 32);
	cd->size = extract_le64(rec + 40);
	cd->offset = extract_le64(rec + 48);
	cd->limit = at;
	return EXTRACT_OK;
}

/*
 * Finds the end of central directory record: the last one in the tail
 * whose comment ends exactly at the end of the file.
 */
static enum extract_result
extract_find_end(struct extract_ctx *ctx, struct extract_cdir *cd)
{
	size_t tail, pos;
	uint64_t start;
	const unsigned char *p = NULL;
	enum extract_result res;

	if (ctx->zipsize < EXTRACT_EOCD_SIZE)
		return extract_invalid(ctx, ctx->zipsize == 0 ?
		    "the file is empty" : "the file is too short");
	tail = EXTRACT_EOCD_SIZE + EXTRACT_COMMENT_MAX;
	if (tail > ctx->zipsize)
		tail = (size_t)ctx->zipsize;
	start = ctx->zipsize - tail;
	res = extract_read_at(ctx, ctx->buf, tail, start);
	if (res != EXTRACT_OK)
		return res;

	for (pos = tail - EXTRACT_EOCD_SIZE; ; pos--) {
		const unsigned char *q = ctx->buf + pos;
		if (extract_le32(q) == EXTRACT_SIG_EOCD &&
		    pos + EXTRACT_EOCD_SIZE + extract_le16(q + 20) == tail) {
			p = q;
			break;
		}
		if (pos == 0)
			break;
	}
	if (p == NULL)
		return extract_invalid(ctx,
		    "no end of central directory record (truncated?)");

	if (extract_le16(p + 4) != 0 && extract_le16(p + 4) != EXTRACT_U16_SAT)
		return extract_invalid(ctx, "multi-disk archives are not "
		    "supported");
	cd->entries = extract_le16(p + 10);
	cd->size = extract_le32(p + 12);
	cd->offset = extract_le32(p + 16);
	cd->limit = start + pos;
	if (cd->entries == EXTRACT_U16_SAT || cd->size == EXTRACT_U32_SAT ||
	    cd->offset == EXTRACT_U32_SAT)
		return extract_read_z64_end(ctx, start + pos, cd);
	return EXTRACT_OK;
}

/* The local header offset of a ZIP64 entry, from its extra field. */
static enum extract_result
extract_z64_offset(struct extract_ctx *ctx, uint64_t at, size_t len,
    unsigned skip, uint64_t *offset)
{
	enum extract_result res;
	size_t p = 0;

	res = extract_read_at(ctx, ctx->buf, len, at);
	if (res != EXTRACT_OK)
		return res;
	while (p + 4 <= len) {
		unsigned tag = extract_le16(ctx->buf + p);
		size_t size = extract_le16(ctx->buf + p + 2);

		if (size > len - p - 4)
			break;
		if (tag == EXTRACT_Z64_TAG) {
			if (skip * 8 + 8 > size)
				break;
			*offset = extract_le64(ctx->buf + p + 4 + skip * 8);
			return EXTRACT_OK;
		}
		p += 4 + size;
	}
	return extract_invalid(ctx, "bad ZIP64 extra field");
}

/* The local header must exist and carry the central directory's name. */
static enum extract_result
extract_scan_local(struct extract_ctx *ctx, const struct extract_cdir *cd,
    uint64_t at, size_t nlen)
{
	unsigned char h[EXTRACT_LOCAL_SIZE];
	char shown[EXTRACT_SHOW_MAX * 4 + 8];
	enum extract_result res;
	size_t llen;

	if (at > cd->offset || cd->offset - at < EXTRACT_LOCAL_SIZE + nlen)
		return extract_invalid(ctx, "bad local header offset");
	res = extract_read_at(ctx, h, sizeof(h), at);
	if (res != EXTRACT_OK)
		return res;
	if (extract_le32(h) != EXTRACT_SIG_LOCAL)
		return extract_invalid(ctx, "bad local header");

	/* Read as much as a name may hold, to compare or to show. */
	llen = extract_le16(h + 26);
	res = extract_read_at(ctx, ctx->lname, llen > ctx->lim.max_name ?
	    ctx->lim.max_name : llen, at + EXTRACT_LOCAL_SIZE);
	if (res != EXTRACT_OK)
		return res;
	if (llen == nlen && memcmp(ctx->lname, ctx->name, nlen) == 0)
		return EXTRACT_OK;
	extract_show(ctx->lname, llen > ctx->lim.max_name ?
	    ctx->lim.max_name : llen, shown, sizeof(shown));
	return extract_fail(ctx, EXTRACT_REFUSED, "the local header names "
	    "it differently: '%s'", shown);
}

/* The name of a central record, read whole (NUL bytes included). */
static enum extract_result
extract_scan_name(struct extract_ctx *ctx, uint64_t at, size_t nlen)
{
	size_t got = nlen > ctx->lim.max_name ? ctx->lim.max_name : nlen;
	enum extract_result res;
	char why[128];

	res = extract_read_at(ctx, ctx->name, got, at);
	if (res != EXTRACT_OK)
		return res;
	ctx->shown = ctx->name;
	ctx->shownlen = got;
	if (nlen > ctx->lim.max_name)
		return extract_fail(ctx, EXTRACT_REFUSED, "name is %zu bytes, "
		    "over the limit of %zu", nlen, ctx->lim.max_name);
	if (build_extract_check_name(ctx->name, nlen, ctx->lim.max_name, why,
	    sizeof(why)) != 0)
		return extract_fail(ctx, EXTRACT_REFUSED, "%s", why);
	return EXTRACT_OK;
}

/* Encryption, and type and mode bits as a Unix archiver wrote them. */
static enum extract_result
extract_scan_attrs(struct extract_ctx *ctx, const unsigned char *h)
{
	const char *refusal = NULL;

	if (extract_le16(h + 8) & (EXTRACT_FLAG_ENCRYPTED |
	    EXTRACT_FLAG_STRONG))
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "encrypted entries are not supported");
	if (extract_le16(h + 4) >> 8 == EXTRACT_HOST_UNIX)
		refusal = extract_mode_refusal(extract_le32(h + 38) >> 16);
	if (refusal != NULL)
		return extract_fail(ctx, EXTRACT_REFUSED, "%s", refusal);
	return EXTRACT_OK;
}

/*
 * One central directory record at *at: checks it and its local header,
 * and moves *at past it.  Refusals here come before anything is
 * written.
 */
static enum extract_result
extract_scan_entry(struct extract_ctx *ctx, const struct extract_cdir *cd,
    uint64_t *at)
{
	unsigned char h[EXTRACT_CENTRAL_SIZE];
	enum extract_result res;
	uint64_t end = cd->offset + cd->size, local;
	size_t nlen, xlen, clen;
	unsigned skip;

	ctx->shown = NULL;
	if (*at > end || end - *at < EXTRACT_CENTRAL_SIZE)
		return extract_invalid(ctx, "central directory is cut short");
	res = extract_read_at(ctx, h, sizeof(h), *at);
	if (res != EXTRACT_OK)
		return res;
	if (extract_le32(h) != EXTRACT_SIG_CENTRAL)
		return extract_invalid(ctx, "bad central directory record");

	nlen = extract_le16(h + 28);
	xlen = extract_le16(h + 30);
	clen = extract_le16(h + 32);
	if (end - *at - EXTRACT_CENTRAL_SIZE < (uint64_t)nlen + xlen + clen)
		return extract_invalid(ctx, "central directory is cut short");
	res = extract_scan_name(ctx, *at + EXTRACT_CENTRAL_SIZE, nlen);
	if (res == EXTRACT_OK)
		res = extract_scan_attrs(ctx, h);
	if (res != EXTRACT_OK)
		return res;

	/* ZIP64: the offset is in the extra field when this one is full. */
	local = extract_le32(h + 42);
	if (local == EXTRACT_U32_SAT) {
		skip = (extract_le32(h + 24) == EXTRACT_U32_SAT) +
		    (extract_le32(h + 20) == EXTRACT_U32_SAT);
		res = extract_z64_offset(ctx, *at + EXTRACT_CENTRAL_SIZE +
		    nlen, xlen, skip, &local);
		if (res != EXTRACT_OK)
			return res;
	}
	*at += EXTRACT_CENTRAL_SIZE + nlen + xlen + clen;
	return extract_scan_local(ctx, cd, local, nlen);
}

static enum extract_result
extract_scan(struct extract_ctx *ctx)
{
	struct extract_cdir cd = { 0 };
	enum extract_result res;
	uint64_t at;

	res = extract_find_end(ctx, &cd);
	if (res != EXTRACT_OK)
		return res;
	if (cd.offset > cd.limit || cd.size > cd.limit - cd.offset)
		return extract_invalid(ctx, "bad central directory offset");
	if (cd.entries == 0)
		return extract_fail(ctx, EXTRACT_INVALID,
		    "the archive is empty");
	if (cd.entries > ctx->lim.max_entries)
		return extract_fail(ctx, EXTRACT_LIMIT, "the archive has %llu "
		    "entries, over the limit of %llu",
		    (unsigned long long)cd.entries,
		    (unsigned long long)ctx->lim.max_entries);

	at = cd.offset;
	for (uint64_t i = 1; i <= cd.entries; i++) {
		ctx->index = i;
		res = extract_scan_entry(ctx, &cd, &at);
		if (res != EXTRACT_OK)
			return res;
	}
	ctx->index = 0;
	ctx->shown = NULL;

	/* libarchive reads every record: none may escape the scan. */
	if (at != cd.offset + cd.size)
		return extract_invalid(ctx, "the central directory holds more "
		    "records than its count");
	ctx->scanned = cd.entries;
	return EXTRACT_OK;
}

/* Pass 2: writing */

static int
extract_write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Opens the folders of dir (dlen bytes, checked and normalised) one by
 * one from the root, making those that are missing, never following a
 * link.  Returns a new fd, or -errno.
 */
static int
extract_walk(struct extract_ctx *ctx, const char *dir, size_t dlen)
{
	char seg[EXTRACT_MAX_SEGMENT + 1];
	size_t start = 0;
	int fd = ctx->rootfd;

	while (start < dlen) {
		const char *slash = memchr(dir + start, '/', dlen - start);
		size_t end = slash ? (size_t)(slash - dir) : dlen;
		int made, next, e;

		memcpy(seg, dir + start, end - start);
		seg[end - start] = '\0';
		made = mkdirat(fd, seg, 0755);
		if (made == 0)
			ctx->stats->dirs++;
		next = made == 0 || errno == EEXIST ? openat(fd, seg,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
		e = errno;
		if (fd != ctx->rootfd)
			close(fd);
		if (next < 0)
			return -e;
		fd = next;
		start = end + 1;
	}
	return fd;
}

/*
 * The folder that holds the entry's last segment, which *leaf points
 * at.  Returns the root fd or the cached parent fd (the caller must not
 * close either), or -errno.
 */
static int
extract_open_parent(struct extract_ctx *ctx, size_t len, const char **leaf)
{
	const char *slash = memrchr(ctx->path, '/', len);
	size_t plen;
	int fd;

	if (slash == NULL) {
		*leaf = ctx->path;
		return ctx->rootfd;
	}
	*leaf = slash + 1;
	plen = (size_t)(slash - ctx->path);
	if (ctx->parentfd >= 0 && strlen(ctx->parent) == plen &&
	    memcmp(ctx->parent, ctx->path, plen) == 0)
		return ctx->parentfd;

	if (ctx->parentfd >= 0)
		close(ctx->parentfd);
	ctx->parentfd = -1;
	fd = extract_walk(ctx, ctx->path, plen);
	if (fd < 0)
		return fd;
	memcpy(ctx->parent, ctx->path, plen);
	ctx->parent[plen] = '\0';
	ctx->parentfd = fd;
	return fd;
}

static enum extract_result
extract_dir(struct extract_ctx *ctx, size_t len)
{
	const char *leaf;
	struct stat st;
	int dirfd;

	if (len == 0)
		return EXTRACT_OK;      /* "./": the destination itself */
	dirfd = extract_open_parent(ctx, len, &leaf);
	if (dirfd < 0)
		return extract_sys_fail(ctx, dirfd, "creating a folder");
	if (mkdirat(dirfd, leaf, 0755) == 0) {
		ctx->stats->dirs++;
		return EXTRACT_OK;
	}
	if (errno != EEXIST)
		return extract_sys_fail(ctx, -errno, "creating the folder");

	/* Listed twice, or implied by an earlier file: fine if a folder. */
	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return extract_sys_fail(ctx, -errno, "checking the folder");
	if (!S_ISDIR(st.st_mode))
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "duplicate entry: a file already has this path");
	return EXTRACT_OK;
}

/* Copies the entry's data, stopping at the byte limit. */
static enum extract_result
extract_copy(struct extract_ctx *ctx, int fd)
{
	for (;;) {
		ssize_t n = archive_read_data(ctx->ar, ctx->buf,
		    EXTRACT_BUF_SIZE);
		uint64_t room = ctx->lim.max_bytes - ctx->stats->bytes;
		size_t want;
		int rc;

		if (n == 0)
			return EXTRACT_OK;
		if (n < 0)
			return extract_ar_invalid(ctx);
		want = (uint64_t)n > room ? (size_t)room : (size_t)n;
		rc = extract_write_all(fd, ctx->buf, want);
		if (rc < 0)
			return extract_sys_fail(ctx, rc, "writing the file");
		ctx->stats->bytes += want;
		if ((uint64_t)n > room)
			return extract_fail(ctx, EXTRACT_LIMIT, "the data "
			    "passes the limit of %llu bytes uncompressed",
			    (unsigned long long)ctx->lim.max_bytes);
	}
}

static enum extract_result
extract_file(struct extract_ctx *ctx, struct archive_entry *entry,
    size_t len)
{
	enum extract_result res;
	const char *leaf;
	int dirfd, fd;
	mode_t mode;

	if (len == 0)
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "a file cannot take the place of the destination");
	dirfd = extract_open_parent(ctx, len, &leaf);
	if (dirfd < 0)
		return extract_sys_fail(ctx, dirfd, "creating a folder");
	mode = (archive_entry_perm(entry) & 0111) ? 0755 : 0644;
	fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd < 0)
		return extract_sys_fail(ctx, -errno, "creating the file");

	/* The exact mode, whatever the umask, before any data. */
	if (fchmod(fd, mode) != 0) {
		res = extract_sys_fail(ctx, -errno, "setting the file mode");
		goto out;
	}
	res = extract_copy(ctx, fd);
	if (res == EXTRACT_OK)
		ctx->stats->files++;
out:
	if (close(fd) != 0 && res == EXTRACT_OK)
		res = extract_sys_fail(ctx, -errno, "closing the file");
	return res;
}

/* One entry as libarchive sees it: checked again, then created. */
static enum extract_result
extract_entry(struct extract_ctx *ctx, struct archive_entry *entry)
{
	const char *name = archive_entry_pathname(entry);
	const char *refusal;
	char why[128];
	size_t len;

	if (name == NULL)
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "its name cannot be decoded");
	len = strlen(name);
	ctx->shown = name;
	ctx->shownlen = len;
	if (build_extract_check_name(name, len, ctx->lim.max_name, why,
	    sizeof(why)) != 0)
		return extract_fail(ctx, EXTRACT_REFUSED, "%s", why);

	if (archive_entry_hardlink(entry) != NULL)
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "hard links are not allowed");
	if (archive_entry_symlink(entry) != NULL)
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "symbolic links are not allowed");
	refusal = extract_mode_refusal(archive_entry_mode(entry));
	if (refusal != NULL)
		return extract_fail(ctx, EXTRACT_REFUSED, "%s", refusal);
	if (archive_entry_is_encrypted(entry))
		return extract_fail(ctx, EXTRACT_REFUSED,
		    "encrypted entries are not supported");

	len = extract_normalise(name, len, ctx->path);
	if (archive_entry_filetype(entry) == AE_IFDIR)
		return extract_dir(ctx, len);
	return extract_file(ctx, entry, len);
}

static enum extract_result
extract_unpack(struct extract_ctx *ctx)
{
	struct archive_entry *entry;
	int r;

	ctx->ar = archive_read_new();
	if (ctx->ar == NULL)
		return extract_fail(ctx, EXTRACT_IO, "out of memory");
	if (archive_read_support_format_zip_seekable(ctx->ar) != ARCHIVE_OK)
		return extract_fail(ctx, EXTRACT_IO, "libarchive: %s",
		    archive_error_string(ctx->ar));
	if (lseek(ctx->zipfd, 0, SEEK_SET) != 0)
		return extract_fail(ctx, EXTRACT_IO, "reading the archive: %s",
		    strerror(errno));
	if (archive_read_open_fd(ctx->ar, ctx->zipfd, EXTRACT_BUF_SIZE) !=
	    ARCHIVE_OK)
		return extract_ar_invalid(ctx);

	for (;;) {
		enum extract_result res;

		ctx->index = ctx->stats->entries + 1;
		ctx->shown = NULL;
		r = archive_read_next_header(ctx->ar, &entry);
		if (r == ARCHIVE_EOF)
			break;
		if (ctx->index > ctx->lim.max_entries)
			return extract_fail(ctx, EXTRACT_LIMIT, "more than "
			    "%llu entries",
			    (unsigned long long)ctx->lim.max_entries);
		if (r != ARCHIVE_OK)
			return extract_ar_invalid(ctx);
		ctx->stats->entries++;
		res = extract_entry(ctx, entry);
		if (res != EXTRACT_OK)
			return res;
	}

	/* Fewer entries than records: some share data, or hide. */
	ctx->index = 0;
	if (ctx->stats->entries != ctx->scanned)
		return extract_invalid(ctx, "%llu entries read, but the "
		    "central directory lists %llu",
		    (unsigned long long)ctx->stats->entries,
		    (unsigned long long)ctx->scanned);
	return EXTRACT_OK;
}

/* Setup and cleanup */

static enum extract_result
extract_ctx_open(struct extract_ctx *ctx, const char *zip_path,
    const struct extract_limits *lim)
{
	struct stat st;
	size_t nbuf;

	ctx->lim.max_entries = lim && lim->max_entries ? lim->max_entries :
	    EXTRACT_MAX_ENTRIES;
	ctx->lim.max_bytes = lim && lim->max_bytes ? lim->max_bytes :
	    EXTRACT_MAX_BYTES;
	ctx->lim.max_name = lim && lim->max_name ? lim->max_name :
	    EXTRACT_MAX_NAME;
	if (ctx->lim.max_name > EXTRACT_FIELD_MAX)
		ctx->lim.max_name = EXTRACT_FIELD_MAX;

	nbuf = ctx->lim.max_name + 1;
	ctx->buf = malloc(EXTRACT_BUF_SIZE);
	ctx->path = malloc(nbuf);
	ctx->parent = malloc(nbuf);
	ctx->name = malloc(nbuf);
	ctx->lname = malloc(nbuf);
	if (!ctx->buf || !ctx->path || !ctx->parent || !ctx->name ||
	    !ctx->lname)
		return extract_fail(ctx, EXTRACT_IO, "out of memory");

	ctx->zipfd = open(zip_path, O_RDONLY | O_CLOEXEC);
	if (ctx->zipfd < 0)
		return extract_fail(ctx, EXTRACT_IO, "opening the archive: %s",
		    strerror(errno));
	if (fstat(ctx->zipfd, &st) != 0)
		return extract_fail(ctx, EXTRACT_IO, "opening the archive: %s",
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return extract_invalid(ctx, "not a regular file");
	ctx->zipsize = (uint64_t)st.st_size;
	return EXTRACT_OK;
}

static enum extract_result
extract_open_dest(struct extract_ctx *ctx, const char *dest_dir)
{
	if (mkdir(dest_dir, 0755) != 0 && errno != EEXIST)
		return extract_fail(ctx, EXTRACT_IO, "creating %s: %s",
		    dest_dir, strerror(errno));
	ctx->rootfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (ctx->rootfd < 0)
		return extract_fail(ctx, EXTRACT_IO, "opening %s: %s",
		    dest_dir, strerror(errno));
	return EXTRACT_OK;
}

static void
extract_ctx_close(struct extract_ctx *ctx)
{
	if (ctx->ar != NULL)
		archive_read_free(ctx->ar);
	if (ctx->parentfd >= 0)
		close(ctx->parentfd);
	if (ctx->rootfd >= 0)
		close(ctx->rootfd);
	if (ctx->zipfd >= 0)
		close(ctx->zipfd);
	free(ctx->buf);
	free(ctx->path);
	free(ctx->parent);
	free(ctx->name);
	free(ctx->lname);
}

enum extract_result
build_extract(const char *zip_path, const char *dest_dir,
    const struct extract_limits *lim, struct extract_stats *stats,
    char *err, size_t errlen)
{
	struct extract_stats unused;
	struct extract_ctx ctx = {
		.zipfd = -1, .rootfd = -1, .parentfd = -1,
		.err = err, .errlen = errlen,
	};
	enum extract_result res;
	locale_t utf8, saved;

	ctx.stats = stats != NULL ? stats : &unused;
	memset(ctx.stats, 0, sizeof(*ctx.stats));
	if (errlen > 0)
		err[0] = '\0';

	res = extract_ctx_open(&ctx, zip_path, lim);
	if (res != EXTRACT_OK)
		goto out;
	res = extract_scan(&ctx);
	if (res != EXTRACT_OK)
		goto out;
	res = extract_open_dest(&ctx, dest_dir);
	if (res != EXTRACT_OK)
		goto out;

	/*
	 * libarchive converts UTF-8 names to the locale's charset and gives
	 * up in the C locale: read them in C.UTF-8, on this thread only.
	 */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	saved = utf8 != (locale_t)0 ? uselocale(utf8) : (locale_t)0;
	res = extract_unpack(&ctx);
	if (ctx.ar != NULL) {
		archive_read_free(ctx.ar);
		ctx.ar = NULL;
	}
	if (utf8 != (locale_t)0) {
		uselocale(saved);
		freelocale(utf8);
	}
out:
	extract_ctx_close(&ctx);
	return res;
}
