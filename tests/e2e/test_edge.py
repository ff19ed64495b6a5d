"""The edge: serving tenants' sites from their deployments' manifests.

Every behaviour of DESIGN.md's "Edge" section and of issue 5, seen from
outside: ETag and 304, HEAD, Range, Accept-Encoding with Vary,
Cache-Control, content types, nosniff, clean URLs, 404.html and the SPA
fallback, _redirects and _headers, skew protection, host routing
(tenants, immutable deployment URLs, custom domains) and isolation,
hostile paths, keep-alive.

One `wharf serve` for the module (its own edge, API and build workers);
the sites are plain HTML ZIPs, which build without npm in well under a
second.  Requests go to 127.0.0.1:<edge port> with the Host header that
picks the site.  Request targets that clients would normalise are sent
on a raw socket.
"""

import gzip
import http.client
import json
import os
import re

import pytest

import wharf_harness as wh

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"

# Deadlines for state changes seen through the edge (custom domains are
# cached by the edge for a few seconds; docs/api.md promises five).
DOMAIN_TIMEOUT = 15
FLIP_TIMEOUT = 2

MIME_TYPES = "/etc/mime.types"


# -- sites -----------------------------------------------------------------


def lorem(marker, n=30):
    """Compressible HTML text of a few KiB that names marker."""
    return "".join("<p>%s paragraph %d: the quick brown fox jumps over "
                   "the lazy dog.</p>\n" % (marker, i) for i in range(n))


class Site:
    """A deployed site: its member (tenant, token), build, and files
    {URL path: bytes} as uploaded."""

    def __init__(self, server, member, build, files):
        self.server = server
        self.member = member
        self.tenant = member.tenant
        self.build = build
        self.build_id = build["id"]
        self.files = {"/" + k: (v.encode() if isinstance(v, str) else v)
                      for k, v in files.items()}
        self.host = wh.site_host(self.tenant)
        self.immutable_host = wh.deployment_host(self.build_id, self.tenant)

    def get(self, path="/", **kw):
        return wh.edge_request(self.server, self.host, path, **kw)

    def raw(self, target, **kw):
        return wh.edge_raw_get(self.server, self.host, target, **kw)

    def manifest(self):
        return wh.read_blob_json(
            self.server.data_dir,
            "tenants/%s/deployments/%s/manifest.json"
            % (self.tenant, self.build_id))


def deploy(server, files, member=None):
    member = member or wh.make_member(server.cli, "owner")
    build = wh.deploy_files(server, member, files)
    return Site(server, member, build, files)


PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(600))
# Larger than the edge's in-memory body cache takes (64 KiB): sent
# from the file.
BIG = os.urandom(700 * 1024 + 123)

REDIRECTS = """\
# comment line, then the rules
/old-301            /about               301
/old-302            /about               302
/blog/*             /news/:splat         301
/u/:name/posts/:id  /people/:name/:id    302
/rewrite            /docs/index.html     200
/exists.html        /about               301
/forced.html        /about               302!
/q                  /target              301
/store  id=:id      /shop/item/:id       301
/ext                https://example.com/landing  302
/gone               /404.html            404
/about              /nowhere             301
/go/*               /:splat              302
"""

HEADERS = """\
/*
  X-Site-Header: everywhere
/assets/*
  X-Asset-Header: assets-only
"""


def main_files(marker):
    return {
        "index.html": "<!doctype html><html><head><title>index %s</title>"
                      "</head><body>%s</body></html>\n"
                      % (marker, lorem(marker)),
        "about.html": "<p>about page %s</p>\n" % marker,
        "docs/index.html": "<p>docs index %s</p>\n" % marker,
        "404.html": "<p>custom not found page %s</p>\n" % marker,
        "style.css": "".join("body .c%d { color: #%06x; margin: 0; }\n"
                             % (i, i * 997) for i in range(40)),
        "assets/app-3f9a2c1b.js": "".join(
            "console.log('app %s line %d');\n" % (marker, i)
            for i in range(40)),
        "_next/static/chunks/x.js": "".join(
            "window.chunk%d = '%s';\n" % (i, marker) for i in range(40)),
        "data.json": json.dumps({"marker": marker,
                                 "items": list(range(100))}),
        "robots.txt": "User-agent: *\nDisallow:\n",
        "img/logo.png": PNG,
        "media/big.bin": BIG,
        "with space.txt": "a file name with a space %s\n" % marker,
        "caf\u00e9.txt": "a file name in UTF-8 %s\n" % marker,
        "page.html": "<p>page of tenant A %s</p>\n" % marker,
        "exists.html": "<p>exists.html wins %s</p>\n" % marker,
        "forced.html": "<p>forced.html loses %s</p>\n" % marker,
        "_redirects": REDIRECTS,
        "_headers": HEADERS,
    }


@pytest.fixture(scope="module")
def site(server):
    """Tenant A: every feature, a 404.html."""
    return deploy(server, main_files(wh.unique("A-")))


