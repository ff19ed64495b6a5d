"""The build pipeline end to end, through the API (issue 4's list).

A ZIP made here goes up through POST /api/builds/<tenant>; the test
polls the build until it is finished and then reads the build's JSON
and its log (GET .../logs).  There is no edge yet, so what a build saw
inside its sandbox reaches the test through the log: the test projects
print their findings as tagged lines ("FINDING name json", "ENVJSON
{...}", "CHECK ...") that the test parses.  What the host must look like
afterwards (no stray file, no stray process, no workspace left) the
test checks on the host itself.

The module's server is `wharf serve` with two workers and the default
limits; the hanging build gets a server of its own with
WHARF_BUILD_TIMEOUT=3.  Node builds need bubblewrap and node/npm; the
Next.js build also needs the npm registry (probed with `npm view`), and
is marked `slow`.
"""

import hashlib
import io
import json
import os
import random
import re
import shutil
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

import wharf_harness as wh

BWRAP = "/usr/bin/bwrap"
NODE = shutil.which("node")
NPM = shutil.which("npm")
HAVE_NODE_SANDBOX = (os.access(BWRAP, os.X_OK) and NODE is not None
                     and NPM is not None)
needs_node_sandbox = pytest.mark.skipif(
    not HAVE_NODE_SANDBOX,
    reason="node builds run under bubblewrap (%s) with node and npm from "
           "/usr; bwrap present: %s, node: %s, npm: %s"
           % (BWRAP, os.access(BWRAP, os.X_OK), NODE, NPM))

# Generous deadlines: builds that install nothing start npm twice; the
# Next.js build downloads next, react and react-dom first.
NODE_BUILD_TIMEOUT = 300
NEXT_BUILD_TIMEOUT = 1500
QUICK_TIMEOUT = 120

# Next.js 14.2 runs on node >= 18.17 (node 20 here); react 18.3 with it.
NEXT_VERSION = "14.2.35"
REACT_VERSION = "18.3.1"

STEPS = ("validate", "started", "workspace", "fetch", "extract",
         "discover", "framework", "install", "environment", "nextjs",
         "build", "output", "publish")

STAMP_RE = re.compile(r"^\[\s*\d+(?:\.\d+)?s\] ?")
STEP_RE = re.compile(r"^step (\d+)/(\d+) ([a-z]+): (ok|skipped|failed) "
                     r"in \d+ ms$")


@pytest.fixture(scope="module")
def server_env():
    return {"WHARF_WORKERS": "2"}


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


# -- helpers ------------------------------------------------------------------


def marker(prefix="m"):
    return wh.unique(prefix)


def log_lines(text):
    """The log's lines without their "[  1.23s] " stamps."""
    return [STAMP_RE.sub("", line, count=1) for line in text.splitlines()]


def step_outcomes(lines):
    """{step name: ok/skipped/failed} from the "step N/13 NAME: ..."
    lines; asserts each step is reported once at most."""
    out = {}
    for line in lines:
        m = STEP_RE.match(line)
        if m:
            assert m.group(2) == str(len(STEPS)), line
            assert STEPS[int(m.group(1)) - 1] == m.group(3), line
            assert m.group(3) not in out, "step reported twice: " + line
            out[m.group(3)] = m.group(4)
    return out


def tagged(lines, tag):
    """The rest of every line that starts with tag + " "."""
    return [line[len(tag) + 1:] for line in lines
            if line.startswith(tag + " ")]


def findings(lines):
    """{name: value} of the "FINDING name json" lines."""
    out = {}
    for rest in tagged(lines, "FINDING"):
        name, _, value = rest.partition(" ")
        out[name] = json.loads(value)
    return out


def sandbox_lines(lines):
    return [line for line in lines if line.startswith("sandbox: ")]


def package_json(scripts, dependencies=None, name="e2e-site"):
    pkg = {"name": name, "version": "1.0.0", "private": True,
           "scripts": scripts}
    if dependencies:
        pkg["dependencies"] = dependencies
    return json.dumps(pkg, indent=2) + "\n"


FINAL_RE = re.compile(r"^build (succeeded|failed|stopped) after "
                      r"\d+(?:\.\d+)? s$")


