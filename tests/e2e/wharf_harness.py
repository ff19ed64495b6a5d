"""Helpers for Wharf's end-to-end tests.

Starts `wharf serve` on ephemeral ports of 127.0.0.1, runs CLI commands
with the same environment, crafts JSON Web Tokens and parses the
Prometheus text format.  Only the standard library and requests.
"""

import base64
import hashlib
import hmac
import io
import json
import os
import queue
import re
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[2]
# The binary under test: $WHARF_BIN, else build/wharf.
WHARF_BIN = os.environ.get("WHARF_BIN") or str(REPO / "build" / "wharf")

# 48 characters, known to the tests so that they can sign tokens.
TEST_SECRET = "e2e-secret-0123456789abcdefghijklmnopqrstuvwxyz!"
assert len(TEST_SECRET) == 48

# Variables that configure wharf: never inherited from the caller.
WHARF_VARS_PREFIX = "WHARF_"
WHARF_PLAIN_VARS = ("JWT_SECRET", "MAX_UPLOAD_SIZE", "MAX_ZIP_SIZE")

LISTEN_RE = re.compile(r"api listening on http://127\.0\.0\.1:(\d+)")
# What `wharf serve` and `wharf edge` print once the edge listens.
EDGE_RE = re.compile(r"edge listening on http://127\.0\.0\.1:(\d+)")
# What `wharf worker` prints once its workers run.
WORKERS_RE = re.compile(r"build workers running")
START_TIMEOUT = 15
STOP_TIMEOUT = 10
CLI_TIMEOUT = 60

UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def unique(prefix):
    """A short name unique to this run: prefix + 10 hex digits."""
    return "%s%s" % (prefix, uuid.uuid4().hex[:10])


