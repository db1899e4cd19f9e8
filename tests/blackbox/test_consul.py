"""Consul integration (SPEC section 7) against a real agent.

A throw-away `consul agent -dev` (tests/consul_agent.py; the binary comes from
scripts/consul-build) serves the whole module, and a second one with ACLs on
(default deny) serves the ACL tests; every test uses its own
SERVICE_NAME, so service IDs and lock keys never meet across tests. Timings
the tests rely on: shardid renews its session (TTL 10 s) every ~3.3 s, Consul
invalidates an unrenewed session after up to twice the TTL; there is no lock
delay (every state write is fenced by the session instead), and a standby
watches the lock key with a blocking query. With CONSUL_URL set an instance
hands out IDs only while it holds the lock and has merged the shard state
(test_failover.py covers the state itself); CONSUL_FAIL_OPEN=1 serves while
Consul is unreachable.
"""
import base64
import json
import re
import signal
import sys
import time

import pytest

from bbutil import BUILDS, REPO, BuildServer, build_missing, free_port, run_bin, uniq

sys.path.insert(0, str(REPO / "tests"))
from consul_agent import ACL_ROOT, ConsulAgent  # noqa: E402

SESSION_TTL_S = 10
LOCK_DELAY_S = 0


@pytest.fixture
def name():
    return uniq("sid").replace("-", "")   # SERVICE_NAME: [A-Za-z0-9._-], short


