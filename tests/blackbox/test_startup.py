"""Command line, configuration validation, startup log and signals."""
import re
import signal
import socket

import pytest

from bbutil import (SONYFLAKE_EPOCH_MS, free_port, iso_ms, ok, run_bin)

ENV_VARS = ["SERVICE_PORT", "BIND_ADDR", "SHARD_ID", "TOTAL_SHARDS", "DATA_DIR",
            "SNOWFLAKE_LAYOUT", "MACHINE_ID", "DEFAULT_DATA_TYPE", "MAX_BATCH_SIZE",
            "CONSUL_URL", "CONSUL_HTTP_TOKEN", "SERVICE_NAME", "CONTAINER_IP",
            "ADMIN_TOKEN", "LOG_LEVEL"]
FLAGS = ["--port", "--bind", "--shard", "--total-shards", "--data-dir",
         "--snowflake-layout", "--machine-id", "--default-data-type",
         "--max-batch-size", "--admin-token", "--log-level", "--max-connections"]


def test_version_prints_name_version_and_commit():
    r = run_bin(["--version"])
    assert r.returncode == 0, r
    # "commit unknown" for a plain `make`; a release names the git commit.
    assert re.fullmatch(r"shardid \S+\ncommit [0-9a-f]+(-dirty)?\n|shardid \S+\ncommit unknown\n",
                        r.stdout), r.stdout


def test_help_exits_zero():
    r = run_bin(["--help"])
    assert r.returncode == 0, r
    assert r.stdout.strip(), "help text expected on stdout"


@pytest.mark.parametrize("flag", FLAGS)
def test_help_lists_flag(flag):
    r = run_bin(["--help"])
    assert flag in r.stdout + r.stderr


@pytest.mark.parametrize("var", ENV_VARS)
def test_help_lists_env_var(var):
    r = run_bin(["--help"])
    assert var in r.stdout + r.stderr


BAD_ENV = [
    ("SHARD_ID", "0", {}),
    ("SHARD_ID", "4", {"TOTAL_SHARDS": "3"}),
    ("SHARD_ID", "-1", {}),
    ("SHARD_ID", "abc", {}),
    ("SHARD_ID", "1x", {}),
    ("SHARD_ID", "", {}),
    ("TOTAL_SHARDS", "2.5", {}),
    ("TOTAL_SHARDS", "0", {}),
    ("TOTAL_SHARDS", "1025", {}),
    ("SERVICE_PORT", "70000", {}),
    ("SERVICE_PORT", "abc", {}),
    ("BIND_ADDR", "999.0.0.1", {}),
    ("SNOWFLAKE_LAYOUT", "bogus", {}),
    ("SNOWFLAKE_LAYOUT", "custom:10/8/16", {}),
    ("SNOWFLAKE_LAYOUT", "custom:0/8/16/0", {}),
    ("MACHINE_ID", "70000", {}),
    ("MACHINE_ID", "-1", {}),
    ("MACHINE_ID", "1024", {"SNOWFLAKE_LAYOUT": "twitter"}),
    ("MAX_BATCH_SIZE", "0", {}),
    ("MAX_BATCH_SIZE", "abc", {}),
    ("DEFAULT_DATA_TYPE", "INT", {}),
    ("DEFAULT_DATA_TYPE", "uuid9", {}),
    ("LOG_LEVEL", "verbose", {}),
    ("MAX_CONNECTIONS", "0", {}),
    ("MAX_CONNECTIONS", "abc", {}),
]


@pytest.mark.parametrize("var,value,extra", BAD_ENV, ids=[f"{v}={x}" for v, x, _ in BAD_ENV])
def test_invalid_env_exits_2_naming_variable_and_value(var, value, extra, tmp_path):
    env = {"SERVICE_PORT": free_port(), "BIND_ADDR": "127.0.0.1",
           "DATA_DIR": str(tmp_path / "data"), **extra, var: value}
    r = run_bin([], env=env)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert var in r.stderr, r.stderr
    assert value in r.stderr, r.stderr