def base_env(data_dir, secret=TEST_SECRET):
    """The environment of every wharf process of a test.

    Starts from the caller's environment without any wharf setting and
    without proxies, then sets the data dir, the secret (None: leave
    JWT_SECRET unset), ephemeral loopback ports and debug logs.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(WHARF_VARS_PREFIX)
           and k not in WHARF_PLAIN_VARS
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["WHARF_DATA_DIR"] = str(data_dir)
    env["WHARF_LISTEN"] = "127.0.0.1:0"
    env["WHARF_EDGE_LISTEN"] = "127.0.0.1:0"
    env["WHARF_LOG_LEVEL"] = "debug"
    if secret is not None:
        env["JWT_SECRET"] = secret
    return env


def run_cli(env, *args, input=None, timeout=CLI_TIMEOUT):
    """Runs `wharf ARGS` with env; returns the CompletedProcess (text)."""
    return subprocess.run([WHARF_BIN, *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def describe(cp):
    """A CompletedProcess as text, for assertion messages."""
    return "wharf %s -> exit %s\nstdout: %r\nstderr: %r" % (
        " ".join(cp.args[1:]), cp.returncode, cp.stdout, cp.stderr)


# Servers alive now, so that a failing test can show their logs.
LIVE_SERVERS = []


class WharfServer:
    """One `wharf serve` process on a data dir.

    base_url, data_dir, env; cli(*args, input=None) runs the binary with
    the same environment; request(method, path, ...) speaks HTTP to it.

    command picks the role: "serve" (the default), "api" or "worker".
    A worker has no base_url; it is ready once it prints that its build
    workers run.
    """

    _count = 0

    def __init__(self, data_dir, env, command="serve"):
        self.data_dir = Path(data_dir)
        self.env = dict(env)
        self.command = command
        if command == "serve":
            name = self.data_dir.name + "-server.log"
        else:
            WharfServer._count += 1
            name = "%s-%s-%d.log" % (self.data_dir.name, command,
                                     WharfServer._count)
        self.log_path = self.data_dir.parent / name
        self.proc = None
        self.base_url = None
        # The edge's URL ("serve" and "edge"), from its stdout line.
        self.edge_url = None
        self.edge_port = None
        self.stdout_lines = []
        self._lines = queue.Queue()
        self._log_file = None
        self._reader = None

    # -- life cycle -------------------------------------------------

    def start(self):
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [WHARF_BIN, self.command], env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._log_file)
        self._reader = threading.Thread(target=self._read_stdout,
                                        daemon=True)
        self._reader.start()
        LIVE_SERVERS.append(self)

        ready = {"worker": WORKERS_RE, "edge": EDGE_RE}.get(self.command,
                                                          LISTEN_RE)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort("no %r line within %d s"
                            % (ready.pattern, START_TIMEOUT))
            try:
                line = self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self._lines.empty():
                    self._abort("wharf %s exited with code %s before "
                                "it was ready" % (self.command,
                                                  self.proc.returncode))
                continue
            if line is None:
                self._abort("wharf %s closed stdout before it was ready"
                            % self.command)
            e = EDGE_RE.search(line)
            if e:
                self.edge_port = int(e.group(1))
                self.edge_url = "http://127.0.0.1:%d" % self.edge_port
            m = ready.search(line)
            if m:
                if ready is LISTEN_RE:
                    self.base_url = "http://127.0.0.1:%s" % m.group(1)
                return self

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _abort(self, why):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()
        raise RuntimeError("%s\n--- stdout ---\n%s\n--- server log ---\n%s"
                           % (why, "\n".join(self.stdout_lines), self.log()))

    def stop(self):
        """SIGTERM, then the exit code (None if it did not exit)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        self._close()
        return rc

    def kill(self):
        """SIGKILL, as a crash: no chance to clean up.  Returns the
        exit status (negative signal number)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(timeout=STOP_TIMEOUT)
        self._close()
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _close(self):
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as e:
            return "(no log: %s)" % e

    # -- clients ----------------------------------------------------

    def cli(self, *args, input=None):
        return run_cli(self.env, *args, input=input)

    def request(self, method, path, **kw):
        """One HTTP request with a fresh session: no cookie carries over
        from another request, and no proxy is used."""
        with requests.Session() as s:
            s.trust_env = False
            kw.setdefault("timeout", 30)
            kw.setdefault("allow_redirects", False)
            return s.request(method, self.base_url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


def start_server(data_dir, env, command="serve"):
    return WharfServer(data_dir, env, command).start()


# -- bootstrap through the CLI ----------------------------------------


class Member:
    """A user, with the tenant it belongs to and a token from the CLI."""

    def __init__(self, email, password, user_id, tenant, role, token):
        self.email = email
        self.password = password
        self.user_id = user_id
        self.tenant = tenant
        self.role = role
        self.token = token

    def bearer(self):
        return {"Authorization": "Bearer " + self.token}


def add_user(cli, email=None, password=None):
    """`wharf user add`; returns (email, password, id)."""
    email = email or unique("user-") + "@example.com"
    password = password or "pw-" + uuid.uuid4().hex
    cp = cli("user", "add", email, input=password + "\n")
    assert cp.returncode == 0, describe(cp)
    m = re.search(r"\(id ([0-9a-f-]{36})\)", cp.stdout)
    assert m, describe(cp)
    return email, password, m.group(1)


def add_tenant(cli, slug=None):
    slug = slug or unique("t-")
    cp = cli("tenant", "add", slug)
    assert cp.returncode == 0, describe(cp)
    return slug


def add_member(cli, tenant, email, role):
    cp = cli("member", "add", tenant, email, role)
    assert cp.returncode == 0, describe(cp)


def get_token(cli, email, *extra):
    cp = cli("token", email, *extra)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout.strip()


def make_member(cli, role="owner", tenant=None):
    """A fresh user, member of tenant (a fresh one unless given) with
    role, and a token for it from `wharf token`."""
    tenant = tenant or add_tenant(cli)
    email, password, user_id = add_user(cli)
    add_member(cli, tenant, email, role)
    token = get_token(cli, email)
    return Member(email, password, user_id, tenant, role, token)


# -- JSON Web Tokens ----------------------------------------------------


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(payload, secret=TEST_SECRET, header=None, alg="HS256",
             signature=None):
    """Builds a token.  payload and header are dicts (or raw strings,
    encoded as they are); alg picks the HMAC (HS256, HS384, HS512) or
    "none" for an empty signature; signature overrides the computed one
    (raw bytes)."""
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
    h = header if isinstance(header, str) else json.dumps(
        header, separators=(",", ":"))
    p = payload if isinstance(payload, str) else json.dumps(
        payload, separators=(",", ":"))
    signing_input = b64url(h) + "." + b64url(p)
    if signature is None:
        digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
                   "HS512": hashlib.sha512}
        if alg == "none":
            signature = b""
        else:
            signature = hmac.new(secret.encode(), signing_input.encode(),
                                 digests[alg]).digest()
    return signing_input + "." + b64url(signature)


def decode_jwt(token):
    """(header, payload, signature bytes) of a token, unverified."""
    h, p, s = token.split(".")
    return (json.loads(b64url_decode(h)), json.loads(b64url_decode(p)),
            b64url_decode(s))


def jwt_signature_ok(token, secret=TEST_SECRET):
    h, p, s = token.split(".")
    want = hmac.new(secret.encode(), (h + "." + p).encode(),
                    hashlib.sha256).digest()
    return hmac.compare_digest(want, b64url_decode(s))


# -- HTTP assertions -----------------------------------------------------


def show(resp):
    """A response as text, for assertion messages."""
    req = resp.request
    body = resp.text
    if len(body) > 2000:
        body = body[:2000] + "..."
    return "%s %s -> %s\nrequest headers: %r\nresponse headers: %r\n" \
        "body: %s" % (req.method, req.url, resp.status_code,
                      dict(req.headers), dict(resp.headers), body)


def assert_request_id(resp):
    rid = resp.headers.get("X-Request-Id")
    assert rid is not None and rid.strip() != "", \
        "no X-Request-Id\n" + show(resp)
    return rid


def assert_json(resp, status):
    """Asserts status, a JSON content type and X-Request-Id; returns the
    parsed body."""
    assert resp.status_code == status, show(resp)
    assert_request_id(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", \
        show(resp)
    try:
        return resp.json()
    except ValueError:
        raise AssertionError("body is not JSON\n" + show(resp))


def assert_error(resp, status):
    """Asserts an error response: status, and a JSON object body with
    string "error" and "message"."""
    body = assert_json(resp, status)
    assert isinstance(body, dict), show(resp)
    assert isinstance(body.get("error"), str) and body["error"], show(resp)
    assert isinstance(body.get("message"), str) and body["message"], \
        show(resp)
    return body


# -- Prometheus text format -------------------------------------------

_SAMPLE_RE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"'
                       r'\s*(,|$)')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1),
                                                      m.group(1)), value)


def parse_labels(text):
    labels = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad label set: {%s}" % text)
        assert m.group(1) not in labels, "label repeated: {%s}" % text
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def parse_prometheus(text):
    """Parses the text exposition format.

    Returns (samples, types): samples a list of (name, labels dict,
    float value); types {metric family: type} from # TYPE lines.
    Raises ValueError on a line that is not a comment, blank or sample.
    """
    samples, types = [], {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        value = m.group(3)
        v = {"+Inf": float("inf"), "-Inf": float("-inf")}.get(value)
        samples.append((m.group(1), parse_labels(m.group(2) or ""),
                        float(value) if v is None else v))
    return samples, types


def find_samples(samples, name, **labels):
    """Samples of metric name whose labels include the given ones."""
    return [(n, lab, v) for n, lab, v in samples
            if n == name and all(lab.get(k) == want
                                 for k, want in labels.items())]


def sample_value(samples, name, **labels):
    """Value of the one sample matching; 0 when there is none."""
    found = find_samples(samples, name, **labels)
    assert len(found) <= 1, "several samples of %s %r: %r" % (
        name, labels, found)
    return found[0][2] if found else 0.0


# -- ZIP archives ---------------------------------------------------------


def make_zip(files, compression=zipfile.ZIP_DEFLATED):
    """A ZIP archive, in memory, of {name: bytes or str}; a name ending
    in "/" is a folder entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
                continue
            if isinstance(content, str):
                content = content.encode()
            zf.writestr(name, content)
    return buf.getvalue()


