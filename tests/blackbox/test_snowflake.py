"""Snowflake layouts and GET /api/parse-snowflake/{id}."""
import pytest

from bbutil import (ISO_MS_RE, LONG_MAX, SONYFLAKE_EPOCH_MS, TWITTER_EPOCH_MS,
                    assert_error, decompose, iso_ms, now_ms, ok, uniq)


def parse(s, id_):
    return ok(s.get(f"/api/parse-snowflake/{id_}"))


def check_parse(body, id_, layout):
    ts, machine, seq = decompose(layout, int(id_))
    assert body["id"] == str(id_)
    assert body["timestamp"] == ts
    assert body["date"] == iso_ms(ts)
    assert ISO_MS_RE.match(body["date"])
    assert body["machineId"] == machine
    assert body["sequence"] == seq
    assert {"id", "timestamp", "date", "machineId", "shardId", "sequence"} <= set(body)


def test_round_trip_sonyflake(srv):
    before = now_ms()
    id_ = srv.take(uniq(), "snowflake")
    after = now_ms()
    body = parse(srv, id_)
    check_parse(body, id_, "sonyflake")
    assert before - 3000 <= body["timestamp"] <= after + 3000
    assert body["machineId"] == 1 and body["shardId"] == 1


def test_round_trip_sonyflake_shard_2(srv23):
    id_ = srv23.take(uniq(), "snowflake")
    body = parse(srv23, id_)
    check_parse(body, id_, "sonyflake")
    assert body["machineId"] == 2 and body["shardId"] == 2
    assert abs(body["timestamp"] - now_ms()) < 3000


def test_round_trip_batch_sequences(srv):
    vals = ok(srv.batch(uniq(), 600, "snowflake"))["values"]
    seen = set()
    for v in vals[::37] + [vals[-1]]:
        body = parse(srv, v)
        check_parse(body, v, "sonyflake")
        seen.add((body["timestamp"], body["sequence"]))
    assert len(seen) == len(vals[::37]) + 1


def test_sonyflake_throughput_respects_sequence_bits(srv):
    """600 IDs need at least 3 ticks of 10 ms (256 per tick): the batch spans them."""
    vals = [int(v) for v in ok(srv.batch(uniq(), 600, "snowflake"))["values"]]
    ticks = {v >> 24 for v in vals}
    assert len(ticks) >= 3
    for t in ticks:
        assert sum(1 for v in vals if v >> 24 == t) <= 256


def test_parse_zero_is_epoch(srv):
    body = parse(srv, 0)
    assert body["timestamp"] == SONYFLAKE_EPOCH_MS
    assert body["date"] == "2022-01-01T00:00:00.000Z"
    assert (body["machineId"], body["sequence"]) == (0, 0)


def test_parse_max(srv):
    check_parse(parse(srv, LONG_MAX), LONG_MAX, "sonyflake")


def test_parse_handcrafted_sonyflake(srv):
    id_ = (12345 << 24) | (7 << 16) | 3
    check_parse(parse(srv, id_), id_, "sonyflake")


@pytest.mark.parametrize("bad", ["abc", "-1", "9223372036854775808", "18446744073709551616",
                                 "99999999999999999999999", "1.5", "0x10", "12a", "1e5",
                                 "%2B1", "%201", "1%00"])
def test_parse_bad_ids_are_400(srv, bad):
    assert_error(srv.get(f"/api/parse-snowflake/{bad}"), 400)


def test_parse_empty_id_is_4xx(srv):
    r = srv.get("/api/parse-snowflake/")
    assert r.status in (400, 404), r
    assert_error(r, r.status)


@pytest.fixture(scope="module")
def twitter(module_servers):
    return module_servers(env={"SNOWFLAKE_LAYOUT": "twitter"})


def test_round_trip_twitter(twitter):
    id_ = twitter.take(uniq(), "snowflake")
    body = parse(twitter, id_)
    check_parse(body, id_, "twitter")
    assert body["machineId"] == 0                 # SHARD_ID - 1
    assert abs(body["timestamp"] - now_ms()) < 3000


def test_twitter_batch_strictly_increasing_and_decodes(twitter):
    vals = [int(v) for v in ok(twitter.batch(uniq(), 10000, "snowflake"))["values"]]
    assert all(a < b for a, b in zip(vals, vals[1:]))
    for v in vals[::1000]:
        ts, machine, seq = decompose("twitter", v)
        assert machine == 0 and seq < 4096
        assert abs(ts - now_ms()) < 5000


def test_parse_zero_twitter_is_its_epoch(twitter):
    body = parse(twitter, 0)
    assert body["timestamp"] == TWITTER_EPOCH_MS
    assert body["date"] == "2024-01-01T00:00:00.000Z"


def test_custom_layout_round_trip(servers):
    s = servers(env={"SNOWFLAKE_LAYOUT": "custom:2/10/12/1700000000000", "MACHINE_ID": 77})
    id_ = int(s.take(uniq(), "snowflake"))
    body = parse(s, id_)
    tick, machine, seq = id_ >> 22, (id_ >> 10) & 0xFFF, id_ & 0x3FF
    assert body["timestamp"] == 1700000000000 + tick * 2
    assert (body["machineId"], body["sequence"]) == (machine, seq) == (77, seq)
    assert abs(body["timestamp"] - now_ms()) < 3000


def test_machine_id_override_in_ids(servers):
    s = servers(env={"MACHINE_ID": 40000})
    id_ = s.take(uniq(), "snowflake")
    assert decompose("sonyflake", int(id_))[1] == 40000
    assert parse(s, id_)["machineId"] == 40000
