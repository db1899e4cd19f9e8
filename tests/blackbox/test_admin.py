"""POST /api/init, PUT /api/reset, DELETE /api/entity, GET /api/status (loopback, no token)."""
import pytest

from bbutil import INT_MAX, LONG_MAX, assert_error, ok, uniq


# ----------------------------------------------------------------- status ---
def test_status_unknown_entity_is_404(srv):
    assert_error(srv.status(uniq()), 404)


def fields(body, expected):
    """The contract's fields must have these values (extra fields are tolerated)."""
    assert {k: body.get(k, "<missing>") for k in expected} == expected, body


def test_status_int(srv):
    e = uniq()
    srv.take(e, "int")
    fields(ok(srv.status(e)), {"entityName": e, "dataType": "int", "shard": 1,
                               "currentValue": 1, "nextValue": 2})


def test_status_int_shard_2_of_3(srv23):
    e = uniq()
    assert ok(srv23.batch(e, 3, "int"))["values"] == [2, 5, 8]
    st = ok(srv23.status(e))
    assert (st["shard"], st["currentValue"], st["nextValue"]) == (2, 8, 11)


def test_status_long_uses_strings(srv):
    e = uniq()
    srv.take(e, "long")
    srv.take(e, "long")
    st = ok(srv.status(e))
    assert (st["dataType"], st["currentValue"], st["nextValue"]) == ("long", "2", "3")


def test_status_snowflake_current_is_last_id(srv):
    e = uniq()
    srv.take(e, "snowflake")
    last = srv.take(e, "snowflake")
    st = ok(srv.status(e))
    assert (st["dataType"], st["currentValue"], st["nextValue"]) == ("snowflake", last, None)


def test_status_snowflake_after_batch(srv):
    e = uniq()
    vals = ok(srv.batch(e, 10, "snowflake"))["values"]
    assert ok(srv.status(e))["currentValue"] == vals[-1]


def test_status_uuid_has_null_values(srv):
    e = uniq()
    srv.take(e, "uuid16")
    fields(ok(srv.status(e)), {"entityName": e, "dataType": "uuid16", "shard": 1,
                               "currentValue": None, "nextValue": None})


def test_status_does_not_hand_out_values(srv):
    e = uniq()
    srv.take(e, "int")
    for _ in range(3):
        ok(srv.status(e))
    assert srv.take(e) == 2


# ------------------------------------------------------------------- init ---
def test_init_without_start_value(srv):
    e = uniq()
    body = ok(srv.init(e, "int"), 201)
    assert {k: body[k] for k in ("entityName", "dataType", "shard", "startValue", "adjusted")} == \
        {"entityName": e, "dataType": "int", "shard": 1, "startValue": 1, "adjusted": False}
    assert isinstance(body["message"], str)
    st = ok(srv.status(e))
    assert (st["currentValue"], st["nextValue"]) == (None, 1)
    assert srv.take(e) == 1


def test_init_with_start_value(srv):
    e = uniq()
    body = ok(srv.init(e, "int", 100), 201)
    assert (body["startValue"], body["adjusted"]) == (100, False)
    assert srv.take(e) == 100
    assert srv.take(e) == 101


@pytest.mark.parametrize("start,first,adjusted", [
    (10, 11, True), (11, 11, False), (12, 14, True), (0, 2, True), (1, 2, True), (2, 2, False)])
def test_init_snaps_up_to_residue_class(srv23, start, first, adjusted):
    e = uniq()
    body = ok(srv23.init(e, "int", start), 201)
    assert (body["startValue"], body["adjusted"], body["shard"]) == (first, adjusted, 2)
    assert srv23.take(e) == first
    assert srv23.take(e) == first + 3


def test_init_start_value_as_decimal_string(srv):
    e = uniq()
    assert ok(srv.init(e, "int", "42"), 201)["startValue"] == 42
    assert srv.take(e) == 42


def test_init_long_beyond_2_pow_53_exact(srv):
    e = uniq()
    body = ok(srv.init(e, "long", "9007199254740993"), 201)
    assert body["startValue"] == "9007199254740993"
    assert srv.take(e) == "9007199254740993"
    assert srv.take(e) == "9007199254740994"