def static_site_files(marker=None, root="site/public/"):
    """A plain HTML site (no package.json) in a nested folder."""
    marker = marker or uuid.uuid4().hex
    return {
        root + "index.html": "<!doctype html><html><head>"
                             "<link rel=stylesheet href=style.css>"
                             "<title>%s</title></head><body><h1>%s</h1>"
                             "</body></html>\n" % (marker, marker),
        root + "style.css": "body { font-family: sans-serif; }\n",
        root + "about/index.html": "<p>about %s</p>\n" % marker,
    }


def static_site_zip(marker=None):
    return make_zip(static_site_files(marker))


def failing_build_zip(code=3):
    """A node project without dependencies whose build exits with code."""
    package = {
        "name": "failing-site",
        "version": "1.0.0",
        "private": True,
        "scripts": {"build": "node -e 'process.exit(%d)'" % code},
    }
    return make_zip({"package.json": json.dumps(package, indent=2) + "\n",
                     "index.html": "<p>never published</p>\n"})


def random_bytes_zip(size, name="blob.bin"):
    """A ZIP of about size bytes that does not compress (stored)."""
    return make_zip({name: os.urandom(size)}, zipfile.ZIP_STORED)


# -- multipart/form-data --------------------------------------------------


def text_part(name, value):
    """A text field of a multipart form."""
    if isinstance(value, str):
        value = value.encode()
    return {"name": name, "data": value}


