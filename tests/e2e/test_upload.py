"""POST /api/builds/:tenantId: the upload of a ZIP, end to end.

The module's server runs no build worker (WHARF_WORKERS=0), so that an
accepted build stays "pending", and has MAX_UPLOAD_SIZE=64kb.  Every
test makes its own tenant and users.

Every refusal is checked to leave nothing behind: no build in the
tenant's list, nothing under <data>/blobs/tenants/<t>/builds/ and
nothing in <data>/blobs/.tmp/.
"""

import hashlib
import itertools
import json
import os
import re
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

import wharf_harness as wh

LIMIT_ENV = "64kb"
# Below the limit whether "kb" means 1000 or 1024 bytes.
UNDER_LIMIT = 60000
# Above it either way.
OVER_LIMIT = 70000

VERSION_RE = re.compile(r"^v(\d{13})-[0-9a-z]{9}$")
ALLOWED_KEYS = ("framework", "buildCommand", "outputDir", "nodeVersion",
                "environmentVariables")
FRAMEWORKS = ("next", "vite", "react-scripts", "vue", "angular", "astro",
              "static", "node")
UPLOAD_MESSAGE = "File uploaded and build queued successfully"


@pytest.fixture(scope="module")
def server_env():
    return {"WHARF_WORKERS": "0", "MAX_UPLOAD_SIZE": LIMIT_ENV}


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


def upload_path(tenant):
    return "/api/builds/%s" % tenant


# Temp files present when the test started (left by an earlier test's
# request, which that test reports): not this test's doing.
_tmp_at_start = set()


@pytest.fixture(autouse=True)
def _tmp_snapshot(server):
    _tmp_at_start.clear()
    _tmp_at_start.update(wh.tmp_files(server.data_dir))
    yield


def wait_no_new_tmp(data_dir, timeout=10):
    """Polls until no temp file but those present at the test's start
    is left (a refused upload's temp file may go just after the
    answer); returns the new ones left."""
    deadline = time.monotonic() + timeout
    while True:
        left = [f for f in wh.tmp_files(data_dir) if f not in _tmp_at_start]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def assert_nothing_left(server, member):
    """No build in the tenant, no blob under its builds, no temp file."""
    assert wh.all_build_ids(server, member) == [], \
        "a refused upload left a build"
    left = wh.files_under(server.data_dir,
                          "tenants/%s/builds" % member.tenant)
    assert left == [], "a refused upload left blobs: %r" % left
    tmp = wait_no_new_tmp(server.data_dir)
    assert tmp == [], "a refused upload left temp files: %r" % tmp


def assert_refused(server, member, resp, status, *needles):
    """The refusal's status and error shape, words its message must
    hold, and nothing left behind.  Returns the body."""
    body = wh.assert_error(resp, status)
    for needle in needles:
        assert needle in body["message"], (
            "message does not mention %r\n%s" % (needle, wh.show(resp)))
    assert_nothing_left(server, member)
    return body


def refused_config(server, owner, config, *needles):
    resp = wh.upload(server, owner.tenant, owner.token,
                     wh.static_site_zip(), build_config=config)
    return assert_refused(server, owner, resp, 400, *needles)


# -- accepted uploads --------------------------------------------------------


