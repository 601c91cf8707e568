"""The client's sans-IO protocol core: requests and bytes in, events and bytes out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat.client.connection import (
    TRANSITIONS,
    ClientConnection,
    ClientState,
    NotOpen,
    Push,
    Reply,
    Unmatched,
    Violation,
)


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_a_request_is_one_line_and_its_reply_comes_back_matched() -> None:
    conn = ClientConnection(1024)
    rid, data = conn.send_request("hello", version=1)
    assert json.loads(data) == {"id": rid, "op": "hello", "version": 1}
    assert conn.state is ClientState.CONNECTED
    (reply,) = conn.receive_data(line({"id": rid, "ok": True, "protocol": 1}))
    assert reply == Reply(rid, True, {"protocol": 1})
    assert conn.state is ClientState.READY and conn.waiting == []


def test_replies_pushes_and_strangers_are_told_apart_across_chunks() -> None:
    conn = ClientConnection(1024)
    rid, _ = conn.send_request("ping")
    data = line({"event": "presence", "user": "bob"}) + line({"id": None, "ok": False})
    data += line({"id": rid, "ok": False, "error": {"code": "wrong_state"}})
    events = conn.receive_data(data[:7]) + conn.receive_data(data[7:])
    assert events == [
        Push({"event": "presence", "user": "bob"}),
        Unmatched({"id": None, "ok": False}),
        Reply(rid, False, error={"code": "wrong_state"}),
    ]


def test_garbage_ends_the_connection_and_nothing_after_it_counts() -> None:
    conn = ClientConnection(1024)
    rid, _ = conn.send_request("ping")
    events = conn.receive_data(b"not json\n" + line({"id": rid, "ok": True}))
    assert events == [Violation("the server sent a line that is not JSON")]
    assert conn.state is ClientState.CLOSED
    assert conn.receive_data(line({"id": rid, "ok": True})) == []
    with pytest.raises(NotOpen):
        conn.send_request("ping")


def test_an_oversized_line_is_a_violation() -> None:
    conn = ClientConnection(64)
    (event,) = conn.receive_data(b"x" * 100)
    assert isinstance(event, Violation) and conn.state is ClientState.CLOSED


def test_connection_lost_names_the_requests_that_get_no_reply() -> None:
    conn = ClientConnection(1024)
    a, _ = conn.send_request("ping")
    b, _ = conn.send_request("ping")
    conn.receive_data(line({"id": a, "ok": True}))
    assert conn.connection_lost() == [b]
    assert conn.state is ClientState.CLOSED


def test_every_transition_leaves_from_an_open_state() -> None:
    assert all(state is not ClientState.CLOSED for state, _ in TRANSITIONS)


@settings(max_examples=150)
@given(chunks=st.lists(st.binary(max_size=200), max_size=20))
def test_any_bytes_give_events_never_an_exception(chunks: list[bytes]) -> None:
    conn = ClientConnection(256)
    conn.send_request("hello", version=1)
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            assert isinstance(event, Reply | Push | Unmatched | Violation)