def file_part(name, filename, data, content_type="application/zip"):
    """A file field of a multipart form (content_type None: no header)."""
    return {"name": name, "filename": filename, "data": data,
            "content_type": content_type}


def multipart_head(part, boundary):
    """The boundary line and headers that open one part."""
    disp = 'form-data; name="%s"' % part["name"]
    if "filename" in part:
        disp += '; filename="%s"' % part["filename"]
    head = "--%s\r\nContent-Disposition: %s\r\n" % (boundary, disp)
    if part.get("content_type"):
        head += "Content-Type: %s\r\n" % part["content_type"]
    return (head + "\r\n").encode()


def encode_multipart(parts, boundary=None):
    """(body bytes, Content-Type header) of a multipart/form-data form
    made of text_part() and file_part() items, in that order."""
    boundary = boundary or "wharf-e2e-" + uuid.uuid4().hex
    out = io.BytesIO()
    for part in parts:
        out.write(multipart_head(part, boundary))
        out.write(part["data"])
        out.write(b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode())
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def upload_parts(zip_bytes, filename="site.zip",
                 content_type="application/zip", build_config=None):
    """The usual form: the ZIP in `file`, and buildConfig if given (a
    dict is sent as JSON, a str as it is)."""
    parts = [file_part("file", filename, zip_bytes, content_type)]
    if build_config is not None:
        if not isinstance(build_config, str):
            build_config = json.dumps(build_config)
        parts.append(text_part("buildConfig", build_config))
    return parts


def auth(token):
    return {"Authorization": "Bearer " + token} if token else {}


def upload(server, tenant, token, zip_bytes=None, filename="site.zip",
           content_type="application/zip", build_config=None, parts=None):
    """POST /api/builds/<tenant> with a multipart form: parts if given,
    else upload_parts(...)."""
    if parts is None:
        parts = upload_parts(zip_bytes, filename, content_type,
                             build_config)
    body, ctype = encode_multipart(parts)
    headers = auth(token)
    headers["Content-Type"] = ctype
    return server.post("/api/builds/%s" % tenant, data=body,
                       headers=headers, timeout=30)


def upload_ok(server, member, zip_bytes=None, **kw):
    """Uploads (a fresh static site unless zip_bytes is given) as member
    and asserts the 200; returns data: {build, upload, job}."""
    if zip_bytes is None:
        zip_bytes = static_site_zip()
    resp = upload(server, member.tenant, member.token, zip_bytes, **kw)
    body = assert_json(resp, 200)
    assert body.get("success") is True, show(resp)
    assert isinstance(body.get("data"), dict), show(resp)
    return body["data"]


# -- builds ---------------------------------------------------------------


def build_path(tenant, build_id=None, suffix=""):
    p = "/api/builds/%s/builds" % tenant
    if build_id is not None:
        p += "/" + build_id
    return p + suffix


def get_build(server, member, build_id, tenant=None):
    """The detail answer's build; asserts 200."""
    resp = server.get(build_path(tenant or member.tenant, build_id),
                      headers=member.bearer())
    body = assert_json(resp, 200)
    assert body.get("success") is True, show(resp)
    build = body.get("data", {}).get("build")
    assert isinstance(build, dict), show(resp)
    assert build.get("id") == build_id, show(resp)
    return build


def list_builds(server, member, tenant=None, **query):
    """data of GET .../builds with query; asserts 200."""
    resp = server.get(build_path(tenant or member.tenant),
                      headers=member.bearer(), params=query)
    body = assert_json(resp, 200)
    assert body.get("success") is True, show(resp)
    return body["data"]


def all_build_ids(server, member, tenant=None):
    """Ids of every build of the tenant, newest first (all pages)."""
    ids, cursor = [], None
    for _ in range(1000):
        q = {"limit": 100}
        if cursor:
            q["cursor"] = cursor
        data = list_builds(server, member, tenant, **q)
        ids += [b["id"] for b in data["builds"]]
        cursor = data["nextCursor"]
        if not cursor:
            return ids
    raise AssertionError("paging never ends")


