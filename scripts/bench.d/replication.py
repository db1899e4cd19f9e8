"""The benchmark's replication part (scripts/bench): shardid with CONSUL_URL set.

Imported by scripts/bench, which hands itself over with init() so this module
uses the same process, wrk and HTTP helpers. A throw-away `consul agent -dev`
on loopback (tests/consul_agent.py; binary $CONSUL_BIN, else
.tools/consul/consul; never built here) serves the whole run; every instance
or takeover run gets its own SERVICE_NAME, so lock keys and state never meet.
The agent inherits the driver's CPU (the client core): it is idle during the
throughput runs except for session renewals and the rare reservation txn.

Measured here (the single-ID throughput with replication on is part of the
bench's A/B rounds, see ab_rounds there):
  first_use   first next-id of a fresh entity (long) on one keep-alive
              connection, replication on and off alternating, median/p99;
  sustained   reservations, txns, waits and fsyncs per second under sustained
              single-ID load (50 connections, long) on 1 and 1,000 entities;
  takeover    SIGTERM / kill -9 of the holder with a standby running: signal
              -> the standby's first 200 on next-id (and its values continue
              above the holder's);
  merge       N entities created without Consul on tmpfs, pushed to KV by a
              first start with Consul on that journal, then exec -> first 200
              on next-id of an existing entity for a fresh instance with an
              empty DATA_DIR (the merge of N entities from KV).
"""
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import time

B = None            # the scripts/bench module, set by init()
CONSUL_POLL_S = 0.001   # poll interval while waiting for an instance behind Consul
SESSION_TTL_S = 10      # shardid's Consul session TTL (src/consul_core.h)
RENEW_S = SESSION_TTL_S / 3   # it renews every TTL/3; Consul expires a session 2 x TTL after the last renewal
MERGE_DEADLINE_S = 60   # a fresh instance must serve within this after exec (merge from KV)


def init(bench):
    global B
    B = bench


def log(msg):
    B.log(msg)


