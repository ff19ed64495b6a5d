#!/usr/bin/env python3
"""bench/edge's helper (standard library only): runs `wharf serve` on
ports 0 with a temporary data folder, makes a user, a tenant and a
token with the CLI, deploys sites through the API, and waits until the
edge serves them.  bench/soak imports it too.

    wharf_site.py edge WHARF WORK

writes the benchmark's three files (deterministic: same bytes on every
run) into WORK/site, deploys them as tenant `bench`, checks that the
edge serves each one byte for byte, writes WORK/ready
("EDGE_PORT API_PORT TENANT WHARF_PID") and keeps the server running
until it gets SIGTERM or SIGINT."""
import hashlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zipfile

# The benchmark's site: URL path -> size.  The script is fingerprinted
# (a hash in its name), so the edge marks it immutable.
HTML = "/index.html"
JS = "/assets/app-3f9a2c1b.js"
IMAGE = "/img/photo.png"
SIZES = {HTML: 2048, JS: 30 * 1024, IMAGE: 200 * 1024}


def fixed_text(size, unit):
    """unit repeated and cut to size bytes: text that compresses well."""
    reps = size // len(unit) + 1
    return (unit * reps)[:size]


def make_html(size):
    head = (b"<!doctype html><html lang=en><head><meta charset=utf-8>"
            b"<title>Wharf edge bench</title>"
            b"<script src=\"/assets/app-3f9a2c1b.js\" defer></script>"
            b"</head><body><h1>Wharf</h1>")
    tail = b"<img src=\"/img/photo.png\" alt=\"\"></body></html>\n"
    para = b"<p>The quick brown fox jumps over the lazy dog.</p>\n"
    return head + fixed_text(size - len(head) - len(tail), para) + tail


def make_js(size):
    out = io.BytesIO()
    i = 0
    while out.tell() < size:
        out.write(b"export function f%d(a, b) { return a * %d + b; }\n"
                  % (i, i))
        i += 1
    return out.getvalue()[:size]


def make_noise(size, seed=b"wharf-edge-bench"):
    """Incompressible, and the same on every run: SHA-256 in counter
    mode."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(seed + n.to_bytes(8, "big")).digest()
        n += 1
    return bytes(out[:size])


def bench_files():
    return {HTML: make_html(SIZES[HTML]), JS: make_js(SIZES[JS]),
            IMAGE: make_noise(SIZES[IMAGE])}


def write_site(folder, files):
    for path, data in files.items():
        full = os.path.join(folder, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)


# --- wharf serve and its API ---------------------------------------------

class Wharf:
    def __init__(self, binary, work, workers=1):
        self.binary = binary
        self.work = work
        data = os.path.join(work, "data")
        self.env = dict(os.environ, WHARF_DATA_DIR=data,
                        WHARF_LISTEN="127.0.0.1:0",
                        WHARF_EDGE_LISTEN="127.0.0.1:0",
                        WHARF_WORKERS=str(workers),
                        WHARF_LOG_LEVEL="warn",
                        JWT_SECRET="wharf-bench-secret-0123456789abcdefgh")
        self.log = open(os.path.join(work, "serve.log"), "w")
        self.proc = subprocess.Popen([binary, "serve"], env=self.env,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        self.api = self.edge = None
        while self.api is None or self.edge is None:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit(f"wharf serve exited; see {work}/serve.log")
            m = re.search(r"(api|edge) listening on "
                          r"http://127\.0\.0\.1:(\d+)", line)
            if m and m.group(1) == "api":
                self.api = int(m.group(2))
            elif m:
                self.edge = int(m.group(2))
        self.token = None

    def cli(self, *args, stdin=None):
        return subprocess.run([self.binary, *args], env=self.env,
                              input=stdin, text=True, capture_output=True,
                              check=True).stdout.strip()

    def add_tenant(self, tenant, email="bench@example.com"):
        try:
            self.cli("user", "add", email, stdin="bench-password-1\n")
        except subprocess.CalledProcessError:
            pass                # already there
        self.cli("tenant", "add", tenant)
        self.cli("member", "add", tenant, email, "owner")
        self.token = self.cli("token", email)

    def call(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.api,
                                          timeout=timeout)
        try:
            conn.request(method, path, body, {
                "Authorization": f"Bearer {self.token}", **(headers or {})})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, {"raw": data.decode(errors="replace")}

    def deploy(self, tenant, files, timeout=60):
        """Uploads files (path -> bytes) as a ZIP, waits for the build;
        returns the deployment's id."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(files):
                z.writestr(path.lstrip("/"), files[path])
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; "
                f"name=\"file\"; filename=\"site.zip\"\r\n"
                f"Content-Type: application/zip\r\n\r\n").encode() + \
            buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
        status, data = self.call("POST", f"/api/builds/{tenant}", body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 200:
            sys.exit(f"upload failed: {status} {data}")
        build = data["data"]["build"]["id"]
        end = time.monotonic() + timeout
        while True:
            status, data = self.call("GET",
                                     f"/api/builds/{tenant}/builds/{build}")
            state = data.get("data", {}).get("build", {}).get("status")
            if state == "success":
                break
            if state in ("failed", "cancelled") or time.monotonic() > end:
                sys.exit(f"build {build} ended {state}; see "
                         f"{self.work}/serve.log")
            time.sleep(0.05)
        status, data = self.call("GET",
                                 f"/api/tenants/{tenant}/deployments")
        for d in data["data"]["deployments"]:
            if d["buildId"] == build:
                return d["id"]
        sys.exit(f"no deployment for build {build}: {data}")

    def activate(self, tenant, deployment, timeout=30):
        status, _ = self.call(
            "POST", f"/api/tenants/{tenant}/deployments/{deployment}"
            "/activate", b"", timeout=timeout)
        return status

    def edge_get(self, tenant, path, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.edge,
                                                  timeout=10)
        conn.request("GET", path, headers={
            "Host": f"{tenant}.localhost", "Accept-Encoding": "identity"})
        resp = conn.getresponse()
        body = resp.read()
        if own:
            conn.close()
        return resp.status, body

    def wait_served(self, tenant, files, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.edge_get(tenant, p) == (200, b) for p, b in
                   files.items()):
                return
            time.sleep(0.01)
        sys.exit("the edge never served the deployed files")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def edge_main(binary, work):
    tenant = "bench"
    files = bench_files()
    write_site(os.path.join(work, "site"), files)
    wharf = Wharf(binary, work, workers=1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        wharf.add_tenant(tenant)
        wharf.deploy(tenant, files)
        wharf.wait_served(tenant, files)
        with open(os.path.join(work, "ready.tmp"), "w") as f:
            f.write(f"{wharf.edge} {wharf.api} {tenant} {wharf.proc.pid}\n")
        os.rename(os.path.join(work, "ready.tmp"),
                  os.path.join(work, "ready"))
        while wharf.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        wharf.stop()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "edge":
        sys.exit(__doc__)
    edge_main(os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]))
