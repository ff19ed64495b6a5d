"""`wharf deploy`, the client, against a real `wharf serve`.

The command zips a folder (or takes a .zip), uploads it, follows the
build and prints the site's URL; the tests then fetch that URL's path
from the edge with the URL's Host.  The failing Node build needs
bubblewrap and node/npm, as in test_pipeline.py.
"""

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import wharf_harness as wh

BWRAP = "/usr/bin/bwrap"
HAVE_NODE_SANDBOX = (os.access(BWRAP, os.X_OK)
                     and shutil.which("node") is not None
                     and shutil.which("npm") is not None)
needs_node_sandbox = pytest.mark.skipif(
    not HAVE_NODE_SANDBOX,
    reason="node builds run under bubblewrap (%s) with node and npm"
           % BWRAP)

NODE_BUILD_TIMEOUT = 300


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


@pytest.fixture
def tmpdir_env(tmp_path):
    """A TMPDIR of the test's own, to see that no temp ZIP is left."""
    d = tmp_path / "tmp"
    d.mkdir()
    return d


def deploy(server, member, *args, tmpdir=None, token=True, env=None,
           timeout=wh.CLI_TIMEOUT):
    """Runs `wharf deploy ARGS` with the server's environment, the
    member's token in WHARF_TOKEN (unless token is False) and
    WHARF_API_URL set to the server (the base environment's
    WHARF_LISTEN port is 0)."""
    e = dict(server.env)
    e["WHARF_API_URL"] = server.base_url
    if token:
        e["WHARF_TOKEN"] = member.token
    if tmpdir is not None:
        e["TMPDIR"] = str(tmpdir)
    e.update(env or {})
    return wh.run_cli(e, "deploy", *args, timeout=timeout)


def fails(cp, *needles):
    """Exit 1, nothing on stdout, a "wharf: ..." error holding each
    needle (case-insensitive)."""
    assert cp.returncode == 1, wh.describe(cp)
    assert cp.stdout == "", wh.describe(cp)
    assert re.search(r"(^|\n)wharf: \S", cp.stderr), wh.describe(cp)
    for needle in needles:
        assert needle.lower() in cp.stderr.lower(), (needle, wh.describe(cp))
    return cp


def write_tree(root, files):
    """Writes {relative path: text} under root."""
    for name, text in files.items():
        p = Path(root) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def fetch_from_edge(server, url, rel=""):
    """GET the path of url (+ rel) from the edge with url's Host."""
    u = urlsplit(url)
    host = u.hostname
    assert host, url
    return wh.edge_request(server, host, u.path + rel)


def newest_build(server, member):
    builds = wh.list_builds(server, member, limit=1)["builds"]
    assert builds, "no build"
    return builds[0]


def source_names(server, member, build_id):
    key = "tenants/%s/builds/%s/source.zip" % (member.tenant, build_id)
    with zipfile.ZipFile(wh.blob_path(server.data_dir, key)) as zf:
        return sorted(zf.namelist())


# -- success ------------------------------------------------------------


def test_folder_is_zipped_deployed_and_served(server, owner, tmp_path,
                                               tmpdir_env):
    marker = wh.unique("m")
    site = tmp_path / "mysite"
    write_tree(site, {
        "index.html": "<h1>%s</h1>\n" % marker,
        "sub/page.html": "<p>sub %s</p>\n" % marker,
        ".git/config": "[core]\n",
        "node_modules/left-out/index.js": "module.exports = 1;\n",
    })
    os.symlink("/etc/passwd", site / "link.html")

    cp = deploy(server, owner, str(site), "--tenant", owner.tenant,
                tmpdir=tmpdir_env)
    assert cp.returncode == 0, wh.describe(cp)
    url = cp.stdout.strip()
    assert cp.stdout == url + "\n", wh.describe(cp)
    assert re.match(r"^http://%s\.localhost:%d/$"
                    % (re.escape(owner.tenant), server.edge_port), url), \
        wh.describe(cp)
    for said in ("symbolic link", ".git", "node_modules", "immutable"):
        assert said in cp.stderr, (said, wh.describe(cp))

    resp = fetch_from_edge(server, url, "sub/page.html")
    assert resp.status_code == 200, wh.show(resp)
    assert resp.text == "<p>sub %s</p>\n" % marker, wh.show(resp)
    resp = fetch_from_edge(server, url)
    assert resp.status_code == 200 and marker in resp.text, wh.show(resp)

    # Entries relative to the folder; no link, .git or node_modules.
    build = newest_build(server, owner)
    assert build["status"] == "success", build
    assert build["originalFileName"] == "mysite.zip", build
    assert source_names(server, owner, build["id"]) == [
        "index.html", "sub/", "sub/page.html"]
    assert list(tmpdir_env.iterdir()) == [], "temp ZIP left behind"


