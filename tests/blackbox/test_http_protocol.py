"""HTTP/1.1 behaviour: routing errors, methods, HEAD, keep-alive, pipelining,
framing errors and limits, timeouts and the connection cap. Raw sockets."""
import random
import re
import socket
import struct
import time

import pytest

from bbutil import assert_error, get_req, ok, send_raw, uniq, wait_accepting


def health_ok(s):
    assert ok(s.get("/health"))["status"] == "healthy"


# ------------------------------------------------------- routing / methods ---
@pytest.mark.parametrize("path", ["/", "/nope", "/api", "/api/", "/api/unknown/x",
                                  "/healthz", "/HEALTH", "/api/next-idx/a", "/metrics/x"])
def test_unknown_path_is_404_json(srv, path):
    assert_error(srv.get(path), 404)


WRONG_METHOD = [
    ("POST", "/api/next-id/x", {"GET", "HEAD"}),
    ("PUT", "/api/next-batch/x?batchSize=1", {"GET", "HEAD"}),
    ("DELETE", "/health", {"GET", "HEAD"}),
    ("POST", "/shard-info", {"GET", "HEAD"}),
    ("PATCH", "/api/list", {"GET", "HEAD"}),
    ("PUT", "/metrics", {"GET", "HEAD"}),
    ("DELETE", "/api/types", {"GET", "HEAD"}),
    ("POST", "/api/status/x", {"GET", "HEAD"}),
    ("PUT", "/api/parse-snowflake/1", {"GET", "HEAD"}),
    ("GET", "/api/init/x", {"POST"}),
    ("PUT", "/api/init/x", {"POST"}),
    ("POST", "/api/reset/x", {"PUT"}),
    ("GET", "/api/reset/x", {"PUT"}),
    ("GET", "/api/entity/x", {"DELETE"}),
    ("PATCH", "/api/entity/x", {"DELETE"}),
]


@pytest.mark.parametrize("method,path,allow", WRONG_METHOD,
                         ids=[f"{m} {p}" for m, p, _ in WRONG_METHOD])
def test_wrong_method_is_405_with_allow(srv, method, path, allow):
    r = srv.request(method, path, body="{}" if method in ("POST", "PUT", "PATCH") else None)
    assert_error(r, 405)
    got = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert got == allow, r.headers


def test_wrong_method_changes_nothing(srv):
    e = uniq()
    srv.take(e, "int")
    assert srv.request("GET", f"/api/entity/{e}").status == 405
    assert srv.request("POST", f"/api/next-id/{e}").status == 405
    assert srv.take(e) == 2


