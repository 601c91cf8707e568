"""The op table: each op's parameter schema, handler and legal states.

Handler modules call :meth:`OpRegistry.op` to add their ops; the framing and the connection
core never change when an op is added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred

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

    def close_after_reply(self) -> None:
        """Close this connection once the current reply is written."""


@dataclass(frozen=True)
class Later:
    """What a handler returns when its in-order work is done but its reply must wait (for an
    fsync).  The connection goes on with its next request meanwhile; replies still go out in
    request order.  ``result`` fires with the reply fields or fails with a ProtocolError."""

    result: Deferred[Mapping[str, Any]]


Handler = Callable[[OpContext, Any], Awaitable[Mapping[str, Any] | Later]]


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

    def names(self) -> list[str]:
        """Every op name, sorted, as announced by ``hello``."""
        return sorted(self._ops)
