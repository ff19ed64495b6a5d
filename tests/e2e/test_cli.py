"""The wharf command line: usage, migrate, administration, tokens,
configuration errors, the generated JWT secret and SIGTERM.

Every test has its own data dir (the `wenv` fixture).
"""

import os
import re
import stat
import time

import pytest

import wharf_harness as wh

USER_ADDED_RE = re.compile(
    r"^user (\S+) added \(id ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{4}-[0-9a-f]{12})\)$")


def ok(cp):
    assert cp.returncode == 0, wh.describe(cp)
    return cp


def fails(cp, code=1, *needles):
    """Asserts exit code, an error on stderr as "wharf: <message>",
    and that the message holds each needle (case-insensitive)."""
    assert cp.returncode == code, wh.describe(cp)
    assert re.search(r"(^|\n)wharf: \S", cp.stderr), wh.describe(cp)
    for needle in needles:
        assert needle.lower() in cp.stderr.lower(), (needle, wh.describe(cp))
    return cp


def usage_error(cp):
    """Exit 2, nothing on stdout, and on stderr either an error as
    "wharf: <message>" or the usage."""
    assert cp.returncode == 2, wh.describe(cp)
    assert cp.stdout == "", wh.describe(cp)
    assert re.search(r"(^|\n)wharf: \S", cp.stderr) or \
        "usage" in cp.stderr.lower(), wh.describe(cp)


@pytest.fixture
def mig(wenv):
    """wenv with the schema created."""
    ok(wenv.cli("migrate"))
    return wenv


# -- usage ---------------------------------------------------------------


def test_help(wenv):
    cp = ok(wenv.cli("--help"))
    assert "usage" in cp.stdout.lower(), wh.describe(cp)
    for cmd in ("serve", "migrate", "user", "tenant", "member", "token"):
        assert re.search(r"\b%s\b" % cmd, cp.stdout), (cmd, wh.describe(cp))


@pytest.mark.parametrize("cmd,needle", [
    ("user", "add"),
    ("tenant", "add"),
    ("member", "add"),
    ("token", "--ttl"),
    ("migrate", "migrate"),
    ("serve", "serve"),
])
def test_command_help(wenv, cmd, needle):
    cp = ok(wenv.cli(cmd, "--help"))
    assert "usage" in cp.stdout.lower(), wh.describe(cp)
    assert needle in cp.stdout, wh.describe(cp)


@pytest.mark.parametrize("args", [
    ["nosuchcmd"],
    [],
    ["--no-such-option"],
    ["user"],
    ["user", "frobnicate", "a@example.com"],
    ["user", "add"],
    ["user", "disable"],
    ["tenant", "add"],
    ["member", "add"],
    ["member", "add", "acme", "a@example.com"],
    ["member", "remove", "acme"],
    ["token"],
    ["user", "add", "a@example.com", "--no-such-option"],
    ["token", "a@example.com", "--no-such-option"],
    ["token", "a@example.com", "--ttl"],
    ["tenant", "add", "acme", "--name"],
], ids=lambda a: "_".join(a) or "no_args")
def test_usage_errors_exit_2(mig, args):
    cp = mig.cli(*args, input="password123\n")
    usage_error(cp)


def test_usage_error_does_not_act(mig):
    # An unknown option must not half-run the command.
    usage_error(mig.cli("user", "add", "half@example.com", "--bogus",
                        input="password123\n"))
    ok(mig.cli("user", "add", "half@example.com", input="password123\n"))


# -- migrate -------------------------------------------------------------


def _version(text):
    m = re.search(r"version\D{0,3}(\d+)", text, re.I)
    assert m, "no schema version in %r" % text
    return int(m.group(1))


def test_migrate_twice(wenv):
    first = ok(wenv.cli("migrate"))
    second = ok(wenv.cli("migrate"))
    assert _version(first.stdout) >= 1, wh.describe(first)
    assert _version(second.stdout) == _version(first.stdout), \
        (wh.describe(first), wh.describe(second))


