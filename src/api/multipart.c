/*
 * multipart: the streaming multipart/form-data parser (see
 * multipart.h).
 *
 * The delimiter is "\r\n--" and the boundary; the first one of the body
 * may come without its line break.  Before the first delimiter and in a
 * part's content, the parser looks for the delimiter with memmem.  What
 * ends a piece and could be the start of one (a '\r' near the end, and
 * what follows it) is held back; the next piece is then first searched
 * joined to it.  The same held buffer gathers a header line.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/multipart.h"

enum multipart_state {
	MP_PREAMBLE,    /* before the first delimiter: skipped */
	MP_DELIMITED,   /* right after a delimiter */
	MP_DASH,        /* ...and a '-': a second one ends the form */
	MP_CR,          /* ...and a '\r': a '\n' must follow */
	MP_HEADERS,     /* a part's header lines */
	MP_CONTENT,     /* a part's content, up to the next delimiter */
	MP_CLOSED,      /* after the last delimiter */
	MP_CLOSED_CR,   /* ...and a '\r' */
	MP_END,         /* ...and its line break: nothing more may come */
	MP_FAILED,
};

struct multipart {
	const struct multipart_ops *ops;
	void                 *ctx;
	enum multipart_state  state;
	char                 *delim;     /* "\r\n--" and the boundary */
	size_t                dlen;

	/* The current part's headers, NULL when absent. */
	char                 *name;
	char                 *filename;
	char                 *type;

	/* A header line, or bytes that may start a delimiter. */
	char                 *held;      /* MULTIPART_LINE_MAX + 1 bytes */
	size_t                held_len;
};

/* Hands content on (when emit is set); false when the callback stops. */
static bool
mp_emit(struct multipart *mp, const char *buf, size_t len, bool emit)
{
	if (!emit || len == 0)
		return true;
	if (mp->ops->data(mp->ctx, buf, len) == 0)
		return true;
	mp->state = MP_FAILED;
	return false;
}

/*
 * The length of the longest tail of buf[0..len) that is the start of
 * the needle (shorter than the needle): what must be held back.
 */
static size_t
mp_tail(const char *buf, size_t len, const char *needle, size_t nlen)
{
	const char *end = buf + len;
	const char *p = len > nlen - 1 ? end - (nlen - 1) : buf;

	for (; (p = memchr(p, needle[0], (size_t)(end - p))) != NULL; p++)
		if (memcmp(p, needle, (size_t)(end - p)) == 0)
			return (size_t)(end - p);
	return 0;
}

/*
 * The held bytes, joined to the start of buf: a needle that begins in
 * them ends within nlen - 1 bytes of buf.  Returns the bytes of buf
 * used: past the needle when it is there; all of them when buf is that
 * short (the tail that may start a needle is held again); 0 when the
 * held bytes proved to be content, handed on, and buf is still to
 * search.
 */
static size_t
mp_scan_joint(struct multipart *mp, const char *buf, size_t len,
    const char *needle, size_t nlen, bool emit)
{
	size_t m = len < nlen - 1 ? len : nlen - 1;
	size_t all = mp->held_len + m, used, tail;
	const char *hit;

	memcpy(mp->held + mp->held_len, buf, m);
	hit = memmem(mp->held, all, needle, nlen);
	if (hit != NULL) {
		used = (size_t)(hit - mp->held) + nlen - mp->held_len;
		if (mp_emit(mp, mp->held, (size_t)(hit - mp->held), emit))
			mp->state = MP_DELIMITED;
		mp->held_len = 0;
		return used;
	}
	if (m == len) {
		tail = mp_tail(mp->held, all, needle, nlen);
		if (mp_emit(mp, mp->held, all - tail, emit))
			memmove(mp->held, mp->held + all - tail, tail);
		mp->held_len = tail;
		return len;
	}
	(void)mp_emit(mp, mp->held, mp->held_len, emit);
	mp->held_len = 0;
	return 0;
}

/*
 * Looks for the needle; what comes before it is content (handed on
 * when emit is set, else dropped).  Returns the bytes of buf used.
 */
static size_t
mp_scan(struct multipart *mp, const char *buf, size_t len,
    const char *needle, size_t nlen, bool emit)
{
	const char *hit;
	size_t tail;

	if (mp->held_len > 0)
		return mp_scan_joint(mp, buf, len, needle, nlen, emit);
	hit = memmem(buf, len, needle, nlen);
	if (hit != NULL) {
		if (mp_emit(mp, buf, (size_t)(hit - buf), emit))
			mp->state = MP_DELIMITED;
		return (size_t)(hit - buf) + nlen;
	}
	tail = mp_tail(buf, len, needle, nlen);
	if (mp_emit(mp, buf, len - tail, emit)) {
		memcpy(mp->held, buf + len - tail, tail);
		mp->held_len = tail;
	}
	return len;
}

/* A new part: its header lines come next. */
static void
mp_part(struct multipart *mp)
{
	free(mp->name);
	free(mp->filename);
	free(mp->type);
	mp->name = mp->filename = mp->type = NULL;
	mp->state = MP_HEADERS;
}

/*
 * The quoted value of key="..." in s (the key at the start or after a
 * space) into *out, unless *out is set already.  Left NULL when absent
 * or not quoted, as libmicrohttpd did.
 */
static void
mp_param(const char *s, const char *key, char **out)
{
	size_t klen = strlen(key);
	const char *p = s, *end;

	if (*out != NULL)
		return;
	for (; (p = strstr(p, key)) != NULL; p++) {
		if (p[klen] != '=' || (p != s && p[-1] != ' '))
			continue;
		if (p[klen + 1] != '"')
			return;
		end = strchr(p + klen + 2, '"');
		if (end != NULL)
			*out = strndup(p + klen + 2,
			    (size_t)(end - (p + klen + 2)));
		return;
	}
}