def wait_full_log(server, member, build_id, timeout=30):
    """The build's log once it holds its last line ("build succeeded
    after ..."), polled: the worker writes that line after it recorded
    the build's final status."""
    deadline = time.monotonic() + timeout
    while True:
        _, text = wh.get_logs(server, member, build_id)
        if any(FINAL_RE.match(line) for line in log_lines(text)):
            return text
        assert time.monotonic() < deadline, \
            "the log of %s never got its last line:\n%s" % (build_id, text)
        time.sleep(0.1)


def run_build(server, member, zip_bytes, build_config=None,
              timeout=NODE_BUILD_TIMEOUT):
    """Uploads, waits until finished; returns (build, log text, lines),
    the log whole."""
    data = wh.upload_ok(server, member, zip_bytes,
                        build_config=build_config)
    bid = data["build"]["id"]
    b = wh.wait_build(server, member, bid, wh.FINISHED, timeout=timeout)
    text = wait_full_log(server, member, bid)
    return b, text, log_lines(text)


def explain(b, text):
    return "build: %s\n--- build log ---\n%s" % (json.dumps(b, indent=1),
                                                  text)


def workspace(server, build_id):
    return Path(server.data_dir) / "work" / build_id


def wait_gone(path, timeout=15):
    """Polls until path no longer exists; True if it went."""
    deadline = time.monotonic() + timeout
    while os.path.lexists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def assert_workspace_gone(server, b):
    ws = workspace(server, b["id"])
    assert wait_gone(ws), "workspace %s left after the build: %r" % (
        ws, sorted(str(p) for p in ws.rglob("*"))[:50])


def assert_succeeded(b, text):
    assert b["status"] == "success", explain(b, text)
    assert b["progress"] == 100, explain(b, text)
    assert b["attempts"] == 1, explain(b, text)
    assert b["errorMessage"] is None and b["errorStep"] is None, \
        explain(b, text)


def assert_failed_once(server, member, b, text, step):
    """Failed at step, one attempt, and not retried: a retry would
    start after the queue's 2 s backoff, so it stays so for 4 s."""
    assert b["status"] == "failed", explain(b, text)
    assert b["errorStep"] == step, explain(b, text)
    assert b["attempts"] == 1, explain(b, text)
    assert b["progress"] < 100, explain(b, text)
    assert isinstance(b["errorMessage"], str) and b["errorMessage"], \
        explain(b, text)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        again = wh.get_build(server, member, b["id"])
        assert again["status"] == "failed" and again["attempts"] == 1, \
            again
        time.sleep(0.25)


def host_processes(match):
    """(pid, argv) of every host process whose argv satisfies
    match(argv), this test's own process excepted."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if not raw:
            continue        # a kernel thread, or a zombie
        argv = [a.decode("utf-8", "replace")
                for a in raw.rstrip(b"\0").split(b"\0")]
        if match(argv):
            found.append((int(entry), argv))
    return found


def processes_with(word):
    return host_processes(lambda argv: any(word in a for a in argv))


def kill_all(procs):
    """Cleanup after a failed check: ends the stray processes found."""
    for pid, _ in procs:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def sleep_arg():
    """A `sleep` argument no other process on the machine has:
    1007.<8 random digits> seconds."""
    return "1007.%08d" % random.randrange(10 ** 8)


# -- 1. a plain static site ------------------------------------------------------


def test_static_site_in_a_nested_folder(server, owner):
    m = marker("static-")
    files = {
        "mysite/public/index.html":
            "<!doctype html><html><head><link rel=stylesheet "
            "href=css/site.css><title>%s</title></head><body><h1>%s</h1>"
            "</body></html>\n" % (m, m),
        "mysite/public/css/site.css": "h1 { color: teal; }\n",
        "mysite/public/blog/first/index.html": "<p>first post</p>\n",
        "mysite/README.txt": "not a site\n",
    }
    b, text, lines = run_build(server, owner, wh.make_zip(files),
                               timeout=QUICK_TIMEOUT)
    assert_succeeded(b, text)
    assert b["framework"] == "static", explain(b, text)
    assert not b["buildCommand"], explain(b, text)

    steps = step_outcomes(lines)
    want = {s: "ok" for s in STEPS}
    for s in ("install", "environment", "nextjs", "build"):
        want[s] = "skipped"
    assert steps == want, explain(b, text)
    assert "project folder: mysite/public (static site)" in lines, \
        explain(b, text)
    assert any(line.startswith("output folder ") and
               line.endswith(": 3 files") for line in lines), \
        explain(b, text)
    # No command ran: nothing went through the sandbox.
    assert sandbox_lines(lines) == [], explain(b, text)
    assert not [line for line in lines if line.startswith("$ ")], \
        explain(b, text)
    assert_workspace_gone(server, b)


def test_log_is_whole_once_the_build_is_finished(server, owner):
    # Someone following a build reads its log when its status turns
    # final: by then every step's outcome must be in it.  The log is
    # read right after the poll that sees the final status.  Each ZIP
    # carries 8,000 small files beside the site (extracted, not
    # published), so that whatever the worker does after the build
    # (removing its workspace) takes a moment.
    files = wh.static_site_files(root="mysite/public/")
    for i in range(8000):
        files["mysite/notes/%02d/note-%04d.txt" % (i // 100, i)] = "n\n"
    z = wh.make_zip(files, zipfile.ZIP_STORED)
    for i in range(3):
        bid = wh.upload_ok(server, owner, z)["build"]["id"]
        deadline = time.monotonic() + QUICK_TIMEOUT
        while True:
            b = wh.get_build(server, owner, bid)
            if b["status"] in wh.FINISHED:
                break
            assert time.monotonic() < deadline, b
            time.sleep(0.005)
        _, text = wh.get_logs(server, owner, bid)
        steps = step_outcomes(log_lines(text))
        assert b["status"] == "success", explain(b, wait_full_log(
            server, owner, bid))
        assert steps.get("output") == "ok", (
            "build %d: status %r, but the log read right then lacks the "
            "steps' outcomes: %s" % (i, b["status"], explain(b, text)))


# -- 2. a node project without dependencies -------------------------------------------


BUILD_JS = r"""
const fs = require('fs');
fs.mkdirSync('dist/assets', { recursive: true });
fs.writeFileSync('dist/index.html',
  '<!doctype html><title>%(m)s</title><script src=assets/app.js></script>\n');
