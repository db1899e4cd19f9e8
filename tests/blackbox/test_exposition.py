"""GET /metrics checked by tooling that is not ours: `promtool check metrics`
(Debian's prometheus package) when scripts/test-deps could install it, and
always the prometheus-client parser (PyPI, in a venv under .tools/) with the
naming rules promtool lints for: counters end in _total, units are base units
and come last, no family named after its type."""
import os
import re
import shutil
import subprocess
import time

import pytest

from bbutil import REPO, ASAN_BIN, ok, set_clock_offset

PROMCLIENT_PY = REPO / ".tools" / "prom-client" / "bin" / "python"


@pytest.fixture(scope="module")
def exposition(module_servers, tmp_path_factory):
    """A scrape with every family the server can show: requests of several
    routes and statuses, sequences, snowflakes, a clock wait."""
    s = module_servers()
    ok(s.next_id("expo-long", "long"))
    ok(s.next_id("expo-int", "int"))
    ok(s.next_id("expo-sf", "snowflake"))
    ok(s.batch("expo-b", 10, "long"))
    s.get("/nope")
    s.get("/health")
    s.get("/metrics")
    return s.get("/metrics").body.decode()


def test_promtool_check_metrics(exposition):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (scripts/test-deps installs Debian's prometheus when it can)")
    r = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"promtool check metrics (exit {r.returncode}):\n{r.stdout}{r.stderr}"


# The units Prometheus names (base units only) and the ones it lints against.
BASE_UNITS = ("seconds", "bytes", "ratio", "info")
NON_BASE = re.compile(r"_(milliseconds|microseconds|nanoseconds|minutes|hours|days|kilobytes|"
                      r"megabytes|gigabytes|percent|millis|ms|us|ns|kb|mb)(_|$)")

PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "documentation": f.documentation,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
"""


def test_prometheus_client_parser_and_naming(exposition):
    if not os.access(PROMCLIENT_PY, os.X_OK):
        pytest.fail(f"{PROMCLIENT_PY} missing: run scripts/test-deps")
    r = subprocess.run([str(PROMCLIENT_PY), "-c", PARSE], input=exposition, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"prometheus-client could not parse the scrape:\n{r.stderr}"
    import json
    families = json.loads(r.stdout)
    names = [f["name"] for f in families]
    assert len(names) == len(set(names)), "a family appears twice"
    problems = []
    raw_types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M))
    for f in families:
        # The parser strips _total from counters: the exposed name has it.
        name, kind = f["name"], f["type"]
        exposed = name + "_total" if kind == "counter" else name
        if raw_types.get(exposed) != kind:
            problems.append(f"{exposed}: TYPE {raw_types.get(exposed)}, parsed as {kind}")
        if not f["documentation"]:
            problems.append(f"{exposed}: no HELP")
        if kind == "counter" and not exposed.endswith("_total"):
            problems.append(f"{exposed}: a counter's name must end in _total")
        if kind != "counter" and exposed.endswith("_total"):
            problems.append(f"{exposed}: only counters end in _total")
        if NON_BASE.search(exposed):
            problems.append(f"{exposed}: not a base unit (seconds, bytes, ratio)")
        for word in ("_counter", "_gauge", "_histogram", "_summary"):
            if word in exposed:
                problems.append(f"{exposed}: named after its type")
        stem = exposed.removesuffix("_total")
        for unit in BASE_UNITS:
            if f"_{unit}_" in stem + "_" and not stem.endswith("_" + unit):
                problems.append(f"{exposed}: the unit must come last")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", exposed):
            problems.append(f"{exposed}: not snake_case")
        if kind == "histogram":
            les = [s[1]["le"] for s in f["samples"] if s[0].endswith("_bucket")]
            if "+Inf" not in les:
                problems.append(f"{exposed}: no +Inf bucket")
        for sname, labels, value in f["samples"]:
            if value != value:   # NaN
                problems.append(f"{sname}: NaN")
    assert not problems, "\n".join(problems)
    # Everything exposed is shardid's or the standard process families.
    assert all(n.startswith(("shardid_", "process_")) for n in names), names