def test_upload_response_shape(server, owner):
    data_zip = wh.static_site_zip()
    before_ms = int(time.time() * 1000)
    resp = wh.upload(server, owner.tenant, owner.token, data_zip)
    after_ms = int(time.time() * 1000)
    body = wh.assert_json(resp, 200)

    assert body.get("success") is True, wh.show(resp)
    assert body.get("message") == UPLOAD_MESSAGE, wh.show(resp)
    data = body.get("data")
    assert isinstance(data, dict), wh.show(resp)
    assert set(data) >= {"build", "upload", "job"}, wh.show(resp)

    build = data["build"]
    assert set(build) >= {"id", "tenantId", "version", "status",
                          "framework", "queuePosition"}, wh.show(resp)
    assert isinstance(build["id"], str) and wh.UUID_RE.match(build["id"]), \
        wh.show(resp)
    assert build["tenantId"] == owner.tenant, wh.show(resp)
    m = VERSION_RE.match(build["version"] or "")
    assert m, wh.show(resp)
    # v<ms>: the upload's time in milliseconds (a few seconds of slack
    # for clocks read at different moments).
    assert before_ms - 5000 <= int(m.group(1)) <= after_ms + 5000, \
        (before_ms, build["version"], after_ms)
    assert build["status"] == "pending", wh.show(resp)
    assert build["framework"] is None, wh.show(resp)
    qp = build["queuePosition"]
    assert isinstance(qp, int) and not isinstance(qp, bool) and qp >= 0, \
        wh.show(resp)

    up = data["upload"]
    assert up == {"key": "tenants/%s/builds/%s/source.zip"
                  % (owner.tenant, build["id"]),
                  "size": len(data_zip),
                  "sha256": hashlib.sha256(data_zip).hexdigest()}, \
        wh.show(resp)

    job = data["job"]
    assert isinstance(job.get("id"), str) and job["id"], wh.show(resp)
    assert job.get("priority") == 10, wh.show(resp)

    # The blob holds exactly the bytes sent.
    stored = wh.blob_path(server.data_dir, up["key"]).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == up["sha256"]
    assert stored == data_zip
    assert wait_no_new_tmp(server.data_dir) == []


def test_upload_build_is_listed_and_detailed(server, owner):
    data_zip = wh.static_site_zip()
    data = wh.upload_ok(server, owner, data_zip)
    bid = data["build"]["id"]

    listed = wh.list_builds(server, owner)["builds"]
    assert [b["id"] for b in listed] == [bid], listed
    build = wh.get_build(server, owner, bid)
    for key, want in (("tenantId", owner.tenant),
                      ("userId", owner.user_id),
                      ("version", data["build"]["version"]),
                      ("status", "pending"), ("progress", 0),
                      ("framework", None), ("buildCommand", None),
                      ("outputDir", None), ("nodeVersion", None),
                      ("environmentVariables", []),
                      ("originalFileName", "site.zip"),
                      ("fileSize", len(data_zip)),
                      ("sha256", hashlib.sha256(data_zip).hexdigest()),
                      ("startedAt", None), ("finishedAt", None),
                      ("errorMessage", None), ("errorStep", None),
                      ("attempts", 0)):
        assert build.get(key) == want, (key, build)
    assert isinstance(build.get("uploadedAt"), str), build
    assert isinstance(build.get("queuePosition"), int), build
    assert "urls" in build, build
    # The list and the detail agree on the common fields.
    for key, value in listed[0].items():
        assert build.get(key) == value, (key, listed[0], build)


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_upload_allowed_for_each_role(server, role):
    m = wh.make_member(server.cli, role)
    data = wh.upload_ok(server, m)
    assert data["build"]["tenantId"] == m.tenant
    assert wh.all_build_ids(server, m) == [data["build"]["id"]]
    assert wh.get_build(server, m, data["build"]["id"])["userId"] == \
        m.user_id


def test_upload_ids_and_versions_differ(server, owner):
    a = wh.upload_ok(server, owner)
    b = wh.upload_ok(server, owner)
    assert a["build"]["id"] != b["build"]["id"]
    assert a["build"]["version"] != b["build"]["version"]
    assert a["job"]["id"] != b["job"]["id"]
    assert a["upload"]["key"] != b["upload"]["key"]
    assert wh.all_build_ids(server, owner) == [b["build"]["id"],
                                               a["build"]["id"]]


def test_upload_same_bytes_twice_are_two_builds(server, owner):
    data_zip = wh.static_site_zip()
    a = wh.upload_ok(server, owner, data_zip)
    b = wh.upload_ok(server, owner, data_zip)
    assert a["build"]["id"] != b["build"]["id"]
    assert a["upload"]["sha256"] == b["upload"]["sha256"]
    for d in (a, b):
        assert wh.blob_path(server.data_dir,
                            d["upload"]["key"]).read_bytes() == data_zip


