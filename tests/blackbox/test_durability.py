"""State survives restarts and crashes; a value is never handed out twice.

The first group uses the shared `servers` fixture (the binary under test,
SHARDID_BIN or zig-out/bin/shardid). The second group (SPEC 5, "Durability")
runs against both builds where that makes sense: the release binary and the
test build with test hooks (build/shardid-asan, or SHARDID_ASAN_BIN), which
lets a test move the server's wall clock through the file named by
SHARDID_TEST_CLOCK_OFFSET_FILE. Tests that need the test build or root (tmpfs)
skip with the reason when they cannot run.
"""
import collections
import errno
import http.client
import json
import os
import random
import re
import subprocess
import threading
import time

import pytest

import bbutil
from bbutil import (BUILDS, BuildServer, assert_error, build_missing, decompose, ok,
                    set_clock_offset)


def test_sequence_continues_after_graceful_restart(servers):
    s = servers()
    vals = [s.take("o", "int") for _ in range(10)]
    s.restart()
    nxt = s.take("o")
    assert nxt > vals[-1]
    assert ok(s.status("o"))["dataType"] == "int"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("dtype,shard", [("int", 1), ("long", 1), ("int", 2)])
def test_no_value_repeats_across_kill_9(servers, dtype, shard):
    s = servers(env={"SHARD_ID": shard, "TOTAL_SHARDS": 3 if shard > 1 else 1})
    step = 3 if shard > 1 else 1
    seen = []
    for cycle in range(4):
        cycle_vals = [int(s.take("k", dtype)) for _ in range(5)]
        cycle_vals += [int(v) for v in ok(s.batch("k", 7 + 100 * cycle, dtype))["values"]]
        if seen:
            assert cycle_vals[0] > max(seen), (cycle, cycle_vals[0], max(seen))
        seen += cycle_vals
        s.crash_restart()
    assert len(seen) == len(set(seen))
    assert all((v - shard) % step == 0 for v in seen)


def test_binding_survives_kill_9(servers):
    s = servers()
    for name, t in [("a", "int"), ("b", "long"), ("c", "snowflake"), ("d", "uuid16")]:
        s.take(name, t)
    s.crash_restart()
    for name, t in [("a", "int"), ("b", "long"), ("c", "snowflake"), ("d", "uuid16")]:
        assert ok(s.status(name))["dataType"] == t
        assert ok(s.next_id(name))["dataType"] == t
    assert_error(s.next_id("a", "long"), 400, "Type mismatch")
    names = [e["entityName"] for e in ok(s.get("/api/list"))["entities"]]
    assert names == ["a", "b", "c", "d"]


def test_init_survives_kill_9_before_first_use(servers):
    s = servers()
    ok(s.init("x", "int", 500), 201)
    ok(s.init("u", "uuid8"), 201)
    s.crash_restart()
    assert s.take("x") >= 500
    assert ok(s.status("u"))["dataType"] == "uuid8"
    assert_error(s.init("x", "int"), 409)


def test_forward_reset_survives_kill_9(servers):
    s = servers()
    s.take("r", "int")
    ok(s.reset("r", 10000))
    s.crash_restart()
    assert s.take("r") >= 10000


def test_delete_survives_kill_9(servers):
    s = servers()
    last = ok(s.batch("gone", 40, "int"))["endValue"]
    s.take("kept", "int")
    ok(s.delete("gone"))
    s.crash_restart()
    assert_error(s.status("gone"), 404)
    assert "gone" not in [e["entityName"] for e in ok(s.get("/api/list"))["entities"]]
    assert ok(s.status("kept"))["dataType"] == "int"
    # The deleted sequence's high-water mark survived: a new one continues above.
    assert s.take("gone", "int") > last


def test_snowflakes_increase_across_kill_9(servers):
    s = servers()
    last = int(ok(s.batch("sf", 300, "snowflake"))["values"][-1])
    s.crash_restart()
    first = int(s.take("sf"))
    assert first > last


def test_snowflakes_increase_across_restart_twitter(servers):
    s = servers(env={"SNOWFLAKE_LAYOUT": "twitter"})
    last = int(ok(s.batch("sf", 5000, "snowflake"))["values"][-1])
    s.restart()
    assert int(s.take("sf")) > last