RANGE_NAMED = [
    ("TOTAL_SHARDS", "1025", ["1024"]),
    ("SERVICE_PORT", "70000", ["65535"]),
    ("MACHINE_ID", "70000", ["65535"]),
    ("SHARD_ID", "4", ["3"]),
    ("DEFAULT_DATA_TYPE", "INT", ["int", "uuid22"]),
    ("SNOWFLAKE_LAYOUT", "bogus", ["sonyflake", "twitter", "custom"]),
    ("LOG_LEVEL", "verbose", ["error", "warn", "info", "debug"]),
]


@pytest.mark.parametrize("var,value,tokens", RANGE_NAMED, ids=[f"{v}={x}" for v, x, _ in RANGE_NAMED])
def test_invalid_env_error_names_accepted_range(var, value, tokens, tmp_path):
    env = {"DATA_DIR": str(tmp_path / "data"), "TOTAL_SHARDS": "3", var: value}
    r = run_bin([], env=env)
    assert r.returncode == 2
    rest = r.stderr.replace(f"{var}={value}", "").replace(f"'{value}'", "")
    for t in tokens:                 # found in the explanation, not in the echoed input
        assert t in rest, (t, r.stderr)


BAD_FLAGS = [
    (["--shard", "0"], "SHARD_ID", "--shard"),
    (["--port", "70000"], "SERVICE_PORT", "--port"),
    (["--total-shards", "1025"], "TOTAL_SHARDS", "--total-shards"),
    (["--snowflake-layout", "bogus"], "SNOWFLAKE_LAYOUT", "--snowflake-layout"),
    (["--max-batch-size", "0"], "MAX_BATCH_SIZE", "--max-batch-size"),
]


@pytest.mark.parametrize("args,var,flag", BAD_FLAGS, ids=[" ".join(a) for a, _, _ in BAD_FLAGS])
def test_invalid_flag_exits_2_naming_it(args, var, flag, tmp_path):
    env = {"SERVICE_PORT": free_port(), "BIND_ADDR": "127.0.0.1",
           "DATA_DIR": str(tmp_path / "data")}
    r = run_bin(args, env=env)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert var in r.stderr or flag in r.stderr, r.stderr
    assert args[1] in r.stderr, r.stderr


