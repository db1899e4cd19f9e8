"""uuid7 and ulid: every value parses with an independent implementation
(Python's uuid, python-ulid), values strictly increase per instance within
and across batches and across kill -9 restarts."""
import json
import subprocess

import pytest

from bbutil import REPO, assert_error, now_ms, ok, uniq

CHECK_PY = REPO / ".tools" / "id-check" / "bin" / "python"


def independent(kind, values):
    """[(ms, hex, prefix)] as the independent parsers read the values."""
    if not CHECK_PY.exists():
        pytest.fail(f"{CHECK_PY} missing: run scripts/test-deps")
    r = subprocess.run([str(CHECK_PY), str(REPO / "tests" / "blackbox" / "idcheck.py")],
                       input=json.dumps([[kind, v] for v in values]),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [tuple(x) for x in json.loads(r.stdout)]


def strictly_increasing(xs):
    return all(a < b for a, b in zip(xs, xs[1:]))


@pytest.mark.parametrize("dtype", ["uuid7", "ulid"])
def test_single_and_batch_parse_and_increase(srv, dtype):
    ent = uniq()
    t0 = now_ms()
    vals = [srv.take(ent, dtype) for _ in range(20)]
    b1 = ok(srv.batch(ent, 3000, dtype))
    b2 = ok(srv.batch(ent, 5, dtype))
    vals += b1["values"] + b2["values"] + [srv.take(ent, dtype)]
    t1 = now_ms()
    assert b1["batchSize"] == 3000 and b1["startValue"] == b1["values"][0]
    assert b1["endValue"] == b1["values"][-1] and b1["dataType"] == dtype
    dec = independent(dtype, vals)
    # The text order is the byte order (both forms are fixed-width).
    assert strictly_increasing(vals)
    assert strictly_increasing([h for _, h, _ in dec])
    assert all(t0 - 1000 <= ms <= t1 + 2000 for ms, _, _ in dec)
    if dtype == "uuid7":
        assert all(v == v.lower() and len(v) == 36 for v in vals)
    else:
        assert all(len(v) == 26 and v == v.upper() for v in vals)


def test_types_are_instance_wide_monotonic(srv):
    """One generator per instance: two entities of a type interleave in order."""
    a, b = uniq(), uniq()
    vals = []
    for _ in range(10):
        vals.append(srv.take(a, "uuid7"))
        vals.append(srv.take(b, "uuid7"))
    assert strictly_increasing(vals)


def test_types_listed(srv):
    body = ok(srv.get("/api/types"))
    for t in ("uuid7", "ulid"):
        assert t in body["availableTypes"]
        assert body["description"][t]


def test_binding_and_mismatch(srv):
    ent = uniq()
    srv.take(ent, "ulid")
    assert ok(srv.status(ent))["dataType"] == "ulid"
    assert_error(srv.next_id(ent, "uuid7"), 400, "Type mismatch")
    assert_error(srv.next_id(uniq(), "uuid6"), 400, "Invalid data type")


@pytest.mark.timeout(40)
@pytest.mark.parametrize("dtype", ["uuid7", "ulid"])
def test_increase_across_kill_9(servers, dtype):
    s = servers()
    seen = []
    for cycle in range(3):
        vals = [s.take("t", dtype) for _ in range(5)]
        vals += ok(s.batch("t", 50 + 100 * cycle, dtype))["values"]
        seen += vals
        s.crash_restart()
    seen.append(s.take("t", dtype))
    assert strictly_increasing(seen)
    assert len(independent(dtype, seen)) == len(seen)
    assert ok(s.status("t"))["dataType"] == dtype
