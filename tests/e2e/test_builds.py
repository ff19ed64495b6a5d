"""The build endpoints: list, detail, logs, cancel/delete, retry.

The module's server runs no build worker (WHARF_WORKERS=0), so builds
stay where a test puts them.  A test that needs finished builds gets a
server of its own (`solo`: the queue is shared by every tenant of a
server, and the module's is full of pending builds), starts a
`wharf worker` on its data dir, waits for them and stops it.
Failed builds come from a "ZIP" that starts like one but is not: it
passes the upload's checks and fails extraction at once, no node
needed.
"""

import os
import uuid

import pytest

import wharf_harness as wh

DOC_KEYS = {"id", "tenantId", "userId", "version", "status", "progress",
            "framework", "buildCommand", "outputDir", "nodeVersion",
            "environmentVariables", "originalFileName", "fileSize",
            "sha256", "uploadedAt", "startedAt", "finishedAt",
            "errorMessage", "errorStep", "attempts", "queueWaitMs"}
STATUSES = ("pending", "building", "success", "failed", "cancelled")


@pytest.fixture(scope="module")
def server_env():
    return {"WHARF_WORKERS": "0"}


@pytest.fixture
def owner(server):
    return wh.make_member(server.cli, "owner")


class Solo:
    def __init__(self, server, owner):
        self.server = server
        self.owner = owner


@pytest.fixture
def solo(wenv):
    """A server of this test's own, without workers, and an owner."""
    srv = wenv.serve({"WHARF_WORKERS": "0"})
    return Solo(srv, wh.make_member(srv.cli, "owner"))


def bad_zip():
    """Starts like a ZIP (the upload takes it), but is not one."""
    return b"PK\x03\x04" + os.urandom(2000)


def upload(server, member, zip_bytes=None, **kw):
    data = wh.upload_ok(server, member, zip_bytes, **kw)
    return data["build"]["id"]


def delete(server, member, build_id, tenant=None):
    return server.request("DELETE",
                          wh.build_path(tenant or member.tenant, build_id),
                          headers=member.bearer())


def retry(server, member, build_id, tenant=None):
    return server.post(wh.build_path(tenant or member.tenant, build_id,
                                     "/retry"), headers=member.bearer())


def cancel(server, member, build_id):
    body = wh.assert_json(delete(server, member, build_id), 200)
    assert body.get("success") is True, body
    build = wh.get_build(server, member, build_id)
    assert build["status"] == "cancelled", build
    return build


def finish(server, spawn, member, build_ids, statuses=wh.FINISHED):
    """Runs a `wharf worker` on the server's data dir until each build
    is finished, then stops it; returns the builds."""
    worker = spawn(server.data_dir, {**server.env, "WHARF_WORKERS": "1"})
    try:
        return [wh.wait_build(server, member, bid, statuses)
                for bid in build_ids]
    finally:
        rc = worker.stop()
        assert rc == 0, "wharf worker exited %r\n%s" % (rc, worker.log())


def source_key(member, build_id):
    return "tenants/%s/builds/%s/source.zip" % (member.tenant, build_id)


def build_prefix(member, build_id):
    return "tenants/%s/builds/%s" % (member.tenant, build_id)


# -- list ----------------------------------------------------------------------


def test_list_empty(server, owner):
    resp = server.get(wh.build_path(owner.tenant), headers=owner.bearer())
    assert wh.assert_json(resp, 200) == {
        "success": True, "data": {"builds": [], "nextCursor": None}}


def test_list_newest_first(server, owner):
    ids = [upload(server, owner) for _ in range(4)]
    data = wh.list_builds(server, owner)
    assert [b["id"] for b in data["builds"]] == ids[::-1]
    assert data["nextCursor"] is None
    for b in data["builds"]:
        assert set(b) >= DOC_KEYS, b
        assert b["tenantId"] == owner.tenant
        assert b["status"] == "pending"


def test_list_default_limit_is_20(server, owner):
    ids = [upload(server, owner) for _ in range(21)]
    first = wh.list_builds(server, owner)
    assert [b["id"] for b in first["builds"]] == ids[::-1][:20]
    assert isinstance(first["nextCursor"], str) and first["nextCursor"]
    second = wh.list_builds(server, owner, cursor=first["nextCursor"])
    assert [b["id"] for b in second["builds"]] == [ids[0]]
    assert second["nextCursor"] is None


