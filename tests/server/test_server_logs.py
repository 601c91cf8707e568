"""What clients send cannot write into the server's log: every client string is escaped and
bounded, and ``hello.client`` shows up (escaped) in the connection's log lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.logger import formatEvent, globalLogPublisher

from tests.accounts_helpers import login_sync, signup_fields
from tests.helpers import connect, make_server
from tests.log_capture import as_observer

EVIL = "\x1b[2J\x1b]0;owned\x07fake\r\n2026-01-01 [pychat#critical] \u202ereversed"
RAW = [chr(c) for c in range(0x20)] + ["\x7f", "\u202e"]


def test_client_strings_are_escaped_and_bounded_in_log_lines(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(as_observer(events.append))
    try:
        server = make_server(tmp_path)
        conn = connect(server)
        assert conn.request("hello", version=1, client=EVIL + "x" * 500)["ok"]
        conn.send(json.dumps({"id": 5, "op": EVIL}).encode() + b"\n")
        assert conn.request("signup", **signup_fields("alice", "pw"))["ok"]
        conn.request("login_start", username=EVIL, A="AAAA")
        assert login_sync(conn, "alice", "pw")["ok"]
        conn.proto.connectionLost()
    finally:
        globalLogPublisher.removeObserver(as_observer(events.append))
    lines = [formatEvent(e) for e in events]
    text = "\n".join(lines)
    for raw in RAW:
        assert not any(raw in line for line in lines), (repr(raw), text)
    escaped = repr(EVIL[:64])
    logged_in = [line for line in lines if "logged in from" in line]
    assert logged_in and f"client {(EVIL + 'x' * 500)[:64]!r}…" in logged_in[0]
    assert any("connection closed" in line and "client '\\x1b[2J" in line for line in lines)
    assert any("refused" in line and escaped in line for line in lines)  # the unknown op
