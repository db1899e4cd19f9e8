"""Operator subcommands (`shardid parse`, `shardid check-config`) and the
access log switch."""
import json

from bbutil import decompose, now_ms, ok, run_bin, uniq


def test_parse_decodes_an_id_from_the_server(srv):
    value = ok(srv.next_id(uniq("sf"), "snowflake"))["value"]
    r = run_bin(["parse", value])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == ok(srv.get(f"/api/parse-snowflake/{value}"))
    assert abs(doc["timestamp"] - now_ms()) < 60_000


def test_parse_follows_the_layout_flag():
    r = run_bin(["parse", "1234", "--snowflake-layout", "twitter"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    unix_ms, machine, seq = decompose("twitter", 1234)
    assert (doc["timestamp"], doc["machineId"], doc["sequence"]) == (unix_ms, machine, seq)
    assert doc["date"] == "2024-01-01T00:00:00.000Z"


def test_parse_rejects_non_numbers():
    for bad in ["abc", "-1", "9223372036854775808", ""]:
        r = run_bin(["parse", bad])
        assert r.returncode == 2, (bad, r.stdout)
        assert "not a snowflake" in r.stderr


def test_check_config_accepts_and_prints_the_effective_configuration():
    r = run_bin(["check-config", "--shard", "2", "--total-shards", "3"])
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout
    assert "shard=2" in r.stdout and "total_shards=3" in r.stdout


def test_check_config_rejects_like_the_server(tmp_path):
    r = run_bin(["check-config"], env={"SHARD_ID": "3", "TOTAL_SHARDS": "2"})
    assert r.returncode == 2
    assert "SHARD_ID=3" in r.stderr


def _log_after_requests(servers, args):
    s = servers(args=args)
    ok(s.next_id(uniq("a"), "int"))
    ok(s.get("/health"))
    s.get("/nope")
    # stop() returns once the process has exited: whatever it logged about
    # these requests is in the file by then, and nothing more can come.
    s.stop()
    return s.output()


def test_access_log_is_off_by_default(servers):
    out = _log_after_requests(servers, [])
    assert "msg=request" not in out


def test_access_log_flag_logs_one_logfmt_line_per_request(servers):
    out = _log_after_requests(servers, ["--access-log"])
    lines = [l for l in out.splitlines() if "msg=request" in l]
    assert len(lines) >= 3, out
    assert any('target="/nope"' in l and "status=404" in l for l in lines), lines
    for l in lines:
        assert l.startswith("ts=") and " level=info " in l and " method=" in l, l
