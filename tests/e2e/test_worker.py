"""Build workers, end to end: a build goes pending -> building -> a
final status; a failing user build fails once; a worker killed mid-job
loses its lease and another worker finishes the build; a cancelled
build is dropped by its worker; a retry gets a new run.

The module's server is `wharf serve` with two workers.  Tests that kill
or hold workers get a data dir of their own (`wenv`) with `wharf api`
and separate `wharf worker` processes.  WHARF_TEST_JOB_HOLD_MS holds
each claimed job that long once it is "building", before extraction.

The node projects need bubblewrap and node/npm; those tests are skipped
with the reason when either is missing.
"""

import io
import json
import os
import shutil
import stat
import time
import uuid
import zipfile
from datetime import datetime

import pytest

import wharf_harness as wh

BWRAP = "/usr/bin/bwrap"
HAVE_NODE_SANDBOX = (os.access(BWRAP, os.X_OK) and shutil.which("node")
                     is not None and shutil.which("npm") is not None)
needs_node_sandbox = pytest.mark.skipif(
    not HAVE_NODE_SANDBOX,
    reason="node builds need bubblewrap (%s) and node/npm on PATH; "
           "bwrap present: %s, node: %s, npm: %s"
           % (BWRAP, os.access(BWRAP, os.X_OK), shutil.which("node"),
              shutil.which("npm")))

HOLD_MS = "60000"
LEASE = "2s"
# Generous: a node build installs nothing but starts npm twice.
BUILD_TIMEOUT = 180


@pytest.fixture(scope="module")
def server_env():
    return {"WHARF_WORKERS": "2"}


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


def delete(server, member, build_id):
    return server.request("DELETE", wh.build_path(member.tenant, build_id),
                          headers=member.bearer())


def retry(server, member, build_id):
    return server.post(wh.build_path(member.tenant, build_id, "/retry"),
                       headers=member.bearer())


def assert_succeeded(b, attempts=1):
    assert b["status"] == "success", b
    assert b["progress"] == 100, b
    assert b["attempts"] == attempts, b
    assert b["errorMessage"] is None and b["errorStep"] is None, b
    assert isinstance(b["startedAt"], str), b
    assert isinstance(b["finishedAt"], str), b
    assert isinstance(b["queueWaitMs"], int) and b["queueWaitMs"] >= 0, b