fs.writeFileSync('dist/assets/app.js', 'console.log("%(m)s");\n');
console.log('BUILT %(m)s with node ' + process.version);
"""


@needs_node_sandbox
def test_node_project_writes_dist(server, owner):
    m = marker("node-")
    files = {
        "package.json": package_json({"build": "node build.js"}),
        "build.js": BUILD_JS % {"m": m},
        "src/notes.md": "sources\n",
    }
    b, text, lines = run_build(server, owner, wh.make_zip(files))
    assert_succeeded(b, text)
    assert b["framework"] == "node", explain(b, text)
    assert b["outputDir"] == "dist", explain(b, text)
    assert b["buildCommand"] == "npm run build", explain(b, text)

    steps = step_outcomes(lines)
    want = {s: "ok" for s in STEPS}
    want["nextjs"] = "skipped"
    assert steps == want, explain(b, text)
    assert any(line.startswith("BUILT %s with node v" % m)
               for line in lines), explain(b, text)
    assert "$ npm install" in lines, explain(b, text)
    assert "$ npm run build" in lines, explain(b, text)
    assert any(line.startswith("output folder dist: 2 files")
               for line in lines), explain(b, text)

    # Two commands, both sandboxed: the install with the network, the
    # build without.
    sb = sandbox_lines(lines)
    assert len(sb) == 2, explain(b, text)
    assert all("sandbox=bwrap" in line for line in sb), explain(b, text)
    assert "network=host" in sb[0], explain(b, text)
    assert "network=none" in sb[1], explain(b, text)
    assert_workspace_gone(server, b)


# -- 3. a failing build ---------------------------------------------------------------


@needs_node_sandbox
def test_failing_build_reports_step_code_and_last_lines(server, owner):
    m = marker("last-words-")
    script = ("node -e \"console.log('building...'); console.log('%s'); "
              "process.exit(3)\"" % m)
    files = {"package.json": package_json({"build": script}),
             "index.html": "<p>never published</p>\n"}
    b, text, lines = run_build(server, owner, wh.make_zip(files))
    assert_failed_once(server, owner, b, text, "build")
    msg = b["errorMessage"]
    assert "exited with 3" in msg, explain(b, text)
    assert "npm run build" in msg, explain(b, text)
    # The script's last output is in the message, so the user sees why.
    assert m in msg, explain(b, text)
    assert msg.index("exited with 3") < msg.index(m), explain(b, text)

    steps = step_outcomes(lines)
    assert steps.get("build") == "failed", explain(b, text)
    assert "output" not in steps and "publish" not in steps, \
        explain(b, text)
    assert m in lines, explain(b, text)
    assert any(line.startswith("error: ") and "exited with 3" in line
               for line in lines), explain(b, text)
    assert_workspace_gone(server, b)


# -- 4. a hanging build ---------------------------------------------------------------


def test_process_scanner_sees_a_marked_process():
    # The checks below look for processes by their command line; this
    # shows the scan finds one that exists.
    arg = sleep_arg()
    p = subprocess.Popen(["sleep", arg])
    try:
        # Until the child has exec'd, /proc shows python's command line.
        deadline = time.monotonic() + 10
        while True:
            found = host_processes(lambda argv: argv == ["sleep", arg])
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert [pid for pid, _ in found] == [p.pid], found
    finally:
        p.kill()
        p.wait()
    assert host_processes(lambda argv: argv == ["sleep", arg]) == []


@needs_node_sandbox
def test_hanging_build_is_stopped_at_the_limit(wenv):
    srv = wenv.serve({"WHARF_WORKERS": "1", "WHARF_BUILD_TIMEOUT": "3"})
    member = wh.make_member(srv.cli, "owner")
    m = marker("hang-")
    # The marker is a dummy argument: node ignores it, /proc shows it.
    script = "node -e \"setInterval(() => {}, 1000)\" %s" % m
    files = {"package.json": package_json({"build": script}),
             "index.html": "<p>never published</p>\n"}
    bid = wh.upload_ok(srv, member, wh.make_zip(files))["build"]["id"]

    seen_running = False
    deadline = time.monotonic() + NODE_BUILD_TIMEOUT
    while True:
        b = wh.get_build(srv, member, bid)
        if b["status"] in wh.FINISHED:
            break
        if not seen_running and processes_with(m):
            seen_running = True
        assert time.monotonic() < deadline, b
        time.sleep(0.05)
    left = processes_with(m)
    kill_all(left)
    text = wait_full_log(srv, member, bid)

    assert_failed_once(srv, member, b, text, "build")
    msg = b["errorMessage"]
    assert "took longer than 3 s" in msg, explain(b, text)
    assert "stopped" in msg, explain(b, text)
    assert left == [], "processes of the stopped build are still " \
        "running: %r\n%s" % (left, explain(b, text))
    lines = log_lines(text)
    assert step_outcomes(lines).get("build") == "failed", explain(b, text)
    assert any("timeout=3s" in line for line in sandbox_lines(lines)), \
        explain(b, text)
    assert_workspace_gone(srv, b)
    # Not an assertion on the build: the scan ran while it ran, and
    # should have seen the command (it sleeps for 3 s).
    if not seen_running:
        print("note: the hanging command was not seen while it ran")


# -- 5. a hostile build script ------------------------------------------------------------


HOSTILE_JS = r"""
'use strict';
const fs = require('fs');
const net = require('net');
const dns = require('dns');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const cp = require('child_process');

