"""Operations kit: the FROM scratch premise, the systemd unit, the OpenRC
script, scripts/cluster and the Consul-following nginx recipe (scripts/lb-render).

There is no Docker engine on the development machines, so the image's premise
is proved directly: the binary alone in an empty root directory (chroot, in a
private mount namespace, as uid 65532) serves requests and writes its state.
Tests that need a tool skip with the reason when it is missing: systemd-analyze,
nginx, the Consul agent binary (scripts/consul-build), root for chroot.
"""
import contextlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bbutil import BIN, CONFIG_VARS, REPO, clean_env, free_port, ok

sys.path.insert(0, str(REPO / "tests"))

DOCKERFILE = REPO / "Dockerfile"
UNIT = REPO / "deploy" / "shardid.service"
ENV_EXAMPLE = REPO / "deploy" / "shardid.env.example"
OPENRC = REPO / "deploy" / "openrc" / "shardid"
CLUSTER = REPO / "scripts" / "cluster"
LB_RENDER = REPO / "scripts" / "lb-render"
NGINX_TMPL = REPO / "deploy" / "nginx-upstream.conf.tmpl"


def http_get(host, port, path, timeout=5.0):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, (
            json.loads(body) if body[:1] in (b"{", b"[") else body)
    finally:
        c.close()


def wait_for(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port_block(n):
    """A base such that base+1..base+n are all free loopback ports."""
    for _ in range(200):
        base = free_port() - 1
        if base + n > 65535:
            continue
        socks = []
        try:
            for k in range(1, n + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no block of {n} free ports")


# --------------------------------------------------------------------------- #
# FROM scratch: the Dockerfile, and the binary alone in an empty root
# --------------------------------------------------------------------------- #
def dockerfile_instructions():
    out = []
    for line in DOCKERFILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_scratch_with_the_binary_only():
    ins = dockerfile_instructions()
    words = [w for w, _ in ins]
    assert ins[0] == ("FROM", "scratch")
    assert words.count("FROM") == 1, "single stage: nothing but the binary in the image"
    assert [r for w, r in ins if w in ("COPY", "ADD")] == ["zig-out/bin/shardid /shardid"]
    assert "RUN" not in words  # scratch has no shell
    user = [r for w, r in ins if w == "USER"]
    assert len(user) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[0]), user
    assert ("ENV", "DATA_DIR=/var/lib/shardid") in ins
    vol = [r for w, r in ins if w == "VOLUME"]
    assert vol and "/var/lib/shardid" in vol[0]
    assert ("EXPOSE", "7001") in ins
    assert ("STOPSIGNAL", "SIGTERM") in ins
    assert ("ENTRYPOINT", '["/shardid"]') in ins
    # The build context needs only the binary.
    di = (REPO / ".dockerignore").read_text().split()
    assert "*" in di and "!zig-out/bin/shardid" in di


def _empty_root_cmd(root):
    """argv running /shardid in the empty root `root`, as uid/gid 65532 (root)
    or as the mapped root of a user namespace (non-root), in a private mount
    namespace. None when neither works here."""
    unshare, chroot = shutil.which("unshare"), shutil.which("chroot")
    if not unshare or not chroot:
        return None, "unshare/chroot (util-linux, coreutils) not installed"
    if os.geteuid() == 0:
        return [unshare, "--mount", chroot, "--userspec=65532:65532", str(root), "/shardid"], None
    r = subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True)
    if r.returncode != 0:
        return None, "not root and unprivileged user namespaces are unavailable"
    return [unshare, "--user", "--map-root-user", "--mount", chroot, str(root), "/shardid"], None


