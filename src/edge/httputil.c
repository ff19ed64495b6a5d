/*
 * httputil: request helpers for the edge.  See httputil.h.
 */
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "edge/httputil.h"

#define EDGE_Q_MAX              1000    /* q=1, in thousandths */
#define EDGE_Q_UNLISTED         (-1)
#define EDGE_HASH_MIN           8
#define EDGE_HASH_MAX           64

/* Path. */

static bool
edge_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Decodes raw (len bytes) once into dec; -1 on what is refused. */
static int
edge_path_decode(const char *raw, size_t len, char *dec, size_t *declen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '%') {
			int hi = util_hexval((unsigned char)raw[i + 1]);
			int lo = hi < 0 ? -1 :
			    util_hexval((unsigned char)raw[i + 2]);

			if (lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			if (c == '/')
				return -1;
			i += 2;
		} else if (c == '?' || c == '#' || c == ' ') {
			return -1;
		}
		if (c == '\0' || c == '\\' || edge_control(c))
			return -1;
		dec[o++] = (char)c;
	}
	*declen = o;
	return 0;
}

/* Length of the UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t
edge_utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned min, cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		min = 0x80;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		min = 0x800;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		min = 0x10000;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static bool
edge_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = edge_utf8_len((const unsigned char *)s + i,
		    len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * Resolves the segments of the decoded path dec into out, which always
 * holds "/" and whole segments each followed by '/'.  Returns the
 * length, or -1.
 */
static int
edge_path_resolve(const char *dec, size_t len, char *out, size_t outlen)
{
	size_t o = 1, i = 1;
	bool slash = true;

	out[0] = '/';
	while (i <= len) {
		size_t seg = strcspn(dec + i, "/");

		if (seg > len - i)
			seg = len - i;
		slash = seg == 0 || (seg == 1 && dec[i] == '.') ||
		    (seg == 2 && dec[i] == '.' && dec[i + 1] == '.');
		if (seg == 2 && dec[i] == '.' && dec[i + 1] == '.') {
			if (o == 1)
				return -1;
			for (o--; out[o - 1] != '/'; o--)
				;
		} else if (!slash) {
			if (o + seg + 1 > outlen)
				return -1;
			memcpy(out + o, dec + i, seg);
			o += seg;
			out[o++] = '/';
		}
		i += seg + 1;
	}
	if (!slash && o > 1)
		o--;
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int
edge_path_normalize(const char *raw, char *out, size_t outlen)
{
	char dec[EDGE_PATH_MAX + 1];
	size_t len = strnlen(raw, EDGE_PATH_MAX + 1), declen;

	if (outlen < 2 || len == 0 || len > EDGE_PATH_MAX || raw[0] != '/')
		return -1;
	if (edge_path_decode(raw, len, dec, &declen) < 0 ||
	    !edge_utf8_valid(dec, declen))
		return -1;
	dec[declen] = '\0';
	return edge_path_resolve(dec, declen, out, outlen) < 0 ? -1 : 0;
}

/* Range. */

static const char *
edge_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads decimal digits at *p into *n; false when none or past 2^64. */
static bool
edge_range_number(const char **p, uint64_t *n)
{
	const char *s = *p;

	*n = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*n > (UINT64_MAX - d) / 10)
			return false;
		*n = *n * 10 + d;
	}
	*p = s;
	return true;
}