def test_init_long_start_value_as_json_number_exact(srv):
    e = uniq()
    body = ok(srv.init(e, "long", None, body='{"dataType":"long","startValue":9007199254740993}'), 201)
    assert body["startValue"] == "9007199254740993"
    assert srv.take(e) == "9007199254740993"


def test_init_int_max_is_allowed(srv):
    e = uniq()
    assert ok(srv.init(e, "int", INT_MAX), 201)["startValue"] == INT_MAX


def test_init_long_max_is_allowed(srv):
    e = uniq()
    assert ok(srv.init(e, "long", str(LONG_MAX)), 201)["startValue"] == str(LONG_MAX)


@pytest.mark.parametrize("dtype", ["snowflake", "uuid8", "uuid22"])
def test_init_non_sequence_types(srv, dtype):
    e = uniq()
    body = ok(srv.init(e, dtype), 201)
    assert (body["entityName"], body["dataType"]) == (e, dtype)
    assert ok(srv.next_id(e))["dataType"] == dtype


def test_init_binds_type(srv):
    e = uniq()
    ok(srv.init(e, "long"), 201)
    assert_error(srv.next_id(e, "int"), 400, "Type mismatch")
    assert srv.take(e) == "1"


def test_init_existing_entity_is_409_and_changes_nothing(srv):
    e = uniq()
    ok(srv.init(e, "int", 10), 201)
    srv.take(e)
    assert_error(srv.init(e, "int", 500), 409)
    assert_error(srv.init(e, "long"), 409)
    assert srv.take(e) == 11


def test_init_entity_created_by_next_id_is_409(srv):
    e = uniq()
    srv.take(e, "uuid8")
    assert_error(srv.init(e, "uuid8"), 409)


BAD_INIT_BODIES = [
    ("empty object", "{}"),
    ("unknown type", '{"dataType":"integer"}'),
    ("type wrong case", '{"dataType":"Int"}'),
    ("type not a string", '{"dataType":5}'),
    ("type null", '{"dataType":null}'),
    ("not json", "nope"),
    ("empty body", ""),
    ("array", '[{"dataType":"int"}]'),
    ("string", '"int"'),
    ("number", "1"),
    ("truncated", '{"dataType":"int"'),
    ("trailing comma", '{"dataType":"int",}'),
    ("trailing garbage", '{"dataType":"int"} x'),
    ("single quotes", "{'dataType':'int'}"),
    ("negative start", '{"dataType":"int","startValue":-1}'),
    ("negative start string", '{"dataType":"int","startValue":"-1"}'),
    ("fractional start", '{"dataType":"int","startValue":1.5}'),
    ("non-numeric start string", '{"dataType":"int","startValue":"abc"}'),
    ("empty start string", '{"dataType":"int","startValue":""}'),
    ("boolean start", '{"dataType":"int","startValue":true}'),
    ("object start", '{"dataType":"int","startValue":{}}'),
    ("int start too big", '{"dataType":"int","startValue":2147483648}'),
    ("int start too big string", '{"dataType":"int","startValue":"2147483648"}'),
    ("long start too big", '{"dataType":"long","startValue":"9223372036854775808"}'),
    ("long start too big number", '{"dataType":"long","startValue":9223372036854775808}'),
    ("huge number", '{"dataType":"long","startValue":1' + "0" * 40 + "}"),
    ("start with snowflake", '{"dataType":"snowflake","startValue":5}'),
    ("start with uuid", '{"dataType":"uuid8","startValue":5}'),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_INIT_BODIES], ids=[n for n, _ in BAD_INIT_BODIES])
def test_bad_init_body_is_400_and_creates_nothing(srv, body):
    e = uniq()
    assert_error(srv.init(e, body=body), 400)
    assert_error(srv.status(e), 404)


def test_init_json_escapes_are_decoded(srv):
    e = uniq()
    assert ok(srv.init(e, body='{"dataType":"\\u0069nt", "startValue" : 7 }'), 201)["dataType"] == "int"
    assert srv.take(e) == 7


def test_init_ignores_whitespace_and_key_order(srv):
    e = uniq()
    body = '\n{ "startValue" : "30" ,\t"dataType" : "long" }\n'
    assert ok(srv.init(e, body=body), 201)["startValue"] == "30"


def test_init_body_at_16_kib_is_accepted(srv):
    e = uniq()
    body = '{"dataType":"int"}'
    body += " " * (16384 - len(body))
    assert ok(srv.init(e, body=body), 201)["dataType"] == "int"


