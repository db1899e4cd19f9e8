"""Hostile clients, against the release binary and the ASan+UBSan build.

Every test runs once per binary (the module-scoped server is parametrized):
`release` is zig-out/bin/shardid (or SHARDID_BIN), `asan` is build/shardid-asan
(`make build/shardid-asan`; skipped when missing). After each test the server
must still run, answer /health on a fresh connection and have printed no
sanitizer report; at the end of the module it must exit 0 on SIGTERM (for the
ASan build that includes LeakSanitizer's exit check).

Each case checks: the expected status or a close, /health afterwards, bounded
memory (VmRSS before/after a repeated abuse loop) and that a rejected request
hands out no ID (its entity stays unknown: /api/status is 404).
"""
import json
import re
import resource
import select
import socket
import struct
import threading
import time

import pytest

from bbutil import (BUILDS, BuildServer, assert_error, build_missing, get_req, ok, send_raw,
                    stop_all, uniq, wait_accepting)

# Allowed VmRSS growth over a repeated abuse loop (after a warm-up round).
RSS_SLACK_KIB = {"release": 3 * 1024, "asan": 12 * 1024}


# --------------------------------------------------------------------------- #
# The server: either build (bbutil.BuildServer)
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module", params=list(BUILDS))
def flavor(request):
    why = build_missing(request.param)
    if why:
        pytest.skip(why)
    return request.param


@pytest.fixture(scope="module")
def _hs_module(flavor, tmp_path_factory):
    s = BuildServer(tmp_path_factory.mktemp(f"hostile-{flavor}"), flavor)
    s.start()
    yield s
    s.finish()


@pytest.fixture
def hs(_hs_module):
    """The module's server; afterwards: alive, healthy, sanitizer-clean."""
    s = _hs_module
    if not s.running:          # crashed by an earlier test: only that one fails
        s.start()
    yield s
    assert s.running, f"server died (exit {s.proc.returncode}):\n{s.output()[-6000:]}"
    s.assert_sanitizer_clean()
    health_ok(s)


@pytest.fixture
def fresh(flavor, tmp_path_factory):
    """Factory of servers with a special configuration, of the module's binary."""
    made = []

    def make(env=None):
        s = BuildServer(tmp_path_factory.mktemp(f"hostile-{flavor}-fresh"), flavor, env=env)
        made.append(s)
        return s.start()

    yield make
    stop_all(made)   # each: exit 0 and no sanitizer report


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def health_ok(s):
    r = s.get("/health")
    assert ok(r)["status"] == "healthy", r


def untouched(s, entity):
    """A rejected request handed out nothing: the entity was never bound."""
    r = s.get(f"/api/status/{entity}")
    assert r.status == 404, f"rejected request for {entity!r} changed state: {r!r}"


def rss_bounded(s, abuse, rounds, warmup=1):
    """Runs abuse() warmup + rounds times; VmRSS may grow by at most the slack."""
    for _ in range(warmup):
        abuse()
    before = s.rss_kib()
    for _ in range(rounds):
        abuse()
    after = s.rss_kib()
    print(f"rss[{s.build}]: {before} -> {after} KiB over {rounds} rounds")
    slack = RSS_SLACK_KIB[s.build]
    assert after - before <= slack, (
        f"{s.build}: RSS grew {after - before} KiB over {rounds} rounds "
        f"({before} -> {after} KiB, allowed {slack})")
    return before, after


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        want = n if hard == resource.RLIM_INFINITY else min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        pytest.skip(f"needs {n} file descriptors, RLIMIT_NOFILE allows {soft}")


def rst_close(sock):
    """Abrupt close: RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def read_until_eof(sock, timeout):
    """All bytes until the peer closes (EOF or reset) -> (bytes, closed)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def parse_responses(data):
    """Splits raw bytes into complete responses -> ([(status, headers, body)], rest)."""
    out, pos = [], 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if len(data) < end + 4 + n:
            break
        out.append((int(lines[0].split(" ", 2)[1]), headers, data[end + 4:end + 4 + n]))
        pos = end + 4 + n
    return out, data[pos:]


def metric(s, name):
    r = s.get("/metrics")
    assert r.status == 200, r
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)", r.body, re.M)
    assert m, f"{name} missing from /metrics"
    return int(m.group(1))