def parse_time(text):
    assert isinstance(text, str), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def zip_with_infos(entries):
    """A ZIP from (ZipInfo or name, bytes) pairs, for odd entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


# -- a static site -------------------------------------------------------------


def test_static_site_succeeds(server, owner):
    data = wh.upload_ok(server, owner, wh.static_site_zip())
    assert data["build"]["status"] == "pending"
    bid = data["build"]["id"]
    b = wh.wait_build(server, owner, bid, wh.FINISHED)
    assert_succeeded(b)

    resp, log = wh.get_logs(server, owner, bid)
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) >= 5, log
    low = log.lower()
    for word in ("fetch", "extract", "static"):
        assert word in low, "the log does not mention %r:\n%s" % (word, log)
    # The source is kept; nothing is left in flight.
    assert wh.blob_path(server.data_dir, data["upload"]["key"]).is_file()
    assert wh.wait_tmp_empty(server.data_dir) == []


def test_static_site_at_the_root_succeeds(server, owner):
    z = wh.make_zip(wh.static_site_files(root=""))
    bid = wh.upload_ok(server, owner, z)["build"]["id"]
    assert_succeeded(wh.wait_build(server, owner, bid, wh.FINISHED))


def test_build_is_seen_building(wenv):
    # The hold keeps the job "building" for 3 s: long enough to be seen
    # by a poll every 0.1 s, short enough to then finish.
    srv = wenv.serve({"WHARF_WORKERS": "1",
                      "WHARF_TEST_JOB_HOLD_MS": "3000"})
    m = wh.make_member(srv.cli, "owner")
    bid = wh.upload_ok(srv, m)["build"]["id"]
    seen = []
    building = wh.wait_build(srv, m, bid, ("building",) + wh.FINISHED,
                             seen=seen)
    assert building["status"] == "building", seen
    assert isinstance(building["startedAt"], str), building
    assert building["attempts"] == 1, building
    assert 0 <= building["progress"] < 100, building
    b = wh.wait_build(srv, m, bid, wh.FINISHED, seen=seen)
    assert_succeeded(b)
    assert seen[0] == "pending" or seen[0] == "building", seen
    assert seen[-2:] == ["building", "success"], seen


def test_several_builds_all_succeed(server, owner):
    ids = [wh.upload_ok(server, owner)["build"]["id"] for _ in range(5)]
    for bid in ids:
        assert_succeeded(wh.wait_build(server, owner, bid, wh.FINISHED))


# -- builds that fail at once ----------------------------------------------------


def assert_fails_once(server, member, bid, step=None, words=()):
    b = wh.wait_build(server, member, bid, wh.FINISHED,
                      timeout=BUILD_TIMEOUT)
    assert b["status"] == "failed", b
    assert b["attempts"] == 1, b
    assert isinstance(b["errorMessage"], str) and b["errorMessage"], b
    if step is not None:
        assert b["errorStep"] == step, b
    for w in words:
        assert w in b["errorMessage"], b
    assert isinstance(b["finishedAt"], str), b
    # Not retried: a retry would start after a 2 s backoff; it stays
    # failed, one attempt, for 5 s.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        again = wh.get_build(server, member, bid)
        assert again["status"] == "failed" and again["attempts"] == 1, again
        time.sleep(0.25)
    return b


def test_not_a_zip_fails_at_once(server, owner):
    z = b"PK\x03\x04" + os.urandom(3000)
    bid = wh.upload_ok(server, owner, z)["build"]["id"]
    assert_fails_once(server, owner, bid, step="extract")


@pytest.mark.parametrize("entry", ["../evil.html", "/abs-evil.html",
                                   "site/../../evil.html",
                                   "site\\..\\evil.html"],
                         ids=["dotdot", "absolute", "nested-dotdot",
                              "backslash"])
def test_unsafe_entry_fails_naming_it(server, owner, entry):
    files = [(name, content.encode()) for name, content in
             wh.static_site_files().items()]
    files.append((zipfile.ZipInfo(entry), b"<p>evil</p>"))
    bid = wh.upload_ok(server, owner, zip_with_infos(files))["build"]["id"]
    b = assert_fails_once(server, owner, bid, step="extract")
    assert "evil.html" in b["errorMessage"], b


def test_symlink_entry_fails(server, owner):
    files = [(name, content.encode()) for name, content in
             wh.static_site_files().items()]
    link = zipfile.ZipInfo("site/public/passwd.html")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    files.append((link, b"/etc/passwd"))
    bid = wh.upload_ok(server, owner, zip_with_infos(files))["build"]["id"]
    b = assert_fails_once(server, owner, bid, step="extract")
    assert "passwd.html" in b["errorMessage"], b


def test_no_site_in_the_zip_fails(server, owner):
    z = wh.make_zip({"notes/readme.txt": "no site here\n"})
    bid = wh.upload_ok(server, owner, z)["build"]["id"]
    assert_fails_once(server, owner, bid)


@needs_node_sandbox
def test_failing_user_build_fails_once(server, owner):
    bid = wh.upload_ok(server, owner, wh.failing_build_zip(3))["build"]["id"]
    b = assert_fails_once(server, owner, bid, step="build",
                          words=("exited with 3",))
    assert b["progress"] < 100, b
    _, log = wh.get_logs(server, owner, bid)
    assert "exited with 3" in log, log


@needs_node_sandbox
def test_retry_after_failure_runs_again(server, owner):
    bid = wh.upload_ok(server, owner, wh.failing_build_zip(3))["build"]["id"]
    first = wh.wait_build(server, owner, bid, wh.FINISHED,
                          timeout=BUILD_TIMEOUT)
    assert first["status"] == "failed" and first["attempts"] == 1, first

    resp = retry(server, owner, bid)
    body = wh.assert_json(resp, 200)
    # Queued again; an idle worker of this server may claim it before
    # the answer is written.
    assert body["data"]["build"]["status"] in ("pending", "building"), \
        wh.show(resp)

    seen = []
    second = wh.wait_build(server, owner, bid, wh.FINISHED,
                           timeout=BUILD_TIMEOUT, seen=seen)
    assert second["status"] == "failed", (seen, second)
    assert second["errorStep"] == "build", second
    assert "exited with 3" in second["errorMessage"], second
    # A new run: it started after the first one ended.  (Whether the
    # build's attempts go on counting or restart with the new job is not
    # settled by the contract: 1 or 2.)
    assert second["attempts"] in (1, 2), second
    assert parse_time(second["startedAt"]) >= \
        parse_time(first["finishedAt"]), (first, second)
    assert parse_time(second["finishedAt"]) > \
        parse_time(first["finishedAt"]), (first, second)
    _, log = wh.get_logs(server, owner, bid)
    assert "exited with 3" in log, log


# -- a worker killed mid-job ---------------------------------------------------------


def api_and_member(wenv):
    api = wenv.start("api")
    return api, wh.make_member(api.cli, "owner")


def test_killed_worker_job_is_taken_over(wenv):
    api, m = api_and_member(wenv)
    first = wenv.start("worker", {"WHARF_WORKERS": "1",
                                  "WHARF_TEST_JOB_HOLD_MS": HOLD_MS,
                                  "WHARF_JOB_LEASE": LEASE})
    bid = wh.upload_ok(api, m)["build"]["id"]
    b = wh.wait_build(api, m, bid, ("building",) + wh.FINISHED)
    assert b["status"] == "building", b
    assert b["attempts"] == 1, b

    rc = first.kill()
    assert rc == -9, rc
    # No worker is alive: it cannot have finished.
    right_after = wh.get_build(api, m, bid)
    assert right_after["status"] in ("building", "pending"), right_after

    wenv.start("worker", {"WHARF_WORKERS": "1", "WHARF_JOB_LEASE": LEASE})
    b = wh.wait_build(api, m, bid, wh.FINISHED, timeout=90)
    assert_succeeded(b, attempts=2)


def test_live_lease_is_not_taken_over(wenv):
    # A worker that holds a job keeps renewing its lease: another
    # worker does not take the job while the first is alive.  A lease
    # of 6 s (renewed every 2 s or so) so that a loaded machine's stall
    # of a second or two is no false alarm.
    lease = "6s"
    api, m = api_and_member(wenv)
    first = wenv.start("worker", {"WHARF_WORKERS": "1",
                                  "WHARF_TEST_JOB_HOLD_MS": HOLD_MS,
                                  "WHARF_JOB_LEASE": lease})
    bid = wh.upload_ok(api, m)["build"]["id"]
    assert wh.wait_build(api, m, bid, ("building",) + wh.FINISHED)[
        "status"] == "building"
    wenv.start("worker", {"WHARF_WORKERS": "1", "WHARF_JOB_LEASE": lease})
    # Two and a half leases long.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        b = wh.get_build(api, m, bid)
        assert b["status"] == "building" and b["attempts"] == 1, (
            "taken from a live worker %.1f s after the second worker "
            "started: %s" % (time.monotonic() - t0, b))
        time.sleep(0.25)

    assert first.kill() == -9
    b = wh.wait_build(api, m, bid, wh.FINISHED, timeout=90)
    assert_succeeded(b, attempts=2)


# -- cancel while building ------------------------------------------------------------


def test_cancel_while_building(wenv):
    srv = wenv.serve({"WHARF_WORKERS": "1",
                      "WHARF_TEST_JOB_HOLD_MS": HOLD_MS,
                      "WHARF_JOB_LEASE": "3s"})
    m = wh.make_member(srv.cli, "owner")
    data = wh.upload_ok(srv, m)
    bid = data["build"]["id"]
    b = wh.wait_build(srv, m, bid, ("building",) + wh.FINISHED)
    assert b["status"] == "building", b

    # A building build cannot be retried.
    wh.assert_error(retry(srv, m, bid), 409)

    body = wh.assert_json(delete(srv, m, bid), 200)
    assert body.get("success") is True, body
    b = wh.get_build(srv, m, bid)
    assert b["status"] == "cancelled", b
    # The source stays (DELETE again removes it).
    assert wh.blob_path(srv.data_dir, data["upload"]["key"]).is_file()

    # The one worker drops the cancelled job: a second build is taken
    # long before the first one's 60 s hold would end.
    second = wh.upload_ok(srv, m)["build"]["id"]
    s = wh.wait_build(srv, m, second, ("building",) + wh.FINISHED,
                      timeout=40)
    assert s["status"] == "building", s
    b = wh.get_build(srv, m, bid)
    assert b["status"] == "cancelled", b

    # Let the second go too, so the server stops at once.
    wh.assert_json(delete(srv, m, second), 200)
    assert wh.get_build(srv, m, bid)["status"] == "cancelled"


def test_cancelled_build_never_succeeds(wenv):
    # Held 4 s: cancelled while held, it must not go on to succeed
    # when the hold ends.
    srv = wenv.serve({"WHARF_WORKERS": "1",
                      "WHARF_TEST_JOB_HOLD_MS": "4000",
                      "WHARF_JOB_LEASE": "3s"})
    m = wh.make_member(srv.cli, "owner")
    bid = wh.upload_ok(srv, m)["build"]["id"]
    assert wh.wait_build(srv, m, bid, ("building",) + wh.FINISHED)[
        "status"] == "building"
    wh.assert_json(delete(srv, m, bid), 200)
    # Another build, queued behind it, finishes: by then the worker is
    # done with the cancelled one.
    after = wh.upload_ok(srv, m)["build"]["id"]
    assert_succeeded(wh.wait_build(srv, m, after, wh.FINISHED))
    b = wh.get_build(srv, m, bid)
    assert b["status"] == "cancelled", b
    assert b["progress"] < 100, b


def test_retry_of_a_cancelled_build_runs_it(wenv):
    srv = wenv.serve({"WHARF_WORKERS": "0"})
    m = wh.make_member(srv.cli, "owner")
    bid = wh.upload_ok(srv, m)["build"]["id"]
    wh.assert_json(delete(srv, m, bid), 200)
    wh.assert_json(retry(srv, m, bid), 200)
    wenv.start("worker", {"WHARF_WORKERS": "1"})
    b = wh.wait_build(srv, m, bid, wh.FINISHED)
    assert b["status"] == "success", b
    assert b["progress"] == 100, b


# -- the build's environment and limits -------------------------------------------

CHECK_ENV_JS = r"""
const fs = require('fs');
const want = JSON.parse(fs.readFileSync('expect.json', 'utf8'));
function fail(code, why) {
  console.log('check failed: ' + why);
  process.exit(code);
}
for (const [k, v] of Object.entries(want.equal))
  if (process.env[k] !== v)
    fail(10, k + ' is ' + JSON.stringify(process.env[k]));
