"""uuid7 and ulid: every value parses with an independent implementation
(Python's uuid, python-ulid, typeid-python), values strictly increase per
instance within and across batches and across kill -9 restarts. Also range
batches, base62 snowflakes, compose-snowflake, and the styles bound at init:
a TypeID prefix for uuid7, base62 for snowflakes (durable, shown in status
and list; bad ones are 400 and create nothing), and parse-typeid."""
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


# ---- range batches --------------------------------------------------------- #
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(v):
    return "".join(B62[(v // 62 ** (10 - i)) % 62] for i in range(11))


@pytest.mark.parametrize("query", ["values=false", "format=range"])
def test_range_batch_is_constant_size_and_reserves(srv23, query):
    ent = uniq()
    first = int(srv23.take(ent, "long"))
    r = ok(srv23.get(f"/api/next-batch/{ent}?dataType=long&batchSize=1000000&{query}"))
    assert "values" not in r and "value" not in r
    assert r["count"] == 1000000 and r["batchSize"] == 1000000 and r["step"] == 3
    start, end = int(r["startValue"]), int(r["endValue"])
    assert start > first and start % 3 == 2
    assert end == start + 999999 * 3
    after = int(srv23.take(ent, "long"))
    assert after > end


def test_range_batch_int_is_numbers(srv):
    ent = uniq()
    r = ok(srv.get(f"/api/next-batch/{ent}?dataType=int&batchSize=50&format=range"))
    assert r["startValue"] == 1 and r["endValue"] == 50 and r["step"] == 1
    assert srv.take(ent, "int") == 51


@pytest.mark.timeout(40)
def test_ranges_never_overlap_across_kill_9(servers):
    s = servers(env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    spans = []
    for cycle in range(3):
        for n in (1, 1000, 500000):
            r = ok(s.get(f"/api/next-batch/k?dataType=long&batchSize={n}&values=false"))
            spans.append((int(r["startValue"]), int(r["endValue"])))
        v = int(s.take("k", "long"))
        spans.append((v, v))
        s.crash_restart()
    for a, b in zip(spans, spans[1:]):
        assert a[1] < b[0], (a, b)


@pytest.mark.parametrize("query,dtype", [
    ("batchSize=10&format=xml", "long"),
    ("batchSize=10&values=maybe", "long"),
    ("batchSize=10&format=range", "snowflake"),
    ("batchSize=10&values=false", "uuid7"),
    ("batchSize=10&format=base62", "int"),
    ("batchSize=1000001&format=range", "long"),
    ("batchSize=10001", "long"),
])
def test_bad_batch_formats_create_nothing(srv, query, dtype):
    ent = uniq()
    r = srv.get(f"/api/next-batch/{ent}?dataType={dtype}&{query}")
    assert r.status == 400, r.body
    assert srv.status(ent).status == 404


def test_bad_next_id_format_creates_nothing(srv):
    for q in ("dataType=snowflake&format=range", "dataType=ulid&format=base62",
              "dataType=snowflake&format=hex"):
        ent = uniq()
        assert srv.get(f"/api/next-id/{ent}?{q}").status == 400
        assert srv.status(ent).status == 404


# ---- base62 snowflakes ---------------------------------------------------- #
def test_base62_snowflakes_sort_and_parse(srv):
    ent = uniq()
    one = ok(srv.get(f"/api/next-id/{ent}?dataType=snowflake&format=base62"))["value"]
    batch = ok(srv.get(f"/api/next-batch/{ent}?batchSize=300&format=base62"))["values"]
    dec = srv.take(ent)
    vals = [one] + batch
    assert all(len(v) == 11 and set(v) <= set(B62) for v in vals)
    assert strictly_increasing(vals)
    assert b62(int(dec)) > vals[-1]
    for v in (one, batch[-1]):
        p = ok(srv.get(f"/api/parse-snowflake/{v}"))
        assert b62(int(p["id"])) == v
    assert srv.get("/api/parse-snowflake/0000000000!").status in (400, 404)
    assert srv.get("/api/parse-snowflake/zzzzzzzzzzz").status == 400


# ---- compose-snowflake ---------------------------------------------------- #
@pytest.mark.timeout(30)
def test_compose_bounds_snowflakes_issued_around_a_time(srv):
    import time
    ent = uniq()
    before = [int(srv.take(ent, "snowflake")) for _ in range(3)]
    time.sleep(0.05)
    t = now_ms()
    time.sleep(0.05)
    after = [int(srv.take(ent)) for _ in range(3)]
    c = ok(srv.get(f"/api/compose-snowflake?time={t}"))
    lo = int(c["snowflake"])
    assert c["timestamp"] == t
    assert all(v < lo for v in before) and all(v >= lo for v in after)
    assert c["base62"] == b62(lo)
    p = ok(srv.get(f"/api/parse-snowflake/{lo}"))
    assert p["sequence"] == 0 and p["machineId"] == 0 and t - 10 < p["timestamp"] <= t
    (ms, hexv, _), = independent("uuid7", [c["uuid7"]])
    assert ms == t and hexv.endswith("7000" + "8" + "0" * 15)
    # The same time as ISO-8601.
    iso = ok(srv.get(f"/api/compose-snowflake?time={c['time']}"))
    assert iso["snowflake"] == c["snowflake"]


@pytest.mark.parametrize("q", ["time=2021-12-31T23:59:59.999Z", "time=0", "time=yesterday",
                               "time=2024-02-30T00:00:00Z", "time=2023-01-01T00:00:00",
                               "time=99999999999999999999", "", "time=2300-01-01T00:00:00Z"])
def test_compose_out_of_range(srv, q):
    assert_error(srv.get(f"/api/compose-snowflake?{q}"), 400)


def test_compose_epoch_is_zero(srv):
    c = ok(srv.get("/api/compose-snowflake?time=2022-01-01T00:00:00Z"))
    assert c["snowflake"] == "0" and c["base62"] == "00000000000"


# ---- TypeID prefixes and base62 bound at init ------------------------------ #
def init_styled(srv, ent, dtype, **style):
    return srv.init(ent, body={"dataType": dtype, **style})


def listed(srv, ent):
    return [e for e in ok(srv.get("/api/list"))["entities"] if e["entityName"] == ent]


def test_typeid_prefix_bound_at_init(srv):
    ent = uniq()
    t0 = now_ms()
    body = ok(init_styled(srv, ent, "uuid7", prefix="user"), 201)
    assert body["prefix"] == "user" and body["dataType"] == "uuid7"
    vals = [srv.take(ent) for _ in range(10)]
    vals += ok(srv.batch(ent, 2000))["values"] + ok(srv.batch(ent, 3, "uuid7"))["values"]
    vals.append(srv.take(ent, "uuid7"))
    t1 = now_ms()
    assert all(v.startswith("user_") and len(v) == 31 and v == v.lower() for v in vals)
    dec = independent("typeid", vals)
    assert {p for _, _, p in dec} == {"user"}
    # typeid-python hands back the UUID; idcheck.py asserts version 7 and
    # the RFC variant with Python's uuid. The suffix sorts like the UUID.
    assert strictly_increasing([h for _, h, _ in dec])
    assert strictly_increasing(vals)
    assert all(t0 - 1000 <= ms <= t1 + 2000 for ms, _, _ in dec)
    for v, (ms, hexv, _) in zip(vals[:3] + vals[-1:], dec[:3] + dec[-1:]):
        p = ok(srv.get(f"/api/parse-typeid/{v}"))
        assert p["id"] == v and p["prefix"] == "user" and p["timestamp"] == ms
        assert p["uuid"].replace("-", "") == hexv
    assert ok(srv.status(ent))["prefix"] == "user"
    assert listed(srv, ent) == [{"entityName": ent, "dataType": "uuid7", "prefix": "user",
                                 "currentValue": None}]


def test_typeid_longest_prefix_and_underscores(srv):
    for prefix in ("a" * 63, "pre_fix"):
        ent = uniq()
        ok(init_styled(srv, ent, "uuid7", prefix=prefix), 201)
        v = srv.take(ent)
        assert len(v) == len(prefix) + 27
        (_, _, p), = independent("typeid", [v])
        assert p == prefix
        assert ok(srv.get(f"/api/parse-typeid/{v}"))["prefix"] == prefix


@pytest.mark.timeout(40)
def test_typeid_prefix_survives_kill_9(servers):
    s = servers()
    ok(init_styled(s, "acct", "uuid7", prefix="account"), 201)
    ok(init_styled(s, "f", "snowflake", format="base62"), 201)
    seen = []
    for _ in range(3):
        seen += [s.take("acct") for _ in range(3)] + ok(s.batch("acct", 50))["values"]
        assert len(s.take("f")) == 11
        s.crash_restart()
    seen.append(s.take("acct"))
    assert strictly_increasing(seen)
    assert {p for _, _, p in independent("typeid", seen)} == {"account"}
    assert ok(s.status("acct"))["prefix"] == "account"
    assert ok(s.status("f"))["format"] == "base62" and len(s.take("f")) == 11


@pytest.mark.parametrize("body", [
    {"dataType": "uuid7", "prefix": "User"},
    {"dataType": "uuid7", "prefix": "_user"},
    {"dataType": "uuid7", "prefix": "user_"},
    {"dataType": "uuid7", "prefix": "us3r"},
    {"dataType": "uuid7", "prefix": "a" * 64},
    {"dataType": "uuid7", "prefix": ""},
    {"dataType": "uuid7", "prefix": 5},
    {"dataType": "ulid", "prefix": "user"},
    {"dataType": "int", "prefix": "user"},
    {"dataType": "snowflake", "prefix": "user"},
    {"dataType": "uuid7", "format": "base62"},
    {"dataType": "long", "format": "base62"},
    {"dataType": "snowflake", "format": "hex"},
    {"dataType": "snowflake", "format": "decimal"},
    {"dataType": "snowflake", "format": 62},
], ids=lambda b: json.dumps(b, separators=(",", ":")))
def test_bad_init_styles_create_nothing(srv, body):
    ent = uniq()
    before = ok(srv.get("/api/list"))
    assert_error(srv.init(ent, body=body), 400, "Invalid field")
    assert srv.status(ent).status == 404
    assert ok(srv.get("/api/list")) == before


def test_reinit_with_another_prefix_is_409(srv):
    ent = uniq()
    ok(init_styled(srv, ent, "uuid7", prefix="user"), 201)
    assert_error(init_styled(srv, ent, "uuid7", prefix="account"), 409, "Entity exists")
    assert_error(init_styled(srv, ent, "uuid7"), 409, "Entity exists")
    assert srv.take(ent).startswith("user_")
    # An entity made by next-id has no prefix; the ID routes cannot add one.
    plain = uniq()
    assert len(srv.take(plain, "uuid7")) == 36
    assert "prefix" not in ok(srv.status(plain))
    assert_error(init_styled(srv, plain, "uuid7", prefix="user"), 409, "Entity exists")


def test_base62_bound_at_init(srv):
    ent = uniq()
    body = ok(init_styled(srv, ent, "snowflake", format="base62"), 201)
    assert body["format"] == "base62"
    vals = [srv.take(ent) for _ in range(5)] + ok(srv.batch(ent, 200))["values"]
    assert all(len(v) == 11 and set(v) <= set(B62) for v in vals)
    assert strictly_increasing(vals)
    for v in (vals[0], vals[-1]):
        p = ok(srv.get(f"/api/parse-snowflake/{v}"))
        assert b62(int(p["id"])) == v
    # An explicit format= wins over the bound one.
    dec = ok(srv.get(f"/api/next-id/{ent}?format=decimal"))["value"]
    assert dec.isdigit() and b62(int(dec)) > vals[-1]
    batch = ok(srv.get(f"/api/next-batch/{ent}?batchSize=3&format=decimal"))["values"]
    assert all(v.isdigit() for v in batch) and int(batch[0]) > int(dec)
    assert len(ok(srv.get(f"/api/next-id/{ent}?format=base62"))["value"]) == 11
    st = ok(srv.status(ent))
    assert st["format"] == "base62" and int(st["currentValue"]) > int(batch[-1])
    assert listed(srv, ent)[0]["format"] == "base62"
    assert_error(srv.get(f"/api/next-batch/{ent}?batchSize=3&format=range"), 400, "Invalid format")
    assert_error(srv.get(f"/api/next-id/{uniq()}?dataType=long&format=decimal"), 400, "Invalid format")


def test_parse_typeid(srv):
    # The TypeID spec's "valid-uuidv7" example.
    p = ok(srv.get("/api/parse-typeid/prefix_01h455vb4pex5vsknk084sn02q"))
    assert p == {"id": "prefix_01h455vb4pex5vsknk084sn02q", "prefix": "prefix",
                 "uuid": "01890a5d-ac96-774b-bcce-b302099a8057",
                 "timestamp": 0x01890a5dac96, "date": "2023-06-30T03:34:18.518Z"}
    assert ok(srv.get("/api/parse-typeid/01h455vb4pex5vsknk084sn02q"))["prefix"] == ""
    for bad in ("prefix_01H455VB4PEX5VSKNK084SN02Q", "_01h455vb4pex5vsknk084sn02q",
                "prefix__01h455vb4pex5vsknk084sn02q", "prefix_8zzzzzzzzzzzzzzzzzzzzzzzzz",
                "prefix_01h455vb4pex5vsknk084sn02", "Prefix_01h455vb4pex5vsknk084sn02q",
                "pre.fix_01h455vb4pex5vsknk084sn02q", "prefix_00000000000000000000000000"):
        assert_error(srv.get(f"/api/parse-typeid/{bad}"), 400)