def test_upload_with_full_build_config(server, owner):
    secret = "s3cr3t-" + uuid.uuid4().hex
    config = {"framework": "vite", "buildCommand": "npm run build:prod",
              "outputDir": "dist/site", "nodeVersion": "20",
              "environmentVariables": {"API_URL": "https://api.example",
                                       "_TOKEN": secret, "a1": ""}}
    resp = wh.upload(server, owner.tenant, owner.token,
                     wh.static_site_zip(), build_config=config)
    body = wh.assert_json(resp, 200)
    assert secret not in resp.text, "a variable's value was echoed"
    build = body["data"]["build"]
    assert build["framework"] == "vite", wh.show(resp)

    detail_resp = server.get(wh.build_path(owner.tenant, build["id"]),
                             headers=owner.bearer())
    detail = wh.assert_json(detail_resp, 200)["data"]["build"]
    assert detail["framework"] == "vite"
    assert detail["buildCommand"] == "npm run build:prod"
    assert detail["outputDir"] == "dist/site"
    assert detail["nodeVersion"] == "20"
    assert sorted(detail["environmentVariables"]) == ["API_URL", "_TOKEN",
                                                      "a1"]
    list_resp = server.get(wh.build_path(owner.tenant),
                           headers=owner.bearer())
    wh.assert_json(list_resp, 200)
    for r in (detail_resp, list_resp):
        assert secret not in r.text, "a variable's value was echoed\n" + \
            wh.show(r)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_upload_each_framework_accepted(server, owner, framework):
    data = wh.upload_ok(server, owner,
                        build_config={"framework": framework})
    assert data["build"]["framework"] == framework
    assert wh.get_build(server, owner,
                        data["build"]["id"])["framework"] == framework


def test_upload_empty_build_config_object(server, owner):
    data = wh.upload_ok(server, owner, build_config={})
    assert data["build"]["framework"] is None


@pytest.mark.parametrize("filename,ctype", [
    ("site.zip", "application/octet-stream"),
    ("site.zip", None),
    ("archive", "application/zip"),
    ("site.bin", "application/x-zip-compressed"),
])
def test_upload_zip_by_name_or_type(server, owner, filename, ctype):
    # A name ending .zip or a ZIP MIME type is enough.
    data_zip = wh.static_site_zip()
    data = wh.upload_ok(server, owner, data_zip, filename=filename,
                        content_type=ctype)
    assert data["upload"]["size"] == len(data_zip)


def test_upload_under_the_size_limit(server, owner):
    data_zip = wh.random_bytes_zip(UNDER_LIMIT - 200)
    assert len(data_zip) < UNDER_LIMIT
    data = wh.upload_ok(server, owner, data_zip)
    assert data["upload"]["size"] == len(data_zip)
    assert wh.blob_path(server.data_dir,
                        data["upload"]["key"]).read_bytes() == data_zip


def _read_to_close(s):
    """Everything the server sends on socket s until it closes."""
    answer = b""
    while True:
        data = s.recv(65536)
        if not data:
            return answer
        answer += data


def _send_in_pieces(base_url, head, body, sizes):
    """Sends head, then body in pieces of the given sizes (cycled), each
    in its own segment; returns (status, JSON body) of the answer."""
    u = urlsplit(base_url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        off = 0
        for n in itertools.cycle(sizes):
            if off >= len(body):
                break
            s.sendall(body[off:off + n])
            off += n
        answer = _read_to_close(s)
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def test_upload_body_in_small_pieces(server, owner):
    # The file holds what starts like the form's delimiter, and the body
    # comes in odd small pieces: every kind of cut across a delimiter or
    # a header line reaches the parser, and the bytes stored are the
    # bytes sent.
    boundary = "wharf-e2e-" + uuid.uuid4().hex
    delimiter = ("\r\n--" + boundary).encode()
    near = [delimiter[:n] for n in range(1, len(delimiter))]
    near += [b"\r\r\n--", b"\n--" + boundary.encode()]
    # Bytes of 0x80 and up between them: they cannot finish a delimiter.
    filler = b"".join(near[i % len(near)] +
                      bytes(0x80 | c for c in os.urandom(i % 37))
                      for i in range(600))
    data_zip = b"PK\x03\x04" + filler
    assert delimiter not in data_zip
    body, ctype = wh.encode_multipart(
        wh.upload_parts(data_zip, build_config={"framework": "static"}),
        boundary)
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer %s\r\nContent-Type: %s\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n"
            % (upload_path(owner.tenant), owner.token, ctype,
               len(body))).encode()
    status, answer = _send_in_pieces(server.base_url, head, body,
                                     [1, 7, 2, 61, 3, 250, 13])
    assert status == 200, answer
    up = answer["data"]["upload"]
    assert up["size"] == len(data_zip)
    assert up["sha256"] == hashlib.sha256(data_zip).hexdigest()
    assert wh.blob_path(server.data_dir, up["key"]).read_bytes() == data_zip
    assert answer["data"]["build"]["framework"] == "static"