def test_state_lives_in_data_dir(servers):
    s = servers()
    s.take("here", "int")
    s.stop()
    assert s.data_dir.is_dir() and any(s.data_dir.iterdir())
    other = servers(env={"DATA_DIR": str(s.workdir / "other")})
    assert_error(other.status("here"), 404)


def test_data_dir_flag(servers, tmp_path):
    d = tmp_path / "flagdir"
    s = servers(args=["--data-dir", str(d)])
    s.take("f", "int")
    s.stop()
    assert d.is_dir() and any(d.iterdir())


@pytest.mark.timeout(30)
def test_concurrent_clients_never_get_the_same_value(servers):
    s = servers()
    results, errors = [], []

    def worker():
        try:
            vals = [s.take("hot", "int") for _ in range(150)]
            vals += ok(s.batch("hot", 50, "int"))["values"]
            results.append(vals)
        except Exception as e:   # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(25)
    assert not errors, errors
    flat = [v for r in results for v in r]
    assert len(flat) == 8 * 200 == len(set(flat))
    for r in results:
        assert all(a < b for a, b in zip(r, r[1:]))


# =========================================================================== #
# SPEC 5 against both builds
# =========================================================================== #
JOURNAL_MAGIC = b"SHRDJ01\n"
CLIENT_ERRORS = (OSError, http.client.HTTPException)


def _binary(name):
    """The build `name` (bbutil.BUILDS: release, asan); skips when it is missing."""
    why = build_missing(name)
    if why:
        pytest.skip(why)
    return name


@pytest.fixture(params=sorted(BUILDS))
def build(request):
    """Parametrized over the release and the test build."""
    return _binary(request.param)


@pytest.fixture
def test_build():
    """The test build (ASan+UBSan, clock hook compiled in)."""
    return _binary("asan")


@pytest.fixture
def make_server(tmp_path_factory):
    """make_server(build, env=None, args=None, start=True) -> bbutil.BuildServer.
    At the end each must exit 0 on SIGTERM (if still running) and must have
    printed no sanitizer report in any run."""
    made = []

    def make(build, env=None, args=None, start=True):
        s = BuildServer(tmp_path_factory.mktemp("dur"), build, env=env, args=args)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    bbutil.stop_all(made)


