"""GET /metrics: Prometheus text exposition format 0.0.4."""
import os
import re
import shutil
import time

import pytest

from bbutil import BIN, ok, uniq

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN"
SAMPLE_RE = re.compile(rf"^({NAME})(\{{(?:{LABEL}(?:,{LABEL})*,?)?\}})? ({VALUE})(?: -?\d+)?$")
HELP_RE = re.compile(rf"^# HELP {NAME} .*$")
TYPE_RE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")


@pytest.fixture(scope="module")
def msrv(module_servers):
    return module_servers()


def scrape(s):
    r = s.get("/metrics")
    assert r.status == 200, r
    return r


def samples(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        m = SAMPLE_RE.match(line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(smp, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in smp.items() if n == name and want <= set(ls))


def test_content_type(msrv):
    ctype = scrape(msrv).headers["content-type"]
    assert ctype.replace(" ", "").startswith("text/plain;version=0.0.4"), ctype


def test_every_line_matches_exposition_grammar(msrv):
    msrv.take("g1", "int")
    msrv.get("/nope")
    text = scrape(msrv).body.decode()
    assert text.endswith("\n")
    seen_samples = set()
    typed = {}
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            if line.startswith("# TYPE"):
                m = TYPE_RE.match(line)
                assert m, line
                assert m.group(1) not in typed, f"duplicate TYPE: {line}"
                typed[m.group(1)] = m.group(2)
            elif line.startswith("# HELP"):
                assert HELP_RE.match(line), line
            continue
        if line == "":
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        key = (m.group(1), m.group(2))
        assert key not in seen_samples, f"duplicate sample: {line}"
        seen_samples.add(key)
    assert seen_samples


def test_counters_declared_before_samples(msrv):
    text = scrape(msrv).body.decode()
    declared = set()
    for line in text.splitlines():
        m = TYPE_RE.match(line)
        if m:
            declared.add(m.group(1))
            continue
        m = SAMPLE_RE.match(line)
        if m:
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            assert m.group(1) in declared or base in declared, f"sample before its TYPE: {line}"


def test_requests_total_counts_by_status(msrv):
    before = samples(scrape(msrv).body.decode())
    for _ in range(5):
        ok(msrv.get("/health"))
    for _ in range(3):
        assert msrv.get("/definitely/not/here").status == 404
    after = samples(scrape(msrv).body.decode())
    d200 = total(after, "shardid_requests_total", status="200") - \
        total(before, "shardid_requests_total", status="200")
    d404 = total(after, "shardid_requests_total", status="404") - \
        total(before, "shardid_requests_total", status="404")
    assert 5 <= d200 <= 6, d200       # + the first scrape, if counted before it was answered
    assert d404 == 3, d404
    assert all("route" in dict(ls) for (n, ls) in after if n == "shardid_requests_total")


def test_requests_total_has_route_label_per_route(msrv):
    ok(msrv.get("/shard-info"))
    smp = samples(scrape(msrv).body.decode())
    routes = {dict(ls).get("route") for (n, ls) in smp if n == "shardid_requests_total"}
    assert len(routes) >= 2, routes


def test_ids_issued_by_type(msrv):
    def issued(t):
        return total(samples(scrape(msrv).body.decode()), "shardid_ids_issued_total", type=t)
    before_int, before_uuid = issued("int"), issued("uuid8")
    ok(msrv.batch("cnt-int", 7, "int"))
    for _ in range(3):
        msrv.take("cnt-int")
    ok(msrv.batch("cnt-uuid", 4, "uuid8"))
    assert issued("int") - before_int == 10
    assert issued("uuid8") - before_uuid == 4


def test_failed_requests_issue_nothing(msrv):
    def issued():
        return total(samples(scrape(msrv).body.decode()), "shardid_ids_issued_total", type="int")
    msrv.take("cnt-fail", "int")
    before = issued()
    assert msrv.batch("cnt-fail", 0).status == 400
    assert msrv.next_id("cnt-fail", "long").status == 400
    assert issued() == before


def test_connections_open_gauge(msrv):
    smp = samples(scrape(msrv).body.decode())
    assert ("shardid_connections_open", frozenset()) in smp
    assert smp[("shardid_connections_open", frozenset())] >= 1


@pytest.mark.parametrize("keyword", ["reserv", "fsync", "clock", "consul", "connections_open"])
def test_spec_metric_families_present(msrv, keyword):
    """SPEC 4: sequence reservations and fsyncs, clock-backwards waits,
    connections open, Consul registration state."""
    text = scrape(msrv).body.decode()
    typed = [m.group(1) for m in map(TYPE_RE.match, text.splitlines()) if m]
    assert any(keyword in name for name in typed), typed


def test_reservations_and_fsyncs_grow_with_new_sequences(msrv):
    def fam(part):
        smp = samples(scrape(msrv).body.decode())
        return sum(v for (n, _), v in smp.items() if part in n and n.endswith("_total"))
    r0, f0 = fam("reserv"), fam("fsync")
    for i in range(3):
        msrv.take(f"fresh-seq-{i}", "int")
    assert fam("reserv") >= r0 + 3
    assert fam("fsync") > f0


def test_build_info(msrv):
    smp = samples(scrape(msrv).body.decode())
    info = [(ls, v) for (n, ls), v in smp.items() if n == "shardid_build_info"]
    assert len(info) == 1, info
    labels, value = info[0]
    assert value == 1
    assert {k for k, _ in labels} == {"version", "commit"}
    assert all(v for _, v in labels), labels


PROCESS_FAMILIES = {
    "process_start_time_seconds": "gauge", "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge", "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge", "process_max_fds": "gauge",
}


def test_process_metrics_from_proc(msrv):
    text = scrape(msrv).body.decode()
    typed = dict(m.groups() for m in map(TYPE_RE.match, text.splitlines()) if m)
    for name, kind in PROCESS_FAMILIES.items():
        assert typed.get(name) == kind, (name, typed.get(name))
    smp = samples(text)
    v = {name: smp[(name, frozenset())] for name in PROCESS_FAMILIES}
    assert abs(v["process_start_time_seconds"] - time.time()) < 600, v
    assert 0 <= v["process_cpu_seconds_total"] < 600
    assert 0 < v["process_resident_memory_bytes"] <= v["process_virtual_memory_bytes"]
    # The listener, the journal and the scrape's own connection at least.
    assert 3 <= v["process_open_fds"] <= v["process_max_fds"]
    for _ in range(3):
        msrv.get("/health")
    assert samples(scrape(msrv).body.decode())[("process_open_fds", frozenset())] < v["process_open_fds"] + 8


def test_process_metrics_absent_without_proc(servers, tmp_path):
    """In an empty chroot (no /proc) the process families are left out, not zero."""
    if os.geteuid() != 0 or not shutil.which("chroot"):
        pytest.skip("needs root and chroot(8) for an empty root directory")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(BIN, root / "shardid")
    s = servers(env={"DATA_DIR": "/data"}, args=[str(root), "/shardid"], start=False)
    s.binary = shutil.which("chroot")  # which execs the binary: the pid is shardid's
    s.start()
    text = scrape(s).body.decode()
    assert "process_" not in text, [l for l in text.splitlines() if "process_" in l]
    assert "shardid_build_info{" in text
    assert ok(s.next_id(uniq("chroot"), "long"))


def histogram(smp, name, route):
    """{le: cumulative count}, sum, count of one route's series."""
    buckets = {}
    for (n, ls), v in smp.items():
        d = dict(ls)
        if n == name + "_bucket" and d.get("route") == route:
            buckets[d["le"]] = v
    return (buckets, smp.get((name + "_sum", frozenset({("route", route)}))),
            smp.get((name + "_count", frozenset({("route", route)}))))


def test_request_duration_histogram(servers):
    s = servers()
    for i in range(20):
        ok(s.next_id(f"h{i % 3}", "long"))
    s.get("/health")
    text = scrape(s).body.decode()
    assert "# TYPE shardid_request_duration_seconds histogram" in text
    smp = samples(text)
    buckets, total_s, count = histogram(smp, "shardid_request_duration_seconds", "/api/next-id")
    les = [float(le) for le in buckets]
    assert les == sorted(les) and les[0] == 0.000025 and les[-2] == 1 and les[-1] == float("inf"), les
    values = list(buckets.values())
    assert values == sorted(values), "buckets must be cumulative"
    assert count == buckets["+Inf"] == 20
    assert count == total(smp, "shardid_requests_total", route="/api/next-id")
    assert 0 < total_s < 20 * 5, total_s
    # This scrape is answered after the histogram is rendered: it is not in it yet.
    _, _, metrics_count = histogram(smp, "shardid_request_duration_seconds", "/metrics")
    assert metrics_count is None
    assert histogram(samples(scrape(s).body.decode()), "shardid_request_duration_seconds", "/metrics")[2] == 1
    assert ("shardid_snowflake_clock_wait_seconds_total", frozenset()) in smp


def test_parked_request_duration_includes_the_wait(servers, tmp_path):
    """A snowflake request parked behind the clock is timed from when it was read."""
    from bbutil import ASAN_BIN, set_clock_offset
    if not os.access(ASAN_BIN, os.X_OK):
        pytest.skip("needs the test build (make build/shardid-asan)")
    offset = tmp_path / "offset"
    set_clock_offset(offset, 0)
    s = servers(env={"SHARDID_TEST_CLOCK_OFFSET_FILE": str(offset), "SNOWFLAKE_LAYOUT": "twitter"},
                start=False)
    s.binary = ASAN_BIN
    s.start()
    ok(s.next_id("sf", "snowflake"))
    # 150 ms backwards: the batch uses up the last tick's sequence, then waits
    # for the clock to pass it.
    set_clock_offset(offset, -150)
    assert len(ok(s.batch("sf", 5000, "snowflake"))["values"]) == 5000
    smp = samples(scrape(s).body.decode())
    buckets, total_s, count = histogram(smp, "shardid_request_duration_seconds", "/api/next-batch")
    assert count == 1
    assert buckets["0.1"] == 0 and buckets["1"] == 1, buckets
    assert 0.1 <= total_s < 1
    assert 0.1 <= smp[("shardid_snowflake_clock_wait_seconds_total", frozenset())] <= total_s


def test_capacity_metrics_and_warnings(servers):
    s = servers(env={"LOG_LEVEL": "info"})
    smp = samples(scrape(s).body.decode())
    assert smp[("shardid_sequence_max_used_ratio", frozenset())] == 0
    # The default layout (sonyflake) runs out in 2190 or so: decades left.
    left = smp[("shardid_snowflake_time_left_seconds", frozenset())]
    assert 100 * 365 * 86400 < left < 180 * 365 * 86400, left

    ok(s.init("low", "int", start=1000), 201)
    int_max = 2**31 - 1
    ok(s.init("hot", "int", start=int_max // 100 * 95), 201)
    ok(s.next_id("hot"))
    smp = samples(scrape(s).body.decode())
    used = smp[("shardid_sequence_max_used_ratio", frozenset())]
    assert 0.949 <= used < 0.96, used
    assert not any("entity=" in n or "entity" in dict(ls) for (n, ls) in smp), "no per-entity labels"
    st = s.status("hot")
    assert st.status == 200
    body = st.json
    assert body["valuesLeft"] == int_max - int(body["currentValue"]), body
    assert 4.9 < body["rangeLeftPercent"] <= 5.01, body

    # Passing 90 % logs one warning for it; passing 99 % another.
    out = s.output()
    warn90 = [l for l in out.splitlines() if "nearly used up" in l and "entity=hot" in l]
    assert len(warn90) == 1 and "passed_percent=90" in warn90[0], warn90
    ok(s.reset("hot", int_max // 1000 * 995))
    ok(s.next_id("hot"))
    warn = [l for l in s.output().splitlines() if "nearly used up" in l and "entity=hot" in l]
    assert len(warn) == 2 and "passed_percent=99" in warn[1], warn
    assert not [l for l in s.output().splitlines() if "nearly used up" in l and "entity=low" in l]
