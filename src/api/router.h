/*
 * router: matches a method and a path against a table of routes whose
 * patterns are literal segments and ":name" parameters
 * ("/api/builds/:tenantId/builds/:buildId").  Knows nothing of HTTP
 * libraries, so it can be tested alone.
 */
#ifndef WHARF_ROUTER_H
#define WHARF_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS   4
#define ROUTER_PARAM_MAX    128         /* longest parameter value */
#define ROUTER_PATH_MAX     2048        /* longest path we route */

struct router_route {
	const char *method;             /* "GET", "POST", ... */
	const char *pattern;            /* also the metrics label */
	const void *handler;            /* opaque to the router */
	unsigned    flags;              /* opaque to the router */
	unsigned    roles;              /* opaque to the router */
	size_t      max_body;           /* opaque to the router */
};

struct router_match {
	const struct router_route *route;
	size_t nparams;
	char   params[ROUTER_MAX_PARAMS][ROUTER_PARAM_MAX];
};

enum router_result {
	ROUTER_FOUND = 0,
	ROUTER_NOT_FOUND,               /* no pattern matches the path */
	ROUTER_BAD_METHOD,              /* a pattern matches, not the method */
};

/*
 * Finds the route for method and path (no query string) in table.  On
 * ROUTER_FOUND fills m with the route and its parameters, in pattern
 * order.  On ROUTER_BAD_METHOD writes the allowed methods ("GET, POST")
 * into allow, and fills m with the first route of the path (for logs and
 * metrics).  A trailing slash is not ignored; empty segments, a
 * parameter longer than ROUTER_PARAM_MAX or a path longer than
 * ROUTER_PATH_MAX never match.
 */
enum router_result router_match(const struct router_route *table,
    size_t n, const char *method, const char *path,
    struct router_match *m, char *allow, size_t allowlen);

#endif
