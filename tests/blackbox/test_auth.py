"""Admin routes (init, reset, delete): bearer token when ADMIN_TOKEN is set,
loopback-only otherwise."""
import pytest

from bbutil import NETNS_ADDR, NetNS, assert_error, ok, uniq

TOKEN = "s3cret-Token_42"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
BAD_AUTH = [
    ("none", None),
    ("wrong token", "Bearer nope"),
    ("token prefix", f"Bearer {TOKEN[:-1]}"),
    ("token plus suffix", f"Bearer {TOKEN}x"),
    ("empty bearer", "Bearer "),
    ("no scheme", TOKEN),
    ("basic scheme", f"Basic {TOKEN}"),
]


@pytest.fixture(scope="module")
def tok_srv(module_servers):
    return module_servers(env={"ADMIN_TOKEN": TOKEN})


def hdr(auth):
    return {} if auth is None else {"Authorization": auth}


@pytest.mark.parametrize("auth", [a for _, a in BAD_AUTH], ids=[n for n, _ in BAD_AUTH])
def test_init_needs_token(tok_srv, auth):
    e = uniq()
    assert_error(tok_srv.init(e, "int", headers=hdr(auth)), 401)
    assert_error(tok_srv.status(e), 404)


@pytest.mark.parametrize("auth", [a for _, a in BAD_AUTH], ids=[n for n, _ in BAD_AUTH])
def test_reset_needs_token(tok_srv, auth):
    e = uniq()
    tok_srv.take(e, "int")
    assert_error(tok_srv.reset(e, 100, headers=hdr(auth)), 401)
    assert tok_srv.take(e) == 2


@pytest.mark.parametrize("auth", [a for _, a in BAD_AUTH], ids=[n for n, _ in BAD_AUTH])
def test_delete_needs_token(tok_srv, auth):
    e = uniq()
    tok_srv.take(e, "int")
    assert_error(tok_srv.delete(e, headers=hdr(auth)), 401)
    assert ok(tok_srv.status(e))["currentValue"] == 1


def test_401_has_www_authenticate(tok_srv):
    r = tok_srv.init(uniq(), "int")
    assert r.status == 401
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r


def test_admin_routes_with_token(tok_srv):
    e = uniq()
    assert ok(tok_srv.init(e, "int", 10, headers=GOOD), 201)["startValue"] == 10
    assert ok(tok_srv.reset(e, 20, headers=GOOD))["nextValue"] == 20
    assert tok_srv.take(e) == 20
    ok(tok_srv.delete(e, headers=GOOD))
    assert_error(tok_srv.status(e), 404)


def test_read_routes_need_no_token(tok_srv):
    e = uniq()
    assert tok_srv.take(e, "int") == 1
    ok(tok_srv.batch(e, 3))
    ok(tok_srv.status(e))
    ok(tok_srv.get("/api/list"))
    ok(tok_srv.get("/api/types"))
    ok(tok_srv.get("/health"))


def test_token_checked_before_body(tok_srv):
    """An unauthenticated request with a bad body is still 401, not 400."""
    assert_error(tok_srv.init(uniq(), body="nope"), 401)


def test_token_checked_before_existence(tok_srv):
    assert_error(tok_srv.delete(uniq()), 401)


# ---------------------------------------------------- non-loopback clients ---
@pytest.fixture
def netns():
    reason = NetNS.unavailable_reason()
    if reason:
        pytest.skip(f"no non-loopback client possible: {reason}")
    ns = NetNS()
    try:
        ns.create()
    except Exception as e:   # noqa: BLE001
        ns.delete()
        pytest.skip(f"cannot create a network namespace: {e}")
    try:
        yield ns
    finally:
        ns.delete()


def _in_ns_server(servers, env=None):
    """A server listening on 0.0.0.0 inside the namespace."""
    return servers(env={"BIND_ADDR": "0.0.0.0", **(env or {})})


def test_no_token_non_loopback_admin_is_403(netns, servers):
    with netns.enter():
        s = _in_ns_server(servers)
        e = uniq()
        s.take(e, "int")
        assert_error(s.init(uniq(), "int", host=NETNS_ADDR), 403)
        assert_error(s.reset(e, 100, host=NETNS_ADDR), 403)
        assert_error(s.delete(e, host=NETNS_ADDR), 403)
        assert s.take(e) == 2                          # nothing changed
        # loopback in the same namespace is still allowed
        ok(s.reset(e, 100))
        assert s.take(e) == 100
        s.stop()


def test_no_token_non_loopback_read_routes_allowed(netns, servers):
    with netns.enter():
        s = _in_ns_server(servers)
        e = uniq()
        assert ok(s.get("/health", host=NETNS_ADDR))["status"] == "healthy"
        assert s.take(e, "int") == 1
        assert ok(s.next_id(e, host=NETNS_ADDR))["value"] == 2
        ok(s.status(e, host=NETNS_ADDR))
        s.stop()


def test_no_token_non_loopback_bearer_does_not_help(netns, servers):
    with netns.enter():
        s = _in_ns_server(servers)
        r = s.init(uniq(), "int", headers={"Authorization": "Bearer anything"}, host=NETNS_ADDR)
        assert_error(r, 403)
        s.stop()


def test_token_allows_non_loopback_client(netns, servers):
    with netns.enter():
        s = _in_ns_server(servers, {"ADMIN_TOKEN": TOKEN})
        e = uniq()
        assert_error(s.init(e, "int", host=NETNS_ADDR), 401)
        ok(s.init(e, "int", headers=GOOD, host=NETNS_ADDR), 201)
        ok(s.delete(e, headers=GOOD, host=NETNS_ADDR))
        s.stop()