enum edge_range
edge_range_parse(const char *header, uint64_t size, uint64_t *start,
    uint64_t *len)
{
	const char *p;
	uint64_t a = 0, b = UINT64_MAX;
	bool suffix;

	if (header == NULL)
		return EDGE_RANGE_NONE;
	p = edge_ows(header);
	if (strncasecmp(p, "bytes=", 6) != 0 || strchr(p, ',') != NULL)
		return EDGE_RANGE_NONE;
	p = edge_ows(p + 6);

	/* "a-b", "a-" or "-n", then nothing but spaces. */
	suffix = *p == '-';
	if (!suffix && !edge_range_number(&p, &a))
		return EDGE_RANGE_NONE;
	if (*p++ != '-')
		return EDGE_RANGE_NONE;
	if ((suffix || (*p >= '0' && *p <= '9')) &&
	    !edge_range_number(&p, &b))
		return EDGE_RANGE_NONE;
	if (*edge_ows(p) != '\0' || (!suffix && b < a) || size == 0)
		return EDGE_RANGE_NONE;

	if (suffix) {
		if (b == 0)
			return EDGE_RANGE_UNSATISFIABLE;
		*len = b < size ? b : size;
		*start = size - *len;
		return EDGE_RANGE_OK;
	}
	if (a >= size)
		return EDGE_RANGE_UNSATISFIABLE;
	*start = a;
	*len = (b < size - 1 ? b : size - 1) - a + 1;
	return EDGE_RANGE_OK;
}

/* Accept-Encoding. */

static bool
edge_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A qvalue ("0.5", "1", "1.000") in thousandths, or -1. */
static int
edge_qvalue(const char *s, size_t len)
{
	int q, scale = 100;

	if (len == 0 || len > 5 || (s[0] != '0' && s[0] != '1') ||
	    (len > 1 && s[1] != '.'))
		return -1;
	q = (s[0] - '0') * EDGE_Q_MAX;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q > EDGE_Q_MAX ? -1 : q;
}

/*
 * The q of one element's parameters (p after the coding), up to its
 * end; EDGE_Q_MAX when it has none, -1 when malformed.
 */
static int
edge_element_q(const char *p, const char *end)
{
	int q = EDGE_Q_MAX;

	while ((p = edge_ows(p)) < end) {
		const char *name, *name_end, *value;

		if (*p++ != ';')
			return -1;
		name = p = edge_ows(p);
		while (p < end && edge_tchar((unsigned char)*p))
			p++;
		name_end = p;
		if (name_end == name || p == end || *p != '=')
			return -1;
		value = ++p;
		while (p < end && edge_tchar((unsigned char)*p))
			p++;
		if (name_end - name != 1 || (*name != 'q' && *name != 'Q'))
			continue;
		q = edge_qvalue(value, (size_t)(p - value));
		if (q < 0)
			return -1;
	}
	return q;
}

/* The q given to each coding the header names. */
struct edge_accept {
	int br;
	int gzip;
	int identity;
	int star;
};