# -- users ---------------------------------------------------------------


def test_user_add(mig):
    email = wh.unique("alice-") + "@example.com"
    cp = ok(mig.cli("user", "add", email, input="correct horse\n"))
    lines = cp.stdout.splitlines()
    assert len(lines) == 1, wh.describe(cp)
    m = USER_ADDED_RE.match(lines[0])
    assert m and m.group(1) == email, wh.describe(cp)
    assert "correct horse" not in cp.stdout + cp.stderr


def test_user_ids_differ(mig):
    ids = {wh.add_user(mig.cli)[2] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_user_add_short_password(mig, password):
    email = wh.unique("bob-") + "@example.com"
    fails(mig.cli("user", "add", email, input=password + "\n"), 1)
    # Nothing was created: the same email can be added afterwards.
    ok(mig.cli("user", "add", email, input="long enough\n"))


def test_user_add_no_stdin(mig):
    fails(mig.cli("user", "add", wh.unique("c-") + "@example.com",
                  input=""), 1)


def test_user_add_eight_characters_is_enough(mig):
    ok(mig.cli("user", "add", wh.unique("d-") + "@example.com",
               input="12345678\n"))


def test_user_add_reads_one_line_only(mig):
    # Only the first line is the password; the rest is ignored.
    email = wh.unique("e-") + "@example.com"
    ok(mig.cli("user", "add", email, input="first-line-pw\nsecond\n"))
    srv = mig.serve()
    resp = srv.post("/api/auth/login",
                    json={"email": email, "password": "first-line-pw"})
    wh.assert_json(resp, 200)


@pytest.mark.parametrize("variant", [str.lower, str.upper, str.title])
def test_user_add_duplicate_any_case(mig, variant):
    email = wh.unique("dup-") + "@example.com"
    ok(mig.cli("user", "add", email, input="password123\n"))
    fails(mig.cli("user", "add", variant(email), input="password123\n"),
          1, "already exists")


@pytest.mark.parametrize("email", [
    "not-an-email",
    "@example.com",
    "user@",
    "two@@example.com",
    "a" * 250 + "@example.com",
    "new\nline@example.com",
])
def test_user_add_invalid_email(mig, email):
    fails(mig.cli("user", "add", email, input="password123\n"), 1)


def test_user_disable(mig):
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("user", "disable", email))
    fails(mig.cli("user", "disable", wh.unique("ghost-") + "@example.com"),
          1)


def test_user_disable_any_case(mig):
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("user", "disable", email.upper()))
    fails(mig.cli("token", email), 1)


# -- tenants -------------------------------------------------------------


def test_tenant_add(mig):
    ok(mig.cli("tenant", "add", wh.unique("acme-")))
    ok(mig.cli("tenant", "add", wh.unique("corp-"), "--name", "Corp Inc."))
    ok(mig.cli("tenant", "add", "a"))
    ok(mig.cli("tenant", "add", "0123456789"))
    ok(mig.cli("tenant", "add", "b" * 63))
    ok(mig.cli("tenant", "add", "a-b-c"))


@pytest.mark.parametrize("slug", [
    "Acme",
    "ACME",
    "ac_me",
    "c" * 64,
    "-acme",
    "",
    "ac.me",
    "ac me",
    "acm\u00e9",
    "../x",
], ids=["upper_first", "all_upper", "underscore", "64_chars",
        "leading_dash", "empty", "dot", "space", "non_ascii", "dotdot"])
def test_tenant_add_invalid_slug(mig, slug):
    cp = fails(mig.cli("tenant", "add", slug), 1)
    assert re.search(r"a-z|lowercase", cp.stderr, re.I), wh.describe(cp)


def test_tenant_add_duplicate(mig):
    slug = wh.unique("dup-")
    ok(mig.cli("tenant", "add", slug))
    fails(mig.cli("tenant", "add", slug), 1, "already exists")
    fails(mig.cli("tenant", "add", slug, "--name", "Other"), 1,
          "already exists")


