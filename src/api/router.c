/*
 * router: a linear scan over a small table; each pattern is walked
 * segment by segment against the path.
 */
#include <string.h>

#include "api/router.h"

/* Next segment of *p (after its leading '/'): start and length. */
static int
router_next(const char **p, const char **seg, size_t *len)
{
	if (**p != '/')
		return 0;
	*seg = *p + 1;
	*len = strcspn(*seg, "/");
	*p = *seg + *len;
	return 1;
}

/* 1 when path fits pattern; parameters copied into m. */
static int
router_fits(const char *pattern, const char *path, struct router_match *m)
{
	const char *ps, *qs;
	size_t pl, ql;

	m->nparams = 0;
	for (;;) {
		int more_p = router_next(&pattern, &ps, &pl);
		int more_q = router_next(&path, &qs, &ql);

		if (!more_p || !more_q)
			return !more_p && !more_q && *pattern == '\0' &&
			    *path == '\0';
		if (ql == 0)
			return 0;
		if (ps[0] == ':') {
			if (ql >= ROUTER_PARAM_MAX ||
			    m->nparams == ROUTER_MAX_PARAMS)
				return 0;
			memcpy(m->params[m->nparams], qs, ql);
			m->params[m->nparams++][ql] = '\0';
		} else if (pl != ql || memcmp(ps, qs, ql) != 0)
			return 0;
	}
}

static void
router_allow_add(char *allow, size_t allowlen, const char *method)
{
	size_t used = strlen(allow);

	if (strstr(allow, method) != NULL)
		return;
	if (used + strlen(method) + 3 > allowlen)
		return;
	if (used > 0) {
		memcpy(allow + used, ", ", 2);
		used += 2;
	}
	strcpy(allow + used, method);
}

enum router_result
router_match(const struct router_route *table, size_t n, const char *method,
    const char *path, struct router_match *m, char *allow, size_t allowlen)
{
	enum router_result res = ROUTER_NOT_FOUND;
	struct router_match probe;

	if (allowlen > 0)
		allow[0] = '\0';
	if (strlen(path) > ROUTER_PATH_MAX)
		return ROUTER_NOT_FOUND;

	for (size_t i = 0; i < n; i++) {
		if (!router_fits(table[i].pattern, path, &probe))
			continue;
		if (strcmp(table[i].method, method) == 0) {
			*m = probe;
			m->route = &table[i];
			return ROUTER_FOUND;
		}
		if (res != ROUTER_BAD_METHOD) {
			*m = probe;     /* for logs and metrics */
			m->route = &table[i];
		}
		res = ROUTER_BAD_METHOD;
		router_allow_add(allow, allowlen, table[i].method);
	}
	return res;
}
