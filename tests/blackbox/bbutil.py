"""Helpers for the black-box tests: the Server wrapper, a raw HTTP/1.1 client
for protocol tests, snowflake layout arithmetic and a network-namespace helper.
Standard library only."""
import contextlib
import ctypes
import datetime
import http.client
import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHARDID_BIN") or str(REPO / "zig-out" / "bin" / "shardid")
# The test build: ASan+UBSan with the test hooks compiled in (`make
# build/shardid-asan`). SHARDID_TEST_BIN is the older name of the override.
ASAN_BIN = (os.environ.get("SHARDID_ASAN_BIN") or os.environ.get("SHARDID_TEST_BIN")
            or str(REPO / "build" / "shardid-asan"))
BUILDS = {"release": BIN, "asan": ASAN_BIN}

# Every variable of SPEC section 2 (plus MAX_CONNECTIONS): removed from the
# inherited environment so the caller's shell cannot change what a test sees.
CONFIG_VARS = (
    "SERVICE_PORT BIND_ADDR SHARD_ID TOTAL_SHARDS DATA_DIR SNOWFLAKE_LAYOUT MACHINE_ID "
    "DEFAULT_DATA_TYPE MAX_BATCH_SIZE CONSUL_URL CONSUL_HTTP_TOKEN SERVICE_NAME "
    "CONTAINER_IP ADMIN_TOKEN LOG_LEVEL MAX_CONNECTIONS"
).split()

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
TYPES = ["int", "long", "snowflake", "uuid8", "uuid12", "uuid16", "uuid22", "uuid7", "ulid"]
UUID_RE = re.compile(r"^[A-Za-z0-9]+$")
ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

HEALTH_POLL_S = 0.005
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
IO_TIMEOUT_S = 5.0

_counter = itertools.count(1)