@pytest.fixture(scope="module")
def spa(server):
    """Tenant B: an SPA (no 404.html); shares the path /page.html with
    tenant A, with other content."""
    marker = wh.unique("B-")
    return deploy(server, {
        "index.html": "<!doctype html><title>spa %s</title>"
                      "<div id=root></div>\n" % marker,
        "page.html": "<p>page of tenant B %s</p>\n" % marker,
        "secret-b.html": "<p>tenant B secret %s</p>\n" % marker,
    })


def lower_headers(resp):
    return {k.lower(): v for k, v in resp.headers.items()}


def vary_has_accept_encoding(value):
    return value is not None and "accept-encoding" in [
        v.strip().lower() for v in value.split(",")]


# -- fetch, ETag, 304, HEAD ------------------------------------------------


@pytest.mark.parametrize("path", ["/index.html", "/style.css",
                                  "/img/logo.png", "/data.json"])
def test_etag_is_content_hash_in_quotes(site, path):
    resp = site.get(path, headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files[path], wh.show(resp)
    assert resp.headers.get("ETag") == '"%s"' % wh.sha256_hex(
        site.files[path]), wh.show(resp)
    assert "Content-Encoding" not in resp.headers, wh.show(resp)


def test_if_none_match_gives_304_without_body(site):
    etag = '"%s"' % wh.sha256_hex(site.files["/style.css"])
    ans = site.raw("/style.css", headers={"Accept-Encoding": "identity",
                                           "If-None-Match": etag})
    assert ans.status == 304, ans
    assert ans.body == b"", ans
    assert ans.header("ETag") == etag, ans
    assert ans.header("Cache-Control") == REVALIDATE, ans

    # A list with the tag, and the weak form, match too.
    for inm in ('"nope", ' + etag, "W/" + etag, "*"):
        resp = site.get("/style.css", headers={
            "Accept-Encoding": "identity", "If-None-Match": inm})
        assert resp.status_code == 304, (inm, wh.show(resp))
        assert resp.content == b"", wh.show(resp)

    # Another tag does not.
    resp = site.get("/style.css", headers={
        "Accept-Encoding": "identity",
        "If-None-Match": '"%s"' % ("0" * 64)})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files["/style.css"]


@pytest.mark.parametrize("path", ["/", "/style.css", "/img/logo.png"])
def test_head_same_headers_no_body(site, path):
    hdrs = {"Accept-Encoding": "identity"}
    get = site.raw(path, headers=hdrs)
    head = site.raw(path, method="HEAD", headers=hdrs)
    assert get.status == 200, get
    assert head.status == 200, head
    assert head.body == b"", head
    drop = {"date"}
    assert {k: v for k, v in head.headers.items() if k not in drop} == \
        {k: v for k, v in get.headers.items() if k not in drop}, \
        (head, get)
    want = site.files["/index.html" if path == "/" else path]
    assert get.body == want, get
    assert get.header("Content-Length") == str(len(want)), get


@pytest.mark.parametrize("path, status", [("/no/such/page", 404),
                                          ("/old-302", 302),
                                          ("/rewrite", 200)])
def test_head_without_file_body(site, path, status):
    get = site.raw(path, headers={"Accept-Encoding": "identity"})
    head = site.raw(path, method="HEAD",
                    headers={"Accept-Encoding": "identity"})
    assert get.status == status and head.status == status, (get, head)
    assert head.body == b"", head
    assert head.header("Content-Length") == get.header("Content-Length"), \
        (head, get)
    assert head.header("Location") == get.header("Location")


# -- Range -----------------------------------------------------------------


@pytest.mark.parametrize("spec, piece", [
    ("bytes=0-9", lambda b: (0, b[0:10])),
    ("bytes=-5", lambda b: (len(b) - 5, b[-5:])),
    ("bytes=5-", lambda b: (5, b[5:])),
])
def test_range_206(site, spec, piece):
    body = site.files["/style.css"]
    start, want = piece(body)
    resp = site.get("/style.css", headers={"Range": spec,
                                           "Accept-Encoding": "identity"})
    assert resp.status_code == 206, wh.show(resp)
    assert resp.content == want, wh.show(resp)
    assert resp.headers.get("Content-Range") == "bytes %d-%d/%d" % (
        start, start + len(want) - 1, len(body)), wh.show(resp)
    assert resp.headers.get("Content-Length") == str(len(want)), \
        wh.show(resp)


def test_range_unsatisfiable_416(site):
    size = len(site.files["/style.css"])
    for spec in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 10, size + 20)):
        resp = site.get("/style.css", headers={
            "Range": spec, "Accept-Encoding": "identity"})
        assert resp.status_code == 416, (spec, wh.show(resp))
        assert resp.headers.get("Content-Range") == "bytes */%d" % size, \
            wh.show(resp)
        assert site.files["/style.css"] not in resp.content


