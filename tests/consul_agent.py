"""A throw-away Consul dev agent on loopback, for tests (stdlib only).

    agent = ConsulAgent()
    agent.start()            # picks free ports, waits for a leader
    agent.url                # "http://127.0.0.1:PORT"
    agent.http_addr          # "127.0.0.1:PORT"
    agent.restart()          # stop + start with fresh state, same HTTP port
    agent.stop()

or as a context manager / pytest fixture:

    @pytest.fixture
    def consul():
        with ConsulAgent() as agent:
            yield agent

The binary is $CONSUL_BIN, else <repo>/.tools/consul/consul, else it is built
by scripts/consul-build (slow the first time: ~10 min cold).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_SCRIPT = os.path.join(REPO_ROOT, "scripts", "consul-build")
DEFAULT_BIN = os.path.join(REPO_ROOT, ".tools", "consul", "consul")
HOST = "127.0.0.1"
ACL_ROOT = "acl-root-secret"   # management token of acl_agent() agents


def find_consul_binary(build=True):
    """Path of the consul binary; builds it with scripts/consul-build if needed."""
    env_bin = os.environ.get("CONSUL_BIN")
    if env_bin:
        if not (os.path.isfile(env_bin) and os.access(env_bin, os.X_OK)):
            raise RuntimeError("CONSUL_BIN=%r is not an executable file" % env_bin)
        return env_bin
    if os.path.isfile(DEFAULT_BIN) and os.access(DEFAULT_BIN, os.X_OK):
        return DEFAULT_BIN
    if not build:
        raise RuntimeError("consul binary not found at %s" % DEFAULT_BIN)
    # stderr (progress) is passed through; stdout is the path.
    out = subprocess.run(
        ["bash", BUILD_SCRIPT], stdout=subprocess.PIPE, check=True, text=True
    ).stdout.strip().splitlines()
    path = out[-1] if out else DEFAULT_BIN
    if not os.access(path, os.X_OK):
        raise RuntimeError("scripts/consul-build did not produce %s" % path)
    return path


def _free_port(kind=socket.SOCK_STREAM, exclude=()):
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port
    raise RuntimeError("no free port")


def _free_tcp_udp_port(exclude=()):
    """A port free for both TCP and UDP (serf uses both)."""
    for _ in range(100):
        port = _free_port(exclude=exclude)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((HOST, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free tcp+udp port")


def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


class ConsulAgent:
    """A `consul agent -dev` bound to 127.0.0.1 on free ports."""

    def __init__(self, binary=None, start_timeout=30.0, log_path=None, extra_args=(), token=None):
        self.binary = binary
        self.extra_args = list(extra_args)  # e.g. ["-hcl", "acl { enabled = true ... }"]
        self.token = token                  # sent as X-Consul-Token by the helpers below
        self.node = "shardid-test"
        self.start_timeout = start_timeout
        self.log_path = log_path  # None: a file in the temp data dir's parent
        self.http_port = None
        self.proc = None
        self._tmp = None
        self._log = None

    # -- addresses -------------------------------------------------------
    @property
    def http_addr(self):
        return "%s:%d" % (HOST, self.http_port)

    @property
    def url(self):
        return "http://%s" % self.http_addr

    # -- lifecycle -------------------------------------------------------
    def start(self, http_port=None):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("consul agent already running")
        if self.binary is None:
            self.binary = find_consul_binary()
        if http_port is None:
            http_port = self.http_port or _free_port()
        self.http_port = http_port
        used = {http_port}
        ports = {}
        for name in ("serf-lan-port", "serf-wan-port", "server-port"):
            ports[name] = _free_tcp_udp_port(exclude=used)
            used.add(ports[name])

        self._tmp = tempfile.mkdtemp(prefix="consul-agent-")
        data_dir = os.path.join(self._tmp, "data")
        os.mkdir(data_dir)
        log_path = self.log_path or os.path.join(self._tmp, "consul.log")
        self._log = open(log_path, "ab")
        cmd = [
            self.binary, "agent", "-dev",
            "-node", self.node,
            "-bind", HOST, "-client", HOST, "-advertise", HOST,
            "-data-dir", data_dir,
            "-http-port", str(http_port),
            "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
            "-serf-lan-port", str(ports["serf-lan-port"]),
            "-serf-wan-port", str(ports["serf-wan-port"]),
            "-server-port", str(ports["server-port"]),
            "-log-level", "warn",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self._wait_leader()
        except Exception:
            self.stop()
            raise
        return self

    def _wait_leader(self):
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "consul agent exited with %s:\n%s" % (self.proc.returncode, self.log_tail())
                )
            try:
                leader = self.get("/v1/status/leader", timeout=1.0)
                if leader:
                    return
            except (OSError, ValueError) as e:  # URLError is an OSError
                last = e
            time.sleep(0.1)
        raise TimeoutError(
            "consul agent had no leader after %.0fs (%s):\n%s"
            % (self.start_timeout, last, self.log_tail())
        )

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def restart(self, down_for=0.0):
        """Stop, then start with fresh (empty) state on the same HTTP port.

        down_for: seconds to stay down in between (to let clients notice).
        """
        port = self.http_port
        self.stop()
        if down_for:
            time.sleep(down_for)
        # The old listener is gone once the process exited; wait a little
        # in case the kernel still holds the port.
        deadline = time.monotonic() + 10
        while not _port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.start(http_port=port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass

    # -- small HTTP helpers for assertions --------------------------------
    def request(self, method, path, body=None, timeout=5.0):
        """Returns (status, parsed JSON or raw text or None)."""
        data = None
        headers = {"X-Consul-Token": self.token} if self.token else {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path, timeout=5.0):
        status, value = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise OSError("GET %s -> %s: %s" % (path, status, value))
        return value

    def put(self, path, body=None, timeout=5.0):
        status, value = self.request("PUT", path, body, timeout=timeout)
        if status != 200:
            raise OSError("PUT %s -> %s: %s" % (path, status, value))
        return value

    def token_with_rules(self, name, rules):
        """A new ACL token whose only policy (named `name`) holds `rules`."""
        pol = self.put("/v1/acl/policy", {"Name": name, "Rules": rules})
        return self.put("/v1/acl/token", {"Policies": [{"ID": pol["ID"]}]})["SecretID"]

    def services(self):
        """/v1/agent/services as a dict keyed by service ID."""
        return self.get("/v1/agent/services")

    def log_tail(self, n=40):
        path = self.log_path or (self._tmp and os.path.join(self._tmp, "consul.log"))
        if not path or not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")


def acl_agent(binary=None):
    """A dev agent with ACLs on and everything denied by default (not started);
    ACL_ROOT is its management token, used by the helpers below."""
    hcl = ('acl { enabled = true\n default_policy = "deny"\n'
           f' tokens {{ initial_management = "{ACL_ROOT}" }} }}')
    return ConsulAgent(binary=binary, extra_args=["-hcl", hcl], token=ACL_ROOT)
