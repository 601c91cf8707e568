r"""A connection's lifecycle, beside its protocol state: whether it was admitted, whether a
request's handler holds the queue, whether it is closing once its replies are written, and
whether it is closing or closed.  Sans-IO: the adapter (:class:`~pychat.server.protocol.
ChatServerProtocol`) tells it what happened and asks it what may happen next.

::

    new --admit--> open --wait--> busy --done--> open
     |              |               |
     |refuse        |drain          |drain
     v              v               v
    refused      draining <--done-- draining_busy
                    |   \--wait-------^
                    |
                    |written (every reply is out)
                    v
    (open, busy, draining, draining_busy) --close--> closing --lost--> closed

Any state goes to ``closed`` when the transport is lost (``refused`` stays ``refused``: a
refused connection was never counted in).  A (state, event) pair missing from the table is a
bug of ours (:class:`LifecycleError`), never the peer's.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    """Where a connection is in its life, from the adapter's side."""

    NEW = "new"
    #: Turned away at the door (the connection caps): nothing of it was counted in.
    REFUSED = "refused"
    #: Admitted; requests run as they come.
    OPEN = "open"
    #: A handler that is a coroutine holds the queue until it finishes.
    BUSY = "busy"
    #: No new request runs; the connection closes once every reply is written.
    DRAINING = "draining"
    #: Both: a handler still runs, and the connection closes after the replies.
    DRAINING_BUSY = "draining_busy"
    #: Closing: what was written is flushed, nothing more is read or written.
    CLOSING = "closing"
    CLOSED = "closed"


class Event(enum.Enum):
    """What happens to a connection."""

    ADMIT = "admit"
    REFUSE = "refuse"
    WAIT = "wait"
    DONE = "done"
    DRAIN = "drain"
    WRITTEN = "written"
    CLOSE = "close"
    LOST = "lost"


_LIVE = (Phase.OPEN, Phase.BUSY, Phase.DRAINING, Phase.DRAINING_BUSY)

#: Every legal (phase, event) and the phase after it.
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.NEW, Event.ADMIT): Phase.OPEN,
    (Phase.NEW, Event.REFUSE): Phase.REFUSED,
    (Phase.NEW, Event.CLOSE): Phase.CLOSING,
    (Phase.OPEN, Event.WAIT): Phase.BUSY,
    (Phase.DRAINING, Event.WAIT): Phase.DRAINING_BUSY,
    (Phase.CLOSING, Event.WAIT): Phase.CLOSING,
    (Phase.CLOSED, Event.WAIT): Phase.CLOSED,
    (Phase.BUSY, Event.DONE): Phase.OPEN,
    (Phase.OPEN, Event.DRAIN): Phase.DRAINING,
    (Phase.BUSY, Event.DRAIN): Phase.DRAINING_BUSY,
    (Phase.DRAINING, Event.DRAIN): Phase.DRAINING,
    (Phase.DRAINING_BUSY, Event.DRAIN): Phase.DRAINING_BUSY,
    (Phase.DRAINING_BUSY, Event.DONE): Phase.DRAINING,
    (Phase.DRAINING, Event.WRITTEN): Phase.CLOSING,
    **{(phase, Event.CLOSE): Phase.CLOSING for phase in _LIVE},
    (Phase.CLOSING, Event.CLOSE): Phase.CLOSING,
    (Phase.CLOSING, Event.DONE): Phase.CLOSING,
    (Phase.CLOSING, Event.DRAIN): Phase.CLOSING,
    (Phase.CLOSED, Event.CLOSE): Phase.CLOSED,
    (Phase.CLOSED, Event.DONE): Phase.CLOSED,
    (Phase.CLOSED, Event.DRAIN): Phase.CLOSED,
    **{(phase, Event.LOST): Phase.CLOSED for phase in (Phase.NEW, *_LIVE, Phase.CLOSING)},
    (Phase.CLOSED, Event.LOST): Phase.CLOSED,
    (Phase.REFUSED, Event.LOST): Phase.REFUSED,
    (Phase.REFUSED, Event.CLOSE): Phase.REFUSED,
}


class LifecycleError(Exception):
    """An event the lifecycle table has no row for: a bug in the adapter."""


class Lifecycle:
    """One connection's phase, moved only through :data:`TRANSITIONS`."""

    __slots__ = ("phase",)

    def __init__(self) -> None:
        self.phase = Phase.NEW

    def on(self, event: Event) -> Phase:
        """Apply ``event``; return the new phase.

        :raises LifecycleError: no row for (phase, event).
        """
        try:
            self.phase = TRANSITIONS[(self.phase, event)]
        except KeyError:
            raise LifecycleError(f"{event.value} in phase {self.phase.value}") from None
        return self.phase

    @property
    def runs_requests(self) -> bool:
        """Whether the next queued request may run now."""
        return self.phase is Phase.OPEN

    @property
    def busy(self) -> bool:
        """Whether a coroutine handler holds the queue."""
        return self.phase is Phase.BUSY or self.phase is Phase.DRAINING_BUSY

    @property
    def draining(self) -> bool:
        """Whether the connection closes once its replies are written."""
        return self.phase is Phase.DRAINING or self.phase is Phase.DRAINING_BUSY

    @property
    def closing(self) -> bool:
        """Whether nothing more is read or written (closing, closed or refused)."""
        return self.phase in (Phase.CLOSING, Phase.CLOSED, Phase.REFUSED)

    @property
    def admitted(self) -> bool:
        """Whether the connection was counted in (it was not refused at the door)."""
        return self.phase is not Phase.NEW and self.phase is not Phase.REFUSED
