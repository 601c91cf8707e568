"""Keeping a quiet connection open: a ``ping`` well inside the server's idle timeout.

The server closes a connection that sends no complete request for ``limits.idle_timeout``
seconds (it says so in ``hello``); a client that only listens would be dropped every few
minutes without this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer, task

#: Pings go at a third of the idle timeout, and at least this often (seconds).
KEEPALIVE_MAX_INTERVAL = 60.0


def keepalive_interval(hello: dict[str, Any]) -> float:
    """Seconds between pings for a server that announced ``hello``."""
    limits = hello.get("limits")
    idle = limits.get("idle_timeout") if isinstance(limits, dict) else None
    idle = float(idle) if isinstance(idle, int | float) and idle > 0 else 300.0
    return max(1.0, min(idle / 3, KEEPALIVE_MAX_INTERVAL))


class Keepalive:
    """Calls ``ping`` every interval while started, on the given clock."""

    def __init__(self, clock: Any, ping: Callable[[], Awaitable[Any]]) -> None:
        def once() -> None:
            # A ping that fails is the connection failing: its own loss handling takes over.
            defer.ensureDeferred(_await(ping())).addErrback(lambda _: None)

        self._loop = task.LoopingCall(once)
        self._loop.clock = clock

    def start(self, interval: float) -> None:
        """Ping every ``interval`` seconds from now on (the first after one interval)."""
        if not self._loop.running:
            self._loop.start(interval, now=False)

    def stop(self) -> None:
        """No more pings (the connection is gone or closing)."""
        if self._loop.running:
            self._loop.stop()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