def get_logs(server, member, build_id):
    """(response, text) of GET .../logs; asserts 200 and text/plain."""
    resp = server.get(build_path(member.tenant, build_id, "/logs"),
                      headers=member.bearer())
    assert resp.status_code == 200, show(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "text/plain", show(resp)
    return resp, resp.text


FINISHED = ("success", "failed", "cancelled")


def wait_build(server, member, build_id, statuses, timeout=60,
               seen=None):
    """Polls the build until its status is one of statuses; returns it.
    seen, a list, collects every status observed on the way."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    deadline = time.monotonic() + timeout
    history = []
    while True:
        build = get_build(server, member, build_id)
        if not history or history[-1] != build["status"]:
            history.append(build["status"])
            if seen is not None:
                seen.append(build["status"])
        if build["status"] in statuses:
            return build
        if time.monotonic() > deadline:
            raise AssertionError(
                "build %s not %s within %d s; statuses seen %r; last: %s"
                % (build_id, "/".join(statuses), timeout, history,
                   json.dumps(build, indent=1)))
        time.sleep(0.1)


# -- the blob folder ---------------------------------------------------------


def blob_path(data_dir, key):
    return Path(data_dir) / "blobs" / key


def files_under(data_dir, prefix):
    """Regular files under <data>/blobs/<prefix>, relative, sorted."""
    root = Path(data_dir) / "blobs" / prefix
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() or p.is_symlink())


def tmp_files(data_dir):
    """Whatever is in <data>/blobs/.tmp/ (in-flight writes)."""
    root = Path(data_dir) / "blobs" / ".tmp"
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def wait_tmp_empty(data_dir, timeout=10):
    """Polls <data>/blobs/.tmp/ until it is empty (a refused upload's
    temp file may go just after the answer); returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = tmp_files(data_dir)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# -- raw HTTP, for bodies the server must refuse before reading them ------


class RawAnswer:
    """What a raw request got: status (None if no status line came),
    head (the response bytes), sent (body bytes the server accepted),
    closed (the server closed or reset the connection), error (the
    socket error met, if any)."""

    def __init__(self):
        self.status = None
        self.head = b""
        self.sent = 0
        self.closed = False
        self.error = None

    def __repr__(self):
        return ("RawAnswer(status=%r, sent=%d, closed=%r, error=%r, "
                "head=%r)" % (self.status, self.sent, self.closed,
                              self.error, self.head[:600]))


def raw_request(base_url, head, body_chunks, timeout=60):
    """Sends the request head, then the body chunks as fast as the
    server takes them, reading the answer the moment it comes (so that
    an early answer is seen even if the server then closes).  Stops
    sending once an answer arrived.  Returns a RawAnswer."""
    u = urlsplit(base_url)
    ans = RawAnswer()
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        sock.sendall(head)
        sock.setblocking(False)
        chunks = iter(body_chunks)
        pending = b""
        body_done = False
        while time.monotonic() < deadline:
            if not pending and not body_done and not ans.head:
                try:
                    pending = next(chunks)
                except StopIteration:
                    body_done = True
            want_write = bool(pending) and not ans.head and not ans.closed
            r, w, _ = select.select([sock], [sock] if want_write else [],
                                    [], 0.5)
            if r:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError) as e:
                    ans.error = e
                    ans.closed = True
                    break
                except BlockingIOError:
                    data = None
                if data == b"":
                    ans.closed = True
                    break
                if data:
                    ans.head += data
                    if b"\r\n\r\n" in ans.head:
                        break
            if w and pending:
                try:
                    n = sock.send(pending)
                except BlockingIOError:
                    n = 0
                except (ConnectionResetError, BrokenPipeError) as e:
                    ans.error = e
                    ans.closed = True
                    # What the server said before closing may be there.
                    try:
                        data = sock.recv(65536)
                        ans.head += data or b""
                    except OSError:
                        pass
                    break
                ans.sent += n
                pending = pending[n:]
    finally:
        sock.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", ans.head)
    if m:
        ans.status = int(m.group(1))
    return ans


# -- publishing and the edge -------------------------------------------------

SITES_DOMAIN = "localhost"      # WHARF_SITES_DOMAIN's default


def site_host(tenant, domain=SITES_DOMAIN):
    """The Host of a tenant's current deployment."""
    return "%s.%s" % (tenant, domain)


def deployment_host(build_id, tenant, domain=SITES_DOMAIN):
    """The Host of one deployment forever (immutable URL)."""
    return "%s--%s.%s" % (build_id, tenant, domain)


