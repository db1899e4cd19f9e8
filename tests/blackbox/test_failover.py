"""Failover: the shard moves between hosts and no value is ever handed out twice
(SPEC section 7, "Consul is also the authority for the shard's state").

With CONSUL_URL set an instance hands out IDs only while it holds the lock
`<SERVICE_NAME>/shards/<k>` and has merged the shard's state from Consul KV;
otherwise the ID routes answer 503 "Shard not owned" and /health 503. A
successor (a standby with an empty DATA_DIR, or a fresh host) reads the KV
state and continues above everything its predecessor handed out, whatever
happened to the predecessor: kill -9, SIGTERM, SIGSTOP past the session TTL,
a network partition from Consul, or a clock that differs from the
predecessor's.

One throw-away `consul agent -dev` serves the module (a second one, with ACLs
on, serves the ACL test); every test has its own SERVICE_NAME. A partition is
made with tests/tcp_relay.py in front of the agent. Every scenario records
every value any instance answered with and checks at the end that the union
has no duplicate (snowflakes across all entities, sequences per entity) and
that sequence values lie in the shard's residue class.

Timings relied on: session TTL 10 s and lock delay 0; Consul invalidates an
unrenewed session 10-20 s after its last renewal (up to twice the TTL); the
holder renews every ~3.3 s with a 5 s request timeout; a standby watches the
lock key with a blocking query and takes over at once when it is freed.
The clock-skew test needs the test build (build/shardid-asan or
SHARDID_ASAN_BIN) and skips without it.
"""
import base64
import collections
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import bbutil
from bbutil import REPO, Server, assert_error, set_clock_offset, uniq

sys.path.insert(0, str(REPO / "tests"))
from consul_agent import ACL_ROOT  # noqa: E402
from tcp_relay import TcpRelay  # noqa: E402

SESSION_TTL_S = 10
# kill -9 / SIGSTOP / partition: Consul drops the session at most 2 x TTL after
# its last renewal; a little slack for a loaded CI machine.
TAKEOVER_MAX_S = 2 * SESSION_TTL_S + 8
MOVE_MAX_S = 5            # SIGTERM: the holder releases, the standby takes over at once
UNHEALTHY_MAX_S = 16      # partition: a failed renewal (5 s timeout, every ~3.3 s) closes the gate
READY_MAX_S = 10          # a fresh instance gets the lock and merges the (small) state
CLOCK_WAIT_S = 5.0        # SPEC 3: wait up to 5 s for the clock, then 503
SLACK_S = 2.5             # sanitizer build, loaded CI machine

TEST_BIN = bbutil.ASAN_BIN

SHARD, TOTAL = 2, 3       # shard 2 of 3: values 2, 5, 8, ... make the residue check bite
SEQ_TYPES = ("int", "long")
CLIENT_ERRORS = (OSError, http.client.HTTPException)


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #
@pytest.fixture
def name():
    return uniq("fo").replace("-", "")   # SERVICE_NAME: [A-Za-z0-9._-], short


