"""A bounded nemesis run against the Consul-replicated shard state.

Three shards with two instances each (a holder and a standby, each with its own
DATA_DIR and its own TCP relay in front of one real Consul agent) serve client
threads that spread next-id and next-batch requests for int, long and snowflake
entities over all six instances, while a nemesis thread injects faults at
random: kill -9 (the instance comes back a little later, half the time with an
empty DATA_DIR, as a replacement host), SIGSTOP past the session TTL then
SIGCONT, a partition from Consul (its relay goes silent while clients still
reach it), and a wall clock moved 60 s ahead or behind (test build hook).

At the end every value any instance answered with must be unique per entity
(sequences) or overall (snowflakes), and every sequence value must lie in the
residue class of the shard that answered it.

Bounded: NEMESIS_SECONDS (default 100 s of faults) plus set-up and a short
quiet phase; `NEMESIS_SECONDS=600 python3 -m pytest tests/blackbox/test_nemesis.py`
runs longer. NEMESIS_SEED fixes the fault schedule (printed on failure).
"""
import os
import random
import signal
import sys
import threading
import time
from collections import defaultdict

import pytest

from bbutil import ASAN_BIN, REPO, Server, build_missing, set_clock_offset, uniq

sys.path.insert(0, str(REPO / "tests"))
from consul_agent import ConsulAgent, find_consul_binary  # noqa: E402
from tcp_relay import TcpRelay  # noqa: E402

SHARDS = 3
SECONDS = float(os.environ.get("NEMESIS_SECONDS", "100"))
SEED = int(os.environ.get("NEMESIS_SEED", str(int(time.time()))))
TYPES = ("int", "long", "snowflake")
ENTITIES = [f"nem-{t}-{i}" for t in TYPES for i in range(3)]


class Node:
    """One instance of a shard behind its own relay to Consul."""

    def __init__(self, workdir, agent, name, shard, idx, binary):
        self.shard, self.idx = shard, idx
        self.relay = TcpRelay("127.0.0.1", agent.http_port)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.offset_file = workdir / "clock-offset"
        set_clock_offset(self.offset_file, 0)
        self.replacements = 0
        self.env = {"CONSUL_URL": self.relay.url, "SERVICE_NAME": name,
                    "CONTAINER_IP": "127.0.0.1", "SHARD_ID": shard, "TOTAL_SHARDS": SHARDS,
                    "SHARDID_TEST_CLOCK_OFFSET_FILE": str(self.offset_file)}
        self.server = Server(workdir / "run0", env=self.env, binary=binary)
        self.stopped = False      # SIGSTOPped
        self.lock = threading.Lock()

    def start(self):
        self.server.start()

    def replace(self):
        """A replacement host: same shard, empty DATA_DIR, same port."""
        self.replacements += 1
        port = self.server.port
        self.server = Server(self.workdir / f"run{self.replacements}",
                             env=dict(self.env, SERVICE_PORT=port), binary=self.server.binary)
        self.server.start()

    @property
    def label(self):
        return f"shard{self.shard}/{self.idx}"


def client(nodes, deadline, results, errors, rng):
    """Hammers random instances; records every value answered with 200."""
    while time.monotonic() < deadline:
        node = rng.choice(nodes)
        entity = rng.choice(ENTITIES)
        dtype = entity.split("-")[1]
        s = node.server
        try:
            if rng.random() < 0.2:
                r = s.batch(entity, rng.randint(2, 20), dtype, timeout=8)
                vals = r.json["values"] if r.status == 200 else []
            else:
                r = s.next_id(entity, dtype, timeout=8)
                vals = [r.json["value"]] if r.status == 200 else []
        except (OSError, ValueError, TypeError, KeyError):
            time.sleep(0.01)
            continue
        if r.status == 200:
            with node.lock:
                for v in vals:
                    results.append((node.shard, node.label, dtype, entity, int(v)))
        elif r.status != 503:
            errors.append((node.label, r.status, r.body[:200]))
        else:
            time.sleep(0.005)


def later(delay, fn):
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()


def holders(nodes):
    """The instances that serve now (a fault there moves the shard)."""
    found = []
    for n in nodes:
        if n.stopped:
            continue
        try:
            r = n.server.get("/health", timeout=1)
        except (OSError, ValueError):
            continue
        if r.status == 200:
            found.append(n)
    return found


