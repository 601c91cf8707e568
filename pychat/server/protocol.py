"""The Twisted protocol of one client connection: it moves bytes and runs handlers.

All protocol decisions live in :class:`pychat.server.connection.ServerConnection`; this class
only feeds it received bytes, runs each request's handler (one at a time, so replies come in
request order and state changes never interleave), writes replies, and enforces the idle
timeout and the backlog limit.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IDelayedCall, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from pychat import limits
from pychat.log_text import for_log
from pychat.server.backlog import Backlog
from pychat.server.connection import Inbound, ServerConnection, Started
from pychat.server.ops import Later
from pychat.server.output import OutputGate
from pychat.server.ratelimit import TokenBucket
from pychat.server.refusals import REFUSALS, error_reply, over_budget
from pychat.server.replies import ReplyOrder, ReplySlot
from pychat.server.session import Session
from pychat.server.state import State
from pychat.server.timers import SlownessTimers
from pychat.wire.envelope import EnvelopeError, Request, encode_error, encode_event, encode_ok
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.framing import Oversized

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from pychat.server.config import ServerConfig
    from pychat.server.ops import OpRegistry

log = Logger(namespace="pychat.connection")

#: What a handler answers with: the reply fields, or a promise of them.
Answer = Mapping[str, Any] | Later
#: What a request came to: the reply fields, or the failure its error reply stands for.
Answered = Mapping[str, Any] | Failure
#: What a handler that is no coroutine answers with (a tuple: isinstance takes it as it is).
_ANSWERS = (Later, Mapping)


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


def _too_long(item: Inbound) -> ProtocolError:
    """The error of an :class:`Oversized` line (the connection closes after it)."""
    limit = typing.cast(Oversized, item).limit
    return ProtocolError(
        ErrorCode.LINE_TOO_LONG, f"line longer than {limit} bytes; closing the connection"
    )


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
        self._queue: deque[Inbound] = deque()
        self._replies = ReplyOrder(self._write)
        self._busy = False
        self._backlog = Backlog(self._queue, self._replies)
        self._closing = False
        self._close_after_reply = False
        self._abort_call: IDelayedCall | None = None
        self._output = OutputGate(server.config.max_output_queue)
        # TimeoutMixin schedules through self.callLater; use the server's clock (fake in tests).
        self.callLater = server.clock.callLater  # type: ignore[assignment]
        self._admitted = False
        self._pumping = False
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
        self._close_after_reply = True

    # -- Twisted callbacks -------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.session.peer, self.session.host = describe_address(self._stream.getPeer())
        refused = self.server.connection_opened(self)
        if refused is not None:
            # Before any TLS work: the caps must bite before descriptors or CPU run out.
            log.warn("refused a connection from {peer}: {why}", peer=self.session.peer, why=refused)
            self._closing = True
            self._stream.abortConnection()
            return
        self._admitted = True
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
        self._closing = True
        self._stream.abortConnection()

    def _partial_line_too_old(self) -> None:
        log.info("an unfinished line from {peer} is too old; closing", peer=self.session.peer)
        why = f"a line stayed unfinished for {limits.PARTIAL_LINE_TIMEOUT:g} s"
        self.push("closing", {"reason": "partial_line_timeout", "message": why})
        self.close()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
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
                self._queue.append(item)
                break
            if isinstance(item, Request):
                if allowed:
                    allowed -= 1
                    self._backlog.received(item.size)
                else:
                    item = over_budget(item, self._budget, self.server.config.requests_per_second)
            self._queue.append(item)
        if self._backlog.full():
            self._backlog.paused = True
            self._stream.pauseProducing()
        self._pump()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.setTimeout(None)
        self._timers.stop()
        if not self._admitted:
            self.server.connection_closed(self)
            return
        self._closing = True
        self._queue.clear()
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
        if self._replies:  # still waiting on our own disk: not the peer's idleness
            self.resetTimeout()
            return
        log.info("closing idle connection from {peer}", peer=self.session.peer)
        self.push("closing", {"reason": "idle_timeout", "message": "connection idle too long"})
        self.close()

    # -- request processing ------------------------------------------------------------------

    def _pump(self) -> None:
        """Run queued requests in order; wait for a handler that has not finished yet.

        A handler that finishes at once calls back into here; the loop already running then
        takes the next request, so thousands of pipelined requests in one read never nest
        calls (they once overflowed the stack).
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            self._pump_queue()
        finally:
            self._pumping = False
        if self._backlog.drained() and not self._closing:
            self._backlog.paused = False
            self._stream.resumeProducing()

    def _pump_queue(self) -> None:
        while self._queue and not self._busy and not self._closing:
            item = self._queue.popleft()
            if type(item) is Request:
                self._run(item)
            elif isinstance(item, EnvelopeError):
                log.debug(
                    "bad envelope from {peer}: {code}", peer=self.session.peer, code=item.code
                )
                self._fill(self._replies.take(), encode_error(item.request_id, item))
            else:  # Oversized: its error, then the connection closes
                self._close_after_reply = True
                self._queue.clear()
                self._fill(self._replies.take(), encode_error(None, _too_long(item)))
                return
            if self._close_after_reply:
                self._queue.clear()
                self._maybe_close()
                return

    def _finished(self, result: object) -> None:
        self._busy = False
        if isinstance(result, Failure):  # _run catches everything; this is a last resort
            log.failure("request processing failed", failure=result)
            self.close()
            return
        if self._close_after_reply:
            self._queue.clear()
            self._maybe_close()
            return
        self._pump()

    def _fill(self, slot: ReplySlot, data: bytes) -> None:
        """Set a reply, then write every reply now at the front, in request order."""
        self._replies.fill(slot, data)
        self._maybe_close()
        if self._backlog.paused and not self._busy:
            self._pump()

    def _maybe_close(self) -> None:
        if self._close_after_reply and not self._replies:
            self.close()

    def _error_reply(self, request: Request, failure: Failure) -> bytes:
        line, close = error_reply(request, failure, self.session.peer)
        self._close_after_reply = self._close_after_reply or close
        return line

    def _run(self, request: Request) -> None:
        """Run one request's handler.  Most handlers answer (or hand back a :class:`Later`) in
        a plain call; one that returns a coroutine holds the queue until it finishes."""
        slot = self._replies.take()
        started: Started | None = None
        try:
            started = self.core.begin(request)
            result = started.spec.handler(self, started.params)
        except Exception:
            self._refused(Failure(), request, started, slot)
            return
        if not isinstance(result, _ANSWERS):  # a coroutine: the queue waits for it
            self._busy = True
            args = (request, started, slot)
            waiting = defer.ensureDeferred(typing.cast(Coroutine[Any, Any, Any], result))
            waiting.addCallbacks(self._answered, self._refused, callbackArgs=args, errbackArgs=args)
            waiting.addBoth(self._finished)
            return
        try:
            self._answered(result, request, started, slot)
        except Exception:
            log.failure("request processing failed")  # a bug of ours: this connection only
            self.close()

    def _answered(
        self, result: Answer, request: Request, started: Started, slot: ReplySlot
    ) -> None:
        self.core.complete(started, ok=True)
        if isinstance(result, Later):
            result.then(self._settled, request, slot)
        else:
            self._settled(result, request, slot)

    def _settled(self, outcome: Answered, request: Request, slot: ReplySlot) -> None:
        self._backlog.answered(request.size)
        if isinstance(outcome, Failure):
            self._fill(slot, self._error_reply(request, outcome))
        else:
            self._fill(slot, encode_ok(request.id, outcome))

    def _refused(
        self, failure: Failure, request: Request, started: Started | None, slot: ReplySlot
    ) -> None:
        if started is not None and isinstance(failure.value, REFUSALS):
            self.core.complete(started, ok=False)
        self._backlog.answered(request.size)
        self._fill(slot, self._error_reply(request, failure))

    def _write(self, data: bytes) -> None:
        if self._closing or self.transport is None:
            return
        if not self._output.admit(len(data)):
            log.warn(
                "dropping {peer}: it stopped reading and {n} bytes are queued",
                peer=self.session.peer,
                n=self._output.queued,
            )
            self._closing = True
            self._abort()
            return
        self.transport.write(data)

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
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
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
