"""Publishing (build step 13), deployments, rollback and the pointer.

Upload -> build -> publish -> fetch through the edge, for a static site
and for a Node project whose build writes dist/; the manifest and the
content-addressed objects in the blob store; a redeploy that changes
one file stores one object; rollback and promote through
/api/tenants/<t>/deployments and the edge following each flip at once;
immutable deployment URLs; pointers/<t>/current.json; _redirects and
_headers that do not parse fail the build at "publish".

One `wharf serve` for the module; each test makes its own tenant, so
that counts and lists are its own.
"""

import gzip
import http.client
import json
import os
import re
import shutil

import pytest

import wharf_harness as wh

FLIP_TIMEOUT = 2          # the in-process edge sees a flip at once
NODE_BUILD_TIMEOUT = 300  # npm starts twice even without dependencies

BWRAP = "/usr/bin/bwrap"
HAVE_NODE_SANDBOX = (os.access(BWRAP, os.X_OK)
                     and shutil.which("node") is not None
                     and shutil.which("npm") is not None)


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


def site_files(marker, extra=None):
    files = {
        "index.html": "<!doctype html><title>%s</title><h1>home %s</h1>\n"
                      % (marker, marker),
        "about.html": "<p>about %s</p>\n" % marker,
        "css/site.css": "".join("p.x%d { margin: %dpx; }\n" % (i, i)
                                for i in range(40)),
        "img/pixel.bin": b"\x00\x01\x02" + marker.encode(),
    }
    files.update(extra or {})
    return files


def edge_get(server, host, path="/", **kw):
    headers = {"Accept-Encoding": "identity"}
    headers.update(kw.pop("headers", {}))
    return wh.edge_request(server, host, path, headers=headers, **kw)


def wait_serves(server, host, marker, path="/", timeout=FLIP_TIMEOUT):
    """Polls the edge until host's path holds marker; the response."""
    def check():
        r = edge_get(server, host, path)
        # A list: a Response is false when its status is an error.
        return [r] if r.status_code == 200 and \
            marker.encode() in r.content else None
    return wh.wait_until(check, timeout, "%s%s serves %s"
                         % (host, path, marker))[0]


def pointer(server, tenant):
    return wh.read_blob_json(server.data_dir,
                             "pointers/%s/current.json" % tenant)


def wait_pointer(server, tenant, deployment, build_id):
    def check():
        try:
            p = pointer(server, tenant)
        except (OSError, ValueError):
            return None
        return p if p.get("deploymentId") == deployment["id"] else None
    p = wh.wait_until(check, FLIP_TIMEOUT, "pointers/%s/current.json names "
                      "deployment %s" % (tenant, deployment["id"]))
    assert p["tenantId"] == tenant, p
    assert p["buildId"] == build_id, p
    assert p["version"] == deployment["version"], p
    assert p["path"] == "tenants/%s/deployments/%s/manifest.json" % (
        tenant, build_id), p
    assert isinstance(p.get("timestamp"), str) and p["timestamp"], p
    return p


# -- upload, build, publish, fetch -----------------------------------------


