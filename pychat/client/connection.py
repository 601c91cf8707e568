"""The client side of the wire protocol with no I/O: requests and bytes in, events and bytes out.

Like the server's core (:mod:`pychat.server.connection`), :class:`ClientConnection` never
touches a socket: :meth:`~ClientConnection.send_request` returns the line to write,
:meth:`~ClientConnection.receive_data` turns received bytes into :class:`Reply`,
:class:`Push`, :class:`Unmatched` and :class:`Violation` events, and the connection's states move by
:data:`TRANSITIONS`, a table keyed by (state, event).  :class:`~pychat.client.protocol.
ClientProtocol` is the thin Twisted adapter over it.

The core does not second-guess which ops are legal when: the server's state table decides,
and a refusal comes back as a reply.  What the core refuses is what cannot be protocol: a
line that is not JSON, a reply to no request, a line longer than the limit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pychat.wire.envelope import parse_json_line
from pychat.wire.framing import LineBuffer, Oversized, encode_line


class ClientState(enum.Enum):
    """Where the client's connection is."""

    CONNECTED = "connected"  # TLS is up; no hello answered yet
    READY = "ready"  # the server answered hello
    CLOSED = "closed"


class Event(enum.Enum):
    """What moves a connection from one state to the next."""

    HELLO_ANSWERED = "hello_answered"
    VIOLATION = "violation"
    CLOSED = "closed"


#: (state, event) -> the next state.  A pair missing here leaves the state as it is.
TRANSITIONS: dict[tuple[ClientState, Event], ClientState] = {
    (ClientState.CONNECTED, Event.HELLO_ANSWERED): ClientState.READY,
    (ClientState.CONNECTED, Event.VIOLATION): ClientState.CLOSED,
    (ClientState.READY, Event.VIOLATION): ClientState.CLOSED,
    (ClientState.CONNECTED, Event.CLOSED): ClientState.CLOSED,
    (ClientState.READY, Event.CLOSED): ClientState.CLOSED,
}


class NotOpen(Exception):
    """A request on a closed connection."""


@dataclass(frozen=True)
class Reply:
    """The server's one reply to request ``request_id``: ``fields`` when ``ok``, else
    ``error`` (with ``code`` and ``message``)."""

    request_id: int
    ok: bool
    fields: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Push:
    """A server push (``{"event": ...}``), as received (hostile data until checked)."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class Unmatched:
    """A reply to no request of ours (``"id": null`` errors such as ``line_too_long``)."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class Violation:
    """Something that cannot be protocol; the connection is over."""

    reason: str


ClientEvent = Reply | Push | Unmatched | Violation


class ClientConnection:
    """One connection's protocol state, with no I/O."""

    def __init__(self, max_line: int) -> None:
        self._lines = LineBuffer(max_line)
        self._next_id = 1
        self._pending: dict[int, str] = {}  # request id -> op
        self.state = ClientState.CONNECTED

    def _move(self, event: Event) -> None:
        self.state = TRANSITIONS.get((self.state, event), self.state)

    @property
    def waiting(self) -> list[int]:
        """Ids of the requests still waiting for their reply."""
        return list(self._pending)

    def send_request(self, op: str, **fields: Any) -> tuple[int, bytes]:
        """A new request: its id, and the line to write.

        :raises NotOpen: the connection is closed.
        """
        if self.state is ClientState.CLOSED:
            raise NotOpen("the connection is closed")
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = op
        return request_id, encode_line({"id": request_id, "op": op, **fields})

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        """The events the received bytes complete, in order (nothing after a violation)."""
        if self.state is ClientState.CLOSED:
            return []
        events: list[ClientEvent] = []
        for line in self._lines.feed(data):
            event = self._line_event(line)
            if event is not None:
                events.append(event)
            if isinstance(event, Violation):
                self._move(Event.VIOLATION)
                break
        return events

    def _line_event(self, line: bytes | Oversized) -> ClientEvent | None:
        if isinstance(line, Oversized):
            return Violation(f"the server sent a line over {line.limit} bytes")
        if not line.strip():
            return None
        try:
            obj = parse_json_line(line)
        except Exception:
            return Violation("the server sent a line that is not JSON")
        if not isinstance(obj, dict):
            return None  # not an object: nothing to match it to; ignored
        if "event" in obj:
            return Push(obj)
        request_id = obj.get("id")
        if not isinstance(request_id, int) or request_id not in self._pending:
            return Unmatched(obj)
        op = self._pending.pop(request_id)
        if obj.get("ok") is True:
            if op == "hello":
                self._move(Event.HELLO_ANSWERED)
            return Reply(request_id, True, {k: v for k, v in obj.items() if k not in ("id", "ok")})
        error = obj.get("error")
        return Reply(request_id, False, error=error if isinstance(error, dict) else {})

    def connection_lost(self) -> list[int]:
        """The connection is gone; return the ids of the requests that will get no reply."""
        self._move(Event.CLOSED)
        waiting, self._pending = list(self._pending), {}
        return waiting