def test_upload_many_at_once(server, owner):
    # Ten uploads in flight together: the first eight hash and write on
    # helper threads, the others on their connection's thread (the
    # server logs upload.unthreaded for them).  Every one is stored
    # whole.  Each body is sent up to the middle of its file, on every
    # connection, before any is finished.
    n = 10
    u = urlsplit(server.base_url)
    zips = [b"PK\x03\x04" + os.urandom(UNDER_LIMIT - 4) for _ in range(n)]
    socks, rest = [], []
    try:
        for data_zip in zips:
            boundary = "wharf-e2e-" + uuid.uuid4().hex
            body, ctype = wh.encode_multipart(
                wh.upload_parts(data_zip), boundary)
            head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n"
                    % (upload_path(owner.tenant), owner.token, ctype,
                       len(body))).encode()
            cut = body.index(data_zip) + len(data_zip) // 2
            s = socket.create_connection((u.hostname, u.port), timeout=30)
            socks.append(s)
            s.sendall(head + body[:cut])
            rest.append(body[cut:])
        # Until the server has begun every file, none is finished.
        deadline = time.monotonic() + 10
        while (server.log().count("event=upload.unthreaded") < n - 8 and
               time.monotonic() < deadline):
            time.sleep(0.05)
        answers = []
        for s, pending in zip(socks, rest):
            s.sendall(pending)
            answers.append(_read_to_close(s))
    finally:
        for s in socks:
            s.close()
    rids = []
    for data_zip, answer in zip(zips, answers):
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200", answer[:500]
        up = json.loads(payload)["data"]["upload"]
        assert up["sha256"] == hashlib.sha256(data_zip).hexdigest()
        assert wh.blob_path(server.data_dir, up["key"]).read_bytes() == \
            data_zip
        rids += re.findall(rb"(?im)^x-request-id: *(\S+)", head)
    unthreaded = [line for line in server.log().splitlines()
                  if "event=upload.unthreaded" in line and
                  any(("req=%s " % r.decode()) in line for r in rids)]
    assert len(unthreaded) == n - 8, unthreaded


def test_upload_ten_fields_accepted(server, owner):
    # At most 10 fields: the file, buildConfig and 8 more are fine.
    parts = wh.upload_parts(wh.static_site_zip(),
                            build_config={"framework": "static"})
    parts += [wh.text_part("note%d" % i, "x") for i in range(8)]
    assert len(parts) == 10
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    wh.assert_json(resp, 200)


def test_upload_queue_positions(wenv):
    # A server of its own: the queue is global, so positions count only
    # this test's builds.
    srv = wenv.serve({"WHARF_WORKERS": "0"})
    m = wh.make_member(srv.cli, "owner")
    ups = [wh.upload_ok(srv, m) for _ in range(3)]
    assert [u["build"]["queuePosition"] for u in ups] == [0, 1, 2], ups
    assert [u["job"]["priority"] for u in ups] == [10, 10, 10]
    ids = [u["build"]["id"] for u in ups]
    assert [wh.get_build(srv, m, i).get("queuePosition")
            for i in ids] == [0, 1, 2]

    # Cancelling the first one moves the others up.
    resp = srv.request("DELETE", wh.build_path(m.tenant, ids[0]),
                       headers=m.bearer())
    wh.assert_json(resp, 200)
    assert [wh.get_build(srv, m, i).get("queuePosition")
            for i in ids[1:]] == [0, 1]


# -- refusals: the form --------------------------------------------------------


def test_refuse_no_file(server, owner):
    parts = [wh.text_part("buildConfig", json.dumps({"framework": "vite"}))]
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


def test_refuse_empty_form(server, owner):
    resp = wh.upload(server, owner.tenant, owner.token, parts=[])
    assert_refused(server, owner, resp, 400)


def test_refuse_empty_body(server, owner):
    _, ctype = wh.encode_multipart([])
    resp = server.post(upload_path(owner.tenant), data=b"",
                       headers={**owner.bearer(), "Content-Type": ctype})
    assert_refused(server, owner, resp, 400)