def test_static_site_end_to_end(server, owner):
    marker = wh.unique("static-")
    files = wh.static_site_files(marker)            # nested site/public/
    data = wh.upload_ok(server, owner, wh.make_zip(files))
    build = wh.wait_build(server, owner, data["build"]["id"], wh.FINISHED)
    assert build["status"] == "success", json.dumps(build, indent=1)
    assert build["progress"] == 100, build

    site = wh.site_host(owner.tenant)
    imm = wh.deployment_host(build["id"], owner.tenant)
    urls = build.get("urls") or {}
    assert urls.get("site") == "http://%s:%d/" % (site, server.edge_port), \
        build
    assert urls.get("deployment") == "http://%s:%d/" % (
        imm, server.edge_port), build

    root = "site/public/"
    for host in (site, imm):
        resp = edge_get(server, host, "/")
        assert resp.status_code == 200, wh.show(resp)
        assert resp.content == files[root + "index.html"].encode()
        resp = edge_get(server, host, "/style.css")
        assert resp.status_code == 200, wh.show(resp)
        assert resp.content == files[root + "style.css"].encode()
        assert resp.headers.get("Content-Type") == "text/css; charset=utf-8"
        resp = edge_get(server, host, "/about/")
        assert resp.status_code == 200, wh.show(resp)
        assert resp.content == files[root + "about/index.html"].encode()
        resp = edge_get(server, host, "/about")
        assert resp.status_code == 200, wh.show(resp)
        assert resp.content == files[root + "about/index.html"].encode()

    d = wh.list_deployments(server, owner)
    assert len(d["deployments"]) == 1, d
    dep = d["deployments"][0]
    assert dep["buildId"] == build["id"], d
    assert dep["status"] == "active" and dep["current"] is True, d
    assert d["current"] == dep["id"], d
    assert dep["fileCount"] == 3, d
    assert dep["bytes"] == sum(len(v.encode()) for v in files.values()), d
    assert dep["url"] == urls["deployment"], d
    wait_pointer(server, owner.tenant, dep, build["id"])


NODE_BUILD_JS = """\
const fs = require('fs');
fs.mkdirSync('dist/assets', { recursive: true });
fs.writeFileSync('dist/index.html',
  '<!doctype html><script src="/assets/main-4e5f6a7b.js"></script>' +
  '<h1>built by node %(m)s</h1>\\n');
fs.writeFileSync('dist/assets/main-4e5f6a7b.js',
  'console.log("%(m)s " + ' + JSON.stringify(process.env.NODE_ENV) + ');\\n');
"""


@pytest.mark.skipif(not HAVE_NODE_SANDBOX,
                    reason="node builds run under bubblewrap (%s) with "
                           "node and npm; bwrap: %s, node: %s, npm: %s"
                           % (BWRAP, os.access(BWRAP, os.X_OK),
                              shutil.which("node"), shutil.which("npm")))
def test_node_project_end_to_end(server, owner):
    marker = wh.unique("node-")
    package = {"name": "node-site", "version": "1.0.0", "private": True,
               "scripts": {"build": "node build.js"}}
    zip_bytes = wh.make_zip({
        "package.json": json.dumps(package, indent=2) + "\n",
        "build.js": NODE_BUILD_JS % {"m": marker},
        "src/readme.txt": "sources, not published\n",
    })
    data = wh.upload_ok(server, owner, zip_bytes)
    build = wh.wait_build(server, owner, data["build"]["id"], wh.FINISHED,
                          timeout=NODE_BUILD_TIMEOUT)
    if build["status"] != "success":
        _, log = wh.get_logs(server, owner, build["id"])
        raise AssertionError("node build failed: %s\n--- log ---\n%s"
                             % (json.dumps(build, indent=1), log[-6000:]))
    host = wh.site_host(owner.tenant)
    resp = edge_get(server, host, "/")
    assert resp.status_code == 200, wh.show(resp)
    assert ("built by node %s" % marker).encode() in resp.content
    resp = edge_get(server, host, "/assets/main-4e5f6a7b.js")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == ('console.log("%s " + "production");\n'
                            % marker).encode(), wh.show(resp)
    assert resp.headers.get("Cache-Control") == \
        "public, max-age=31536000, immutable", wh.show(resp)
    # Only dist/ is published.
    for path in ("/build.js", "/package.json", "/src/readme.txt"):
        resp = edge_get(server, host, path)
        assert b"writeFileSync" not in resp.content, wh.show(resp)
        assert b"node-site" not in resp.content, wh.show(resp)
        assert b"sources, not published" not in resp.content


# -- the manifest and the objects ------------------------------------------


