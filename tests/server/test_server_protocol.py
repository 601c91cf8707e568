"""The server connection on in-memory transports and a fake clock: no sockets, no sleeping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from pychat import PROTOCOL_VERSION, limits
from pychat.server.state import Outcome, State
from tests.helpers import connect, make_server


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


def test_hello_announces_version_limits_and_ops(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    reply = conn.request("hello", version=1)
    assert reply["ok"] is True
    assert reply["protocol"] == PROTOCOL_VERSION
    assert reply["limits"]["max_line"] == limits.DEFAULT_MAX_LINE
    assert "hello" in reply["ops"] and reply["ops"] == sorted(reply["ops"])
    assert conn.proto.core.state is State.UNAUTHENTICATED


def test_hello_with_unknown_version_is_refused_and_hello_can_be_retried(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    reply = conn.request("hello", version=99)
    assert reply["error"]["code"] == "unsupported_version"
    assert reply["error"]["supported"] == [PROTOCOL_VERSION]
    assert conn.request("hello", version=1)["ok"] is True


def test_ops_before_hello_get_wrong_state(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    reply = conn.request("ping")
    assert reply["error"]["code"] == "wrong_state"
    assert "awaiting_hello" in reply["error"]["message"]


def test_second_hello_gets_wrong_state(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    conn.request("hello", version=1)
    assert conn.request("hello", version=1)["error"]["code"] == "wrong_state"


def test_unknown_op_and_bad_field(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    assert conn.request("fly")["error"]["code"] == "unknown_op"
    reply = conn.request("hello", version="1")
    assert reply["error"]["code"] == "bad_field"
    assert "version" in reply["error"]["message"]


def test_every_request_in_one_packet_gets_exactly_one_reply_in_order(tmp_path: Path) -> None:
    conn = connect(make_server(tmp_path))
    lines = [b'{"id":1,"op":"hello","version":1}', b"garbage", b'{"id":3,"op":"ping"}', b"[]"]
    conn.send(b"\n".join(lines) + b"\n")
    replies = conn.received()
    assert [r["id"] for r in replies] == [1, None, 3, None]
    assert [r["ok"] for r in replies] == [True, False, True, False]
    assert not conn.closing


def test_oversized_line_gets_error_then_close(tmp_path: Path, clock: MemoryReactorClock) -> None:
    server = make_server(tmp_path, clock, max_line=limits.MIN_MAX_LINE)
    conn = connect(server)
    conn.send(b'{"id":1,"op":"hello","version":1}\n' + b"x" * (limits.MIN_MAX_LINE + 10))
    replies = conn.received()
    assert replies[0]["ok"] is True
    assert replies[1] == {
        "id": None,
        "ok": False,
        "error": {"code": "line_too_long", "message": replies[1]["error"]["message"]},
    }
    assert conn.closing


def test_idle_connection_is_told_and_closed(tmp_path: Path, clock: MemoryReactorClock) -> None:
    conn = connect(make_server(tmp_path, clock, idle_timeout=30.0))
    clock.advance(29)
    conn.request("hello", version=1)  # activity resets the timer
    clock.advance(29)
    assert not conn.closing
    clock.advance(2)
    assert conn.received() == [
        {"event": "closing", "reason": "idle_timeout", "message": "connection idle too long"}
    ]
    assert conn.closing


def test_peer_that_never_acknowledges_close_is_aborted(
    tmp_path: Path, clock: MemoryReactorClock
) -> None:
    conn = connect(make_server(tmp_path, clock, idle_timeout=5.0))
    clock.advance(6)
    assert conn.closing and not conn.transport.disconnected
    clock.advance(limits.SHUTDOWN_GRACE + 0.1)
    assert conn.transport.disconnected


def test_one_connections_errors_do_not_touch_another(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    bad, good = connect(server, port=1), connect(server, port=2)
    good.request("hello", version=1)
    bad.send(b"\xff" * 10 + b"\n")
    bad.send(b"x" * (limits.DEFAULT_MAX_LINE + 2))
    assert bad.closing
    assert good.request("ping")["ok"] is True


def test_internal_error_replies_and_closes_only_that_connection(tmp_path: Path) -> None:
    server = make_server(tmp_path)

    @server.registry.op("boom", NoParams, _stay(State.UNAUTHENTICATED))
    async def boom(ctx: object, params: object) -> dict[str, object]:
        raise RuntimeError("bug")

    victim, other = connect(server, port=1), connect(server, port=2)
    victim.request("hello", version=1)
    other.request("hello", version=1)
    reply = victim.request("boom")
    assert reply["error"]["code"] == "internal_error"
    assert victim.closing
    assert other.request("ping")["ok"] is True


@dataclass(frozen=True)
class NoParams:
    pass


@dataclass(frozen=True)
class PadParams:
    pad: str = ""


def _stay(state: State) -> dict[State, Outcome]:
    return {state: Outcome(state, state)}


@pytest.mark.parametrize(
    ("count", "pad"),
    [(limits.MAX_PENDING_REQUESTS + 5, ""), (5, "x" * (limits.DEFAULT_MAX_LINE - 100))],
    ids=["more requests than max_pending", "a few, more bytes than max_pending_bytes"],
)
def test_a_pipelining_flood_pauses_reading_until_it_is_answered(
    tmp_path: Path, count: int, pad: str
) -> None:
    from twisted.internet import defer

    server = make_server(tmp_path)
    gate: defer.Deferred[None] = defer.Deferred()

    @server.registry.op("slow", PadParams, _stay(State.UNAUTHENTICATED))
    async def slow(ctx: object, params: object) -> dict[str, object]:
        await gate
        return {}

    conn = connect(server)
    conn.request("hello", version=1)
    burst = b"".join(
        json.dumps({"id": i, "op": "slow", "pad": pad}).encode() + b"\n"
        for i in range(10, 10 + count)
    )
    conn.send(burst)
    assert conn.transport.producerState == "paused"
    gate.callback(None)
    replies = conn.received()
    assert len(replies) == count and all(r["ok"] for r in replies)
    assert conn.transport.producerState == "producing"


def test_shutdown_tells_every_client(tmp_path: Path, clock: MemoryReactorClock) -> None:
    server = make_server(tmp_path, clock)
    a, b = connect(server, port=1), connect(server, port=2)
    server.startService()
    d = server.stopService()
    for conn in (a, b):
        assert conn.received()[-1]["reason"] == "shutdown"
        assert conn.closing
        conn.proto.connectionLost()
    assert d.called


def test_deferred_replies_keep_request_order(tmp_path: Path) -> None:
    from twisted.internet import defer

    from pychat.server.ops import Later

    server = make_server(tmp_path)
    gates: list[defer.Deferred[Mapping[str, Any]]] = []

    @server.registry.op("later", NoParams, _stay(State.UNAUTHENTICATED))
    async def later(ctx: object, params: object) -> Later:
        gate: defer.Deferred[Mapping[str, Any]] = defer.Deferred()
        gates.append(gate)
        return Later(gate)

    conn = connect(server)
    conn.request("hello", version=1)
    conn.send(b'{"id":1,"op":"later"}\n{"id":2,"op":"later"}\n{"id":3,"op":"ping"}\n')
    assert len(gates) == 2  # the second started while the first waits
    assert conn.received() == []
    gates[1].callback({"n": 2})
    assert conn.received() == []  # 2 is ready but 1 is not: nothing may overtake it
    gates[0].callback({"n": 1})
    assert [r["id"] for r in conn.received()] == [1, 2, 3]
