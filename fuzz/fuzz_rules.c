/*
 * fuzz_rules: the _redirects and _headers parsers and matchers
 * (src/deploy/rules.c), which read files that tenants write.
 *
 * Input: one byte that picks the file (bit 0: _redirects or _headers),
 * then the file.  Properties, besides memory safety:
 *   - a refusal always says why (a non-empty message);
 *   - rules that parse survive the manifest's JSON form: to_json, then
 *     from_json, then to_json again gives the same JSON;
 *   - matching a few paths gives a documented answer: a redirect's
 *     status is 200, 301, 302 or 404 and its target is a string that
 *     fits; a header list has a name and a value for every field.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "deploy/rules.h"
#include "fuzz.h"

static const char *const fuzz_paths[] = {
	"/", "/index.html", "/a/b/c", "/blog/2024/01/post", "/app/",
	"/assets/main.3f2a1b9c.js", "/x y", "/%",
};

/* Queries to match with, the raw text after '?'. */
static const char *const fuzz_queries[] = {
	NULL, "", "id=1", "a=b&c=d&id=2",
};

static void
fuzz_redirects(const char *buf, size_t len)
{
	struct rules_limits lim = { 100, 512 };
	struct rules_redirects *r = NULL, *again = NULL;
	char err[512] = "", target[RULES_TARGET_MAX];
	json_t *j1, *j2;
	bool force;
	int status, rc;

	if (rules_redirects_parse(buf, len, "_redirects", &lim, &r, err,
	    sizeof(err)) != 0) {
		fuzz_check(r == NULL && err[0] != '\0');
		return;
	}
	fuzz_check(rules_redirects_count(r) <= lim.max_rules);
	j1 = rules_redirects_to_json(r);
	fuzz_check(j1 != NULL);
	fuzz_check(rules_redirects_from_json(j1, &again, err,
	    sizeof(err)) == 0);
	j2 = rules_redirects_to_json(again);
	fuzz_check(j2 != NULL && json_equal(j1, j2));
	for (size_t p = 0; p < sizeof(fuzz_paths) / sizeof(*fuzz_paths); p++)
		for (size_t q = 0; q < sizeof(fuzz_queries) /
		    sizeof(*fuzz_queries); q++) {
			rc = rules_redirect_match(r, fuzz_paths[p],
			    fuzz_queries[q], target, sizeof(target), &status,
			    &force);
			fuzz_check(rc >= -1 && rc <= 1);
			if (rc == 1)
				fuzz_check((status == 200 || status == 301 ||
				    status == 302 || status == 404) &&
				    memchr(target, '\0', sizeof(target)));
		}
	json_decref(j1);
	json_decref(j2);
	rules_redirects_free(r);
	rules_redirects_free(again);
}

static void
fuzz_headers(const char *buf, size_t len)
{
	struct rules_limits lim = { 100, 512 };
	struct rules_headers *h = NULL, *again = NULL;
	struct rules_header_list list;
	char err[512] = "";
	json_t *j1, *j2;

	if (rules_headers_parse(buf, len, "_headers", &lim, &h, err,
	    sizeof(err)) != 0) {
		fuzz_check(h == NULL && err[0] != '\0');
		return;
	}
	j1 = rules_headers_to_json(h);
	fuzz_check(j1 != NULL);
	fuzz_check(rules_headers_from_json(j1, &again, err,
	    sizeof(err)) == 0);
	j2 = rules_headers_to_json(again);
	fuzz_check(j2 != NULL && json_equal(j1, j2));
	for (size_t p = 0; p < sizeof(fuzz_paths) / sizeof(*fuzz_paths);
	    p++) {
		memset(&list, 0, sizeof(list));
		fuzz_check(rules_headers_match(h, fuzz_paths[p], &list) == 0);
		for (size_t i = 0; i < list.count; i++)
			fuzz_check(list.fields[i].name != NULL &&
			    list.fields[i].value != NULL &&
			    list.fields[i].name[0] != '\0');
		rules_header_list_free(&list);
	}
	json_decref(j1);
	json_decref(j2);
	rules_headers_free(h);
	rules_headers_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_headers((const char *)data + 1, size - 1);
	else
		fuzz_redirects((const char *)data + 1, size - 1);
	return 0;
}