def pct(xs, q):
    """q-th percentile (nearest rank) of xs."""
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(q / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---------------------------------------------------------------- the agent

class Consul:
    """The run's Consul agent, or why there is none (self.skip)."""

    def __init__(self, ctx, disabled):
        self.agent, self.skip, self.version, self.binary = None, None, None, None
        self.ctx = ctx
        if disabled:
            self.skip = "--no-consul given"
            return
        sys.path.insert(0, os.path.join(B.ROOT, "tests"))
        try:
            from consul_agent import ConsulAgent, find_consul_binary
        except ImportError as e:
            self.skip = f"cannot import tests/consul_agent.py: {e}"
            return
        try:
            self.binary = find_consul_binary(build=False)
        except RuntimeError as e:
            self.skip = (f"no Consul binary ({e}); build it with scripts/consul-build "
                         f"or set CONSUL_BIN")
            return
        self.version = B.tool_version([self.binary, "version"])
        self.agent = ConsulAgent(binary=self.binary, log_path=os.path.join(ctx.work, "consul.log"))
        try:
            self.agent.start()
        except (RuntimeError, OSError, TimeoutError) as e:
            self.agent = None
            self.skip = f"the Consul agent did not start: {e}"
            return
        log(f"Consul agent {self.version} at {self.agent.url} (pid {self.agent.proc.pid})")
        self.n = 0

    @property
    def on(self):
        return self.agent is not None

    def service(self, what):
        """A fresh SERVICE_NAME ([A-Za-z0-9._-], at most 63)."""
        self.n += 1
        return f"bench-{what}-{self.n}"

    def env(self, svc):
        return {"CONSUL_URL": self.agent.url, "SERVICE_NAME": svc, "CONTAINER_IP": "127.0.0.1",
                "SHARD_ID": "1", "TOTAL_SHARDS": "1"}

    def kv_stats(self, svc):
        """(bucket keys, bytes of their values) under <svc>/shards/1/e/."""
        st, val = self.agent.request("GET", f"/v1/kv/{svc}/shards/1/e/?recurse", timeout=60)
        if st == 404 or not val:
            return 0, 0
        if st != 200 or not isinstance(val, list):
            raise B.BenchError(f"Consul KV listing returned {st}")
        import base64
        return len(val), sum(len(base64.b64decode(x.get("Value") or "")) for x in val)

    def stop(self):
        if self.agent is not None:
            self.agent.stop()
            self.agent = None


def health(port):
    """(status, parsed /health JSON or None)."""
    st, body = B.get(port, "/health", timeout=5)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, None


def kv_instance(ctx, consul, name, svc, data_dir, layout="twitter"):
    """A Shardid with replication on (not started)."""
    return B.Shardid(ctx.binary, layout, data_dir, ctx.work, name, env=consul.env(svc))


def start_serving(s, deadline_s=30.0):
    """Start a replicated instance, wait for /health 200 (lock held, state
    synced); returns seconds from spawn."""
    t = s.start(deadline_s=deadline_s, poll=CONSUL_POLL_S)
    st, h = health(s.port)
    c = (h or {}).get("consul", {})
    if c.get("lock") != "held" or c.get("state") != "synced":
        raise B.BenchError(f"{s.name}: /health {st} {h} after its first 200")
    return t


def poll_200(port, path, proc, deadline_s, interval):
    """Poll path on one keep-alive connection (reconnecting when needed) until
    a 200; returns (perf_counter at the 200, body, polls)."""
    t0 = time.perf_counter()
    c, polls, last = None, 0, None
    try:
        while True:
            if proc is not None and proc.poll() is not None:
                raise B.BenchError(f"server exited with {proc.returncode} while polling {path}")
            if time.perf_counter() - t0 > deadline_s:
                raise B.BenchError(f"no 200 on {path} within {deadline_s}s (last: {last})")
            try:
                if c is None:
                    c = B.Client(port, timeout=5)
                st, body = c.request(path)
                polls += 1
                if st == 200:
                    return time.perf_counter(), body, polls
                last = (st, body[:160])
            except (OSError, B.BenchError) as e:
                last = repr(e)
                if c is not None:
                    c.close()
                c = None
            time.sleep(interval)
    finally:
        if c is not None:
            c.close()


def value_of(body):
    return int(json.loads(body)["value"])


# ---------------------------------------------------------------- 2: first use

def first_use(ctx, off, on, n):
    """First next-id of n fresh entities (long), alternating between the
    instance without Consul (off) and the one with replication on (on), one
    keep-alive connection each; milliseconds per request."""
    res = {"off": [], "on": []}
    m0 = {k: B.metrics(s.port) for k, s in (("off", off), ("on", on))}
    conns = {"off": B.Client(off.port, timeout=10), "on": B.Client(on.port, timeout=10)}
    try:
        for i in range(n):
            for k in (("off", "on") if i % 2 == 0 else ("on", "off")):
                path = f"/api/next-id/fu-{i}?dataType=long"
                t0 = time.perf_counter()
                st, body = conns[k].request(path)
                dt = time.perf_counter() - t0
                if st != 200:
                    raise B.BenchError(f"first use of fu-{i} (replication {k}) returned {st}: {body[:200]}")
                res[k].append(dt * 1000)
    finally:
        for c in conns.values():
            c.close()
    m1 = {k: B.metrics(s.port) for k, s in (("off", off), ("on", on))}
    out = {"entities": n}
    for k in ("off", "on"):
        xs = res[k]
        d = lambda m: m1[k].get(m, 0) - m0[k].get(m, 0)   # noqa: E731
        out[k] = {"ms": xs, "p50_ms": statistics.median(xs), "p99_ms": pct(xs, 99),
                  "max_ms": max(xs), "mean_ms": statistics.fmean(xs),
                  "fsyncs": d("shardid_journal_fsyncs_total"),
                  "txns": d("shardid_consul_state_txns_total"),
                  "txn_failures": d("shardid_consul_state_txn_failures_total"),
                  "waits": d("shardid_consul_state_waits_total")}
    log(f"first use of {n} new entities (long): replication on p50 {out['on']['p50_ms']:.2f} ms "
        f"p99 {out['on']['p99_ms']:.2f} ms ({out['on']['txns']:.0f} txns, {out['on']['waits']:.0f} waits); "
        f"off p50 {out['off']['p50_ms']:.2f} ms p99 {out['off']['p99_ms']:.2f} ms")
    return out


# ---------------------------------------------------------------- 3: sustained

def sustained(ctx, on, secs):
    """Reservations, txns, waits and fsyncs per second under sustained
    single-ID load on the replicated instance: 1 entity and 1,000 entities."""
    out = {}
    m0 = B.metrics(on.port)
    x = B.wrk(ctx, on.port, "/api/next-id/rep-one?dataType=long", 50, secs)
    m1 = B.metrics(on.port)
    out["one"] = summary(x, m0, m1)
    n = 1000
    base = B.metrics(on.port).get("shardid_entities", 0)
    t0 = time.time()
    B.wrk(ctx, on.port, "/", 50, 120, ("rotate.lua",), (n, "rep-m-", "long"),
          stop_when=lambda: B.metrics(on.port).get("shardid_entities", 0) >= n + base)
    create_s = time.time() - t0
    m0 = B.metrics(on.port)
    x = B.wrk(ctx, on.port, "/", 50, secs, ("rotate.lua",), (n, "rep-m-", "long"))
    m1 = B.metrics(on.port)
    out["many"] = summary(x, m0, m1)
    out["many"]["entities"] = n
    out["many"]["create_seconds"] = create_s
    for k, label in (("one", "1 entity"), ("many", "1000 entities")):
        r = out[k]
        log(f"replication, sustained {label}: {r['ids_per_s']:.0f} IDs/s, "
            f"{r['reservations_per_s']:.1f} reservations/s, {r['txns_per_s']:.1f} txns/s, "
            f"{r['waits']:.0f} waits, {r['txn_failures']:.0f} txn failures, {r['fsyncs_per_s']:.1f} fsyncs/s, "
            f"errors {r['errors']}")
    return out


def summary(x, m0, m1):
    r = B.dur_summary(x, m0, m1)
    secs = r["seconds"]
    for key, m in (("txns", "shardid_consul_state_txns_total"),
                   ("txn_failures", "shardid_consul_state_txn_failures_total"),
                   ("waits", "shardid_consul_state_waits_total")):
        r[key] = m1.get(m, 0) - m0.get(m, 0)
    r["txns_per_s"] = r["txns"] / secs if secs else 0.0
    return r


# ---------------------------------------------------------------- 4: takeover

def takeover(ctx, consul, sig, runs):
    """Holder A serving, standby B refusing (lock held elsewhere); send sig to
    A and time until B's first 200 on next-id. Checks that B's values lie above
    everything A handed out (long and snowflake).

    kill -9: Consul drops the session 2 x TTL after its last renewal, so the
    takeover time depends on where in A's renewal cycle (every TTL/3) the kill
    falls. Run i kills A at phase (i + 0.5) / runs of a cycle, after its first
    renewal, which spreads the runs evenly over 16.7-20 s instead of always
    hitting the worst case of a kill just after the session was created."""
    label = "SIGTERM" if sig == signal.SIGTERM else "kill -9"
    out = {"signal": label, "runs": []}
    poll = 0.001 if sig == signal.SIGTERM else 0.005
    for i in range(runs):
        svc = consul.service("term" if sig == signal.SIGTERM else "kill")
        base = os.path.join(ctx.disk, svc)
        a = kv_instance(ctx, consul, f"takeover-{svc}-a", svc, os.path.join(base, "a"))
        b = kv_instance(ctx, consul, f"takeover-{svc}-b", svc, os.path.join(base, "b"))
        try:
            start_serving(a)
            t_session = time.perf_counter()   # A's session was created just before this
            c = B.Client(a.port)
            last = {}
            for path, key in (("/api/next-id/to-long?dataType=long", "long"),
                              ("/api/next-id/to-sf?dataType=snowflake", "sf")):
                for _ in range(50):
                    st, body = c.request(path)
                    if st != 200:
                        raise B.BenchError(f"holder {svc} answered {st} on {path}: {body[:200]}")
                    last[key] = value_of(body)
            c.close()
            b.launch()
            t_standby = time.time()
            while True:
                if b.proc.poll() is not None:
                    raise B.BenchError(f"standby {svc} exited with {b.proc.returncode}")
                try:
                    st, h = health(b.port)
                    if (h or {}).get("consul", {}).get("lock") == "held-elsewhere":
                        break
                except (OSError, B.BenchError):
                    pass
                if time.time() - t_standby > 30:
                    raise B.BenchError(f"standby {svc} never reported the lock held elsewhere")
                time.sleep(0.01)
            time.sleep(0.3)   # its blocking query on the lock key is in flight by now
            phase = None
            if sig == signal.SIGKILL:
                phase = (i + 0.5) / runs
                wait = t_session + RENEW_S * (1 + phase) - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            t0 = time.perf_counter()
            os.killpg(a.proc.pid, sig)
            t1, body, polls = poll_200(b.port, "/api/next-id/to-long?dataType=long", b.proc,
                                       60, poll)
            took = t1 - t0
            first_long = value_of(body)
            st, body = B.get(b.port, "/api/next-id/to-sf?dataType=snowflake")
            if st != 200:
                raise B.BenchError(f"new holder {svc} answered {st} on snowflake: {body[:200]}")
            first_sf = value_of(body)
            rc = B.stop(a.proc, timeout=10)
            a.proc = None
            ok = first_long > last["long"] and first_sf > last["sf"]
            run = {"service": svc, "seconds": took, "polls": polls, "holder_exit": rc,
                   "renewal_phase": phase, "since_session_s": t0 - t_session,
                   "holder_last_long": last["long"], "standby_first_long": first_long,
                   "holder_last_sf": str(last["sf"]), "standby_first_sf": str(first_sf),
                   "values_above": ok}
            out["runs"].append(run)
            log(f"takeover after {label} #{i + 1}"
                f"{f' (at {phase:.2f} of a renewal cycle)' if phase is not None else ''}: "
                f"{took * 1000:.1f} ms to the standby's first 200 "
                f"(long {last['long']} -> {first_long}, snowflake {'above' if first_sf > last['sf'] else 'NOT above'}"
                f", holder exit {rc})")
            if not ok:
                log(f"WARNING: the standby repeated or went below the holder's values ({svc}): {run}")
        finally:
            for s in (a, b):
                if s.proc is not None:
                    s.stop()
            shutil.rmtree(base, ignore_errors=True)
    secs = [r["seconds"] for r in out["runs"]]
    out["median_s"] = statistics.median(secs)
    out["min_s"], out["max_s"] = min(secs), max(secs)
    out["values_above"] = all(r["values_above"] for r in out["runs"])
    return out


# ---------------------------------------------------------------- 5: merge

def startup_merge(ctx, consul, n, reps):
    """n entities created without Consul (journal on tmpfs), pushed to KV by a
    start with Consul on that journal; then exec -> first 200 on next-id of an
    existing entity for fresh instances with an empty DATA_DIR (merge from KV)."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    d0 = os.path.join(B.mktemp(shm, "shardid-bench-merge."), "data")
    svc = consul.service("merge")
    out = {"entities": n, "service": svc}

    # 1. create n entities without Consul (entity creation is not fsync-bound on tmpfs)
    p0 = B.Shardid(ctx.binary, "twitter", d0, ctx.work, "merge-create")
    p0.start()
    t0 = time.time()
    B.wrk(ctx, p0.port, "/", 50, 300, ("rotate.lua",), (n, "kv-", "long"),
          stop_when=lambda: B.metrics(p0.port).get("shardid_entities", 0) >= n)
    created = B.metrics(p0.port).get("shardid_entities", 0)
    out["create_seconds"] = time.time() - t0
    p0.stop()
    if created < n:
        raise B.BenchError(f"only {created:.0f} of {n} entities created")
    out["journal_bytes"] = B.dir_bytes(d0)
    log(f"merge: {n} entities created without Consul in {out['create_seconds']:.1f} s "
        f"(journal {out['journal_bytes'] / B.MIB:.1f} MiB on tmpfs)")

    # 2. the same journal with Consul: the merge pushes every entity to KV
    p1 = kv_instance(ctx, consul, "merge-push", svc, d0)
    out["push_seconds"] = start_serving(p1, deadline_s=300)
    m = B.metrics(p1.port)
    out["push_txns"] = m.get("shardid_consul_state_txns_total", 0)
    out["push_txn_failures"] = m.get("shardid_consul_state_txn_failures_total", 0)
    probe = [f"kv-{i * (n // max(1, reps))}" for i in range(reps)]
    current = {}
    for name in probe:
        st, body = B.get(p1.port, f"/api/status/{name}")
        if st != 200:
            raise B.BenchError(f"/api/status/{name} returned {st}: {body[:200]}")
        current[name] = int(json.loads(body)["currentValue"])
    p1.stop()
    out["kv_buckets"], out["kv_value_bytes"] = consul.kv_stats(svc)
    log(f"merge: first start with Consul pushed {n} entities to KV in {out['push_seconds'] * 1000:.0f} ms "
        f"(exec -> first 200; {out['push_txns']:.0f} txns, {out['kv_buckets']} bucket keys, "
        f"{out['kv_value_bytes'] / B.MIB:.2f} MiB of values)")

    # 3. fresh instances, empty DATA_DIR: exec -> first 200 on next-id (merge from KV).
    # A failure is kept with the results so far (the push figures still stand).
    times, checks = [], []
    out["startup_s"], out["checks"] = times, checks
    for r, name in enumerate(probe):
        d = os.path.join(ctx.disk, f"merge-{r}")
        s = kv_instance(ctx, consul, f"merge-fresh-{r}", svc, d)
        s.port = B.free_port()
        os.makedirs(d)
        t0 = time.perf_counter()
        s.launch()
        try:
            t1, body, _ = poll_200(s.port, f"/api/next-id/{name}?dataType=long", s.proc,
                                   MERGE_DEADLINE_S, CONSUL_POLL_S)
            times.append(t1 - t0)
            v = value_of(body)
            ents = B.metrics(s.port).get("shardid_entities", 0)
            checks.append({"entity": name, "before": current[name], "first": v,
                           "above": v > current[name], "entities": ents})
            if v <= current[name] or ents < n:
                log(f"WARNING: fresh instance after the merge: {name} gave {v} "
                    f"(the journal's instance had handed out up to {current[name]}), entities {ents}")
        except B.BenchError as e:
            try:
                _, h = health(s.port)
            except (OSError, B.BenchError):
                h = None
            why = (h or {}).get("reason") or str(e)
            out["error"] = f"a fresh instance did not serve within {MERGE_DEADLINE_S} s: {why}"
            out["error_health"] = h
            log(f"merge FAILED: {out['error']} (/health {json.dumps(h)}; log {s.log})")
            break
        finally:
            s.stop()
            shutil.rmtree(d, ignore_errors=True)
    if times:
        out["startup_median_s"] = statistics.median(times)
    out["values_above"] = bool(checks) and all(c["above"] and c["entities"] >= n for c in checks)

    # 4. reference: the same entities from the local journal, no Consul
    ref = []
    for r in range(reps):
        s = B.Shardid(ctx.binary, "twitter", d0, ctx.work, "merge-local")
        s.port = B.free_port()
        t0 = time.perf_counter()
        s.launch()
        try:
            t1, _, _ = poll_200(s.port, f"/api/next-id/kv-{r + 1}?dataType=long", s.proc, 60,
                                CONSUL_POLL_S)
            ref.append(t1 - t0)
        finally:
            s.stop()
    out["local_startup_s"] = ref
    out["local_startup_median_s"] = statistics.median(ref)
    shutil.rmtree(os.path.dirname(d0), ignore_errors=True)
    if times:
        log(f"merge: fresh instance, empty DATA_DIR, {n} entities from KV: exec -> first 200 on next-id "
            f"median {out['startup_median_s'] * 1000:.0f} ms over {len(times)} runs "
            f"(local journal without Consul: {out['local_startup_median_s'] * 1000:.0f} ms)")
    return out


# ---------------------------------------------------------------- report

def report(ctx, R, S, row, check):
    """Rows (section, metric, value, reference) and targets for the
    replication part and the baseline build; fills the summary S."""
    rep = R.get("replication") or {}
    ab50 = R["ab"].get(50, {})

    def rps(k):
        xs = [x["rps"] for x in ab50.get(k, [])]
        return statistics.median(xs) if xs else None

    def lat(k, q):
        xs = [x[q] for x in ab50.get(k, [])]
        return statistics.median(xs) if xs else None

    def errs(k):
        return sum(x["errors"] for x in ab50.get(k, []))

    def ratio(a, b):
        return a / b if a is not None and b else None

    def paired(k, ref):
        """Per-round ratios (the A/B pairs of one round)."""
        return [x["rps"] / y["rps"] for x, y in zip(ab50.get(k, []), ab50.get(ref, [])) if y["rps"]]

    nginx = rps("nginx")
    sec = "replication to Consul KV"
    if rep.get("skipped"):
        row(sec, "replication part", "skipped", note=rep["skipped"], ref="-")
    if rep.get("error"):
        row(sec, "replication part", "failed", note=rep["error"][:160], ref="-")

    if "long_kv" in ab50:
        sec = "replication on (CONSUL_URL set), 50 connections, same rounds"
        kinds = (("sf", "next-id snowflake (twitter)"), ("long", "next-id long"))
        for k, label in kinds:
            on, off = rps(f"{k}_kv"), rps(k)
            S[f"repl_rps_{k}_on_c50"], S[f"repl_rps_{k}_off_c50"] = on, off
            S[f"repl_ratio_{k}_on_vs_nginx_c50"] = ratio(on, nginx)
            S[f"repl_ratio_{k}_on_vs_off_c50"] = ratio(on, off)
            S[f"repl_ratio_{k}_on_vs_off_c50_per_round"] = paired(f"{k}_kv", k)
            row(sec, f"{label} req/s, repl. on", on, nginx, ratio(on, nginx), "req/s",
                f"errors {errs(f'{k}_kv')}" if errs(f"{k}_kv") else "")
        for k, label in kinds:
            note = "per-round " + ", ".join(f"{p:.3f}" for p in paired(f"{k}_kv", k))
            row(sec, f"{label} req/s, on vs off", rps(f"{k}_kv"), rps(k),
                S[f"repl_ratio_{k}_on_vs_off_c50"], "req/s", note, ref="repl. off")
        for k, label in (("sf", "snowflake"), ("long", "long")):
            for q in ("p50_us", "p99_us"):
                S[f"repl_{q}_{k}_on_c50"] = lat(f"{k}_kv", q)
                row(sec, f"{q[:3]} latency {label}, on vs off", lat(f"{k}_kv", q), lat(k, q),
                    None, "us", ref="repl. off")
        cg, cg_off = rep.get("callgrind"), R.get("callgrind")
        if cg and cg_off:
            for k, label in (("sf", "snowflake"), ("long", "long")):
                on, off = cg[f"ir_per_{k}"], cg_off[f"ir_per_{k}"]
                S[f"repl_ir_per_next_id_{k}_on"] = on
                row(sec, f"Ir per next-id {label} (callgrind), on vs off", on, off, ratio(on, off),
                    "Ir", f"{cg['n']} requests; deterministic, unlike req/s on this machine",
                    ref="repl. off")
        elif rep.get("callgrind_error"):
            row(sec, "Ir per next-id (callgrind), on", "failed", note=rep["callgrind_error"][:160],
                ref="repl. off")
        for k, label in (("long", "long"), ("sf", "snowflake")):
            r = S[f"repl_ratio_{k}_on_vs_off_c50"]
            check(f"next-id {label}, replication on vs off, 50 conns", "ratio >= 0.97", r,
                  r is not None and r >= 0.97, "ratio", group="replication targets")

    fu = rep.get("first_use")
    if fu:
        sec = f"replication: first next-id of a new entity (long, keep-alive, {fu['entities']} entities)"
        for q, label in (("p50_ms", "median"), ("p99_ms", "p99"), ("max_ms", "max")):
            S[f"repl_first_use_{q}_on"], S[f"repl_first_use_{q}_off"] = fu["on"][q], fu["off"][q]
            note = ""
            if q == "p50_ms":
                note = (f"on: {fu['on']['txns']:.0f} txns, {fu['on']['waits']:.0f} waits, "
                        f"{fu['on']['fsyncs']:.0f} fsyncs; off: {fu['off']['fsyncs']:.0f} fsyncs")
            row(sec, f"{label} latency, on vs off", fu["on"][q], fu["off"][q],
                ratio(fu["on"][q], fu["off"][q]), "ms", note, ref="repl. off")
    if rep.get("first_use_error"):
        row("replication: first next-id of a new entity", "first use", "failed",
            note=rep["first_use_error"][:160], ref="-")

    su = rep.get("sustained")
    if su:
        secs = su["one"]["seconds"]
        sec = f"replication: sustained single-ID load (50 conns, long, {secs:.0f} s)"
        dur = R.get("durability", {})
        for k, label in (("one", "1 entity"), ("many", "1,000 entities")):
            on, off = su[k], dur.get(k, {})
            for key, what, unit in (("ids_per_s", "IDs/s", "IDs/s"),
                                    ("reservations_per_s", "reservations/s", "1/s"),
                                    ("txns_per_s", "txns/s", "1/s"),
                                    ("fsyncs_per_s", "fsyncs/s", "1/s")):
                S[f"repl_sustained_{k}_{key}"] = on[key]
                ref = off.get(key)
                note = ""
                if key == "txns_per_s":
                    note = (f"{on['txns']:.0f} txns, {on['txn_failures']:.0f} failed, "
                            f"{on['waits']:.0f} requests waited for KV")
                elif key == "reservations_per_s":
                    note = f"{on['reservations']:.0f} reservations on, {off.get('reservations', 0):.0f} off"
                row(sec, f"{label}: {what}, on vs off", on[key], ref, ratio(on[key], ref), unit, note,
                    ref="repl. off")
            S[f"repl_sustained_{k}_waits"] = on["waits"]
            S[f"repl_sustained_{k}_txn_failures"] = on["txn_failures"]
    if rep.get("sustained_error"):
        row("replication: sustained single-ID load", "sustained", "failed",
            note=rep["sustained_error"][:160], ref="-")

    for key, label in (("takeover_term", "SIGTERM"), ("takeover_kill", "kill -9")):
        t = rep.get(key)
        sec = "replication: takeover by a running standby (signal -> its first 200 on next-id)"
        if t:
            S[f"repl_{key}_median_ms"] = t["median_s"] * 1000
            n = len(t["runs"])
            note = f"{n} run(s), {t['min_s'] * 1000:.0f}-{t['max_s'] * 1000:.0f} ms"
            if key == "takeover_kill":
                note += "; kills spread over the holder's renewal cycle, session TTL 10 s"
            row(sec, f"after {label} of the holder (median)", t["median_s"] * 1000, None, None, "ms",
                note, ref="-")
            ok = sum(r["values_above"] for r in t["runs"])
            check(f"takeover after {label}: standby continues above", "no value repeated",
                  f"{ok}/{n} runs", ok == n, group="replication targets")
        if rep.get(f"{key}_error"):
            row(sec, f"after {label} of the holder", "failed", note=rep[f"{key}_error"][:160], ref="-")

    mg = rep.get("merge")
    if mg:
        n = mg["entities"]
        sec = f"replication: startup with {n:,} entities in KV"
        S["repl_merge_entities"] = n
        S["repl_push_ms"] = mg["push_seconds"] * 1000
        row(sec, f"create {n:,} entities without Consul (tmpfs)", mg["create_seconds"], None, None,
            "s", f"journal {mg['journal_bytes'] / B.MIB:.1f} MiB", ref="-")
        row(sec, "push to KV (first start with Consul on it)", mg["push_seconds"] * 1000, None,
            None, "ms", f"exec -> first 200; {mg['push_txns']:.0f} txns, {mg['kv_buckets']} bucket keys, "
            f"{mg['kv_value_bytes'] / B.MIB:.2f} MiB", ref="-")
        if mg.get("startup_median_s") is not None:
            S["repl_merge_startup_ms"] = mg["startup_median_s"] * 1000
        S["repl_local_startup_ms"] = mg["local_startup_median_s"] * 1000
        row(sec, "empty DATA_DIR, merge from KV (median)",
            S["repl_merge_startup_ms"] if mg["startup_s"] else "failed",
            mg["local_startup_median_s"] * 1000,
            ratio(mg.get("startup_median_s"), mg["local_startup_median_s"]), "ms",
            (f"FAILED: {mg['error'][:240]}" if mg.get("error") else
             f"exec -> first 200 on next-id, median of {len(mg['startup_s'])}; reference: "
             f"the journal, no Consul"), ref="local journal")
        ok = sum(c["above"] and c["entities"] >= n for c in mg["checks"])
        tried = len(mg["checks"]) + (1 if mg.get("error") else 0)
        check("fresh instance after the merge serves, continues above",
              "all entities, no value repeated", f"{ok}/{tried} runs",
              ok == tried, group="replication targets")
    if rep.get("merge_error"):
        row("replication: startup with entities in KV", "merge", "failed",
            note=rep["merge_error"][:160], ref="-")

    if "long_base" in ab50:
        sec = "baseline build (--baseline-bin, no Consul), 50 connections, same rounds"
        kinds = (("sf", "snowflake"), ("long", "long"))
        for k, label in kinds:
            base = rps(f"{k}_base")
            S[f"baseline_rps_{k}_c50"] = base
            row(sec, f"next-id {label} req/s, baseline build", base, nginx, ratio(base, nginx), "req/s",
                f"errors {errs(f'{k}_base')}" if errs(f"{k}_base") else "")
        for k, label in kinds:
            base, cur, on = rps(f"{k}_base"), rps(k), rps(f"{k}_kv")
            S[f"baseline_ratio_{k}_this_vs_baseline_c50"] = ratio(cur, base)
            row(sec, f"next-id {label} req/s, this build, repl. off", cur, base, ratio(cur, base),
                "req/s", "per-round " + ", ".join(f"{p:.3f}" for p in paired(k, f"{k}_base")),
                ref="baseline")
            if on is not None:
                S[f"baseline_ratio_{k}_on_vs_baseline_c50"] = ratio(on, base)
                row(sec, f"next-id {label} req/s, this build, repl. on", on, base, ratio(on, base),
                    "req/s", "per-round " + ", ".join(f"{p:.3f}" for p in paired(f"{k}_kv", f"{k}_base")),
                    ref="baseline")
