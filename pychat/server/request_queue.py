"""Running one connection's requests in order: the queue of what was read, each request's
handler, and its reply kept in its place (:class:`~pychat.server.replies.ReplyOrder`), so
replies leave in request order even when a handler waits for the disk.

Sans-IO apart from the Deferreds of handlers: the connection (:class:`RequestHost`, the
:class:`~pychat.server.protocol.ChatServerProtocol`) hands it what it read and is asked to
resume reading, to close, or to shut once the last reply of a draining connection is out.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.server.backlog import Backlog
from pychat.server.connection import Inbound, ServerConnection, Started
from pychat.server.lifecycle import Event
from pychat.server.ops import Later, OpContext
from pychat.server.refusals import REFUSALS, error_reply
from pychat.server.replies import ReplyOrder, ReplySlot
from pychat.wire.envelope import EnvelopeError, Request, encode_error, encode_ok
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.framing import Oversized

log = Logger(namespace="pychat.connection")

#: What a handler answers with: the reply fields, or a promise of them.
Answer = Mapping[str, Any] | Later
#: What a request came to: the reply fields, or the failure its error reply stands for.
Answered = Mapping[str, Any] | Failure
#: What a handler that is no coroutine answers with (a tuple: isinstance takes it as it is).
_ANSWERS = (Later, Mapping)


class RequestHost(OpContext, typing.Protocol):
    """What the request queue needs of its connection: to be the handlers' context, and to
    read again, close, or shut."""

    def resume_reading(self) -> None:
        """The backlog drained: read from the peer again."""

    def close(self) -> None:
        """Close the connection now (flushing what was written)."""

    def shut(self) -> None:
        """Close the connection: its last reply is out."""


def _too_long(item: Inbound) -> ProtocolError:
    """The error of an :class:`Oversized` line (the connection closes after it)."""
    limit = typing.cast(Oversized, item).limit
    return ProtocolError(
        ErrorCode.LINE_TOO_LONG, f"line longer than {limit} bytes; closing the connection"
    )


class RequestQueue:
    """One connection's requests, run in order, their replies kept in order."""

    def __init__(self, conn: RequestHost, core: ServerConnection, replies: ReplyOrder) -> None:
        self._conn = conn
        self._core = core
        self._life = core.lifecycle
        self._queue: deque[Inbound] = deque()
        self._replies = replies
        self.backlog = Backlog(self._queue, replies)
        self._backlog = self.backlog
        #: The loop is running (a handler that answers at once calls back into it; the loop
        #: already running takes the next request, so calls never nest).
        self._pumping = False

    @property
    def waiting_replies(self) -> bool:
        """Whether a reply is still to be written (a handler waits for the disk)."""
        return bool(self._replies)

    def add(self, item: Inbound) -> None:
        """Queue what was read (a request, or an error to answer)."""
        self._queue.append(item)

    def clear(self) -> None:
        """Forget what was read and not run (the connection is closing)."""
        self._queue.clear()

    def pump(self) -> None:
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
        if self._backlog.drained() and not self._life.closing:
            self._backlog.paused = False
            self._conn.resume_reading()

    def _pump_queue(self) -> None:
        while self._queue and self._life.runs_requests:
            item = self._queue.popleft()
            if type(item) is Request:
                self._run(item)
            elif isinstance(item, EnvelopeError):
                log.debug(
                    "bad envelope from {peer}: {code}", peer=self._conn.session.peer, code=item.code
                )
                self._fill(self._replies.take(), encode_error(item.request_id, item))
            else:  # Oversized: its error, then the connection closes
                self._life.on(Event.DRAIN)
                self._queue.clear()
                self._fill(self._replies.take(), encode_error(None, _too_long(item)))
                return
            if self._life.draining:
                self._queue.clear()
                self._maybe_close()
                return

    def _finished(self, result: object) -> None:
        self._life.on(Event.DONE)
        if isinstance(result, Failure):  # _run catches everything; this is a last resort
            log.failure("request processing failed", failure=result)
            self._conn.close()
            return
        if self._life.draining:
            self._queue.clear()
            self._maybe_close()
            return
        self.pump()

    def _fill(self, slot: ReplySlot, data: bytes) -> None:
        """Set a reply, then write every reply now at the front, in request order."""
        self._replies.fill(slot, data)
        self._maybe_close()
        if self._backlog.paused and not self._life.busy:
            self.pump()

    def _maybe_close(self) -> None:
        if self._life.draining and not self._replies:
            self._life.on(Event.WRITTEN)
            self._conn.shut()

    def _error_reply(self, request: Request, failure: Failure) -> bytes:
        line, close = error_reply(request, failure, self._conn.session.peer)
        if close:
            self._life.on(Event.DRAIN)
        return line

    def _run(self, request: Request) -> None:
        """Run one request's handler.  Most handlers answer (or hand back a :class:`Later`) in
        a plain call; one that returns a coroutine holds the queue until it finishes."""
        slot = self._replies.take()
        started: Started | None = None
        try:
            started = self._core.begin(request)
            result = started.spec.handler(self._conn, started.params)
        except Exception:
            self._refused(Failure(), request, started, slot)
            return
        if not isinstance(result, _ANSWERS):  # a coroutine: the queue waits for it
            self._life.on(Event.WAIT)
            args = (request, started, slot)
            waiting = defer.ensureDeferred(typing.cast(Coroutine[Any, Any, Any], result))
            waiting.addCallbacks(self._answered, self._refused, callbackArgs=args, errbackArgs=args)
            waiting.addBoth(self._finished)
            return
        try:
            self._answered(result, request, started, slot)
        except Exception:
            log.failure("request processing failed")  # a bug of ours: this connection only
            self._conn.close()

    def _answered(
        self, result: Answer, request: Request, started: Started, slot: ReplySlot
    ) -> None:
        self._core.complete(started, ok=True)
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
            self._core.complete(started, ok=False)
        self._backlog.answered(request.size)
        self._fill(slot, self._error_reply(request, failure))
