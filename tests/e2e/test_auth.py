"""Login and the authorization of a tenant route, end to end.

One server for the module; every test makes its own users and tenants
with unique names through the CLI.
"""

import json
import time
import uuid
from datetime import datetime

import pytest

import wharf_harness as wh

EMPTY_LIST = {"success": True, "data": {"builds": [], "nextCursor": None}}


def builds_path(tenant):
    return "/api/builds/%s/builds" % tenant


def login(server, email, password):
    return server.post("/api/auth/login",
                       json={"email": email, "password": password})


def parse_iso8601(text):
    """ISO-8601 with a zone (Z or an offset) -> aware datetime."""
    assert isinstance(text, str), text
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert dt.tzinfo is not None, "no time zone in %r" % text
    return dt


# -- login ---------------------------------------------------------------


def test_login_returns_token_expiry_and_user(server):
    m = wh.make_member(server.cli)
    before = int(time.time())
    resp = login(server, m.email, m.password)
    body = wh.assert_json(resp, 200)

    assert set(body) >= {"token", "expiresAt", "user"}, wh.show(resp)
    assert isinstance(body["user"], dict), wh.show(resp)
    assert body["user"].get("id") == m.user_id, wh.show(resp)
    assert body["user"].get("email") == m.email, wh.show(resp)
    token = body["token"]
    assert isinstance(token, str) and wh.JWT_RE.match(token), wh.show(resp)

    # An HS256 token signed with the configured secret, for this user.
    header, payload, _ = wh.decode_jwt(token)
    assert header.get("alg") == "HS256", header
    assert wh.jwt_signature_ok(token), "token not signed with JWT_SECRET"
    assert payload.get("userId") == m.user_id, payload
    assert isinstance(payload.get("exp"), int), payload
    assert payload["exp"] > before, payload

    # expiresAt is the token's exp, as ISO-8601.
    expires = parse_iso8601(body["expiresAt"])
    assert abs(expires.timestamp() - payload["exp"]) < 1, (
        body["expiresAt"], payload["exp"])


def test_login_token_works_on_the_api(server):
    m = wh.make_member(server.cli, role="member")
    body = wh.assert_json(login(server, m.email, m.password), 200)
    resp = server.get(builds_path(m.tenant),
                      headers={"Authorization": "Bearer " + body["token"]})
    assert wh.assert_json(resp, 200) == EMPTY_LIST, wh.show(resp)


def test_login_token_works_as_cookie(server):
    m = wh.make_member(server.cli)
    body = wh.assert_json(login(server, m.email, m.password), 200)
    resp = server.get(builds_path(m.tenant),
                      headers={"Cookie": "token=" + body["token"]})
    assert wh.assert_json(resp, 200) == EMPTY_LIST, wh.show(resp)


def test_login_email_is_case_insensitive(server):
    email = wh.unique("Mixed.Case-") + "@Example.COM"
    _, password, user_id = wh.add_user(server.cli, email=email)
    for variant in (email, email.lower(), email.upper()):
        resp = login(server, variant, password)
        body = wh.assert_json(resp, 200)
        assert body["user"]["id"] == user_id, wh.show(resp)
        assert body["user"]["email"].lower() == email.lower(), wh.show(resp)


def test_login_wrong_password(server):
    email, password, _ = wh.add_user(server.cli)
    wh.assert_error(login(server, email, password + "x"), 401)
    wh.assert_error(login(server, email, ""), 401)
    wh.assert_error(login(server, email, password.upper()), 401)


def test_login_unknown_email(server):
    wh.assert_error(login(server, wh.unique("nobody-") + "@example.com",
                          "some-password"), 401)


def test_login_disabled_user(server):
    email, password, _ = wh.add_user(server.cli)
    wh.assert_json(login(server, email, password), 200)
    cp = server.cli("user", "disable", email)
    assert cp.returncode == 0, wh.describe(cp)
    wh.assert_error(login(server, email, password), 401)


def test_login_password_with_spaces(server):
    # The password is the line read from stdin, without its newline.
    email, _, _ = wh.add_user(server.cli, password="pass word 123")
    wh.assert_json(login(server, email, "pass word 123"), 200)
    wh.assert_error(login(server, email, "pass word 123\n"), 401)