def test_manifest_and_objects(server, owner):
    marker = wh.unique("m-")
    redirects = "# rules\n/old /about 301\n\n/spa/* /index.html 200\n"
    headers = "/*\n  X-Frame-Options: DENY\n"
    files = site_files(marker, {"_redirects": redirects,
                                "_headers": headers,
                                "tiny.txt": "tiny\n"})
    build = wh.deploy_files(server, owner, files)
    key = "tenants/%s/deployments/%s/manifest.json" % (owner.tenant,
                                                       build["id"])
    m = wh.read_blob_json(server.data_dir, key)
    dep = wh.deployment_of_build(server, owner, build["id"])

    assert m["version"] == 1, m
    assert m["tenant"] == owner.tenant, m
    assert m["buildId"] == build["id"], m
    assert m["deploymentId"] == dep["id"], m
    assert isinstance(m.get("createdAt"), str), m

    published = {"/" + k: (v.encode() if isinstance(v, str) else v)
                 for k, v in files.items()
                 if k not in ("_redirects", "_headers")}
    assert set(m["files"]) == set(published), m["files"]
    objects = "tenants/%s/objects/" % owner.tenant
    for path, content in published.items():
        entry = m["files"][path]
        assert entry["hash"] == wh.sha256_hex(content), (path, entry)
        assert entry["size"] == len(content), (path, entry)
        obj = wh.blob_path(server.data_dir, objects + entry["hash"])
        assert obj.read_bytes() == content, path
        for enc, suffix in (("gzip", ".gz"), ("br", ".br")):
            variant = wh.blob_path(server.data_dir,
                                   objects + entry["hash"] + suffix)
            if entry.get(enc):
                assert variant.stat().st_size == entry[enc], (path, entry)
                assert entry[enc] < len(content), (path, entry)
            else:
                assert not variant.exists(), (path, entry)
        gz = wh.blob_path(server.data_dir, objects + entry["hash"] + ".gz")
        if gz.exists():
            assert gzip.decompress(gz.read_bytes()) == content, path

    # Compressible text of 256 bytes or more has variants; a tiny file
    # and an unknown binary type do not.
    assert m["files"]["/css/site.css"].get("gzip"), m["files"]
    assert m["files"]["/css/site.css"].get("br"), m["files"]
    assert not m["files"]["/tiny.txt"].get("gzip"), m["files"]
    assert not m["files"]["/img/pixel.bin"].get("gzip"), m["files"]
    assert m["files"]["/css/site.css"]["type"] == "text/css; charset=utf-8"

    # The rules, with the line each came from.
    rules = m["redirects"]
    assert [(r["from"], r["to"], r["status"], r["force"]) for r in rules] \
        == [("/old", "/about", 301, False),
            ("/spa/*", "/index.html", 200, False)], rules
    assert len(m["headers"]) == 1, m["headers"]
    block = m["headers"][0]
    assert block["for"] == "/*", block
    assert block["values"] == [{"name": "X-Frame-Options",
                                "value": "DENY"}], block

    # And the edge uses them.
    host = wh.site_host(owner.tenant)
    resp = edge_get(server, host, "/old")
    assert resp.status_code == 301, wh.show(resp)
    assert resp.headers.get("Location") == "/about"
    resp = edge_get(server, host, "/spa/x/y")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == published["/index.html"]
    assert resp.headers.get("X-Frame-Options") == "DENY", wh.show(resp)


def test_manifest_rules_record_their_lines(server, owner):
    """rules.h: each rule in the manifest carries "line", the line of
    its file it came from (counted from 1)."""
    redirects = "# rules\n/old /about 301\n\n/spa/* /index.html 200\n"
    headers = "# headers\n/*\n  X-Frame-Options: DENY\n"
    build = wh.deploy_files(server, owner, site_files(
        wh.unique("l-"), {"_redirects": redirects, "_headers": headers}))
    m = wh.read_blob_json(server.data_dir, "tenants/%s/deployments/%s/"
                          "manifest.json" % (owner.tenant, build["id"]))
    assert [r["line"] for r in m["redirects"]] == [2, 4], m["redirects"]
    assert [b["line"] for b in m["headers"]] == [2], m["headers"]