class KeepAlive:
    """One persistent HTTP/1.1 connection that reconnects after errors."""

    def __init__(self, server, timeout=6.0):
        self.server = server
        self.timeout = timeout
        self.conn = None

    def get(self, path):
        """-> (status, parsed JSON or None, raw body); raises on transport errors
        (after dropping the connection, so the next call reconnects)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.server.host, self.server.port,
                                                   timeout=self.timeout)
        try:
            self.conn.request("GET", path)
            r = self.conn.getresponse()
            body = r.read()
        except BaseException:
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            js = json.loads(body)
        except ValueError:
            js = None
        return r.status, js, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def metric(server, name):
    text = server.get("/metrics").body.decode()
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+(\d+)\s*$", text, re.M)
    assert m, f"{name} not in /metrics:\n{text}"
    return int(m.group(1))


def values_of(js, dtype):
    """The values of a next-id or next-batch body as ints, checking their JSON
    form (int: number; long/snowflake: decimal string)."""
    raw = js["values"] if "values" in js else [js["value"]]
    for v in raw:
        if dtype == "int":
            assert isinstance(v, int) and not isinstance(v, bool), js
        else:
            assert isinstance(v, str) and v.isdigit(), js
    return [int(v) for v in raw]


def journal_records(data):
    """[(offset, total_length)] of the framed records (u32 len, u32 crc, payload)."""
    assert data[:8] == JOURNAL_MAGIC, data[:16]
    out, off = [], 8
    while off + 8 <= len(data):
        n = int.from_bytes(data[off:off + 4], "little")
        if off + 8 + n > len(data):
            break
        out.append((off, 8 + n))
        off += 8 + n
    assert off == len(data), f"journal has trailing bytes at {off} of {len(data)}"
    return out


def assert_no_dups(values_by_entity):
    for ent, vals in values_by_entity.items():
        dups = [v for v, c in collections.Counter(vals).items() if c > 1]
        assert not dups, f"{ent}: values handed out twice: {sorted(dups)[:20]}"


# --------------------------------------------------------------------------- #
# 1. Crash test: SIGKILL under concurrent load, >= 20 times
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(60)
def test_no_duplicates_under_load_across_repeated_sigkill(make_server, build):
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    s = make_server(build, env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    entities = {"c-int-0": "int", "c-int-1": "int", "c-long-0": "long",
                "c-long-1": "long", "c-sf": "snowflake"}
    for ent, t in entities.items():
        ok(s.next_id(ent, t))   # bind the types before the storm (values unused)

    stop = threading.Event()
    epoch = [0]
    lock = threading.Lock()
    got = collections.defaultdict(list)          # entity -> every 200 value
    epochs_served = set()
    answered = [0] * 4                           # per client: 200 answers so far
    unexpected = []                              # non-200 responses
    errors = []

    def client(idx):
        r = random.Random(seed + idx)
        ka = KeepAlive(s, timeout=8.0)
        last = {}                                # entity -> last value this thread saw
        try:
            while not stop.is_set():
                ent = r.choice(list(entities))
                t = entities[ent]
                if r.random() < 0.5:
                    path = f"/api/next-id/{ent}?dataType={t}"
                else:
                    path = f"/api/next-batch/{ent}?dataType={t}&batchSize={r.randint(1, 50)}"
                try:
                    status, js, body = ka.get(path)
                except CLIENT_ERRORS:
                    time.sleep(0.005)            # server is being killed/restarted
                    continue
                if status != 200:
                    unexpected.append((path, status, body[:300]))
                    continue
                vals = values_of(js, t)
                # One client's requests are sequential: each answer lies above the
                # previous one for the entity, restarts or not.
                assert all(a < b for a, b in zip(vals, vals[1:])), (path, vals)
                if ent in last:
                    assert vals[0] > last[ent], (ent, last[ent], vals[0], path)
                last[ent] = vals[-1]
                with lock:
                    got[ent].extend(vals)
                    epochs_served.add(epoch[0])
                    answered[idx] += 1
        except BaseException as e:               # noqa: BLE001
            errors.append(e)
        finally:
            ka.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(len(answered))]
    for t in threads:
        t.start()
    kills = 22
    try:
        for _ in range(kills):
            time.sleep(rnd.uniform(0.05, 0.3))   # the kill lands at a random point of the traffic
            assert s.running, f"server died by itself (seed {seed}):\n{s.output()}"
            s.kill()
            with lock:
                epoch[0] += 1
            s.start()
        # Every client gets through to the last incarnation: two more answers
        # each, the second of them asked only after the first came back, so
        # after the previous process was gone.
        with lock:
            before = list(answered)
        deadline = time.monotonic() + 10
        while True:
            with lock:
                if all(a >= b + 2 for a, b in zip(answered, before)):
                    break
            assert time.monotonic() < deadline, \
                f"clients not served after the last restart (seed {seed}): " \
                f"{before} -> {answered}; {errors!r}"
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not errors, f"seed {seed}: {errors!r}"
    assert not unexpected, f"seed {seed}: non-200 answers: {unexpected[:5]}"
    assert s.running, s.output()

    assert_no_dups(got)
    for ent, t in entities.items():
        vals = got[ent]
        assert len(vals) >= 20, f"only {len(vals)} {ent} values collected (seed {seed})"
        if t == "snowflake":
            assert {decompose("sonyflake", v)[1] for v in vals} == {2}
        else:
            bad = [v for v in vals if (v - 2) % 3 or v < 2]
            assert not bad, f"{ent}: values outside shard 2's residue class: {bad[:10]}"
            assert max(vals) <= (bbutil.INT_MAX if t == "int" else bbutil.LONG_MAX)
    # The kills really landed in the middle of the traffic.
    assert len(epochs_served) >= kills // 2, (sorted(epochs_served), seed)

    # And the survivors continue above everything seen, after one more crash.
    s.crash_restart()
    for ent, t in entities.items():
        assert values_of(ok(s.next_id(ent, t)), t)[0] > max(got[ent]), ent


# --------------------------------------------------------------------------- #
# 2. Snowflakes and a clock that goes backwards (test build only)
# --------------------------------------------------------------------------- #
CLOCK_WAIT_S = 5.0   # SPEC 3: wait up to 5 s for the clock, then 503
SLACK_S = 2.5        # sanitizer build, loaded CI machine


def clock_server(make_server, build, layout="sonyflake"):
    s = make_server(build, start=False)
    s.offset_file = s.workdir / "clock-offset"
    set_clock_offset(s.offset_file, 0)
    s.start(env={"SHARDID_TEST_CLOCK_OFFSET_FILE": str(s.offset_file),
                 "SNOWFLAKE_LAYOUT": layout})
    return s


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


@pytest.mark.timeout(40)
@pytest.mark.parametrize("layout", ["sonyflake", "twitter"])
def test_restart_onto_an_earlier_clock_never_repeats_snowflakes(make_server, test_build, layout):
    s = clock_server(make_server, test_build, layout)
    before = [int(v) for v in ok(s.batch("sf", 200, "snowflake"))["values"]]
    before += [int(s.take("sf")) for _ in range(20)]
    assert before == sorted(before) and len(set(before)) == len(before)
    top = max(before)

    s.kill()
    set_clock_offset(s.offset_file, -3000)
    s.start()

    # The clock now lies ~3 s behind the last ID: a request waits (at most the
    # SPEC's 5 s) or answers 503 — it never returns an ID at or below `top`.
    first = None
    deadline = time.monotonic() + 15
    while first is None:
        assert time.monotonic() < deadline, "no snowflake within 15 s of the restart"
        r, took = timed(lambda: s.next_id("sf", timeout=CLOCK_WAIT_S + SLACK_S + 3))
        assert took < CLOCK_WAIT_S + SLACK_S, f"request took {took:.2f}s: {r!r}"
        if r.status == 200:
            first = int(ok(r)["value"])
            assert first > top, (first, top, decompose(layout, first), decompose(layout, top))
        else:
            assert_error(r, 503, "Clock moved backwards")

    # Once the (offset) clock has passed the old IDs, IDs are again strictly greater.
    after = [int(v) for v in ok(s.batch("sf", 100, "snowflake"))["values"]]
    after += [int(s.take("sf")) for _ in range(20)]
    seq = [first] + after
    assert all(a < b for a, b in zip(seq, seq[1:]))
    assert decompose(layout, first)[0] >= decompose(layout, top)[0]
    assert not set(seq) & set(before)


@pytest.mark.timeout(30)
def test_running_server_clock_steps_back_2s_ids_keep_increasing(make_server, test_build):
    s = clock_server(make_server, test_build)
    ka = KeepAlive(s, timeout=CLOCK_WAIT_S + SLACK_S + 3)
    prev = max(int(v) for v in ok(s.batch("sf", 50, "snowflake"))["values"])
    seen = [prev]
    set_clock_offset(s.offset_file, -2000)
    slowest = 0.0
    t_start = time.monotonic()
    # sonyflake: 256 IDs per 10 ms tick, so the last tick's sequence runs out
    # quickly and the server must wait ~2 s for its clock to catch up.
    for _ in range(700):
        (status, js, body), took = timed(lambda: ka.get("/api/next-id/sf?dataType=snowflake"))
        slowest = max(slowest, took)
        assert status == 200, f"after a 2 s step back: {status} {body!r}"
        v = int(js["value"])
        assert v > seen[-1], (v, seen[-1])
        seen.append(v)
    ka.close()
    assert slowest < CLOCK_WAIT_S + SLACK_S
    assert len(set(seen)) == len(seen)
    # Some request had to wait for the clock (the IDs never ran ahead by 2 s).
    assert time.monotonic() - t_start > 1.0, "700 IDs 2 s in the past without any wait"
    assert metric(s, "shardid_snowflake_clock_waits_total") >= 1


@pytest.mark.timeout(40)
def test_running_server_clock_steps_back_10s_fails_with_503(make_server, test_build):
    s = clock_server(make_server, test_build)
    ka = KeepAlive(s, timeout=CLOCK_WAIT_S + SLACK_S + 3)
    seen = [int(v) for v in ok(s.batch("sf", 50, "snowflake"))["values"]]
    set_clock_offset(s.offset_file, -10000)
    t_step = time.monotonic()
    failure = None
    while failure is None:
        assert time.monotonic() - t_step < CLOCK_WAIT_S + SLACK_S + 2, \
            "no 503 within ~5 s of a 10 s step back"
        status, js, body = ka.get("/api/next-id/sf?dataType=snowflake")
        if status == 200:
            v = int(js["value"])
            assert v > seen[-1], (v, seen[-1])
            seen.append(v)
        else:
            failure = (status, js, body)
    took = time.monotonic() - t_step
    status, js, body = failure
    assert status == 503 and js and js.get("error") == "Clock moved backwards", body
    assert took < CLOCK_WAIT_S + SLACK_S, took
    # The IDs given before the 503 came from the last tick's unused sequences.
    assert len(set(seen)) == len(seen)
    # Clock back to normal: service resumes with larger IDs.
    set_clock_offset(s.offset_file, 0)
    vals = [int(v) for v in ok(s.batch("sf", 20, "snowflake"))["values"]]
    assert vals[0] > seen[-1] and vals == sorted(vals)
    ka.close()


# --------------------------------------------------------------------------- #
# 3. Disk full (tmpfs of 1 MiB)
# --------------------------------------------------------------------------- #
@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 1 MiB tmpfs")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=10).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def fill_disk(path):
    """Writes `path` until the file system refuses (ENOSPC); returns bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    total = 0
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\xa5" * chunk
            while True:
                try:
                    total += os.write(fd, buf)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    finally:
        os.close(fd)
    return total


