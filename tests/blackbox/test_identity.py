"""Shard identity of a DATA_DIR (no Consul needed): a journal belongs to the
shard, shard count, snowflake layout and machine ID that wrote it; another
configuration is refused at startup, and `shardid reidentify` moves it on
purpose, carrying every mark over by value."""
import pytest

from bbutil import run_bin, uniq


def env_for(server, **cfg):
    e = {"DATA_DIR": str(server.data_dir)}
    e.update({k: str(v) for k, v in cfg.items()})
    return e


@pytest.mark.parametrize("change", [
    {"SHARD_ID": 3, "TOTAL_SHARDS": 3},
    {"SHARD_ID": 2, "TOTAL_SHARDS": 4},
    {"SHARD_ID": 2, "TOTAL_SHARDS": 3, "SNOWFLAKE_LAYOUT": "twitter"},
    {"SHARD_ID": 2, "TOTAL_SHARDS": 3, "MACHINE_ID": 9},
], ids=["shard", "total", "layout", "machine"])
def test_data_dir_of_another_identity_is_refused(servers, change):
    s = servers(env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    s.take(uniq(), "long")
    s.stop()
    s.env.update({k: str(v) for k, v in change.items()})
    s.start(wait=False)
    rc = s.proc.wait(5)
    out = s.output()
    assert rc == 2, out
    assert "holds the state of shard=2 totalShards=3 layout=sonyflake machineId=2" in out
    assert "this instance is configured as shard=%s totalShards=%s" % (
        change["SHARD_ID"], change["TOTAL_SHARDS"]) in out
    # The journal was left alone: the old configuration still starts and continues.
    s.env.update({"SHARD_ID": "2", "TOTAL_SHARDS": "3"})
    for k in ("SNOWFLAKE_LAYOUT", "MACHINE_ID"):
        s.env.pop(k, None)
    s.start()
    assert s.take(uniq(), "int") % 3 == 2


def test_reidentify_carries_marks_over_by_value(servers):
    s = servers(env={"SHARD_ID": 2, "TOTAL_SHARDS": 3})
    order, flake = uniq("order"), uniq("sf")
    old = [int(v) for v in s.batch(order, 40, "long").json["values"]]
    old_sf = [int(v) for v in s.batch(flake, 50, "snowflake").json["values"]]
    s.stop()

    new = {"SHARD_ID": 3, "TOTAL_SHARDS": 4, "SNOWFLAKE_LAYOUT": "twitter"}
    r = run_bin(["reidentify"], env=env_for(s, **new))
    assert r.returncode == 0, r.stderr
    assert "moved from shard=2 totalShards=3 layout=sonyflake machineId=2 to " \
           "shard=3 totalShards=4 layout=twitter machineId=2" in r.stdout
    assert "snowflakes continue from tick" in r.stdout
    # Twice is a no-op.
    r = run_bin(["reidentify"], env=env_for(s, **new))
    assert r.returncode == 0 and "nothing to do" in r.stdout

    s.env.update({k: str(v) for k, v in new.items()})
    s.start()
    vals = [int(v) for v in s.batch(order, 40).json["values"]]
    assert min(vals) > max(old) and all(v % 4 == 3 for v in vals)
    sfs = [int(v) for v in s.batch(flake, 50).json["values"]]
    assert min(sfs) > max(old_sf)


def test_reidentify_refuses_with_consul_and_without_identity(servers):
    s = servers(env={"SHARD_ID": 1, "TOTAL_SHARDS": 2})
    s.take(uniq(), "int")
    s.stop()
    r = run_bin(["reidentify"], env=env_for(s, SHARD_ID=1, TOTAL_SHARDS=3,
                                            CONSUL_URL="http://127.0.0.1:1"))
    assert r.returncode == 2 and "without CONSUL_URL" in r.stderr
    r = run_bin(["reidentify"], env={"DATA_DIR": str(s.workdir / "empty"), "SHARD_ID": "1"})
    assert r.returncode == 2 and "records no identity" in r.stderr