def test_redeploy_one_file_changed_stores_one_object(server, owner):
    marker = wh.unique("r-")
    files = site_files(marker, {"js/app.js": "".join(
        "var v%d = '%s';\n" % (i, marker) for i in range(50))})
    b1 = wh.deploy_files(server, owner, files)
    before = wh.object_files(server.data_dir, owner.tenant)
    assert len(before) == len(files), before

    changed = dict(files)
    changed["about.html"] = "<p>about, second edition %s</p>\n" % marker
    b2 = wh.deploy_files(server, owner, changed)
    after = wh.object_files(server.data_dir, owner.tenant)
    new = sorted(set(after) - set(before))
    assert new == [wh.sha256_hex(changed["about.html"])], (before, after)
    assert set(before) <= set(after)

    m1 = wh.read_blob_json(server.data_dir, "tenants/%s/deployments/%s/"
                           "manifest.json" % (owner.tenant, b1["id"]))
    m2 = wh.read_blob_json(server.data_dir, "tenants/%s/deployments/%s/"
                           "manifest.json" % (owner.tenant, b2["id"]))
    for path in m1["files"]:
        same = path != "/about.html"
        assert (m1["files"][path]["hash"] == m2["files"][path]["hash"]) \
            == same, path

    # The same ZIP again: nothing new at all.
    wh.deploy_files(server, owner, changed)
    assert wh.object_files(server.data_dir, owner.tenant) == after

    resp = edge_get(server, wh.site_host(owner.tenant), "/about")
    assert resp.content == changed["about.html"].encode(), wh.show(resp)


# -- rollback and promote ----------------------------------------------------


class TwoVersions:
    def __init__(self, server, owner):
        self.server = server
        self.owner = owner
        self.m1 = wh.unique("one-")
        self.m2 = wh.unique("two-")
        self.b1 = wh.deploy_files(server, owner, site_files(self.m1))
        self.b2 = wh.deploy_files(server, owner, site_files(self.m2))
        self.d1 = wh.deployment_of_build(server, owner, self.b1["id"])
        self.d2 = wh.deployment_of_build(server, owner, self.b2["id"])
        self.host = wh.site_host(owner.tenant)


@pytest.fixture
def two(server, owner):
    return TwoVersions(server, owner)


def test_deployments_list_newest_first_current_marked(two):
    data = wh.list_deployments(two.server, two.owner)
    deps = data["deployments"]
    assert [d["id"] for d in deps] == [two.d2["id"], two.d1["id"]], data
    assert [d["buildId"] for d in deps] == [two.b2["id"], two.b1["id"]]
    assert [d["current"] for d in deps] == [True, False], data
    assert [d["status"] for d in deps] == ["active", "inactive"], data
    assert data["current"] == two.d2["id"], data
    assert data["nextCursor"] is None, data
    for d in deps:
        assert d["tenantId"] == two.owner.tenant, d
        assert d["url"] == "http://%s:%d/" % (
            wh.deployment_host(d["buildId"], two.owner.tenant),
            two.server.edge_port), d
        assert d["fileCount"] == 4, d
    assert deps[1]["deactivatedAt"] is not None, deps[1]
    assert deps[0]["deactivatedAt"] is None, deps[0]

    page = wh.list_deployments(two.server, two.owner, limit=1)
    assert [d["id"] for d in page["deployments"]] == [two.d2["id"]], page
    assert page["nextCursor"], page
    rest = wh.list_deployments(two.server, two.owner, limit=1,
                               cursor=page["nextCursor"])
    assert [d["id"] for d in rest["deployments"]] == [two.d1["id"]], rest


@pytest.mark.parametrize("cursor", ["not-a-deployment",
                                    "00000000-0000-4000-8000-000000000000",
                                    "build"])
def test_deployments_list_unknown_cursor(two, cursor):
    """A cursor that is no deployment of this tenant: 400, not a page."""
    if cursor == "build":
        cursor = two.b1["id"]   # a build's id, not a deployment's
    resp = two.server.get("/api/tenants/%s/deployments" % two.owner.tenant,
                          headers=two.owner.bearer(),
                          params={"cursor": cursor})
    body = wh.assert_error(resp, 400)
    assert body["error"] == "Invalid cursor", body
    assert "nextCursor" in body["message"], body


