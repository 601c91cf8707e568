"""When a connection's socket stops being read, and when it is read again.

Requests of one connection are handled one at a time, so a pipelining client can get ahead of
the server; past :data:`~pychat.limits.MAX_PENDING_REQUESTS` requests, or
:data:`~pychat.limits.MAX_PENDING_BYTES` bytes of them, not yet answered, the socket is not
read until half of that drained, and TCP holds the client back.
"""

from __future__ import annotations

from collections.abc import Sized

from pychat import limits


class Backlog:
    """One connection's requests received and not yet answered: how many, and their bytes."""

    __slots__ = ("_answering", "_queued", "bytes", "paused")

    def __init__(self, queued: Sized, answering: Sized) -> None:
        self._queued, self._answering = queued, answering
        self.bytes = 0
        #: Whether the socket is not being read.
        self.paused = False

    def __len__(self) -> int:
        return len(self._queued) + len(self._answering)

    def received(self, size: int) -> None:
        """A request of ``size`` bytes joined the queue."""
        self.bytes += size

    def answered(self, size: int) -> None:
        """A request of ``size`` bytes has its reply."""
        self.bytes -= size

    def full(self) -> bool:
        """Reading should stop now."""
        return not self.paused and (
            len(self) >= limits.MAX_PENDING_REQUESTS or self.bytes >= limits.MAX_PENDING_BYTES
        )

    def drained(self) -> bool:
        """Reading, stopped, may go on now."""
        return (
            self.paused
            and len(self) < limits.MAX_PENDING_REQUESTS // 2
            and self.bytes < limits.MAX_PENDING_BYTES // 2
        )
