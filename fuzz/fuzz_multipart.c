/*
 * fuzz_multipart: the upload's multipart/form-data parser
 * (src/api/multipart.c).
 *
 * Input: one byte that picks how the body is cut into pieces and which
 * form of the boundary parameter the Content-Type carries, then the
 * body.  Properties, besides memory safety:
 *   - the parser hands on no empty chunk, and no more content than the
 *     body holds;
 *   - what it reports (each part's headers and content, whether it
 *     failed, whether the body may end there) is the same whether the
 *     body came whole or in pieces.
 */
#include <stdbool.h>
#include <string.h>

#include "api/multipart.h"
#include "fuzz.h"

#define FUZZ_PARTS_MAX  64

/* What a parse reported: the parts, their content joined. */
struct account {
	size_t  parts;          /* begin calls */
	size_t  dropped;        /* parts past FUZZ_PARTS_MAX (not kept) */
	char   *head[FUZZ_PARTS_MAX];     /* name, filename, type */
	char   *body[FUZZ_PARTS_MAX];
	size_t  len[FUZZ_PARTS_MAX];
	size_t  total;          /* content bytes handed on, all parts */
	bool    failed;
	bool    complete;
};

static char *
fuzz_join(const char *name, const char *filename, const char *type)
{
	const char *v[3] = { name, filename, type };
	size_t n = 0, len[3];
	char *s;

	for (int i = 0; i < 3; i++) {
		len[i] = v[i] != NULL ? strlen(v[i]) : 0;
		n += len[i] + 2;
	}
	s = malloc(n + 1);
	fuzz_check(s != NULL);
	n = 0;
	for (int i = 0; i < 3; i++) {
		/* A NULL header is told from an empty one. */
		s[n++] = v[i] != NULL ? 'v' : '-';
		memcpy(s + n, v[i] != NULL ? v[i] : "", len[i]);
		n += len[i];
		s[n++] = '\n';
	}
	s[n] = '\0';
	return s;
}

static int
fuzz_begin(void *ctx, const char *name, const char *filename,
    const char *type)
{
	struct account *a = ctx;

	if (a->parts < FUZZ_PARTS_MAX)
		a->head[a->parts] = fuzz_join(name, filename, type);
	else
		a->dropped++;
	a->parts++;
	return 0;
}

static int
fuzz_data(void *ctx, const char *buf, size_t len)
{
	struct account *a = ctx;
	size_t i = a->parts - 1;
	char *grown;

	fuzz_check(len > 0);
	fuzz_check(a->parts > 0);       /* content only inside a part */
	a->total += len;
	if (i >= FUZZ_PARTS_MAX)
		return 0;
	grown = realloc(a->body[i], a->len[i] + len);
	fuzz_check(grown != NULL);
	memcpy(grown + a->len[i], buf, len);
	a->body[i] = grown;
	a->len[i] += len;
	return 0;
}

static const struct multipart_ops fuzz_ops = {
	.begin = fuzz_begin,
	.data = fuzz_data,
};

/* Parses body in pieces of 1 to step bytes (the whole when step is 0). */
static void
fuzz_parse(const char *type, const uint8_t *body, size_t size,
    unsigned step, struct account *a)
{
	struct multipart *mp = multipart_new(type, &fuzz_ops, a);
	unsigned seed = step * 2654435761u + 1;
	size_t off = 0, n;

	fuzz_check(mp != NULL);
	while (off < size) {
		n = size - off;
		if (step > 0) {
			seed = seed * 1103515245u + 12345u;
			if (n > (seed >> 16) % step + 1)
				n = (seed >> 16) % step + 1;
		}
		if (multipart_feed(mp, (const char *)body + off, n) != 0)
			a->failed = true;
		else
			fuzz_check(!a->failed); /* a failure sticks */
		off += n;
	}
	a->complete = multipart_complete(mp);
	multipart_free(mp);
	fuzz_check(a->total <= size);
}

static void
fuzz_account_free(struct account *a)
{
	for (size_t i = 0; i < FUZZ_PARTS_MAX; i++) {
		free(a->head[i]);
		free(a->body[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
		"multipart/form-data; boundary=xyz",
		"multipart/form-data; boundary=\"xyz\"",
		"Multipart/Form-Data; boundary=x",
		"multipart/form-data; boundary=----WebKitFormBoundaryA",
	};
	struct account whole = { 0 }, cut = { 0 };
	const char *type;

	if (size < 1)
		return 0;
	type = types[data[0] & 3];
	fuzz_parse(type, data + 1, size - 1, 0, &whole);
	fuzz_parse(type, data + 1, size - 1, (data[0] >> 2) + 1, &cut);

	/*
	 * A failure may come at another point of the body when it is cut
	 * (a callback's refusal aside, none here), but it must come.
	 */
	fuzz_check(whole.failed == cut.failed);
	if (!whole.failed) {
		fuzz_check(whole.complete == cut.complete);
		fuzz_check(whole.parts == cut.parts);
		fuzz_check(whole.total == cut.total);
		for (size_t i = 0; i < whole.parts && i < FUZZ_PARTS_MAX;
		    i++) {
			fuzz_check(strcmp(whole.head[i], cut.head[i]) == 0);
			fuzz_check(whole.len[i] == cut.len[i]);
			fuzz_check(whole.len[i] == 0 || memcmp(whole.body[i],
			    cut.body[i], whole.len[i]) == 0);
		}
	}
	fuzz_account_free(&whole);
	fuzz_account_free(&cut);
	return 0;
}
