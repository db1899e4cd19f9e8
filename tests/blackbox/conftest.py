"""Black-box tests for the shardid binary.

They start the real server (one process per fixture) on a free loopback port
with its own temporary DATA_DIR and talk to it over HTTP with the standard
library only (http.client and raw sockets). pytest is the only dependency
(`scripts/test-deps` installs it).

Run from the repository root after `make`:

    python3 -m pytest -q tests/blackbox
    SHARDID_BIN=/path/to/other/shardid python3 -m pytest -q tests/blackbox   # another build
    python3 -m pytest -q tests/blackbox -k protocol                         # a subset

Fixtures:
    srv        module-shared server, shard 1 of 1, default config (use uniq() names)
    agent      a throw-away Consul dev agent per module (skips without a Consul binary)
    acl_agent  the same with ACLs on, default deny (management token consul_agent.ACL_ROOT)
    srv23      module-shared server, shard 2 of 3
    servers    factory for fresh servers in a test: servers(env={...}, args=[...])
    module_servers  the same, module-scoped
Each test has a wall-clock limit (SIGALRM; default 20 s, @pytest.mark.timeout(n)
to change it); every socket also has a timeout, so nothing hangs.
"""
import os
import signal
import sys

import pytest

from bbutil import BIN, REPO, Server, stop_all

sys.path.insert(0, str(REPO / "tests"))
import consul_agent  # noqa: E402

DEFAULT_TEST_TIMEOUT_S = 20


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): wall-clock limit for one test")


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.exit(f"shardid binary not found at {BIN}: run `make` or set SHARDID_BIN",
                    returncode=1)


class _Timeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    limit = m.args[0] if m else DEFAULT_TEST_TIMEOUT_S

    def on_alarm(signum, frame):
        raise _Timeout(f"test exceeded its {limit}s limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Factory:
    def __init__(self, tmp_factory, label):
        self.tmp_factory = tmp_factory
        self.label = label
        self.all = []

    def __call__(self, env=None, args=None, start=True):
        s = Server(self.tmp_factory.mktemp(self.label), env=env, args=args)
        self.all.append(s)
        if start:
            s.start()
        return s

    def finish(self):
        stop_all(self.all)


@pytest.fixture
def servers(tmp_path_factory):
    """Factory of fresh servers; all still running are stopped (exit 0 asserted)."""
    f = _Factory(tmp_path_factory, "srv")
    yield f
    f.finish()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory):
    """Like `servers`, for module-scoped fixtures of a test module."""
    f = _Factory(tmp_path_factory, "msrv")
    yield f
    f.finish()


def _shared(tmp_path_factory, env):
    f = _Factory(tmp_path_factory, "shared")
    s = f(env=env)
    return f, s


@pytest.fixture(scope="module")
def _srv_module(tmp_path_factory):
    f, s = _shared(tmp_path_factory, {})
    yield s
    f.finish()


@pytest.fixture(scope="module")
def _srv23_module(tmp_path_factory):
    f, s = _shared(tmp_path_factory, {"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    yield s
    f.finish()


def _alive(s):
    assert s.running, f"server died during this test (exit {s.proc.returncode}):\n{s.output()}"


def _revive(s):
    """A shared server killed by an earlier test is restarted (same DATA_DIR), so
    only the test that crashed it fails."""
    if not s.running:
        s.start()


@pytest.fixture
def srv(_srv_module):
    """Shared server (shard 1 of 1); asserts after the test that it still runs."""
    _revive(_srv_module)
    yield _srv_module
    _alive(_srv_module)


@pytest.fixture
def srv23(_srv23_module):
    """Shared server, shard 2 of 3."""
    _revive(_srv23_module)
    yield _srv23_module
    _alive(_srv23_module)


@pytest.fixture(scope="module")
def consul_bin():
    try:
        return consul_agent.find_consul_binary(build=True)
    except Exception as e:  # no Go toolchain, no network for the module proxy, ...
        pytest.skip(f"no Consul agent available: {e}")


@pytest.fixture(scope="module")
def agent(consul_bin):
    a = consul_agent.ConsulAgent(binary=consul_bin)
    a.start()
    yield a
    a.stop()


@pytest.fixture(scope="module")
def acl_agent(consul_bin):
    a = consul_agent.acl_agent(consul_bin)
    a.start()
    yield a
    a.stop()