def test_list_paging_with_limit(server, owner):
    ids = [upload(server, owner) for _ in range(5)]
    pages, cursor = [], None
    for _ in range(10):
        q = {"limit": 2}
        if cursor:
            q["cursor"] = cursor
        data = wh.list_builds(server, owner, **q)
        assert len(data["builds"]) <= 2, data
        pages.append([b["id"] for b in data["builds"]])
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1], pages
    assert sum(pages, []) == ids[::-1]


def test_list_limit_bounds(server, owner):
    ids = [upload(server, owner) for _ in range(3)]
    one = wh.list_builds(server, owner, limit=1)
    assert [b["id"] for b in one["builds"]] == [ids[-1]]
    assert one["nextCursor"]
    hundred = wh.list_builds(server, owner, limit=100)
    assert [b["id"] for b in hundred["builds"]] == ids[::-1]
    assert hundred["nextCursor"] is None


def test_list_status_filter(server, owner):
    ids = [upload(server, owner) for _ in range(3)]
    cancel(server, owner, ids[1])
    by = {s: [b["id"] for b in wh.list_builds(server, owner,
                                              status=s)["builds"]]
          for s in STATUSES}
    assert by == {"pending": [ids[2], ids[0]], "building": [],
                  "success": [], "failed": [], "cancelled": [ids[1]]}, by


def test_list_status_filter_with_paging(server, owner):
    ids = [upload(server, owner) for _ in range(5)]
    cancel(server, owner, ids[2])
    first = wh.list_builds(server, owner, status="pending", limit=3)
    assert [b["id"] for b in first["builds"]] == [ids[4], ids[3], ids[1]]
    assert first["nextCursor"]
    second = wh.list_builds(server, owner, status="pending", limit=3,
                            cursor=first["nextCursor"])
    assert [b["id"] for b in second["builds"]] == [ids[0]]
    assert second["nextCursor"] is None


def test_list_only_the_tenants_builds(server, owner):
    other = wh.make_member(server.cli, "owner")
    mine = upload(server, owner)
    theirs = upload(server, other)
    assert wh.all_build_ids(server, owner) == [mine]
    assert wh.all_build_ids(server, other) == [theirs]


@pytest.mark.parametrize("query", [
    {"status": "done"}, {"status": "PENDING"},
    {"status": "pending,failed"}, {"status": "succes"},
    {"limit": "0"}, {"limit": "101"}, {"limit": "-1"}, {"limit": "abc"},
    {"limit": "1.5"}, {"limit": "10x"},
    {"cursor": "not-a-build"},
], ids=lambda q: "%s=%s" % next(iter(q.items())))
def test_list_bad_query(server, owner, query):
    upload(server, owner)
    resp = server.get(wh.build_path(owner.tenant), headers=owner.bearer(),
                      params=query)
    wh.assert_error(resp, 400)


def test_list_cursor_unknown_build(server, owner):
    upload(server, owner)
    resp = server.get(wh.build_path(owner.tenant), headers=owner.bearer(),
                      params={"cursor": str(uuid.uuid4())})
    wh.assert_error(resp, 400)


def test_list_cursor_of_another_tenant(server, owner):
    other = wh.make_member(server.cli, "owner")
    upload(server, owner)
    theirs = upload(server, other)
    upload(server, other)
    resp = server.get(wh.build_path(owner.tenant), headers=owner.bearer(),
                      params={"cursor": theirs})
    wh.assert_error(resp, 400)


# -- detail --------------------------------------------------------------------


def test_detail_of_a_pending_build(server, owner):
    bid = upload(server, owner, build_config={
        "framework": "static", "environmentVariables": {"SITE_NAME": "x"}})
    b = wh.get_build(server, owner, bid)
    assert set(b) >= DOC_KEYS | {"queuePosition", "urls"}, b
    assert b["status"] == "pending" and b["progress"] == 0, b
    assert b["framework"] == "static", b
    assert b["environmentVariables"] == ["SITE_NAME"], b
    assert isinstance(b["queuePosition"], int) and b["queuePosition"] >= 0
    assert b["attempts"] == 0, b
    assert b["startedAt"] is None and b["finishedAt"] is None, b


