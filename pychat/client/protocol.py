"""The client side of the JSON-lines protocol: requests with Deferred replies, and pushes.

:meth:`ClientProtocol.request` sends ``{"id": n, "op": ..., ...}`` and returns a Deferred that
fires with the reply's fields (``ok: true``) or fails with :class:`RemoteError` (``ok: false``),
or with :class:`ConnectionClosed` when the connection goes first.  Pushes (``event``) go to
the ``on_event`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from pychat.wire.envelope import parse_json_line
from pychat.wire.framing import LineBuffer, Oversized, encode_line

log = Logger(namespace="pychat.client")

#: Replies may be a little larger than the requests a server accepts (they add fields), and a
#: page of history is a list of maximum-size messages; 16 MiB bounds a hostile server.
CLIENT_MAX_LINE = 16 * 1024 * 1024


class RemoteError(Exception):
    """The server answered ``ok: false``.

    :ivar code: the stable error code (see docs/protocol.md).
    :ivar message: the server's human message.
    :ivar error: the whole ``error`` object (it may carry ``retry_after`` and the like).
    """

    def __init__(self, error: dict[str, Any]) -> None:
        self.code = str(error.get("code", "unknown"))
        self.message = str(error.get("message", ""))
        self.error = error
        super().__init__(f"{self.code}: {self.message}")


class ConnectionClosed(Exception):
    """The connection closed before the reply came."""


@implementer(IHandshakeListener)
class ClientProtocol(Protocol):
    """One connection to a pyChat server."""

    def __init__(self, max_line: int = CLIENT_MAX_LINE) -> None:
        self._lines = LineBuffer(max_line)
        self._next_id = 1
        self._pending: dict[int, defer.Deferred[dict[str, Any]]] = {}
        self.on_event: Callable[[dict[str, Any]], None] = lambda event: None
        self.on_unmatched: Callable[[dict[str, Any]], None] = lambda obj: None
        self.connected_d: defer.Deferred[ClientProtocol] = defer.Deferred()
        #: Fires when the TLS handshake is done (fails if the connection dies first).
        self.handshake_d: defer.Deferred[None] = defer.Deferred()
        self.closed_d: defer.Deferred[None] = defer.Deferred()
        self.close_reason: Failure | None = None
        self.is_closed = False

    def connectionMade(self) -> None:
        self.connected_d.callback(self)

    def handshakeCompleted(self) -> None:
        """Called by the TLS layer once the handshake is done."""
        if not self.handshake_d.called:
            self.handshake_d.callback(None)

    def request(self, op: str, **fields: Any) -> defer.Deferred[dict[str, Any]]:
        """Send one request; the Deferred fires with the reply (without ``id``/``ok``)."""
        if self.is_closed:
            return defer.fail(ConnectionClosed("connection is closed"))
        request_id = self._next_id
        self._next_id += 1
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._pending[request_id] = d
        self.send_line(encode_line({"id": request_id, "op": op, **fields}))
        return d

    def send_line(self, data: bytes) -> None:
        """Write raw bytes (a line, or deliberately not one, in tests)."""
        if self.transport is None:
            raise ConnectionClosed("not connected")
        self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        for line in self._lines.feed(data):
            if isinstance(line, Oversized):
                log.error("server sent a line over {n} bytes; closing", n=line.limit)
                self.close()
                return
            try:
                obj = parse_json_line(line)
            except Exception:
                log.error("server sent a line that is not JSON; closing")
                self.close()
                return
            self._dispatch(obj)

    def _dispatch(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            log.error("server sent a non-object line; ignored")
            return
        if "event" in obj:
            self.on_event(obj)
            return
        request_id = obj.get("id")
        d = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if d is None:
            self.on_unmatched(obj)
            return
        if obj.get("ok") is True:
            d.callback({k: v for k, v in obj.items() if k not in ("id", "ok")})
        else:
            error = obj.get("error")
            d.errback(RemoteError(error if isinstance(error, dict) else {}))

    def close(self) -> None:
        """Close the connection; pending requests fail with :class:`ConnectionClosed`."""
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionClosed())) -> None:  # noqa: B008
        self.is_closed = True
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(ConnectionClosed(str(reason.value)))
        self.close_reason = reason
        if not self.handshake_d.called:
            self.handshake_d.errback(ConnectionClosed(f"TLS handshake failed: {reason.value}"))
        self.closed_d.callback(None)