# -- memberships ---------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_member_add(mig, role):
    tenant = wh.add_tenant(mig.cli)
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("member", "add", tenant, email, role))


def test_member_add_unknown_tenant(mig):
    email, _, _ = wh.add_user(mig.cli)
    fails(mig.cli("member", "add", wh.unique("nosuch-"), email, "member"), 1)


def test_member_add_unknown_user(mig):
    tenant = wh.add_tenant(mig.cli)
    fails(mig.cli("member", "add", tenant,
                  wh.unique("ghost-") + "@example.com", "member"), 1)


@pytest.mark.parametrize("role", ["superuser", "viewer", "owners"])
def test_member_add_invalid_role(mig, role):
    tenant = wh.add_tenant(mig.cli)
    email, _, _ = wh.add_user(mig.cli)
    fails(mig.cli("member", "add", tenant, email, role), 1,
          "owner", "admin", "member")


def test_member_add_again_updates_role(mig):
    tenant = wh.add_tenant(mig.cli)
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("member", "add", tenant, email, "member"))
    ok(mig.cli("member", "add", tenant, email, "admin"))
    ok(mig.cli("member", "add", tenant, email, "admin"))


def test_member_remove(mig):
    tenant = wh.add_tenant(mig.cli)
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("member", "add", tenant, email, "member"))
    ok(mig.cli("member", "remove", tenant, email))
    # Added again after removal: reactivated.
    ok(mig.cli("member", "add", tenant, email, "owner"))
    ok(mig.cli("member", "remove", tenant, email))


def test_member_remove_no_membership(mig):
    tenant = wh.add_tenant(mig.cli)
    email, _, _ = wh.add_user(mig.cli)
    fails(mig.cli("member", "remove", tenant, email), 1)
    fails(mig.cli("member", "remove", wh.unique("nosuch-"), email), 1)
    fails(mig.cli("member", "remove", tenant,
                  wh.unique("ghost-") + "@example.com"), 1)


def test_member_changes_seen_by_api(mig):
    """Remove, re-add with another role: the API follows each change."""
    srv = mig.serve()
    m = wh.make_member(mig.cli, role="member")
    path = "/api/builds/%s/builds" % m.tenant
    wh.assert_json(srv.get(path, headers=m.bearer()), 200)
    ok(mig.cli("member", "remove", m.tenant, m.email))
    wh.assert_error(srv.get(path, headers=m.bearer()), 403)
    ok(mig.cli("member", "add", m.tenant, m.email, "admin"))
    wh.assert_json(srv.get(path, headers=m.bearer()), 200)


# -- tokens --------------------------------------------------------------


def test_token(mig):
    email, _, user_id = wh.add_user(mig.cli)
    before = int(time.time())
    cp = ok(mig.cli("token", email))
    lines = cp.stdout.split("\n")
    assert len(lines) == 2 and lines[1] == "", wh.describe(cp)
    token = lines[0]
    assert wh.JWT_RE.match(token), wh.describe(cp)
    header, payload, _ = wh.decode_jwt(token)
    assert header.get("alg") == "HS256", header
    assert wh.jwt_signature_ok(token)
    assert payload.get("userId") == user_id, payload
    assert isinstance(payload.get("exp"), int) and payload["exp"] > before


def test_token_email_any_case(mig):
    email, _, user_id = wh.add_user(mig.cli)
    token = wh.get_token(mig.cli, email.upper())
    assert wh.decode_jwt(token)[1].get("userId") == user_id


@pytest.mark.parametrize("ttl,seconds", [
    ("3600", 3600), ("90m", 5400), ("2h", 7200), ("7d", 604800),
    ("45s", 45),
])
def test_token_ttl(mig, ttl, seconds):
    email, _, _ = wh.add_user(mig.cli)
    before = int(time.time())
    token = wh.get_token(mig.cli, email, "--ttl", ttl)
    after = int(time.time())
    exp = wh.decode_jwt(token)[1]["exp"]
    assert before + seconds <= exp <= after + seconds + 1, \
        (before, exp, after, seconds)