def test_large_file_whole_range_and_head(site):
    path = "/media/big.bin"
    resp = site.get(path)
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == BIG
    assert resp.headers.get("ETag") == '"%s"' % wh.sha256_hex(BIG)
    assert resp.headers.get("Content-Type") == "application/octet-stream"
    for spec, start, want in (
            ("bytes=300000-300099", 300000, BIG[300000:300100]),
            ("bytes=-100", len(BIG) - 100, BIG[-100:]),
            ("bytes=700000-", 700000, BIG[700000:]),
            ("bytes=0-0", 0, BIG[:1])):
        resp = site.get(path, headers={"Range": spec})
        assert resp.status_code == 206, (spec, wh.show(resp))
        assert resp.content == want, spec
        assert resp.headers.get("Content-Range") == "bytes %d-%d/%d" % (
            start, start + len(want) - 1, len(BIG)), wh.show(resp)
    head = site.raw(path, method="HEAD")
    assert head.status == 200 and head.body == b"", head
    assert head.header("Content-Length") == str(len(BIG)), head
    resp = site.get(path, headers={"Range": "bytes=%d-" % len(BIG)})
    assert resp.status_code == 416, wh.show(resp)
    assert resp.headers.get("Content-Range") == "bytes */%d" % len(BIG)


# -- Accept-Encoding -------------------------------------------------------