def test_rollback_and_back(two):
    srv, owner = two.server, two.owner
    wait_serves(srv, two.host, two.m2)
    wait_pointer(srv, owner.tenant, two.d2, two.b2["id"])

    # Roll back to v1: the next requests serve v1.
    body = wh.assert_json(wh.activate(srv, owner, two.d1["id"]), 200)
    assert body.get("success") is True, body
    assert body["data"]["deployment"]["id"] == two.d1["id"], body
    assert body["data"]["deployment"]["current"] is True, body
    wait_serves(srv, two.host, two.m1)
    resp = edge_get(srv, two.host, "/about")
    assert resp.content == ("<p>about %s</p>\n" % two.m1).encode(), \
        wh.show(resp)
    wait_pointer(srv, owner.tenant, two.d1, two.b1["id"])
    data = wh.list_deployments(srv, owner)
    assert data["current"] == two.d1["id"], data
    assert {d["id"]: (d["current"], d["status"])
            for d in data["deployments"]} == {
        two.d1["id"]: (True, "active"),
        two.d2["id"]: (False, "inactive")}, data
    build = wh.get_build(srv, owner, two.b1["id"])
    assert build["urls"]["site"] == "http://%s:%d/" % (two.host,
                                                       srv.edge_port), build
    build = wh.get_build(srv, owner, two.b2["id"])
    assert build["urls"]["site"] is None, build

    # Forward again to v2.
    wh.assert_json(wh.activate(srv, owner, two.d2["id"]), 200)
    wait_serves(srv, two.host, two.m2)
    wait_pointer(srv, owner.tenant, two.d2, two.b2["id"])

    # Activating the live deployment again changes nothing.
    wh.assert_json(wh.activate(srv, owner, two.d2["id"]), 200)
    wait_serves(srv, two.host, two.m2)
    data = wh.list_deployments(srv, owner)
    assert data["current"] == two.d2["id"], data