const probe = JSON.parse(fs.readFileSync(path.join(__dirname, 'probe.json'),
                                         'utf8'));
const found = {};

function note(name, value) {
  found[name] = value;
  console.log('FINDING ' + name + ' ' + JSON.stringify(value));
}

function attempt(fn) {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    return { ok: false, code: e.code || String(e) };
  }
}

function sha256(s) {
  return crypto.createHash('sha256').update(s).digest('hex');
}

async function main() {
  // (a) secrets: the server's environment, its files, /root.
  note('env_names', Object.keys(process.env).sort());
  note('env_has_jwt_secret', 'JWT_SECRET' in process.env);
  note('env_holds_secret', Object.values(process.env).some(
    (v) => sha256(v) === probe.secret_sha256 ||
           v.includes(probe.secret_head)));
  for (const [name, file] of Object.entries(probe.read)) {
    note('read_' + name, attempt(() => {
      const data = fs.readFileSync(file);
      return { bytes: data.length,
               head: data.subarray(0, 48).toString('latin1') };
    }));
  }
  for (const [name, dir] of Object.entries(probe.list)) {
    note('list_' + name, attempt(() => fs.readdirSync(dir).slice(0, 50)));
  }
  // Other processes' environments, as far as /proc shows them.
  const procs = [];
  let environ_secret = false;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    const cmd = attempt(() => fs.readFileSync('/proc/' + pid + '/cmdline',
                                              'latin1'));
    if (cmd.ok) procs.push(cmd.value.split('\0').join(' ').trim()
                             .slice(0, 200));
    const env = attempt(() => fs.readFileSync('/proc/' + pid + '/environ',
                                              'latin1'));
    if (env.ok && env.value.includes('JWT_SECRET=')) environ_secret = true;
  }
  note('proc_cmdlines', procs);
  note('proc_environ_has_jwt_secret', environ_secret);

  // (b) writing outside the workspace.
  for (const [name, file] of Object.entries(probe.write)) {
    note('write_' + name, attempt(() => {
      fs.writeFileSync(file, 'escaped ' + probe.marker + '\n');
      return file;
    }));
  }

  // (c) the network: the API over loopback, a name lookup, interfaces.
  note('api_connect', await new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: probe.api_port });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); },
                             5000);
    s.on('connect', () => {
      clearTimeout(timer); s.destroy(); resolve('connected');
    });
    s.on('error', (e) => { clearTimeout(timer); resolve('error:' + e.code); });
  }));
  note('dns_lookup', await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 5000);
    dns.lookup(probe.lookup, (err, addr) => {
      clearTimeout(timer);
      resolve(err ? 'error:' + err.code : 'resolved:' + addr);
    });
  }));
  note('interfaces', Object.keys(os.networkInterfaces()).sort());

  // (d) processes left behind: a detached child, and a shell's
  // background job in a session of its own.
  const a = cp.spawn('sleep', [probe.sleep_detached],
                     { detached: true, stdio: 'ignore' });
  a.unref();
  const b = cp.spawn('sh', ['-c', 'sleep ' + probe.sleep_shell + ' &'],
                     { detached: true, stdio: 'ignore' });
  b.unref();
  note('spawned', { detached: a.pid, shell: b.pid });

  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/index.html',
    '<!doctype html><title>' + probe.marker + '</title><pre>' +
    JSON.stringify(found, null, 1).replace(/</g, '&lt;') + '</pre>\n');
  console.log('HOSTILE-DONE ' + probe.marker);
}