@pytest.mark.parametrize("ttl", ["forever", "10x", "-5", "0", "1.5h",
                                 "h"])
def test_token_bad_ttl(mig, ttl):
    email, _, _ = wh.add_user(mig.cli)
    cp = mig.cli("token", email, "--ttl", ttl)
    assert cp.returncode in (1, 2), wh.describe(cp)
    assert cp.stdout == "", wh.describe(cp)
    fails(cp, cp.returncode, "ttl")


def test_token_unknown_user(mig):
    cp = fails(mig.cli("token", wh.unique("ghost-") + "@example.com"), 1)
    assert cp.stdout == "", wh.describe(cp)


def test_token_disabled_user(mig):
    email, _, _ = wh.add_user(mig.cli)
    ok(mig.cli("user", "disable", email))
    cp = fails(mig.cli("token", email), 1)
    assert cp.stdout == "", wh.describe(cp)


# -- configuration -------------------------------------------------------

BAD_ENV = [
    ("WHARF_LISTEN", "nonsense"),
    ("WHARF_LISTEN", "127.0.0.1:99999"),
    ("WHARF_EDGE_LISTEN", "nonsense"),
    ("MAX_UPLOAD_SIZE", "lots"),
    ("MAX_UPLOAD_SIZE", "-1mb"),
    ("JWT_SECRET", "short"),
    ("WHARF_LOG_LEVEL", "loud"),
]


@pytest.mark.parametrize("command", [
    ["migrate"],
    ["token", "a@example.com"],
    ["tenant", "add", "acme"],
    ["serve"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("var,value", BAD_ENV,
                         ids=["%s=%s" % kv for kv in BAD_ENV])
def test_invalid_environment_stops_command(wenv, command, var, value):
    cp = wenv.cli(*command, env={var: value})
    fails(cp, 1, var)
    assert "api listening" not in cp.stdout, wh.describe(cp)


def test_invalid_environment_creates_nothing(wenv):
    fails(wenv.cli("tenant", "add", "acme", env={"WHARF_LISTEN": "x"}), 1,
          "WHARF_LISTEN")
    ok(wenv.cli("migrate"))
    ok(wenv.cli("tenant", "add", "acme"))


def test_generated_jwt_secret(wenv):
    no_secret = {"JWT_SECRET": None}
    secret_file = wenv.data_dir / "jwt_secret"
    ok(wenv.cli("migrate", env=no_secret))
    assert secret_file.is_file()
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    content = secret_file.read_bytes()
    assert len(content.strip()) >= 32

    email, _, user_id = wh.add_user(lambda *a, input=None: wenv.cli(
        *a, input=input, env=no_secret))
    tenant = wh.add_tenant(lambda *a: wenv.cli(*a, env=no_secret))
    ok(wenv.cli("member", "add", tenant, email, "member", env=no_secret))
    token = ok(wenv.cli("token", email, env=no_secret)).stdout.strip()
    assert secret_file.read_bytes() == content
    # Not signed with the test secret: the file's secret was used.
    assert not wh.jwt_signature_ok(token)

    wenv.env.pop("JWT_SECRET")
    srv = wenv.serve()
    resp = srv.get("/api/builds/%s/builds" % tenant,
                   headers={"Authorization": "Bearer " + token})
    assert wh.assert_json(resp, 200)["success"] is True, wh.show(resp)
    assert secret_file.read_bytes() == content
    assert content.strip().decode() not in srv.log()


# -- signals ---------------------------------------------------------------


def test_sigterm_exits_zero(wenv):
    srv = wenv.serve()
    assert wh.assert_json(srv.get("/healthz"), 200) == {"status": "ok"}
    rc = srv.stop()
    assert rc == 0, "exit code %r after SIGTERM\n%s" % (rc, srv.log())
