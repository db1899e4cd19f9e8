"""The deployment manifests in deploy/kubernetes and deploy/nomad: valid for
their tool, and consistent with the binary they run.

Kubernetes: kubernetes-validate --strict (the API's schemas ship with the
package, so this works offline). Nomad: there is no Nomad validator in the
registries the project installs from, so the job is parsed with python-hcl2
and its structure checked here. Both tools live in the venv
.tools/deploy-check that scripts/test-deps installs.

Against the binary: every environment variable a manifest sets is one that
`shardid --help` lists, `shardid check-config` accepts the manifest's
environment for every shard and resolves the shard the manifest means, the
health-check path answers 200 on a started binary, and the ports line up.
"""
import json
import re
import subprocess
import time

import pytest

from bbutil import REPO, free_port, ok, run_bin, uniq

VENV = REPO / ".tools" / "deploy-check"
K8S = REPO / "deploy" / "kubernetes" / "shardid.yaml"
NOMAD = REPO / "deploy" / "nomad" / "shardid.nomad.hcl"
DOCKERFILE = REPO / "Dockerfile"
DRAIN_S = 5   # what SIGTERM may take (README, Deployment)


def _venv_tool(name):
    path = VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test-deps (it installs the manifest checkers)")
    return str(path)


def _venv_json(code, path):
    """Runs `code` in the checkers' venv with the file's path as argv[1]; it prints JSON."""
    r = subprocess.run([_venv_tool("python"), "-c", code, str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"could not parse {path}:\n{r.stderr}"
    return json.loads(r.stdout)


def load_yaml(path):
    return _venv_json("import json, sys, yaml\n"
                      "print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", path)


def load_hcl(path):
    return _venv_json(
        "import json, sys, hcl2\n"
        "from hcl2.utils import SerializationOptions as O\n"
        "o = O(with_comments=False, explicit_blocks=False, strip_string_quotes=True)\n"
        "print(json.dumps(hcl2.load(open(sys.argv[1]), serialization_options=o)))", path)


def kubernetes_validate(path):
    return subprocess.run([_venv_tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
                          capture_output=True, text=True, timeout=120)


def binary_env_vars():
    """The variables the binary reads, from its --help table, plus HOSTNAME
    (SHARD_ID=ordinal reads it; --help says so below the table)."""
    r = run_bin(["--help"])
    assert r.returncode == 0, r.stderr
    names = set(re.findall(r"^  --[a-z-]+(?:\[=BOOL\]| \S+)\s+([A-Z][A-Z0-9_]*)\s+default ",
                           r.stdout, re.M))
    assert {"SHARD_ID", "TOTAL_SHARDS", "DATA_DIR", "SERVICE_PORT"} <= names, r.stdout
    assert "HOSTNAME" in r.stdout
    return names | {"HOSTNAME"}


def dockerfile():
    text = DOCKERFILE.read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.M)
    data_dir = re.search(r"^ENV DATA_DIR=(\S+)$", text, re.M)
    port = re.search(r"^EXPOSE (\d+)$", text, re.M)
    assert user and data_dir and port, "Dockerfile: USER uid:gid, ENV DATA_DIR= and EXPOSE expected"
    return {"uid": int(user[1]), "gid": int(user[2]), "data_dir": data_dir[1], "port": int(port[1])}


def check_config(env):
    r = run_bin(["check-config"], env=env)
    assert r.returncode == 0, (env, r.stderr)
    return dict(kv.split("=", 1) for kv in r.stdout.split(": ", 1)[1].split())


def wait_healthy(srv, path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        r = srv.get(path)
        if r.status == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


# --------------------------------------------------------------------------- #
# Kubernetes
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def k8s():
    docs = load_yaml(K8S)
    by_kind = {}
    for d in docs:
        assert d["kind"] not in by_kind, f"one {d['kind']} expected"
        by_kind[d["kind"]] = d
    assert set(by_kind) == {"Service", "StatefulSet"}, list(by_kind)
    sts = by_kind["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    c = pod["containers"][0]
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    return {"svc": by_kind["Service"], "sts": sts, "pod": pod, "c": c, "env": env}


def test_k8s_manifest_passes_the_schema_check():
    r = kubernetes_validate(K8S)
    assert r.returncode == 0, r.stdout + r.stderr


def test_k8s_schema_check_catches_a_broken_manifest(tmp_path):
    # The validator runs strict: a misspelt field fails, so the check above means something.
    text = K8S.read_text()
    assert "\n  replicas: " in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("\n  replicas: ", "\n  replica: ", 1))
    r = kubernetes_validate(bad)
    assert r.returncode != 0 and "replica" in r.stdout + r.stderr, r.stdout + r.stderr


def test_k8s_statefulset_shape(k8s):
    sts, svc, pod, c, env = k8s["sts"], k8s["svc"], k8s["pod"], k8s["c"], k8s["env"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    # A headless Service governs the StatefulSet and selects its pods.
    assert svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    for sel in (sts["spec"]["selector"]["matchLabels"], svc["spec"]["selector"]):
        assert sel.items() <= labels.items(), (sel, labels)
    # The shard comes from the pod's name; every shard of the set is counted.
    assert env["SHARD_ID"] == "ordinal"
    assert int(env["TOTAL_SHARDS"]) == sts["spec"]["replicas"]
    # One volume claim per pod, mounted where the state goes.
    claims = sts["spec"]["volumeClaimTemplates"]
    assert len(claims) == 1
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts[claims[0]["metadata"]["name"]] == env["DATA_DIR"]
    # Readiness and liveness on /health, on the container's port.
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/health", (probe, get)
        assert get["port"] in port_names or get["port"] in port_names.values(), (probe, get)
    # The Service reaches that port too.
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in port_names or p["targetPort"] in port_names.values(), p
    # SIGTERM drains for up to 5 s: the grace period must be longer.
    assert pod["terminationGracePeriodSeconds"] > DRAIN_S
    assert c["resources"]["requests"].keys() >= {"cpu", "memory"}


def test_k8s_matches_the_dockerfile(k8s):
    d, pod, c, env = dockerfile(), k8s["pod"], k8s["c"], k8s["env"]
    sc = pod["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (d["uid"], d["gid"])
    assert sc["runAsNonRoot"] is True and sc["fsGroup"] == d["gid"]
    assert env["DATA_DIR"] == d["data_dir"]
    assert [p["containerPort"] for p in c["ports"]] == [d["port"]]


def test_k8s_env_is_what_the_binary_reads(k8s):
    unknown = set(k8s["env"]) - binary_env_vars()
    assert not unknown, f"the manifest sets variables shardid does not read: {sorted(unknown)}"


def test_k8s_container_port_is_service_port(k8s):
    ports = [p["containerPort"] for p in k8s["c"]["ports"]]
    assert ports == [int(k8s["env"].get("SERVICE_PORT", "7001"))]


def test_k8s_every_pod_resolves_its_shard(k8s, tmp_path):
    sts, env = k8s["sts"], k8s["env"]
    name, replicas = sts["metadata"]["name"], sts["spec"]["replicas"]
    port = k8s["c"]["ports"][0]["containerPort"]
    for i in range(replicas):
        cfg = check_config({**env, "DATA_DIR": str(tmp_path / f"d{i}"), "HOSTNAME": f"{name}-{i}"})
        assert cfg["shard"] == str(i + 1) and cfg["shard_from"] == f"ordinal({name}-{i})", cfg
        assert cfg["total_shards"] == str(replicas) and cfg["port"] == str(port), cfg
    # One pod more than the set has is refused, naming the host name.
    r = run_bin(["check-config"], env={**env, "DATA_DIR": str(tmp_path / "dx"),
                                       "HOSTNAME": f"{name}-{replicas}"})
    assert r.returncode == 2 and f"'{name}-{replicas}'" in r.stderr, r.stderr


def test_k8s_probe_paths_answer_200(k8s, servers):
    name = k8s["sts"]["metadata"]["name"]
    # The manifest's environment; the port and state directory of this test run.
    s = servers(env={**k8s["env"], "SERVICE_PORT": free_port(), "HOSTNAME": f"{name}-0"})
    assert ok(s.get("/shard-info"))["shardId"] == 1
    for probe in ("readinessProbe", "livenessProbe"):
        body = ok(s.get(k8s["c"][probe]["httpGet"]["path"]))
        assert body["status"] == "healthy", body


# --------------------------------------------------------------------------- #
# Nomad
# --------------------------------------------------------------------------- #
# What the checks below know of Nomad's job specification: the attributes and
# blocks each block may hold (a misspelt name is an error, as in Nomad).
NOMAD_KEYS = {
    "job": {"datacenters", "type", "region", "namespace", "priority", "group", "update",
            "constraint", "meta"},
    "group": {"count", "constraint", "network", "ephemeral_disk", "update", "service", "task",
              "restart", "reschedule", "spread", "meta"},
    "task": {"driver", "config", "template", "env", "kill_signal", "kill_timeout", "resources",
             "user", "meta", "restart", "service", "logs"},
    "service": {"provider", "name", "port", "check", "tags"},
    "check": {"type", "path", "interval", "timeout", "name"},
    "network": {"port", "mode"},
    "port": {"static", "to", "host_network"},
    "template": {"destination", "env", "data", "change_mode", "perms"},
    "resources": {"cpu", "memory", "memory_max", "cores"},
    "update": {"max_parallel", "min_healthy_time", "healthy_deadline", "progress_deadline",
               "health_check", "auto_revert", "canary", "stagger"},
    "ephemeral_disk": {"sticky", "migrate", "size"},
    "constraint": {"attribute", "operator", "value"},
    "config": {"image", "network_mode", "ports", "args", "command"},
}


def _one(blocks, what):
    assert isinstance(blocks, list) and len(blocks) == 1, f"one {what} block expected: {blocks}"
    return blocks[0]


def _labelled(blocks, what):
    """A labelled block such as job "x" { ... }: (label, body)."""
    b = _one(blocks, what)
    assert isinstance(b, dict) and len(b) == 1, b
    return next(iter(b.items()))


def _keys_known(kind, body):
    unknown = set(body) - NOMAD_KEYS[kind]
    assert not unknown, f"{kind} block: unknown attributes or blocks {sorted(unknown)}"


@pytest.fixture(scope="module")
def nomad():
    doc = load_hcl(NOMAD)
    assert set(doc) == {"job"}, list(doc)
    job_name, job = _labelled(doc["job"], "job")
    group_name, group = _labelled(job["group"], "group")
    task_name, task = _labelled(group["task"], "task")
    return {"job": job, "group": group, "task": task, "env": _one(task["env"], "env")}


def test_nomad_job_parses_and_uses_known_names(nomad):
    job, group, task = nomad["job"], nomad["group"], nomad["task"]
    _keys_known("job", job)
    _keys_known("group", group)
    _keys_known("task", task)
    for kind in ("network", "ephemeral_disk", "update", "service", "constraint"):
        for b in group.get(kind, []):
            _keys_known(kind, b)
    for b in _one(group["network"], "network")["port"]:
        for body in b.values():
            _keys_known("port", body)
    for s in group.get("service", []):
        for chk in s.get("check", []):
            _keys_known("check", chk)
    for kind in ("config", "template", "resources"):
        for b in task.get(kind, []):
            _keys_known(kind, b)
    assert job["type"] == "service"


def test_nomad_parser_catches_a_broken_job(tmp_path):
    text = NOMAD.read_text()
    count = re.search(r"\n\s*count\s*=\s*\d+", text)
    assert count, "count = N expected in the group"
    bad = tmp_path / "bad.nomad.hcl"
    bad.write_text(text.replace(count[0], count[0].split("=")[0] + "=", 1))
    r = subprocess.run([_venv_tool("python"), "-c", "import hcl2, sys; hcl2.load(open(sys.argv[1]))",
                        str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout


def test_nomad_job_shape(nomad):
    group, task, env = nomad["group"], nomad["task"], nomad["env"]
    count = group["count"]
    assert int(env["TOTAL_SHARDS"]) == count
    assert env["SHARD_ID"] == "auto"      # each allocation claims a free shard through Consul
    assert "template" not in task
    assert task["driver"] == "docker"
    assert task["kill_signal"] == "SIGTERM"
    m = re.fullmatch(r"(\d+)s", task["kill_timeout"])
    assert m and int(m[1]) > DRAIN_S, task["kill_timeout"]
    assert env["CONSUL_URL"].startswith("http://127.0.0.1:"), "the node's local Consul agent"
    # The health check runs on the port shardid listens on, at /health.
    ports = {label for b in _one(group["network"], "network")["port"] for label in b}
    svc = _one(group["service"], "service")
    assert svc["port"] in ports
    chk = _one(svc["check"], "check")
    assert (chk["type"], chk["path"]) == ("http", "/health")
    assert env["SERVICE_PORT"] == "${NOMAD_PORT_%s}" % svc["port"]
    assert task["resources"] and _one(task["resources"], "resources")["memory"] > 0


def test_nomad_env_is_what_the_binary_reads(nomad):
    unknown = set(nomad["env"]) - binary_env_vars()
    assert not unknown, f"the job sets variables shardid does not read: {sorted(unknown)}"


def _nomad_env(nomad, port, alloc_dir, consul_url=None):
    """The task's environment as Nomad would give it to an allocation:
    interpolations resolved (an unknown one fails)."""
    labels = {label for b in _one(nomad["group"]["network"], "network")["port"] for label in b}
    known = {"NOMAD_ALLOC_DIR": str(alloc_dir)}
    for label in labels:
        known[f"NOMAD_PORT_{label}"] = str(port)
        known[f"NOMAD_IP_{label}"] = "127.0.0.1"

    def subst(m):
        assert m[1] in known, f"${{{m[1]}}} is not something Nomad sets for this job"
        return known[m[1]]
    env = {k: re.sub(r"\$\{([^}]*)\}", subst, v) for k, v in nomad["env"].items()}
    if consul_url:
        env["CONSUL_URL"] = consul_url
    return env


def test_nomad_allocation_env_is_accepted(nomad, tmp_path):
    count = nomad["group"]["count"]
    port = free_port()
    cfg = check_config(_nomad_env(nomad, port, tmp_path / "alloc"))
    assert cfg["shard"] == "auto" and cfg["total_shards"] == str(count), cfg
    assert cfg["port"] == str(port) and cfg["container_ip"] == "127.0.0.1", cfg
    assert cfg["consul_url"] == nomad["env"]["CONSUL_URL"], cfg
    assert cfg["data_dir"] == str(tmp_path / "alloc" / "data"), cfg


@pytest.mark.timeout(60)
def test_nomad_allocations_claim_every_shard_and_pass_the_check(nomad, agent, servers):
    """`count` allocations with the job's environment against one Consul
    agent: each claims a different shard, and the check path answers 200."""
    count = nomad["group"]["count"]
    path = _one(_one(nomad["group"]["service"], "service")["check"], "check")["path"]
    service = uniq("nomad").replace("-", "")
    claimed = set()
    for _ in range(count):
        env = _nomad_env(nomad, free_port(), "/unused", consul_url=agent.url)
        env.pop("DATA_DIR")        # the test's own state directory
        env["SERVICE_NAME"] = service
        s = servers(env=env)
        r = wait_healthy(s, path)  # 200 once a shard is claimed and its state merged
        assert r.status == 200, (r, s.output())
        claimed.add(ok(s.get("/shard-info"))["shardId"])
    assert claimed == set(range(1, count + 1)), claimed
