"""Sequences stop at the type's maximum: 409 "Sequence exhausted", nothing handed out."""
from bbutil import INT_MAX, LONG_MAX, assert_error, ok, uniq


def test_int_exhausts_after_max(srv):
    e = uniq()
    ok(srv.init(e, "int", INT_MAX), 201)
    assert srv.take(e) == INT_MAX
    assert_error(srv.next_id(e), 409, "Sequence exhausted")
    assert_error(srv.next_id(e), 409, "Sequence exhausted")
    st = ok(srv.status(e))
    assert st["currentValue"] == INT_MAX


def test_long_exhausts_after_max(srv):
    e = uniq()
    ok(srv.init(e, "long", str(LONG_MAX - 1)), 201)
    assert srv.take(e) == str(LONG_MAX - 1)
    assert srv.take(e) == str(LONG_MAX)
    assert_error(srv.next_id(e), 409, "Sequence exhausted")
    assert ok(srv.status(e))["currentValue"] == str(LONG_MAX)


def test_batch_that_does_not_fit_hands_out_nothing(srv):
    e = uniq()
    ok(srv.init(e, "int", INT_MAX - 7), 201)
    before = ok(srv.status(e))
    assert_error(srv.batch(e, 9), 409, "Sequence exhausted")
    assert ok(srv.status(e)) == before
    body = ok(srv.batch(e, 8))
    assert body["values"] == list(range(INT_MAX - 7, INT_MAX + 1))
    assert_error(srv.batch(e, 1), 409, "Sequence exhausted")
    assert_error(srv.next_id(e), 409, "Sequence exhausted")


def test_exhaustion_on_shard_2_of_3_stays_in_residue_class(srv23):
    e = uniq()
    ok(srv23.init(e, "int", INT_MAX - 10), 201)
    got = []
    for _ in range(10):
        r = srv23.next_id(e)
        if r.status != 200:
            assert_error(r, 409, "Sequence exhausted")
            break
        got.append(ok(r)["value"])
    top = max(v for v in range(INT_MAX - 3, INT_MAX + 1) if (v - 2) % 3 == 0)
    assert got and got[-1] == top, got
    assert all((v - 2) % 3 == 0 and v <= INT_MAX for v in got)
    assert_error(srv23.next_id(e), 409, "Sequence exhausted")


def test_reset_to_max_then_exhaust(srv):
    e = uniq()
    srv.take(e, "int")
    ok(srv.reset(e, INT_MAX))
    assert srv.take(e) == INT_MAX
    assert_error(srv.next_id(e), 409, "Sequence exhausted")


def test_reset_beyond_int_max_is_400(srv):
    e = uniq()
    srv.take(e, "int")
    assert_error(srv.reset(e, INT_MAX + 1), 400)


def test_init_snapping_past_int_max_never_hands_out_beyond_max(srv23):
    """Shard 2 of 3: INT_MAX is not in the residue class, so startValue INT_MAX snaps
    past the maximum. Either the init is refused, or the entity is exhausted at once."""
    e = uniq()
    assert (INT_MAX - 2) % 3 != 0
    r = srv23.init(e, "int", INT_MAX)
    if r.status == 201:
        assert_error(srv23.next_id(e), 409, "Sequence exhausted")
    else:
        assert r.status in (400, 409), r
        assert_error(r, r.status)
