/*
 * fuzz_httputil: the edge's readers of what a client sends
 * (src/edge/httputil.c): the URL path, Range, Accept-Encoding and
 * If-None-Match.
 *
 * Input: one byte that picks the reader and, for Range, eight bytes of
 * body size; the rest is the header or path (cut at a NUL, as a C
 * string).  Properties, besides memory safety:
 *   - a path that is accepted starts with '/', holds no NUL, backslash
 *     or control character, no "." or ".." segment and no empty one;
 *     and, when it holds nothing a raw path may not ('%', which would
 *     be read as an escape, and '?', '#', space), normalizing it again
 *     changes nothing (escapes are decoded exactly once);
 *   - a satisfiable range lies inside the body and is not empty;
 *   - the coding chosen is identity or one the file has.
 */
#include <stdbool.h>
#include <string.h>

#include "edge/httputil.h"
#include "fuzz.h"

static void
fuzz_path(const char *raw)
{
	char out[EDGE_PATH_MAX + 1], again[EDGE_PATH_MAX + 1];
	size_t n;

	if (edge_path_normalize(raw, out, sizeof(out)) != 0)
		return;
	n = strlen(out);
	fuzz_check(out[0] == '/');
	for (size_t i = 0; i < n; i++)
		fuzz_check(out[i] != '\\' && (unsigned char)out[i] >= 0x20 &&
		    out[i] != 0x7f);
	fuzz_check(strstr(out, "//") == NULL);
	fuzz_check(strstr(out, "/./") == NULL &&
	    strstr(out, "/../") == NULL);
	fuzz_check(!(n >= 2 && strcmp(out + n - 2, "/.") == 0));
	fuzz_check(!(n >= 3 && strcmp(out + n - 3, "/..") == 0));
	if (strpbrk(out, "%?# ") == NULL) {
		fuzz_check(edge_path_normalize(out, again, sizeof(again)) ==
		    0);
		fuzz_check(strcmp(out, again) == 0);
	}
}

static void
fuzz_range(const char *header, uint64_t size)
{
	uint64_t start = 0, len = 0;

	switch (edge_range_parse(header, size, &start, &len)) {
	case EDGE_RANGE_OK:
		fuzz_check(len > 0 && start < size && len <= size - start);
		break;
	case EDGE_RANGE_UNSATISFIABLE:
		fuzz_check(size > 0);
		break;
	case EDGE_RANGE_NONE:
		break;
	default:
		fuzz_check(!"an answer edge_range_parse does not document");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t body = 0;
	unsigned available, enc;
	char *s;

	if (size < 9)
		return 0;
	memcpy(&body, data + 1, sizeof(body));
	s = malloc(size - 9 + 1);
	fuzz_check(s != NULL);
	memcpy(s, data + 9, size - 9);
	s[size - 9] = '\0';

	switch (data[0] & 3) {
	case 0:
		fuzz_path(s);
		break;
	case 1:
		/* Small sizes too, where the edges of a range are. */
		fuzz_range(s, data[0] & 4 ? body : body % 1024);
		break;
	case 2:
		available = (data[0] >> 2) & (EDGE_ENC_GZIP | EDGE_ENC_BR);
		enc = edge_accept_encoding(s, available);
		fuzz_check(enc == EDGE_ENC_IDENTITY ||
		    ((enc == EDGE_ENC_GZIP || enc == EDGE_ENC_BR) &&
		    (enc & available) == enc));
		break;
	default:
		(void)edge_etag_match(s, "\"0123abcd\"");
		(void)edge_etag_match(s, "W/\"0123abcd\"");
		break;
	}
	free(s);
	return 0;
}