def send_bad(s, raw, wait_close=True):
    """Sends raw bytes -> (Resp or None, closed by the server within 2 s)."""
    c, r = send_raw(s, raw)
    try:
        if r is None:
            return None, True
        return r, wait_close and c.closed_by_peer(2.0)
    finally:
        c.close()


# --------------------------------------------------------------------------- #
# Request smuggling, framing and syntax
# --------------------------------------------------------------------------- #
def _get(target, extra=b"", version=b"HTTP/1.1", method=b"GET"):
    return method + b" " + target + b" " + version + b"\r\nHost: x\r\n" + extra + b"\r\n"


def _post(target, extra, body=b""):
    return b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n" + body


# (id, builder(next-id target, init target) -> bytes, expected statuses, must close)
# Each case names a fresh entity; afterwards /api/status of it must be 404.
CLOSE = True
FRAMING = [
    # Content-Length / Transfer-Encoding smuggling
    ("dup-content-length", lambda g, p: _post(p, b"Content-Length: 18\r\nContent-Length: 18\r\n",
                                              b'{"dataType":"int"}'), {400}, CLOSE),
    ("conflicting-content-length", lambda g, p: _post(p, b"Content-Length: 18\r\nContent-Length: 5\r\n",
                                                      b'{"dataType":"int"}'), {400}, CLOSE),
    ("content-length-list", lambda g, p: _post(p, b"Content-Length: 18, 18\r\n",
                                               b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-and-te-chunked", lambda g, p: _post(p, b"Content-Length: 23\r\nTransfer-Encoding: chunked\r\n",
                                             b'12\r\n{"dataType":"int"}\r\n0\r\n\r\n'), {400}, CLOSE),
    ("te-then-cl", lambda g, p: _post(p, b"Transfer-Encoding: chunked\r\nContent-Length: 23\r\n",
                                      b'12\r\n{"dataType":"int"}\r\n0\r\n\r\n'), {400}, CLOSE),
    ("te-chunked", lambda g, p: _post(p, b"Transfer-Encoding: chunked\r\n",
                                      b'12\r\n{"dataType":"int"}\r\n0\r\n\r\n'), {411}, CLOSE),
    ("te-gzip", lambda g, p: _post(p, b"Transfer-Encoding: gzip\r\n", b"\x1f\x8b"), {411}, CLOSE),
    ("te-identity", lambda g, p: _post(p, b"Transfer-Encoding: identity\r\n"), {411}, CLOSE),
    ("te-chunked-on-get", lambda g, p: _get(g, b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
     {411}, CLOSE),
    ("cl-negative", lambda g, p: _post(p, b"Content-Length: -18\r\n", b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-overflow-2^64", lambda g, p: _post(p, b"Content-Length: 18446744073709551634\r\n",
                                            b'{"dataType":"int"}'), {413}, CLOSE),
    ("cl-overflow-huge", lambda g, p: _post(p, b"Content-Length: " + b"9" * 40 + b"\r\n"), {413}, CLOSE),
    ("cl-inner-space", lambda g, p: _post(p, b"Content-Length: 1 8\r\n", b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-space-before-colon", lambda g, p: _post(p, b"Content-Length : 18\r\n",
                                                 b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-empty", lambda g, p: _post(p, b"Content-Length:\r\n"), {400}, CLOSE),
    ("cl-hex", lambda g, p: _post(p, b"Content-Length: 0x12\r\n", b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-plus", lambda g, p: _post(p, b"Content-Length: +18\r\n", b'{"dataType":"int"}'), {400}, CLOSE),
    ("cl-over-16k", lambda g, p: _post(p, b"Content-Length: 16385\r\n"), {413}, CLOSE),
    ("get-body-over-16k", lambda g, p: _get(g, b"Content-Length: 17000\r\n"), {413}, CLOSE),
    # line endings and folding
    ("bare-lf", lambda g, p: _get(g).replace(b"\r\n", b"\n"), {400}, CLOSE),
    ("bare-lf-in-headers", lambda g, p: b"GET " + g + b" HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", {400}, CLOSE),
    ("bare-cr", lambda g, p: b"GET " + g + b" HTTP/1.1\rHost: x\r\n\r\n", {400}, CLOSE),
    ("bare-cr-in-value", lambda g, p: _get(g, b"X-A: a\rb\r\n"), {400}, CLOSE),
    ("obs-fold", lambda g, p: _get(g, b"X-A: a\r\n b\r\n"), {400}, CLOSE),
    ("obs-fold-tab", lambda g, p: _get(g, b"X-A: a\r\n\tb\r\n"), {400}, CLOSE),
    ("leading-space-first-header", lambda g, p: b"GET " + g + b" HTTP/1.1\r\n Host: x\r\n\r\n",
     {400}, CLOSE),
    ("leading-empty-line", lambda g, p: b"\r\n" + _get(g), {400}, CLOSE),
    # NUL and control bytes
    ("nul-in-method", lambda g, p: _get(g, method=b"G\x00T"), {400}, CLOSE),
    ("nul-in-target", lambda g, p: _get(g + b"\x00x"), {400}, CLOSE),
    ("nul-in-version", lambda g, p: _get(g, version=b"HTTP/1.\x001"), {400}, CLOSE),
    ("nul-in-header-name", lambda g, p: _get(g, b"X-\x00: 1\r\n"), {400}, CLOSE),
    ("nul-in-header-value", lambda g, p: _get(g, b"X-A: a\x00b\r\n"), {400}, CLOSE),
    ("esc-in-header-value", lambda g, p: _get(g, b"X-A: \x1b[31mred\r\n"), {400}, CLOSE),
    ("del-in-target", lambda g, p: _get(g + b"\x7f"), {400}, CLOSE),
    ("tab-in-target", lambda g, p: _get(g.replace(b"?", b"\t?")), {400}, CLOSE),
    ("high-bit-in-target", lambda g, p: _get(g.replace(b"?", b"\xc3\xa9?")), {400}, CLOSE),
    ("ctl-in-request-line", lambda g, p: b"GET\x01" + g + b" HTTP/1.1\r\nHost: x\r\n\r\n", {400}, CLOSE),
    # target forms and versions
    ("absolute-form", lambda g, p: _get(b"http://127.0.0.1" + g), {400}, CLOSE),
    ("asterisk-form", lambda g, p: b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", {400}, CLOSE),
    ("authority-form", lambda g, p: b"CONNECT 127.0.0.1:7001 HTTP/1.1\r\nHost: x\r\n\r\n", {400}, CLOSE),
    ("http-0.9", lambda g, p: b"GET " + g + b"\r\n", {400}, CLOSE),
    ("http-2-preface", lambda g, p: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400}, CLOSE),
    ("http-2.0-version", lambda g, p: _get(g, version=b"HTTP/2.0"), {505}, CLOSE),
    ("http-1.2-version", lambda g, p: _get(g, version=b"HTTP/1.2"), {505}, CLOSE),
    ("http-1.10-version", lambda g, p: _get(g, version=b"HTTP/1.10"), {400}, CLOSE),
    ("lowercase-version", lambda g, p: _get(g, version=b"http/1.1"), {400}, CLOSE),
    ("no-host-1.1", lambda g, p: b"GET " + g + b" HTTP/1.1\r\n\r\n", {400}, CLOSE),
    ("double-host", lambda g, p: _get(g, b"Host: y\r\n"), {400}, CLOSE),
    # sizes
    ("uri-2049", lambda g, p: _get(g + b"&pad=" + b"a" * (2049 - len(g) - 5)), {414}, CLOSE),
    ("uri-64k", lambda g, p: _get(g + b"&pad=" + b"a" * 65536), {414, 431}, CLOSE),
    ("method-9000", lambda g, p: _get(g, method=b"G" * 9000), {431}, CLOSE),
    ("header-9000", lambda g, p: _get(g, b"X-Pad: " + b"a" * 9000 + b"\r\n"), {431}, CLOSE),
    ("header-name-9000", lambda g, p: _get(g, b"X" * 9000 + b": 1\r\n"), {431}, CLOSE),
    ("headers-65", lambda g, p: _get(g, b"".join(b"X-%d: v\r\n" % i for i in range(64))), {431}, CLOSE),
    ("headers-1000-tiny", lambda g, p: _get(g, b"X:1\r\n" * 1000), {431}, CLOSE),
    ("head-never-ends-9000", lambda g, p: b"GET " + g + b" HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 9000,
     {431}, CLOSE),
    # unknown method tokens: not framing errors; the route refuses them (405 with
    # Allow, as SPEC 4 says for a known path; 501 "not implemented" tolerated here)
    ("lowercase-method", lambda g, p: _get(g, method=b"get"), {405, 501}, False),
    ("lowercase-post", lambda g, p: _post(p, b"Content-Length: 18\r\n", b'{"dataType":"int"}')
     .replace(b"POST", b"post", 1), {405, 501}, False),
    ("method-3000", lambda g, p: _get(g, method=b"G" * 3000), {405, 501}, False),
    ("method-query", lambda g, p: _get(g, method=b"QUERY"), {405, 501}, False),
]
FRAMING_IDS = [c[0] for c in FRAMING]


def _targets(entity):
    return (f"/api/next-id/{entity}?dataType=int".encode(), f"/api/init/{entity}".encode())


@pytest.mark.parametrize("case", FRAMING, ids=FRAMING_IDS)
def test_framing_and_syntax(hs, case):
    name, build, want, must_close = case
    e = uniq("bad")
    r, closed = send_bad(hs, build(*_targets(e)), wait_close=must_close)
    assert r is not None, f"{name}: connection closed without a response"
    assert r.status in want, f"{name}: expected {sorted(want)}, got {r!r}"
    assert_error(r, r.status)
    assert int(r.headers["content-length"]) == len(r.body), r
    if must_close:
        assert r.headers.get("connection", "").lower() == "close", r
        assert closed, f"{name}: connection left open after {r.status}"
    if r.status == 405:
        assert r.headers.get("allow"), r
    untouched(hs, e)


def test_framing_exact_limits_are_accepted(hs):
    """The limits' other side: 2048-byte target, 64 headers, OWS around
    Content-Length, a 3000-byte method token, all served normally."""
    e = uniq("lim")
    g, p = _targets(e)
    with hs.raw() as c:
        r = c.request(_get(g + b"&pad=" + b"a" * (2048 - len(g) - 5)))
        assert ok(r)["value"] == 1
        r = c.request(_get(g, b"".join(b"X-%d: v\r\n" % i for i in range(63))))
        assert ok(r)["value"] == 2
    e2 = uniq("ows")
    with hs.raw() as c:
        r = c.request(_post(_targets(e2)[1], b"Content-Length: \t 18 \t\r\n", b'{"dataType":"int"}'))
        assert ok(r, 201)["entityName"] == e2


@pytest.mark.timeout(120)
def test_framing_abuse_memory_is_bounded(hs):
    """Every malformed request again and again: RSS stays flat, nothing is bound."""
    names = []

    def abuse():
        for _, build, _, _ in FRAMING:
            e = uniq("loop")
            names.append(e)
            send_bad(hs, build(*_targets(e)), wait_close=False)

    rss_bounded(hs, abuse, rounds=30)
    for e in names[::97]:
        untouched(hs, e)


def test_smuggled_second_request_is_not_executed(hs):
    """A request hidden in a body the server refuses to frame never runs."""
    e = uniq("smug")
    inner = get_req(f"/api/next-id/{e}?dataType=int")
    for raw in (_post(b"/api/init/x", b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                      b"0\r\n\r\n" + inner),
                _post(b"/api/init/x", b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + inner),
                _post(b"/api/init/x", b"Content-Length: 0\r\nContent-Length: 5\r\n", inner),
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" + inner,
                b"GET /health HTTP/1.1\nHost: x\n\n" + inner):
        r, closed = send_bad(hs, raw)
        assert r is not None and r.status in (400, 411), r
        assert closed
    untouched(hs, e)


# --------------------------------------------------------------------------- #
# Slow and abusive clients
# --------------------------------------------------------------------------- #
@pytest.mark.timeout(30)
def test_slowloris_is_cut_off_after_header_timeout(hs):
    """Clients trickling one byte a second: a head, a body, and a second
    request on a keep-alive connection. Each is answered 408 (or just closed)
    10-11 s after the first byte of its request; others are served meanwhile."""
    ents = [uniq("slow") for _ in range(6)]
    pad = "a" * 40
    body = b'{"dataType":"int"}' + b" " * 20
    conns = []
    for i, e in enumerate(ents):
        c = hs.raw(timeout=5)
        first = None
        if i < 4:                                  # the head trickles
            trickle = (f"GET /api/next-id/{e}?dataType=int HTTP/1.1\r\nHost: x\r\n"
                       f"X-Pad: {pad}\r\n\r\n").encode()
        elif i == 4:                               # whole head, the body trickles
            first = time.monotonic()               # the request starts with its head
            c.send(f"POST /api/init/{e} HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n".encode())
            trickle = body
        else:                                      # keep-alive: one request, idle, then a trickle
            assert c.request(get_req()).status == 200
            time.sleep(0.5)
            trickle = (f"GET /api/next-id/{e}?dataType=int HTTP/1.1\r\nHost: x\r\n"
                       f"X-Pad: {pad}\r\n\r\n").encode()
        conns.append({"c": c, "data": trickle, "entity": e, "first": first,
                      "closed_at": None, "got": b""})

    t_end = time.monotonic() + 13.5
    next_tick = time.monotonic()
    checked_health = False
    while time.monotonic() < t_end and any(x["closed_at"] is None for x in conns):
        now = time.monotonic()
        if now >= next_tick:
            next_tick += 1.0
            for x in conns:
                if x["closed_at"] is None and x["data"]:
                    if x["first"] is None:
                        x["first"] = time.monotonic()     # before the byte leaves
                    try:
                        x["c"].sock.send(x["data"][:1])
                    except (BrokenPipeError, ConnectionResetError):
                        x["closed_at"] = time.monotonic()
                        continue
                    x["data"] = x["data"][1:]
        if not checked_health and any(x["first"] and now - x["first"] > 4 for x in conns):
            health_ok(hs)                                  # others are served meanwhile
            checked_health = True
        socks = [x["c"].sock for x in conns if x["closed_at"] is None]
        rd, _, _ = select.select(socks, [], [], max(0.0, min(0.2, next_tick - time.monotonic())))
        for x in conns:
            if x["c"].sock in rd:
                try:
                    chunk = x["c"].sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    chunk = b""
                if chunk:
                    x["got"] += chunk
                else:
                    x["closed_at"] = time.monotonic()
    try:
        assert checked_health
        for x in conns:
            assert x["data"], "trickle ran out before the timeout: make the request longer"
            assert x["closed_at"] is not None, f"{x['entity']}: still open after 13.5 s"
            took = x["closed_at"] - x["first"]
            # 10 s from the first byte: not earlier (a slow but legal client
            # must get its full 10 s), and not much later
            assert 9.95 <= took <= 11.5, f"{x['entity']}: closed {took:.2f} s after its first byte"
            if x["got"]:
                assert x["got"].startswith(b"HTTP/1.1 408 "), x["got"][:200]
    finally:
        for x in conns:
            x["c"].close()
    for e in ents:
        untouched(hs, e)


def _slow_reader_round(hs, entity, batch):
    """Pipelines next-batch requests without reading until the server stops
    reading; then reads everything back in order.
    -> (last value, VmRSS while stuck, requests answered)"""
    req = get_req(f"/api/next-batch/{entity}?dataType=int&batchSize={batch}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((hs.host, hs.port))
    try:
        sock.setblocking(False)
        sent, stall_since, chunk = 0, None, req * 64
        pending = memoryview(b"")
        cap = 256 * 1024 * 1024                      # if it never stops reading, RSS says so
        while sent < cap:
            if not pending:
                pending = memoryview(chunk)
            _, wr, _ = select.select([], [sock], [], 0.25)
            if not wr:
                stall_since = stall_since or time.monotonic()
                if time.monotonic() - stall_since > 1.5:
                    break                             # the server has stopped reading
                continue
            stall_since = None
            try:
                n = sock.send(pending)
            except BlockingIOError:
                continue
            sent += n
            pending = pending[n:]
        assert sent < cap, "server kept reading while responses piled up"
        stuck_rss = hs.rss_kib()
        health_ok(hs)                                # a slow reader blocks nobody else
        # Now read everything that was fully sent, in order.
        complete = sent // len(req)
        sock.setblocking(True)
        sock.settimeout(20)
        buf, got, last = b"", 0, None
        while got < complete:
            data = sock.recv(1 << 20)
            assert data, f"closed after {got} of {complete} responses"
            buf += data
            resps, buf = parse_responses(buf)
            for st, _, body in resps:
                assert st == 200, body[:200]
                vals = [int(v) for v in re.search(rb'"values":\[([0-9,]*)\]', body).group(1).split(b",")]
                assert len(vals) == batch
                if last is not None:
                    assert vals[0] == last + 1, (last, vals[0])
                assert vals == list(range(vals[0], vals[0] + batch))
                last = vals[-1]
                got += 1
        return last, stuck_rss, complete
    finally:
        rst_close(sock)


@pytest.mark.timeout(90)
def test_slow_reader_is_not_buffered_unboundedly(hs):
    """Pipelining while never reading: the server stops reading once about
    256 KiB of responses wait, so its memory stays bounded; every request it
    did read is answered, in order, once the client reads."""
    e = uniq("slowread")
    base = hs.rss_kib()
    last, stuck1, n1 = _slow_reader_round(hs, e, 200)
    last2, stuck2, n2 = _slow_reader_round(hs, e, 200)
    assert n1 > 100 and n2 > 100, (n1, n2)        # the backlog really built up
    slack = RSS_SLACK_KIB[hs.build]
    # while stuck: one input buffer + ~256 KiB of output + one response
    assert stuck1 - base <= slack + 1024, f"RSS {base} -> {stuck1} KiB while stuck"
    assert stuck2 - stuck1 <= slack, f"RSS {stuck1} -> {stuck2} KiB on the second round"
    assert last2 == last + n2 * 200, "values were skipped or repeated across rounds"
    assert ok(hs.status(e))["currentValue"] == last2


@pytest.mark.timeout(60)
def test_half_closed_client_still_gets_its_answers(hs):
    e = uniq("half")
    # one full request, then FIN: response, then close
    with hs.raw() as c:
        c.send(get_req(f"/api/next-id/{e}?dataType=int"))
        c.sock.shutdown(socket.SHUT_WR)
        assert ok(c.read_response())["value"] == 1
        assert c.closed_by_peer(3)
    # three pipelined, then FIN: all three in order, then close
    with hs.raw() as c:
        c.send(get_req(f"/api/next-id/{e}") * 3)
        c.sock.shutdown(socket.SHUT_WR)
        assert [ok(c.read_response())["value"] for _ in range(3)] == [2, 3, 4]
        assert c.closed_by_peer(3)
    # a POST with its body, then FIN
    e2 = uniq("half")
    with hs.raw() as c:
        c.send(_post(f"/api/init/{e2}".encode(), b"Content-Length: 18\r\n", b'{"dataType":"int"}'))
        c.sock.shutdown(socket.SHUT_WR)
        assert ok(c.read_response(), 201)["entityName"] == e2
        assert c.closed_by_peer(3)
    # an incomplete request (head or body), then FIN: closed, nothing handed out
    e3, e4 = uniq("half"), uniq("half")
    for raw in (f"GET /api/next-id/{e3}?dataType=int HTTP/1.1\r\nHost: x\r\n".encode(),
                _post(f"/api/init/{e4}".encode(), b"Content-Length: 18\r\n", b'{"dataType"')):
        c = hs.raw()
        try:
            c.send(raw)
            c.sock.shutdown(socket.SHUT_WR)
            data, closed = read_until_eof(c.sock, 3)
            assert closed, "half-closed connection with an incomplete request left open"
            assert not data.startswith(b"HTTP/1.1 2"), data[:200]
        finally:
            c.close()
    untouched(hs, e3)
    untouched(hs, e4)
    assert ok(hs.status(e))["currentValue"] == 4

    def abuse():
        for _ in range(50):
            with hs.raw() as c:
                c.send(get_req("/shard-info") * 2 + b"GET /hea")
                c.sock.shutdown(socket.SHUT_WR)
                read_until_eof(c.sock, 3)

    rss_bounded(hs, abuse, rounds=4)


@pytest.mark.timeout(120)
def test_thousand_abandoned_connections(hs):
    """1,000 connections opened and left (silent, half a head, half a body,
    a request whose answer is never read), then reset: all are freed."""
    raise_nofile(4096)
    e_head, e_body = uniq("aband"), uniq("aband")
    partial = [b"", f"GET /api/next-id/{e_head}?dataType=int HTTP/1.1\r\nHost: x\r\n".encode(),
               _post(f"/api/init/{e_body}".encode(), b"Content-Length: 100\r\n", b'{"dataType":"in'),
               get_req("/api/types")]
    base_open = metric(hs, "shardid_connections_open")

    def abuse():
        socks = []
        try:
            for i in range(1000):
                s = socket.create_connection((hs.host, hs.port), timeout=5)
                socks.append(s)
                if partial[i % 4]:
                    s.sendall(partial[i % 4])
            health_ok(hs)
            deadline = time.monotonic() + 5
            while metric(hs, "shardid_connections_open") < base_open + 1000:
                assert time.monotonic() < deadline, "server did not take all 1,000 connections"
                time.sleep(0.05)
        finally:
            for s in socks:
                rst_close(s)
        deadline = time.monotonic() + 5
        while metric(hs, "shardid_connections_open") > base_open + 1:
            assert time.monotonic() < deadline, "reset connections were not freed"
            time.sleep(0.05)

    rss_bounded(hs, abuse, rounds=2)
    untouched(hs, e_head)
    untouched(hs, e_body)


def _refused(c, entity):
    """Over the cap: a 503 with a correct body and a close, or just a close."""
    try:
        c.send(get_req(f"/api/next-id/{entity}?dataType=int"))
    except (BrokenPipeError, ConnectionResetError):
        return "closed"
    data, closed = read_until_eof(c.sock, 3)
    if not data:
        assert closed, "connection over the cap left hanging (no 503, no close in 3 s)"
        return "closed"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), data[:300]
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    assert m, head
    assert int(m.group(1)) == len(body), (
        f"503 at the connection cap: Content-Length {int(m.group(1))} but {len(body)} body "
        f"bytes before the close: {body!r}")
    assert isinstance(json.loads(body).get("error"), str), body
    assert closed
    return "503"


@pytest.mark.timeout(60)
def test_connection_flood_past_the_cap(fresh):
    cap = 50
    s = fresh({"MAX_CONNECTIONS": cap})
    held = []
    try:
        for _ in range(cap):
            c = s.raw()
            assert c.request(get_req()).status == 200
            held.append(c)
        outcomes = []
        for _ in range(10):
            c, e = s.raw(), uniq("flood")
            try:
                outcomes.append((_refused(c, e), e))
            finally:
                c.close()
        for c in held:                                   # the first 50 still work
            assert c.request(get_req()).status == 200
        for _, e in outcomes:                            # nothing handed out over the cap
            r = held[0].request(get_req(f"/api/status/{e}"))
            assert r.status == 404, r
        for c in held[:10]:
            c.close()
        del held[:10]
        wait_accepting(s, 5, "no connection accepted after ten closed")  # slots free up again
    finally:
        for c in held:
            c.close()
    health_ok(s)
    assert metric(s, "shardid_connections_refused_total") >= 1


@pytest.mark.timeout(180)
def test_hundred_thousand_pipelined_requests(hs):
    """100,000 next-id requests on one connection, sent in chunks while the
    answers are read: every one answered, in order, values consecutive."""
    total, per_chunk = 100_000, 500
    e = uniq("pipe")
    req = get_req(f"/api/next-id/{e}?dataType=int")
    base = hs.rss_kib()
    sock = socket.create_connection((hs.host, hs.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    err = []

    def writer():
        try:
            for _ in range(total // per_chunk):
                sock.sendall(req * per_chunk)
        except OSError as ex:            # reported by the reader's count
            err.append(ex)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    buf, got, expect = b"", 0, 1
    value_re = re.compile(rb'"value":(\d+)')
    peak = base
    try:
        while got < total:
            data = sock.recv(1 << 20)
            assert data, f"closed after {got} responses ({err})"
            buf += data
            resps, buf = parse_responses(buf)
            for st, _, body in resps:
                assert st == 200, body[:200]
                v = int(value_re.search(body).group(1))
                assert v == expect, f"response {got}: value {v}, expected {expect}"
                expect += 1
                got += 1
            if got % 20_000 < len(resps):
                peak = max(peak, hs.rss_kib())
    finally:
        t.join(30)
        sock.close()
    assert not err, err
    assert buf == b""
    peak = max(peak, hs.rss_kib())
    assert peak - base <= RSS_SLACK_KIB[hs.build] + 1024, f"RSS {base} -> {peak} KiB"
    assert ok(hs.status(e))["currentValue"] == total
