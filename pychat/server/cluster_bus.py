"""What the server needs from the way the nodes that share a database tell each other
things (:mod:`pychat.server.cluster` has the database's own; a Redis or NATS bus could
stand in)."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import defer


class PushBus(Protocol):
    """What the server needs from the way nodes tell each other things."""

    def publish(self, body: dict[str, Any]) -> None:
        """Tell the other nodes ``body`` (in order with everything published before)."""

    def start(self) -> None:
        """Begin listening and telling."""

    def stop(self) -> defer.Deferred[None]:
        """Say goodbye and stop; fires once what was published is written."""