/* One header line of a part (NUL-terminated, without its break). */
static void
mp_header(struct multipart *mp, const char *line)
{
	static const char disposition[] = "Content-disposition: ";
	static const char type[] = "Content-type: ";
	const char *v;

	if (strncasecmp(line, disposition, sizeof(disposition) - 1) == 0) {
		mp_param(line + sizeof(disposition) - 1, "name", &mp->name);
		mp_param(line + sizeof(disposition) - 1, "filename",
		    &mp->filename);
	} else if (mp->type == NULL &&
	    (v = strcasestr(line, type)) != NULL) {
		mp->type = strdup(v + sizeof(type) - 1);
	}
}

/* A whole line is held: a header, or the empty line before content. */
static void
mp_line(struct multipart *mp)
{
	size_t n = mp->held_len;

	if (n > 0 && mp->held[n - 1] == '\r')
		n--;
	mp->held[n] = '\0';
	mp->held_len = 0;
	if (n > 0) {
		mp_header(mp, mp->held);
		return;
	}
	mp->state = mp->ops->begin(mp->ctx, mp->name, mp->filename,
	    mp->type) == 0 ? MP_CONTENT : MP_FAILED;
}

/* Gathers header lines; returns the bytes of buf used. */
static size_t
mp_headers(struct multipart *mp, const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - buf) : len;

	if (mp->held_len + n > MULTIPART_LINE_MAX) {
		mp->state = MP_FAILED;
		return len;
	}
	memcpy(mp->held + mp->held_len, buf, n);
	mp->held_len += n;
	if (nl == NULL)
		return len;
	mp_line(mp);
	return n + 1;
}

/* One byte around a delimiter: what may follow it. */
static void
mp_step(struct multipart *mp, char c)
{
	switch (mp->state) {
	case MP_DELIMITED:
		if (c == '-')
			mp->state = MP_DASH;
		else if (c == '\r')
			mp->state = MP_CR;
		else if (c == '\n')
			mp_part(mp);
		else
			mp->state = MP_FAILED;
		break;
	case MP_DASH:
		mp->state = c == '-' ? MP_CLOSED : MP_FAILED;
		break;
	case MP_CR:
		if (c == '\n')
			mp_part(mp);
		else
			mp->state = MP_FAILED;
		break;
	case MP_CLOSED:
		mp->state = c == '\r' ? MP_CLOSED_CR :
		    c == '\n' ? MP_END : MP_FAILED;
		break;
	case MP_CLOSED_CR:
		mp->state = c == '\n' ? MP_END : MP_FAILED;
		break;
	default:
		mp->state = MP_FAILED;
		break;
	}
}

struct multipart *
multipart_new(const char *content_type, const struct multipart_ops *ops,
    void *ctx)
{
	static const char form[] = "multipart/form-data";
	static const char param[] = "boundary=";
	struct multipart *mp;
	const char *b;
	size_t blen;

	if (content_type == NULL ||
	    strncasecmp(content_type, form, sizeof(form) - 1) != 0)
		return NULL;
	/* The rest of the header is the boundary, as libmicrohttpd took. */
	b = strstr(content_type + sizeof(form) - 1, param);
	if (b == NULL)
		return NULL;
	b += sizeof(param) - 1;
	blen = strlen(b);
	if (blen >= 2 && b[0] == '"' && b[blen - 1] == '"') {
		b++;
		blen -= 2;
	}
	if (blen == 0 || blen > MULTIPART_BOUNDARY_MAX)
		return NULL;

	mp = calloc(1, sizeof(*mp));
	if (mp == NULL)
		return NULL;
	mp->ops = ops;
	mp->ctx = ctx;
	mp->state = MP_PREAMBLE;
	mp->dlen = blen + 4;
	mp->delim = malloc(mp->dlen);
	mp->held = malloc(MULTIPART_LINE_MAX + 1);
	if (mp->delim == NULL || mp->held == NULL) {
		multipart_free(mp);
		return NULL;
	}
	memcpy(mp->delim, "\r\n--", 4);
	memcpy(mp->delim + 4, b, blen);
	return mp;
}

int
multipart_feed(struct multipart *mp, const char *buf, size_t len)
{
	size_t used;

	while (len > 0 && mp->state != MP_FAILED) {
		switch (mp->state) {
		case MP_PREAMBLE:
			/* The first delimiter needs no line break before. */
			used = mp_scan(mp, buf, len, mp->delim + 2,
			    mp->dlen - 2, false);
			break;
		case MP_CONTENT:
			used = mp_scan(mp, buf, len, mp->delim, mp->dlen,
			    true);
			break;
		case MP_HEADERS:
			used = mp_headers(mp, buf, len);
			break;
		default:
			mp_step(mp, *buf);
			used = 1;
			break;
		}
		buf += used;
		len -= used;
	}
	return mp->state == MP_FAILED ? -1 : 0;
}

bool
multipart_complete(const struct multipart *mp)
{
	return mp->state == MP_PREAMBLE || mp->state == MP_CLOSED ||
	    mp->state == MP_CLOSED_CR || mp->state == MP_END;
}

void
multipart_free(struct multipart *mp)
{
	if (mp == NULL)
		return;
	free(mp->name);
	free(mp->filename);
	free(mp->type);
	free(mp->held);
	free(mp->delim);
	free(mp);
}
