"""Fixtures of Wharf's end-to-end tests.

`server`: one `wharf serve` per test module, on a fresh data dir, with
JWT_SECRET = wharf_harness.TEST_SECRET and ephemeral loopback ports.
Stopped with SIGTERM at the end of the module; it must exit 0.

`server_env`: extra environment of the module's server; {} here, a
module overrides this fixture to configure its server (for example
WHARF_WORKERS=0).

`wenv`: a fresh data dir and environment for one test, without a
server; `wenv.cli(...)` runs commands, `wenv.serve()` starts a server
and `wenv.start("worker"|"api"|"serve", env)` any role; each is stopped
(and must exit 0) when the test ends, unless the test killed it.

`spawn(data_dir, env, command)`: starts another wharf process (a
`wharf worker` on the module server's data dir, say) that is stopped,
and must exit 0, when the test ends unless the test killed it.

When a test fails, the logs of the servers alive at that moment are
attached to its report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wharf_harness as wh  # noqa: E402

LOG_TAIL_CHARS = 20000


def _require_binary():
    if not (os.path.isfile(wh.WHARF_BIN) and os.access(wh.WHARF_BIN,
                                                       os.X_OK)):
        pytest.fail("wharf binary not found at %s (build it with "
                    "`make`, or set WHARF_BIN)" % wh.WHARF_BIN,
                    pytrace=False)


def _stop_checked(srv):
    rc = srv.stop()
    assert rc == 0, (
        "wharf %s did not exit 0 within %d s of SIGTERM (exit code "
        "%r)\n--- server log ---\n%s" % (srv.command, wh.STOP_TIMEOUT, rc,
                                         srv.log()[-LOG_TAIL_CHARS:]))


@pytest.fixture(scope="module")
def server_env():
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_env):
    _require_binary()
    data_dir = tmp_path_factory.mktemp("wharf") / "data"
    env = wh.base_env(data_dir)
    env.update(server_env)
    srv = wh.start_server(data_dir, env)
    try:
        yield srv
    finally:
        _stop_checked(srv)


@pytest.fixture
def cli(server):
    return server.cli


class WharfEnv:
    """A data dir and environment for one test, without a server."""

    def __init__(self, data_dir, secret=wh.TEST_SECRET):
        self.data_dir = data_dir
        self.env = wh.base_env(data_dir, secret)
        self.servers = []

    def cli(self, *args, input=None, env=None):
        """Runs wharf; env entries override (None: unset) the base."""
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return wh.run_cli(e, *args, input=input)

    def serve(self, env=None):
        return self.start("serve", env)

    def start(self, command, env=None):
        """Starts `wharf COMMAND` (serve, api, worker) on this data dir;
        env entries are added to the base environment."""
        e = dict(self.env)
        e.update(env or {})
        srv = wh.WharfServer(self.data_dir, e, command)
        self.servers.append(srv)
        return srv.start()


@pytest.fixture
def wenv(tmp_path):
    _require_binary()
    w = WharfEnv(tmp_path / "data")
    try:
        yield w
    finally:
        for srv in w.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                _stop_checked(srv)


@pytest.fixture
def spawn():
    """spawn(data_dir, env, command="worker"): another wharf process,
    stopped (exit 0 required) at the end of the test unless killed."""
    _require_binary()
    procs = []

    def start(data_dir, env, command="worker"):
        srv = wh.WharfServer(data_dir, env, command)
        procs.append(srv)
        return srv.start()

    try:
        yield start
    finally:
        for srv in procs:
            if srv.alive():
                _stop_checked(srv)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for srv in list(wh.LIVE_SERVERS):
        log = srv.log()
        if len(log) > LOG_TAIL_CHARS:
            log = "...\n" + log[-LOG_TAIL_CHARS:]
        rep.sections.append(("wharf %s log (%s, %s)"
                             % (srv.command, srv.base_url, srv.log_path),
                             log))


def pytest_configure(config):
    # Tests that take minutes (a real npm install); they run by default.
    config.addinivalue_line(
        "markers", "slow: takes minutes (downloads from the npm registry); "
        "deselect with -m 'not slow'")