def test_init_body_over_16_kib_is_413(srv):
    e = uniq()
    body = '{"dataType":"int"}'
    body += " " * (16385 - len(body))
    r = srv.init(e, body=body)
    assert_error(r, 413)
    assert_error(srv.status(e), 404)


def test_init_invalid_entity_name(srv):
    assert_error(srv.init("a%2Fb", "int"), 400)


# ------------------------------------------------------------------ reset ---
def test_reset_forward(srv):
    e = uniq()
    ok(srv.batch(e, 5, "int"))
    body = ok(srv.reset(e, 100))
    assert body == {"entityName": e, "dataType": "int", "shard": 1,
                    "previousValue": 6, "nextValue": 100, "adjusted": False}
    assert srv.take(e) == 100


def test_reset_to_same_next_value_is_allowed(srv):
    e = uniq()
    ok(srv.batch(e, 5, "int"))
    body = ok(srv.reset(e, 6))
    assert (body["previousValue"], body["nextValue"]) == (6, 6)
    assert srv.take(e) == 6


def test_reset_backwards_without_force_is_409_and_changes_nothing(srv):
    e = uniq()
    ok(srv.batch(e, 5, "int"))
    assert_error(srv.reset(e, 3), 409)
    assert_error(srv.reset(e, 5), 409)
    st = ok(srv.status(e))
    assert (st["currentValue"], st["nextValue"]) == (5, 6)
    assert srv.take(e) == 6


def test_reset_backwards_with_force(srv):
    e = uniq()
    ok(srv.batch(e, 5, "int"))
    body = ok(srv.reset(e, 2, force=True))
    assert (body["previousValue"], body["nextValue"]) == (6, 2)
    assert srv.take(e) == 2


def test_reset_force_false_is_not_force(srv):
    e = uniq()
    ok(srv.batch(e, 5, "int"))
    r = srv.request("PUT", f"/api/reset/{e}?force=false", body={"value": 1})
    assert_error(r, 409)


def test_reset_snaps_up_on_shard_2_of_3(srv23):
    e = uniq()
    srv23.take(e, "int")                       # 2
    body = ok(srv23.reset(e, 10))
    assert (body["previousValue"], body["nextValue"], body["adjusted"], body["shard"]) == \
        (5, 11, True, 2)
    assert srv23.take(e) == 11


def test_reset_fresh_init_entity(srv):
    e = uniq()
    ok(srv.init(e, "int", 50), 201)
    body = ok(srv.reset(e, 60))
    assert (body["previousValue"], body["nextValue"]) == (50, 60)


def test_reset_long_uses_strings(srv):
    e = uniq()
    srv.take(e, "long")
    body = ok(srv.reset(e, "9007199254740993"))
    assert (body["dataType"], body["previousValue"], body["nextValue"]) == \
        ("long", "2", "9007199254740993")
    assert srv.take(e) == "9007199254740993"


def test_reset_value_as_decimal_string(srv):
    e = uniq()
    srv.take(e, "int")
    assert ok(srv.reset(e, "77"))["nextValue"] == 77


def test_reset_unknown_entity_is_404(srv):
    assert_error(srv.reset(uniq(), 5), 404)


@pytest.mark.parametrize("dtype", ["snowflake", "uuid8"])
def test_reset_non_sequence_is_400(srv, dtype):
    e = uniq()
    srv.take(e, dtype)
    assert_error(srv.reset(e, 5), 400)


@pytest.mark.parametrize("body", ["{}", '{"value":-1}', '{"value":"x"}', '{"value":1.5}',
                                  '{"value":2147483648}', '{"value":null}', "nope", "",
                                  '{"value":true}', "[5]"])
def test_bad_reset_body_is_400_and_changes_nothing(srv, body):
    e = uniq()
    srv.take(e, "int")
    assert_error(srv.reset(e, None, body=body), 400)
    assert srv.take(e) == 2


def test_reset_long_beyond_max_is_400(srv):
    e = uniq()
    srv.take(e, "long")
    assert_error(srv.reset(e, "9223372036854775808"), 400)
    assert srv.take(e) == "2"


# ----------------------------------------------------------------- delete ---
def test_delete(srv):
    e = uniq()
    srv.take(e, "int")
    body = ok(srv.delete(e))
    assert body == {"message": f"Entity '{e}' deleted successfully", "entityName": e, "shard": 1}
    assert_error(srv.status(e), 404)
    assert e not in [x["entityName"] for x in ok(srv.get("/api/list"))["entities"]]