def test_refuse_two_files(server, owner):
    z = wh.static_site_zip()
    parts = [wh.file_part("file", "a.zip", z),
             wh.file_part("file", "b.zip", z)]
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


def test_refuse_two_files_in_two_fields(server, owner):
    z = wh.static_site_zip()
    parts = [wh.file_part("file", "a.zip", z),
             wh.file_part("other", "b.zip", z)]
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


@pytest.mark.parametrize("field", ["upload", "files", "File", "zip"])
def test_refuse_file_in_another_field(server, owner, field):
    parts = [wh.file_part(field, "site.zip", wh.static_site_zip())]
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


def test_refuse_text_field_named_file(server, owner):
    parts = [wh.text_part("file", wh.static_site_zip())]
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


@pytest.mark.parametrize("filename,ctype", [
    ("site.txt", "text/plain"),
    ("site", "application/octet-stream"),
    ("site.zip.txt", "text/plain"),
    ("site.tar.gz", "application/gzip"),
])
def test_refuse_not_a_zip_by_name_and_type(server, owner, filename, ctype):
    # ZIP bytes, but neither the name nor the type says ZIP.
    resp = wh.upload(server, owner.tenant, owner.token,
                     wh.static_site_zip(), filename=filename,
                     content_type=ctype)
    assert_refused(server, owner, resp, 400)


@pytest.mark.parametrize("content", [
    b"<html>not a zip at all</html>\n" * 20,
    b"PK\x05\x06" + b"\x00" * 18,            # an empty ZIP: no entry
    b"\x1f\x8b\x08\x00" + b"\x00" * 100,     # gzip
    b"PK\x03",                               # too short
    b"pk\x03\x04" + b"\x00" * 100,
    b" PK\x03\x04" + b"\x00" * 100,
], ids=["html", "empty-zip", "gzip", "three-bytes", "lowercase-pk",
        "leading-space"])
def test_refuse_zip_name_with_other_bytes(server, owner, content):
    resp = wh.upload(server, owner.tenant, owner.token, content)
    assert_refused(server, owner, resp, 400)


def test_refuse_empty_file(server, owner):
    resp = wh.upload(server, owner.tenant, owner.token, b"")
    assert_refused(server, owner, resp, 400)


def test_refuse_eleven_fields(server, owner):
    parts = wh.upload_parts(wh.static_site_zip())
    parts += [wh.text_part("note%d" % i, "x") for i in range(10)]
    assert len(parts) == 11
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


def test_refuse_many_fields_before_the_file(server, owner):
    parts = [wh.text_part("note%d" % i, "x") for i in range(30)]
    parts += wh.upload_parts(wh.static_site_zip())
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 400)


@pytest.mark.parametrize("field", ["notes", "buildConfig"])
def test_refuse_text_field_over_1mib(server, owner, field):
    big = "x" * (1024 * 1024 + 1)
    if field == "buildConfig":
        big = json.dumps({"buildCommand": "y" * (1024 * 1024)})
    parts = wh.upload_parts(wh.static_site_zip())
    parts.append(wh.text_part(field, big))
    resp = wh.upload(server, owner.tenant, owner.token, parts=parts)
    assert_refused(server, owner, resp, 413)


def test_refuse_file_over_the_size_limit(server, owner):
    data_zip = wh.random_bytes_zip(OVER_LIMIT)
    resp = wh.upload(server, owner.tenant, owner.token, data_zip)
    assert_refused(server, owner, resp, 413)


def test_refuse_over_the_limit_then_accept(server, owner):
    # A refusal does not spoil the next upload of the tenant.
    resp = wh.upload(server, owner.tenant, owner.token,
                     wh.random_bytes_zip(OVER_LIMIT))
    assert_refused(server, owner, resp, 413)
    data = wh.upload_ok(server, owner)
    assert wh.all_build_ids(server, owner) == [data["build"]["id"]]


