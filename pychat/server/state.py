"""Connection states and the table of legal (state, op) pairs.

A connection moves through these states::

    awaiting_hello --hello--> unauthenticated --login_start--> srp_challenged
                                   ^    ^                          |
                                   |    +---- login_finish fails --+
                                   |                               | login_finish ok
                                   +----------- logout ----- authenticated <-+
                                                                 |      ^
                                            change_password_start|      |change_password
                                                                 v      |(ok or not)
                                                            reauth_challenged

Each op contributes rows to one :class:`TransitionTable`: for a state where the op is legal,
the state after it succeeds and the state after it fails.  A (state, op) pair missing from the
table is a ``wrong_state`` error that names both, so an op forgotten in some state is refused
by construction rather than by an ``if`` someone remembered to write.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class State(enum.Enum):
    """Where a connection is in its life."""

    AWAITING_HELLO = "awaiting_hello"
    UNAUTHENTICATED = "unauthenticated"
    SRP_CHALLENGED = "srp_challenged"
    AUTHENTICATED = "authenticated"
    #: Logged in, and asked to prove the password again (a password change in progress).
    REAUTH_CHALLENGED = "reauth_challenged"
    CLOSED = "closed"


#: States of a logged-in connection: every op of a logged-in user is legal in both.
LOGGED_IN = (State.AUTHENTICATED, State.REAUTH_CHALLENGED)

#: States in which the connection has said hello and is still open.
AFTER_HELLO = (State.UNAUTHENTICATED, State.SRP_CHALLENGED, *LOGGED_IN)


@dataclass(frozen=True)
class Outcome:
    """The state a connection moves to after an op succeeds or fails."""

    on_success: State
    on_failure: State


def stay_in(*states: State) -> dict[State, Outcome]:
    """Rows for an op that is legal in ``states`` and never changes the state."""
    return {s: Outcome(s, s) for s in states}


class TransitionTable:
    """Every legal (state, op) pair with its outcome."""

    def __init__(self) -> None:
        self._rows: dict[tuple[State, str], Outcome] = {}
        self._by_state: dict[State, dict[str, Outcome]] = {s: {} for s in State}

    def add(self, op: str, rows: Mapping[State, Outcome]) -> None:
        """Declare where ``op`` is legal.  A pair may be declared once."""
        for state, outcome in rows.items():
            if state is State.CLOSED:
                raise ValueError("no op is legal on a closed connection")
            key = (state, op)
            if key in self._rows:
                raise ValueError(f"{op!r} is already declared in state {state.value}")
            self._rows[key] = outcome
            self._by_state[state][op] = outcome

    def lookup(self, state: State, op: str) -> Outcome | None:
        """The outcome of ``op`` in ``state``, or None when it is not legal there."""
        return self._rows.get((state, op))

    def legal_in(self, state: State) -> Mapping[str, Outcome]:
        """Every op legal in ``state`` with its outcome: the row a connection keeps while it
        is in that state (one dict lookup a request, not a hash of the state each time).
        The mapping is live: ops added later appear in it."""
        return self._by_state[state]

    def states_for(self, op: str) -> list[State]:
        """The states in which ``op`` is legal, in declaration order."""
        return [s for (s, o) in self._rows if o == op]

    def ops(self) -> Iterable[str]:
        """Every op that is legal somewhere."""
        return {o for (_, o) in self._rows}
