"""Three instances (shards 1..3 of 3): values never collide across shards."""
import pytest

from bbutil import decompose, ok

N = 3


@pytest.fixture(scope="module")
def cluster(module_servers):
    return [module_servers(env={"SHARD_ID": k, "TOTAL_SHARDS": N}) for k in range(1, N + 1)]


def take_many(s, entity, dtype, batches, singles):
    vals = []
    for n in batches:
        vals += ok(s.batch(entity, n, dtype))["values"]
    for _ in range(singles):
        vals.append(s.take(entity, dtype))
    return vals


def test_each_instance_reports_its_shard(cluster):
    for k, s in enumerate(cluster, 1):
        assert ok(s.get("/shard-info")) == {"shardId": k, "totalShards": N, "status": "active"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("dtype", ["int", "long"])
def test_sequences_never_collide(cluster, dtype):
    all_vals = []
    for k, s in enumerate(cluster, 1):
        vals = [int(v) for v in take_many(s, f"orders-{dtype}", dtype, [1000, 500, 7], 100)]
        assert vals[0] == k
        assert all((v - k) % N == 0 for v in vals), k
        assert all(a < b for a, b in zip(vals, vals[1:]))
        all_vals += vals
    assert len(all_vals) == len(set(all_vals)) == N * 1607


@pytest.mark.timeout(30)
def test_snowflakes_never_collide(cluster):
    all_vals = []
    for k, s in enumerate(cluster, 1):
        vals = [int(v) for v in take_many(s, "events", "snowflake", [500, 300], 60)]
        assert all(a < b for a, b in zip(vals, vals[1:]))
        assert {decompose("sonyflake", v)[1] for v in vals} == {k}
        all_vals += vals
    assert len(all_vals) == len(set(all_vals))


def test_init_same_start_value_on_every_shard(cluster):
    bodies = [ok(s.init("invoice", "int", 1000), 201) for s in cluster]
    assert [b["startValue"] for b in bodies] == [1000, 1001, 1002]
    assert [b["adjusted"] for b in bodies] == [False, True, True]
    firsts = [s.take("invoice") for s in cluster]
    assert firsts == [1000, 1001, 1002]
    seconds = [s.take("invoice") for s in cluster]
    assert seconds == [1003, 1004, 1005]


def test_reset_same_value_on_every_shard_stays_disjoint(cluster):
    for s in cluster:
        s.take("ticket", "long")
    bodies = [ok(s.reset("ticket", "5000")) for s in cluster]
    nexts = [int(b["nextValue"]) for b in bodies]
    assert sorted(nexts) == [5000, 5001, 5002]
    vals = [int(s.take("ticket")) for s in cluster for _ in range(50)]
    assert len(vals) == len(set(vals))
