"""GET /api/next-id/{entity}: types, wire forms, sequences, binding, names."""
import pytest

from bbutil import LONG_MAX, UUID_RE, assert_error, ok, uniq


def test_int_sequence_starts_at_shard_and_steps_by_one(srv):
    e = uniq()
    bodies = [ok(srv.next_id(e, "int")) for _ in range(3)]
    assert [b["value"] for b in bodies] == [1, 2, 3]
    assert all(type(b["value"]) is int for b in bodies)
    assert bodies[0] == {"entityName": e, "dataType": "int", "value": 1, "shard": 1}


def test_int_sequence_interleaves_on_shard_2_of_3(srv23):
    e = uniq()
    assert [srv23.take(e, "int") for _ in range(4)] == [2, 5, 8, 11]
    assert ok(srv23.next_id(e, "int"))["shard"] == 2


def test_long_values_are_decimal_strings(srv):
    e = uniq()
    bodies = [ok(srv.next_id(e, "long")) for _ in range(3)]
    assert [b["value"] for b in bodies] == ["1", "2", "3"]
    assert bodies[0] == {"entityName": e, "dataType": "long", "value": "1", "shard": 1}


def test_long_sequence_on_shard_2_of_3(srv23):
    e = uniq()
    assert [srv23.take(e, "long") for _ in range(3)] == ["2", "5", "8"]


def test_snowflake_values_are_increasing_decimal_strings(srv):
    e = uniq()
    vals = [srv.take(e, "snowflake") for _ in range(50)]
    assert all(isinstance(v, str) and v.isdigit() and v == str(int(v)) for v in vals), vals
    ints = [int(v) for v in vals]
    assert all(0 < v <= LONG_MAX for v in ints)
    assert all(a < b for a, b in zip(ints, ints[1:])), ints


def test_snowflakes_increase_across_entities(srv):
    """Within one instance IDs strictly increase, whatever the entity."""
    a, b = uniq(), uniq()
    vals = []
    for _ in range(20):
        vals.append(int(srv.take(a, "snowflake")))
        vals.append(int(srv.take(b, "snowflake")))
    assert all(x < y for x, y in zip(vals, vals[1:]))


@pytest.mark.parametrize("n", [8, 12, 16, 22])
def test_uuid_values(srv, n):
    e = uniq()
    vals = [srv.take(e, f"uuid{n}") for _ in range(100)]
    assert all(isinstance(v, str) and len(v) == n and UUID_RE.match(v) for v in vals), vals
    assert len(set(vals)) == len(vals)


def test_uuid_alphabet_is_used_broadly(srv):
    e = uniq()
    chars = set("".join(srv.take(e, "uuid22") for _ in range(100)))
    assert len(chars) >= 55, sorted(chars)   # 2200 draws from 62 symbols
    assert chars & set("ABCXYZ") and chars & set("abcxyz") and chars & set("0123456789")


def test_uuid_characters_are_uniform(srv):
    """220,000 characters: a modulo-biased draw (256 % 62 = 8) would give the first
    8 symbols ~25% more hits; chi-square over 62 symbols stays far below 140 when
    uniform (61 degrees of freedom, p < 1e-8)."""
    vals = ok(srv.batch(uniq(), 10000, "uuid22"))["values"]
    text = "".join(vals)
    counts = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    assert len(counts) == 62
    expected = len(text) / 62
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 140, (chi2, sorted(counts.items(), key=lambda kv: kv[1]))


def test_response_names_entity_type_and_shard(srv23):
    e = uniq()
    body = ok(srv23.next_id(e, "uuid8"))
    assert set(body) == {"entityName", "dataType", "value", "shard"}
    assert (body["entityName"], body["dataType"], body["shard"]) == (e, "uuid8", 2)


def test_default_type_for_new_entity_is_snowflake(srv):
    e = uniq()
    body = ok(srv.next_id(e))
    assert body["dataType"] == "snowflake"
    assert isinstance(body["value"], str) and body["value"].isdigit()


def test_omitted_type_uses_bound_type(srv):
    e = uniq()
    assert srv.take(e, "int") == 1
    body = ok(srv.next_id(e))
    assert (body["dataType"], body["value"]) == ("int", 2)


def test_default_data_type_config(servers):
    s = servers(env={"DEFAULT_DATA_TYPE": "uuid12"})
    body = ok(s.next_id("thing"))
    assert body["dataType"] == "uuid12" and len(body["value"]) == 12


def test_default_data_type_flag(servers):
    s = servers(args=["--default-data-type", "long"])
    assert ok(s.next_id("thing"))["value"] == "1"


def test_type_mismatch_is_400_and_changes_nothing(srv):
    e = uniq()
    assert srv.take(e, "int") == 1
    for t in ["long", "snowflake", "uuid8"]:
        assert_error(srv.next_id(e, t), 400, "Type mismatch")
    st = ok(srv.status(e))
    assert (st["dataType"], st["currentValue"]) == ("int", 1)
    assert srv.take(e, "int") == 2


@pytest.mark.parametrize("dtype", ["INT", "Long", "uuid", "uuid9", "uuid32", "float", "",
                                   "int%20", "snowflake2"])
def test_unknown_data_type_is_400_and_creates_nothing(srv, dtype):
    e = uniq()
    assert_error(srv.next_id(e, dtype), 400)
    assert_error(srv.status(e), 404)


def test_extra_query_parameters_are_ignored(srv):
    e = uniq()
    assert ok(srv.get(f"/api/next-id/{e}?foo=bar&dataType=int&x"))["value"] == 1


@pytest.mark.parametrize("raw,name", [
    ("a", "a"),
    ("A-Z_09", "A-Z_09"),
    ("a.b:c-d_e", "a.b:c-d_e"),
    ("a%2Eb", "a.b"),
    ("a%2eb", "a.b"),
    ("%41bc", "Abc"),
    ("x" * 128, "x" * 128),
    ("%78" * 128, "x" * 128),
])
def test_valid_entity_names(srv, raw, name):
    prefix = uniq("n")
    if len(name) == 128:   # exact maximum: no room for a unique prefix
        assert ok(srv.next_id(raw, "uuid8"))["entityName"] == name
        return
    body = ok(srv.next_id(prefix + raw, "int"))
    assert body["entityName"] == prefix + name
    assert ok(srv.status(prefix + name))["entityName"] == prefix + name


@pytest.mark.parametrize("raw", [
    "a%2Fb", "a%20b", "a+b", "a%2Bb", "%C3%A9t%C3%A9", "x" * 129, "%78" * 129,
    "a%zz", "a%2", "a%", "%00", "a%0Ab", "a%22b", "a%3Fb", "a*b", "a,b", "a~b", "a@b",
    "%2E%2E%2F%2E%2E",
])
def test_invalid_entity_names_are_400(srv, raw):
    assert_error(srv.next_id(raw, "int"), 400)


@pytest.mark.parametrize("path", ["/api/next-id/", "/api/next-id", "/api/next-id/a/b"])
def test_missing_or_nested_entity_is_4xx(srv, path):
    r = srv.get(path + "?dataType=int")
    assert r.status in (400, 404), r
    assert_error(r, r.status)


def test_invalid_name_creates_nothing(servers):
    s = servers()
    for raw in ["a%2Fb", "x" * 129, "a%20b"]:
        assert_error(s.next_id(raw, "int"), 400)
    assert ok(s.get("/api/list"))["entities"] == []