def drive_until_503(s, got, prefix, want_503=3, limit=3000):
    """Requests values on new int entities and on 'base' until `want_503` answers
    are 503; 200 values go to got[entity]. Returns the 503 bodies."""
    fails = []
    for i in range(limit):
        for ent, path in ((f"{prefix}{i}", f"/api/next-id/{prefix}{i}?dataType=int"),
                          ("base", "/api/next-batch/base?dataType=int&batchSize=25")):
            r = s.get(path)
            if r.status == 200:
                got[ent].extend(values_of(r.json, "int"))
            else:
                assert_error(r, 503, "Storage unavailable")
                fails.append(r.json)
        if len(fails) >= want_503:
            return fails
    raise AssertionError(f"no 503 after {limit} requests on a full disk")


@pytest.mark.timeout(60)
def test_disk_full_fails_with_503_and_recovers_without_restart(small_tmpfs, make_server, build):
    # small_tmpfs first: its teardown (umount) runs after make_server stopped the server.
    data = small_tmpfs / "data"
    s = make_server(build, env={"DATA_DIR": str(data)})
    got = collections.defaultdict(list)
    got["base"] += values_of(ok(s.batch("base", 10, "int")), "int")
    flakes = values_of(ok(s.batch("sf", 50, "snowflake")), "snowflake")

    def more_flakes(must_succeed=False):
        # While full a snowflake is served under the persisted fence or refused.
        r = s.batch("sf", 10, "snowflake", timeout=10)
        if r.status == 200 or must_succeed:
            ok(r)
            v = values_of(r.json, "snowflake")
            assert v[0] > flakes[-1], (v[0], flakes[-1])
            flakes.extend(v)
        else:
            assert_error(r, 503, "Storage unavailable")

    filler = small_tmpfs / "filler"
    assert fill_disk(filler) > 0

    fails = drive_until_503(s, got, "full-a-")
    h = s.get("/health")
    assert h.status == 503, h
    assert h.json["status"] == "unhealthy" and h.json.get("reason"), h
    m = " ".join(f["message"] for f in fails)
    assert "space" in m.lower() or "journal" in m.lower(), fails
    more_flakes()

    # Whatever was served while full was reserved durably: a crash and a
    # restart on the still-full disk continue above all of it.
    s.crash_restart()
    drive_until_503(s, got, "full-b-", want_503=2)
    more_flakes()
    assert_no_dups(got)

    # Space again: service resumes by itself, above everything handed out.
    filler.unlink()
    v = values_of(ok(s.batch("base", 30, "int")), "int")
    assert v[0] > max(got["base"]), (v[0], max(got["base"]))
    got["base"] += v
    for i in range(50):
        ent = f"after-{i}"
        got[ent] += values_of(ok(s.next_id(ent, "int")), "int")
    h = s.get("/health")
    assert h.status == 200 and h.json["status"] == "healthy", h
    more_flakes(must_succeed=True)
    assert flakes == sorted(flakes) and len(set(flakes)) == len(flakes)
    for ent, vals in got.items():
        if vals:
            nxt = values_of(ok(s.next_id(ent, "int")), "int")[0]
            assert nxt > max(vals), (ent, nxt, max(vals))
            vals.append(nxt)
    assert_no_dups(got)

    # The journal written through the failures replays cleanly.
    s.restart()
    assert "torn" not in s.stderr_text() and "corrupt" not in s.stderr_text(), s.stderr_text()
    for ent, vals in got.items():
        if vals:
            assert values_of(ok(s.next_id(ent, "int")), "int")[0] > max(vals), ent