def _huge_body_chunks(boundary, total):
    """A multipart form whose file field starts like a ZIP and goes on
    for total bytes, in 64 KiB chunks."""
    yield wh.multipart_head(wh.file_part("file", "huge.zip", b""),
                            boundary) + b"PK\x03\x04"
    chunk = b"\x00" * 65536
    for _ in range(total // len(chunk)):
        yield chunk
    yield ("\r\n--%s--\r\n" % boundary).encode()


def _huge_upload(server, member, chunked):
    """Sends a 64 MiB upload (1000 times the limit) over a raw socket;
    returns the RawAnswer and the body's size.  Retried twice when the
    connection was reset before any answer could be read (a reset may
    drop an answer already sent), so that only a server that never
    answers 413 fails."""
    total = 64 * 1024 * 1024
    boundary = "wharf-e2e-" + uuid.uuid4().hex
    size = sum(len(c) for c in _huge_body_chunks(boundary, total))
    answers = []
    for _ in range(3):
        head = ["POST %s HTTP/1.1" % upload_path(member.tenant),
                "Host: 127.0.0.1",
                "Authorization: Bearer %s" % member.token,
                "Content-Type: multipart/form-data; boundary=%s" % boundary]
        if chunked:
            head.append("Transfer-Encoding: chunked")
            body = (b"%x\r\n%s\r\n" % (len(c), c)
                    for c in _huge_body_chunks(boundary, total))
            body = _then(body, b"0\r\n\r\n")
        else:
            head.append("Content-Length: %d" % size)
            body = _huge_body_chunks(boundary, total)
        raw = ("\r\n".join(head) + "\r\n\r\n").encode()
        ans = wh.raw_request(server.base_url, raw, body)
        answers.append(ans)
        if ans.status is not None or not ans.closed:
            break
    return answers, size


def _then(gen, last):
    yield from gen
    yield last


@pytest.mark.parametrize("chunked", [False, True],
                         ids=["content-length", "chunked"])
def test_refuse_huge_body_without_reading_it(server, owner, chunked):
    answers, size = _huge_upload(server, owner, chunked)
    ans = answers[-1]
    assert ans.status == 413, (
        "expected a 413 (possibly followed by a close) for a body of %d "
        "bytes over a %s limit; got %r" % (size, LIMIT_ENV, answers))
    # The server answered before taking the whole body.
    assert ans.sent < size, ans
    # It is still up, and nothing is left behind.
    wh.assert_json(server.get("/healthz"), 200)
    assert_nothing_left(server, owner)


def test_refuse_huge_body_through_requests(server, owner):
    """The same with requests and a streaming generator: either the
    413 is read, or the connection closes under the sender; in both
    cases the server must not have taken the whole body."""
    total = 64 * 1024 * 1024
    boundary = "wharf-e2e-" + uuid.uuid4().hex
    size = sum(len(c) for c in _huge_body_chunks(boundary, total))
    taken = []

    def body():
        for chunk in _huge_body_chunks(boundary, total):
            taken.append(len(chunk))
            yield chunk

    headers = {**owner.bearer(), "Content-Type":
               "multipart/form-data; boundary=" + boundary}
    try:
        resp = server.post(upload_path(owner.tenant), data=body(),
                           headers=headers, timeout=60)
    except requests.exceptions.ConnectionError as e:
        resp, error = None, e
    else:
        error = None
    if resp is not None:
        wh.assert_error(resp, 413)
    else:
        # Closed before requests could read the answer: acceptable only
        # if the body was cut short, i.e. the server stopped reading.
        assert sum(taken) < size, (
            "the connection failed (%r) after the whole body was sent"
            % error)
    wh.assert_json(server.get("/healthz"), 200)
    assert_nothing_left(server, owner)


# -- refusals: the content type ------------------------------------------------


@pytest.mark.parametrize("ctype", ["application/zip", "application/json",
                                   "application/octet-stream", None])
def test_refuse_body_not_multipart(server, owner, ctype):
    headers = owner.bearer()
    if ctype:
        headers["Content-Type"] = ctype
    data = wh.static_site_zip()
    if ctype == "application/json":
        data = json.dumps({"file": "site.zip"}).encode()
    resp = server.post(upload_path(owner.tenant), data=data,
                       headers=headers)
    assert_refused(server, owner, resp, 400)


def test_refuse_urlencoded_form(server, owner):
    resp = server.post(upload_path(owner.tenant),
                       data={"file": "site.zip", "buildConfig": "{}"},
                       headers=owner.bearer())
    assert_refused(server, owner, resp, 400)


# -- refusals: buildConfig -------------------------------------------------------


@pytest.mark.parametrize("config", ["{", "not json", "{'framework': 'vite'}",
                                    '{"framework": "vite",}',
                                    '{"framework": "vite"} trailing'])
def test_refuse_config_invalid_json(server, owner, config):
    refused_config(server, owner, config, "valid JSON")


@pytest.mark.parametrize("config", ["[]", '"vite"', "42", "null", "true"])
def test_refuse_config_not_an_object(server, owner, config):
    refused_config(server, owner, config)


@pytest.mark.parametrize("key", ["command", "Framework", "env",
                                 "installCommand", ""])
def test_refuse_config_unknown_key(server, owner, key):
    body = refused_config(server, owner, {"framework": "vite", key: "x"})
    for allowed in ALLOWED_KEYS:
        assert allowed in body["message"], body


@pytest.mark.parametrize("framework", ["gatsby", "", "Next", "NEXT",
                                       "static ", 5, None, ["next"]])
def test_refuse_config_bad_framework(server, owner, framework):
    refused_config(server, owner, {"framework": framework})


@pytest.mark.parametrize("output_dir", ["../x", "/abs", "/", "a/../../x",
                                        "..", "dist/../../etc"])
def test_refuse_config_bad_output_dir(server, owner, output_dir):
    refused_config(server, owner, {"outputDir": output_dir})


@pytest.mark.parametrize("env", ["A=b", ["A"], 5, True],
                         ids=["string", "array", "number", "bool"])
def test_refuse_config_env_not_an_object(server, owner, env):
    refused_config(server, owner, {"environmentVariables": env})


@pytest.mark.parametrize("value", [1, None, True, {"a": "b"}, ["x"]],
                         ids=["number", "null", "bool", "object", "array"])
def test_refuse_config_env_value_not_a_string(server, owner, value):
    refused_config(server, owner,
                   {"environmentVariables": {"OK_NAME": "x",
                                             "API_URL": value}})


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "A.B", "A=B",
                                  "\u00c9T\u00c9"])
