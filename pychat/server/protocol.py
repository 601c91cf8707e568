"""The Twisted protocol of one client connection: it moves bytes and runs handlers.

All protocol decisions live in :class:`pychat.server.connection.ServerConnection`; this class
only feeds it received bytes, runs each request's handler (one at a time, so replies come in
request order and state changes never interleave), writes replies, and enforces the idle
timeout and the backlog limit.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IAddress, IDelayedCall, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from pychat import limits
from pychat.server.connection import ServerConnection
from pychat.server.lifecycle import Event
from pychat.server.output import OutputGate
from pychat.server.ratelimit import TokenBucket
from pychat.server.refusals import over_budget
from pychat.server.replies import ReplyOrder
from pychat.server.request_queue import RequestQueue
from pychat.server.session import Session
from pychat.server.state import State
from pychat.server.timers import SlownessTimers
from pychat.text.log import for_log
from pychat.wire.envelope import Request, encode_event
from pychat.wire.framing import Oversized

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from pychat.server.config import ServerConfig
    from pychat.server.ops import OpRegistry

log = Logger(namespace="pychat.connection")


def describe_address(address: IAddress) -> tuple[str, str]:
    """(``host:port`` text for logs, host alone for per-address limits) of a peer address."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None:
        return (str(address), "local")
    if ":" in host:
        return (f"[{host}]:{port}", host)
    return (f"{host}:{port}", host)


class _StreamTransport(typing.Protocol):
    """What we use of a connection's transport (TCP, or the TLS layer over it)."""

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def getPeer(self) -> IAddress: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...


def _no_delay(transport: object) -> None:
    """Replies are small lines: send each at once, never wait to fill a TCP segment."""
    setter = getattr(transport, "setTcpNoDelay", None)
    if setter is not None:
        setter(True)


class ConnectionHost(typing.Protocol):
    """What a connection needs of the server it belongs to (the
    :class:`~pychat.server.chat.ChatServer` is one): its ops, limits and clock, to be told
    when the connection comes and goes, and how the log names an account."""

    registry: OpRegistry
    config: ServerConfig
    clock: IReactorTime

    def connection_opened(self, conn: ChatServerProtocol) -> str | None:
        """Admit the connection, or say why it is refused (the connection caps)."""

    def connection_closed(self, conn: ChatServerProtocol) -> None:
        """Forget the connection."""

    def log_name_of(self, username: str | None) -> str:
        """How the log names the account."""


