"""Resharding a Consul cluster (`shardid reshard --total M`): from 2 to 3
shards and back to 2 while clients keep asking every instance for int, long
and snowflake IDs.

Checked over every value any instance answered with: none twice (sequences
per entity, snowflakes across entities); each sequence value lies in its
generation's residue class (value = shard + i * totalShards); every value
of a later generation lies above every value of an earlier one; and an
instance left on the old TOTAL_SHARDS hands out nothing once it has seen
the new configuration (no answer to a request sent after that is a value).
Each generation's instances start on empty DATA_DIRs (new hosts): the
state they continue from is the one `reshard` wrote to Consul.
"""
import collections
import subprocess
import threading
import time

import pytest

from bbutil import BIN, clean_env, uniq
from test_failover import (READY_MAX_S, Hammer, assert_not_owned, cluster,  # noqa: F401 (fixtures)
                           consul_view, fleet, kv_value, name, serving, wait_until)

SWITCH_MAX_S = 10      # an old holder reads the configuration again every 2 s


class Book:
    """Every value answered: (generation, shard, total, who, dtype, entity, value)."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()
        self.where = {}

    def record(self, who, entity, dtype, resp):
        if resp.status != 200:
            return []
        js = resp.json
        vals = [int(v) for v in (js["values"] if "values" in js else [js["value"]])]
        g, k, n = self.where[who]
        with self.lock:
            self.items += [(g, k, n, who, dtype, entity, v) for v in vals]
        return vals

    def count(self, who):
        with self.lock:
            return sum(1 for it in self.items if it[3] == who)

    def check(self):
        problems = []
        seen = collections.defaultdict(list)
        by_gen = collections.defaultdict(list)
        for g, k, n, who, dtype, ent, v in self.items:
            seen[(ent if dtype != "snowflake" else "", v)].append(who)
            by_gen[(dtype, ent if dtype != "snowflake" else "", g)].append(v)
            if dtype != "snowflake" and (v - k) % n:
                problems.append(f"{who} {ent}: {v} is not shard {k} of {n}")
        problems += [f"{key}: handed out by {whos}" for key, whos in seen.items() if len(whos) > 1]
        for (dtype, ent, g), vals in by_gen.items():
            earlier = by_gen.get((dtype, ent, g - 1))
            if earlier and min(vals) <= max(earlier):
                problems.append(f"{dtype} {ent}: generation {g} handed out {min(vals)}, "
                                f"not above generation {g - 1}'s {max(earlier)}")
        assert not problems, "\n".join(problems[:30])
        return len(self.items)


def reshard_cmd(fleet, *args, env=None):
    e = {"CONSUL_URL": fleet.url, "SERVICE_NAME": fleet.name}
    e.update(env or {})
    return subprocess.run([BIN, "reshard", *args], env=clean_env(e), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def run_reshard(fleet, to):
    r = reshard_cmd(fleet, "--total", str(to))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def generation(fleet, book, g, total, ents):
    """Starts shards 1..total of generation g on fresh hosts, with a hammer each."""
    insts, hammers = {}, {}
    for k in range(1, total + 1):
        who = f"g{g}s{k}"
        insts[who] = fleet.start(who, shard=k, total=total)
        book.where[who] = (g, k, total)
    for who, s in insts.items():
        wait_until(lambda: serving(s), READY_MAX_S * 2, f"{who} to serve", fleet)
        assert consul_view(s)["generation"] == g
        scrape = s.get("/metrics").body.decode()
        assert f"\nshardid_cluster_generation {g}\n" in scrape and f"\nshardid_total_shards {total}\n" in scrape
        hammers[who] = Hammer(book, who, s, ents)
        hammers[who].start()
    for who in insts:
        wait_until(lambda: book.count(who) >= 30, 20, f"{who} to hand out values", fleet)
    return insts, hammers


def switch(fleet, book, insts, hammers, to):
    """Reshards to `to` under load; the old instances stop handing out."""
    out = run_reshard(fleet, to)
    assert "resharded" in out and f"to {to} shards" in out, out
    for who, s in insts.items():
        wait_until(lambda: consul_view(s).get("cluster") == "differs", SWITCH_MAX_S,
                   f"{who} to see the new configuration", fleet)
        seen = time.monotonic()
        answers = hammers[who].finish()
        late = [(t0, r) for t0, _, _, r in answers
                if t0 > seen and getattr(r, "status", None) == 200]
        assert not late, f"{who} handed out values after the switch: {late[:3]}"
        assert_not_owned(s.next_id(uniq(), "int"))
        assert consul_view(s).get("lock") != "held"
    # Retired: back at 2 shards, a generation-1 instance would agree again
    # and compete for its shard's lock (safely) with generation 3's.
    for s in insts.values():
        s.stop()
    return out


@pytest.mark.timeout(150)
def test_reshard_2_to_3_and_back_under_load(fleet):
    book = Book()
    ents = {"int": uniq("ri"), "long": uniq("rl"), "snowflake": uniq("rs")}
    g1, h1 = generation(fleet, book, 1, 2, ents)
    out = switch(fleet, book, g1, h1, 3)
    assert kv_value(fleet.agent, f"{fleet.name}/config") == "totalShards=3 layout=sonyflake generation=2"
    assert kv_value(fleet.agent, f"{fleet.name}/shards/1/fence") is None   # generation 1's state is gone
    g2, h2 = generation(fleet, book, 2, 3, ents)
    switch(fleet, book, g2, h2, 2)
    g3, h3 = generation(fleet, book, 3, 2, ents)
    for who in g3:
        h3[who].finish()
    n = book.check()
    print(f"[reshard] {n} values; {out.strip()}")
    assert n > 300, n
    assert "frozen for" in out, out


@pytest.mark.timeout(60)
def test_reshard_refuses_what_it_cannot_do_and_finishes_an_interrupted_run(fleet):
    agent, key = fleet.agent, f"{fleet.name}/config"
    # Bad invocations change nothing.
    for args, env, why in [((), None, "usage: shardid reshard --total M"),
                           (("--total", "0"), None, "usage"),
                           (("--total", "x"), None, "usage"),
                           (("--total", "3"), {"CONSUL_URL": None}, "needs CONSUL_URL"),
                           (("--total", "3"), None, f"no cluster configuration at {key}")]:
        r = reshard_cmd(fleet, *args, env=env)
        assert r.returncode == 2 and why in r.stderr, (args, r.stderr)
    assert kv_value(agent, key) is None

    # A layout with 2 machine bits holds machine IDs 0..3: twitter-style
    # defaults (shard - 1) fit 4 shards, not 5.
    layout = "custom:10/8/2/1640995200000"
    a = fleet.start("a", shard=1, total=2, env={"SNOWFLAKE_LAYOUT": layout})
    wait_until(lambda: serving(a), READY_MAX_S, "a to serve", fleet)
    before = kv_value(agent, key)
    assert before == f"totalShards=2 layout={layout} generation=1"
    r = reshard_cmd(fleet, "--total", "5")
    assert r.returncode == 2 and "holds machine IDs 0..3; 5 shards need up to 4" in r.stderr, r.stderr
    assert kv_value(agent, key) == before
    r = reshard_cmd(fleet, "--total", "2")
    assert r.returncode == 0 and "has 2 shards already: nothing to do" in r.stdout, r.stdout + r.stderr

    # A run that stopped after the freeze: the holder keeps serving what it
    # reserved; a reshard to another count is refused; the same one finishes.
    first = int(a.next_id("frozen", "long").json["value"])
    agent.put(f"/v1/kv/{key}", (before + " reshardTo=3").encode())
    wait_until(lambda: consul_view(a).get("cluster") == "frozen", SWITCH_MAX_S, "a to see the freeze", fleet)
    assert int(a.next_id("frozen", "long").json["value"]) == first + 2   # from its reserved segment
    r = reshard_cmd(fleet, "--total", "4")
    assert r.returncode == 2 and "a reshard to 3 shards is under way" in r.stderr, r.stderr
    r = reshard_cmd(fleet, "--total", "3")
    assert r.returncode == 0 and "frozen already" in r.stdout and "from 2 to 3 shards" in r.stdout, r.stdout
    assert kv_value(agent, key) == f"totalShards=3 layout={layout} generation=2"
    wait_until(lambda: consul_view(a).get("cluster") == "differs", SWITCH_MAX_S, "a to step aside", fleet)
    b = fleet.start("b", shard=1, total=3, env={"SNOWFLAKE_LAYOUT": layout})
    wait_until(lambda: serving(b), READY_MAX_S, "b to serve", fleet)
    nxt = int(b.next_id("frozen", "long").json["value"])
    assert nxt > first + 2 and nxt % 3 == 1, nxt