main().then(() => process.exit(0), (e) => {
  console.log('HOSTILE-CRASHED ' + (e && e.stack || e));
  process.exit(1);
});
"""


@needs_node_sandbox
def test_hostile_build_script_is_contained(server, owner):
    data = Path(server.data_dir)
    m = marker("hostile-")
    api_port = int(server.base_url.rsplit(":", 1)[1])
    sleep_detached, sleep_shell = sleep_arg(), sleep_arg()

    # The server takes its secret from JWT_SECRET; a jwt_secret file is
    # planted beside the database so that a data dir in view would
    # show it.  Likewise a folder standing for another build's
    # workspace.
    assert (data / "wharf.db").is_file()
    secret_file = data / "jwt_secret"
    planted = not secret_file.exists()
    canary = "canary-" + m
    if planted:
        secret_file.write_text(canary + "\n")
        secret_file.chmod(0o600)
    other_ws = data / "work" / ("other-build-" + m)
    other_ws.mkdir(parents=True)
    (other_ws / "secret.txt").write_text(canary + "\n")

    escapes = {
        "tmp": "/tmp/escape-%s" % m,
        "data": str(data / ("escape-" + m)),
        "work": str(data / "work" / ("escape-" + m)),
        "data_parent": str(data.parent / ("escape-" + m)),
        "etc": "/etc/escape-%s" % m,
        "root": "/root/escape-%s" % m,
    }
    probe = {
        "marker": m,
        "secret_sha256": hashlib.sha256(wh.TEST_SECRET.encode()).hexdigest(),
        "secret_head": wh.TEST_SECRET[:16],
        "api_port": api_port,
        "lookup": "registry.npmjs.org",
        "read": {"jwt_secret": str(secret_file),
                 "db": str(data / "wharf.db"),
                 "other_build": str(other_ws / "secret.txt"),
                 "shadow": "/etc/shadow"},
        "list": {"root": "/root", "data": str(data),
                 "work": str(data / "work")},
        "write": escapes,
        "sleep_detached": sleep_detached,
        "sleep_shell": sleep_shell,
    }
    files = {
        "package.json": package_json({"build": "node hostile.js"}),
        "hostile.js": HOSTILE_JS,
        "probe.json": json.dumps(probe, indent=1) + "\n",
    }
    try:
        b, text, lines = run_build(server, owner, wh.make_zip(files))
        # Measured on the host as soon as the build is over.
        left = host_processes(lambda argv: argv[:1] == ["sleep"] and
                              argv[1:2] in ([sleep_detached],
                                            [sleep_shell]))
        escaped = {k: p for k, p in escapes.items() if os.path.lexists(p)}
    finally:
        if planted:
            secret_file.unlink()
        shutil.rmtree(other_ws)
    kill_all(left)
    for p in escaped.values():
        os.unlink(p)

    assert_succeeded(b, text)
    assert "HOSTILE-DONE " + m in lines, explain(b, text)
    f = findings(lines)
    why = explain(b, text)

    # Nothing the sandbox did reached the host.
    assert escaped == {}, "files written outside the workspace: %r\n%s" % (
        escaped, why)
    assert left == [], "processes left behind by the build: %r\n%s" % (
        left, why)

    # (a) secrets
    assert f["env_has_jwt_secret"] is False, why
    assert f["env_holds_secret"] is False, why
    assert f["proc_environ_has_jwt_secret"] is False, why
    names = set(f["env_names"])
    assert not [n for n in names if n.startswith("WHARF_")], why
    # Nothing of the server's own environment but the safe set (and
    # what npm and the shell set themselves).
    own = {"PATH", "HOME", "LANG", "TMPDIR", "CI", "PWD", "SHLVL", "_",
           "NODE_ENV", "NODE", "INIT_CWD", "COLOR", "EDITOR"}
    leaked = sorted(n for n in names & set(server.env)
                    if n not in own and not n.startswith("npm_"))
    assert leaked == [], "server variables seen by the build: %r\n%s" % (
        leaked, why)
    for name in probe["read"]:
        assert f["read_" + name]["ok"] is False, (name, why)
    host_root = set(os.listdir("/root"))
    r = f["list_root"]
    assert not r["ok"] or not set(r["value"]) & host_root, why
    for name in ("data", "work"):
        r = f["list_" + name]
        if r["ok"]:
            seen = set(r["value"])
            assert not seen & {"wharf.db", "jwt_secret", "blobs", "cache",
                               other_ws.name}, (name, why)
    # The server is not among the processes the build can see.
    assert f["proc_cmdlines"], why
    assert not [c for c in f["proc_cmdlines"]
                if c.startswith(wh.WHARF_BIN)], why
    assert wh.TEST_SECRET not in text, "the secret is in the build log"
    assert canary not in text, why

    # (c) no network in the build step
    assert f["api_connect"] != "connected", why
    assert f["api_connect"].startswith("error:"), why
    assert not f["dns_lookup"].startswith("resolved:"), why
    assert f["interfaces"] in ([], ["lo"]), why
    sb = sandbox_lines(lines)
    assert sb and "network=none" in sb[-1], why

    # (d) the children were started (and are gone, checked above)
    assert isinstance(f["spawned"]["detached"], int), why
    assert_workspace_gone(server, b)


# -- 6. environment variables ------------------------------------------------------------


ENV_JS = r"""
const fs = require('fs');
const pick = {};
for (const k of ['GREETING', 'QUOTED', 'NODE_ENV', 'NEXT_PUBLIC_TENANT_ID',
                 'NEXT_PUBLIC_BUILD_ID']) pick[k] = process.env[k];