for (const k of want.nonEmpty)
  if (!process.env[k]) fail(11, k + ' is empty');
for (const k of want.absent)
  if (k in process.env) fail(12, k + ' is visible to the build');
for (const p of want.hidden)
  if (fs.existsSync(p)) fail(13, p + ' is visible to the build');
// Workspaces may live in the data dir: only this build's is visible.
if (fs.existsSync(want.work))
  for (const name of fs.readdirSync(want.work))
    if (name !== process.env.NEXT_PUBLIC_BUILD_ID)
      fail(15, 'another workspace is visible: ' + name);
const envFile = fs.readFileSync('.env.production', 'utf8');
for (const k of Object.keys(want.equal))
  if (!envFile.includes(k)) fail(14, k + ' is not in .env.production');
fs.mkdirSync('dist', {recursive: true});
fs.writeFileSync('dist/index.html', '<p>built</p>\n');
"""


@needs_node_sandbox
def test_build_environment(server, owner):
    value = "two words 'single' \"double\" $HOME `x` \\ = #"
    expect = {
        "equal": {"NODE_ENV": "production",
                  "NEXT_PUBLIC_TENANT_ID": owner.tenant,
                  "MY_VAR": value, "EMPTY_ONE": ""},
        "nonEmpty": ["NEXT_PUBLIC_BUILD_ID"],
        # The server's secret and settings never reach a build.
        "absent": ["JWT_SECRET", "WHARF_DATA_DIR"],
        # The server's data (the workspace may be inside the data dir,
        # bound at its own path: that alone is fine).
        "hidden": [str(server.data_dir / "blobs"),
                   str(server.data_dir / "wharf.db"),
                   str(wh.blob_path(server.data_dir, "tenants"))],
        "work": str(server.data_dir / "work"),
    }
    package = {"name": "env-check", "version": "1.0.0", "private": True,
               "scripts": {"build": "node check-env.js"}}
    z = wh.make_zip({"package.json": json.dumps(package),
                     "check-env.js": CHECK_ENV_JS,
                     "expect.json": json.dumps(expect)})
    data = wh.upload_ok(server, owner, z, build_config={
        "outputDir": "dist",
        "environmentVariables": {"MY_VAR": value, "EMPTY_ONE": ""}})
    b = wh.wait_build(server, owner, data["build"]["id"], wh.FINISHED,
                      timeout=BUILD_TIMEOUT)
    assert_succeeded(b)
    _, log = wh.get_logs(server, owner, b["id"])
    assert value not in log, "a variable's value is in the build log"


def processes_with(marker):
    """Pids of live processes whose command line holds marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