@pytest.mark.timeout(40)
def test_health_recovers_by_itself_when_disk_frees(small_tmpfs, make_server):
    """/health must not stay 503 after the disk has space again, even without
    ID traffic: a Consul check (or a load balancer) that takes the instance
    out of rotation would otherwise never let traffic heal it."""
    s = make_server(_binary("release"), env={"DATA_DIR": str(small_tmpfs / "data")})
    got = collections.defaultdict(list)
    got["base"] += values_of(ok(s.batch("base", 10, "int")), "int")
    filler = small_tmpfs / "filler"
    fill_disk(filler)
    drive_until_503(s, got, "full-")
    assert s.get("/health").status == 503
    filler.unlink()
    deadline = time.monotonic() + 6
    while True:
        h = s.get("/health")
        if h.status == 200:
            break
        assert time.monotonic() < deadline, \
            f"/health still 503 6 s after the disk has space again (no ID traffic): {h!r}"
        time.sleep(0.2)
    assert values_of(ok(s.next_id("base", "int")), "int")[0] > max(got["base"])


# --------------------------------------------------------------------------- #
# 4. Two processes on one DATA_DIR
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(30)
def test_second_process_on_same_data_dir_refuses(make_server, build):
    first = make_server(build)
    a = first.take("shared", "int")
    journal_before = first.journal.read_bytes()

    second = make_server(build, env={"DATA_DIR": str(first.data_dir)}, start=False)
    second.start(wait=False)
    try:
        rc = second.proc.wait(3)
    except subprocess.TimeoutExpired:
        second.kill()
        raise AssertionError(f"second process on a used DATA_DIR still runs after 3 s:\n"
                             f"{second.output()}")
    out = second.output()
    assert rc != 0, out
    assert "in use" in out and str(first.data_dir) in out, out
    assert first.journal.read_bytes() == journal_before, "the refused process wrote the journal"

    # The first keeps serving, and its lock still holds.
    assert first.running
    assert ok(first.get("/health"))["status"] == "healthy"
    assert first.take("shared") > a
    second.start(wait=False)
    assert second.proc.wait(3) != 0