class EmptyRoot:
    """A root directory holding only /shardid and an empty /data owned by
    65532, and a way to run the binary in it (see _empty_root_cmd)."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.root.mkdir()
        os.chmod(self.root, 0o755)
        shutil.copy2(BIN, self.root / "shardid")
        os.chmod(self.root / "shardid", 0o755)
        self.data = self.root / "data"
        self.data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(self.data, 65532, 65532)
            # pytest's temporary directories are 0700: let uid 65532 reach the root.
            for p in [tmp_path, *tmp_path.parents]:
                if p == Path("/"):
                    break
                if not p.stat().st_mode & 0o001:
                    os.chmod(p, p.stat().st_mode | 0o001)
        self.argv, why = _empty_root_cmd(self.root)
        if self.argv is None:
            pytest.skip(why)

    def listing(self):
        return sorted(p.name for p in self.root.iterdir())

    @contextlib.contextmanager
    def running(self, env=None):
        """Starts /shardid in the root (DATA_DIR=/data, a free loopback port),
        yields the port once it listens; on exit sends SIGTERM and asserts exit 0."""
        port = free_port()
        env = {"DATA_DIR": "/data", "SERVICE_PORT": str(port), "BIND_ADDR": "127.0.0.1",
               **(env or {})}
        out_path = self.tmp / f"out.{port}"
        with open(out_path, "wb") as log:
            proc = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.output = lambda: out_path.read_text(errors="replace")
        try:
            def up():
                assert proc.poll() is None, f"exited {proc.returncode} at start:\n{self.output()}"
                return port_open(port)
            wait_for(up, 5, "the chrooted server to listen")
            if os.geteuid() == 0:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                assert re.search(r"^Uid:\s+65532\s", status, re.M), status
            yield port
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"no exit within 10 s of SIGTERM:\n{self.output()}")
        assert rc == 0, f"exit {rc} after SIGTERM:\n{self.output()}"


@pytest.mark.timeout(30)
def test_runs_as_only_file_in_empty_root(tmp_path):
    """The FROM scratch premise: no /etc, /proc, /dev or /tmp in the root, only
    /shardid and an empty DATA_DIR owned by 65532; it serves (sequences need the
    journal, uuids need getrandom, snowflakes the clock), writes its journal,
    exits 0 on SIGTERM, and reads its state back on the next start."""
    er = EmptyRoot(tmp_path)
    before = er.listing()
    assert before == ["data", "shardid"]

    def session():
        with er.running() as port:
            st, _, health = http_get("127.0.0.1", port, "/health")
            assert st == 200 and health["status"] == "healthy", (st, health, er.output())
            st, _, a = http_get("127.0.0.1", port, "/api/next-id/order?dataType=int")
            assert st == 200, (a, er.output())
            st, _, u = http_get("127.0.0.1", port, "/api/next-id/token?dataType=uuid22")
            assert st == 200 and len(u["value"]) == 22, u
            st, _, s = http_get("127.0.0.1", port, "/api/next-id/event?dataType=snowflake")
            assert st == 200 and int(s["value"]) > 0, s
            assert http_get("127.0.0.1", port, "/metrics")[0] == 200
        return a["value"]

    first = session()
    assert first == 1
    journal = er.data / "journal"
    assert journal.is_file() and journal.stat().st_size > 0
    if os.geteuid() == 0:
        assert journal.stat().st_uid == 65532
    # Nothing outside DATA_DIR was created.
    assert er.listing() == before
    second = session()
    assert second > first, "state was not read back from /data"


@pytest.mark.timeout(40)
def test_empty_root_registers_in_consul(tmp_path, consul_agent):
    """In the empty root, with CONSUL_URL and no CONTAINER_IP: the Consul client
    needs no /etc files, and the advertised address is found without /proc
    (getifaddrs over netlink). SIGTERM deregisters."""
    er = EmptyRoot(tmp_path)
    service = f"shardid-chroot-{os.getpid()}"
    with er.running({"CONSUL_URL": consul_agent.url, "SERVICE_NAME": service,
                     "SHARD_ID": "2", "TOTAL_SHARDS": "3"}) as port:
        sid = f"{service}-shard-2"
        svc = wait_for(lambda: consul_agent.services().get(sid), 10, f"{sid} registered")
        assert svc["Port"] == port and svc["Tags"] == ["shard-2"], svc
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", svc["Address"]), svc
        st, _, h = http_get("127.0.0.1", port, "/health")
        assert st == 200, (h, er.output())
    assert sid not in consul_agent.services(), "not deregistered on SIGTERM"


# --------------------------------------------------------------------------- #
# systemd
# --------------------------------------------------------------------------- #
def unit_directives(path=UNIT):
    d = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        d.setdefault(k.strip(), []).append(v.strip())
    return d


def test_systemd_unit_has_the_hardening():
    d = unit_directives()
    want = {
        "DynamicUser": "yes", "StateDirectory": "shardid",
        "EnvironmentFile": "-/etc/shardid/shardid.env", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "NoNewPrivileges": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "CapabilityBoundingSet": "", "MemoryMax": "256M", "LimitNOFILE": "65536",
        "Restart": "on-failure", "KillSignal": "SIGTERM", "TimeoutStopSec": "15",
    }
    for k, v in want.items():
        assert d.get(k) == [v], f"{k}: {d.get(k)}"
    assert "DATA_DIR=/var/lib/shardid" in d["Environment"]
    assert "@system-service" in d["SystemCallFilter"]
    assert d["ExecStart"] == ["/usr/local/bin/shardid"]


@pytest.mark.timeout(60)
def test_systemd_analyze_verify(tmp_path):
    sa = shutil.which("systemd-analyze")
    if not sa:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    unit = tmp_path / "shardid.service"
    # verify checks that ExecStart's binary exists: point it at the real build.
    unit.write_text(re.sub(r"^ExecStart=.*$", f"ExecStart={BIN}", UNIT.read_text(), flags=re.M))
    r = subprocess.run([sa, "verify", str(unit)], capture_output=True, text=True, timeout=50,
                       env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    ours = [ln for ln in (r.stdout + r.stderr).splitlines() if "shardid" in ln]
    assert r.returncode == 0 and not ours, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"


def env_example_assignments():
    """(key, value, active) for every KEY=value line, commented out or not."""
    rows = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^(#?)([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            rows.append((m.group(2), m.group(3), not m.group(1)))
    return rows


def test_env_example_names_only_real_variables(servers):
    rows = env_example_assignments()
    keys = {k for k, _, _ in rows}
    help_text = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=5).stdout
    for k in keys:
        assert k in CONFIG_VARS and re.search(rf"\b{k}\b", help_text), f"unknown variable {k}"
    assert {"SHARD_ID", "TOTAL_SHARDS", "CONSUL_URL", "CONTAINER_IP"} <= keys
    # The active lines are a valid configuration (port moved to a free one).
    env = {k: v for k, v, active in rows if active}
    env.pop("SERVICE_PORT", None)
    s = servers(env=env)
    assert ok(s.get("/health"))["status"] == "healthy"


# --------------------------------------------------------------------------- #
# OpenRC
# --------------------------------------------------------------------------- #
def _posix_sh():
    for name in ("busybox", "dash", "sh"):
        p = shutil.which(name)
        if p:
            return [p, "sh"] if name == "busybox" else [p]
    pytest.skip("no POSIX shell")


def test_openrc_script_syntax():
    assert OPENRC.read_text().startswith("#!/sbin/openrc-run\n")
    assert os.access(OPENRC, os.X_OK)
    for sh in {tuple(_posix_sh()), ("sh",)}:
        r = subprocess.run([*sh, "-n", str(OPENRC)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_openrc_script_under_stubbed_openrc_run(tmp_path):
    """Runs the script the way openrc-run does (conf.d first, then the script,
    then depend / start_pre) with the OpenRC helpers stubbed, and checks what
    it would start: the binary, as `shardid`, under a supervisor with a pidfile,
    with the conf.d variables in its environment."""
    conf = tmp_path / "conf.d"
    conf.write_text(ENV_EXAMPLE.read_text() + "SHARD_ID=2\nTOTAL_SHARDS=3\n"
                    "CONSUL_URL=http://10.0.0.5:8500\nSHARDID_LOG=" + str(tmp_path / "log" / "x.log") + "\n")
    calls = tmp_path / "calls"
    harness = f"""
