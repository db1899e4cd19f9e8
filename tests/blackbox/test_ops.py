"""Operations kit: the Dockerfile, the systemd unit, the OpenRC script,
scripts/cluster and the Consul-following nginx recipe (scripts/lb-render).

The deployment files are checked by what they make happen, not line by line.
There is no Docker engine on the development machines, so the image the
Dockerfile describes is built and run by hand (chroot, PID and network
namespaces, the declared user, environment, port, volume and stop signal),
and the binary alone in an empty root directory serves requests and writes
its state. The systemd unit: systemd-analyze verify; its install steps put
things where it looks; the environment, limits and stop settings it gives
the service work; and strace shows the service stays inside its sandbox.
Tests that need a tool skip with the reason when it is missing:
systemd-analyze, strace, nginx, iproute2, the Consul agent binary
(scripts/consul-build), root for chroot and namespaces.
"""
import contextlib
import http.client
import http.server
import json
import os
import posixpath
import random
import re
import resource
import shlex
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

from bbutil import BIN, CONFIG_VARS, NETNS_ADDR, REPO, NetNS, clean_env, free_port, ok

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
    """A base such that base+1..base+n are all free loopback ports. Looked
    for below the kernel's ephemeral range (32768 and up), where the suite's
    own client connections leave ports in TIME_WAIT that a plain bind()
    refuses: a run of 4 there was not found in 200 tries on a loaded CI
    machine."""
    rnd = random.Random()
    for _ in range(200):
        base = rnd.randrange(10000, 30000)
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
def dockerfile_logical_lines(text):
    """The instructions as docker build reads them: comment lines dropped,
    backslash continuations joined -> [(INSTRUCTION, rest)]."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not cur):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def _exec_form(rest):
    """ENTRYPOINT/CMD: the exec form (JSON array) as is; the shell form runs
    through /bin/sh, as docker does (and scratch has no /bin/sh)."""
    if rest.startswith("["):
        return json.loads(rest)
    return ["/bin/sh", "-c", rest]


class DockerImage:
    """The image the Dockerfile describes, read the way docker build reads it,
    for the instructions this emulation implements (any other fails)."""

    DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def __init__(self, path=DOCKERFILE):
        self.froms, self.copies, self.dirs, self.volumes, self.ports = [], [], [], [], []
        self.env = {"PATH": self.DEFAULT_PATH}
        self.user, self.workdir, self.stopsignal = "0:0", "/", "SIGTERM"
        self.entrypoint, self.cmd = [], []
        for word, rest in dockerfile_logical_lines(path.read_text()):
            if word == "FROM":
                self.froms.append(rest)
            elif word == "COPY":
                args = shlex.split(rest)
                flags = [a for a in args if a.startswith("--")]
                assert not flags, f"COPY {flags}: not emulated here"
                *srcs, dest = args
                self.copies += [(s, dest) for s in srcs]
            elif word == "USER":
                self.user = rest
            elif word == "WORKDIR":
                self.workdir = posixpath.join(self.workdir, rest)
                # BuildKit creates a missing WORKDIR owned by the USER of that point.
                self.dirs.append((self.workdir, self.user))
            elif word == "ENV":
                if "=" in rest.split()[0]:
                    for a in shlex.split(rest):
                        k, _, v = a.partition("=")
                        self.env[k] = v
                else:
                    k, _, v = rest.partition(" ")
                    self.env[k] = v.strip()
            elif word == "VOLUME":
                vols = json.loads(rest) if rest.startswith("[") else rest.split()
                self.volumes += vols
                self.dirs += [(v, "0:0") for v in vols]
            elif word == "EXPOSE":
                self.ports += [int(p.split("/")[0]) for p in rest.split()]
            elif word == "STOPSIGNAL":
                self.stopsignal = rest
            elif word == "ENTRYPOINT":
                self.entrypoint, self.cmd = _exec_form(rest), []   # ENTRYPOINT resets CMD
            elif word == "CMD":
                self.cmd = _exec_form(rest)
            else:
                raise AssertionError(f"Dockerfile instruction {word} is not emulated by this test")

    @property
    def argv(self):
        return self.entrypoint + self.cmd

    def ids(self):
        """USER as numbers: with no /etc/passwd in a scratch image docker run
        cannot resolve a name."""
        uid, _, gid = self.user.partition(":")
        assert uid.isdigit() and (not gid or gid.isdigit()), f"USER {self.user} is not numeric"
        return int(uid), int(gid or 0)

    def build(self, root):
        """The image's file system in `root`: what COPY puts in (mode kept,
        owned by root), the WORKDIR and VOLUME directories, nothing else."""
        root.mkdir(mode=0o755)
        for src, dest in self.copies:
            target = root / dest.lstrip("/")
            if dest.endswith("/"):
                target = target / Path(src).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / src, target)
        for d, owner in self.dirs:
            p = root / d.lstrip("/")
            if not p.exists():
                p.mkdir(parents=True)
                uid, _, gid = owner.partition(":")
                os.chown(p, int(uid), int(gid or 0))
        return root

    def outside_volumes(self, root):
        """{path: (mode, uid)} of everything in root outside the volumes."""
        vols = [root / v.lstrip("/") for v in self.volumes]
        out = {}
        for p in root.rglob("*"):
            if not any(p == v or v in p.parents for v in vols):
                st = p.lstat()
                out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_size)
        return out

    def carry_volumes(self, old_root, new_root):
        """A new container on the same (named) volumes."""
        for v in self.volumes:
            dst = new_root / v.lstrip("/")
            shutil.rmtree(dst)
            subprocess.run(["cp", "-a", str(old_root / v.lstrip("/")), str(dst)], check=True)

    @contextlib.contextmanager
    def running(self, root, log, host, port):
        """Runs the image the way docker run does: ENTRYPOINT + CMD as PID 1
        of a new PID namespace, chrooted to root, in WORKDIR, as USER, with
        exactly the image's environment (and the HOSTNAME docker adds).
        Waits until the container listens on `port` (from `host`) and yields
        the host pid of its PID 1. On exit sends STOPSIGNAL and asserts exit
        0 within docker stop's grace period."""
        uid, gid = self.ids()
        launch = ("import os, sys\n"
                  "root, cwd, uid, gid, *argv = sys.argv[1:]\n"
                  "os.chroot(root)\n"
                  "os.chdir(cwd)\n"
                  "os.setgroups([])\n"
                  "os.setgid(int(gid))\n"
                  "os.setuid(int(uid))\n"
                  "os.execvp(argv[0], argv)\n")
        env = {**self.env, "HOSTNAME": "c0ffee"}
        with open(log, "ab") as out:
            proc = subprocess.Popen([shutil.which("unshare"), "--pid", "--kill-child",
                                     sys.executable, "-c", launch, str(root), self.workdir,
                                     str(uid), str(gid), *self.argv],
                                    env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        try:
            def listening():
                assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
                return port_open(port, host)
            wait_for(listening, 5, f"the container to listen on {host}:{port}")
            (pid,) = children(proc.pid)
            yield pid
            if proc.poll() is None:
                os.kill(pid, signal.Signals[self.stopsignal])
            try:
                rc = proc.wait(DOCKER_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"not stopped {DOCKER_STOP_GRACE_S} s after "
                                     f"{self.stopsignal}:\n{log.read_text()}")
            assert rc == 0, f"exit {rc} after {self.stopsignal}:\n{log.read_text()}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


DOCKER_STOP_GRACE_S = 10   # docker stop's default before SIGKILL


def _status(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def children(pid):
    """pids whose parent is pid."""
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(p.name))
    return sorted(kids)


def dockerignore_sends(rel, patterns):
    """Whether docker build sends `rel` (a path in the context): the last
    .dockerignore pattern matching it or one of its parent directories
    decides; a leading ! re-includes. (* and ? stop at /, ** does not.)"""
    def rx(p):
        out, i = "", 0
        while i < len(p):
            if p.startswith("**", i):
                out, i = out + ".*", i + 2
            elif p[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif p[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(p[i]), i + 1
        return re.compile(out + r"\Z")
    parts = rel.split("/")
    sent = True
    for pat in patterns:
        neg = pat.startswith("!")
        r = rx(posixpath.normpath(pat[1:] if neg else pat).strip("/"))
        if any(r.match("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            sent = neg
    return sent


def test_docker_context_sends_what_copy_needs_and_nothing_else():
    """docker build sends the directory minus .dockerignore, and a COPY of a
    file it did not send fails the build: every COPY source must be sent (and
    be there after `make`), and nothing else of the repository or its build
    output, so the context stays one file."""
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    sources = {posixpath.normpath(src) for src, _ in DockerImage().copies}
    assert sources
    for src in sources:
        assert (REPO / src).is_file(), f"COPY {src}: not there (run make)"
        assert dockerignore_sends(src, patterns), f"COPY {src}: left out by .dockerignore"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    built = [str(p.relative_to(REPO)) for d in ("zig-out", "build") if (REPO / d).is_dir()
             for p in (REPO / d).rglob("*") if p.is_file()]
    top = [p.name for p in REPO.iterdir()]
    sent = {f for f in [*tracked, *built, *top] if dockerignore_sends(f, patterns)}
    assert sent == sources, f"the context also sends {sorted(sent - sources)[:20]}"


@pytest.mark.timeout(60)
def test_image_runs_as_its_dockerfile_declares(tmp_path):
    """No Docker engine here, so the image is built and run by hand from what
    the Dockerfile says: a FROM scratch file system holding what COPY puts
    in, run as `docker run` would (see DockerImage.running) in a network
    namespace of its own. It must serve on the EXPOSEd port on a non-loopback
    address, as USER; keep its state in a VOLUME (a new container on the same
    volume continues the sequence) and write nothing outside the volumes; and
    exit 0 on STOPSIGNAL within docker stop's grace, a client still connected."""
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot, setuid and a network namespace")
    why = NetNS.unavailable_reason() or (not shutil.which("unshare") and "no unshare (util-linux)")
    if why:
        pytest.skip(why)
    img = DockerImage()
    assert img.froms == ["scratch"], "this emulation builds FROM scratch images only"
    assert img.ports and img.volumes and img.argv, (img.ports, img.volumes, img.argv)
    uid, gid = img.ids()
    port = img.ports[0]
    log = tmp_path / "container.log"
    ns = NetNS()
    try:
        ns.create()
        with ns.enter():
            first = img.build(tmp_path / "c1")
            before = img.outside_volumes(first)
            with img.running(first, log, NETNS_ADDR, port) as pid:
                status = _status(pid)
                assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s", status, re.M), status
                assert re.search(rf"^Gid:\s+{gid}\s+{gid}\s", status, re.M), status
                assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.M), status
                st, _, h = http_get(NETNS_ADDR, port, "/health")
                assert st == 200 and h["status"] == "healthy", (st, h, log.read_text())
                st, _, a = http_get(NETNS_ADDR, port, "/api/next-id/order?dataType=int")
                assert st == 200, (a, log.read_text())
                idle = socket.create_connection((NETNS_ADDR, port), timeout=5)
            idle.close()
            assert img.outside_volumes(first) == before, "wrote outside its volumes"
            second = img.build(tmp_path / "c2")
            img.carry_volumes(first, second)
            with img.running(second, log, NETNS_ADDR, port):
                st, _, b = http_get(NETNS_ADDR, port, "/api/next-id/order?dataType=int")
                assert st == 200 and b["value"] > a["value"], (a, b, log.read_text())
    finally:
        ns.delete()


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


def install_steps(text):
    """{source: destination} of the `install [-m MODE] SRC DEST` lines in text."""
    steps = {}
    for m in re.finditer(r"^[#\s]*install\s+(?:-m\s+\d+\s+)?(\S+)\s+(\S+)", text, re.M):
        if not m.group(1).startswith("-"):
            steps[m.group(1)] = m.group(2)
    return steps


def readme_section(title):
    text = (REPO / "README.md").read_text()
    m = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", text, re.M | re.S)
    assert m, f"README has no section '### {title}'"
    return m.group(1)


def test_systemd_unit_runs_what_its_install_steps_install():
    """The install steps (the unit's header and README's systemd section, the
    same steps) put the binary, the unit and the environment file where the
    unit and systemctl look for them."""
    steps = install_steps(UNIT.read_text())
    readme = readme_section("systemd")
    assert steps and install_steps(readme) == steps
    d = unit_directives()
    (exec_start,) = d["ExecStart"]
    assert shlex.split(exec_start)[0].lstrip("-@:+!") == steps["zig-out/bin/shardid"]
    (env_file,) = d["EnvironmentFile"]
    assert env_file.lstrip("-") == steps["deploy/shardid.env.example"]
    unit_dest = steps["deploy/shardid.service"]
    assert posixpath.dirname(unit_dest) == "/etc/systemd/system", unit_dest
    enabled = re.search(r"systemctl enable (?:--now )?(\S+)", readme).group(1)
    assert f"{enabled}.service" == posixpath.basename(unit_dest)


def systemd_environment(d, env_file_text):
    """The service's environment as systemd builds it: Environment= lines,
    then the EnvironmentFile, which overrides them."""
    env = {}
    for line in d.get("Environment", []):
        for a in shlex.split(line):
            k, _, v = a.partition("=")
            env[k] = v
    for line in env_file_text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            k, _, v = line.partition("=")
            env[k.strip()] = shlex.split(v)[0] if v.strip() else ""
    return env


def _nofile(d):
    """LimitNOFILE=, or the hard limit here when that is lower (raising it
    needs CAP_SYS_RESOURCE, which a container may lack)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = int(d["LimitNOFILE"][0])
    return want if hard == resource.RLIM_INFINITY else min(want, hard)


def _unit_limits(d):
    """preexec_fn applying the unit's UMask= and LimitNOFILE= (see _nofile)."""
    nofile = _nofile(d)
    umask = int(d["UMask"][0], 8)

    def apply():
        os.umask(umask)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return apply


def _stop(proc, sig, within, log):
    proc.send_signal(sig)
    try:
        return proc.wait(within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"not stopped {within} s after {sig!r}:\n{log.read_text()}")


@pytest.mark.timeout(30)
def test_systemd_service_environment_serves_from_its_state_directory(tmp_path):
    """The environment the unit gives the service (Environment=, then the
    installed example EnvironmentFile), its UMask= and LimitNOFILE=, start a
    working server: DATA_DIR is the StateDirectory (the one place
    ProtectSystem=strict leaves writable), the default connection cap fits
    the descriptor limit, the state files are private. In a network
    namespace of its own, so the example's port is used as it stands."""
    if NetNS.unavailable_reason():
        pytest.skip(NetNS.unavailable_reason())
    d = unit_directives()
    env = systemd_environment(d, ENV_EXAMPLE.read_text())
    (state,) = d["StateDirectory"]
    assert env.get("DATA_DIR") == f"/var/lib/{state}", env
    data = tmp_path / "var" / "lib" / state          # stands in for /var/lib/<StateDirectory>
    data.mkdir(parents=True, mode=int(d["StateDirectoryMode"][0], 8))
    env["DATA_DIR"] = str(data)
    port = int(env.get("SERVICE_PORT") or 7001)
    log = tmp_path / "service.log"
    ns = NetNS()
    try:
        ns.create()
        with ns.enter(), open(log, "wb") as out:
            proc = subprocess.Popen([BIN], env=env, cwd="/", preexec_fn=_unit_limits(d),
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                wait_for(lambda: proc.poll() is not None or port_open(port, NETNS_ADDR), 5,
                         f"the service on port {port}")
                assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
                st, _, h = http_get(NETNS_ADDR, port, "/health")
                assert st == 200 and h["status"] == "healthy", (st, h)
                st, _, v = http_get(NETNS_ADDR, port, "/api/next-id/order?dataType=int")
                assert st == 200, v
            finally:
                rc = _stop(proc, signal.Signals[d["KillSignal"][0]], 10, log)
        assert rc == 0, log.read_text()
    finally:
        ns.delete()
    files = [p for p in data.iterdir() if p.is_file()]
    assert any(p.name == "journal" for p in files), files
    for p in files:
        assert p.stat().st_mode & 0o077 == 0, f"{p.name} is {oct(p.stat().st_mode)}"
    out = log.read_text()
    if "connection cap lowered" in out and _nofile(d) < int(d["LimitNOFILE"][0]):
        pytest.skip(f"the descriptor limit here ({_nofile(d)}) is below LimitNOFILE: "
                    "cannot tell whether the unit's limit fits the connection cap")
    assert "connection cap lowered" not in out, out


@pytest.mark.timeout(30)
def test_systemd_stop_and_restart_settings_fit_the_exit_codes(tmp_path):
    """KillSignal ends the service with exit 0 (so Restart=on-failure leaves
    it stopped) well before TimeoutStopSec, even with a request half sent;
    a configuration error exits with a status RestartPreventExitStatus names,
    so a bad environment file does not restart in a loop."""
    d = unit_directives()
    env = systemd_environment(d, ENV_EXAMPLE.read_text())
    env.update({"DATA_DIR": str(tmp_path / "data"), "SERVICE_PORT": str(free_port()),
                "BIND_ADDR": "127.0.0.1"})
    assert d["Restart"] == ["on-failure"]   # what "exit 0 is not restarted" relies on
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BIN], env=env, cwd="/", preexec_fn=_unit_limits(d),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or port_open(int(env["SERVICE_PORT"])), 5,
                 "the service")
        half = socket.create_connection(("127.0.0.1", int(env["SERVICE_PORT"])), timeout=5)
        half.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    finally:
        timeout_stop = float(d["TimeoutStopSec"][0])
        t0 = time.monotonic()
        rc = _stop(proc, signal.Signals[d["KillSignal"][0]], timeout_stop, log)
    half.close()
    assert rc == 0, f"exit {rc}:\n{log.read_text()}"
    assert time.monotonic() - t0 < timeout_stop - 2, "stop took nearly all of TimeoutStopSec"

    bad = dict(env, SHARD_ID=str(int(env.get("TOTAL_SHARDS") or 1) + 1))
    r = subprocess.run([BIN], env=bad, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0, r.stdout
    prevent = d["RestartPreventExitStatus"][0].split()
    assert str(r.returncode) in prevent, (r.returncode, prevent, r.stderr)


def syscall_filter_sets(sa):
    """{"@group": {names}} as this systemd defines them, groups expanded."""
    text = subprocess.run([sa, "syscall-filter"], capture_output=True, text=True,
                          timeout=20, check=True).stdout
    raw, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = raw.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.split()[0])

    def expand(name, seen=()):
        out = set()
        for m in raw.get(name, []):
            out |= expand(m, seen + (name,)) if m.startswith("@") and m not in seen else {m}
        return out
    return {g: expand(g) for g in raw}


def unit_syscall_filter(d, sets):
    """The system calls SystemCallFilter= admits (allow lines, then ~deny lines)."""
    allowed = set()
    for line in d["SystemCallFilter"]:
        deny = line.startswith("~")
        names = set()
        for item in line.lstrip("~").split():
            names |= sets[item] if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


WRITING_CALLS = {"open", "openat", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir",
                 "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
                 "truncate", "chmod", "fchmodat", "chown", "lchown", "fchownat", "mknod",
                 "mknodat", "utimensat"}


def traced_writes(lines, cwd):
    """Paths of the successful calls that create or change files."""
    out = []
    for line in lines:
        m = re.match(r'^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)', line)
        if not m or m.group(1) not in WRITING_CALLS or int(m.group(3)) < 0:
            continue
        if m.group(1) in ("open", "openat") and not re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC",
                                                              m.group(2)):
            continue
        for dirfd, path in re.findall(r'(?:(AT_FDCWD|\d+<[^>]*>),\s*)?"([^"]*)"', m.group(2)):
            base = dirfd[dirfd.index("<") + 1:-1] if "<" in dirfd else cwd
            out.append(posixpath.normpath(posixpath.join(base, path)))
    return out


@pytest.mark.timeout(90)
def test_systemd_sandbox_admits_all_the_service_does(tmp_path):
    """Traced with strace, the service in the unit's environment registers in
    Consul after looking for an address over netlink (no CONTAINER_IP), takes
    the lock, hands out every type of ID, serves /metrics and an admin route,
    and stops on KillSignal. Every system call it made must pass the unit's
    SystemCallFilter (groups as systemd-analyze expands them), every socket
    family RestrictAddressFamilies; no mapping may be writable and
    executable (MemoryDenyWriteExecute); every file it created or changed
    must lie in DATA_DIR (ProtectSystem=strict; its working directory is /).
    Service and Consul run in a network namespace with only lo, so the
    address lookup finds no interface to advertise (the host's interfaces are
    test_consul's test_address_found_on_the_interfaces_is_advertised)."""
    strace, sa = shutil.which("strace"), shutil.which("systemd-analyze")
    if not strace or not sa:
        pytest.skip("needs strace and systemd-analyze (apt-get install strace systemd)")
    if NetNS.unavailable_reason():
        pytest.skip(NetNS.unavailable_reason())
    if not consul_binary():
        pytest.skip("no Consul agent binary: run scripts/consul-build")
    from consul_agent import ConsulAgent
    d = unit_directives()
    allowed = unit_syscall_filter(d, syscall_filter_sets(sa))
    families = set(d["RestrictAddressFamilies"][0].split())
    env = systemd_environment(d, ENV_EXAMPLE.read_text())
    assert not env.get("CONTAINER_IP")
    data = tmp_path / "state"
    trace, log = tmp_path / "trace", tmp_path / "service.log"
    ns = NetNS()
    try:
        ns.create()
        with ns.enter():
            agent = ConsulAgent(binary=consul_binary())
            agent.start()
            try:
                rc = _traced_service_session(strace, d, env, data, agent, trace, log)
            finally:
                agent.stop()
    finally:
        ns.delete()
    assert rc == 0, f"exit {rc}:\n{log.read_text()}"

    lines = trace.read_text(errors="replace").splitlines()
    called = {m.group(1) for ln in lines
              if (m := re.match(r"^\d+\s+(?:<\.\.\.\s+)?(\w+)(?:\(| resumed>)", ln))}
    assert {"socket", "epoll_pwait", "fsync"} & called, "the trace holds no system calls"
    assert called <= allowed, f"outside SystemCallFilter: {sorted(called - allowed)}"
    used = set(re.findall(r"\bsocket\((AF_\w+)", "\n".join(lines)))
    assert "AF_NETLINK" in used and "AF_INET" in used, used
    assert used <= families, f"outside RestrictAddressFamilies: {sorted(used - families)}"
    wx = [ln for ln in lines if re.match(r"^\d+\s+(mmap|mprotect|pkey_mprotect)\(", ln)
          and "PROT_WRITE" in ln and "PROT_EXEC" in ln]
    assert not wx, wx[:5]
    writes = traced_writes(lines, "/")
    assert any(p.startswith(str(data) + "/") for p in writes), writes
    outside = [p for p in writes if p != str(data) and not p.startswith(str(data) + "/")]
    assert not outside, f"wrote outside DATA_DIR: {outside}"


def _traced_service_session(strace, d, env, data, agent, trace, log):
    """Runs the service under strace through one session; -> its exit code."""
    port = free_port()
    env = dict(env, DATA_DIR=str(data), SERVICE_PORT=str(port), CONSUL_URL=agent.url,
               SERVICE_NAME=f"shardid-sandbox-{os.getpid()}")
    with open(log, "wb") as out:
        proc = subprocess.Popen([strace, "-f", "-y", "-qq", "-o", str(trace), BIN], env=env,
                                cwd="/", preexec_fn=_unit_limits(d), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def serving():
            assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
            if not port_open(port):
                return False
            st, _, h = http_get("127.0.0.1", port, "/health")
            return st == 200 and h.get("consul", {}).get("registered") and h
        wait_for(serving, 20, "the traced service to hold the lock and register")
        for t in ("int", "long", "snowflake", "uuid8", "uuid22"):
            assert http_get("127.0.0.1", port, f"/api/next-id/sb-{t}?dataType={t}")[0] == 200
        assert http_get("127.0.0.1", port, "/api/next-batch/sb-int?batchSize=50")[0] == 200
        assert http_get("127.0.0.1", port, "/metrics")[0] == 200
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("DELETE", "/api/entity/sb-long")
        assert c.getresponse().status == 200
        c.close()
    finally:
        kids = children(proc.pid)
        if kids:
            os.kill(kids[0], signal.Signals[d["KillSignal"][0]])
        try:
            rc = proc.wait(float(d["TimeoutStopSec"][0]))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return rc


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
    base = free_port_block(4)
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
        # grow: a reshard to 4 under the script's own client load, then 4 shards.
        r = cluster("grow", "4")
        assert r.returncode == 0 and "resharded shardid from 3 to 4 shards" in r.stderr, r.stderr
        assert "duplicates: 0" in r.stderr, r.stderr
        for k in (1, 2, 3, 4):
            st, _, info = http_get("127.0.0.1", base + k, "/shard-info")
            assert (st, info) == (200, {"shardId": k, "totalShards": 4, "status": "active"})
            st, _, w = http_get("127.0.0.1", base + k, "/api/next-id/order?dataType=int")
            assert st == 200 and w["value"] > v["value"] and (w["value"] - k) % 4 == 0, w
        pids = [int((piddir / f"{n}.pid").read_text()) for n in
                ("shard-1", "shard-2", "shard-3", "shard-4", "consul")]
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