# --------------------------------------------------------------------------- #
# 5. Recovery: torn tail, corrupt middle
# --------------------------------------------------------------------------- #
def fill_journal(s):
    """Some history: int/long entities with several reservations, snowflakes,
    and as the very last record the binding of a uuid entity (losing that
    record loses nothing that was handed out). -> {entity: max value}."""
    top = {}
    for name, t in (("ti", "int"), ("tl", "long")):
        vals = []
        for n in (5, 40, 200, 900):
            vals += values_of(ok(s.batch(name, n, t)), t)
        top[name] = max(vals)
    top["ts"] = max(values_of(ok(s.batch("ts", 100, "snowflake")), "snowflake"))
    ok(s.next_id("zz-last", "uuid8"))
    return top


@pytest.mark.timeout(30)
@pytest.mark.parametrize("damage", ["truncate", "zero_fill", "partial_record", "corrupt_last"])
def test_torn_tail_is_dropped_with_a_warning(make_server, build, damage):
    s = make_server(build)
    top = fill_journal(s)
    s.stop()
    data = s.journal.read_bytes()
    recs = journal_records(data)
    last_off, last_len = recs[-1]
    if damage == "truncate":
        data = data[:-3]
    elif damage == "zero_fill":
        data = data + b"\0" * 200
    elif damage == "partial_record":
        first_off, first_len = recs[0]
        data = data + data[first_off:first_off + first_len - 2]
    else:   # a complete last record with a bad checksum
        b = bytearray(data)
        b[last_off + 8 + 2] ^= 0x40
        data = bytes(b)
    s.journal.write_bytes(data)

    s.start()
    err = s.stderr_text()
    assert re.search(r"level=warn.*(torn|tail)", err), err
    for name, t in (("ti", "int"), ("tl", "long"), ("ts", "snowflake")):
        assert values_of(ok(s.next_id(name, t)), t)[0] > top[name], name
    # The tail was cut off, so the next start is clean.
    s.restart()
    assert "level=warn" not in s.stderr_text(), s.stderr_text()
    for name, t in (("ti", "int"), ("tl", "long"), ("ts", "snowflake")):
        assert values_of(ok(s.next_id(name, t)), t)[0] > top[name], name