def test_accept_encoding_br(site):
    path = "/assets/app-3f9a2c1b.js"
    entry = site.manifest()["files"][path]
    assert entry.get("br"), entry       # a compressible text file
    resp = site.get(path, headers={"Accept-Encoding": "br"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("Content-Encoding") == "br", wh.show(resp)
    assert vary_has_accept_encoding(resp.headers.get("Vary")), \
        wh.show(resp)
    # requests cannot decode brotli here: the body must be the stored
    # variant of this very file, smaller than the file.
    variant = wh.blob_path(site.server.data_dir, "tenants/%s/objects/%s.br"
                           % (site.tenant, entry["hash"])).read_bytes()
    assert resp.content == variant
    assert len(resp.content) == entry["br"] < len(site.files[path])


def test_accept_encoding_gzip_decodes_to_original(site):
    for path in ("/index.html", "/style.css"):
        resp = site.get(path, headers={"Accept-Encoding": "gzip"},
                        stream=True)
        try:
            raw = resp.raw.read(decode_content=False)
        finally:
            resp.close()
        assert resp.status_code == 200, wh.show(resp)
        assert resp.headers.get("Content-Encoding") == "gzip", \
            wh.show(resp)
        assert vary_has_accept_encoding(resp.headers.get("Vary")), \
            wh.show(resp)
        assert resp.headers.get("Content-Length") == str(len(raw))
        assert len(raw) < len(site.files[path])
        assert gzip.decompress(raw) == site.files[path], path


@pytest.mark.parametrize("accept", ["identity", None, "gzip;q=0, br;q=0"])
def test_accept_encoding_identity(site, accept):
    resp = site.get("/style.css", headers={"Accept-Encoding": accept},
                    stream=True)
    try:
        raw = resp.raw.read(decode_content=False)
    finally:
        resp.close()
    assert resp.status_code == 200, wh.show(resp)
    assert "Content-Encoding" not in resp.headers, wh.show(resp)
    assert raw == site.files["/style.css"]
    # The file has variants: a cache must still key on Accept-Encoding.
    assert vary_has_accept_encoding(resp.headers.get("Vary")), \
        wh.show(resp)


@pytest.mark.parametrize("accept, coding", [
    ("gzip, deflate, br", "br"),
    ("br;q=0.5, gzip;q=1.0", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("*", "br"),
    ("br;q=0, *", "gzip"),
    ("x-gzip", "gzip"),
    ("GZIP", "gzip"),
    ("deflate", None),
    ("identity;q=1, gzip;q=0.5", None),
])
def test_accept_encoding_negotiation(site, accept, coding):
    path = "/assets/app-3f9a2c1b.js"
    resp = site.get(path, headers={"Accept-Encoding": accept}, stream=True)
    try:
        raw = resp.raw.read(decode_content=False)
    finally:
        resp.close()
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("Content-Encoding") == coding, wh.show(resp)
    if coding is None:
        assert raw == site.files[path]
    elif coding == "gzip":
        assert gzip.decompress(raw) == site.files[path]
    assert vary_has_accept_encoding(resp.headers.get("Vary"))


def test_304_for_a_compressed_variant(site):
    path = "/assets/app-3f9a2c1b.js"
    first = site.get(path, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200, wh.show(first)
    etag = first.headers.get("ETag")
    assert etag, wh.show(first)
    again = site.get(path, headers={"Accept-Encoding": "gzip",
                                    "If-None-Match": etag})
    assert again.status_code == 304, wh.show(again)
    assert again.content == b""
    assert again.headers.get("ETag") == etag


# -- Cache-Control, content types, nosniff ---------------------------------


@pytest.mark.parametrize("path", ["/", "/index.html", "/about",
                                  "/docs/"])
def test_cache_control_html_revalidates(site, path):
    resp = site.get(path)
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("Cache-Control") == REVALIDATE, wh.show(resp)


@pytest.mark.parametrize("path", ["/assets/app-3f9a2c1b.js",
                                  "/_next/static/chunks/x.js"])
def test_cache_control_fingerprinted_immutable(site, path):
    resp = site.get(path)
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files[path]
    assert resp.headers.get("Cache-Control") == IMMUTABLE, wh.show(resp)


def test_cache_control_plain_asset_not_immutable(site):
    for path in ("/style.css", "/img/logo.png", "/data.json"):
        resp = site.get(path)
        assert resp.status_code == 200, wh.show(resp)
        cc = resp.headers.get("Cache-Control", "")
        assert "immutable" not in cc, wh.show(resp)


@pytest.mark.parametrize("path", ["/assets/missing-3f9a2c1b.js",
                                  "/_next/static/chunks/missing.js",
                                  "/no/such/page"])
def test_404_never_immutable(site, path):
    resp = site.get(path)
    assert resp.status_code == 404, wh.show(resp)
    cc = resp.headers.get("Cache-Control", "")
    assert "immutable" not in cc and "31536000" not in cc, wh.show(resp)


def system_type(ext):
    """The type /etc/mime.types gives ext (the first line naming it),
    None when it does not."""
    try:
        with open(MIME_TYPES, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and ext in [e.lower()
                                               for e in fields[1:]]:
                    return fields[0].lower()
    except OSError:
        pass
    return None


def with_charset(ctype):
    """The charset rule of src/deploy/mime.h: text types are UTF-8."""
    text = (ctype.startswith("text/") or ctype in (
        "application/javascript", "application/json", "application/xml")
        or ctype.endswith("+json") or ctype.endswith("+xml"))
    return ctype + "; charset=utf-8" if text else ctype


@pytest.mark.parametrize("path, ext, fallback", [
    ("/index.html", "html", "text/html"),
    ("/style.css", "css", "text/css"),
    ("/assets/app-3f9a2c1b.js", "js", "text/javascript"),
    ("/data.json", "json", "application/json"),
    ("/robots.txt", "txt", "text/plain"),
    ("/img/logo.png", "png", "image/png"),
])
def test_content_type_from_system_table(site, path, ext, fallback):
    want = with_charset(system_type(ext) or fallback)
    resp = site.get(path)
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("Content-Type") == want, wh.show(resp)


def test_content_types_sanity(site):
    """Whatever the system table says, the common types are right."""
    expect = {"/style.css": "text/css; charset=utf-8",
              "/index.html": "text/html; charset=utf-8",
              "/img/logo.png": "image/png"}
    for path, want in expect.items():
        resp = site.get(path)
        assert resp.headers.get("Content-Type") == want, wh.show(resp)


@pytest.mark.parametrize("path", ["/", "/style.css", "/img/logo.png",
                                  "/no/such/page", "/rewrite"])
def test_nosniff(site, path):
    resp = site.get(path)
    assert resp.status_code in (200, 404), wh.show(resp)
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", \
        wh.show(resp)


def test_nosniff_on_unknown_host(server):
    resp = wh.edge_request(server, "nobody-%s.localhost" % os.urandom(
        4).hex())
    assert resp.status_code == 404, wh.show(resp)
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", \
        wh.show(resp)


# -- clean URLs, 404.html, SPA fallback ------------------------------------


@pytest.mark.parametrize("path, file", [
    ("/about", "/about.html"),
    ("/docs", "/docs/index.html"),
    ("/docs/", "/docs/index.html"),
    ("/", "/index.html"),
    ("/about.html", "/about.html"),
])
def test_clean_urls(site, path, file):
    resp = site.get(path, headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files[file], wh.show(resp)


@pytest.mark.parametrize("path, file", [
    ("/with%20space.txt", "/with space.txt"),
    ("/caf%C3%A9.txt", "/caf\u00e9.txt"),
    ("/caf%c3%a9.txt", "/caf\u00e9.txt"),
    ("/%61bout", "/about.html"),
    ("/style.css?v=123", "/style.css"),
    ("/about?utm_source=x&y", "/about.html"),
    ("/docs//", "/docs/index.html"),
    ("/docs/./../about", "/about.html"),
])
def test_encoded_names_and_queries(site, path, file):
    ans = site.raw(path, headers={"Accept-Encoding": "identity"})
    assert ans.status == 200, (path, ans)
    assert ans.body == site.files[file], (path, ans)


def test_missing_path_serves_404_html(site):
    resp = site.get("/no/such/page", headers={"Accept-Encoding":
                                              "identity"})
    assert resp.status_code == 404, wh.show(resp)
    assert resp.content == site.files["/404.html"], wh.show(resp)
    assert resp.headers.get("Content-Type", "").startswith("text/html"), \
        wh.show(resp)


def test_spa_fallback_without_404_html(spa):
    for path in ("/dashboard/settings", "/users/42"):
        resp = spa.get(path, headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 200, wh.show(resp)
        assert resp.content == spa.files["/index.html"], wh.show(resp)
        assert resp.headers.get("Cache-Control") == REVALIDATE, \
            wh.show(resp)
    # index.html in place of a missing hashed asset: not for a year.
    resp = spa.get("/assets/gone-3f9a2c1b.js")
    assert resp.status_code in (200, 404), wh.show(resp)
    assert "immutable" not in resp.headers.get("Cache-Control", ""), \
        wh.show(resp)


def test_rules_files_are_not_served(site):
    for path in ("/_redirects", "/_headers"):
        resp = site.get(path, headers={"Accept-Encoding": "identity"})
        assert resp.content != site.files[path], wh.show(resp)
        assert b"/old-301" not in resp.content
        assert b"X-Site-Header" not in resp.content


# -- _redirects --------------------------------------------------------------


@pytest.mark.parametrize("path, status, location", [
    ("/old-301", 301, "/about"),
    ("/old-302", 302, "/about"),
    ("/old-301/", 301, "/about"),
    ("/u/a%20b/posts/9", 302, "/people/a%20b/9"),
    ("/blog/2024/hello-world", 301, "/news/2024/hello-world"),
    ("/u/alice/posts/7", 302, "/people/alice/7"),
    ("/forced.html", 302, "/about"),
    ("/ext", 302, "https://example.com/landing"),
])
def test_redirects(site, path, status, location):
    resp = site.get(path)
    assert resp.status_code == status, wh.show(resp)
    assert resp.headers.get("Location") == location, wh.show(resp)


def test_redirect_passes_query(site):
    resp = site.get("/q?x=1&y=two")
    assert resp.status_code == 301, wh.show(resp)
    assert resp.headers.get("Location") == "/target?x=1&y=two", \
        wh.show(resp)
    resp = site.get("/blog/a?page=2")
    assert resp.status_code == 301, wh.show(resp)
    assert resp.headers.get("Location") == "/news/a?page=2", wh.show(resp)


def test_redirect_query_condition(site):
    resp = site.get("/store?id=77")
    assert resp.status_code == 301, wh.show(resp)
    assert resp.headers.get("Location") == "/shop/item/77", wh.show(resp)
    # Without the query the rule does not apply: 404.html.
    resp = site.get("/store")
    assert resp.status_code == 404, wh.show(resp)


def test_rewrite_200_serves_other_file(site):
    resp = site.get("/rewrite", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert "Location" not in resp.headers, wh.show(resp)
    assert resp.content == site.files["/docs/index.html"], wh.show(resp)


def test_rule_404_serves_file_with_404(site):
    resp = site.get("/gone", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 404, wh.show(resp)
    assert resp.content == site.files["/404.html"], wh.show(resp)


def test_existing_file_shadows_unforced_rule(site):
    resp = site.get("/exists.html", headers={"Accept-Encoding":
                                             "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert "Location" not in resp.headers, wh.show(resp)
    assert resp.content == site.files["/exists.html"], wh.show(resp)


def test_clean_url_file_shadows_unforced_rule(site):
    """/about is about.html: the file wins over "/about /nowhere 301"."""
    resp = site.get("/about", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files["/about.html"], wh.show(resp)


@pytest.mark.parametrize("target", [
    "/go//evil.example/x",
    "/go/%2F%2Fevil.example/x",
    "/go/%2fevil.example",
    "/go/%5C%5Cevil.example",
    "/go/\\evil.example",
    "/go/%0d%0aSet-Cookie:%20a=b",
    "/go/%0aLocation:%20http://evil.example/",
    "/blog/%0d%0aX-Injected:%201",
])
def test_redirect_targets_cannot_escape_or_inject(site, target):
    ans = site.raw(target)
    assert "set-cookie" not in ans.headers, ans
    assert "x-injected" not in ans.headers, ans
    locs = ans.headers.get("location", [])
    assert len(locs) <= 1, ans
    for loc in locs:
        assert "\r" not in loc and "\n" not in loc, ans
        assert not loc.startswith("//"), ans
        assert not loc.startswith("/\\"), ans
        assert "\\" not in loc, ans
        assert not re.match(r"(?i)^[a-z][a-z0-9+.-]*:", loc), ans


def test_forced_rule_overrides_existing_file(site):
    resp = site.get("/forced.html")
    assert resp.status_code == 302, wh.show(resp)
    assert resp.headers.get("Location") == "/about", wh.show(resp)
    assert site.files["/forced.html"] not in resp.content


# -- _headers ----------------------------------------------------------------


def test_headers_blocks_applied(site):
    resp = site.get("/assets/app-3f9a2c1b.js")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("X-Site-Header") == "everywhere", wh.show(resp)
    assert resp.headers.get("X-Asset-Header") == "assets-only", \
        wh.show(resp)

    resp = site.get("/about")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("X-Site-Header") == "everywhere", wh.show(resp)
    assert "X-Asset-Header" not in resp.headers, wh.show(resp)


def test_headers_cache_control_never_makes_a_404_immutable(server):
    """The usual _headers block for hashed assets: it applies to the
    files, but a 404 under that path must still not be cached for a
    year (issue 5: "A 404 is never marked immutable")."""
    marker = wh.unique("hc-")
    s = deploy(server, {
        "index.html": "<p>%s</p>\n" % marker,
        "404.html": "<p>not found %s</p>\n" % marker,
        "assets/app-5d4c3b2a.js": "console.log('%s');\n" % marker,
        "_headers": "/assets/*\n  Cache-Control: public, max-age=31536000,"
                    " immutable\n",
    })
    resp = s.get("/assets/app-5d4c3b2a.js")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.headers.get("Cache-Control") == IMMUTABLE, wh.show(resp)
    for path in ("/assets/missing-3f9a2c1b.js", "/assets/nothing.js"):
        resp = s.get(path)
        assert resp.status_code == 404, wh.show(resp)
        cc = resp.headers.get("Cache-Control", "")
        assert "immutable" not in cc and "31536000" not in cc, \
            wh.show(resp)


# -- skew protection ---------------------------------------------------------


def test_skew_protection_serves_previous_fingerprinted_asset(server):
    member = wh.make_member(server.cli, "owner")
    m1, m2 = wh.unique("v1-"), wh.unique("v2-")
    old_asset = "".join("console.log('v1 %s %d');\n" % (m1, i)
                        for i in range(20))
    v1 = deploy(server, {
        "index.html": "<p>version one %s</p>\n" % m1,
        "assets/app-3f9a2c1b.js": old_asset,
        "old-page.html": "<p>old page %s</p>\n" % m1,
    }, member)
    v2 = deploy(server, {
        "index.html": "<p>version two %s</p>\n" % m2,
        "404.html": "<p>v2 not found %s</p>\n" % m2,
        "assets/app-9e8d7c6b.js": "console.log('v2 %s');\n" % m2,
    }, member)
    assert v1.build_id != v2.build_id
    wh.wait_until(lambda: m2.encode() in v2.get("/").content, FLIP_TIMEOUT,
                  "the site serves v2")

    resp = v2.get("/assets/app-3f9a2c1b.js",
                  headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == old_asset.encode(), wh.show(resp)

    # Not fingerprinted: the 404 of the current deployment.
    resp = v2.get("/old-page.html", headers={"Accept-Encoding":
                                             "identity"})
    assert resp.status_code == 404, wh.show(resp)
    assert resp.content == v2.files["/404.html"], wh.show(resp)
    assert m1.encode() not in resp.content

    # Fingerprinted but in no deployment: 404 too.
    resp = v2.get("/assets/app-0badf00d.js")
    assert resp.status_code == 404, wh.show(resp)
    assert "immutable" not in resp.headers.get("Cache-Control", "")


# -- host routing and isolation -------------------------------------------


def test_tenant_hosts_serve_their_own_files(site, spa):
    a = site.get("/page.html", headers={"Accept-Encoding": "identity"})
    b = spa.get("/page.html", headers={"Accept-Encoding": "identity"})
    assert a.status_code == 200 and b.status_code == 200, (wh.show(a),
                                                          wh.show(b))
    assert a.content == site.files["/page.html"]
    assert b.content == spa.files["/page.html"]
    assert a.content != b.content

    # Files only tenant A has: tenant B's host shows B's SPA page.
    for path in ("/about", "/style.css", "/assets/app-3f9a2c1b.js",
                 "/docs/", "/404.html", "/img/logo.png"):
        resp = spa.get(path, headers={"Accept-Encoding": "identity"})
        assert resp.content == spa.files["/index.html"], (path,
                                                          wh.show(resp))
    # And the reverse: A's host never shows B's secret.
    resp = site.get("/secret-b.html", headers={"Accept-Encoding":
                                               "identity"})
    assert resp.status_code == 404, wh.show(resp)
    assert resp.content == site.files["/404.html"]


def test_host_with_port_and_letter_case(site):
    for host in ("%s:%d" % (site.host, site.server.edge_port),
                 site.host.upper(), site.host + "."):
        resp = wh.edge_request(site.server, host, "/about",
                               headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 200, (host, wh.show(resp))
        assert resp.content == site.files["/about.html"]


@pytest.mark.parametrize("host", [
    "nosuchtenant-0000.localhost",
    "example.org",
    "localhost",
    "www.example.test.invalid",
    "127.0.0.1",
    "a.b.localhost",
])
def test_unknown_hosts_get_404_page(site, spa, host):
    for path in ("/", "/page.html", "/about"):
        resp = wh.edge_request(site.server, host, path,
                               headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 404, (host, wh.show(resp))
        for s in (site, spa):
            for content in s.files.values():
                assert content not in resp.content, (host, wh.show(resp))


def test_missing_host_header_is_not_a_site(site):
    ans = wh.edge_raw(site.server, b"GET /page.html HTTP/1.0\r\n\r\n")
    assert ans.status in (400, 404), ans
    assert site.files["/page.html"] not in ans.body


def test_immutable_host(site, spa):
    resp = wh.edge_request(site.server, site.immutable_host, "/page.html",
                           headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files["/page.html"]

    # Tenant A's build under tenant B's name, and the reverse: no site.
    for host in (wh.deployment_host(site.build_id, spa.tenant),
                 wh.deployment_host(spa.build_id, site.tenant)):
        resp = wh.edge_request(site.server, host, "/page.html",
                               headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 404, (host, wh.show(resp))
        assert site.files["/page.html"] not in resp.content
        assert spa.files["/page.html"] not in resp.content
        assert spa.files["/index.html"] not in resp.content

    # An unknown build id of a real tenant.
    host = wh.deployment_host("00000000-0000-4000-8000-000000000000",
                              site.tenant)
    resp = wh.edge_request(site.server, host, "/page.html")
    assert resp.status_code == 404, wh.show(resp)
    assert site.files["/page.html"] not in resp.content


# -- custom domains ----------------------------------------------------------


def domains_path(tenant, hostname=None):
    p = "/api/tenants/%s/domains" % tenant
    return p + "/" + hostname if hostname else p


def add_domain(server, member, hostname, tenant=None):
    return server.post(domains_path(tenant or member.tenant),
                       headers=member.bearer(),
                       json={"hostname": hostname})


def poll_edge(server, host, path, pred, what, timeout=DOMAIN_TIMEOUT):
    """Requests host's path until pred(response); that response."""
    def check():
        r = wh.edge_request(server, host, path,
                            headers={"Accept-Encoding": "identity"})
        return [r] if pred(r) else None
    return wh.wait_until(check, timeout, what)[0]


def test_custom_domain_lifecycle(server, site, spa):
    hostname = "www.example.test"

    # Not a site before it is added.
    resp = wh.edge_request(server, hostname, "/page.html")
    assert resp.status_code == 404, wh.show(resp)

    body = wh.assert_json(add_domain(server, site.member, hostname), 201)
    assert body.get("success") is True, body

    resp = poll_edge(server, hostname, "/page.html",
                     lambda r: r.status_code == 200,
                     "the edge serves %s" % hostname)
    assert resp.content == site.files["/page.html"], wh.show(resp)
    resp = wh.edge_request(server, "%s:%d" % (hostname, server.edge_port),
                           "/about",
                           headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200, wh.show(resp)
    assert resp.content == site.files["/about.html"]

    resp = server.get(domains_path(site.tenant),
                      headers=site.member.bearer())
    listed = wh.assert_json(resp, 200)["data"]["domains"]
    assert hostname in json.dumps(listed), listed

    # Taken: by another tenant, by this one again, in another case.
    wh.assert_error(add_domain(server, spa.member, hostname), 409)
    wh.assert_error(add_domain(server, spa.member, "WWW.Example.Test"), 409)
    wh.assert_error(add_domain(server, site.member, hostname), 409)
    resp = wh.edge_request(server, hostname, "/page.html",
                           headers={"Accept-Encoding": "identity"})
    assert resp.content == site.files["/page.html"], wh.show(resp)

    # Removed: the edge stops serving it.
    resp = server.request("DELETE", domains_path(site.tenant, hostname),
                          headers=site.member.bearer())
    wh.assert_json(resp, 200)
    resp = poll_edge(server, hostname, "/page.html",
                     lambda r: r.status_code == 404,
                     "the edge stops serving %s" % hostname)
    assert site.files["/page.html"] not in resp.content
    resp = server.request("DELETE", domains_path(site.tenant, hostname),
                          headers=site.member.bearer())
    wh.assert_error(resp, 404)

    # Free again: another tenant may take it, and then its site shows.
    wh.assert_json(add_domain(server, spa.member, hostname), 201)
    poll_edge(server, hostname, "/page.html",
              lambda r: r.content == spa.files["/page.html"],
              "the edge serves %s for tenant B" % hostname)
    resp = server.request("DELETE", domains_path(spa.tenant, hostname),
                          headers=spa.member.bearer())
    wh.assert_json(resp, 200)


@pytest.mark.parametrize("hostname", [
    "", "localhost", "1.2.3.4", "-bad.example.com", "bad-.example.com",
    "a..example.com", "exa mple.com", "under_score.example.com",
    "x" * 64 + ".example.com", "trailing.dot.", ".leading.dot",
    "http://www.example.com", "www.example.com/path", "www.example.com:80",
    ("a" * 60 + ".") * 5 + "com",
])
def test_invalid_hostnames_400(server, site, hostname):
    resp = add_domain(server, site.member, hostname)
    wh.assert_error(resp, 400)


@pytest.mark.parametrize("body", [{}, {"hostname": 123},
                                  {"hostname": None}, ["www.example.com"]])
def test_invalid_domain_bodies_400(server, site, body):
    resp = server.post(domains_path(site.tenant),
                       headers=site.member.bearer(), json=body)
    wh.assert_error(resp, 400)


def test_domains_need_owner_or_admin(server, site):
    member = wh.make_member(server.cli, "member", tenant=site.tenant)
    resp = add_domain(server, member, "member.example.test")
    wh.assert_error(resp, 403)
    wh.assert_error(server.get(domains_path(site.tenant),
                               headers=member.bearer()), 403)
    admin = wh.make_member(server.cli, "admin", tenant=site.tenant)
    wh.assert_json(add_domain(server, admin, "admin.example.test"), 201)
    resp = server.request("DELETE", domains_path(site.tenant,
                                                 "admin.example.test"),
                          headers=member.bearer())
    wh.assert_error(resp, 403)
    resp = server.request("DELETE", domains_path(site.tenant,
                                                 "admin.example.test"),
                          headers=admin.bearer())
    wh.assert_json(resp, 200)


# -- hostile URLs ------------------------------------------------------------


HOSTILE = [
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/%2e%2e%2fetc%2fpasswd",
    "/..%2f..%2fetc/passwd",
    "/..%2F..%2Fetc%2Fpasswd",
    "/%252e%252e/x",
    "/%252e%252e%252fetc%252fpasswd",
    "/a%00b",
    "/index.html%00.png",
    "/a\\b",
    "/..\\..\\etc\\passwd",
    "/%5c..%5c..%5cetc%5cpasswd",
    "/docs/../../../etc/passwd",
    "/./../etc/passwd",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/%",
    "/%zz",
    "/....//....//etc/passwd",
    "/../../../../proc/self/environ",
]


def assert_contained(site, others, ans, target):
    """Nothing from outside the site: no system file, no other tenant's
    file, no server secret; only a 404 (or 400)."""
    assert ans.status in (400, 404), (target, ans)
    assert b"root:" not in ans.body, (target, ans)
    assert wh.TEST_SECRET.encode() not in ans.body, (target, ans)
    assert b"WHARF_" not in ans.body and b"JWT_SECRET" not in ans.body, \
        (target, ans)
    for other in others:
        for content in other.files.values():
            assert content not in ans.body, (target, ans)
    if ans.status == 404 and ans.body:
        # The site's own 404 page or the edge's plain one.
        assert ans.body == site.files["/404.html"] or \
            b"404" in ans.body, (target, ans)


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_paths_stay_inside(site, spa, target):
    for host in (site.host, site.immutable_host):
        ans = wh.edge_raw_get(site.server, host, target,
                              headers={"Accept-Encoding": "identity"})
        assert_contained(site, [spa], ans, target)


def test_hostile_paths_to_other_tenant(site, spa):
    """Guesses at where tenant B's files or objects live."""
    targets = []
    for hsh in (wh.sha256_hex(spa.files["/secret-b.html"]),
                wh.sha256_hex(spa.files["/page.html"])):
        for t in ("/../%s/secret-b.html", "/..%%2f%s%%2fsecret-b.html",
                  "/%%2e%%2e/%s/secret-b.html"):
            targets.append(t % spa.tenant)
        targets += ["/../../tenants/%s/objects/%s" % (spa.tenant, hsh),
                    "/%%2e%%2e/%%2e%%2e/tenants/%s/objects/%s"
                    % (spa.tenant, hsh),
                    "/tenants/%s/objects/%s" % (spa.tenant, hsh),
                    "/objects/%s" % hsh]
    for target in targets:
        ans = wh.edge_raw_get(site.server, site.host, target,
                              headers={"Accept-Encoding": "identity"})
        assert_contained(site, [spa], ans, target)


def test_raw_nul_byte_in_target(site, spa):
    ans = wh.edge_raw_get(site.server, site.host, b"/a\x00/../etc/passwd")
    # Refused one way or another; never a file from outside.
    assert ans.status in (None, 400, 404), ans
    assert b"root:" not in ans.body
    for content in spa.files.values():
        assert content not in ans.body


def test_overlong_path(site, spa):
    for target in ("/" + "a" * 4999, "/" + "a/" * 2500,
                   "/" + "%2e%2e/" * 700 + "etc/passwd"):
        ans = wh.edge_raw_get(site.server, site.host, target)
        assert ans.status in (400, 404, 414, 431), (len(target), ans)
        assert b"root:" not in ans.body
        for content in spa.files.values():
            assert content not in ans.body
    # The edge still answers afterwards.
    resp = site.get("/about")
    assert resp.status_code == 200, wh.show(resp)


def test_other_methods_refused(site):
    for method in ("POST", "PUT", "DELETE"):
        ans = wh.edge_raw_get(site.server, site.host, "/about",
                              method=method)
        assert ans.status in (405, 501), (method, ans)
        assert site.files["/about.html"] not in ans.body


# -- connections ---------------------------------------------------------------


def test_keep_alive_two_requests_on_one_connection(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.server.edge_port,
                                      timeout=30)
    try:
        names = []
        for path, file in (("/about", "/about.html"),
                           ("/media/big.bin", "/media/big.bin"),
                           ("/style.css", "/style.css")):
            conn.request("GET", path, headers={"Host": site.host,
                                               "Accept-Encoding":
                                               "identity"})
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (path, resp.status,
                                        resp.getheaders())
            assert body == site.files[file]
            assert (resp.getheader("Connection") or "").lower() != \
                "close", resp.getheaders()
            assert not resp.will_close, resp.getheaders()
            assert conn.sock is not None, "the edge closed the connection"
            names.append(conn.sock.getsockname())
        assert len(set(names)) == 1, names
    finally:
        conn.close()


def test_keep_alive_after_404_and_redirect(site):
    """The connection survives answers without a file body."""
    conn = http.client.HTTPConnection("127.0.0.1", site.server.edge_port,
                                      timeout=30)
    try:
        names = []
        for path, status in (("/no/such/page", 404), ("/old-302", 302),
                             ("/about", 200)):
            conn.request("GET", path, headers={"Host": site.host})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == status, (path, resp.getheaders())
            assert not resp.will_close, (path, resp.getheaders())
            names.append(conn.sock.getsockname())
        assert len(set(names)) == 1, names
    finally:
        conn.close()


def test_pipelined_requests_answered_in_order(site):
    req = ("GET /about HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity"
           "\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: %s\r\n"
           "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
           % (site.host, site.host)).encode()
    ans = wh.edge_raw(site.server, req)
    assert ans.status == 200, ans
    raw = ans.raw
    first = raw.find(site.files["/about.html"])
    second = raw.find(site.files["/docs/index.html"])
    assert 0 <= first < second, raw[:2000]
    assert len(re.findall(rb"HTTP/1\.1 200", raw)) == 2, raw[:2000]