@pytest.mark.parametrize("method", ["FOO", "get", "BREW", "PROPFIND"])
def test_unknown_method_token(srv, method):
    with srv.raw() as c:
        r = c.request(f"{method} /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status in (501, 405), r
    assert_error(r, r.status)
    if r.status == 405:
        assert "allow" in r.headers
    health_ok(srv)


@pytest.mark.parametrize("path", ["/shard-info", "/api/types", "/nope", "/api/status/none-such",
                                  "/api/parse-snowflake/123456789"])
def test_head_matches_get_without_body(srv, path):
    g = srv.get(path)
    with srv.raw() as c:
        h = c.request(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n", head=True)
        # the connection must carry no body bytes: the next response parses cleanly
        g2 = c.request(get_req("/shard-info"))
    assert h.status == g.status
    assert h.body == b""
    drop = {"date"}
    assert {k: v for k, v in h.headers.items() if k not in drop} == \
        {k: v for k, v in g.headers.items() if k not in drop}
    assert int(h.headers["content-length"]) == len(g.body)
    assert g2.status == 200 and g2.json["status"] == "active"


def test_head_health(srv):
    with srv.raw() as c:
        h = c.request(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", head=True)
        assert h.status == 200 and int(h.headers["content-length"]) > 0
        assert c.request(get_req()).status == 200


# ---------------------------------------------------- keep-alive / pipelining ---
def test_keep_alive_on_http_1_1(srv):
    with srv.raw() as c:
        for _ in range(5):
            r = c.request(get_req())
            assert r.status == 200
            assert "close" not in r.headers.get("connection", "").lower()
        assert not c.closed_by_peer(0.3)


def test_pipelining_three_requests_in_one_write(srv):
    with srv.raw() as c:
        c.send(get_req("/health") + get_req("/shard-info") + get_req("/api/types"))
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [200, 200, 200]
    assert rs[0].json["status"] == "healthy"
    assert rs[1].json["status"] == "active"
    assert "availableTypes" in rs[2].json


def test_pipelined_next_ids_are_answered_in_order(srv):
    e = uniq()
    srv.take(e, "int")
    with srv.raw() as c:
        c.send(b"".join(get_req(f"/api/next-id/{e}") for _ in range(20)))
        vals = [c.read_response().json["value"] for _ in range(20)]
    assert vals == list(range(2, 22))


def test_large_pipeline_in_one_write(srv):
    e = uniq()
    srv.take(e, "int")
    with srv.raw(timeout=10) as c:
        c.send(b"".join(get_req(f"/api/next-id/{e}") for _ in range(500)))
        vals = [c.read_response().json["value"] for _ in range(500)]
    assert vals == list(range(2, 502))


@pytest.mark.parametrize("path,status", [("/nope", 404), ("/api/status/never-seen", 404),
                                         ("/api/next-batch/x?batchSize=0", 400),
                                         ("/api/next-id/x?dataType=bogus", 400),
                                         ("/api/parse-snowflake/abc", 400)])
def test_application_errors_keep_the_connection(srv, path, status):
    with srv.raw() as c:
        assert c.request(get_req(path)).status == status
        assert c.request(get_req("/shard-info")).status == 200


def test_405_keeps_the_connection(srv):
    with srv.raw() as c:
        r = c.request(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        assert r.status == 405
        assert c.request(get_req("/shard-info")).status == 200


def test_pipelined_posts_with_bodies(srv):
    a, b = uniq(), uniq()
    body = b'{"dataType":"int","startValue":5}'
    req = lambda e: (f"POST /api/init/{e} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with srv.raw() as c:
        c.send(req(a) + req(b) + get_req(f"/api/next-id/{a}"))
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [201, 201, 200], rs
    assert rs[2].json["value"] == 5


def test_get_with_body_is_consumed(srv):
    with srv.raw() as c:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get_req("/shard-info"))
        r1, r2 = c.read_response(), c.read_response()
    assert r1.status == 200 and r2.status == 200 and r2.json["status"] == "active"


def test_request_sent_byte_by_byte(srv):
    with srv.raw() as c:
        for b in get_req("/shard-info"):
            c.send(bytes([b]))
            time.sleep(0.001)   # the point: each byte arrives on its own
        r = c.read_response()
    assert r.status == 200 and r.json["shardId"] == 1


def test_body_arriving_late(srv):
    e = uniq()
    body = b'{"dataType":"long"}'
    with srv.raw() as c:
        # The point: the head, then the body in two pieces, each arriving
        # well after the one before (a slow client, not a condition to wait on).
        c.send(f"POST /api/init/{e} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n")
        time.sleep(0.2)
        c.send(body[:5])
        time.sleep(0.2)
        c.send(body[5:])
        r = c.read_response()
    assert r.status == 201, r


def test_http_1_0_closes_after_response(srv):
    with srv.raw() as c:
        r = c.request(b"GET /health HTTP/1.0\r\n\r\n")
        assert r.status == 200 and r.json["status"] == "healthy"
        assert c.closed_by_peer()


def test_http_1_0_keep_alive(srv):
    with srv.raw() as c:
        r = c.request(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert r.status == 200
        assert "keep-alive" in r.headers.get("connection", "").lower(), r.headers
        r = c.request(b"GET /shard-info HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert r.status == 200 and r.json["status"] == "active"
        assert not c.closed_by_peer(0.3)


def test_connection_close_honoured(srv):
    with srv.raw() as c:
        r = c.request(get_req(extra="Connection: close\r\n"))
        assert r.status == 200
        assert "close" in r.headers.get("connection", "").lower()
        assert c.closed_by_peer()


def test_connection_close_in_pipeline_stops_processing(srv):
    e = uniq()
    srv.take(e, "int")
    with srv.raw() as c:
        c.send(get_req(f"/api/next-id/{e}", extra="Connection: close\r\n") + get_req(f"/api/next-id/{e}"))
        r = c.read_response()
        assert r.json["value"] == 2
        assert c.closed_by_peer()
    assert srv.take(e) == 3        # the request after "close" was not executed


def test_header_with_tab_in_value_is_fine(srv):
    with srv.raw() as c:
        assert c.request(get_req(extra="X-Thing: a\tb\r\n")).status == 200


def test_head_just_under_8_kib_is_accepted(srv):
    pad = "a" * (7900 - len(get_req()))
    with srv.raw() as c:
        assert c.request(get_req(extra=f"X-Pad: {pad}\r\n")).status == 200


def test_uri_just_under_2_kib_is_accepted(srv):
    path = "/health?x=" + "a" * 2000
    with srv.raw() as c:
        assert c.request(get_req(path)).status == 200


def test_http_1_0_without_host_is_fine(srv):
    with srv.raw() as c:
        assert c.request(b"GET /shard-info HTTP/1.0\r\n\r\n").status == 200


# --------------------------------------------------- malformed / over limits ---
def _cl_post(extra, body=b""):
    return (b"POST /api/init/x HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n" + body)


BAD = [
    ("no host on 1.1", b"GET /health HTTP/1.1\r\n\r\n", 400),
    ("duplicate host", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("head over 8 KiB", get_req(extra="X-Pad: " + "a" * 9000 + "\r\n"), 431),
    ("many headers over 8 KiB", get_req(extra="".join(f"X-H{i}: {'v' * 90}\r\n" for i in range(100))), 431),
    ("uri over 2 KiB", get_req("/health?x=" + "a" * 2100), 414),
    ("body over 16 KiB", _cl_post(b"Content-Length: 16385\r\n"), 413),
    ("chunked", _cl_post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 411),
    ("content-length and transfer-encoding",
     _cl_post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("duplicate content-length", _cl_post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"), 400),
    ("conflicting content-length", _cl_post(b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"), 400),
    ("content-length list", _cl_post(b"Content-Length: 2, 2\r\n", b"{}"), 400),
    ("content-length not a number", _cl_post(b"Content-Length: abc\r\n"), 400),
    ("content-length negative", _cl_post(b"Content-Length: -1\r\n"), 400),
    ("content-length plus sign", _cl_post(b"Content-Length: +2\r\n", b"{}"), 400),
    ("content-length huge", _cl_post(b"Content-Length: 99999999999999999999999\r\n"), (400, 413)),
    ("bare LF", b"GET /health HTTP/1.1\nHost: x\n\n", 400),
    ("bare LF in headers", b"GET /health HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    ("bare CR", b"GET /health HTTP/1.1\rHost: x\r\n\r\n", 400),
    ("obs-fold", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("NUL in header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("control byte in header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    ("DEL in header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("NUL in target", b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("control byte in target", b"GET /hea\x1flth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space before colon", b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("header without colon", b"GET /health HTTP/1.1\r\nHost: x\r\nGarbage\r\n\r\n", 400),
    ("empty header name", b"GET /health HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400),
    ("invalid method token", b"G(T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("two spaces in request line", b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("missing version", b"GET /health\r\nHost: x\r\n\r\n", 400),
    ("bad version token", b"GET /health HTTX/1.1\r\nHost: x\r\n\r\n", 400),
    ("garbage after version", b"GET /health HTTP/1.1x\r\nHost: x\r\n\r\n", 400),
    ("HTTP/2.0", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/3.1", b"GET /health HTTP/3.1\r\nHost: x\r\n\r\n", 505),
    ("absolute-form target", b"GET http://127.0.0.1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("asterisk target", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("relative target", b"GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]
BAD_IDS = [n for n, _, _ in BAD]


def _send_bad(s, raw):
    c, r = send_raw(s, raw)
    if r is None:
        c.close()
        raise AssertionError("connection closed or reset before any response")
    return c, r


@pytest.mark.parametrize("raw,status", [(r, st) for _, r, st in BAD], ids=BAD_IDS)
def test_malformed_request_status_and_close(srv, raw, status):
    c, r = _send_bad(srv, raw)
    try:
        assert r.status in (status if isinstance(status, tuple) else (status,)), r
        assert c.closed_by_peer(), "server kept the connection open after a framing error"
    finally:
        c.close()
    health_ok(srv)


@pytest.mark.parametrize("raw,status", [(r, st) for _, r, st in BAD], ids=BAD_IDS)
def test_malformed_request_error_body_is_json(srv, raw, status):
    c, r = _send_bad(srv, raw)
    c.close()
    assert_error(r, r.status)
    assert int(r.headers["content-length"]) == len(r.body)


def test_framing_error_after_good_request_on_same_connection(srv):
    with srv.raw() as c:
        assert c.request(get_req()).status == 200
        r = c.request(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n")
        assert r.status == 400
        assert c.closed_by_peer()


def test_request_after_malformed_in_pipeline_not_executed(srv):
    e = uniq()
    srv.take(e, "int")
    with srv.raw() as c:
        c.send(b"GET /health HTTP/1.1\nHost: x\n\n" + get_req(f"/api/next-id/{e}"))
        assert c.read_response().status == 400
        assert c.closed_by_peer()
    assert srv.take(e) == 2


# ----------------------------------------------------- robustness / abuse ---
def test_random_garbage_does_not_hurt(srv):
    rnd = random.Random(1234)
    alphabet = b"GETPOST /HTP1.0\r\n:abc%\x00\xff"
    conns = []
    try:
        for i in range(120):
            n = rnd.randint(1, 300)
            data = bytes(rnd.choice(alphabet) for _ in range(n)) if i % 2 else rnd.randbytes(n)
            c = srv.raw(timeout=2)
            conns.append(c)
            try:
                c.send(data + b"\r\n\r\n")
            except OSError:
                pass
        # Each ends with a blank line: the server must have dealt with every
        # one (answered with an error, or not at all) and closed it.
        for i, c in enumerate(conns):
            got = b""
            c.sock.settimeout(5)
            try:
                while chunk := c.sock.recv(65536):
                    got += chunk
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise AssertionError(f"garbage connection {i} still open after 5 s: {got[:80]!r}")
            assert not got or re.match(rb"HTTP/1\.[01] 4\d\d ", got), (i, got[:200])
    finally:
        for c in conns:
            c.close()
    health_ok(srv)


def test_client_disconnects_mid_request(srv):
    for part in [b"GET /hea", b"POST /api/init/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"da"]:
        c = srv.raw()
        c.send(part)
        c.close()
    health_ok(srv)


def test_client_resets_connection(srv):
    for part in [b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 50, b"GET /hea"]:
        c = srv.raw()
        c.send(part)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()                                  # RST, with responses possibly unread
    health_ok(srv)


def test_client_never_reads_responses(srv):
    """A client that pipelines many requests and never reads must not block others."""
    c = srv.raw()
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sock.settimeout(2)
        try:
            for _ in range(2000):
                c.send(get_req("/api/types"))
        except (socket.timeout, OSError):
            pass                                   # server stopped reading: fine
        health_ok(srv)
    finally:
        c.close()
    health_ok(srv)


def test_many_sequential_connections(srv):
    for _ in range(300):
        with srv.raw() as c:
            assert c.request(get_req(extra="Connection: close\r\n")).status == 200
    health_ok(srv)


# --------------------------------------------------------------- timeouts ---
@pytest.mark.timeout(30)
def test_partial_head_is_closed_after_header_timeout(srv):
    c = srv.raw(timeout=20)
    try:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")   # never finished
        t0 = time.monotonic()
        health_ok(srv)                                  # others are served meanwhile
        c.sock.settimeout(16)
        leftover = b""
        try:
            while True:
                data = c.sock.recv(65536)
                if not data:
                    break
                leftover += data
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert 9.0 <= elapsed <= 13.0, elapsed
    if leftover:                                        # an optional 408 before closing
        assert leftover.startswith(b"HTTP/1.1 408"), leftover[:100]


# --------------------------------------------------------- connection cap ---
def test_connection_cap_refuses_cleanly_and_keeps_serving(servers):
    cap = 4
    s = servers(env={"MAX_CONNECTIONS": cap})
    held = [s.raw() for _ in range(cap)]
    try:
        for c in held:
            assert c.request(get_req()).status == 200
        extra = s.raw()
        try:
            try:
                extra.send(get_req())
                if extra.closed_by_peer(3):
                    refused = True
                elif extra.buf:
                    r = extra.read_response()
                    refused = r.status == 503
                    assert refused, r
                else:
                    refused = False
            except (ConnectionResetError, BrokenPipeError, EOFError):
                refused = True
            assert refused, "connection over the cap was left hanging (no close, no 503 in 3 s)"
        finally:
            extra.close()
        for c in held:                                   # the others are still served
            assert c.request(get_req()).status == 200
        held.pop().close()
        wait_accepting(s, 3, "no connection accepted after one closed")  # a slot frees up again
    finally:
        for c in held:
            c.close()
