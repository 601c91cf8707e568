"""The sans-IO core of one server connection: bytes in, requests out, replies to bytes.

It does no I/O and knows no Twisted: :meth:`ServerConnection.receive_data` takes received
bytes and returns what they contained (requests, envelope errors, or the oversized-line mark);
:meth:`ServerConnection.begin` checks a request against the op table and the current state;
:meth:`ServerConnection.complete` applies the state transition once the handler has finished.
The Twisted protocol in :mod:`pychat.server.protocol` only moves bytes and runs handlers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pychat.server.lifecycle import Lifecycle
from pychat.server.ops import OpRegistry, OpSpec
from pychat.server.state import State
from pychat.wire.envelope import EnvelopeError, Request, parse_request
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.framing import LineBuffer, Oversized
from pychat.wire.schema import parse_params

#: What one received line turns into.
Inbound = Request | EnvelopeError | Oversized


class Started(NamedTuple):
    """A request that passed the op table and its schema, ready for its handler."""

    request: Request
    spec: OpSpec
    params: Any


class ServerConnection:
    """Protocol state of one connection, and its lifecycle (admitted, busy, draining, closing:
    :class:`~pychat.server.lifecycle.Lifecycle`).

    :param registry: the op table.
    :param max_line: the line length limit in bytes.
    """

    def __init__(self, registry: OpRegistry, max_line: int) -> None:
        self._registry = registry
        self._specs = registry.specs
        self._lines = LineBuffer(max_line)
        self.state = State.AWAITING_HELLO
        #: The ops legal in :attr:`state`, with their outcomes (kept in step with it).
        self._legal = registry.transitions.legal_in(self.state)
        #: Where the connection is in its life, apart from the protocol.
        self.lifecycle = Lifecycle()

    def receive_data(self, data: bytes) -> list[Inbound]:
        """Feed received bytes; return the requests (or errors) of every complete line."""
        if self.state is State.CLOSED:
            return []
        out: list[Inbound] = []
        for line in self._lines.feed(data):
            if isinstance(line, Oversized):
                # Requests before it still run; the caller replies and closes after them.
                out.append(line)
                break
            if not line.strip():
                continue  # blank lines are keep-alive noise, not requests
            try:
                out.append(parse_request(line))
            except EnvelopeError as exc:
                out.append(exc)
        return out

    @property
    def has_partial_line(self) -> bool:
        """Whether an unfinished line is waiting for more bytes."""
        return self._lines.has_partial_line

    def begin(self, request: Request) -> Started:
        """Check that ``request`` may run now and parse its parameters.

        :raises ProtocolError: ``unknown_op``, ``wrong_state`` or ``bad_field``.
        """
        spec = self._specs.get(request.op)
        if spec is None:
            raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op '{request.op}'")
        if request.op not in self._legal:
            legal = ", ".join(s.value for s in self._registry.transitions.states_for(request.op))
            raise ProtocolError(
                ErrorCode.WRONG_STATE,
                f"op '{request.op}' is not allowed in state '{self.state.value}'"
                f" (allowed in: {legal})",
            )
        params: Any = parse_params(spec.params, request.fields)
        return Started(request, spec, params)

    def complete(self, started: Started, *, ok: bool) -> State:
        """Apply the outcome of a finished request; return the new state."""
        if self.state is State.CLOSED:
            return self.state
        outcome = self._legal.get(started.request.op)
        if outcome is not None:
            after = outcome.on_success if ok else outcome.on_failure
            if after is not self.state:
                self._enter(after)
        return self.state

    def force_state(self, state: State) -> None:
        """Move to ``state`` outside an op (a forced logout, or the close of the socket)."""
        self._enter(state)

    def _enter(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            self._legal = self._registry.transitions.legal_in(state)