set -u
RC_SVCNAME=shardid
calls={calls}
checkpath() {{ echo "checkpath $*" >> "$calls"; }}
need() {{ echo "need $*" >> "$calls"; }}
use() {{ :; }}
after() {{ :; }}
ebegin() {{ :; }}; eend() {{ :; }}; einfo() {{ :; }}; ewarn() {{ echo "ewarn $*" >> "$calls"; }}
eerror() {{ echo "eerror $*" >> "$calls"; }}
. {conf}
. {OPENRC}
depend
command={BIN}   # start_pre checks that the binary exists
start_pre || exit 9
echo "supervisor=$supervisor"
echo "command_user=$command_user"
echo "pidfile=$pidfile"
echo "command_background=$command_background"
echo "retry=$retry"
echo "nofile=$(ulimit -n)"
env | grep -E '^(SHARD_ID|TOTAL_SHARDS|DATA_DIR|CONSUL_URL|SERVICE_PORT|SHARDID_LOG|command_user)=' | sed 's/^/env:/'
"""
    r = subprocess.run([*_posix_sh(), "-c", harness], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert "supervisor=supervise-daemon" in out
    assert "command_user=shardid:shardid" in out
    assert "pidfile=/run/shardid.pid" in out
    assert "command_background=yes" in out
    assert any(ln.startswith("retry=TERM/") for ln in out)
    envs = {ln[4:] for ln in out if ln.startswith("env:")}
    assert {"SHARD_ID=2", "TOTAL_SHARDS=3", "DATA_DIR=/var/lib/shardid",
            "CONSUL_URL=http://10.0.0.5:8500", "SERVICE_PORT=7001"} <= envs, envs
    assert not any(e.startswith(("SHARDID_LOG=", "command_user=")) for e in envs), envs
    c = calls.read_text()
    assert "need net" in c
    assert "checkpath --directory --owner shardid:shardid --mode 0700 /var/lib/shardid" in c
    assert "eerror" not in c


# --------------------------------------------------------------------------- #
# Consul helpers
# --------------------------------------------------------------------------- #
def consul_binary():
    """Path of a built Consul agent, else None (scripts/consul-build makes one;
    tests do not start a ~10 minute build)."""
    for p in (os.environ.get("CONSUL_BIN"), str(REPO / ".tools" / "consul" / "consul"),
              shutil.which("consul")):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def passing(consul_url, service):
    try:
        with urllib.request.urlopen(
                f"{consul_url}/v1/health/service/{service}?passing", timeout=3) as r:
            return json.loads(r.read())
    except OSError:
        return None


def passing_ports(consul_url, service):
    return sorted(e["Service"]["Port"] for e in passing(consul_url, service) or [])


# --------------------------------------------------------------------------- #
# scripts/cluster
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(120)
def test_cluster_up_status_down(tmp_path):
    consul = consul_binary()
    if not consul:
        pytest.skip("no Consul agent binary: run scripts/consul-build")
    base = free_port_block(3)
    cport = free_port()
    env = clean_env({"CLUSTER_DIR": tmp_path / "cluster", "CLUSTER_BASE_PORT": base,
                     "CLUSTER_CONSUL_PORT": cport, "CLUSTER_WAIT": 40,
                     "SHARDID_BIN": BIN, "CONSUL_BIN": consul})

    def cluster(*args, timeout=90):
        return subprocess.run([str(CLUSTER), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    pids = []
    try:
        r = cluster("up", "3")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "3 of 3 shards passing" in r.stderr, r.stderr
        piddir = tmp_path / "cluster" / "pids"
        pids = [int((piddir / f"{n}.pid").read_text()) for n in
                ("shard-1", "shard-2", "shard-3", "consul")]
        for k in (1, 2, 3):
            st, _, info = http_get("127.0.0.1", base + k, "/shard-info")
            assert (st, info) == (200, {"shardId": k, "totalShards": 3, "status": "active"})
            st, _, v = http_get("127.0.0.1", base + k, "/api/next-id/order?dataType=int")
            assert st == 200 and v["value"] == k and v["shard"] == k
            assert (tmp_path / "cluster" / f"shard-{k}" / "journal").is_file()
            assert (tmp_path / "cluster" / "logs" / f"shard-{k}.log").is_file()
        assert passing_ports(f"http://127.0.0.1:{cport}", "shardid") == [base + 1, base + 2, base + 3]

        r = cluster("status")
        assert r.returncode == 0, r.stdout + r.stderr
        for k in (1, 2, 3):
            assert re.search(rf"^shard-{k} .*127\.0\.0\.1:{base + k} .*\"healthy\"", r.stdout, re.M), r.stdout
            assert re.search(rf"shardid-shard-{k} +127\.0\.0\.1:{base + k} .*tags=shard-{k} .*checks=passing",
                             r.stdout), r.stdout
        assert "passing: 3 of 3 registered" in r.stdout

        r = cluster("up", "3")
        assert r.returncode != 0 and "already up" in r.stderr

        r = cluster("down")
        assert r.returncode == 0, r.stdout + r.stderr
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or \
                "zombie" in Path(f"/proc/{pid}/status").read_text(), pid
        for port in (base + 1, base + 2, base + 3, cport):
            assert not port_open(port), port
        r = cluster("status")
        assert r.returncode != 0 and "not up" in r.stdout
        # State survives down/up: the sequence continues above what was handed out.
        r = cluster("up", "3")
        assert r.returncode == 0, r.stdout + r.stderr
        st, _, v = http_get("127.0.0.1", base + 2, "/api/next-id/order?dataType=int")
        assert st == 200 and v["value"] > 2 and (v["value"] - 2) % 3 == 0
    finally:
        cluster("down", "--purge", timeout=60)
        for pid in pids:  # only if `down` itself failed
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert not (tmp_path / "cluster").exists()


def test_cluster_usage_errors(tmp_path):
    env = clean_env({"CLUSTER_DIR": tmp_path / "c"})
    r = subprocess.run([str(CLUSTER), "up", "0"], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "1..1024" in r.stderr
    r = subprocess.run([str(CLUSTER), "frobnicate"], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "unknown command" in r.stderr
    r = subprocess.run([str(CLUSTER), "status"], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 3 and "not up" in r.stdout
    r = subprocess.run([str(CLUSTER), "down"], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0


# --------------------------------------------------------------------------- #
# scripts/lb-render against a stub Consul (no agent needed)
# --------------------------------------------------------------------------- #
def consul_entry(k, port, addr="127.0.0.1", service="shardid"):
    return {"Node": {"Node": "n1", "Address": "10.9.9.9"},
            "Service": {"ID": f"{service}-shard-{k}", "Service": service, "Tags": [f"shard-{k}"],
                        "Address": addr, "Port": port,
                        "Meta": {"shard_id": str(k), "total_shards": "3", "version": "x"}},
            "Checks": [{"Status": "passing"}]}


class StubConsul:
    """Answers /v1/health/service/<name>?passing with self.entries."""

    def __init__(self):
        self.entries = []
        self.requests = []
        stub = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stub.requests.append((self.path, self.headers.get("X-Consul-Token")))
                body = json.dumps(stub.entries).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Consul-Index", "7")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub_consul():
    s = StubConsul()
    yield s
    s.close()


def lb_render(*args, env=None, timeout=20):
    return subprocess.run([sys.executable, str(LB_RENDER), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def server_lines(text):
    return [ln.split("#")[0].strip() for ln in text.splitlines() if ln.strip().startswith("server ")]


def test_lb_render_against_stub(tmp_path, stub_consul):
    out = tmp_path / "up.conf"
    stub_consul.entries = [consul_entry(3, 7103), consul_entry(1, 7101), consul_entry(2, 7102)]
    r = lb_render("--consul", stub_consul.url, "--out", str(out),
                  env={"CONSUL_HTTP_TOKEN": "tok-1"})
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "upstream shardid {" in text
    assert server_lines(text) == [f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                                  for p in (7101, 7102, 7103)]
    path, token = stub_consul.requests[-1]
    assert path.startswith("/v1/health/service/shardid?") and "passing" in path
    assert token == "tok-1"

    # Same instances: file untouched (nginx need not reload), reload not run.
    mtime = out.stat().st_mtime_ns
    marker = tmp_path / "reloaded"
    r = lb_render("--consul", stub_consul.url, "--out", str(out), "--reload", f"touch {marker}")
    assert r.returncode == 0 and "unchanged" in r.stderr
    assert out.stat().st_mtime_ns == mtime and not marker.exists()

    # One gone: rewritten, reload run.
    stub_consul.entries = [e for e in stub_consul.entries if e["Service"]["Port"] != 7102]
    r = lb_render("--consul", stub_consul.url, "--out", str(out), "--reload", f"touch {marker}")
    assert r.returncode == 0 and marker.exists()
    assert [ln.split()[1] for ln in server_lines(out.read_text())] == ["127.0.0.1:7101",
                                                                       "127.0.0.1:7103"]

    # None passing: still a loadable upstream (one server marked down).
    stub_consul.entries = []
    r = lb_render("--consul", stub_consul.url, "--out", str(out), "--upstream", "ids")
    assert r.returncode == 0
    text = out.read_text()
    assert "upstream ids {" in text and server_lines(text) == ["server 127.0.0.1:9 down;"]

    # Consul unreachable: exit 1 and the file stays as it was.
    before = out.read_text()
    r = lb_render("--consul", f"http://127.0.0.1:{free_port()}", "--out", str(out))
    assert r.returncode == 1 and out.read_text() == before


def test_lb_render_output_is_valid_nginx(tmp_path, stub_consul):
    nginx = shutil.which("nginx")
    if not nginx:
        pytest.skip("nginx not installed (apt-get install nginx)")
    stub_consul.entries = [consul_entry(1, 7101), consul_entry(2, 7102, addr="::1")]
    for entries in (stub_consul.entries, []):
        stub_consul.entries = entries
        r = lb_render("--consul", stub_consul.url, "--out", str(tmp_path / "up.conf"))
        assert r.returncode == 0, r.stderr
        conf = write_nginx_conf(tmp_path, free_port(), "shardid")
        t = subprocess.run([nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(conf),
                            "-e", str(tmp_path / "error.log")],
                           capture_output=True, text=True, timeout=10)
        assert t.returncode == 0, t.stderr + (tmp_path / "up.conf").read_text()


# --------------------------------------------------------------------------- #
# nginx following Consul, end to end
# --------------------------------------------------------------------------- #
def write_nginx_conf(d, port, upstream):
    d = Path(d)
    (d / "tmp").mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/up.conf;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/api/(init|reset|entity)/ {{ return 403; }}
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_503;
            proxy_max_temp_file_size 0;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
""")
    return conf