@implementer(IHandshakeListener)
class ChatServerProtocol(Protocol, TimeoutMixin):
    """One client connection to the chat server."""

    def __init__(self, server: ConnectionHost) -> None:
        self.server = server
        self.core = ServerConnection(server.registry, server.config.max_line)
        self.session = Session(peer="?", host="?")
        #: admitted, busy, draining, closing, closed: moved only through its table.
        self._life = self.core.lifecycle
        self._requests = RequestQueue(self, self.core, ReplyOrder(self._write))
        self._backlog = self._requests.backlog
        self._abort_call: IDelayedCall | None = None
        self._output = OutputGate(server.config.max_output_queue)
        # TimeoutMixin schedules through self.callLater; use the server's clock (fake in tests).
        self.callLater = server.clock.callLater  # type: ignore[assignment]
        self._timers = SlownessTimers(
            self.callLater, no_handshake=self._no_handshake, line_too_old=self._partial_line_too_old
        )
        self._budget = TokenBucket(
            server.clock,
            capacity=limits.REQUEST_BURST,
            period=limits.REQUEST_BURST / server.config.requests_per_second,
            max_keys=1,
        )

    @property
    def _stream(self) -> _StreamTransport:
        return typing.cast(_StreamTransport, self.transport)

    # -- OpContext ---------------------------------------------------------------------------

    def push(self, event: str, payload: Mapping[str, Any]) -> None:
        """Send a server push (``{"event": ...}``) on this connection."""
        self._write(encode_event(event, payload))

    def push_line(self, line: bytes) -> None:
        """Send a push line already encoded."""
        self._write(line)

    def close_after_reply(self) -> None:
        """Close the connection once the reply being prepared is written."""
        self._life.on(Event.DRAIN)

    # -- Twisted callbacks -------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.session.peer, self.session.host = describe_address(self._stream.getPeer())
        refused = self.server.connection_opened(self)
        if refused is not None:
            # Before any TLS work: the caps must bite before descriptors or CPU run out.
            log.warn("refused a connection from {peer}: {why}", peer=self.session.peer, why=refused)
            self._life.on(Event.REFUSE)
            self._stream.abortConnection()
            return
        self._life.on(Event.ADMIT)
        _no_delay(self.transport)
        self._stream.registerProducer(self, True)
        self.setTimeout(self.server.config.idle_timeout)
        if ISSLTransport.providedBy(self.transport):
            self._timers.expect_handshake()
        log.info("connection opened from {peer}", peer=self.session.peer)

    def handshakeCompleted(self) -> None:
        """The TLS layer finished its handshake: the handshake timer is over."""
        self._timers.handshake_done()

    def _no_handshake(self) -> None:
        log.info("no TLS handshake from {peer} in time; closing", peer=self.session.peer)
        self._life.on(Event.CLOSE)
        self._stream.abortConnection()

    def _partial_line_too_old(self) -> None:
        log.info("an unfinished line from {peer} is too old; closing", peer=self.session.peer)
        why = f"a line stayed unfinished for {limits.PARTIAL_LINE_TIMEOUT:g} s"
        self.push("closing", {"reason": "partial_line_timeout", "message": why})
        self.close()

    def dataReceived(self, data: bytes) -> None:
        if self._life.closing:
            return
        items = self.core.receive_data(data)
        if items:
            self.resetTimeout()  # only whole requests count as activity, not dribbled bytes
        self._timers.partial_line(self.core.has_partial_line)
        wanted = sum(isinstance(item, Request) for item in items)
        allowed = self._budget.take_up_to("requests", wanted)  # one call per read, not per line
        for item in items:
            if isinstance(item, Oversized):
                # Queued requests before it still get their replies; then the error; then close.
                self._requests.add(item)
                break
            if isinstance(item, Request):
                if allowed:
                    allowed -= 1
                    self._backlog.received(item.size)
                else:
                    item = over_budget(item, self._budget, self.server.config.requests_per_second)
            self._requests.add(item)
        if self._backlog.full():
            self._backlog.paused = True
            self._stream.pauseProducing()
        self._requests.pump()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.setTimeout(None)
        self._timers.stop()
        admitted = self._life.admitted
        self._life.on(Event.LOST)
        if not admitted:
            self.server.connection_closed(self)
            return
        self._requests.clear()
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        self.core.force_state(State.CLOSED)
        log.info(
            "connection closed from {peer} ({user}, client {client})",
            peer=self.session.peer,
            user=self.server.log_name_of(self.session.username),
            client=for_log(self.session.client) if self.session.client else "unnamed",
        )
        self.server.connection_closed(self)

    def timeoutConnection(self) -> None:
        if self._requests.waiting_replies:  # waiting on our own disk: not the peer's idleness
            self.resetTimeout()
            return
        log.info("closing idle connection from {peer}", peer=self.session.peer)
        self.push("closing", {"reason": "idle_timeout", "message": "connection idle too long"})
        self.close()

    def _write(self, data: bytes) -> None:
        if self._life.closing or self.transport is None:
            return
        if not self._output.admit(len(data)):
            log.warn(
                "dropping {peer}: it stopped reading and {n} bytes are queued",
                peer=self.session.peer,
                n=self._output.queued,
            )
            self._life.on(Event.CLOSE)
            self._abort()
            return
        self.transport.write(data)

    def resume_reading(self) -> None:
        """The backlog of unanswered requests drained: read from the peer again."""
        self._stream.resumeProducing()

    # -- IPushProducer: the transport tells us when its send buffer is full ------------------

    def pauseProducing(self) -> None:
        """The peer is not keeping up with what we send."""
        self._output.pause()

    def resumeProducing(self) -> None:
        """The peer caught up."""
        self._output.resume()

    def stopProducing(self) -> None:
        """The transport is going away."""
        self._output.resume()

    # -- closing -----------------------------------------------------------------------------

    def close(self, grace: float = limits.SHUTDOWN_GRACE) -> None:
        """Flush what was written, then close; abort if the peer does not let us in ``grace``."""
        if self._life.closing:
            return
        self._life.on(Event.CLOSE)
        self.shut(grace)

    def shut(self, grace: float = limits.SHUTDOWN_GRACE) -> None:
        """The closing itself: nothing more is read, the closing handshake begins, and the
        connection is aborted if the peer does not let it end within ``grace``."""
        self._requests.clear()
        self.setTimeout(None)
        self.core.force_state(State.CLOSED)
        self._abort_call = self.server.clock.callLater(grace, self._abort)
        # The TLS layer does not begin its closing handshake while a producer is registered:
        # without this every close waited out ``grace`` and ended in an abort.
        self._stream.unregisterProducer()
        self._stream.loseConnection()

    def _abort(self) -> None:
        self._abort_call = None
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()