def test_refuse_config_bad_env_name(server, owner, name):
    refused_config(server, owner, {"environmentVariables": {name: "x"}})


@pytest.mark.parametrize("name", ["PATH", "NODE_OPTIONS", "LD_PRELOAD",
                                  "LD_LIBRARY_PATH", "npm_config_registry",
                                  "NPM_CONFIG_CACHE", "HOME"])
def test_refuse_config_refused_env_name(server, owner, name):
    refused_config(server, owner,
                   {"environmentVariables": {"API_URL": "x", name: "v"}},
                   name)


@pytest.mark.parametrize("value", ["a\nB=c", "a\rB=c", "line\n", "\r\n"],
                         ids=["newline", "cr", "trailing-newline", "crlf"])
def test_refuse_config_env_value_with_line_break(server, owner, value):
    refused_config(server, owner,
                   {"environmentVariables": {"API_URL": value}})


# -- refusals: who may upload ------------------------------------------------------


def test_refuse_no_token(server, owner):
    resp = wh.upload(server, owner.tenant, None, wh.static_site_zip())
    assert_refused(server, owner, resp, 401)


def test_refuse_bad_token(server, owner):
    token = wh.make_jwt({"userId": owner.user_id,
                         "exp": int(time.time()) + 600},
                        secret="another-secret-" + "x" * 40)
    resp = wh.upload(server, owner.tenant, token, wh.static_site_zip())
    assert_refused(server, owner, resp, 403)


def test_refuse_member_of_another_tenant(server, owner):
    other = wh.make_member(server.cli, "owner")
    resp = wh.upload(server, owner.tenant, other.token,
                     wh.static_site_zip())
    assert_refused(server, owner, resp, 403)
    assert wh.all_build_ids(server, other) == []


def test_refuse_removed_member(server, owner):
    m = wh.make_member(server.cli, "member", tenant=owner.tenant)
    cp = server.cli("member", "remove", owner.tenant, m.email)
    assert cp.returncode == 0, wh.describe(cp)
    resp = wh.upload(server, owner.tenant, m.token, wh.static_site_zip())
    assert_refused(server, owner, resp, 403)


def test_refuse_unknown_tenant(server, owner):
    tenant = wh.unique("nosuch-")
    resp = wh.upload(server, tenant, owner.token, wh.static_site_zip())
    wh.assert_error(resp, 404)
    assert wh.files_under(server.data_dir, "tenants/%s" % tenant) == []
    assert_nothing_left(server, owner)