BAD_LOGIN_BODIES = {
    "not_json": "{not json",
    "empty_body": "",
    "truncated": '{"email": "a@example.com", "password": "pw',
    "array": '["a@example.com", "password"]',
    "string": '"a@example.com"',
    "null": "null",
    "empty_object": "{}",
    "missing_password": '{"email": "a@example.com"}',
    "missing_email": '{"password": "password123"}',
    "email_number": '{"email": 123, "password": "password123"}',
    "email_null": '{"email": null, "password": "password123"}',
    "password_null": '{"email": "a@example.com", "password": null}',
    "password_array": '{"email": "a@example.com", "password": ["x"]}',
    "password_object": '{"email": "a@example.com", "password": {"a": 1}}',
    "password_bool": '{"email": "a@example.com", "password": true}',
}


@pytest.mark.parametrize("case", sorted(BAD_LOGIN_BODIES))
def test_login_rejects_bad_body(server, case):
    resp = server.post("/api/auth/login", data=BAD_LOGIN_BODIES[case],
                       headers={"Content-Type": "application/json"})
    wh.assert_error(resp, 400)


def test_login_bad_body_for_existing_user_is_400(server):
    # A valid email with a non-string password is a 400, not a 401.
    email, password, _ = wh.add_user(server.cli)
    resp = server.post("/api/auth/login",
                       data=json.dumps({"email": email, "password": 12345678}),
                       headers={"Content-Type": "application/json"})
    wh.assert_error(resp, 400)


# -- authorization of GET /api/builds/:tenantId/builds -------------------


def _now():
    return int(time.time())


def _claims(user_id, **over):
    c = {"userId": user_id, "iat": _now(), "exp": _now() + 3600}
    c.update(over)
    return c


def _bearer(token):
    return {"Authorization": "Bearer " + token}


def _flip_signature(token):
    h, p, s = token.split(".")
    sig = bytearray(wh.b64url_decode(s))
    sig[0] ^= 0x01
    return h + "." + p + "." + wh.b64url(bytes(sig))


def _works(ctx, tenant, headers):
    """Asserts that headers get a 200 on tenant now, so that the refusal
    a case then expects comes from the change the case makes."""
    resp = ctx.server.get(builds_path(tenant), headers=headers)
    assert resp.status_code == 200, "precondition\n" + wh.show(resp)


def _disable(ctx, m):
    cp = ctx.cli("user", "disable", m.email)
    assert cp.returncode == 0, wh.describe(cp)


def _remove(ctx, tenant, email):
    cp = ctx.cli("member", "remove", tenant, email)
    assert cp.returncode == 0, wh.describe(cp)


class Ctx:
    """What a case needs: the CLI and a fresh owner of a fresh tenant.
    A case returns (tenant in the path, request headers)."""

    def __init__(self, server):
        self.server = server
        self.cli = server.cli
        self.owner = wh.make_member(server.cli, role="owner")


def case_owner_bearer(ctx):
    return ctx.owner.tenant, ctx.owner.bearer()


def case_admin_bearer(ctx):
    m = wh.make_member(ctx.cli, role="admin", tenant=ctx.owner.tenant)
    return m.tenant, m.bearer()


def case_member_bearer(ctx):
    m = wh.make_member(ctx.cli, role="member", tenant=ctx.owner.tenant)
    return m.tenant, m.bearer()


def case_owner_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token=" + ctx.owner.token}


def case_crafted_hs256(ctx):
    # Sanity check of the token crafting used by the cases below.
    return ctx.owner.tenant, _bearer(wh.make_jwt(_claims(ctx.owner.user_id)))


def case_cookie_among_others(ctx):
    return ctx.owner.tenant, {"Cookie": "theme=dark; token=%s; lang=en"
                              % ctx.owner.token}


def case_readded_membership(ctx):
    m = wh.make_member(ctx.cli, role="member", tenant=ctx.owner.tenant)
    _works(ctx, m.tenant, m.bearer())
    _remove(ctx, m.tenant, m.email)
    wh.add_member(ctx.cli, m.tenant, m.email, "admin")
    return m.tenant, m.bearer()


def case_no_token(ctx):
    return ctx.owner.tenant, {}


def case_empty_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token="}


def case_other_cookie_only(ctx):
    return ctx.owner.tenant, {"Cookie": "session=" + ctx.owner.token}


def case_malformed_word(ctx):
    return ctx.owner.tenant, _bearer("not-a-jwt")


