"""The op table: each op's parameter schema, handler and legal states.

Handler modules call :meth:`OpRegistry.op` to add their ops; the framing and the connection
core never change when an op is added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from pychat.server.state import Outcome, State, TransitionTable

if TYPE_CHECKING:
    from pychat.server.session import Session


class OpContext(Protocol):
    """What a handler may use of the connection it serves."""

    @property
    def session(self) -> Session:
        """The connection's session facts."""

    def push(self, event: str, payload: Mapping[str, Any]) -> None:
        """Send a server push on this connection."""

    def push_line(self, line: bytes) -> None:
        """Send a push already encoded (one encoding for every connection it goes to)."""

    def close_after_reply(self) -> None:
        """Close this connection once the current reply is written."""


class Later:
    """What a handler returns when its in-order work is done but its reply must wait (for an
    fsync).  The connection goes on with its next request meanwhile; replies still go out in
    request order.

    ``Later(deferred)`` takes its outcome from a Deferred that fires with the reply fields or
    fails (with a ProtocolError, or a store error).  The busiest path skips the Deferred: it
    settles the Later itself with :meth:`answer` or :meth:`refuse`, once."""

    __slots__ = ("_args", "_outcome", "_then")

    def __init__(self, result: Deferred[Mapping[str, Any]] | None = None) -> None:
        self._outcome: Mapping[str, Any] | Failure | None = None
        self._then: Callable[..., None] | None = None
        self._args: tuple[Any, ...] = ()
        if result is not None:
            result.addCallbacks(self.answer, self.refuse)

    def answer(self, fields: Mapping[str, Any]) -> None:
        """The reply's fields are ready."""
        self._settle(fields)

    def refuse(self, failure: Failure) -> None:
        """The request failed after all (the reply is the error ``failure`` stands for)."""
        self._settle(failure)

    def then(self, callback: Callable[..., None], *args: Any) -> None:
        """Call ``callback(outcome, *args)`` once settled: the fields, or a Failure."""
        self._then, self._args = callback, args
        if self._outcome is not None:
            callback(self._outcome, *args)

    def _settle(self, outcome: Mapping[str, Any] | Failure) -> None:
        if self._outcome is not None:
            raise RuntimeError("a Later is settled once")
        self._outcome = outcome
        if self._then is not None:
            self._then(outcome, *self._args)


#: A handler answers in a plain call (fields, or a :class:`Later`) or as a coroutine.
Handler = Callable[
    [OpContext, Any], Awaitable[Mapping[str, Any] | Later] | Mapping[str, Any] | Later
]


@dataclass(frozen=True)
class OpSpec:
    """One op: its name, the dataclass of its parameters and its handler."""

    name: str
    params: type
    handler: Handler


class OpRegistry:
    """All ops the server speaks, and the transition table built from them."""

    def __init__(self) -> None:
        self._ops: dict[str, OpSpec] = {}
        self.transitions = TransitionTable()

    def op(
        self, name: str, params: type, states: Mapping[State, Outcome]
    ) -> Callable[[Handler], Handler]:
        """Decorator: register ``handler`` for ``name``, legal in ``states``."""

        def register(handler: Handler) -> Handler:
            if name in self._ops:
                raise ValueError(f"op {name!r} registered twice")
            self._ops[name] = OpSpec(name, params, handler)
            self.transitions.add(name, states)
            return handler

        return register

    def get(self, name: str) -> OpSpec | None:
        """The op called ``name``, or None."""
        return self._ops.get(name)

    @property
    def specs(self) -> Mapping[str, OpSpec]:
        """Every op by name (live: ops registered later appear in it)."""
        return self._ops

    def names(self) -> list[str]:
        """Every op name, sorted, as announced by ``hello``."""
        return sorted(self._ops)