@pytest.mark.timeout(30)
@pytest.mark.parametrize("damage", ["payload", "checksum", "length"])
def test_corrupt_middle_refuses_to_start_and_leaves_the_file(make_server, build, damage):
    s = make_server(build)
    fill_journal(s)
    s.stop()
    data = bytearray(s.journal.read_bytes())
    recs = journal_records(bytes(data))
    assert len(recs) >= 6, recs
    off, length = recs[1]   # an early record; later records intact
    if damage == "payload":
        data[off + 8 + 2] ^= 0x01
    elif damage == "checksum":
        data[off + 4] ^= 0x80
    else:
        data[off + 3] ^= 0x80
    s.journal.write_bytes(bytes(data))
    damaged = bytes(data)
    listing = sorted(p.name for p in s.data_dir.iterdir())

    for _ in range(2):   # refusing twice: the first attempt changed nothing
        s.start(wait=False)
        try:
            rc = s.proc.wait(5)
        except subprocess.TimeoutExpired:
            s.kill()
            raise AssertionError(f"started on a journal with a corrupt middle:\n{s.output()}")
        out = s.output()
        assert rc == 1, out
        assert str(s.journal) in out, out
        assert re.search(rf"offset\D{{0,3}}{off}\b", out), f"offset {off} not named:\n{out}"
        assert s.journal.read_bytes() == damaged, "journal modified by a refused start"
        assert sorted(p.name for p in s.data_dir.iterdir()) == listing


# --------------------------------------------------------------------------- #
# 6. /api/status after SIGKILL + restart
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(30)
@pytest.mark.parametrize("dtype", ["int", "long"])
def test_status_is_truthful_after_sigkill(make_server, build, dtype):
    s = make_server(build, env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})

    def status():
        js = ok(s.status("st"))
        assert js["dataType"] == dtype
        out = {}
        for k in ("currentValue", "nextValue", "reservedUpTo"):
            assert k in js, js
            v = js[k]
            if v is not None:
                assert isinstance(v, int) if dtype == "int" else isinstance(v, str), js
                v = int(v)
                assert (v - 2) % 3 == 0, js
            out[k] = v
        return out

    handed = []
    for n in (1, 7, 50, 300):
        handed += values_of(ok(s.batch("st", n, dtype)), dtype)
        handed += values_of(ok(s.next_id("st", dtype)), dtype)
        st = status()
        assert st["currentValue"] == handed[-1] == max(handed), (st, handed[-1])
        assert st["nextValue"] == handed[-1] + 3, st
        assert st["reservedUpTo"] is not None and st["reservedUpTo"] >= st["currentValue"], st

    for _ in range(2):
        s.crash_restart()
        st = status()
        assert st == status(), "status changed without any request"
        assert st["nextValue"] > max(handed), (st, max(handed))
        if st["currentValue"] is not None:
            assert st["currentValue"] < st["nextValue"], st
        if st["reservedUpTo"] is not None and st["currentValue"] is not None:
            assert st["reservedUpTo"] >= st["currentValue"], st
        # An idle crash burns nothing more: nextValue does not move backwards.
        s.crash_restart()
        st2 = status()
        assert st2["nextValue"] >= st["nextValue"], (st, st2)
        v = values_of(ok(s.next_id("st", dtype)), dtype)[0]
        assert v == st2["nextValue"], (v, st2)
        handed.append(v)
        st3 = status()
        assert st3["currentValue"] == v and st3["nextValue"] == v + 3, st3
        assert st3["reservedUpTo"] >= v, st3
    assert len(set(handed)) == len(handed)


