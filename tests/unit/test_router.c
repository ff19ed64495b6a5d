/*
 * Unit tests of the API router: literal and parameter segments, 404
 * versus 405, and the bounds on paths and parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/router.h"

static const struct router_route routes[] = {
	{ "GET",    "/healthz", NULL, 0, 0, 0 },
	{ "POST",   "/api/auth/login", NULL, 0, 0, 0 },
	{ "POST",   "/api/builds/:tenantId", NULL, 0, 0, 0 },
	{ "GET",    "/api/builds/:tenantId/builds", NULL, 0, 0, 0 },
	{ "GET",    "/api/builds/:tenantId/builds/:buildId", NULL, 0, 0, 0 },
	{ "DELETE", "/api/builds/:tenantId/builds/:buildId", NULL, 0, 0, 0 },
	{ "POST",   "/api/builds/:tenantId/builds/:buildId/retry", NULL, 0,
	    0, 0 },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static enum router_result
match(const char *method, const char *path, struct router_match *m,
    char *allow)
{
	return router_match(routes, NROUTES, method, path, m, allow, 64);
}

static void
test_literal(void **state)
{
	struct router_match m;
	char allow[64];

	(void)state;
	assert_int_equal(match("GET", "/healthz", &m, allow), ROUTER_FOUND);
	assert_ptr_equal(m.route, &routes[0]);
	assert_int_equal(m.nparams, 0);
	assert_int_equal(match("POST", "/api/auth/login", &m, allow),
	    ROUTER_FOUND);
	assert_ptr_equal(m.route, &routes[1]);
}

static void
test_params(void **state)
{
	struct router_match m;
	char allow[64];

	(void)state;
	assert_int_equal(match("GET", "/api/builds/acme/builds/b-1", &m,
	    allow), ROUTER_FOUND);
	assert_ptr_equal(m.route, &routes[4]);
	assert_int_equal(m.nparams, 2);
	assert_string_equal(m.params[0], "acme");
	assert_string_equal(m.params[1], "b-1");

	assert_int_equal(match("POST", "/api/builds/acme/builds/b-1/retry",
	    &m, allow), ROUTER_FOUND);
	assert_ptr_equal(m.route, &routes[6]);

	assert_int_equal(match("POST", "/api/builds/acme", &m, allow),
	    ROUTER_FOUND);
	assert_string_equal(m.params[0], "acme");
}

static void
test_method_not_allowed(void **state)
{
	struct router_match m;
	char allow[64];

	(void)state;
	assert_int_equal(match("POST", "/healthz", &m, allow),
	    ROUTER_BAD_METHOD);
	assert_string_equal(allow, "GET");
	assert_int_equal(match("PUT", "/api/builds/acme/builds/x", &m,
	    allow), ROUTER_BAD_METHOD);
	assert_string_equal(allow, "GET, DELETE");
}

static void
test_not_found(void **state)
{
	static const char *const paths[] = {
		"/", "", "/healthz/", "/healthzz", "/api", "/api/builds",
		"/api/builds//builds", "/api/builds/acme/builds/",
		"/api/builds/acme/builds/x/retry/more", "healthz",
		"//healthz", "/api/auth/login/",
	};
	struct router_match m;
	char allow[64];

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		assert_int_equal(match("GET", paths[i], &m, allow),
		    ROUTER_NOT_FOUND);
}

static void
test_bounds(void **state)
{
	char path[ROUTER_PATH_MAX + 64], allow[64];
	struct router_match m;
	size_t n;

	(void)state;
	/* A parameter of ROUTER_PARAM_MAX - 1 bytes fits, one more not. */
	n = (size_t)snprintf(path, sizeof(path), "/api/builds/");
	memset(path + n, 'a', ROUTER_PARAM_MAX - 1);
	strcpy(path + n + ROUTER_PARAM_MAX - 1, "/builds");
	assert_int_equal(match("GET", path, &m, allow), ROUTER_FOUND);
	assert_int_equal(strlen(m.params[0]), ROUTER_PARAM_MAX - 1);

	memset(path + n, 'a', ROUTER_PARAM_MAX);
	strcpy(path + n + ROUTER_PARAM_MAX, "/builds");
	assert_int_equal(match("GET", path, &m, allow), ROUTER_NOT_FOUND);

	/* An over-long path never matches. */
	memset(path, '/', ROUTER_PATH_MAX + 1);
	path[ROUTER_PATH_MAX + 1] = '\0';
	assert_int_equal(match("GET", path, &m, allow), ROUTER_NOT_FOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
