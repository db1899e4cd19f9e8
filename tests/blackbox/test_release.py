"""The release (`make release`, scripts/release): versioned, tested,
reproducible, checksummed binaries for x86-64 and arm64.

One full release runs per module into a temporary directory (both arches,
each built twice in different directories: the full reproducibility check,
about 20 s with warm zig caches), then the tests read what it wrote. The
arm64 binary also gets a short run of requests of its own under qemu.
Skips when `file` or qemu-aarch64 is missing (scripts/release-deps installs
them; scripts/test-deps warns when it could not)."""
import http.client
import json
import re
import shutil
import subprocess
import sys

import pytest

from bbutil import REPO, Server

SEED_TESTS = ["startup", "health", "shard-info", "id-generation", "batch-generation"]
OURS = ["version", "check-config"]
ARCHES = {"shardid-linux-amd64": ("x86-64", "x86_64-linux-musl"),
          "shardid-linux-arm64": ("ARM aarch64", "aarch64-linux-musl")}
BUDGET = 200 * 1024
RELEASE_TIMEOUT_S = 600


def _qemu():
    return shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


def _need_tools():
    if not shutil.which("file"):
        pytest.skip("no `file` command (scripts/release-deps installs it)")
    if not _qemu():
        pytest.skip("no qemu-aarch64 for the arm64 binary (scripts/release-deps installs qemu-user-static)")


def _release(out, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "release"), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=RELEASE_TIMEOUT_S)


def _expected_commit():
    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short=12", "HEAD") + ("-dirty" if dirty else "")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    _need_tools()
    out = tmp_path_factory.mktemp("dist")
    r = _release(out)
    assert r.returncode == 0, f"scripts/release failed:\n{r.stdout}{r.stderr}"
    version = (REPO / "VERSION").read_text().strip()
    d = out / f"shardid-v{version}"
    return {"dir": d, "version": version, "output": r.stdout + r.stderr,
            "results": json.loads((d / "test-results.json").read_text())}


def test_release_directory_holds_the_binaries_results_and_sums(release):
    assert sorted(p.name for p in release["dir"].iterdir()) == sorted(
        [*ARCHES, "test-results.json", "SHA256SUMS"])


def test_results_are_json_with_every_seed_test_passed_on_both_arches(release):
    res = release["results"]
    assert res["passed"] is True and res["failures"] == []
    assert (res["version"], res["commit"]) == (release["version"], _expected_commit())
    assert sorted(res["binaries"]) == sorted(ARCHES)
    for name, b in res["binaries"].items():
        tests = {t["name"]: t for t in b["tests"]}
        for t in SEED_TESTS + OURS:
            assert t in tests, f"{name}: no {t} test in {sorted(tests)}"
            assert tests[t]["status"] == "passed", (name, tests[t])
        for t in b["tests"]:
            assert set(t) >= {"name", "status", "durationMs", "command"}, t
            assert isinstance(t["durationMs"], (int, float)) and t["durationMs"] >= 0, t
            assert t["command"], t


def test_results_describe_each_binary_as_it_is(release):
    for name, (arch, triple) in ARCHES.items():
        b = release["results"]["binaries"][name]
        path = release["dir"] / name
        assert b["target"] == triple
        assert b["size"] == path.stat().st_size
        out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
        assert b["sha256"] == out.stdout.split()[0]
        assert arch in b["file"] and "statically linked" in b["file"], b["file"]
        assert b["file"] == subprocess.run(["file", "-b", str(path)], capture_output=True, text=True,
                                           check=True).stdout.strip()


def test_sha256sums_verify(release):
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release["dir"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(r.stdout.split()) == sorted(
        [f"{f}:" for f in [*ARCHES, "test-results.json"]] + ["OK"] * 3)


def test_both_builds_of_each_binary_were_byte_identical(release):
    """scripts/release built every binary a second time from a copy of the
    tree in another directory (fresh zig cache) and compared the bytes."""
    for name in ARCHES:
        assert release["results"]["binaries"][name]["reproducible"] is True, name
    assert release["output"].count("reproducible (built again in another directory") == 2


def test_binaries_hold_no_build_paths(release):
    for name in ARCHES:
        data = (release["dir"] / name).read_bytes()
        for p in (str(REPO), "/tmp/", ".zig-cache", "/root/"):
            assert p.encode() not in data, f"{name} contains {p!r}"


def test_both_binaries_are_under_the_size_budget(release):
    for name in ARCHES:
        assert (release["dir"] / name).stat().st_size < BUDGET, name
    assert release["results"]["sizeBudget"] == BUDGET


@pytest.mark.timeout(120)
def test_a_binary_over_the_size_budget_fails_the_release(tmp_path):
    _need_tools()
    r = _release(tmp_path, "--size-budget", "150000")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED: binary over the size budget" in r.stderr
    assert re.search(r"shardid-linux-amd64 is [\d,]+ bytes; it must be smaller than the size budget "
                     r"of 150,000 bytes", r.stderr), r.stderr
    assert not any(tmp_path.rglob("SHA256SUMS")), "a failed release must not look checksummed"


def test_version_names_the_release_and_the_commit(release):
    out = subprocess.run([str(release["dir"] / "shardid-linux-amd64"), "--version"],
                         capture_output=True, text=True, timeout=5, check=True).stdout
    assert out == f"shardid {release['version']}\ncommit {_expected_commit()}\n"


@pytest.mark.timeout(60)
def test_arm64_binary_serves_under_qemu(release, tmp_path):
    """A few seconds of requests to the arm64 binary on one keep-alive
    connection: sequences and snowflakes as on x86-64."""
    wrapper = tmp_path / "shardid-arm64"
    wrapper.write_text(f'#!/bin/sh\nexec "{_qemu()}" "{release["dir"] / "shardid-linux-arm64"}" "$@"\n')
    wrapper.chmod(0o755)
    s = Server(tmp_path / "srv", binary=str(wrapper)).start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        last_sf = 0
        for i in range(1, 301):
            c.request("GET", "/api/next-id/arm-seq?dataType=long")
            r = c.getresponse()
            body = json.loads(r.read())
            assert r.status == 200 and body["value"] == str(i), body
            c.request("GET", "/api/next-id/arm-sf?dataType=snowflake")
            r = c.getresponse()
            sf = int(json.loads(r.read())["value"])
            assert r.status == 200 and sf > last_sf, (sf, last_sf)
            last_sf = sf
        c.request("GET", "/api/next-batch/arm-seq?batchSize=1000")
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200 and body["values"] == [str(v) for v in range(301, 1301)]
        c.close()
    finally:
        s.stop()


def test_dist_is_git_ignored():
    r = subprocess.run(["git", "check-ignore", "-q", "dist/shardid-v1/x"], cwd=REPO)
    assert r.returncode == 0, "dist/ must be git-ignored"
