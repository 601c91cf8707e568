"""Slow drips, idle sockets, connection floods and request floods each meet a limit.

All on a fake clock over in-memory connections, except the TLS handshake timeout, which needs
a real TLS listener on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import MemoryReactorClock

from pychat import limits
from pychat.testing import RunningServer
from tests.helpers import FakeConn, connect, make_server


def _closing_reason(conn: FakeConn) -> str | None:
    for event in conn.received():
        if event.get("event") == "closing":
            return str(event.get("reason"))
    return None


def test_a_slow_drip_without_a_newline_is_closed(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    conn = connect(make_server(tmp_path, clock))
    assert conn.request("hello", version=1)["ok"]
    conn.send(b'{"id": 2, "op": "pi')
    for _ in range(5):  # a byte every 5 s: never a whole line
        clock.advance(5)
        conn.send(b" ")
        assert not conn.closing
    clock.advance(limits.PARTIAL_LINE_TIMEOUT - 25)
    assert conn.closing and _closing_reason(conn) == "partial_line_timeout"


def test_dribbled_bytes_do_not_keep_an_idle_connection_open(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    conn = connect(make_server(tmp_path, clock, idle_timeout=20.0))
    assert conn.request("hello", version=1)["ok"]
    for _ in range(4):
        clock.advance(4)
        conn.send(b"\n")  # blank lines are not requests
    clock.advance(5)
    assert conn.closing and _closing_reason(conn) == "idle_timeout"


def test_whole_requests_keep_a_connection_open(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    conn = connect(make_server(tmp_path, clock, idle_timeout=20.0))
    assert conn.request("hello", version=1)["ok"]
    for _ in range(10):
        clock.advance(15)
        assert conn.request("ping")["ok"]
    assert not conn.closing


def test_a_finished_line_stops_the_partial_line_timer(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    conn = connect(make_server(tmp_path, clock))
    assert conn.request("hello", version=1)["ok"]
    conn.send(b'{"id": 2, "op": ')
    clock.advance(limits.PARTIAL_LINE_TIMEOUT - 1)
    conn.send(b'"ping"}\n')
    clock.advance(limits.PARTIAL_LINE_TIMEOUT)
    assert not conn.closing


def test_connections_from_one_address_are_capped(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_connections_per_address=3)
    first = [connect(server, host="198.51.100.1", port=40000 + i) for i in range(3)]
    assert not any(c.closing for c in first)
    extra = connect(server, host="198.51.100.1", port=40010)
    assert extra.closing  # refused at the door
    other = connect(server, host="198.51.100.2")
    assert not other.closing  # another address is not affected, loopback or not
    first[0].proto.connectionLost()
    again = connect(server, host="198.51.100.1", port=40011)
    assert not again.closing  # a freed place can be taken again


def test_all_connections_are_capped(tmp_path: Path) -> None:
    server = make_server(tmp_path, max_connections=4)
    conns = [connect(server, host=f"198.51.100.{i}") for i in range(4)]
    assert not any(c.closing for c in conns)
    assert connect(server, host="198.51.100.99").closing
    assert len(server.connections) == 4


def test_a_request_flood_on_one_connection_is_rate_limited(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    conn = connect(make_server(tmp_path, clock, requests_per_second=100))
    assert conn.request("hello", version=1)["ok"]
    flood = b"".join(
        json.dumps({"id": 10 + i, "op": "ping"}).encode() + b"\n"
        for i in range(limits.REQUEST_BURST + 10)
    )
    conn.send(flood)
    replies = [m for m in conn.received() if "id" in m]
    limited = [m for m in replies if not m["ok"]]
    assert len(replies) == limits.REQUEST_BURST + 10
    assert len(limited) >= 10 and limited[0]["error"]["code"] == "rate_limited"
    assert limited[0]["error"]["retry_after"] >= 1
    clock.advance(1)
    assert conn.request("ping")["ok"]  # the budget refills


class _Silent(protocol.Protocol):
    def __init__(self) -> None:
        self.lost: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_socket_that_never_starts_tls_is_closed(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "HANDSHAKE_TIMEOUT", 0.2)
    silent = _Silent()
    await connectProtocol(TCP4ClientEndpoint(reactor, server.host, server.port), silent)
    for _ in range(500):  # bounded wait
        if silent.lost.called:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    assert silent.lost.called