def nemesis(nodes, deadline, rng, log, clock_faults):
    faults = ["kill", "stop", "partition"] + (["clock"] if clock_faults else [])
    while time.monotonic() < deadline - 5:
        time.sleep(rng.uniform(2, 6))
        serving = holders(nodes)
        # Mostly hit a holder: that is where a takeover can go wrong.
        node = rng.choice(serving if serving and rng.random() < 0.75 else nodes)
        fault = rng.choice(faults)
        t = time.monotonic()
        if fault == "kill":
            node.server.kill()
            time.sleep(rng.uniform(0.5, 4))
            if rng.random() < 0.5:
                node.replace()
                log.append((t, node.label, "kill -9, replaced by an empty DATA_DIR"))
            else:
                node.server.start()
                log.append((t, node.label, "kill -9, restarted"))
        elif fault == "stop" and not node.stopped:
            node.server.proc.send_signal(signal.SIGSTOP)
            node.stopped = True
            pause = rng.uniform(12, 24)   # beyond the 10 s TTL, often beyond 2x
            log.append((t, node.label, f"SIGSTOP {pause:.0f}s"))
            later(pause, lambda n=node: (n.server.proc.send_signal(signal.SIGCONT),
                                         setattr(n, "stopped", False)))
        elif fault == "partition":
            node.relay.blackhole()
            pause = rng.uniform(8, 20)
            log.append((t, node.label, f"partition {pause:.0f}s"))
            later(pause, node.relay.heal)
        elif fault == "clock":
            skew = rng.choice((-60000, 60000, 0))
            set_clock_offset(node.offset_file, skew)
            log.append((t, node.label, f"clock {skew:+d} ms"))


@pytest.mark.timeout(int(SECONDS) + 150)
def test_nemesis_never_repeats_a_value(tmp_path):
    try:
        consul_bin = find_consul_binary(build=True)
    except Exception as e:
        pytest.skip(f"no Consul agent available: {e}")
    clock_faults = build_missing("asan") is None
    binary = ASAN_BIN if clock_faults else None
    rng = random.Random(SEED)
    agent = ConsulAgent(binary=consul_bin)
    agent.start()
    name = uniq("nem").replace("-", "")
    nodes = [Node(tmp_path / f"s{k}-{i}", agent, name, k, i, binary)
             for k in range(1, SHARDS + 1) for i in range(2)]
    results, errors, log = [], [], []
    try:
        for n in nodes:
            n.start()
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(nodes, deadline + 10, results, errors,
                                          random.Random(SEED + i)))
                   for i in range(4)]
        for th in threads:
            th.start()
        nemesis(nodes, deadline, rng, log, clock_faults)
        # Quiet phase: heal everything, let the clients run on a little.
        for n in nodes:
            n.relay.heal()
            set_clock_offset(n.offset_file, 0)
        for th in threads:
            th.join(timeout=30)
    finally:
        for n in nodes:
            try:
                if n.server.proc and n.server.proc.poll() is None:
                    n.server.proc.send_signal(signal.SIGCONT)
                n.server.kill()
            except Exception:
                pass
            n.relay.close()
        agent.stop()

    story = f"seed {SEED}; faults:\n" + "\n".join(f"  {t:.1f} {who}: {what}" for t, who, what in log)
    seen = {}
    dups = []
    by_shard = defaultdict(int)
    for shard, label, dtype, entity, v in results:
        key = (entity, v) if dtype != "snowflake" else ("snowflake", v)
        if key in seen:
            dups.append((key, seen[key], label))
        else:
            seen[key] = label
        if dtype != "snowflake":
            assert v % SHARDS == shard % SHARDS, f"{v} from shard {shard} ({label}) is outside its residue class; {story}"
        by_shard[shard] += 1
    assert not dups, f"{len(dups)} repeated values, e.g. {dups[:5]}; {story}"
    assert not errors, f"unexpected statuses: {errors[:5]}; {story}"
    # The run must have exercised something: every shard handed out values.
    assert all(by_shard[k] > 50 for k in range(1, SHARDS + 1)), f"too few values: {dict(by_shard)}; {story}"
    print(f"nemesis: {len(results)} values, {len(log)} faults, per shard {dict(by_shard)}; {story}")