def uniq(prefix="e"):
    """A fresh, valid entity name."""
    return f"{prefix}-{next(_counter)}-{secrets.token_hex(3)}"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(overrides=None):
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_bin(args=(), env=None, timeout=IO_TIMEOUT_S):
    """Runs the binary to completion (for --help, --version, bad config)."""
    return subprocess.run([BIN, *args], env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- #
# HTTP responses
# --------------------------------------------------------------------------- #
class Resp:
    """A response: unpacks as (status, headers, json). headers has lower-case
    names; raw_headers keeps the (name, value) list; body is the raw bytes."""

    def __init__(self, status, reason, raw_headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.raw_headers = raw_headers
        self.headers = {k.lower(): v for k, v in raw_headers}
        self.body = body
        self.version = version
        self.json = None
        if body[:1] in (b"{", b"["):
            try:
                self.json = json.loads(body)
            except ValueError:
                pass

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    def header_all(self, name):
        return [v for k, v in self.raw_headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Resp {self.status} {self.headers} {self.body[:300]!r}>"


def ok(resp, status=200):
    """Asserts the status and returns the parsed JSON body."""
    assert resp.status == status, f"expected {status}, got {resp!r}"
    assert resp.json is not None, f"body is not JSON: {resp!r}"
    return resp.json


def assert_error(resp, status, error=None):
    """Error responses: JSON {"error","message"} with application/json."""
    assert resp.status == status, f"expected {status}, got {resp!r}"
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", resp
    assert isinstance(resp.json, dict), resp
    assert isinstance(resp.json.get("error"), str) and resp.json["error"], resp
    assert isinstance(resp.json.get("message"), str), resp
    if error is not None:
        assert resp.json["error"] == error, resp
    return resp.json


# --------------------------------------------------------------------------- #
# The server under test
# --------------------------------------------------------------------------- #
class Server:
    """One shardid process on a free loopback port with its own DATA_DIR.

    start(env, args) merges env overrides into the configuration (kept for
    restart()) and waits until GET /health answers. `binary` defaults to BIN
    as it is when start() runs (the release build unless SHARDID_BIN says
    otherwise)."""

    def __init__(self, workdir, env=None, args=None, host="127.0.0.1", binary=None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.host = host
        self.port = None
        self.env = dict(env or {})
        self.args = list(args or [])
        self.proc = None
        self.runs = 0
        self.last_returncode = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, env=None, args=None, wait=True):
        assert not self.running, "already running"
        if env:
            self.env.update(env)
        if args is not None:
            self.args = list(args)
        if self.port is None:
            self.port = int(self.env.get("SERVICE_PORT") or free_port())
        base = {"SERVICE_PORT": self.port, "BIND_ADDR": "127.0.0.1",
                "DATA_DIR": str(self.data_dir)}
        base.update(self.env)
        self.runs += 1
        self.stdout_path = self.workdir / f"stdout.{self.runs}"
        self.stderr_path = self.workdir / f"stderr.{self.runs}"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([self.binary or BIN, *self.args], env=clean_env(base),
                                         stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"shardid exited with {self.proc.returncode} during startup:\n"
                    f"{self.output()}")
            try:
                c = http.client.HTTPConnection(self.host, self.port, timeout=0.5)
                c.request("GET", "/health")
                c.getresponse().read()
                c.close()
                return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"GET /health did not answer within {timeout}s:\n{self.output()}")
            time.sleep(HEALTH_POLL_S)

    def stop(self, sig=signal.SIGTERM):
        """Graceful stop: the process must exit 0 within 5 s."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"shardid did not exit within {STOP_TIMEOUT_S}s "
                                 f"after {sig!r}:\n{self.output()}")
        self.last_returncode = rc
        assert rc == 0, f"shardid exited with {rc} after {sig!r}:\n{self.output()}"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.last_returncode = self.proc.returncode if self.proc else None

    def restart(self, env=None, args=None):
        self.stop()
        return self.start(env, args)

    def crash_restart(self, env=None, args=None):
        self.kill()
        return self.start(env, args)

    def output(self):
        """stdout + stderr of the current (or last) run."""
        parts = []
        for p in (getattr(self, "stdout_path", None), getattr(self, "stderr_path", None)):
            if p and p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    # -- HTTP --------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT_S,
                host=None):
        """One request on a fresh connection -> Resp (status, headers, json)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        c = http.client.HTTPConnection(host or self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, r.reason, r.getheaders(), data,
                        "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def json(self, path, status=200):
        return ok(self.get(path), status)

    # API shortcuts (entity names are used as given: quote them yourself)
    def next_id(self, entity, dtype=None, **kw):
        q = f"?dataType={dtype}" if dtype is not None else ""
        return self.get(f"/api/next-id/{entity}{q}", **kw)

    def batch(self, entity, n, dtype=None, **kw):
        q = f"batchSize={n}"
        if dtype is not None:
            q = f"dataType={dtype}&" + q
        return self.get(f"/api/next-batch/{entity}?{q}", **kw)

    def status(self, entity, **kw):
        return self.get(f"/api/status/{entity}", **kw)

    def init(self, entity, dtype="int", start=None, body=None, headers=None, force=False, **kw):
        if body is None:
            body = {"dataType": dtype}
            if start is not None:
                body["startValue"] = start
        q = "?force=true" if force else ""
        return self.request("POST", f"/api/init/{entity}{q}", body=body, headers=headers, **kw)

    def reset(self, entity, value, force=False, body=None, headers=None, **kw):
        if body is None:
            body = {"value": value}
        q = "?force=true" if force else ""
        return self.request("PUT", f"/api/reset/{entity}{q}", body=body, headers=headers, **kw)

    def delete(self, entity, headers=None, **kw):
        return self.request("DELETE", f"/api/entity/{entity}", headers=headers, **kw)

    def take(self, entity, dtype=None):
        """One next-id value (asserting 200)."""
        return ok(self.next_id(entity, dtype))["value"]

    def raw(self, timeout=IO_TIMEOUT_S, host=None):
        return RawConn(host or self.host, self.port, timeout)


# --------------------------------------------------------------------------- #
# Raw HTTP client for protocol tests
# --------------------------------------------------------------------------- #
class RawConn:
    def __init__(self, host, port, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by server")
        self.buf += data

    def read_response(self, head=False):
        """Reads one response; head=True for a response to HEAD (no body)."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        status = int(m.group(2))
        headers = []
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            assert sep and name and name == name.strip(), f"bad header line {ln!r}"
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        hmap = {k.lower(): v for k, v in headers}
        if head or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in hmap:
            n = int(hmap["content-length"])
            while len(self.buf) < n:
                self._more()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:  # delimited by close
            try:
                while True:
                    self._more()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        return Resp(status, m.group(3).decode("latin-1"), headers, body,
                    m.group(1).decode())

    def _read_chunked(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._more()
            line, self.buf = self.buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(self.buf) < n + 2:
                self._more()
            body += self.buf[:n]
            self.buf = self.buf[n + 2:]
            if n == 0:
                return body

    def request(self, raw, head=False):
        self.send(raw)
        return self.read_response(head=head)

    def closed_by_peer(self, timeout=2.0):
        """True when the server closes (EOF or reset) within timeout and sends
        nothing more; False if the connection stays open (or data arrives)."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data:
            self.buf += data
            return False
        return True


# --------------------------------------------------------------------------- #
# Either build: the release binary or the ASan+UBSan test build
# --------------------------------------------------------------------------- #
# A small quarantine keeps ASan's RSS meaningful; leaks are still checked at exit.
ASAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:quarantine_size_mb=4:malloc_context_size=8",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error",
                   "UndefinedBehaviorSanitizer")


def build_missing(name):
    """Why the build `name` (a BUILDS key) cannot run here, or None."""
    path = BUILDS[name]
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return None
    how = ("`make` or set SHARDID_BIN" if name == "release" else
           "`make build/shardid-asan` or set SHARDID_ASAN_BIN")
    return f"{name} build not found at {path} ({how})"


class BuildServer(Server):
    """A Server running one of BUILDS by name. The ASan build runs with
    ASAN_ENV; after its runs, assert_sanitizer_clean() finds any report it
    printed (finish() stops it and checks)."""

    def __init__(self, workdir, build, env=None, args=None):
        env = dict(env or {})
        if build == "asan":
            env = {**ASAN_ENV, **env}
        super().__init__(workdir, env=env, args=args, binary=BUILDS[build])
        self.build = build
        if "DATA_DIR" in self.env:
            self.data_dir = Path(self.env["DATA_DIR"])

    @property
    def journal(self):
        return self.data_dir / "journal"

    def stderr_text(self, all_runs=False):
        """stderr of the current run (all_runs: of every run so far)."""
        out = []
        for i in range(1 if all_runs else self.runs, self.runs + 1):
            p = self.workdir / f"stderr.{i}"
            if p.exists():
                out.append(p.read_text(errors="replace"))
        return "\n".join(out)

    def assert_sanitizer_clean(self, all_runs=False):
        text = self.stderr_text(all_runs)
        hits = [m for m in SANITIZER_MARKS if m in text]
        assert not hits, f"{self.build}: sanitizer report ({hits}):\n{text[-6000:]}"

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def finish(self):
        """Graceful stop (exit 0 asserted), then no sanitizer report in any run."""
        try:
            if self.running:
                self.stop()
        finally:
            self.assert_sanitizer_clean(all_runs=True)


def stop_all(servers):
    """Stops every server still running (SIGTERM, exit 0 asserted by stop());
    a BuildServer also must have printed no sanitizer report. Fails afterwards
    with all the errors, so one bad stop hides no other."""
    errors = []
    for s in servers:
        try:
            if isinstance(s, BuildServer):
                s.finish()
            elif s.running:
                s.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def wait_accepting(server, timeout, what):
    """Waits until a fresh connection gets 200 on /health (e.g. after
    connections were closed at the connection cap)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with server.raw() as c:
                if c.request(get_req()).status == 200:
                    return
        except (OSError, EOFError):
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def send_raw(server, raw):
    """Sends raw bytes on a fresh connection -> (conn, Resp or None when the
    server reset or closed it before answering). A send cut short by the
    server is not an error: it may answer and close before reading it all."""
    c = server.raw()
    try:
        c.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        return c, c.read_response()
    except (EOFError, ConnectionResetError):
        return c, None


def get_req(path="/health", host="x", version="1.1", extra=""):
    return (f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n").encode()


# --------------------------------------------------------------------------- #
# Snowflake layouts
# --------------------------------------------------------------------------- #
SONYFLAKE_EPOCH_MS = 1640995200000   # 2022-01-01T00:00:00Z
TWITTER_EPOCH_MS = 1704067200000     # 2024-01-01T00:00:00Z


def decompose(layout, id_):
    """-> (unix_ms, machine, seq) for 'sonyflake' or 'twitter'."""
    if layout == "sonyflake":   # time(39) | seq(8) | machine(16), 10 ms
        return (SONYFLAKE_EPOCH_MS + (id_ >> 24) * 10, id_ & 0xFFFF, (id_ >> 16) & 0xFF)
    if layout == "twitter":     # time(41) | machine(10) | seq(12), 1 ms
        return (TWITTER_EPOCH_MS + (id_ >> 22), (id_ >> 12) & 0x3FF, id_ & 0xFFF)
    raise ValueError(layout)


def iso_ms(unix_ms):
    d = datetime.datetime.fromtimestamp(unix_ms / 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{unix_ms % 1000:03d}Z"


def parse_iso_ms(s):
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?Z$", s)
    assert m, f"not an ISO-8601 UTC timestamp: {s!r}"
    d = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000 + int((m.group(2) or "0").ljust(3, "0"))


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- #
# A private network namespace, to get a non-loopback client address
# --------------------------------------------------------------------------- #
CLONE_NEWNET = 0x40000000
NETNS_ADDR = "198.18.0.1"   # RFC 2544 benchmarking range; exists only inside the namespace


class NetNS:
    """A network namespace with only `lo`, carrying 127.0.0.1 and NETNS_ADDR.
    Inside it a client connecting to NETNS_ADDR has a non-loopback peer address,
    and no packet can leave the namespace. enter() moves the calling thread in
    (children it spawns, such as the server, start inside too)."""

    def __init__(self):
        self.name = f"shardid-bb-{os.getpid()}-{secrets.token_hex(2)}"
        self.created = False

    @staticmethod
    def unavailable_reason():
        if os.geteuid() != 0:
            return "needs root to create a network namespace"
        if not any((Path(d) / "ip").exists() for d in os.environ.get("PATH", "").split(":")):
            return "iproute2 ('ip') not installed"
        return None

    def create(self):
        def ip(*a, ns=True):
            cmd = (["ip", "netns", "exec", self.name] if ns else []) + ["ip", *a]
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        ip("netns", "add", self.name, ns=False)
        self.created = True
        ip("link", "set", "lo", "up")
        ip("addr", "add", f"{NETNS_ADDR}/32", "dev", "lo")

    def delete(self):
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
            self.created = False

    @contextlib.contextmanager
    def enter(self):
        libc = ctypes.CDLL(None, use_errno=True)
        orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into test namespace failed")
            try:
                yield self
            finally:
                if libc.setns(orig, CLONE_NEWNET) != 0:
                    os._exit(99)   # never keep running the test process in the wrong namespace
        finally:
            os.close(target)
            os.close(orig)


def set_clock_offset(path, ms):
    """Sets the test build's clock offset (SHARDID_TEST_CLOCK_OFFSET_FILE):
    a new file with a unique mtime, renamed into place, so a running server
    never reads it half written or misses the change."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{int(ms)}\n")
    t = time.time_ns()
    os.utime(tmp, ns=(t, t))
    os.replace(tmp, path)