@pytest.mark.parametrize("build_id", [lambda: str(uuid.uuid4()),
                                      lambda: "nope"],
                         ids=["uuid", "not-uuid"])
def test_detail_unknown_build(server, owner, build_id):
    upload(server, owner)
    resp = server.get(wh.build_path(owner.tenant, build_id()),
                      headers=owner.bearer())
    wh.assert_error(resp, 404)


def test_another_tenants_build_is_404_everywhere(server, owner):
    other = wh.make_member(server.cli, "owner")
    theirs = upload(server, other)
    for method, suffix in (("GET", ""), ("GET", "/logs"), ("DELETE", ""),
                           ("POST", "/retry")):
        resp = server.request(method, wh.build_path(owner.tenant, theirs,
                                                    suffix),
                              headers=owner.bearer())
        wh.assert_error(resp, 404)
    # Untouched.
    b = wh.get_build(server, other, theirs)
    assert b["status"] == "pending", b
    assert wh.blob_path(server.data_dir,
                        source_key(other, theirs)).is_file()


# -- logs ----------------------------------------------------------------------


def test_logs_empty_while_pending(server, owner):
    bid = upload(server, owner)
    resp, text = wh.get_logs(server, owner, bid)
    assert text == "", wh.show(resp)
    wh.assert_request_id(resp)


def test_logs_unknown_build(server, owner):
    resp = server.get(wh.build_path(owner.tenant, str(uuid.uuid4()),
                                    "/logs"), headers=owner.bearer())
    wh.assert_error(resp, 404)


def test_logs_of_a_finished_build(solo, spawn):
    server, owner = solo.server, solo.owner
    bid = upload(server, owner)
    (b,) = finish(server, spawn, owner, [bid])
    assert b["status"] == "success", b
    _, text = wh.get_logs(server, owner, bid)
    assert text.strip(), "a finished build has an empty log"


# -- delete: cancel, then remove --------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_delete_pending_cancels(server, owner, role):
    m = wh.make_member(server.cli, role, tenant=owner.tenant)
    bid = upload(server, owner)
    resp = delete(server, m, bid)
    body = wh.assert_json(resp, 200)
    assert body.get("success") is True, wh.show(resp)
    b = wh.get_build(server, owner, bid)
    assert b["status"] == "cancelled", b
    # The row and the source stay.
    assert wh.all_build_ids(server, owner) == [bid]
    assert wh.blob_path(server.data_dir, source_key(owner, bid)).is_file()
    assert [x["id"] for x in wh.list_builds(
        server, owner, status="cancelled")["builds"]] == [bid]
    wh.get_logs(server, owner, bid)


def test_delete_by_member_is_403(server, owner):
    m = wh.make_member(server.cli, "member", tenant=owner.tenant)
    bid = upload(server, owner)
    body = wh.assert_error(delete(server, m, bid), 403)
    assert "owner" in body["message"] and "admin" in body["message"], body
    b = wh.get_build(server, owner, bid)
    assert b["status"] == "pending", b
    assert wh.blob_path(server.data_dir, source_key(owner, bid)).is_file()


def test_delete_cancelled_removes_it(server, owner):
    keep = upload(server, owner)
    bid = upload(server, owner)
    cancel(server, owner, bid)
    assert wh.files_under(server.data_dir, build_prefix(owner, bid)) != []

    body = wh.assert_json(delete(server, owner, bid), 200)
    assert body.get("success") is True, body
    wh.assert_error(server.get(wh.build_path(owner.tenant, bid),
                               headers=owner.bearer()), 404)
    assert wh.all_build_ids(server, owner) == [keep]
    assert wh.files_under(server.data_dir, build_prefix(owner, bid)) == []
    # The other build is untouched.
    assert wh.blob_path(server.data_dir, source_key(owner, keep)).is_file()
    assert wh.get_build(server, owner, keep)["status"] == "pending"
    # Gone for every route.
    wh.assert_error(delete(server, owner, bid), 404)
    wh.assert_error(retry(server, owner, bid), 404)
    wh.assert_error(server.get(wh.build_path(owner.tenant, bid, "/logs"),
                               headers=owner.bearer()), 404)