def test_delete_unknown_is_404(srv):
    assert_error(srv.delete(uniq()), 404)


def test_delete_twice_is_404(srv):
    e = uniq()
    srv.take(e, "uuid8")
    ok(srv.delete(e))
    assert_error(srv.delete(e), 404)


def test_deleted_name_can_be_rebound_to_another_type(srv):
    e = uniq()
    last = int(ok(srv.batch(e, 30, "int"))["endValue"])
    ok(srv.delete(e))
    body = ok(srv.next_id(e, "long"))
    assert body["dataType"] == "long"
    assert int(body["value"]) > last, "a re-created sequence repeated a deleted one's value"
    assert ok(srv.status(e))["dataType"] == "long"


def test_deleted_name_can_be_initialised_again(srv):
    e = uniq()
    srv.take(e, "int")
    ok(srv.delete(e))
    assert ok(srv.init(e, "uuid12"), 201)["dataType"] == "uuid12"


def test_recreated_sequence_continues_above_the_deleted_one(srv):
    e = uniq()
    last = ok(srv.batch(e, 50, "int"))["endValue"]
    ok(srv.delete(e))
    first = srv.take(e, "int")
    assert first > last
    # Through another type and another delete, the mark is still kept.
    ok(srv.delete(e))
    srv.take(e, "uuid8")
    ok(srv.delete(e))
    assert srv.take(e, "int") > first


def test_init_after_delete_starts_above_what_was_handed_out(srv):
    e = uniq()
    last = ok(srv.batch(e, 20, "int"))["endValue"]
    ok(srv.delete(e))
    body = ok(srv.init(e, "int"), 201)
    assert body["startValue"] > last and body["adjusted"] is False
    assert srv.take(e) == body["startValue"]


def test_init_below_deleted_values_needs_force(srv):
    e = uniq()
    last = ok(srv.batch(e, 20, "long"))["endValue"]
    ok(srv.delete(e))
    err = assert_error(srv.init(e, "long", "5"), 409)
    assert str(int(last)) in err["message"] and "force=true" in err["message"]
    assert_error(srv.status(e), 404)                      # nothing was created
    assert_error(srv.request("POST", f"/api/init/{e}?force=maybe",
                             body={"dataType": "long", "startValue": "5"}), 400)
    body = ok(srv.init(e, "long", "5", force=True), 201)
    assert body["startValue"] == "5"
    assert srv.take(e) == "5"


def test_init_above_deleted_values_needs_no_force(srv):
    e = uniq()
    last = ok(srv.batch(e, 20, "int"))["endValue"]
    ok(srv.delete(e))
    assert ok(srv.init(e, "int", last + 100), 201)["startValue"] == last + 100


def test_int_after_a_long_past_the_int_range_is_exhausted(srv):
    e = uniq()
    ok(srv.init(e, "long", "3000000000"), 201)
    srv.take(e)
    ok(srv.delete(e))
    err = assert_error(srv.init(e, "int"), 409)
    assert "force=true" in err["message"]
    assert_error(srv.next_id(e, "int"), 409)     # created, but with nothing left to hand out
    ok(srv.delete(e))
    assert int(srv.take(e, "long")) > 3000000000


def test_delete_percent_encoded_name(srv):
    e = uniq()
    srv.take(e + ".x", "int")
    body = ok(srv.delete(e + "%2Ex"))
    assert body["entityName"] == e + ".x"
    assert_error(srv.status(e + ".x"), 404)


# -------------------------------------------------------- 100-continue ---
def test_init_with_expect_100_continue(srv):
    e = uniq()
    body = b'{"dataType":"int","startValue":3}'
    with srv.raw() as c:
        c.send(f"POST /api/init/{e} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n")
        c.sock.settimeout(1.0)
        interim = None
        try:
            interim = c.read_response()
        except TimeoutError:
            pass
        c.sock.settimeout(5)
        if interim is not None:
            assert interim.status == 100, interim
        c.send(body)
        r = c.read_response()
        if interim is None and r.status == 100:   # it came after the 1 s: a slow machine
            r = c.read_response()
    assert r.status == 201, r
    assert srv.take(e) == 3