console.log('ENVJSON ' + JSON.stringify(pick));
const text = fs.readFileSync('.env.production', 'utf8');
const lines = text.split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const vars = lines.filter((l) => !l.startsWith('#'));
const bad = vars.filter((l) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(l));
console.log('ENVFILE ' + JSON.stringify({
  lines: lines.length, vars: vars.length, bad: bad,
  names: vars.map((l) => l.split('=')[0]),
  endsWithNewline: text.endsWith('\n') }));
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', '<p>env</p>\n');
"""


@needs_node_sandbox
def test_environment_variables_reach_the_build(server, owner):
    user_vars = {"GREETING": "hello world", "QUOTED": "a\"b$c`d\\e"}
    files = {"web/package.json": package_json({"build": "node env.js"}),
             "web/env.js": ENV_JS}
    b, text, lines = run_build(
        server, owner, wh.make_zip(files),
        build_config={"environmentVariables": user_vars})
    assert_succeeded(b, text)
    assert sorted(b["environmentVariables"]) == ["GREETING", "QUOTED"], \
        explain(b, text)

    got = tagged(lines, "ENVJSON")
    assert len(got) == 1, explain(b, text)
    env = json.loads(got[0])
    assert env == {"GREETING": "hello world", "QUOTED": "a\"b$c`d\\e",
                   "NODE_ENV": "production",
                   "NEXT_PUBLIC_TENANT_ID": owner.tenant,
                   "NEXT_PUBLIC_BUILD_ID": b["id"]}, explain(b, text)

    got = tagged(lines, "ENVFILE")
    assert len(got) == 1, explain(b, text)
    envfile = json.loads(got[0])
    # One line a variable (comments aside): no value added a line.
    assert envfile["bad"] == [], explain(b, text)
    assert envfile["vars"] == 5, explain(b, text)
    assert sorted(envfile["names"]) == sorted(
        ["NODE_ENV", "NEXT_PUBLIC_BUILD_ID", "NEXT_PUBLIC_TENANT_ID",
         "GREETING", "QUOTED"]), explain(b, text)
    assert envfile["endsWithNewline"] is True, explain(b, text)
    assert_workspace_gone(server, b)


# -- 7. a real Next.js app --------------------------------------------------------------------


def registry_reachable():
    """(True, version) if `npm view react version` answers, else
    (False, why)."""
    if NPM is None:
        return False, "npm is not installed"
    try:
        cp = subprocess.run([NPM, "view", "react", "version"],
                            capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "`npm view react version` did not answer in 60 s"
    if cp.returncode != 0 or not re.match(r"^\d+\.\d+", cp.stdout.strip()):
        return False, "`npm view react version` failed (exit %s): %s" % (
            cp.returncode, (cp.stderr or cp.stdout).strip()[-500:])
    return True, cp.stdout.strip()


NEXT_CONFIG_JS = r"""/** The user's own config: its env setting must survive. */
module.exports = {
  env: { CUSTOM_KEY: '%(kept)s' },
  reactStrictMode: true,
};
"""

NEXT_INDEX_JS = r"""import Image from 'next/image';