def case_malformed_two_parts(ctx):
    h, p, _ = ctx.owner.token.split(".")
    return ctx.owner.tenant, _bearer(h + "." + p)


def case_malformed_four_parts(ctx):
    return ctx.owner.tenant, _bearer(ctx.owner.token + ".AAAA")


def case_malformed_garbage_parts(ctx):
    return ctx.owner.tenant, _bearer("a.b.c")


def case_malformed_payload_not_json(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt("this is not json"))


def case_malformed_header_not_json(ctx):
    return ctx.owner.tenant, _bearer(
        wh.make_jwt(_claims(ctx.owner.user_id), header="{alg: HS256"))


def case_malformed_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token=not-a-jwt"}


def case_bad_signature(ctx):
    return ctx.owner.tenant, _bearer(_flip_signature(ctx.owner.token))


def case_bad_signature_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token="
                              + _flip_signature(ctx.owner.token)}


def case_signature_removed(ctx):
    h, p, _ = ctx.owner.token.split(".")
    return ctx.owner.tenant, _bearer(h + "." + p + ".")


def case_wrong_secret(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), secret=wh.TEST_SECRET[::-1]))


def case_alg_none(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), alg="none"))


def case_alg_none_with_hs256_signature(ctx):
    good = wh.make_jwt(_claims(ctx.owner.user_id))
    sig = wh.b64url_decode(good.split(".")[2])
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), header={"alg": "none", "typ": "JWT"},
        signature=sig))


def case_alg_hs512(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), alg="HS512"))


def case_alg_hs512_header_hs256_signature(ctx):
    good = wh.make_jwt(_claims(ctx.owner.user_id))
    sig = wh.b64url_decode(good.split(".")[2])
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), header={"alg": "HS512", "typ": "JWT"},
        signature=sig))


def case_alg_lowercase(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), header={"alg": "hs256", "typ": "JWT"}))


def case_oversized_token(ctx):
    c = _claims(ctx.owner.user_id, pad="x" * 6000)
    return ctx.owner.tenant, _bearer(wh.make_jwt(c))


def case_exp_string(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id, exp=str(_now() + 3600))))


def case_alg_missing(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id), header={"typ": "JWT"}))


def case_expired(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id, iat=_now() - 7200, exp=_now() - 3600)))


def case_expired_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token=" + wh.make_jwt(
        _claims(ctx.owner.user_id, iat=_now() - 7200, exp=_now() - 3600))}


def case_missing_user_id(ctx):
    c = _claims(ctx.owner.user_id)
    del c["userId"]
    return ctx.owner.tenant, _bearer(wh.make_jwt(c))


def case_user_id_not_string(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims(ctx.owner.user_id, userId=12345)))


def case_missing_exp(ctx):
    c = _claims(ctx.owner.user_id)
    del c["exp"]
    return ctx.owner.tenant, _bearer(wh.make_jwt(c))


def case_unknown_user(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(_claims(str(uuid.uuid4()))))


def case_user_id_not_uuid(ctx):
    return ctx.owner.tenant, _bearer(wh.make_jwt(
        _claims("x' OR '1'='1")))


def case_unknown_user_cookie(ctx):
    return ctx.owner.tenant, {"Cookie": "token=" + wh.make_jwt(
        _claims(str(uuid.uuid4())))}


def case_disabled_after_issue(ctx):
    m = wh.make_member(ctx.cli, role="member", tenant=ctx.owner.tenant)
    _works(ctx, m.tenant, m.bearer())
    _disable(ctx, m)
    return m.tenant, m.bearer()


def case_disabled_owner_crafted(ctx):
    token = wh.make_jwt(_claims(ctx.owner.user_id))
    _works(ctx, ctx.owner.tenant, _bearer(token))
    _disable(ctx, ctx.owner)
    return ctx.owner.tenant, _bearer(token)


def case_unknown_tenant(ctx):
    _works(ctx, ctx.owner.tenant, ctx.owner.bearer())
    return wh.unique("nosuch-"), ctx.owner.bearer()


def case_member_of_other_tenant(ctx):
    other = wh.make_member(ctx.cli, role="owner")
    _works(ctx, other.tenant, other.bearer())
    return ctx.owner.tenant, other.bearer()


def case_no_membership_at_all(ctx):
    email, _, _ = wh.add_user(ctx.cli)
    return ctx.owner.tenant, _bearer(wh.get_token(ctx.cli, email))


