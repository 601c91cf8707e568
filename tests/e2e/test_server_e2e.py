"""The real service tree over loopback TLS: bad input of every kind, and a bystander that
keeps working through all of it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionDone

from pychat.client.protocol import ClientProtocol, RemoteError
from pychat.testing import RunningServer


async def _next_unmatched(proto: ClientProtocol) -> dict[str, Any]:
    d: defer.Deferred[dict[str, Any]] = defer.Deferred()
    proto.on_unmatched = d.callback
    return await d


async def _raw_reply(proto: ClientProtocol, line: bytes) -> dict[str, Any]:
    waiting = defer.ensureDeferred(_next_unmatched(proto))
    proto.send_line(line)
    return await waiting


@pytest_twisted.ensureDeferred
async def test_hello_over_tls(server: RunningServer) -> None:
    proto = await server.connect(hello=False)
    reply = await proto.request("hello", version=1)
    assert reply["protocol"] == 1
    assert "ping" in reply["ops"]


BAD_LINES = [
    (b"{this is not json\n", "malformed_json"),
    (b"[1,2,3]\n", "not_an_object"),
    (b'{"op":"hello","version":1}\n', "bad_id"),
    (b'{"id":"seven","op":"ping"}\n', "bad_id"),
]


@pytest.mark.parametrize(("line", "code"), BAD_LINES)
@pytest_twisted.ensureDeferred
async def test_unparseable_lines_get_error_with_null_id(
    server: RunningServer, line: bytes, code: str
) -> None:
    bystander = await server.connect()
    proto = await server.connect()
    reply = await _raw_reply(proto, line)
    assert reply["id"] is None and reply["ok"] is False
    assert reply["error"]["code"] == code
    assert "ping" not in reply  # nothing but the envelope
    assert (await proto.request("ping"))["time"] > 0  # the connection stays usable
    assert (await bystander.request("ping"))["time"] > 0


REQUEST_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("no_such_op", {}, "unknown_op"),
    ("ping", {"extra": 1}, "bad_field"),
    ("hello", {"version": 1}, "wrong_state"),  # hello twice
]


@pytest.mark.parametrize(("op", "fields", "code"), REQUEST_ERRORS)
@pytest_twisted.ensureDeferred
async def test_bad_requests_get_their_code(
    server: RunningServer, op: str, fields: dict[str, Any], code: str
) -> None:
    bystander = await server.connect()
    proto = await server.connect()
    with pytest.raises(RemoteError) as info:
        await proto.request(op, **fields)
    assert info.value.code == code
    assert (await bystander.request("ping"))["time"] > 0


@pytest_twisted.ensureDeferred
async def test_wrong_field_type_in_hello(server: RunningServer) -> None:
    proto = await server.connect(hello=False)
    with pytest.raises(RemoteError) as info:
        await proto.request("hello", version="1")
    assert info.value.code == "bad_field"


@pytest_twisted.ensureDeferred
async def test_op_before_hello_gets_wrong_state(server: RunningServer) -> None:
    proto = await server.connect(hello=False)
    with pytest.raises(RemoteError) as info:
        await proto.request("ping")
    assert info.value.code == "wrong_state"


def _assert_closed_cleanly(proto: ClientProtocol) -> None:
    """The server's close was a TLS closing handshake, not an abort when its grace ran out
    (which the client sees as a connection lost in a non-clean fashion)."""
    assert proto.close_reason is not None
    assert proto.close_reason.check(ConnectionDone), proto.close_reason


@pytest_twisted.ensureDeferred
async def test_oversized_line_gets_error_and_close_bystander_unaffected(
    server: RunningServer,
) -> None:
    bystander = await server.connect()
    proto = await server.connect()
    waiting = defer.ensureDeferred(_next_unmatched(proto))
    proto.send_line(b"x" * (server.config.max_line + 100) + b"\n")
    reply = await waiting
    assert reply["error"]["code"] == "line_too_long"
    await proto.closed_d
    _assert_closed_cleanly(proto)
    assert (await bystander.request("ping"))["time"] > 0


@pytest_twisted.ensureDeferred
async def test_idle_connection_is_closed_with_a_notice(tmp_path: Any) -> None:
    from pychat.testing import start_server

    running = await start_server(tmp_path / "data", idle_timeout=0.3)
    try:
        proto = await running.connect()
        events: list[dict[str, Any]] = []
        proto.on_event = events.append
        await proto.closed_d
        assert events == [
            {"event": "closing", "reason": "idle_timeout", "message": "connection idle too long"}
        ]
        _assert_closed_cleanly(proto)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_stopping_the_service_closes_clients_cleanly(tmp_path: Any) -> None:
    from pychat.testing import start_server

    running = await start_server(tmp_path / "data")
    proto = await running.connect()
    events: list[dict[str, Any]] = []
    proto.on_event = events.append
    await defer.maybeDeferred(running.service.stopService)
    await proto.closed_d
    assert events and events[-1]["reason"] == "shutdown"
    _assert_closed_cleanly(proto)
    # the port is closed too: a new connection is refused
    with pytest.raises(Exception):  # noqa: B017 - ConnectionRefusedError, wrapped by endpoints
        await running.connect()


@pytest_twisted.ensureDeferred
async def test_many_lines_in_one_write_are_all_answered(server: RunningServer) -> None:
    proto = await server.connect()
    got: list[dict[str, Any]] = []
    proto.on_unmatched = got.append
    proto.send_line(
        b"".join(json.dumps({"id": 1000 + i, "op": "ping"}).encode() + b"\n" for i in range(200))
    )
    for _ in range(100):
        if len(got) == 200:
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    assert [r["id"] for r in got] == [1000 + i for i in range(200)]
