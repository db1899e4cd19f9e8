"""deploy/grafana/shardid.json and deploy/prometheus/shardid-rules.yml:
promtool checks the rules (and every dashboard query, as recording rules),
or, without promtool, PyYAML reads them; every metric they name must be in
a live scrape of a server that holds its Consul lock."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from bbutil import REPO, ok, uniq

DASHBOARD = REPO / "deploy" / "grafana" / "shardid.json"
RULES = REPO / "deploy" / "prometheus" / "shardid-rules.yml"
PROMCLIENT_PY = REPO / ".tools" / "prom-client" / "bin" / "python"
METRIC = re.compile(r"\b((?:shardid|process)_[a-z0-9_]+)")
# Grafana's variables, as Prometheus would see them after substitution.
GRAFANA_VARS = {"$__rate_interval": "5m", "$instance": ".*", "$job": ".*"}


def dashboard():
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs():
    out = []
    for p in dashboard()["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in GRAFANA_VARS.items():
                e = e.replace(k, v)
            out.append((p["title"], e))
    return out


def rule_exprs():
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^\s*- alert: (\S+)\n(?:.*\n)*?\s*expr: (.+)$", RULES.read_text(), re.M)]


def test_dashboard_structure():
    d = dashboard()
    # Grafana 10.4 and 11 write schemaVersion 39; older ones migrate it on load.
    assert d["schemaVersion"] >= 39
    assert d["uid"] and d["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    names = {v["name"] for v in d["templating"]["list"]}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        for t in p["targets"]:
            used = set(re.findall(r"\$(\w+)", t["expr"])) - {"__rate_interval"}
            assert used <= names, (p["title"], used - names)
    titles = " ".join(p["title"] for p in d["panels"]).lower()
    for want in ("ids issued", "requests per second", "p50", "p99", "p99.9", "errors", "fsyncs",
                 "reservations", "open connections", "lock", "registration", "range left", "time left"):
        assert want in titles, want


def test_promtool_checks_rules_and_dashboard_queries(tmp_path):
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SUCCESS: 10 rules found" in r.stdout, r.stdout
        # The dashboard's queries as recording rules: promtool parses each one.
        rec = tmp_path / "dashboard-rules.yml"
        rules = [{"record": f"dashboard:query{i}", "expr": e} for i, (_, e) in enumerate(dashboard_exprs())]
        rec.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
        r = subprocess.run([promtool, "check", "rules", str(rec)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return
    # Without promtool: the rules file must at least be the YAML Prometheus reads.
    if not os.access(PROMCLIENT_PY, os.X_OK):
        pytest.fail(f"neither promtool nor {PROMCLIENT_PY}: run scripts/test-deps")
    check = ("import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); "
             "rs = [r for g in d['groups'] for r in g['rules']]; "
             "assert all(set(r) <= {'alert','expr','for','labels','annotations'} and r['expr'] for r in rs); "
             "print(len(rs))")
    r = subprocess.run([str(PROMCLIENT_PY), "-c", check, str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "10", r.stdout + r.stderr
    for title, e in dashboard_exprs() + rule_exprs():
        assert e.count("(") == e.count(")") and e.count("{") == e.count("}"), (title, e)


def test_every_metric_named_exists_in_a_live_scrape(servers, agent):
    s = servers(env={"CONSUL_URL": agent.url, "SERVICE_NAME": uniq("dash").replace("-", ""),
                     "CONTAINER_IP": "127.0.0.1", "SHARD_ID": 1, "TOTAL_SHARDS": 1})
    deadline = time.monotonic() + 10
    # Serving, not only locked: between taking the lock and reading the
    # shard state back from Consul the ID routes answer 503.
    while True:
        h = s.get("/health")
        if h.status == 200 and h.json.get("consul", {}).get("state") == "synced":
            break
        assert time.monotonic() < deadline, f"not serving: {h!r}"
        time.sleep(0.1)
    ok(s.next_id(uniq("d"), "long"))
    text = s.get("/metrics").body.decode()
    have = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        have.add(name)
        if kind == "histogram":
            have |= {name + "_bucket", name + "_sum", name + "_count"}
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    named = {}
    for title, e in dashboard_exprs() + rule_exprs():
        for m in METRIC.findall(e):
            named.setdefault(m, title)
    assert named, "no metric names found"
    missing = {m: t for m, t in named.items() if m not in have}
    assert not missing, f"named but not exposed: {missing}"
    # Each also has a sample now (the lock is held, requests were served).
    no_sample = {m: t for m, t in named.items() if m not in samples}
    assert not no_sample, f"exposed without a sample: {no_sample}"
