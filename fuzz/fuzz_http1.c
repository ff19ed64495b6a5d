/*
 * fuzz_http1: the edge's request parser (edge_parse_head in
 * src/edge/http1.c), which reads whatever a client sends.
 *
 * Input: bytes as they would arrive on a connection.  The head is cut
 * where the connection loop would cut it (after the first empty line,
 * blank lines before the request line dropped); an input without one is
 * skipped.  Properties, besides memory safety:
 *   - the answer is 0 or one of the statuses edge_parse_head names;
 *   - on 0, every string of the request lies inside the head and ends
 *     there; the method is a token; the path is "*" or starts with '/';
 *     HTTP/1.1 has a Host; no more fields than EDGE_HEADERS_MAX, each
 *     with a non-empty name; edge_request_header finds the Host field.
 */
#include <stdbool.h>
#include <string.h>

#include "edge/http1.h"
#include "fuzz.h"

static const char *fuzz_lo, *fuzz_hi;     /* the head's bytes */

/* s is inside the head, and so is its NUL. */
static void
fuzz_inside(const char *s)
{
	fuzz_check(s >= fuzz_lo && s < fuzz_hi);
	fuzz_check(memchr(s, '\0', (size_t)(fuzz_hi - s)) != NULL);
}

/* Where the head ends (past its empty line), or 0; *start past blanks. */
static size_t
fuzz_head_end(const uint8_t *in, size_t len, size_t *start)
{
	size_t i = 0;

	while (i < len && (in[i] == '\n' ||
	    (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')))
		i += in[i] == '\n' ? 1 : 2;
	*start = i;
	for (size_t j = i; j < len; j++) {
		if (in[j] != '\n')
			continue;
		if (j > i && in[j - 1] == '\n')
			return j + 1;
		if (j > i + 1 && in[j - 1] == '\r' && in[j - 2] == '\n')
			return j + 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct edge_request req;     /* large: off the stack */
	struct edge_head_info info;
	size_t start, end, len;
	const char *host;
	char *head;
	int status;

	end = fuzz_head_end(data, size, &start);
	if (end == 0)
		return 0;
	len = end - start;
	head = malloc(len);
	fuzz_check(head != NULL);
	memcpy(head, data + start, len);
	fuzz_lo = head;
	fuzz_hi = head + len;

	status = edge_parse_head(head, len, &req, &info);
	fuzz_check(status == 0 || status == 400 || status == 413 ||
	    status == 431 || status == 505);
	if (status == 0) {
		fuzz_inside(req.method);
		fuzz_check(req.method[0] != '\0' &&
		    strpbrk(req.method, " \t\r\n:/") == NULL);
		/* "/" stands in for an absolute-form target without a path. */
		if (strcmp(req.path, "/") != 0)
			fuzz_inside(req.path);
		fuzz_check(strcmp(req.path, "*") == 0 || req.path[0] == '/');
		if (req.query != NULL)
			fuzz_inside(req.query);
		fuzz_check(req.minor == 0 || req.minor == 1);
		fuzz_check(req.minor == 0 || req.host != NULL);
		if (req.host != NULL)
			fuzz_inside(req.host);
		fuzz_check(req.head == (strcmp(req.method, "HEAD") == 0));
		fuzz_check(req.nheaders <= EDGE_HEADERS_MAX);
		for (size_t i = 0; i < req.nheaders; i++) {
			fuzz_inside(req.headers[i].name);
			fuzz_inside(req.headers[i].value);
			fuzz_check(req.headers[i].name[0] != '\0');
		}
		host = edge_request_header(&req, "host");
		fuzz_check(host == NULL || req.host != NULL);
		fuzz_check(!info.has_body);     /* those are answered 413 */
	}
	free(head);
	return 0;
}
