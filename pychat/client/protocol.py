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

from pychat.client.connection import ClientConnection, NotOpen, Push, Reply, Unmatched

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
    """One connection to a pyChat server: the Twisted adapter over :class:`ClientConnection`
    (bytes to and from the transport, replies to Deferreds, pushes to ``on_event``)."""

    def __init__(self, max_line: int = CLIENT_MAX_LINE) -> None:
        self.core = ClientConnection(max_line)
        self._waiting: dict[int, defer.Deferred[dict[str, Any]]] = {}
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
        try:
            request_id, line = self.core.send_request(op, **fields)
        except NotOpen:
            return defer.fail(ConnectionClosed("connection is closed"))
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._waiting[request_id] = d
        self.send_line(line)
        return d

    def send_line(self, data: bytes) -> None:
        """Write raw bytes (a line, or deliberately not one, in tests)."""
        if self.transport is None:
            raise ConnectionClosed("not connected")
        self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        for event in self.core.receive_data(data):
            if isinstance(event, Reply):
                d = self._waiting.pop(event.request_id)
                if event.ok:
                    d.callback(event.fields)
                else:
                    d.errback(RemoteError(event.error))
            elif isinstance(event, Push):
                self.on_event(event.payload)
            elif isinstance(event, Unmatched):
                self.on_unmatched(event.payload)
            else:
                log.error("{why}; closing", why=event.reason)
                self.close()

    def close(self) -> None:
        """Close the connection; pending requests fail with :class:`ConnectionClosed`."""
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionClosed())) -> None:  # noqa: B008
        self.is_closed = True
        self.core.connection_lost()
        waiting, self._waiting = self._waiting, {}
        for d in waiting.values():
            d.errback(ConnectionClosed(str(reason.value)))
        self.close_reason = reason
        if not self.handshake_d.called:
            self.handshake_d.errback(ConnectionClosed(f"TLS handshake failed: {reason.value}"))
        self.closed_d.callback(None)