def test_flip_seen_by_the_next_request_on_warm_connections(two):
    """The edge's loop threads cache Host -> manifest per thread; a flip
    must still show on the very next request of a kept-alive connection
    that has just been served the old version, whatever thread it is
    on.  Several connections, so that every loop thread holds one."""
    srv, owner = two.server, two.owner
    wait_serves(srv, two.host, two.m2)
    conns = [http.client.HTTPConnection("127.0.0.1", srv.edge_port,
                                        timeout=10) for _ in range(8)]

    def fetch(conn):
        conn.request("GET", "/about", headers={
            "Host": two.host, "Accept-Encoding": "identity"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return body

    try:
        current = (two.d2, two.m2)
        for flip in range(6):
            for conn in conns:                  # warm every cache
                for _ in range(3):
                    assert current[1].encode() in fetch(conn)
            current = (two.d1, two.m1) if current[0] is two.d2 \
                else (two.d2, two.m2)
            wh.assert_json(wh.activate(srv, owner, current[0]["id"]), 200)
            for i, conn in enumerate(conns):
                body = fetch(conn)
                assert current[1].encode() in body, \
                    "flip %d, connection %d still served %r" % (
                        flip, i, body)
    finally:
        for conn in conns:
            conn.close()


def test_immutable_urls_ignore_the_pointer(two):
    srv, owner = two.server, two.owner
    hosts = {two.m1: wh.deployment_host(two.b1["id"], owner.tenant),
             two.m2: wh.deployment_host(two.b2["id"], owner.tenant)}

    def check_immutables():
        for marker, host in hosts.items():
            for path in ("/", "/about"):
                resp = edge_get(srv, host, path)
                assert resp.status_code == 200, wh.show(resp)
                assert marker.encode() in resp.content, wh.show(resp)
                other = two.m2 if marker == two.m1 else two.m1
                assert other.encode() not in resp.content

    check_immutables()
    wh.assert_json(wh.activate(srv, owner, two.d1["id"]), 200)
    wait_serves(srv, two.host, two.m1)
    check_immutables()
    wh.assert_json(wh.activate(srv, owner, two.d2["id"]), 200)
    wait_serves(srv, two.host, two.m2)
    check_immutables()


def test_activate_roles(two):
    srv, owner = two.server, two.owner
    member = wh.make_member(srv.cli, "member", tenant=owner.tenant)
    admin = wh.make_member(srv.cli, "admin", tenant=owner.tenant)

    wh.assert_error(wh.activate(srv, member, two.d1["id"]), 403)
    # Refused: nothing changed.
    assert wh.list_deployments(srv, member)["current"] == two.d2["id"]
    wait_serves(srv, two.host, two.m2)

    wh.assert_json(wh.activate(srv, admin, two.d1["id"]), 200)
    wait_serves(srv, two.host, two.m1)
    wh.assert_json(wh.activate(srv, owner, two.d2["id"]), 200)
    wait_serves(srv, two.host, two.m2)

    # Outsiders: a user of another tenant, and no token.
    stranger = wh.make_member(srv.cli, "owner")
    wh.assert_error(wh.activate(srv, stranger, two.d1["id"],
                                tenant=owner.tenant), 403)
    resp = srv.post("/api/tenants/%s/deployments/%s/activate"
                    % (owner.tenant, two.d1["id"]))
    wh.assert_error(resp, 401)
    wait_serves(srv, two.host, two.m2)


def test_activate_unknown_or_foreign_deployment_404(two):
    srv, owner = two.server, two.owner
    wh.assert_error(wh.activate(srv, owner,
                                "00000000-0000-4000-8000-000000000000"), 404)
    other = wh.make_member(srv.cli, "owner")
    b = wh.deploy_files(srv, other, site_files(wh.unique("o-")))
    foreign = wh.deployment_of_build(srv, other, b["id"])
    wh.assert_error(wh.activate(srv, owner, foreign["id"]), 404)
    assert wh.list_deployments(srv, owner)["current"] == two.d2["id"]
    assert wh.list_deployments(srv, other)["current"] == foreign["id"]
    wait_serves(srv, two.host, two.m2)


def test_delete_live_build_409(two):
    srv, owner = two.server, two.owner
    path = wh.build_path(owner.tenant, two.b2["id"])
    wh.assert_error(srv.request("DELETE", path, headers=owner.bearer()), 409)
    wait_serves(srv, two.host, two.m2)

    # After a rollback the other one is live and protected instead.
    wh.assert_json(wh.activate(srv, owner, two.d1["id"]), 200)
    path1 = wh.build_path(owner.tenant, two.b1["id"])
    wh.assert_error(srv.request("DELETE", path1, headers=owner.bearer()),
                    409)
    wait_serves(srv, two.host, two.m1)
    wh.assert_json(wh.activate(srv, owner, two.d2["id"]), 200)


def test_delete_inactive_build_removes_its_deployment(two):
    srv, owner = two.server, two.owner
    path = wh.build_path(owner.tenant, two.b1["id"])
    body = wh.assert_json(srv.request("DELETE", path,
                                      headers=owner.bearer()), 200)
    assert body.get("success") is True, body
    data = wh.list_deployments(srv, owner)
    assert [d["id"] for d in data["deployments"]] == [two.d2["id"]], data
    assert not wh.blob_path(srv.data_dir, "tenants/%s/deployments/%s/"
                            "manifest.json" % (owner.tenant,
                                               two.b1["id"])).exists()
    # Its immutable URL stops serving it (the edge may cache the name a
    # few seconds); the site goes on.
    host = wh.deployment_host(two.b1["id"], owner.tenant)
    wh.wait_until(lambda: edge_get(srv, host, "/").status_code == 404, 15,
                  "the deleted deployment's URL answers 404")
    resp = edge_get(srv, host, "/")
    assert two.m1.encode() not in resp.content, wh.show(resp)
    wait_serves(srv, two.host, two.m2)
    wh.assert_error(wh.activate(srv, owner, two.d1["id"]), 404)


# -- rules that do not parse -------------------------------------------------


@pytest.mark.parametrize("name, text, line, reason", [
    ("_redirects", "# rules\n/ok /fine 301\n/bad /target 999\n", 3, "999"),
    ("_redirects", "/a /b 301\n\n\n/c\n", 4, "TO"),
    ("_redirects", "/x/* /y/:nope 301\n", 1, "nope"),
    ("_headers", "  X-Orphan: yes\n/*\n  X-Ok: 1\n", 1, "path"),
    ("_headers", "/*\n  X-Ok: 1\n/assets/*\n  Content-Length: 5\n", 4,
     "Content-Length"),
])
def test_bad_rules_fail_the_build_at_publish(server, owner, name, text,
                                             line, reason):
    marker = wh.unique("bad-")
    data = wh.upload_ok(server, owner,
                        wh.make_zip(site_files(marker, {name: text})))
    build = wh.wait_build(server, owner, data["build"]["id"], wh.FINISHED)
    assert build["status"] == "failed", json.dumps(build, indent=1)
    assert build["errorStep"] == "publish", build
    msg = build["errorMessage"] or ""
    assert name in msg, msg
    assert re.search(r"\bline %d\b" % line, msg), msg
    assert reason.lower() in msg.lower(), msg
    # A bad file fails at once, without retries.
    assert build["attempts"] == 1, build
    _, log = wh.get_logs(server, owner, build["id"])
    assert name in log, log[-3000:]

    # Nothing went live.
    assert wh.list_deployments(server, owner)["current"] is None
    resp = edge_get(server, wh.site_host(owner.tenant), "/")
    assert resp.status_code == 404, wh.show(resp)
    assert marker.encode() not in resp.content
    assert not wh.blob_path(server.data_dir, "pointers/%s/current.json"
                            % owner.tenant).exists()
    resp = edge_get(server, wh.deployment_host(build["id"], owner.tenant),
                    "/")
    assert resp.status_code == 404, wh.show(resp)
    assert marker.encode() not in resp.content


def test_bad_rules_keep_the_previous_deployment_live(server, owner):
    good = wh.unique("good-")
    wh.deploy_files(server, owner, site_files(good))
    host = wh.site_host(owner.tenant)
    wait_serves(server, host, good)
    current = wh.list_deployments(server, owner)["current"]

    bad = wh.unique("bad-")
    data = wh.upload_ok(server, owner, wh.make_zip(site_files(
        bad, {"_redirects": "/a /b 999\n"})))
    build = wh.wait_build(server, owner, data["build"]["id"], wh.FINISHED)
    assert build["status"] == "failed", build
    assert wh.list_deployments(server, owner)["current"] == current
    resp = edge_get(server, host, "/")
    assert good.encode() in resp.content, wh.show(resp)
    assert pointer(server, owner.tenant)["deploymentId"] == current


# -- a separate `wharf edge` ---------------------------------------------------


def test_standalone_edge_follows_flips(server, spawn, two):
    """`wharf edge` on the same data dir serves the same sites and sees
    the pointer flips made through the API (DESIGN.md: within a second;
    polled here with a generous deadline)."""
    edge = spawn(server.data_dir, server.env, "edge")
    assert edge.edge_port and edge.edge_port != server.edge_port
    wait_serves(edge, two.host, two.m2, timeout=10)
    wh.assert_json(wh.activate(server, two.owner, two.d1["id"]), 200)
    wait_serves(edge, two.host, two.m1, timeout=10)
    wh.assert_json(wh.activate(server, two.owner, two.d2["id"]), 200)
    wait_serves(edge, two.host, two.m2, timeout=10)
    imm = wh.deployment_host(two.b1["id"], two.owner.tenant)
    resp = edge_get(edge, imm, "/about")
    assert resp.status_code == 200, wh.show(resp)
    assert two.m1.encode() in resp.content