def test_delete_finished_by_admin(server, owner):
    admin = wh.make_member(server.cli, "admin", tenant=owner.tenant)
    bid = upload(server, owner)
    cancel(server, owner, bid)
    wh.assert_json(delete(server, admin, bid), 200)
    wh.assert_error(server.get(wh.build_path(owner.tenant, bid),
                               headers=owner.bearer()), 404)


def test_delete_cancelled_by_member_is_403(server, owner):
    m = wh.make_member(server.cli, "member", tenant=owner.tenant)
    bid = upload(server, owner)
    cancel(server, owner, bid)
    wh.assert_error(delete(server, m, bid), 403)
    assert wh.get_build(server, owner, bid)["status"] == "cancelled"
    assert wh.blob_path(server.data_dir, source_key(owner, bid)).is_file()


def test_delete_failed_removes_it(solo, spawn):
    server, owner = solo.server, solo.owner
    bid = upload(server, owner, bad_zip())
    (b,) = finish(server, spawn, owner, [bid])
    assert b["status"] == "failed", b
    before = wh.files_under(server.data_dir, build_prefix(owner, bid))
    assert "source.zip" in before, before

    wh.assert_json(delete(server, owner, bid), 200)
    wh.assert_error(server.get(wh.build_path(owner.tenant, bid),
                               headers=owner.bearer()), 404)
    assert wh.files_under(server.data_dir, build_prefix(owner, bid)) == []
    assert wh.all_build_ids(server, owner) == []


def test_delete_success_removes_it(solo, spawn):
    server, owner = solo.server, solo.owner
    # Two successes; the older one is removed (the newer could be the
    # tenant's live deployment once publishing flips the pointer).
    old = upload(server, owner)
    new = upload(server, owner)
    builds = finish(server, spawn, owner, [old, new])
    assert [b["status"] for b in builds] == ["success", "success"], builds
    before = wh.files_under(server.data_dir, build_prefix(owner, old))
    assert "source.zip" in before, before

    wh.assert_json(delete(server, owner, old), 200)
    wh.assert_error(server.get(wh.build_path(owner.tenant, old),
                               headers=owner.bearer()), 404)
    assert wh.files_under(server.data_dir, build_prefix(owner, old)) == []
    assert wh.all_build_ids(server, owner) == [new]
    assert wh.get_build(server, owner, new)["status"] == "success"
    assert wh.blob_path(server.data_dir, source_key(owner, new)).is_file()


def test_delete_unknown_build(server, owner):
    wh.assert_error(delete(server, owner, str(uuid.uuid4())), 404)


# -- retry -----------------------------------------------------------------------


def assert_requeued(server, member, resp, build_id, old_job_id):
    body = wh.assert_json(resp, 200)
    assert body.get("success") is True, wh.show(resp)
    data = body.get("data", {})
    assert data.get("build", {}).get("id") == build_id, wh.show(resp)
    assert data["build"].get("status") == "pending", wh.show(resp)
    job = data.get("job", {})
    assert isinstance(job.get("id"), str) and job["id"], wh.show(resp)
    assert job["id"] != old_job_id, "retry reused the old job"
    assert job.get("priority") == 10, wh.show(resp)
    b = wh.get_build(server, member, build_id)
    assert b["status"] == "pending", b
    assert isinstance(b.get("queuePosition"), int), b
    assert build_id in [x["id"] for x in wh.list_builds(
        server, member, status="pending")["builds"]]
    assert wh.blob_path(server.data_dir,
                        source_key(member, build_id)).is_file()
    return b


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_retry_cancelled(server, owner, role):
    m = wh.make_member(server.cli, role, tenant=owner.tenant)
    data = wh.upload_ok(server, owner)
    bid = data["build"]["id"]
    cancel(server, owner, bid)
    assert_requeued(server, owner, retry(server, m, bid), bid,
                    data["job"]["id"])


def test_retry_failed(solo, spawn):
    server, owner = solo.server, solo.owner
    data = wh.upload_ok(server, owner, bad_zip())
    bid = data["build"]["id"]
    (b,) = finish(server, spawn, owner, [bid])
    assert b["status"] == "failed", b
    assert_requeued(server, owner, retry(server, owner, bid), bid,
                    data["job"]["id"])


