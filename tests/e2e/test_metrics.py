"""Health, routing errors, request ids and the Prometheus metrics."""

import math
import threading
import time

import pytest

import wharf_harness as wh

REQUESTS_TOTAL = "wharf_http_requests_total"
DURATION = "wharf_http_request_duration_seconds"
BUILDS_ROUTE = "/api/builds/:tenantId/builds"
# How long to wait for counters that a server may update just after it
# has sent the response.  Not a performance bound: the assertion on the
# final value is exact.
SETTLE_SECONDS = 5


def scrape(server):
    resp = server.get("/metrics")
    assert resp.status_code == 200, wh.show(resp)
    wh.assert_request_id(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain"), wh.show(resp)
    try:
        return wh.parse_prometheus(resp.text)
    except ValueError as e:
        raise AssertionError("%s\n%s" % (e, resp.text[:4000]))


def counter(samples, route, status, method="GET"):
    return wh.sample_value(samples, REQUESTS_TOTAL, method=method,
                           route=route, status=str(status))


def wait_for_counter(server, route, status, want, method="GET"):
    """Scrapes until the counter reaches want (or SETTLE_SECONDS pass);
    returns the last samples and value."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        samples, _ = scrape(server)
        got = counter(samples, route, status, method)
        if got >= want or time.monotonic() > deadline:
            return samples, got
        time.sleep(0.1)


# -- health and routing -----------------------------------------------


def test_healthz(server):
    resp = server.get("/healthz")
    assert wh.assert_json(resp, 200) == {"status": "ok"}, wh.show(resp)


def test_request_ids_are_unique(server):
    ids = [wh.assert_request_id(server.get("/healthz")) for _ in range(5)]
    ids.append(wh.assert_request_id(server.get("/no/such/path")))
    ids.append(wh.assert_request_id(server.get("/metrics")))
    assert len(set(ids)) == len(ids), ids


@pytest.mark.parametrize("path", [
    "/",
    "/nope",
    "/api",
    "/api/nope",
    "/api/builds",
    "/api/builds/acme/nope",
    "/api/builds/acme/builds/x/y/z/w",
    "/healthz/extra",
    "/metrics/extra",
])
def test_unknown_path_is_404_json(server, path):
    wh.assert_error(server.get(path), 404)


ALLOWED = {"/healthz": {"GET"}, "/metrics": {"GET"},
           "/api/auth/login": {"POST"}, "/api/builds": {"GET"}}


@pytest.mark.parametrize("method,path", [
    ("POST", "/healthz"),
    ("DELETE", "/healthz"),
    ("POST", "/metrics"),
    ("PUT", "/metrics"),
    ("GET", "/api/auth/login"),
    ("DELETE", "/api/auth/login"),
    ("PUT", "/api/builds/acme/builds"),
    ("DELETE", "/api/builds/acme/builds"),
    ("PATCH", "/api/builds/acme/builds"),
])
def test_wrong_method_is_405(server, method, path):
    resp = server.request(method, path)
    wh.assert_error(resp, 405)
    # RFC 9110: a 405 lists the methods the resource allows.
    allow = {m.strip().upper()
             for m in resp.headers.get("Allow", "").split(",")}
    assert ALLOWED[path.split("/acme/")[0]] <= allow, wh.show(resp)
    assert method not in allow, wh.show(resp)


def test_error_responses_carry_request_id(server):
    for resp in (server.get("/api/builds/acme/builds"),
                 server.post("/api/auth/login", data="{",
                             headers={"Content-Type": "application/json"}),
                 server.get("/nope")):
        wh.assert_request_id(resp)


# -- metrics -------------------------------------------------------------


def test_metrics_format_and_types(server):
    server.get("/healthz")
    samples, types = scrape(server)
    assert types.get(REQUESTS_TOTAL) == "counter", types
    assert types.get(DURATION) == "histogram", types
    for name, labels, value in samples:
        assert not math.isnan(value), (name, labels)
        if name == REQUESTS_TOTAL:
            assert {"method", "route", "status"} <= set(labels), labels
            assert value >= 0 and value == int(value), (labels, value)


def test_requests_counter_counts_exactly(server):
    m = wh.make_member(server.cli, role="member")
    path = "/api/builds/%s/builds" % m.tenant
    before, _ = scrape(server)
    ok0 = counter(before, BUILDS_ROUTE, 200)
    unauth0 = counter(before, BUILDS_ROUTE, 401)
    forbidden0 = counter(before, BUILDS_ROUTE, 403)

    n_ok, n_unauth, n_forbidden = 3, 2, 4
    for _ in range(n_ok):
        resp = server.get(path, headers=m.bearer())
        assert resp.status_code == 200, wh.show(resp)
    for _ in range(n_unauth):
        resp = server.get(path)
        assert resp.status_code == 401, wh.show(resp)
    for _ in range(n_forbidden):
        resp = server.get(path, headers={"Authorization": "Bearer x.y.z"})
        assert resp.status_code == 403, wh.show(resp)

    after, ok = wait_for_counter(server, BUILDS_ROUTE, 200, ok0 + n_ok)
    after, unauth = wait_for_counter(server, BUILDS_ROUTE, 401,
                                     unauth0 + n_unauth)
    after, forbidden = wait_for_counter(server, BUILDS_ROUTE, 403,
                                        forbidden0 + n_forbidden)
    assert ok - ok0 == n_ok
    assert unauth - unauth0 == n_unauth
    assert forbidden - forbidden0 == n_forbidden

    # The route label is the pattern, never the concrete path.
    for _, labels, _ in wh.find_samples(after, REQUESTS_TOTAL):
        assert m.tenant not in labels["route"], labels


def test_requests_counter_counts_login_and_healthz(server):
    before, _ = scrape(server)
    h0 = counter(before, "/healthz", 200)
    l0 = counter(before, "/api/auth/login", 400, method="POST")
    for _ in range(4):
        assert server.get("/healthz").status_code == 200
    for _ in range(2):
        resp = server.post("/api/auth/login", data="{",
                           headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, wh.show(resp)
    _, h = wait_for_counter(server, "/healthz", 200, h0 + 4)
    _, lg = wait_for_counter(server, "/api/auth/login", 400, l0 + 2,
                             method="POST")
    assert h - h0 == 4
    assert lg - l0 == 2


def _histogram(samples, **labels):
    buckets = [(lab["le"], v) for _, lab, v in
               wh.find_samples(samples, DURATION + "_bucket", **labels)]
    total = wh.sample_value(samples, DURATION + "_count", **labels)
    dsum = wh.sample_value(samples, DURATION + "_sum", **labels)
    return buckets, total, dsum


def test_duration_histogram(server):
    m = wh.make_member(server.cli)
    path = "/api/builds/%s/builds" % m.tenant
    labels = {"method": "GET", "route": BUILDS_ROUTE, "status": "200"}
    before, _ = scrape(server)
    _, count0, sum0 = _histogram(before, **labels)

    n = 5
    for _ in range(n):
        assert server.get(path, headers=m.bearer()).status_code == 200
    wait_for_counter(server, BUILDS_ROUTE, 200,
                     counter(before, BUILDS_ROUTE, 200) + n)

    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        after, _ = scrape(server)
        buckets, count, dsum = _histogram(after, **labels)
        if count >= count0 + n or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    assert count - count0 == n, (count0, count)
    assert dsum >= sum0 and dsum > 0, (sum0, dsum)
    assert buckets, "no %s_bucket lines for %r" % (DURATION, labels)

    # le bounds: numbers, increasing, ending with +Inf; counts cumulative.
    les = [b for b, _ in buckets]
    assert les[-1] == "+Inf", les
    bounds = [float(b) for b in les]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), les
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets
    assert counts[-1] == count, (buckets, count)

    # Every histogram series has the same kind of lines.
    series = {tuple(sorted((k, v) for k, v in lab.items() if k != "le"))
              for n_, lab, _ in after if n_ == DURATION + "_bucket"}
    for s in series:
        lab = dict(s)
        assert wh.find_samples(after, DURATION + "_count", **lab), lab
        assert wh.find_samples(after, DURATION + "_sum", **lab), lab
        assert wh.find_samples(after, DURATION + "_bucket", le="+Inf",
                               **lab), lab


def test_counter_exact_under_concurrency(server):
    m = wh.make_member(server.cli)
    path = "/api/builds/%s/builds" % m.tenant
    before, _ = scrape(server)
    ok0 = counter(before, BUILDS_ROUTE, 200)
    n_threads, per_thread = 8, 5
    statuses = []

    def worker():
        for _ in range(per_thread):
            statuses.append(server.get(path, headers=m.bearer()).status_code)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * (n_threads * per_thread), statuses
    _, ok = wait_for_counter(server, BUILDS_ROUTE, 200,
                             ok0 + n_threads * per_thread)
    assert ok - ok0 == n_threads * per_thread


def test_unmatched_paths_do_not_become_labels(server):
    marker = wh.unique("zz")
    for path in ("/%s" % marker, "/api/builds/%s/nope" % marker,
                 "/api/%s/builds" % marker):
        assert server.get(path).status_code == 404
    resp = server.request("DELETE", "/api/builds/%s/builds" % marker)
    assert resp.status_code == 405, wh.show(resp)
    samples, _ = scrape(server)
    for name, labels, _ in samples:
        assert all(marker not in v for v in labels.values()), (name, labels)
