/*
 * fuzz_http1: the edge's request framing and parser (edge_head_find and
 * edge_parse_head in src/edge/http1.c), which read whatever a client
 * sends.
 *
 * Input: bytes as they would arrive on a connection.  The head is found
 * as the connection loop finds it, in one call and again with the
 * bytes arriving in two pieces (cut where the first byte says); an
 * input without a whole head is skipped.  Properties, besides memory
 * safety:
 *   - both ways find the same head;
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct edge_request req;     /* large: off the stack */
	struct edge_head_info info;
	size_t start, scan, whole_start, whole_scan, end, len, cut;
	const char *host;
	char *head;
	int status;

	if (size < 2)
		return 0;
	cut = data[0] % size;
	data++;
	size--;
	/* In pieces: the first cut bytes, then all of them. */
	start = scan = 0;
	end = edge_head_find((const char *)data, cut, &start, &scan);
	if (end == 0)
		end = edge_head_find((const char *)data, size, &start, &scan);
	whole_start = whole_scan = 0;
	fuzz_check(edge_head_find((const char *)data, size, &whole_start,
	    &whole_scan) == end);
	if (end == 0)
		return 0;
	fuzz_check(whole_start == start && start < end && end <= size);
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
