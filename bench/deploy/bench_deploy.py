#!/usr/bin/env python3
"""bench/deploy: upload to first byte served by the edge, for a 247-file,
25 MB static site, then for a redeploy with one file changed.

The peer, in the same run: copying the same folder to a fresh folder on
the same disk and syncing it (cp -r + sync), the least a deploy can do.
Standard library only.  Usage: bench_deploy.py WHARF_BIN [ROUNDS]"""
import http.client
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def start_server(wharf, data):
    env = dict(os.environ, WHARF_DATA_DIR=data, WHARF_LISTEN="127.0.0.1:0",
               WHARF_EDGE_LISTEN="127.0.0.1:0", WHARF_WORKERS="2",
               WHARF_LOG_LEVEL="warn",
               JWT_SECRET="bench-deploy-secret-0123456789abcdefghij")
    proc = subprocess.Popen([wharf, "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(os.path.dirname(data), "serve.log"),
                                        "w"), text=True)
    api = edge = None
    while api is None or edge is None:
        line = proc.stdout.readline()
        if not line:
            sys.exit("wharf serve exited; see serve.log")
        m = re.search(r"(api|edge) listening on http://127\.0\.0\.1:(\d+)",
                      line)
        if m:
            if m.group(1) == "api":
                api = int(m.group(2))
            else:
                edge = int(m.group(2))
    return proc, env, api, edge


def cli(wharf, env, *args, stdin=None):
    return subprocess.run([wharf, *args], env=env, input=stdin, text=True,
                          capture_output=True, check=True).stdout.strip()


def zip_folder(folder):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for dirpath, _, files in os.walk(folder):
            for name in sorted(files):
                full = os.path.join(dirpath, name)
                z.write(full, os.path.relpath(full, folder))
    return buf.getvalue()


def upload(port, token, tenant, body):
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"site.zip\"\r\nContent-Type: application/zip\r\n\r\n")
    payload = head.encode() + body + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("POST", f"/api/builds/{tenant}", payload, {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    if resp.status != 200:
        sys.exit(f"upload failed: {resp.status} {data}")
    return data["data"]["build"]["id"]


def wait_served(port, tenant, marker, deadline=60):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        conn.request("GET", "/", headers={"Host": f"{tenant}.localhost"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200 and marker.encode() in body:
            return
        time.sleep(0.002)
    sys.exit(f"the edge never served {marker}")


def set_marker(site, n):
    path = os.path.join(site, "index.html")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(re.sub(r"<p id=v>v\d+</p>", f"<p id=v>v{n}</p>", text))
    return f"<p id=v>v{n}</p>"


def deploy_once(api, edge, token, tenant, site, n):
    marker = set_marker(site, n)
    body = zip_folder(site)            # the client's work, not timed
    t0 = time.monotonic()
    upload(api, token, tenant, body)
    wait_served(edge, tenant, marker)
    return time.monotonic() - t0


def copy_once(site, work):
    dest = os.path.join(work, "copy")
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run(["cp", "-r", site, dest], check=True)
    subprocess.run(["sync", "-f", dest], check=True)
    return time.monotonic() - t0


def main():
    wharf = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = tempfile.mkdtemp(prefix="wharf-bench-deploy-")
    data = os.path.join(work, "data")
    site = os.path.join(work, "site")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_site.py"), site],
                   check=True)
    proc, env, api, edge = start_server(wharf, data)
    try:
        cli(wharf, env, "user", "add", "bench@example.com",
            stdin="bench-password\n")
        first, again, copies = [], [], []
        for r in range(rounds):
            tenant = f"bench{r}"
            cli(wharf, env, "tenant", "add", tenant)
            cli(wharf, env, "member", "add", tenant, "bench@example.com",
                "owner")
            token = cli(wharf, env, "token", "bench@example.com")
            first.append(deploy_once(api, edge, token, tenant, site, 2 * r))
            again.append(deploy_once(api, edge, token, tenant, site,
                                     2 * r + 1))
            copies.append(copy_once(site, work))
        f, a, c = (statistics.median(x) for x in (first, again, copies))
        print(f"site: 247 files, {sum(os.path.getsize(os.path.join(d, n)) for d, _, fs in os.walk(site) for n in fs) / 1e6:.1f} MB; rounds: {rounds}")
        print(f"first deploy, upload to first byte: median {f:.3f} s "
              f"(runs {', '.join(f'{x:.3f}' for x in first)}) "
              f"goal < 1 s: {'PASS' if f < 1 else 'FAIL'}")
        print(f"redeploy, one file changed:         median {a:.3f} s "
              f"(runs {', '.join(f'{x:.3f}' for x in again)}) "
              f"goal < 0.3 s: {'PASS' if a < 0.3 else 'FAIL'}")
        print(f"peer: cp -r + sync of the folder:   median {c:.3f} s; "
              f"first deploy / copy = {f / c:.2f}, redeploy / copy = "
              f"{a / c:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