class Nginx:
    def __init__(self, d, port, upstream):
        self.bin = shutil.which("nginx")
        self.d = Path(d)
        self.port = port
        self.conf = write_nginx_conf(d, port, upstream)
        self.base = [self.bin, "-p", str(self.d), "-c", str(self.conf), "-e", str(self.d / "error.log")]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([*self.base, "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10, "nginx to listen")
        assert self.proc.poll() is None, self.proc.stderr.read().decode()

    def workers(self):
        """pids of the master's children (the worker processes)."""
        kids = set()
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                kids.add(int(p.name))
        return kids

    def wait_reloaded(self, old_workers, timeout=20):
        """A reload is asynchronous: the master starts new workers, then the old
        ones finish their connections and exit. Until then an old worker may
        still accept a request with the old upstream list."""
        wait_for(lambda: self.workers() and not (self.workers() & old_workers), timeout,
                 "nginx's old workers to exit after the reload")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def consul_agent():
    try:
        from consul_agent import ConsulAgent
    except ImportError:
        pytest.skip("tests/consul_agent.py (ConsulAgent) not available")
    if not consul_binary():
        pytest.skip("no Consul agent binary: run scripts/consul-build")
    agent = ConsulAgent(binary=consul_binary())
    agent.start()
    yield agent
    agent.stop()


def through_lb(port, n, entity):
    """n next-id requests through nginx -> [(shard, value, upstream_addr)]."""
    got = []
    for _ in range(n):
        st, h, body = http_get("127.0.0.1", port, f"/api/next-id/{entity}?dataType=int")
        assert st == 200, (st, h, body)
        got.append((body["shard"], body["value"], h.get("x-upstream", "")))
    return got


@pytest.mark.timeout(120)
def test_nginx_follows_consul(tmp_path, servers, consul_agent):
    if not shutil.which("nginx"):
        pytest.skip("nginx not installed (apt-get install nginx)")
    service = f"shardid-lb-{os.getpid()}"
    shards = {k: servers(env={"SHARD_ID": k, "TOTAL_SHARDS": 3, "CONSUL_URL": consul_agent.url,
                              "CONTAINER_IP": "127.0.0.1", "SERVICE_NAME": service})
              for k in (1, 2, 3)}
    ports = sorted(s.port for s in shards.values())
    # Consul runs each HTTP check within its Interval (10 s) of registration.
    wait_for(lambda: passing_ports(consul_agent.url, service) == ports, 40,
             f"3 passing instances of {service} in Consul")
    for k, s in shards.items():
        e = next(e for e in passing(consul_agent.url, service) if e["Service"]["Port"] == s.port)
        assert e["Service"]["ID"] == f"{service}-shard-{k}"
        assert e["Service"]["Tags"] == [f"shard-{k}"]
        assert e["Service"]["Address"] == "127.0.0.1"

    up = tmp_path / "up.conf"
    render = ["--consul", consul_agent.url, "--service", service, "--upstream", "ids",
              "--out", str(up)]
    r = lb_render(*render)
    assert r.returncode == 0, r.stderr
    assert sorted(int(ln.split()[1].split(":")[1].rstrip(";")) for ln in server_lines(up.read_text())) == ports

    lb = Nginx(tmp_path, free_port(), "ids")
    lb.start()
    try:
        got = through_lb(lb.port, 30, "lb-order")
        assert {g[0] for g in got} == {1, 2, 3}, got
        values = [g[1] for g in got]
        assert len(set(values)) == len(values)
        assert all((v - sh) % 3 == 0 for sh, v, _ in got)
        # Admin routes are closed at the balancer (shardid sees nginx as a loopback client).
        c = http.client.HTTPConnection("127.0.0.1", lb.port, timeout=5)
        c.request("POST", "/api/init/x", body=b'{"dataType":"int"}')
        assert c.getresponse().status == 403
        c.close()

        # Shard 2 stops: it deregisters, the re-render drops it, nginx reloads.
        gone = shards[2].port
        shards[2].stop()
        wait_for(lambda: passing_ports(consul_agent.url, service) == sorted(set(ports) - {gone}), 30,
                 "shard 2 to leave the passing set")
        old_workers = lb.workers()
        assert old_workers
        r = lb_render(*render, "--reload", " ".join(lb.base + ["-s", "reload"]))
        assert r.returncode == 0, r.stderr
        assert f":{gone}" not in "\n".join(server_lines(up.read_text()))
        lb.wait_reloaded(old_workers)
        # Now no request is even tried on the stopped shard (X-Upstream lists
        # every address nginx tried).
        got = through_lb(lb.port, 30, "lb-order")
        assert {g[0] for g in got} == {1, 3}, got
        assert all(f":{gone}" not in g[2] for g in got), got
        assert len({g[1] for g in got} | set(values)) == len(got) + len(values)
    finally:
        lb.stop()


@pytest.mark.timeout(60)
def test_lb_render_watch_follows_consul(tmp_path, servers, consul_agent):
    """--watch: blocking queries on Consul; a shard that stops is dropped from
    the file and the reload command runs."""
    service = f"shardid-watch-{os.getpid()}"
    shards = [servers(env={"SHARD_ID": k, "TOTAL_SHARDS": 2, "CONSUL_URL": consul_agent.url,
                           "CONTAINER_IP": "127.0.0.1", "SERVICE_NAME": service})
              for k in (1, 2)]
    ports = sorted(s.port for s in shards)
    wait_for(lambda: passing_ports(consul_agent.url, service) == ports, 40, "2 passing shards")
    up, reloads = tmp_path / "up.conf", tmp_path / "reloads"
    log = open(tmp_path / "watch.log", "wb")
    w = subprocess.Popen([sys.executable, str(LB_RENDER), "--consul", consul_agent.url,
                          "--service", service, "--out", str(up), "--watch",
                          "--reload", f"echo x >> {reloads}"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()

    def rendered_ports():
        try:
            return sorted(int(ln.split()[1].rsplit(":", 1)[1]) for ln in server_lines(up.read_text()))
        except (FileNotFoundError, ValueError, IndexError):
            return None
    try:
        wait_for(lambda: rendered_ports() == ports, 10, "the first render")
        shards[1].stop()
        wait_for(lambda: rendered_ports() == [shards[0].port], 20, "the re-render without shard 2")
        wait_for(lambda: reloads.exists() and len(reloads.read_text().split()) == 2, 5,
                 "two reloads (first render, change)")
        assert w.poll() is None, (tmp_path / "watch.log").read_text()
    finally:
        w.terminate()
        w.wait(5)
