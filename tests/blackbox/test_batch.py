"""GET /api/next-batch/{entity}."""
import pytest

from bbutil import UUID_RE, assert_error, ok, uniq


def check_shape(body, entity, dtype, n, shard=1):
    assert {"entityName", "dataType", "value", "shard", "batchSize", "startValue",
            "endValue", "values"} <= set(body), body
    assert (body["entityName"], body["dataType"], body["shard"], body["batchSize"]) == \
        (entity, dtype, shard, n)
    assert len(body["values"]) == n
    assert body["value"] == body["startValue"] == body["values"][0]
    assert body["endValue"] == body["values"][-1]


def test_int_batch_is_consecutive(srv):
    e = uniq()
    body = ok(srv.batch(e, 5, "int"))
    check_shape(body, e, "int", 5)
    assert body["values"] == [1, 2, 3, 4, 5]
    assert all(type(v) is int for v in body["values"])
    assert (body["startValue"], body["endValue"]) == (1, 5)
    assert srv.take(e) == 6


def test_int_batch_on_shard_2_of_3(srv23):
    e = uniq()
    body = ok(srv23.batch(e, 4, "int"))
    check_shape(body, e, "int", 4, shard=2)
    assert body["values"] == [2, 5, 8, 11]
    assert ok(srv23.batch(e, 2))["values"] == [14, 17]


def test_long_batch_values_are_strings(srv):
    e = uniq()
    body = ok(srv.batch(e, 3, "long"))
    check_shape(body, e, "long", 3)
    assert body["values"] == ["1", "2", "3"]
    assert (body["startValue"], body["endValue"]) == ("1", "3")


def test_batch_continues_after_single_ids(srv):
    e = uniq()
    assert [srv.take(e, "int") for _ in range(3)] == [1, 2, 3]
    assert ok(srv.batch(e, 3))["values"] == [4, 5, 6]
    assert srv.take(e) == 7


def test_snowflake_batch_strictly_increasing(srv):
    e = uniq()
    body = ok(srv.batch(e, 1000, "snowflake"))
    check_shape(body, e, "snowflake", 1000)
    ints = [int(v) for v in body["values"]]
    assert all(isinstance(v, str) for v in body["values"])
    assert all(a < b for a, b in zip(ints, ints[1:]))
    later = int(srv.take(e))
    assert later > ints[-1]


@pytest.mark.parametrize("n", [8, 22])
def test_uuid_batch(srv, n):
    e = uniq()
    body = ok(srv.batch(e, 200, f"uuid{n}"))
    check_shape(body, e, f"uuid{n}", 200)
    vals = body["values"]
    assert all(len(v) == n and UUID_RE.match(v) for v in vals)
    assert len(set(vals)) == 200


def test_batch_of_one(srv):
    e = uniq()
    body = ok(srv.batch(e, 1, "int"))
    check_shape(body, e, "int", 1)
    assert body["values"] == [1]


def test_max_batch_size_default_is_10000(srv):
    e = uniq()
    body = ok(srv.batch(e, 10000, "int"))
    assert body["values"] == list(range(1, 10001))
    assert_error(srv.batch(e, 10001), 400)
    assert srv.take(e) == 10001


@pytest.mark.parametrize("size", ["0", "-1", "10001", "abc", "1.5", "", "1e3", "0x10",
                                  "99999999999999999999", "5abc", "%205"])
def test_bad_batch_size_is_400_and_hands_out_nothing(srv, size):
    e = uniq()
    assert srv.take(e, "int") == 1
    assert_error(srv.get(f"/api/next-batch/{e}?dataType=int&batchSize={size}"), 400)
    assert srv.take(e) == 2


def test_missing_batch_size_is_400(srv):
    e = uniq()
    assert_error(srv.get(f"/api/next-batch/{e}?dataType=int"), 400)
    assert_error(srv.status(e), 404)


def test_batch_type_mismatch(srv):
    e = uniq()
    srv.take(e, "long")
    assert_error(srv.batch(e, 3, "int"), 400, "Type mismatch")
    assert srv.take(e) == "2"


def test_batch_unknown_type(srv):
    e = uniq()
    assert_error(srv.batch(e, 3, "integer"), 400)
    assert_error(srv.status(e), 404)


def test_batch_default_type_is_snowflake(srv):
    e = uniq()
    body = ok(srv.batch(e, 3))
    assert body["dataType"] == "snowflake"


def test_max_batch_size_config(servers):
    s = servers(env={"MAX_BATCH_SIZE": 50})
    assert len(ok(s.batch("a", 50, "int"))["values"]) == 50
    assert_error(s.batch("a", 51, "int"), 400)
    assert_error(s.batch("b", 51, "uuid8"), 400)


def test_max_batch_size_flag(servers):
    s = servers(args=["--max-batch-size", "20000"])
    assert len(ok(s.batch("a", 20000, "long"))["values"]) == 20000