def test_zip_file_is_uploaded_as_is(server, owner, tmp_path):
    marker = wh.unique("z")
    data = wh.make_zip(wh.static_site_files(marker))
    path = tmp_path / "release.zip"
    path.write_bytes(data)

    cp = deploy(server, owner, str(path), "--tenant", owner.tenant)
    assert cp.returncode == 0, wh.describe(cp)
    resp = fetch_from_edge(server, cp.stdout.strip())
    assert resp.status_code == 200 and marker in resp.text, wh.show(resp)

    build = newest_build(server, owner)
    assert build["originalFileName"] == "release.zip", build
    assert build["fileSize"] == len(data), build


def test_no_wait_prints_the_build_id(server, owner, tmp_path, tmpdir_env):
    write_tree(tmp_path / "s", {"index.html": "<p>no wait</p>\n"})
    cp = deploy(server, owner, str(tmp_path / "s"), "--tenant",
                owner.tenant, "--no-wait", tmpdir=tmpdir_env)
    assert cp.returncode == 0, wh.describe(cp)
    build_id = cp.stdout.strip()
    assert wh.UUID_RE.match(build_id), wh.describe(cp)
    assert cp.stdout == build_id + "\n", wh.describe(cp)
    wh.wait_build(server, owner, build_id, "success")
    assert list(tmpdir_env.iterdir()) == [], "temp ZIP left behind"


# -- failures -----------------------------------------------------------


@needs_node_sandbox
def test_failing_node_build_exits_1_with_the_error(server, owner,
                                                    tmp_path):
    package = {"name": "failing-site", "version": "1.0.0",
               "private": True,
               "scripts": {"build": "node -e 'process.exit(3)'"}}
    write_tree(tmp_path / "app", {
        "package.json": json.dumps(package, indent=2) + "\n",
        "index.html": "<p>never published</p>\n",
    })
    cp = deploy(server, owner, str(tmp_path / "app"), "--tenant",
                owner.tenant, timeout=NODE_BUILD_TIMEOUT)
    fails(cp, "failed at step build", "exited with 3",
          "last 20 lines of the build log")
    build = newest_build(server, owner)
    assert build["status"] == "failed", build


def test_no_token_says_how_to_get_one(server, owner, tmp_path):
    write_tree(tmp_path / "s", {"index.html": "<p>x</p>\n"})
    before = wh.all_build_ids(server, owner)
    cp = deploy(server, owner, str(tmp_path / "s"), "--tenant",
                owner.tenant, token=False)
    fails(cp, "token", "wharf token EMAIL", "/api/auth/login")
    assert wh.all_build_ids(server, owner) == before


def test_missing_path_exits_1(server, owner, tmp_path):
    missing = tmp_path / "no-such-site"
    cp = deploy(server, owner, str(missing), "--tenant", owner.tenant)
    fails(cp, str(missing))


def test_refused_upload_prints_the_servers_message(server, owner,
                                                    tmp_path, tmpdir_env):
    write_tree(tmp_path / "s", {"index.html": "<p>x</p>\n"})
    cp = deploy(server, owner, str(tmp_path / "s"), "--tenant",
                owner.tenant, "--config", '{"colour": "blue"}',
                tmpdir=tmpdir_env)
    fails(cp, "HTTP 400", "framework")
    assert list(tmpdir_env.iterdir()) == [], "temp ZIP left behind"


def test_without_tenant_is_a_usage_error(server, owner, tmp_path):
    cp = deploy(server, owner, str(tmp_path))
    assert cp.returncode == 2, wh.describe(cp)
    assert "usage: wharf deploy" in cp.stderr, wh.describe(cp)