# --------------------------------------------------------------------------- #
# 7. fsync economy
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(60)
def test_hot_entity_costs_few_fsyncs(make_server, build):
    s = make_server(build)
    f0 = metric(s, "shardid_journal_fsyncs_total")
    r0 = metric(s, "shardid_sequence_reservations_total")
    ka = KeepAlive(s)
    vals = []
    for _ in range(5000):
        status, js, body = ka.get("/api/next-id/hot?dataType=int")
        assert status == 200, body
        vals.append(js["value"])
    ka.close()
    assert vals == list(range(vals[0], vals[0] + 5000)), "values not consecutive"
    fsyncs = metric(s, "shardid_journal_fsyncs_total") - f0
    reservations = metric(s, "shardid_sequence_reservations_total") - r0
    assert 1 <= reservations <= 20, reservations
    assert 1 <= fsyncs <= 20, f"{fsyncs} fsyncs for 5000 sequential IDs of one entity"


def test_clean_restart_continues_without_gap_and_status_is_exact(servers):
    s = servers()
    b = ok(s.batch("clean", 7, "long"))
    ok(s.batch("clean-int", 3, "int"))
    s.restart()                                          # SIGTERM, exit 0
    st = ok(s.status("clean"))
    assert st["currentValue"] == b["endValue"] and int(st["nextValue"]) == int(b["endValue"]) + 1
    assert s.take("clean") == str(int(b["endValue"]) + 1)
    assert s.take("clean-int") == 4


def test_kill_9_after_a_clean_restart_repeats_nothing(servers):
    """The clean stop lets the next run use the rest of the old reservation;
    a crash of that run must then skip it, not hand it out again."""
    s = servers()
    ok(s.batch("cs", 5, "long"))
    s.restart()
    run2 = ok(s.batch("cs", 5))["endValue"]
    s.crash_restart()
    assert int(s.take("cs")) > int(run2)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("dtype", ["uuid7", "ulid"])
def test_running_server_clock_steps_back_time_ordered_ids_keep_increasing(make_server, test_build, dtype):
    """uuid7 and ulid (fixed-width text whose byte order is their time order)
    keep increasing when the clock steps back 2 s and when it comes back:
    they continue in the last millisecond issued instead of going back."""
    s = clock_server(make_server, test_build)
    ka = KeepAlive(s, timeout=CLOCK_WAIT_S + SLACK_S + 3)
    seen = ok(s.batch("t", 50, dtype))["values"]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    set_clock_offset(s.offset_file, -2000)
    for _ in range(300):
        status, js, body = ka.get(f"/api/next-id/t?dataType={dtype}")
        assert status == 200, f"after a 2 s step back: {status} {body!r}"
        assert js["value"] > seen[-1], (js["value"], seen[-1])
        seen.append(js["value"])
    vals = ok(s.batch("t", 100, dtype))["values"]
    assert vals == sorted(vals) and vals[0] > seen[-1], (vals[0], seen[-1])
    seen += vals
    set_clock_offset(s.offset_file, 0)   # the clock comes back: still above everything
    vals = ok(s.batch("t", 100, dtype))["values"]
    assert vals == sorted(vals) and vals[0] > seen[-1], (vals[0], seen[-1])
    seen += vals
    assert len(set(seen)) == len(seen)
    ka.close()