def test_retry_twice_is_409_the_second_time(server, owner):
    bid = upload(server, owner)
    cancel(server, owner, bid)
    wh.assert_json(retry(server, owner, bid), 200)
    wh.assert_error(retry(server, owner, bid), 409)
    assert wh.get_build(server, owner, bid)["status"] == "pending"


def test_retry_pending_is_409(server, owner):
    bid = upload(server, owner)
    wh.assert_error(retry(server, owner, bid), 409)
    assert wh.get_build(server, owner, bid)["status"] == "pending"


def test_retry_success_is_409(solo, spawn):
    server, owner = solo.server, solo.owner
    bid = upload(server, owner)
    (b,) = finish(server, spawn, owner, [bid])
    assert b["status"] == "success", b
    wh.assert_error(retry(server, owner, bid), 409)
    after = wh.get_build(server, owner, bid)
    assert after["status"] == "success", after
    assert after["attempts"] == b["attempts"], after


def test_retry_by_member_is_403(server, owner):
    m = wh.make_member(server.cli, "member", tenant=owner.tenant)
    bid = upload(server, owner)
    cancel(server, owner, bid)
    body = wh.assert_error(retry(server, m, bid), 403)
    assert "owner" in body["message"] and "admin" in body["message"], body
    assert wh.get_build(server, owner, bid)["status"] == "cancelled"


def test_retry_unknown_build(server, owner):
    wh.assert_error(retry(server, owner, str(uuid.uuid4())), 404)


def test_cancel_after_retry(server, owner):
    bid = upload(server, owner)
    cancel(server, owner, bid)
    wh.assert_json(retry(server, owner, bid), 200)
    cancel(server, owner, bid)
    assert wh.all_build_ids(server, owner) == [bid]


# -- who may do what ------------------------------------------------------------------


ENDPOINTS = {
    "list": ("GET", ""),
    "detail": ("GET", "/{id}"),
    "logs": ("GET", "/{id}/logs"),
    "delete": ("DELETE", "/{id}"),
    "retry": ("POST", "/{id}/retry"),
}
# The roles each endpoint admits.
ADMITS = {"list": {"owner", "admin", "member"},
          "detail": {"owner", "admin", "member"},
          "logs": {"owner", "admin", "member"},
          "delete": {"owner", "admin"},
          "retry": {"owner", "admin"}}


def endpoint_request(server, headers, tenant, endpoint, build_id):
    method, suffix = ENDPOINTS[endpoint]
    path = wh.build_path(tenant) + suffix.replace("{id}", build_id)
    return server.request(method, path, headers=headers)


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_roles_matrix(server, owner, role, endpoint):
    m = wh.make_member(server.cli, role, tenant=owner.tenant)
    bid = upload(server, owner)
    if endpoint == "retry":
        cancel(server, owner, bid)     # something retry may act on
    resp = endpoint_request(server, m.bearer(), owner.tenant, endpoint, bid)
    if role in ADMITS[endpoint]:
        assert resp.status_code == 200, wh.show(resp)
    else:
        body = wh.assert_error(resp, 403)
        assert "owner" in body["message"] and "admin" in body["message"], \
            body


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_outsiders_refused(server, owner, endpoint):
    bid = upload(server, owner)
    stranger = wh.make_member(server.cli, "owner")
    removed = wh.make_member(server.cli, "admin", tenant=owner.tenant)
    cp = server.cli("member", "remove", owner.tenant, removed.email)
    assert cp.returncode == 0, wh.describe(cp)

    wh.assert_error(endpoint_request(server, {}, owner.tenant, endpoint,
                                     bid), 401)
    wh.assert_error(endpoint_request(server, stranger.bearer(),
                                     owner.tenant, endpoint, bid), 403)
    wh.assert_error(endpoint_request(server, removed.bearer(),
                                     owner.tenant, endpoint, bid), 403)
    wh.assert_error(endpoint_request(server, owner.bearer(),
                                     wh.unique("nosuch-"), endpoint, bid),
                    404)
    # Nothing changed.
    b = wh.get_build(server, owner, bid)
    assert b["status"] == "pending", b
    assert wh.blob_path(server.data_dir, source_key(owner, bid)).is_file()