def case_removed_membership(ctx):
    m = wh.make_member(ctx.cli, role="admin", tenant=ctx.owner.tenant)
    _works(ctx, m.tenant, m.bearer())
    _remove(ctx, m.tenant, m.email)
    return m.tenant, m.bearer()


def case_removed_owner(ctx):
    _works(ctx, ctx.owner.tenant, ctx.owner.bearer())
    _remove(ctx, ctx.owner.tenant, ctx.owner.email)
    return ctx.owner.tenant, ctx.owner.bearer()


AUTHZ_CASES = [
    # allowed
    ("owner_bearer", 200),
    ("admin_bearer", 200),
    ("member_bearer", 200),
    ("owner_cookie", 200),
    ("cookie_among_others", 200),
    ("crafted_hs256", 200),
    ("readded_membership", 200),
    # no token
    ("no_token", 401),
    ("empty_cookie", 401),
    ("other_cookie_only", 401),
    # bad tokens
    ("malformed_word", 403),
    ("malformed_two_parts", 403),
    ("malformed_four_parts", 403),
    ("malformed_garbage_parts", 403),
    ("malformed_payload_not_json", 403),
    ("malformed_header_not_json", 403),
    ("malformed_cookie", 403),
    ("bad_signature", 403),
    ("bad_signature_cookie", 403),
    ("signature_removed", 403),
    ("wrong_secret", 403),
    ("alg_none", 403),
    ("alg_none_with_hs256_signature", 403),
    ("alg_hs512", 403),
    ("alg_hs512_header_hs256_signature", 403),
    ("alg_missing", 403),
    ("alg_lowercase", 403),
    ("oversized_token", 403),
    ("exp_string", 403),
    ("expired", 403),
    ("expired_cookie", 403),
    ("missing_user_id", 403),
    ("user_id_not_string", 403),
    ("missing_exp", 403),
    # valid tokens of users that cannot sign in
    ("unknown_user", 401),
    ("unknown_user_cookie", 401),
    ("user_id_not_uuid", 401),
    ("disabled_after_issue", 401),
    ("disabled_owner_crafted", 401),
    # tenant and membership
    ("unknown_tenant", 404),
    ("member_of_other_tenant", 403),
    ("no_membership_at_all", 403),
    ("removed_membership", 403),
    ("removed_owner", 403),
]


@pytest.mark.parametrize("case,status", AUTHZ_CASES,
                         ids=[c for c, _ in AUTHZ_CASES])
def test_authz_matrix(server, case, status):
    ctx = Ctx(server)
    tenant, headers = globals()["case_" + case](ctx)
    resp = server.get(builds_path(tenant), headers=headers)
    if status == 200:
        assert wh.assert_json(resp, 200) == EMPTY_LIST, wh.show(resp)
    else:
        wh.assert_error(resp, status)


def test_authz_cases_are_all_listed():
    defined = {n[len("case_"):] for n in globals() if n.startswith("case_")}
    assert defined == {c for c, _ in AUTHZ_CASES}


def test_token_from_cli_is_hs256_with_user_id(server):
    m = wh.make_member(server.cli)
    header, payload, _ = wh.decode_jwt(m.token)
    assert header.get("alg") == "HS256", header
    assert wh.jwt_signature_ok(m.token)
    assert payload.get("userId") == m.user_id, payload
    assert isinstance(payload.get("exp"), int) and payload["exp"] > _now()


def test_error_bodies_do_not_echo_the_token(server):
    m = wh.make_member(server.cli)
    bad = _flip_signature(m.token)
    resp = server.get(builds_path(m.tenant), headers=_bearer(bad))
    wh.assert_error(resp, 403)
    assert bad not in resp.text and m.token not in resp.text, wh.show(resp)


def test_tokens_never_appear_in_the_server_log(server):
    m = wh.make_member(server.cli)
    body = wh.assert_json(login(server, m.email, m.password), 200)
    wh.assert_json(server.get(builds_path(m.tenant), headers=m.bearer()),
                   200)
    log = server.log()
    for secret in (m.token, body["token"], m.password, wh.TEST_SECRET):
        assert secret not in log, "a secret appears in the server log"
    # The signature part alone is enough to be a leak.
    assert m.token.split(".")[2] not in log
