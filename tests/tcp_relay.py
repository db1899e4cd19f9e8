"""A TCP relay on loopback that can be cut like a network partition (stdlib only).

    relay = TcpRelay("127.0.0.1", agent.http_port)   # listens on a free port at once
    relay.url                # "http://127.0.0.1:PORT" (for an HTTP target)
    relay.blackhole()        # the link goes silent (see below)
    relay.heal()             # forwarding resumes
    relay.close()

blackhole() models a partition in which no packet gets through but no host
notices: connections stay open, bytes sent in either direction are read and
dropped, nothing is answered and no FIN or RST is passed on; new connections
are accepted (the kernel completes the handshake) but not forwarded. A peer
only finds out through its own timeouts.

heal() resumes forwarding. A connection that lost bytes while the relay was
blackholed cannot carry on (its byte stream has a hole), so heal() closes it,
as a peer's timeout eventually would; connections that were idle throughout
carry on, and a connection accepted during the blackhole without having sent
anything yet is connected upstream then.

One thread accepts; each connection gets one thread that select()s on both
sockets, so a stuck peer never blocks another connection.
"""

import select
import socket
import threading

__all__ = ["TcpRelay"]

_CHUNK = 65536
_POLL_S = 0.05


class _Link:
    """One client connection and (once connected) its upstream connection."""

    def __init__(self, relay, client):
        self.relay = relay
        self.client = client
        self.upstream = None
        self.tainted = False       # lost bytes during a blackhole
        self.upstream_eof = False  # upstream closed while we kept the client hanging
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="tcp-relay-link")

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.upstream):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def _connect(self):
        try:
            up = socket.create_connection(self.relay.target, timeout=2.0)
        except OSError:
            return False
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.settimeout(5.0)   # for sendall; reads happen only after select()
        self.upstream = up
        return True

    def _run(self):
        try:
            self._loop()
        except OSError:
            pass
        finally:
            self.close()
            self.relay._forget(self)

    def _loop(self):
        relay = self.relay
        while not self.closed and not relay._closed:
            black = relay._black.is_set()
            if not black:
                if self.tainted or self.upstream_eof:
                    return   # the stream has a hole: close it, as a timeout would
                if self.upstream is None and not self._connect():
                    return   # target refuses: the client sees the close
            socks = [self.client]
            if self.upstream is not None and not self.upstream_eof:
                socks.append(self.upstream)
            readable, _, _ = select.select(socks, [], [], _POLL_S)
            for s in readable:
                try:
                    data = s.recv(_CHUNK)
                except (ConnectionResetError, BrokenPipeError, socket.timeout):
                    data = b""
                black = relay._black.is_set()
                if s is self.client:
                    if not data:
                        return   # the client closed: nobody is left to fool
                    if black or self.upstream is None:
                        self.tainted = True
                        relay.dropped_bytes += len(data)
                        continue
                    self.upstream.sendall(data)
                    relay.forwarded_bytes += len(data)
                else:
                    if not data:
                        if black:
                            self.upstream_eof = True   # keep the client hanging
                            continue
                        return
                    if black:
                        self.tainted = True
                        relay.dropped_bytes += len(data)
                        continue
                    self.client.sendall(data)
                    relay.forwarded_bytes += len(data)


class TcpRelay:
    """Forwards 127.0.0.1:<port> (a free port, chosen at construction) to target."""

    def __init__(self, target_host, target_port, listen_host="127.0.0.1"):
        self.target = (target_host, int(target_port))
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((listen_host, 0))
        self._lsock.listen(128)
        self._lsock.settimeout(_POLL_S)
        self.host, self.port = self._lsock.getsockname()[:2]
        self._black = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._links = set()
        self.accepted = 0
        self.forwarded_bytes = 0
        self.dropped_bytes = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="tcp-relay-accept")
        self._thread.start()

    # -- addresses ---------------------------------------------------------
    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def url(self):
        return "http://%s" % self.addr

    # -- control -----------------------------------------------------------
    @property
    def blackholed(self):
        return self._black.is_set()

    def blackhole(self):
        self._black.set()

    def heal(self):
        self._black.clear()

    def close(self):
        self._closed = True
        try:
            self._lsock.close()
        except OSError:
            pass
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        self._thread.join(2.0)
        for link in links:
            link.thread.join(2.0)

    def connections(self):
        with self._lock:
            return len(self._links)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- internals ---------------------------------------------------------
    def _forget(self, link):
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self):
        while not self._closed:
            try:
                client, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return   # closed
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(5.0)
            link = _Link(self, client)
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._links.add(link)
                self.accepted += 1
            link.thread.start()