def edge_request(server, host, path="/", method="GET", headers=None, **kw):
    """One request to the server's edge with Host: host, on a fresh
    session without proxies and without following redirects.  headers
    entries override requests' defaults (None removes one: pass
    {"Accept-Encoding": None} to send none)."""
    assert server.edge_url, "the server printed no edge line"
    h = {"Host": host}
    h.update(headers or {})
    with requests.Session() as s:
        s.trust_env = False
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        return s.request(method, server.edge_url + path, headers=h, **kw)


class RawResponse:
    """What edge_raw read: status, reason, headers (lowercase name ->
    list of values), body (bytes after the head), raw (all bytes)."""

    def __init__(self, raw):
        self.raw = raw
        head, sep, self.body = raw.partition(b"\r\n\r\n")
        self.status = None
        self.reason = ""
        self.headers = {}
        if not sep:
            self.body = b""
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0]) \
            if lines and lines[0] else None
        if m:
            self.status = int(m.group(1))
            self.reason = m.group(2)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(
                value.strip())

    def header(self, name):
        """The one value of header name (None when absent)."""
        values = self.headers.get(name.lower())
        if not values:
            return None
        assert len(values) == 1, "%s repeated: %r" % (name, values)
        return values[0]

    def __repr__(self):
        return "RawResponse(status=%r, headers=%r, body=%r)" % (
            self.status, self.headers, self.body[:600])


def edge_raw(server, request_bytes, timeout=30):
    """Sends request_bytes as they are (a request that asks for
    Connection: close) to the edge and reads until it closes; returns a
    RawResponse.  For request targets that clients would normalise."""
    sock = socket.create_connection(("127.0.0.1", server.edge_port),
                                    timeout=timeout)
    chunks = []
    try:
        sock.sendall(request_bytes)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    return RawResponse(b"".join(chunks))


def edge_raw_get(server, host, target, method="GET", headers=None):
    """edge_raw with a request line "METHOD target HTTP/1.1" (target a
    str sent as latin-1, or bytes), Host and Connection: close."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    head = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    head += b"Host: " + host.encode() + b"\r\n"
    for name, value in (headers or {}).items():
        head += ("%s: %s\r\n" % (name, value)).encode("latin-1")
    head += b"Connection: close\r\n\r\n"
    return edge_raw(server, head)


def wait_until(fn, timeout, what, interval=0.05):
    """Calls fn until it returns a true value, which is returned; fails
    with what (and fn's last value) after timeout seconds.  (A requests
    Response is false when its status is 4xx or 5xx: wrap it.)"""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %s s; last: %r"
                                 % (what, timeout, last))
        time.sleep(interval)


def deploy_files(server, member, files, timeout=60):
    """Uploads a ZIP of files ({name: content}) as member, waits for
    its build to succeed and returns the build (with its urls)."""
    data = upload_ok(server, member, make_zip(files))
    build = wait_build(server, member, data["build"]["id"], FINISHED,
                       timeout=timeout)
    assert build["status"] == "success", json.dumps(build, indent=1)
    return build


def list_deployments(server, member, tenant=None, **query):
    """data of GET /api/tenants/<t>/deployments; asserts 200."""
    resp = server.get("/api/tenants/%s/deployments"
                      % (tenant or member.tenant),
                      headers=member.bearer(), params=query)
    body = assert_json(resp, 200)
    assert body.get("success") is True, show(resp)
    return body["data"]


def activate(server, member, deployment_id, tenant=None):
    """POST .../deployments/<id>/activate; the response."""
    return server.post("/api/tenants/%s/deployments/%s/activate"
                       % (tenant or member.tenant, deployment_id),
                       headers=member.bearer())


def deployment_of_build(server, member, build_id, tenant=None):
    """The deployment (list entry) of build_id, from the first page."""
    data = list_deployments(server, member, tenant, limit=100)
    found = [d for d in data["deployments"] if d["buildId"] == build_id]
    assert len(found) == 1, (build_id, data)
    return found[0]


def read_blob_json(data_dir, key):
    return json.loads(blob_path(data_dir, key).read_text())


def object_files(data_dir, tenant):
    """Content-addressed objects of a tenant, without the .gz and .br
    variants."""
    return [f for f in files_under(data_dir, "tenants/%s/objects" % tenant)
            if not f.endswith((".gz", ".br"))]


def sha256_hex(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()