def test_flag_without_value_exits_2(tmp_path):
    r = run_bin(["--port"], env={"DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--port" in r.stderr


def test_flag_equals_form(servers):
    s = servers(args=["--shard=3", "--total-shards=4"])
    assert ok(s.get("/shard-info"))["shardId"] == 3


def test_unknown_flag_exits_2(tmp_path):
    r = run_bin(["--no-such-flag"], env={"DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--no-such-flag" in r.stderr


def test_flags_win_over_env(servers):
    s = servers(env={"SHARD_ID": 1, "TOTAL_SHARDS": 1}, args=["--shard", "2", "--total-shards", "3"])
    info = s.json("/shard-info")
    assert (info["shardId"], info["totalShards"]) == (2, 3)


def test_port_flag_wins_over_env(servers):
    s = servers(start=False)
    s.port = free_port()
    s.start(env={"SERVICE_PORT": free_port()}, args=["--port", str(s.port)])
    assert ok(s.get("/health"))["status"] == "healthy"


def test_startup_log_line_describes_config(servers):
    s = servers()
    out = s.output()
    assert "sonyflake" in out, out
    assert "25600" in out, out           # IDs/s limit of the sonyflake layout
    exhausts = iso_ms(SONYFLAKE_EPOCH_MS + (1 << 39) * 10)
    assert exhausts[:10] in out, (exhausts, out)


def test_port_in_use_fails_fast(servers):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        s = servers(start=False)
        s.port = port
        s.start(wait=False)
        rc = s.proc.wait(5)
        assert rc != 0, s.output()
        assert str(port) in s.output()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_exit_0(servers, sig):
    s = servers()
    s.stop(sig)   # asserts exit code 0 within 5 s


def test_sigterm_with_open_idle_connections_exits_0(servers):
    s = servers()
    conns = [s.raw() for _ in range(3)]
    conns[0].request(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    conns[1].send(b"GET /heal")          # partial head
    s.stop()
    for c in conns:
        c.close()


def test_restart_on_same_port(servers):
    s = servers()
    s.restart()
    assert ok(s.get("/health"))["status"] == "healthy"


# --------------------------------------------------------------------------- #
# SHARD_ID=ordinal: the shard from a StatefulSet-style host name
# --------------------------------------------------------------------------- #
ORDINAL_OK = [("shardid-0", 1), ("shardid-2", 3), ("web-12", 13), ("a-b-3", 4)]


@pytest.mark.parametrize("host,shard", ORDINAL_OK, ids=[h for h, _ in ORDINAL_OK])
def test_shard_ordinal_from_hostname(servers, host, shard):
    s = servers(env={"SHARD_ID": "ordinal", "TOTAL_SHARDS": 16, "HOSTNAME": host})
    info = ok(s.get("/shard-info"))
    assert (info["shardId"], info["totalShards"]) == (shard, 16)
    # MACHINE_ID follows the shard as for a numeric SHARD_ID (sonyflake: the shard).
    assert ok(s.get("/api/types"))["snowflakeInfo"]["machineId"] == shard
    assert f"shard={shard} shard_from=ordinal({host}) total_shards=16" in s.output()


def test_shard_ordinal_flag_and_twitter_machine_id(servers):
    s = servers(env={"SHARD_ID": "1", "TOTAL_SHARDS": 3, "HOSTNAME": "shardid-2",
                     "SNOWFLAKE_LAYOUT": "twitter"}, args=["--shard", "ordinal"])
    assert ok(s.get("/shard-info"))["shardId"] == 3
    assert ok(s.get("/api/types"))["snowflakeInfo"]["machineId"] == 2


def test_check_config_shows_where_the_shard_came_from():
    r = run_bin(["check-config"], env={"SHARD_ID": "ordinal", "TOTAL_SHARDS": 3,
                                       "HOSTNAME": "shardid-1"})
    assert r.returncode == 0, r.stderr
    assert " shard=2 shard_from=ordinal(shardid-1) total_shards=3 " in r.stdout, r.stdout
    # A numeric SHARD_ID prints exactly what it always did, host name or not.
    r = run_bin(["check-config"], env={"SHARD_ID": "2", "TOTAL_SHARDS": 3,
                                       "HOSTNAME": "shardid-1"})
    assert r.returncode == 0, r.stderr
    assert " shard=2 total_shards=3 " in r.stdout and "shard_from" not in r.stdout, r.stdout


ORDINAL_BAD = [
    ("shardid", "3", "NAME-N"),
    ("x-", "3", "NAME-N"),
    ("x-007", "3", "leading zeros"),
    ("", "3", "NAME-N"),
    ("web-12", "3", "1..3"),     # shard 13 of 3
    ("shardid-3", "3", "-0..-2"),
]


@pytest.mark.parametrize("host,total,expected", ORDINAL_BAD,
                         ids=[f"{h or 'empty'}-of-{t}" for h, t, _ in ORDINAL_BAD])
def test_shard_ordinal_bad_hostname_exits_2(host, total, expected, tmp_path):
    env = {"SERVICE_PORT": free_port(), "BIND_ADDR": "127.0.0.1", "DATA_DIR": str(tmp_path / "d"),
           "SHARD_ID": "ordinal", "TOTAL_SHARDS": total, "HOSTNAME": host}
    r = run_bin([], env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "SHARD_ID=ordinal" in r.stderr, r.stderr
    assert f"host name '{host}' (HOSTNAME)" in r.stderr, r.stderr
    assert expected in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()   # refused before touching the state


def test_shard_ordinal_out_of_range_names_shard_and_range(tmp_path):
    r = run_bin([], env={"DATA_DIR": str(tmp_path / "d"), "SHARD_ID": "ordinal",
                         "TOTAL_SHARDS": 3, "HOSTNAME": "web-12"})
    assert r.returncode == 2, r
    assert "takes shard 13" in r.stderr and "'web-12'" in r.stderr and "(1..3)" in r.stderr, r.stderr