@needs_node_sandbox
def test_build_timeout_kills_the_process_tree(wenv):
    srv = wenv.serve({"WHARF_WORKERS": "1", "WHARF_BUILD_TIMEOUT": "3"})
    m = wh.make_member(srv.cli, "owner")
    marker = "wharf-e2e-hang-" + uuid.uuid4().hex
    hang_js = (
        "const cp = require('child_process');\n"
        "cp.spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)',"
        " %r], {detached: true, stdio: 'ignore'}).unref();\n"
        "setInterval(() => {}, 1000);\n" % marker)
    package = {"name": "hang", "version": "1.0.0", "private": True,
               "scripts": {"build": "node hang.js %s" % marker}}
    z = wh.make_zip({"package.json": json.dumps(package),
                     "hang.js": hang_js, "index.html": "<p>x</p>\n"})
    bid = wh.upload_ok(srv, m, z)["build"]["id"]

    # It runs: the marked processes appear.
    deadline = time.monotonic() + BUILD_TIMEOUT
    while not processes_with(marker):
        b = wh.get_build(srv, m, bid)
        assert b["status"] not in wh.FINISHED or processes_with(marker), (
            "the build ended before its processes were seen: %s" % b)
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.1)

    b = wh.wait_build(srv, m, bid, "failed", timeout=BUILD_TIMEOUT)
    assert b["errorStep"] == "build", b
    # The whole tree is gone, the detached child included.
    deadline = time.monotonic() + 15
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == [], \
        "processes of a timed-out build survive"