export default function Home() {
  return (
    <main>
      <h1 id="kept">{process.env.CUSTOM_KEY}</h1>
      <p id="tenant">{process.env.NEXT_PUBLIC_TENANT_ID}</p>
      <Image src="/dot.png" width={1} height={1} alt="dot" />
    </main>
  );
}
"""

NEXT_ABOUT_JS = r"""export default function About() {
  return <p id="about">about page</p>;
}
"""

# Runs after `next build`, in the sandbox: reports what the export holds.
NEXT_CHECK_JS = r"""
const fs = require('fs');
function read(p) { try { return fs.readFileSync(p, 'utf8'); } catch (e) {
  return null; } }
const index = read('out/index.html');
const about = read('out/about/index.html');
const pick = (re) => { const m = index && index.match(re); return m ?
  m[1] : null; };
console.log('CHECK ' + JSON.stringify({
  index: index !== null,
  kept: pick(/<h1 id="kept">([^<]*)<\/h1>/),
  tenant: pick(/<p id="tenant">([^<]*)<\/p>/),
  img: pick(/<img[^>]*src="([^"]*)"/),
  about: about !== null && about.includes('about page'),
  userConfigKept: fs.existsSync('next.config.wharf-user.js'),
}));
"""

# 1x1 PNG, grey.
DOT_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a4944415478da63f80f00010101001b6dcd6e0000000049454e44ae426082")


@pytest.mark.slow
@needs_node_sandbox
def test_nextjs_app_exported_with_its_own_config(server, owner):
    ok, why = registry_reachable()
    if not ok:
        pytest.skip("the npm registry is not reachable: %s" % why)
    kept = marker("kept-")
    files = {
        "package.json": package_json(
            {"build": "next build && node check.js"},
            {"next": NEXT_VERSION, "react": REACT_VERSION,
             "react-dom": REACT_VERSION}, name="next-e2e"),
        "next.config.js": NEXT_CONFIG_JS % {"kept": kept},
        "pages/index.js": NEXT_INDEX_JS,
        "pages/about.js": NEXT_ABOUT_JS,
        "public/dot.png": DOT_PNG,
        "check.js": NEXT_CHECK_JS,
    }
    b, text, lines = run_build(server, owner, wh.make_zip(files),
                               timeout=NEXT_BUILD_TIMEOUT)
    assert_succeeded(b, text)
    assert b["framework"] == "next", explain(b, text)
    assert b["outputDir"] == "out", explain(b, text)

    steps = step_outcomes(lines)
    assert steps == {s: "ok" for s in STEPS}, explain(b, text)
    assert "$ npm install" in lines, explain(b, text)
    assert any(line.startswith("next.config: wrapped your next.config.js")
               for line in lines), explain(b, text)

    got = tagged(lines, "CHECK")
    assert len(got) == 1, explain(b, text)
    check = json.loads(got[0])
    assert check["index"] is True, explain(b, text)
    # The user's setting survived the wrapping...
    assert check["kept"] == kept, explain(b, text)
    assert check["userConfigKept"] is True, explain(b, text)
    # ... and the export settings were added: trailing slashes make
    # about/index.html, unoptimized images keep the plain src.
    assert check["about"] is True, explain(b, text)
    assert check["img"] == "/dot.png", explain(b, text)
    assert check["tenant"] == owner.tenant, explain(b, text)
    assert any(line.startswith("output folder out: ") for line in lines), \
        explain(b, text)
    assert_workspace_gone(server, b)


# -- 8. the npm cache is kept per tenant ----------------------------------------------------


@needs_node_sandbox
def test_rebuild_reuses_the_tenants_npm_cache(server, owner, cli):
    files = {"package.json": package_json({"build": "node build.js"}),
             "build.js": BUILD_JS % {"m": marker("cache-")}}
    z = wh.make_zip(files)
    reused = "npm cache of %s reused" % owner.tenant

    first, text, lines = run_build(server, owner, z)
    assert_succeeded(first, text)
    assert reused not in lines, explain(first, text)
    cache = Path(server.data_dir) / "cache" / "npm" / owner.tenant
    assert cache.is_dir(), "no npm cache kept at %s\n%s" % (
        cache, explain(first, text))

    second, text, lines = run_build(server, owner, z)
    assert_succeeded(second, text)
    assert reused in lines, explain(second, text)
    assert cache.is_dir(), explain(second, text)

    # Another tenant does not get this one's cache.
    other = wh.make_member(cli, "owner")
    third, text, lines = run_build(server, other, z)
    assert_succeeded(third, text)
    assert not [line for line in lines if "npm cache of" in line and
                "reused" in line], explain(third, text)


# -- 9. hostile ZIPs ---------------------------------------------------------------------------


def hostile_zip(kind, m):
    """(ZIP bytes, the entry name the error must name) of one kind."""
    site = [(name, content.encode()) for name, content in
            wh.static_site_files(m).items()]
    evil = "evil-%s.html" % m
    if kind == "symlink":
        link = zipfile.ZipInfo("site/public/link-%s" % m)
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        entries = site + [
            (link, b"../../../../../../.."),
            (zipfile.ZipInfo("site/public/link-%s/%s" % (m, evil)),
             b"<p>through the link</p>"),
        ]
        named = "link-%s" % m
    else:
        name = {"dotdot": "../" + evil,
                "deep-dotdot": "site/../../../../" + evil,
                "absolute": "/tmp/" + evil}[kind]
        entries = site + [(zipfile.ZipInfo(name), b"<p>evil</p>")]
        named = evil
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, content in entries:
            zf.writestr(info, content)
    return buf.getvalue(), named


@pytest.mark.parametrize("kind", ["dotdot", "deep-dotdot", "absolute",
                                  "symlink"])
def test_hostile_zip_is_refused_and_writes_nothing(server, owner, kind):
    m = marker("zip-")
    z, named = hostile_zip(kind, m)
    b, text, lines = run_build(server, owner, z, timeout=QUICK_TIMEOUT)
    assert_failed_once(server, owner, b, text, "extract")
    assert named in b["errorMessage"], explain(b, text)
    assert step_outcomes(lines).get("extract") == "failed", \
        explain(b, text)

    # Nothing named after the marker anywhere it could have landed:
    # the data dir (with the workspaces), the folders above it, /tmp,
    # the file system's root.
    data = Path(server.data_dir)
    source = data / "work" / b["id"] / "source"
    places = {Path("/tmp"), Path("/"), data.parent}
    for depth in range(0, 8):
        places.add(Path(os.path.normpath(str(source) + "/.." * depth)))
    stray = [str(p / ("evil-%s.html" % m)) for p in places
             if os.path.lexists(p / ("evil-%s.html" % m))]
    for top, dirs, names in os.walk(data):
        stray += [os.path.join(top, n) for n in dirs + names if m in n]
    assert stray == [], "written outside: %r\n%s" % (stray,
                                                     explain(b, text))
    assert_workspace_gone(server, b)