def wait_until(fn, timeout, what, interval=0.1):
    """Polls fn until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, ValueError) as e:   # agent restarting, connection refused, ...
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def start(servers, url, name, shard=1, total=1, env=None, args=None):
    e = {"CONSUL_URL": url, "SERVICE_NAME": name, "CONTAINER_IP": "127.0.0.1",
         "SHARD_ID": shard, "TOTAL_SHARDS": total}
    e.update(env or {})
    return servers(env=e, args=args)


def health(s):
    r = s.get("/health")
    return r.status, r.json


def consul_state(s):
    return health(s)[1].get("consul", {})


def lock_held(s):
    st, body = health(s)
    return st == 200 and body.get("consul", {}).get("lock") == "held"


def kv_entry(agent, key):
    st, val = agent.request("GET", f"/v1/kv/{key}")
    return val[0] if st == 200 and val else None


def kv_holder(agent, key):
    """(session, decoded holder JSON) of the lock key, or (None, None)."""
    e = kv_entry(agent, key)
    if not e or not e.get("Session"):
        return None, None
    return e["Session"], json.loads(base64.b64decode(e["Value"] or ""))


def passing(agent, name):
    return agent.get(f"/v1/health/service/{name}?passing")


def metric(s, name):
    for line in s.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found")


def sessions_named(agent, sname):
    return [x for x in agent.get("/v1/session/list") if x.get("Name") == sname]


def closed_port():
    """A loopback port where nothing listens (connections are refused)."""
    return free_port()


# --------------------------------------------------------------------------- #
@pytest.mark.timeout(40)
def test_registration_address_port_tags_meta_and_passing_check(servers, agent, name):
    s = start(servers, agent.url, name, shard=2, total=3)
    sid = f"{name}-shard-2"
    entries = wait_until(lambda: passing(agent, name), 10, "a passing instance")
    assert len(entries) == 1, entries
    svc = entries[0]["Service"]
    assert svc["ID"] == sid
    assert svc["Service"] == name
    assert svc["Address"] == "127.0.0.1"
    assert svc["Port"] == s.port
    assert svc["Tags"] == ["shard-2"]
    version = run_bin(["--version"]).stdout.split()[1]
    assert svc["Meta"] == {"shard_id": "2", "total_shards": "3", "version": version}

    (check,) = [c for c in entries[0]["Checks"] if c["ServiceID"] == sid]
    assert check["Type"] == "http" and check["Status"] == "passing"
    assert check["Interval"] == "10s" and check["Timeout"] == "2s"

    # The service holds the shard: session + lock, and says so.
    session, holder = wait_until(lambda: kv_holder(agent, f"{name}/shards/2")[0] and
                                 kv_holder(agent, f"{name}/shards/2"), 5, "the lock")
    assert holder["port"] == s.port and holder["pid"] == s.proc.pid
    assert holder["service_id"] == sid and holder["shard"] == 2
    (info,) = agent.get(f"/v1/session/info/{session}")
    assert info["Name"] == sid and info["TTL"] == f"{SESSION_TTL_S}s"
    assert info["Behavior"] == "delete"
    assert info["LockDelay"] == LOCK_DELAY_S * 10**9
    assert not info.get("NodeChecks") and not info.get("ServiceChecks")

    st, body = health(s)
    assert st == 200 and body["status"] == "healthy"
    assert body["consul"] == {"registered": True, "lock": "held", "state": "synced",
                              "cluster": "agrees", "generation": 1,
                              "reachable": True, "failOpen": False}
    assert metric(s, "shardid_consul_registered") == 1
    assert metric(s, "shardid_shard_lock_held") == 1
    assert s.next_id(uniq(), "int").status == 200

    # Consul's own check (not just the initial status) reaches /health: it
    # runs within one interval and records the answer. (Output-only changes
    # reach the catalog late; the agent's local view has them at once.)
    def checked():
        c = agent.get("/v1/agent/checks")[f"service:{sid}"]
        return c["Output"] and c
    c = wait_until(checked, 12, "Consul's first HTTP check", interval=0.5)
    assert f"HTTP GET http://127.0.0.1:{s.port}/health: 200 OK" in c["Output"], c
    assert '"status":"healthy"' in c["Output"]


def test_sigterm_deregisters_releases_and_destroys(servers, agent, name):
    s = start(servers, agent.url, name)
    sid = f"{name}-shard-1"
    wait_until(lambda: lock_held(s) and consul_state(s).get("registered"), 5, "registration")
    assert sid in agent.services()
    assert len(sessions_named(agent, sid)) == 1

    t0 = time.monotonic()
    s.stop()   # SIGTERM; asserts exit 0
    assert time.monotonic() - t0 < 3
    assert sid not in agent.services()
    assert passing(agent, name) == []
    assert kv_holder(agent, f"{name}/shards/1") == (None, None)
    assert sessions_named(agent, sid) == []
    out = s.output()
    assert "Consul: deregister done" in out and "Consul: release lock done" in out
    assert "Consul: destroy session done" in out


def test_sigint_also_deregisters(servers, agent, name):
    s = start(servers, agent.url, name)
    sid = f"{name}-shard-1"
    wait_until(lambda: sid in agent.services(), 5, "registration")
    s.stop(signal.SIGINT)
    assert sid not in agent.services()


@pytest.mark.timeout(40)
@pytest.mark.parametrize("fail_open", [False, True], ids=["safe", "fail-open"])
def test_consul_started_after_shardid(servers, consul_bin, name, fail_open):
    port = closed_port()
    s = start(servers, f"http://127.0.0.1:{port}", name,
              env={"CONSUL_FAIL_OPEN": "1"} if fail_open else None)
    wait_until(lambda: consul_state(s).get("reachable") is False and
               consul_state(s).get("lastError"), 3, "an unreachable Consul in /health")
    assert consul_state(s)["registered"] is False
    assert consul_state(s)["failOpen"] is fail_open
    st, body = health(s)
    if fail_open:
        # The opt-out: serves from its own journal while Consul is down.
        assert st == 200 and body["status"] == "healthy"
        assert s.next_id(uniq(), "int").status == 200
    else:
        # The default: no lock, no IDs.
        assert st == 503 and "waiting for the Consul lock" in body["reason"]
        assert "Consul unreachable" in body["reason"]
        r = s.next_id(uniq(), "int")
        assert r.status == 503 and "waiting for the Consul lock" in r.json["message"]
        assert metric(s, "shardid_shard_lock_held") == 0
    assert metric(s, "shardid_consul_registered") == 0
    assert "Consul request failed; retrying" in s.output()

    late = ConsulAgent(binary=consul_bin)
    try:
        late.start(http_port=port)
        sid = f"{name}-shard-1"
        entries = wait_until(lambda: passing(late, name), 20, "registration once Consul is up")
        assert entries[0]["Service"]["ID"] == sid and entries[0]["Service"]["Port"] == s.port
        wait_until(lambda: lock_held(s), 5, "the lock")
        st, body = health(s)
        assert body["consul"]["reachable"] is True and "lastError" not in body["consul"]
        assert "Consul reachable again" in s.output()
        s.stop()
        assert sid not in late.services()
    finally:
        late.stop()


@pytest.mark.timeout(40)
def test_agent_restart_that_lost_state_gets_registration_back(servers, agent, name):
    s = start(servers, agent.url, name)
    sid = f"{name}-shard-1"
    wait_until(lambda: passing(agent, name), 5, "registration")
    agent.restart(down_for=1.0)
    assert sid not in agent.services()   # a dev agent forgets everything
    entries = wait_until(lambda: passing(agent, name), 20, "re-registration after the restart")
    assert entries[0]["Service"]["ID"] == sid
    wait_until(lambda: kv_holder(agent, f"{name}/shards/1")[0], 5, "the lock re-acquired")
    wait_until(lambda: lock_held(s), 5, "the lock held again")
    assert s.next_id(uniq(), "int").status == 200


@pytest.mark.timeout(30)
def test_registration_removed_behind_its_back_is_restored(servers, agent, name):
    s = start(servers, agent.url, name)
    sid = f"{name}-shard-1"
    wait_until(lambda: sid in agent.services(), 5, "registration")
    agent.put(f"/v1/agent/service/deregister/{sid}")
    assert sid not in agent.services()
    # Checked every 10 s; the session and lock are untouched meanwhile.
    wait_until(lambda: passing(agent, name), 13, "re-registration", interval=0.25)
    assert lock_held(s)
    assert "registration missing in Consul" in s.output()


@pytest.mark.timeout(40)
def test_duplicate_shard_refuses_until_the_holder_stops(servers, agent, name):
    a = start(servers, agent.url, name, shard=1, total=2)
    wait_until(lambda: lock_held(a) and consul_state(a).get("registered"), 5, "first holder")
    b = start(servers, agent.url, name, shard=1, total=2)

    # Not just 503: until its acquire is answered the duplicate is 503
    # "waiting for the Consul lock" (lock "unknown") too.
    def refused():
        st, body = health(b)
        return st == 503 and body.get("consul", {}).get("lock") == "held-elsewhere" and body
    body = wait_until(refused, 5, "the duplicate to stand by (lock held elsewhere)")
    assert body["status"] == "unhealthy"
    assert "held by another instance" in body["reason"]
    assert body["consul"]["lock"] == "held-elsewhere"
    r = b.next_id(uniq(), "int")
    assert r.status == 503 and r.json["error"] and "held by another" in r.json["message"]
    assert b.batch(uniq(), 5, "long").status == 503
    assert metric(b, "shardid_shard_lock_held") == 0
    # The standby did not take over the registration of the same service ID.
    assert agent.services()[f"{name}-shard-1"]["Port"] == a.port
    assert a.next_id(uniq(), "int").status == 200

    a.stop()
    wait_until(lambda: lock_held(b), 8, "the standby to take over")
    assert b.next_id(uniq(), "int").status == 200
    entries = wait_until(lambda: [e for e in passing(agent, name)
                                  if e["Service"]["Port"] == b.port], 8, "the standby registered")
    assert entries[0]["Service"]["ID"] == f"{name}-shard-1"
    assert kv_holder(agent, f"{name}/shards/1")[1]["port"] == b.port


@pytest.mark.timeout(70)
def test_kill9_holder_taken_over_after_session_ttl(servers, agent, name):
    a = start(servers, agent.url, name)
    wait_until(lambda: lock_held(a), 5, "first holder")
    dead_session, holder = kv_holder(agent, f"{name}/shards/1")
    assert dead_session and holder["pid"] == a.proc.pid, (dead_session, holder)
    b = start(servers, agent.url, name)
    wait_until(lambda: health(b)[0] == 503, 5, "the standby")

    a.kill()
    t0 = time.monotonic()
    # The dead holder's session lives on until Consul expires it, and for as
    # long as it does the standby refuses: checked over the whole window. The
    # session is looked up after the standby answered, so a session still
    # there means it was there when the standby answered (one that expired
    # never comes back).
    refusals = 0
    while True:
        st, nid = health(b)[0], b.next_id(uniq(), "int").status
        if not agent.get(f"/v1/session/info/{dead_session}"):
            break
        assert (st, nid) == (503, 503), \
            f"the standby served while the dead holder's session still held the lock ({st}, {nid})"
        refusals += 1
        assert time.monotonic() - t0 < 2 * SESSION_TTL_S + 8, "the dead holder's session never expired"
        time.sleep(0.25)
    assert refusals > 0, "the session was gone before the standby was asked"
    wait_until(lambda: lock_held(b), 8, "takeover once the session expired", interval=0.25)
    took = time.monotonic() - t0
    # Consul never invalidates a session before its TTL.
    assert took >= SESSION_TTL_S, took
    assert b.next_id(uniq(), "int").status == 200
    # Same service ID on the same agent: the successor replaces the dead
    # holder's (critical) entry instead of inheriting its check status, so it
    # is passing at once rather than after Consul's next check run.
    entries = wait_until(lambda: [e for e in passing(agent, name) if e["Service"]["Port"] == b.port],
                         3, "the successor registered and passing")
    assert len(passing(agent, name)) == 1 and entries[0]["Service"]["ID"] == f"{name}-shard-1"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("build", list(BUILDS))
def test_address_found_on_the_interfaces_is_advertised(tmp_path, agent, name, build):
    """No CONTAINER_IP and the wildcard BIND_ADDR (the default): the address
    comes from the host's interfaces (getifaddrs) and the log names the
    interface it came from. Needs a host with a non-loopback IPv4 address."""
    if build_missing(build):
        pytest.skip(build_missing(build))
    s = BuildServer(tmp_path / "s", build,
                    env={"CONSUL_URL": agent.url, "SERVICE_NAME": name, "BIND_ADDR": "0.0.0.0"})
    try:
        s.start()
        entries = wait_until(lambda: passing(agent, name) or agent.services().get(f"{name}-shard-1"),
                             5, "registration")
        svc = agent.services()[f"{name}-shard-1"]
        assert svc["Address"] != "127.0.0.1" and svc["Port"] == s.port, (svc, entries)
        m = re.search(r'msg="Consul enabled" .* address=(\S+) address_from=(\S+)', s.output())
        assert m and m.group(1) == svc["Address"] and m.group(2) not in ("fallback", "lo"), \
            s.output()
    finally:
        s.finish()


@pytest.mark.timeout(30)
def test_three_shards_register_and_never_collide(servers, agent, name):
    # No CONTAINER_IP: the specific BIND_ADDR (127.0.0.1) is advertised.
    shards = [start(servers, agent.url, name, shard=k, total=3, env={"CONTAINER_IP": None})
              for k in (1, 2, 3)]
    entries = wait_until(lambda: len(passing(agent, name)) == 3 and passing(agent, name), 10,
                         "three passing instances")
    by_tag = {e["Service"]["Tags"][0]: e["Service"] for e in entries}
    assert sorted(by_tag) == ["shard-1", "shard-2", "shard-3"]
    for k, s in enumerate(shards, 1):
        svc = by_tag[f"shard-{k}"]
        assert svc["ID"] == f"{name}-shard-{k}" and svc["Port"] == s.port
        assert svc["Address"] == "127.0.0.1"
        assert svc["Meta"]["shard_id"] == str(k) and svc["Meta"]["total_shards"] == "3"
        wait_until(lambda: lock_held(s), 5, f"shard {k} lock")

    for dtype in ("int", "long", "snowflake"):
        entity = uniq(dtype)
        seen = []
        for _ in range(3):   # round-robin over the shards, as a client would
            for s in shards:
                r = s.batch(entity, 200, dtype)
                assert r.status == 200, r
                seen += [int(v) for v in r.json["values"]]
        assert len(seen) == len(set(seen)), f"{dtype}: duplicate IDs across shards"


def test_fail_open_holder_still_needs_the_lock_when_consul_answers(servers, agent, name):
    # Fail-open only covers an unreachable Consul: a reachable one decides.
    a = start(servers, agent.url, name, args=["--consul-fail-open"])
    wait_until(lambda: lock_held(a), 5, "the first holder")
    assert consul_state(a)["failOpen"] is True
    assert a.next_id(uniq(), "int").status == 200
    b = start(servers, agent.url, name, env={"CONSUL_FAIL_OPEN": "1"})
    wait_until(lambda: consul_state(b).get("lock") == "held-elsewhere", 5, "the standby")
    r = b.next_id(uniq(), "int")
    assert r.status == 503 and "held by another instance" in r.json["message"]


def test_unresolvable_consul_host_refuses_unless_fail_open(servers, name):
    s = start(servers, "http://consul.invalid:8500", name)
    wait_until(lambda: health(s)[0] == 503 and consul_state(s)["reachable"] is False, 5,
               "an unreachable Consul")
    assert s.next_id(uniq(), "int").status == 503
    s = start(servers, "http://consul.invalid:8500", name, args=["--consul-fail-open"])
    # Serves once the lookup has failed: no answer at all is what fail-open covers.
    wait_until(lambda: health(s)[0] == 200, 5, "fail-open serving")
    assert s.next_id(uniq(), "int").status == 200
    assert consul_state(s)["reachable"] is False
    wait_until(lambda: "cannot resolve consul.invalid" in s.output(), 5, "a log line about the name")
    assert "cannot resolve consul.invalid" in consul_state(s)["lastError"]


def least_privilege_token(agent, name):
    """A token with only the rights the README lists for an instance."""
    return agent.token_with_rules(name, f'service "{name}" {{ policy = "write" }}\n'
                                        f'session "{agent.node}" {{ policy = "write" }}\n'
                                        f'key_prefix "{name}/shards/" {{ policy = "write" }}\n'
                                        f'key "{name}/config" {{ policy = "write" }}\n')


@pytest.mark.timeout(40)
@pytest.mark.parametrize("rights", ["management", "least-privilege"])
def test_acl_token_registers_and_locks(servers, acl_agent, name, rights):
    token = ACL_ROOT if rights == "management" else least_privilege_token(acl_agent, name)
    s = start(servers, acl_agent.url, name, env={"CONSUL_HTTP_TOKEN": token})
    entries = wait_until(lambda: passing(acl_agent, name), 10, "a passing instance")
    assert [e["Service"]["Port"] for e in entries] == [s.port]
    wait_until(lambda: lock_held(s), 5, "the lock")
    assert kv_holder(acl_agent, f"{name}/shards/1")[1]["pid"] == s.proc.pid

    s.stop()
    assert passing(acl_agent, name) == []
    assert kv_holder(acl_agent, f"{name}/shards/1") == (None, None)


@pytest.mark.parametrize("token", ["wrong-token", None], ids=["wrong", "missing"])
def test_acl_refusal_is_reported_and_registers_nothing(servers, acl_agent, name, token):
    env = {"CONSUL_HTTP_TOKEN": token} if token else {}
    s = start(servers, acl_agent.url, name, env=env)
    err = wait_until(lambda: consul_state(s).get("lastError"), 5, "the refusal in /health")
    assert "HTTP 403" in err, err
    assert ("ACL not found" if token else "lacks permission") in err
    assert consul_state(s)["lock"] != "held" and consul_state(s)["registered"] is False
    wait_until(lambda: "Consul refused a request" in s.output(), 5, "a log line")
    # Consul answers and refuses the lock: no lock, no IDs.
    r = s.next_id(uniq(), "int")
    assert r.status == 503 and "waiting for the Consul lock" in r.json["message"]
    assert acl_agent.get("/v1/agent/services") == {}
    assert kv_entry(acl_agent, f"{name}/shards/1") is None


def test_acl_refusal_in_fail_open_mode_hands_out_nothing(servers, acl_agent, name):
    # A refusal is an answer: fail-open does not cover it.
    s = start(servers, acl_agent.url, name,
              env={"CONSUL_HTTP_TOKEN": "wrong-token", "CONSUL_FAIL_OPEN": "1"})
    wait_until(lambda: "HTTP 403" in (consul_state(s).get("lastError") or ""), 5, "the refusal")
    st, body = health(s)
    assert st == 503 and "waiting for the Consul lock" in body["reason"]
    assert s.next_id(uniq(), "int").status == 503


# --------------------------------------------------------------------------- #
# The cluster configuration in KV (<SERVICE_NAME>/config)
# --------------------------------------------------------------------------- #
def kv_text(agent, key):
    e = kv_entry(agent, key)
    return base64.b64decode(e["Value"] or "").decode() if e else None


def refuses_to_serve(s, *parts):
    st, body = health(s)
    if st != 503 or not all(p in body.get("reason", "") for p in parts):
        return False
    r = s.next_id(uniq(), "long")
    return r.status == 503 and r.json["error"] == "Shard not owned"


@pytest.mark.timeout(30)
def test_first_instance_writes_the_cluster_configuration(servers, agent, name):
    s = start(servers, agent.url, name, shard=2, total=3, env={"SNOWFLAKE_LAYOUT": "twitter"})
    wait_until(lambda: lock_held(s), 10, "the lock")
    assert kv_text(agent, f"{name}/config") == "totalShards=3 layout=twitter generation=1"
    assert "cluster configuration created in Consul" in s.output()
    # The next shard with the same configuration reads it and serves.
    t = start(servers, agent.url, name, shard=1, total=3, env={"SNOWFLAKE_LAYOUT": "twitter"})
    wait_until(lambda: lock_held(t), 10, "the second shard's lock")
    assert t.next_id(uniq(), "int").json["value"] % 3 == 1
    assert "cluster configuration agrees" in t.output()
    assert kv_text(agent, f"{name}/config") == "totalShards=3 layout=twitter generation=1"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("differs", ["totalShards", "layout"])
def test_differing_configuration_never_serves_until_it_agrees(servers, agent, name, differs):
    """An instance started with another TOTAL_SHARDS (or layout) than the
    cluster's would hand out values of the cluster's other shards (shard 3
    of 3 issues 3, 6, 9, ..., which shard 1 and 2 of 2 have issued): it
    takes no lock, registers nothing and hands out nothing, naming both
    configurations, until KV and it agree."""
    a = start(servers, agent.url, name, shard=1, total=2)
    wait_until(lambda: lock_held(a), 10, "the first instance's lock")
    env = {"SNOWFLAKE_LAYOUT": "twitter"} if differs == "layout" else {}
    total = 3 if differs == "totalShards" else 2
    b = start(servers, agent.url, name, shard=2, total=total, env=env)
    mine = f"totalShards={total} layout={'twitter' if differs == 'layout' else 'sonyflake'}"
    theirs = f"{name}/config: totalShards=2 layout=sonyflake generation=1"
    wait_until(lambda: refuses_to_serve(b, theirs, f"differs from this instance's ({mine})"), 10,
               "the refusal naming both configurations")
    assert "refusing to serve" in b.output() and mine in b.output()
    # Held off for as long as they differ: no lock, no registration, no ID.
    for _ in range(20):
        assert refuses_to_serve(b, theirs)
        assert kv_holder(agent, f"{name}/shards/2") == (None, None)
        assert [e["Service"]["Port"] for e in passing(agent, name)] == [a.port]
        time.sleep(0.1)   # spread the checks over 2 s of the instance's life
    assert a.next_id(uniq(), "int").status == 200   # the cluster itself is untouched
    # An operator makes KV agree (here: with this instance): it re-reads and serves.
    agent.put(f"/v1/kv/{name}/config", f"{mine} generation=1".encode())
    wait_until(lambda: lock_held(b), 20, "the lock once the configurations agree")
    assert b.next_id(uniq(), "int").status == 200


# --------------------------------------------------------------------------- #
# The agent's name: /etc/hosts, then DNS with resolv.conf's search domains
# (the test build reads the two files from SHARDID_TEST_HOSTS and
# SHARDID_TEST_RESOLV_CONF)
# --------------------------------------------------------------------------- #
class FakeDns:
    """Answers A queries for `names` with 127.0.0.1 and NXDOMAIN otherwise,
    on udp 127.0.0.153:53; records every name asked."""

    def __init__(self, names):
        import socket
        import threading
        self.names = {n.lower() for n in names}
        self.asked = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.153", 53))
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            labels, i = [], 12
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode())
                i += 1 + q[i]
            name, qtype = ".".join(labels).lower(), int.from_bytes(q[i + 1:i + 3], "big")
            self.asked.append((name, qtype))
            question = q[12:i + 5]
            if name in self.names and qtype == 1:
                head = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
                answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([127, 0, 0, 1])
                self.sock.sendto(head + question + answer, peer)
            elif name in self.names:   # the name exists, not with this type
                self.sock.sendto(q[:2] + b"\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + question, peer)
            else:
                self.sock.sendto(q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question, peer)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("via", ["hosts", "dns"])
def test_agent_found_by_name(tmp_path, agent, name, via):
    if build_missing("asan"):
        pytest.skip(build_missing("asan"))
    port = agent.url.rsplit(":", 1)[1]
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    dns = None
    if via == "hosts":
        hosts.write_text("# test\n127.0.0.1\tconsul-agent.test  other\n")
        url = f"http://CONSUL-AGENT.test:{port}"
        resolv.write_text("nameserver 127.0.0.153\n")   # never asked
    else:
        try:
            dns = FakeDns(["agent.svc.test"])
        except OSError as e:
            pytest.skip(f"cannot serve DNS on 127.0.0.153:53 here: {e}")
        hosts.write_text("127.0.0.1 localhost\n")
        resolv.write_text("nameserver 127.0.0.153\nsearch nowhere.test svc.test\n")
        url = f"http://agent:{port}"   # fewer dots than ndots: the search list first
    s = BuildServer(tmp_path / "s", "asan",
                    env={"CONSUL_URL": url, "SERVICE_NAME": name, "CONTAINER_IP": "127.0.0.1",
                         "SHARDID_TEST_HOSTS": str(hosts), "SHARDID_TEST_RESOLV_CONF": str(resolv)})
    try:
        s.start()
        wait_until(lambda: lock_held(s), 10, "the lock through the agent found by name")
        assert [e["Service"]["Port"] for e in passing(agent, name)] == [s.port]
        if dns:
            assert dns.asked[:2] == [("agent.nowhere.test", 1), ("agent.svc.test", 1)], dns.asked
    finally:
        s.finish()
        if dns:
            dns.close()


def _metric_samples(s):
    out = {}
    for line in s.get("/metrics").body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_consul_request_and_lock_metrics(servers, agent, name):
    a = start(servers, agent.url, name)
    wait_until(lambda: lock_held(a), 8, "the lock")
    m = _metric_samples(a)
    assert m['shardid_consul_requests_total{op="create-session"}'] >= 1, m
    assert m['shardid_consul_requests_total{op="acquire-lock"}'] >= 1
    assert m['shardid_consul_request_failures_total{op="acquire-lock"}'] == 0
    assert m['shardid_consul_lock_transitions_total{to="held"}'] == 1
    assert m['shardid_consul_lock_transitions_total{to="lost"}'] == 0
    assert 0 <= m["shardid_consul_lock_confirmed_age_seconds"] < 10
    # A second instance for the same shard stands by: one transition to held-elsewhere.
    b = start(servers, agent.url, name)
    wait_until(lambda: consul_state(b).get("lock") == "held-elsewhere", 8, "the standby")
    mb = _metric_samples(b)
    assert mb['shardid_consul_lock_transitions_total{to="held-elsewhere"}'] == 1
    assert mb['shardid_consul_lock_transitions_total{to="held"}'] == 0
    assert "shardid_consul_lock_confirmed_age_seconds" not in mb


def test_consul_failures_counted_while_unreachable(servers, name):
    s = start(servers, f"http://127.0.0.1:{free_port()}", name)
    def failures():
        m = _metric_samples(s)
        return sum(v for k, v in m.items() if k.startswith("shardid_consul_request_failures_total"))
    wait_until(failures, 5, "a failed Consul request counted")
    m = _metric_samples(s)
    assert "shardid_consul_lock_confirmed_age_seconds" not in m
