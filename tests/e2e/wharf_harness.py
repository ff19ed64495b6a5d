"""Helpers for Wharf's end-to-end tests.

Starts `wharf serve` on ephemeral ports of 127.0.0.1, runs CLI commands
with the same environment, crafts JSON Web Tokens and parses the
Prometheus text format.  Only the standard library and requests.
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

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
    """

    def __init__(self, data_dir, env):
        self.data_dir = Path(data_dir)
        self.env = dict(env)
        self.log_path = self.data_dir.parent / (
            self.data_dir.name + "-server.log")
        self.proc = None
        self.base_url = None
        self.stdout_lines = []
        self._lines = queue.Queue()
        self._log_file = None
        self._reader = None

    # -- life cycle -------------------------------------------------

    def start(self):
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [WHARF_BIN, "serve"], env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._log_file)
        self._reader = threading.Thread(target=self._read_stdout,
                                        daemon=True)
        self._reader.start()
        LIVE_SERVERS.append(self)

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._abort("no 'api listening on' line within %d s"
                            % START_TIMEOUT)
            try:
                line = self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self._lines.empty():
                    self._abort("wharf serve exited with code %s before "
                                "listening" % self.proc.returncode)
                continue
            if line is None:
                self._abort("wharf serve closed stdout before listening")
            m = LISTEN_RE.search(line)
            if m:
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


def start_server(data_dir, env):
    return WharfServer(data_dir, env).start()


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