class Cluster:
    """The instances (and relays) of one test. start() runs one shardid for
    shard SHARD of TOTAL against `url` (default: self.url) with an empty
    DATA_DIR of its own (a new host); restart an instance with its start()."""

    def __init__(self, tmp_factory, name):
        self.tmp_factory = tmp_factory
        self.name = name
        self.url = None
        self.servers = {}
        self.relays = []

    def start(self, label, url=None, env=None, binary=None, shard=SHARD, total=TOTAL):
        e = {"CONSUL_URL": url or self.url, "SERVICE_NAME": self.name,
             "CONTAINER_IP": "127.0.0.1", "SHARD_ID": shard, "TOTAL_SHARDS": total}
        e.update(env or {})
        s = Server(self.tmp_factory.mktemp(f"fo-{label}"), env=e, binary=binary)
        s.label = label
        self.servers[label] = s
        s.start()
        return s

    def relay(self, host, port):
        r = TcpRelay(host, port)
        self.relays.append(r)
        return r

    def tails(self, n=60):
        out = []
        for label, s in self.servers.items():
            if getattr(s, "stdout_path", None) is None:
                continue
            lines = s.output().splitlines()
            rc = s.proc.poll() if s.proc else None
            out.append(f"----- {label} (port {s.port}, pid {s.proc.pid if s.proc else '-'}, "
                       f"exit {rc}, {s.workdir}) last {n} lines -----")
            out += lines[-n:]
        return "\n".join(out)

    def finish(self):
        for r in self.relays:
            r.heal()   # a server stopping behind a blackhole would wait for its timeouts
        errors = []
        for s in self.servers.values():
            if s.running:
                try:
                    os.kill(s.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                try:
                    s.stop()
                except AssertionError as e:
                    errors.append(str(e))
        for r in self.relays:
            r.close()
        assert not errors, "\n".join(errors)


@pytest.fixture
def cluster(tmp_path_factory, name, request):
    cl = Cluster(tmp_path_factory, name)
    failed_before = request.session.testsfailed
    try:
        yield cl
    finally:
        try:
            cl.finish()
        finally:
            if request.session.testsfailed > failed_before:
                # The servers' logs, past pytest's capture (shown only for failures).
                capman = request.config.pluginmanager.getplugin("capturemanager")
                with capman.global_and_fixture_disabled():
                    sys.stderr.write(f"\n===== server logs of {request.node.name} =====\n"
                                     f"{cl.tails()}\n")


@pytest.fixture
def fleet(cluster, agent):
    """A cluster whose instances use the module's Consul agent."""
    cluster.url = agent.url
    cluster.agent = agent
    return cluster


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def wait_until(fn, timeout, what, cl=None, interval=0.1):
    """Polls fn until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except CLIENT_ERRORS + (ValueError,) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}"
                                 + (f"\n{cl.tails()}" if cl else ""))
        time.sleep(interval)


def health(s, timeout=5.0):
    r = s.get("/health", timeout=timeout)
    return r.status, (r.json or {})


def consul_view(s):
    return health(s)[1].get("consul") or {}


def holds(s):
    """Holds the lock and has merged the KV state (whatever /health's status)."""
    c = consul_view(s)
    return c.get("lock") == "held" and c.get("state") == "synced"


def serving(s):
    st, body = health(s)
    c = body.get("consul") or {}
    return st == 200 and c.get("lock") == "held" and c.get("state") == "synced"


def refusing(s, locks=("held-elsewhere",)):
    """/health 503 unhealthy with the lock in one of `locks` -> the body."""
    st, body = health(s)
    c = body.get("consul") or {}
    if st == 503 and body.get("status") == "unhealthy" and c.get("lock") in locks:
        return body
    return None


def assert_not_owned(resp):
    assert_error(resp, 503, "Shard not owned")


def kv_entry(agent, key):
    st, val = agent.request("GET", f"/v1/kv/{key}")
    return val[0] if st == 200 and val else None


def kv_value(agent, key):
    e = kv_entry(agent, key)
    return base64.b64decode(e["Value"]).decode() if e and e.get("Value") else None


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def entities():
    return {"int": uniq("i"), "long": uniq("l"), "snowflake": uniq("s")}


class Ledger:
    """Every value any instance answered with: (who, entity, dtype, value)."""

    def __init__(self, shard=SHARD, total=TOTAL):
        self.shard, self.total = shard, total
        self.items = []
        self.lock = threading.Lock()

    def record(self, who, entity, dtype, resp):
        """Records the values of a 200 answer; returns them ([] otherwise)."""
        if resp.status != 200:
            return []
        js = resp.json
        assert isinstance(js, dict), resp
        raw = js["values"] if "values" in js else [js["value"]]
        vals = [int(v) for v in raw]
        with self.lock:
            self.items += [(who, entity, dtype, v) for v in vals]
        return vals

    def take(self, who, s, entity, dtype, n=None, timeout=bbutil.IO_TIMEOUT_S):
        """next-id (n None) or next-batch of n; asserts 200; returns the values."""
        r = (s.next_id(entity, dtype, timeout=timeout) if n is None
             else s.batch(entity, n, dtype, timeout=timeout))
        assert r.status == 200, f"{who}: {r!r}"
        vals = self.record(who, entity, dtype, r)
        assert len(vals) == (n or 1), r
        return vals

    def values(self, who=None, dtype=None, entity=None):
        whos = {who} if isinstance(who, str) else (set(who) if who else None)
        return [v for w, e, t, v in self.items
                if (whos is None or w in whos) and (dtype is None or t == dtype)
                and (entity is None or e == entity)]

    def check(self, cl=None):
        """No value twice (sequences per entity, snowflakes across all
        entities: one generator per instance); sequences in the residue class."""
        problems = []
        seq = collections.defaultdict(list)
        sf = []
        for who, ent, dtype, v in self.items:
            if dtype == "snowflake":
                sf.append((v, who, ent))
            else:
                seq[ent].append((v, who))
                if v % self.total != self.shard % self.total:
                    problems.append(f"{who} {ent}: {v} is not shard {self.shard} of {self.total}")
        for ent, pairs in seq.items():
            by_v = collections.defaultdict(list)
            for v, who in pairs:
                by_v[v].append(who)
            problems += [f"{ent}: {v} handed out by {whos}" for v, whos in by_v.items()
                         if len(whos) > 1]
        by_v = collections.defaultdict(list)
        for v, who, ent in sf:
            by_v[v].append((who, ent))
        problems += [f"snowflake {v} handed out as {whos}" for v, whos in by_v.items()
                     if len(whos) > 1]
        assert not problems, ("values handed out twice or outside the shard:\n" +
                              "\n".join(problems[:30]) + (f"\n{cl.tails()}" if cl else ""))
        return len(self.items)

    def assert_above(self, later, earlier, ents):
        """Every value of `later` lies above every value of `earlier`: per entity
        for sequences, across all entities for snowflakes."""
        for dtype, ent in ents.items():
            ent_filter = None if dtype == "snowflake" else ent
            hi = self.values(earlier, dtype, ent_filter)
            lo = self.values(later, dtype, ent_filter)
            if hi and lo:
                assert min(lo) > max(hi), (
                    f"{dtype}: {later} handed out {min(lo)}, not above {earlier}'s {max(hi)}")


def hand_out(led, who, s, ents, singles=5, batch=40):
    """Some next-id and one next-batch per type; all must succeed."""
    for dtype, ent in ents.items():
        for _ in range(singles):
            led.take(who, s, ent, dtype)
        led.take(who, s, ent, dtype, n=batch)


def holder_and_standby(cl, a_kw=None, b_kw=None):
    """A serving, then B started as a standby that refuses (503, held-elsewhere)."""
    a = cl.start("A", **(a_kw or {}))
    wait_until(lambda: serving(a), READY_MAX_S, "A to hold the lock and serve", cl)
    b = cl.start("B", **(b_kw or {}))
    body = wait_until(lambda: refusing(b), READY_MAX_S, "B to refuse as a standby", cl)
    assert isinstance(body.get("reason"), str) and body["reason"], body
    assert_not_owned(b.next_id(uniq(), "int"))
    assert_not_owned(b.batch(uniq(), 5, "long"))
    assert_not_owned(b.next_id(uniq(), "snowflake"))
    return a, b


class Hammer(threading.Thread):
    """Sends next-id (and now and then next-batch) to one server in a loop and
    keeps every answer: (t_sent, t_answered, dtype, Resp or exception)."""

    def __init__(self, led, who, s, ents, timeout=10.0):
        super().__init__(daemon=True)
        self.led, self.who, self.s, self.ents, self.timeout = led, who, s, ents, timeout
        self.answers = []
        self.stop_ev = threading.Event()

    def run(self):
        kinds = [(t, None) for t in self.ents] + [(t, 5) for t in self.ents]
        i = 0
        while not self.stop_ev.is_set():
            dtype, n = kinds[i % len(kinds)]
            i += 1
            ent = self.ents[dtype]
            t0 = time.monotonic()
            try:
                r = (self.s.next_id(ent, dtype, timeout=self.timeout) if n is None
                     else self.s.batch(ent, n, dtype, timeout=self.timeout))
            except CLIENT_ERRORS as e:
                r = e
            else:
                self.led.record(self.who, ent, dtype, r)
            self.answers.append((t0, time.monotonic(), dtype, r))
            self.stop_ev.wait(0.01)

    def finish(self):
        self.stop_ev.set()
        self.join(self.timeout + 5)
        assert not self.is_alive(), "hammer thread stuck"
        return self.answers


def report(request, key, seconds):
    request.node.user_properties.append((key, round(seconds, 2)))
    print(f"[failover] {request.node.name}: {key} = {seconds:.2f} s")


# --------------------------------------------------------------------------- #
# 0. The relay itself
# --------------------------------------------------------------------------- #
class _Echo:
    """A loopback echo server counting the bytes it received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def _echo(self, c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.received += len(d)
                c.sendall(d)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _recv_exact(sock, n, timeout):
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        d = sock.recv(n - len(data))
        if not d:
            raise EOFError("closed")
        data += d
    return data


def _silent(sock, wait):
    """True when nothing (no data, no FIN, no RST) arrives within `wait`."""
    r, _, _ = select.select([sock], [], [], wait)
    return not r


def test_tcp_relay_forwards_blackholes_and_heals():
    echo = _Echo()
    relay = TcpRelay("127.0.0.1", echo.port)
    try:
        c1 = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        c1.sendall(b"hello")
        assert _recv_exact(c1, 5, 2) == b"hello"
        idle = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        idle.sendall(b"x")
        assert _recv_exact(idle, 1, 2) == b"x"
        got = echo.received

        relay.blackhole()
        c1.sendall(b"lost in the void")
        assert _silent(c1, 0.5), "a blackholed relay answered"
        # New connections are accepted (the handshake completes) but go nowhere.
        c2 = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        c2.sendall(b"ping")
        assert _silent(c2, 0.3)
        assert echo.received == got, "bytes got through the blackhole"
        assert relay.dropped_bytes >= len(b"lost in the void") + 4
        # Even the upstream closing is not passed on while blackholed.
        for c in list(echo.conns):
            c.shutdown(socket.SHUT_RDWR)
        assert _silent(idle, 0.3)

        relay.heal()
        # Connections with a hole in their stream are closed; new ones work.
        c1.settimeout(2)
        assert c1.recv(10) == b""
        c3 = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        c3.sendall(b"again")
        assert _recv_exact(c3, 5, 2) == b"again"
        for c in (c1, c2, c3, idle):
            c.close()
    finally:
        relay.close()
        echo.close()


def test_tcp_relay_idle_connection_survives_a_blackhole():
    echo = _Echo()
    relay = TcpRelay("127.0.0.1", echo.port)
    try:
        c = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        c.sendall(b"a")
        assert _recv_exact(c, 1, 2) == b"a"
        relay.blackhole()
        assert _silent(c, 0.2)
        relay.heal()
        c.sendall(b"bc")
        assert _recv_exact(c, 2, 2) == b"bc"
        c.close()
    finally:
        relay.close()
        echo.close()


# --------------------------------------------------------------------------- #
# g. DATA_DIR written under another shard identity (no Consul)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("second,expect", [
    ({"SHARD_ID": 3}, ["shard=2 totalShards=3", "shard=3 totalShards=3"]),
    ({"SNOWFLAKE_LAYOUT": "twitter"}, ["shard=2 totalShards=3", "layout=sonyflake",
                                       "layout=twitter"]),
], ids=["other-shard", "other-layout"])
def test_data_dir_of_another_identity_is_refused(servers, second, expect):
    s = servers(env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    for dtype in ("int", "long", "snowflake"):
        assert s.next_id(uniq(), dtype).status == 200
    s.stop()
    s.start(env=second, wait=False)
    try:
        rc = s.proc.wait(bbutil.START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        s.kill()
        raise AssertionError(f"started on a DATA_DIR of another identity:\n{s.output()}")
    out = s.output()
    assert rc == 2, f"exit {rc}:\n{out}"
    for text in expect:
        assert text in out, f"{text!r} not in the message:\n{out}"
    # The refused start changed nothing: the first identity still starts there.
    s.start(env={"SHARD_ID": 2, "SNOWFLAKE_LAYOUT": "sonyflake"})
    assert s.get("/health").status == 200


# --------------------------------------------------------------------------- #
# f. A token that may take the lock but not write the shard's state
# --------------------------------------------------------------------------- #
def lock_only_token(agent, name):
    return agent.token_with_rules(name, f'key "{name}/shards/1" {{ policy = "write" }}\n'
                                        f'key "{name}/config" {{ policy = "write" }}\n'
                                        f'service "{name}" {{ policy = "write" }}\n'
                                        f'session "{agent.node}" {{ policy = "write" }}\n')


@pytest.mark.timeout(40)
def test_lock_without_state_write_rights_hands_out_nothing(cluster, acl_agent, name):
    token = lock_only_token(acl_agent, name)
    a = cluster.start("A", url=acl_agent.url, shard=1, total=1,
                      env={"CONSUL_HTTP_TOKEN": token})
    # The lock itself is allowed: the instance gets it ...
    wait_until(lambda: (kv_entry(acl_agent, f"{name}/shards/1") or {}).get("Session"),
               READY_MAX_S, "the lock key acquired", cluster)
    # ... but cannot write the state, so it never hands out a value.
    ents = {"int": uniq("i"), "long": uniq("l"), "snowflake": uniq("s")}
    t0 = time.monotonic()
    seen_error = None
    while time.monotonic() - t0 < 4 or seen_error is None:
        assert time.monotonic() - t0 < 15, f"no Consul error in /health: {health(a)}"
        for dtype, ent in ents.items():
            assert_not_owned(a.next_id(ent, dtype))
            assert_not_owned(a.batch(ent, 3, dtype))
        st, body = health(a)
        assert st == 503 and body.get("status") == "unhealthy", body
        c = body.get("consul") or {}
        assert c.get("state") != "synced", body
        if c.get("state") == "refused" or "403" in (c.get("lastError") or ""):
            seen_error = body
        time.sleep(0.2)
    print(f"[failover] lock-only token: /health {seen_error}")
    # Nothing of the state reached KV.
    st, keys = acl_agent.request("GET", f"/v1/kv/{name}/shards/1/?keys")
    assert st == 404 or not keys, keys


# --------------------------------------------------------------------------- #
# Consul unreachable from the start: safe by default, CONSUL_FAIL_OPEN=1 serves
# --------------------------------------------------------------------------- #
def test_unreachable_consul_refuses_by_default_and_fail_open_serves(cluster):
    url = f"http://127.0.0.1:{bbutil.free_port()}"   # nothing listens there
    safe = cluster.start("safe", url=url)

    def refused():
        st, body = health(safe)
        c = body.get("consul") or {}
        return st == 503 and c.get("reachable") is False and c.get("lastError") and body
    body = wait_until(refused, 5, "an unreachable Consul to keep the instance unhealthy", cluster)
    assert body["status"] == "unhealthy" and body["consul"]["lock"] != "held", body
    assert body["consul"]["failOpen"] is False, body
    for dtype in ("int", "long", "snowflake", "uuid8"):
        assert_not_owned(safe.next_id(uniq(), dtype))
    assert_not_owned(safe.batch(uniq(), 3, "int"))

    led = Ledger()
    fo = cluster.start("failopen", url=url, env={"CONSUL_FAIL_OPEN": "1"})
    for dtype in ("int", "long", "snowflake"):
        ent = uniq(dtype)
        led.take("failopen", fo, ent, dtype)
        led.take("failopen", fo, ent, dtype, n=5)
    st, body = health(fo)
    assert st == 200 and body["consul"]["failOpen"] is True, body
    assert body["consul"]["reachable"] is False and body["consul"]["lock"] != "held", body
    led.check(cluster)


# --------------------------------------------------------------------------- #
# b. SIGTERM: the shard moves to a standby within seconds, or to a fresh host
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(40)
def test_sigterm_moves_shard_to_standby_within_seconds(fleet, request):
    led, ents = Ledger(), entities()
    a, b = holder_and_standby(fleet)
    hand_out(led, "A", a, ents)

    t0 = time.monotonic()
    a.stop()
    wait_until(lambda: serving(b), MOVE_MAX_S + 3, "the standby to take over after SIGTERM",
               fleet, interval=0.05)
    took = time.monotonic() - t0
    report(request, "sigterm_takeover_s", took)
    assert took < MOVE_MAX_S, f"standby took {took:.2f}s after SIGTERM"

    hand_out(led, "B", b, ents)
    led.check(fleet)
    led.assert_above("B", "A", ents)
    assert kv_value(fleet.agent, f"{fleet.name}/shards/{SHARD}/identity").startswith(
        f"shard={SHARD} totalShards={TOTAL} layout=sonyflake")


@pytest.mark.timeout(40)
def test_clean_stop_then_fresh_host_continues_above(fleet, request):
    led, ents = Ledger(), entities()
    a = fleet.start("A")
    wait_until(lambda: serving(a), READY_MAX_S, "A to serve", fleet)
    hand_out(led, "A", a, ents)
    a.stop()

    t0 = time.monotonic()
    c = fleet.start("C")   # a new host, empty DATA_DIR, started after A is gone
    wait_until(lambda: serving(c), READY_MAX_S, "the fresh host to serve", fleet)
    report(request, "fresh_host_ready_s", time.monotonic() - t0)
    hand_out(led, "C", c, ents)
    led.check(fleet)
    led.assert_above("C", "A", ents)
    # And A, back on its old DATA_DIR while C holds the shard, refuses.
    a.start()
    wait_until(lambda: refusing(a), READY_MAX_S, "the old host to refuse", fleet)
    assert_not_owned(a.next_id(ents["int"], "int"))


@pytest.mark.timeout(40)
def test_acknowledged_admin_changes_reach_the_next_host(fleet):
    # init, reset and delete answer only once KV holds them: a new host sees them all.
    a = fleet.start("A")
    wait_until(lambda: serving(a), READY_MAX_S, "A to serve", fleet)
    made, moved, gone = uniq("made"), uniq("moved"), uniq("gone")
    assert a.init(made, "long", start=1000).status == 201
    assert a.take(moved, "long") == str(SHARD)
    assert a.reset(moved, 5000).status == 200
    old = [int(a.take(gone, "int")) for _ in range(3)]
    assert a.delete(gone).status == 200
    a.kill()   # nothing of A's journal reaches the next host

    c = fleet.start("C")
    wait_until(lambda: serving(c), 2 * 10 + 8, "a fresh host to take over", fleet, interval=0.25)
    assert int(c.take(made)) >= 1000
    assert int(c.take(moved)) >= 5000
    assert c.status(gone).status == 404
    # A re-created name continues above what the deleted one handed out.
    assert int(c.take(gone, "int")) > max(old)


def kv_bucket_lines(agent, name, entity):
    """The lines of the KV bucket (FNV-1a of the name, mod 4096) that holds entity."""
    h = 2166136261
    for c in entity.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return (kv_value(agent, f"{name}/shards/{SHARD}/e/{h & 4095:03x}") or "").splitlines()


@pytest.mark.timeout(40)
def test_styles_bound_at_init_reach_the_next_host(fleet):
    # A TypeID prefix and base62 are part of the binding KV holds: a new host
    # with an empty DATA_DIR hands out the same forms, above the old IDs.
    a = fleet.start("A")
    wait_until(lambda: serving(a), READY_MAX_S, "A to serve", fleet)
    user, f62 = uniq("user"), uniq("f62")
    assert a.init(user, body={"dataType": "uuid7", "prefix": "user"}).status == 201
    assert a.init(f62, body={"dataType": "snowflake", "format": "base62"}).status == 201
    assert f"{user} uuid7 0 0 prefix=user" in kv_bucket_lines(fleet.agent, fleet.name, user)
    assert f"{f62} snowflake 0 0 format=base62" in kv_bucket_lines(fleet.agent, fleet.name, f62)
    before = [a.take(user) for _ in range(3)] + [a.take(f62)]
    a.stop()

    c = fleet.start("C")
    wait_until(lambda: serving(c), READY_MAX_S, "the fresh host to serve", fleet)
    after = [c.take(user) for _ in range(3)] + c.json(f"/api/next-batch/{user}?batchSize=20")["values"]
    assert all(v.startswith("user_") and len(v) == 31 for v in after)
    assert before[2] < after[0] and after == sorted(set(after))
    assert c.json(f"/api/status/{user}")["prefix"] == "user"
    v = c.take(f62)
    assert len(v) == 11 and v > before[3]
    assert c.json(f"/api/status/{f62}")["format"] == "base62"


# --------------------------------------------------------------------------- #
# a. kill -9 of the holder: the standby takes over after the session TTL
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(70)
def test_kill9_holder_standby_continues_above(fleet, request):
    led, ents = Ledger(), entities()
    a, b = holder_and_standby(fleet)
    hand_out(led, "A", a, ents, singles=10, batch=100)

    a.kill()
    t0 = time.monotonic()

    def taken_over():
        # Until B serves it must refuse: any value it gives is checked as B's.
        for dtype, ent in ents.items():
            r = b.next_id(ent, dtype)
            if r.status != 200:
                assert_not_owned(r)
            led.record("B", ent, dtype, r)
        return serving(b)
    wait_until(taken_over, TAKEOVER_MAX_S, "the standby to take over after kill -9",
               fleet, interval=0.25)
    took = time.monotonic() - t0
    report(request, "kill9_takeover_s", took)
    # The session outlives its holder by at least a TTL minus one renewal interval.
    assert took >= SESSION_TTL_S - 4, f"lock taken {took:.1f}s after kill -9: before the TTL"

    hand_out(led, "B", b, ents, singles=10, batch=100)
    n = led.check(fleet)
    led.assert_above("B", "A", ents)
    assert n >= 2 * 3 * 110


# --------------------------------------------------------------------------- #
# c. SIGSTOP past the TTL: a paused holder wakes up after its successor served
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(80)
def test_sigstopped_holder_never_collides_with_its_successor(fleet, request):
    led, ents = Ledger(), entities()
    a, b = holder_and_standby(fleet)
    hand_out(led, "A", a, ents)

    os.kill(a.proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    queued = []

    def ask(dtype, n):
        ent = ents[dtype]
        try:
            r = (a.next_id(ent, dtype, timeout=90) if n is None
                 else a.batch(ent, n, dtype, timeout=90))
        except CLIENT_ERRORS as e:
            r = e
        queued.append((dtype, n, r))
        if not isinstance(r, Exception):
            led.record("A-after-stop", ent, dtype, r)

    threads = [threading.Thread(target=ask, args=(dtype, n), daemon=True)
               for dtype in ents for n in (None, None, 20)]
    for t in threads:
        t.start()

    wait_until(lambda: serving(b), TAKEOVER_MAX_S, "the standby to take over from a stopped A",
               fleet, interval=0.25)
    report(request, "sigstop_takeover_s", time.monotonic() - t0)
    hand_out(led, "B", b, ents)

    os.kill(a.proc.pid, signal.SIGCONT)
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "requests queued on A never answered"
    statuses = collections.Counter(r.status if not isinstance(r, Exception) else repr(r)
                                   for _, _, r in queued)
    print(f"[failover] answers to the requests queued on the stopped A: {dict(statuses)}")
    for dtype, n, r in queued:
        assert not isinstance(r, Exception), f"{dtype} queued on A: {r!r}"
        assert r.status in (200, 503), r
        if r.status == 503:
            assert_not_owned(r)

    # A finds out it lost the shard, and then refuses everything new.
    def refuses_now():
        body = refusing(a, locks=("lost", "held-elsewhere"))
        for dtype, ent in ents.items():
            r = a.next_id(ent, dtype)
            led.record("A-after-stop", ent, dtype, r)
            if r.status != 503:
                return None
        return body
    wait_until(refuses_now, 15, "the woken holder to refuse", fleet, interval=0.25)
    for dtype, ent in ents.items():
        assert_not_owned(a.next_id(ent, dtype))

    hand_out(led, "B", b, ents)
    led.check(fleet)
    led.assert_above("B", "A", ents)


# --------------------------------------------------------------------------- #
# d. Partition between the holder and Consul, clients still reach the holder
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(90)
def test_partitioned_holder_stops_and_successor_continues(fleet, request):
    led, ents = Ledger(), entities()
    relay = fleet.relay("127.0.0.1", fleet.agent.http_port)
    a, b = holder_and_standby(fleet, a_kw={"url": relay.url})
    hand_out(led, "A", a, ents)

    hammer = Hammer(led, "A", a, ents)
    hammer.start()
    wait_until(lambda: len(hammer.answers) >= 10, 5, "the hammer to run", fleet)
    relay.blackhole()
    t0 = time.monotonic()

    # A stays reachable and says it may not serve within one failed renewal.
    def unhealthy():
        (st, body), took = timed(lambda: health(a))
        assert took < 2.0, f"/health took {took:.2f}s during the partition"
        return st == 503 and body
    body = wait_until(unhealthy, UNHEALTHY_MAX_S + 4, "A's /health to turn 503", fleet,
                      interval=0.1)
    t_unhealthy = time.monotonic()
    report(request, "partition_unhealthy_s", t_unhealthy - t0)
    assert t_unhealthy - t0 < UNHEALTHY_MAX_S, body
    assert body.get("status") == "unhealthy", body
    print(f"[failover] partitioned A's /health: {body}")

    wait_until(lambda: serving(b), TAKEOVER_MAX_S, "B to take over from the partitioned A",
               fleet, interval=0.25)
    report(request, "partition_takeover_s", time.monotonic() - t0)
    hand_out(led, "B", b, ents)
    n0 = len(hammer.answers)
    wait_until(lambda: len(hammer.answers) >= n0 + 20, 10, "more requests to A", fleet)
    answers = hammer.finish()

    errors = [(t, r) for t, _, _, r in answers if isinstance(r, Exception)]
    assert not errors, f"A unreachable for clients during the partition: {errors[:5]}"
    for _, _, _, r in answers:
        assert r.status in (200, 503), r
        if r.status == 503:
            assert_not_owned(r)
    late = [(t, r) for t, _, _, r in answers if t > t_unhealthy and r.status == 200]
    assert not late, f"A handed out values after it reported unhealthy: {late[:3]}"
    served = collections.Counter((t > t0, r.status) for t, _, _, r in answers)
    print(f"[failover] A's answers (during partition?, status): {dict(served)}")

    led.check(fleet)
    led.assert_above("B", "A", ents)

    # Healed: A learns that its session is gone and stays a standby.
    relay.heal()

    def standby_again():
        body = refusing(a, locks=("lost", "held-elsewhere"))
        r = a.next_id(ents["int"], "int")
        led.record("A", ents["int"], "int", r)
        return body if r.status == 503 else None
    wait_until(standby_again, 20, "A to refuse after the partition healed", fleet,
               interval=0.25)
    assert_not_owned(a.next_id(ents["long"], "long"))
    hand_out(led, "B", b, ents)
    led.check(fleet)


# --------------------------------------------------------------------------- #
# e. A successor whose clock is ahead or behind its predecessor's
# --------------------------------------------------------------------------- #
@pytest.fixture
def test_bin():
    why = bbutil.build_missing("asan")
    if why:
        pytest.skip(why)
    return TEST_BIN


@pytest.mark.timeout(60)
@pytest.mark.parametrize("offset_ms", [60000, -60000], ids=["ahead60s", "behind60s"])
def test_successor_with_skewed_clock_never_goes_below(fleet, test_bin, tmp_path, request,
                                                      offset_ms):
    led, ents = Ledger(), entities()
    offset_file = tmp_path / "clock-offset"
    set_clock_offset(offset_file, offset_ms)
    a, b = holder_and_standby(
        fleet, b_kw={"binary": test_bin,
                     "env": {"SHARDID_TEST_CLOCK_OFFSET_FILE": str(offset_file)}})
    hand_out(led, "A", a, ents, batch=200)
    a_top = max(led.values("A", "snowflake"))

    t0 = time.monotonic()
    a.stop()
    wait_until(lambda: holds(b), MOVE_MAX_S + 3, "B to take over", fleet, interval=0.05)
    report(request, "sigterm_takeover_s", time.monotonic() - t0)

    # Sequences do not care about the clock.
    for dtype in SEQ_TYPES:
        led.take("B", b, ents[dtype], dtype)
        led.take("B", b, ents[dtype], dtype, n=50)

    sf = ents["snowflake"]
    if offset_ms > 0:
        hand_out(led, "B", b, {"snowflake": sf}, batch=200)
    else:
        # 60 s behind the fence: wait (at most 5 s) and refuse, never go below.
        for n in (None, 50):
            r, took = timed(lambda: b.next_id(sf, "snowflake", timeout=CLOCK_WAIT_S + SLACK_S + 5)
                            if n is None else
                            b.batch(sf, n, "snowflake", timeout=CLOCK_WAIT_S + SLACK_S + 5))
            assert took < CLOCK_WAIT_S + SLACK_S, f"took {took:.2f}s: {r!r}"
            if r.status == 200:
                assert min(led.record("B", sf, "snowflake", r)) > a_top, r
            else:
                assert r.status == 503, r
                js = assert_error(r, 503)
                assert "clock" in (js["error"] + js["message"]).lower(), r
        # Clock back in line: snowflakes resume, above the predecessor's.
        set_clock_offset(offset_file, 0)
        wait_until(lambda: led.record("B", sf, "snowflake",
                                      b.next_id(sf, "snowflake",
                                                timeout=CLOCK_WAIT_S + SLACK_S + 5)),
                   CLOCK_WAIT_S + SLACK_S + 5, "snowflakes once the clock is back", fleet)
        led.take("B", b, sf, "snowflake", n=100)

    led.check(fleet)
    led.assert_above("B", "A", ents)
    assert min(led.values("B", "snowflake") or [a_top + 1]) > a_top


# --------------------------------------------------------------------------- #
# g. SHARD_ID=auto: shards that claim themselves
# --------------------------------------------------------------------------- #
def shard_of(s):
    r = s.get("/shard-info")
    return r.json["shardId"] if r.status == 200 else None


@pytest.mark.timeout(90)
def test_auto_instances_claim_each_shard_once_and_a_standby_takes_over(fleet):
    """Three SHARD_ID=auto instances on empty DATA_DIRs take shards 1, 2
    and 3, each once; a fourth stands by and, when one holder is killed,
    takes its shard and continues above its values; a restart keeps the
    shard its DATA_DIR belongs to."""
    auto = {"SHARD_ID": "auto"}
    inst = {lbl: fleet.start(lbl, env=auto, shard="auto", total=3) for lbl in "ABC"}
    for lbl, s in inst.items():
        wait_until(lambda: serving(s), READY_MAX_S * 2, f"{lbl} to claim a shard and serve", fleet)
    shards = {lbl: shard_of(s) for lbl, s in inst.items()}
    assert sorted(shards.values()) == [1, 2, 3], shards
    for lbl, s in inst.items():
        k = shards[lbl]
        assert s.get("/health").json["shard"] == k
        assert f"SHARD_ID=auto: claimed shard {k}" in s.output()
        assert f"\nshardid_shard {k}\n" in s.get("/metrics").body.decode()
        assert kv_value(fleet.agent, f"{fleet.name}/shards/{k}/identity").startswith(f"shard={k} ")
    # Each hands out its own residue class.
    ent = uniq("auto")
    led = {}
    for lbl, s in inst.items():
        vals = [s.next_id(ent, "int").json["value"] for _ in range(5)]
        assert all(v % 3 == shards[lbl] % 3 for v in vals), (lbl, vals)
        led[lbl] = vals
    everything = [v for vals in led.values() for v in vals]
    assert len(set(everything)) == len(everything)

    # A fourth has no free shard: it stands by, saying so, and serves nothing.
    d = fleet.start("D", env=auto, shard="auto", total=3)
    body = wait_until(lambda: refusing(d), READY_MAX_S, "D to stand by", fleet)
    assert "all 3 shards are held" in body["reason"], body
    assert_not_owned(d.next_id(ent, "int"))
    assert d.get("/shard-info").json == {"shardId": 0, "totalShards": 3, "status": "claiming"}

    # kill -9 of B: D takes B's shard and continues above B's values.
    victim = "B"
    inst[victim].kill()
    wait_until(lambda: serving(d), TAKEOVER_MAX_S + 6, "D to take the freed shard", fleet)
    assert shard_of(d) == shards[victim]
    after = [d.next_id(ent, "int").json["value"] for _ in range(5)]
    assert all(v % 3 == shards[victim] % 3 for v in after), after
    assert min(after) > max(led[victim]), (after, led[victim])

    # C restarts (SIGTERM, same DATA_DIR): it claims the shard it had, not another.
    c = inst["C"]
    c.stop()
    c.start()
    wait_until(lambda: serving(c), TAKEOVER_MAX_S, "C to serve again", fleet)
    assert shard_of(c) == shards["C"]
    assert f"DATA_DIR belongs to shard {shards['C']}" in c.output()
