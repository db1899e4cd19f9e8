"""DATA_DIR basics. The journal's failure modes (torn tail, corrupt middle, full
disk, a second process on the same directory, clock steps) are covered in
test_durability.py."""
import pytest

from bbutil import ok


def test_data_dir_is_created(servers, tmp_path):
    d = tmp_path / "a" / "b"
    d.parent.mkdir()
    s = servers(env={"DATA_DIR": str(d)})
    s.take("x", "int")
    assert d.is_dir() and any(d.iterdir())


def test_data_dir_that_is_a_file_fails_startup(servers, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    s = servers(env={"DATA_DIR": str(f)}, start=False)
    s.start(wait=False)
    rc = s.proc.wait(5)
    assert rc != 0
    assert str(f) in s.output()


@pytest.mark.timeout(40)
def test_churn_of_entities_survives_crash(servers):
    """Many bind/delete records (long names), then kill -9: only the kept
    entities come back, each continuing above what it handed out."""
    s = servers()
    long = "n" * 120
    for i in range(150):
        ok(s.init(f"{long}{i:03d}", "int", i * 10), 201)
        ok(s.delete(f"{long}{i:03d}"))
    kept = {}
    for i in range(20):
        name = f"k{i:02d}"
        kept[name] = ok(s.batch(name, 50, "long"))["values"][-1]
    s.crash_restart()
    assert [e["entityName"] for e in ok(s.get("/api/list"))["entities"]] == sorted(kept)
    for name, last in kept.items():
        assert int(s.take(name)) > int(last)


@pytest.mark.timeout(120)
def test_compaction_then_kill_9_repeats_nothing(servers):
    """Grow the journal past its 4 MiB compaction threshold with new entities
    (long names), kill -9 right after the compaction, and check that the
    entity whose write triggered it, and the others, continue above what they
    handed out: the snapshot holds every write made before it."""
    s = servers()
    prefix = "c" * 118
    last = []
    while True:
        for _ in range(500):
            name = f"{prefix}{len(last):05d}"
            last.append((name, int(ok(s.batch(name, 3, "long"))["endValue"])))
        if "journal compacted" in s.output():
            break
        assert len(last) < 40000, "the journal never compacted"
    s.crash_restart()
    recent = last[-600:]                       # the trigger is among these
    sample = last[:-600:max(1, len(last) // 200)]
    for name, value in recent + sample:
        assert int(s.take(name)) > value, name
