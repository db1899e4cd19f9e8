"""/health, /shard-info, /api/types, /api/list and general response shape."""
import re

import pytest

from bbutil import (SONYFLAKE_EPOCH_MS, TWITTER_EPOCH_MS, TYPES, ok, parse_iso_ms, uniq)


def test_health(srv):
    r = srv.get("/health")
    body = ok(r)
    assert body["status"] == "healthy"
    assert body["shard"] == 1 and body["totalShards"] == 1
    assert type(body["uptime"]) is int and 0 <= body["uptime"] < 3600


def test_health_with_query_string(srv):
    assert ok(srv.get("/health?probe=1"))["status"] == "healthy"


def test_health_reports_shard_config(srv23):
    body = ok(srv23.get("/health"))
    assert (body["shard"], body["totalShards"]) == (2, 3)


def test_shard_info(srv23):
    assert ok(srv23.get("/shard-info")) == {"shardId": 2, "totalShards": 3, "status": "active"}


@pytest.mark.parametrize("path", ["/health", "/shard-info", "/api/types", "/api/list",
                                  "/api/status/nope-x", "/no/such/path"])
def test_json_content_type_and_length(srv, path):
    r = srv.get(path)
    assert r.headers["content-type"].split(";")[0].strip() == "application/json"
    assert int(r.headers["content-length"]) == len(r.body)
    assert "transfer-encoding" not in r.headers


@pytest.mark.parametrize("path", ["/health", "/shard-info", "/api/types", "/api/list",
                                  "/no/such/path"])
def test_json_is_compact(srv, path):
    text = srv.get(path).body.decode()
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert not re.search(r"\s", outside_strings), text


def test_types_lists_exactly_the_types(srv):
    body = ok(srv.get("/api/types"))
    assert body["availableTypes"] == TYPES
    assert set(body["description"]) == set(TYPES)
    assert all(isinstance(v, str) and v for v in body["description"].values())
    assert body["shardInfo"] == {"shardId": 1, "totalShards": 1}


def test_types_sonyflake_info(srv):
    info = ok(srv.get("/api/types"))["snowflakeInfo"]
    assert info["layout"] == "sonyflake"
    assert info["epoch"] == "2022-01-01T00:00:00.000Z"
    assert info["timeUnitMs"] == 10
    assert info["bits"] == {"time": 39, "sequence": 8, "machine": 16}
    assert info["machineId"] == 1
    assert info["maxIdsPerSecond"] == 25600
    expected = SONYFLAKE_EPOCH_MS + (1 << 39) * 10
    assert abs(parse_iso_ms(info["exhaustsAt"]) - expected) <= 1000, info["exhaustsAt"]


def test_types_machine_id_defaults_to_shard_for_sonyflake(srv23):
    info = ok(srv23.get("/api/types"))["snowflakeInfo"]
    assert info["machineId"] == 2
    assert ok(srv23.get("/api/types"))["shardInfo"] == {"shardId": 2, "totalShards": 3}


def test_types_twitter_info(servers):
    s = servers(env={"SNOWFLAKE_LAYOUT": "twitter", "SHARD_ID": 3, "TOTAL_SHARDS": 4})
    info = ok(s.get("/api/types"))["snowflakeInfo"]
    assert info["layout"] == "twitter"
    assert info["epoch"] == "2024-01-01T00:00:00.000Z"
    assert info["timeUnitMs"] == 1
    assert info["bits"] == {"time": 41, "sequence": 12, "machine": 10}
    assert info["machineId"] == 2                      # SHARD_ID - 1
    assert info["maxIdsPerSecond"] == 4096000
    expected = TWITTER_EPOCH_MS + (1 << 41)
    assert abs(parse_iso_ms(info["exhaustsAt"]) - expected) <= 1000, info["exhaustsAt"]


def test_types_custom_layout(servers):
    s = servers(env={"SNOWFLAKE_LAYOUT": "custom:2/10/12/1700000000000", "MACHINE_ID": 7})
    info = ok(s.get("/api/types"))["snowflakeInfo"]
    assert info["timeUnitMs"] == 2
    assert info["bits"] == {"time": 41, "sequence": 10, "machine": 12}
    assert parse_iso_ms(info["epoch"]) == 1700000000000
    assert info["machineId"] == 7
    assert info["maxIdsPerSecond"] == 1024 * 500
    assert abs(parse_iso_ms(info["exhaustsAt"]) - (1700000000000 + (1 << 41) * 2)) <= 1000


def test_machine_id_override(servers):
    s = servers(env={"MACHINE_ID": 513})
    assert ok(s.get("/api/types"))["snowflakeInfo"]["machineId"] == 513


def test_list_empty_on_fresh_server(servers):
    s = servers(env={"SHARD_ID": 2, "TOTAL_SHARDS": 5})
    assert ok(s.get("/api/list")) == {"entities": [], "shardInfo": {"shardId": 2, "totalShards": 5}}


def test_list_sorted_by_name_with_types(servers):
    s = servers()
    for name, t in [("zeta", "long"), ("alpha", "int"), ("Mid.x", "uuid8"), ("beta", "snowflake")]:
        ok(s.next_id(name, t))
    body = ok(s.get("/api/list"))
    names = [e["entityName"] for e in body["entities"]]
    assert names == sorted(["zeta", "alpha", "Mid.x", "beta"])
    assert {e["entityName"]: e["dataType"] for e in body["entities"]} == {
        "zeta": "long", "alpha": "int", "Mid.x": "uuid8", "beta": "snowflake"}
    assert body["shardInfo"] == {"shardId": 1, "totalShards": 1}


def test_list_current_value_matches_status(servers):
    s = servers()
    for name, t in [("a-int", "int"), ("b-long", "long"), ("c-sf", "snowflake"), ("d-uuid", "uuid12")]:
        ok(s.next_id(name, t))
        ok(s.next_id(name, t))
    ok(s.init("e-fresh", "int", 50), 201)
    for e in ok(s.get("/api/list"))["entities"]:
        st = ok(s.status(e["entityName"]))
        assert e["currentValue"] == st["currentValue"], (e, st)
        assert set(e) == {"entityName", "dataType", "currentValue"}


def test_list_includes_new_entity(srv):
    name = uniq()
    ok(srv.next_id(name, "int"))
    entities = ok(srv.get("/api/list"))["entities"]
    assert {"entityName": name, "dataType": "int", "currentValue": 1} in entities