/* Records one element (coding name of len bytes, its q). */
static void
edge_accept_note(struct edge_accept *acc, const char *name, size_t len,
    int q)
{
	int *slot = NULL;

	if (len == 2 && strncasecmp(name, "br", 2) == 0)
		slot = &acc->br;
	else if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
	    (len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
		slot = &acc->gzip;
	else if (len == 8 && strncasecmp(name, "identity", 8) == 0)
		slot = &acc->identity;
	else if (len == 1 && name[0] == '*')
		slot = &acc->star;
	if (slot != NULL && *slot == EDGE_Q_UNLISTED)
		*slot = q;
}

static void
edge_accept_read(const char *header, struct edge_accept *acc)
{
	const char *p = header;

	while (*p != '\0') {
		const char *end = p + strcspn(p, ","), *name = edge_ows(p);
		const char *q = name;
		int weight;

		while (q < end && edge_tchar((unsigned char)*q))
			q++;
		weight = edge_element_q(q, end);
		if (q > name && weight >= 0)
			edge_accept_note(acc, name, (size_t)(q - name),
			    weight);
		p = *end == ',' ? end + 1 : end;
	}
}

unsigned
edge_accept_encoding(const char *header, unsigned available)
{
	struct edge_accept acc = { EDGE_Q_UNLISTED, EDGE_Q_UNLISTED,
	    EDGE_Q_UNLISTED, EDGE_Q_UNLISTED };
	int star, qbr, qgzip, best_q = 0;
	unsigned best = EDGE_ENC_IDENTITY;

	if (header == NULL)
		return EDGE_ENC_IDENTITY;
	edge_accept_read(header, &acc);
	star = acc.star == EDGE_Q_UNLISTED ? 0 : acc.star;
	qbr = acc.br == EDGE_Q_UNLISTED ? star : acc.br;
	qgzip = acc.gzip == EDGE_Q_UNLISTED ? star : acc.gzip;

	if ((available & EDGE_ENC_BR) && qbr > best_q) {
		best = EDGE_ENC_BR;
		best_q = qbr;
	}
	if ((available & EDGE_ENC_GZIP) && qgzip > best_q) {
		best = EDGE_ENC_GZIP;
		best_q = qgzip;
	}
	if (acc.identity != EDGE_Q_UNLISTED && acc.identity > best_q)
		return EDGE_ENC_IDENTITY;
	return best;
}

/* ETag. */

/*
 * The opaque tag of an entity tag at *p ("\"x\"" or "W/\"x\""), quotes
 * included, into *tag and *len; *p moves past it.  False if malformed.
 */
static bool
edge_etag_read(const char **p, const char **tag, size_t *len)
{
	const char *s = *p, *close;

	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	if (*s != '"')
		return false;
	close = strchr(s + 1, '"');
	if (close == NULL)
		return false;
	*tag = s;
	*len = (size_t)(close + 1 - s);
	*p = close + 1;
	return true;
}

bool
edge_etag_match(const char *if_none_match, const char *etag)
{
	const char *p, *mine, *tag;
	size_t minelen, len;

	if (if_none_match == NULL || etag == NULL)
		return false;
	p = edge_ows(if_none_match);
	if (*p == '*')
		return *edge_ows(p + 1) == '\0';
	if (!edge_etag_read(&etag, &mine, &minelen))
		return false;

	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || !edge_etag_read(&p, &tag, &len))
			return false;
		if (len == minelen && memcmp(tag, mine, len) == 0)
			return true;
		p = edge_ows(p);
		if (*p != ',' && *p != '\0')
			return false;
	}
}

/* Cache-Control. */

/* Whether s (len bytes) is a hash as httputil.h defines it. */
static bool
edge_hash_token(const char *s, size_t len)
{
	bool digit = false, letter = false, upper = false, nonhex = false;

	if (len < EDGE_HASH_MIN || len > EDGE_HASH_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= '0' && c <= '9') {
			digit = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_'))
			return false;
		letter |= c != '_';
		upper |= c >= 'A' && c <= 'Z';
		nonhex |= c != '_' && util_hexval(c) < 0;
	}
	return digit && letter && (upper || !nonhex);
}

/* Whether base (a name without extension) ends in SEP HASH. */
static bool
edge_hashed_base(const char *base, size_t len)
{
	size_t sep = len;

	while (sep > 0 && base[sep - 1] != '-' && base[sep - 1] != '.')
		sep--;
	if (sep < 2)
		return false;           /* no separator, or no stem */
	return edge_hash_token(base + sep, len - sep);
}

static bool
edge_hashed_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *dot2;

	if (dot == NULL || dot == name || dot[1] == '\0')
		return false;
	if (edge_hashed_base(name, (size_t)(dot - name)))
		return true;
	/* "x-HASH.js.map": one more extension. */
	for (dot2 = dot - 1; dot2 > name && *dot2 != '.'; dot2--)
		;
	return dot2 > name && edge_hashed_base(name, (size_t)(dot2 - name));
}

bool
edge_path_fingerprinted(const char *path)
{
	const char *name = strrchr(path, '/');

	if (strncmp(path, "/_next/static/", 14) == 0)
		return path[14] != '\0';
	if (strncmp(path, "/assets/", 8) != 0)
		return false;
	return edge_hashed_name(name + 1);
}

const char *
edge_cache_control(const char *path, bool is_html)
{
	if (!is_html && edge_path_fingerprinted(path))
		return EDGE_CACHE_IMMUTABLE;
	return EDGE_CACHE_REVALIDATE;
}
