"""Reconnecting after a dropped connection: backoff on the injected clock, log in again with
the last credentials, then catch up on what arrived meanwhile.

The backoff starts afresh, with a try at once, when the user asks (Ctrl-R) or when the
network changes under a waiting client (the route to the server changed: see
:mod:`pychat.client.network_watch`), so a laptop that joins a network is back in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer, task
from twisted.logger import Logger

from pychat.client.errors import TrustError

log = Logger(namespace="pychat.client")

#: Reconnect delays: 1 s, doubling, at most this.
RECONNECT_MAX_DELAY = 30.0
#: While waiting, the route to the server is looked at this often (seconds).
ROUTE_CHECK_INTERVAL = 2.0


class Reconnectable(Protocol):
    """What reconnecting needs of the client."""

    @property
    def closing(self) -> bool: ...
    def set_state(self, state: str, **extra: Any) -> None: ...
    async def relogin(self) -> None: ...
    async def catch_up(self) -> None: ...


class Reconnector:
    """Runs one reconnect loop at a time for a client."""

    def __init__(
        self, client: Reconnectable, clock: Any, route: Callable[[], str | None] | None = None
    ) -> None:
        self._client = client
        self._clock = clock
        self._route = route or (lambda: None)
        self.running = False
        self._waiting: defer.Deferred[None] | None = None
        self._fresh = False

    def retry_now(self) -> None:
        """Try at once (Ctrl-R), and start the backoff afresh: the network may be back.
        (Starts reconnecting if it was not: after a refusal or a stop.)"""
        if not self.running:
            self.start()
        self._fresh = True
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.called:
            waiting.cancel()

    def start(self) -> None:
        """Begin reconnecting (no-op if a loop is already running)."""
        if not self.running:
            defer.ensureDeferred(self._loop())

    async def _loop(self) -> None:
        self.running = True
        delay = 1.0
        try:
            while not self._client.closing:
                self._client.set_state("reconnecting", delay=delay)
                self._fresh = False
                await self._wait(delay)
                if self._fresh:
                    delay = 1.0
                if self._client.closing:
                    return
                try:
                    await self._client.relogin()
                    await self._client.catch_up()
                    return
                except TrustError as exc:
                    self._client.set_state("refused", reason=str(exc))
                    return
                except Exception as exc:  # try again later
                    log.info("reconnect failed: {e}", e=exc)
                    delay = 1.0 if self._fresh else min(RECONNECT_MAX_DELAY, delay * 2)
        finally:
            self.running = False

    async def _wait(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less: until :meth:`retry_now` or a network change."""
        route = self._route()

        def check() -> None:
            if self._route() != route:
                log.info("the network changed: reconnecting now")
                self.retry_now()

        watch = task.LoopingCall(check)
        watch.clock = self._clock
        watch.start(ROUTE_CHECK_INTERVAL, now=False)
        self._waiting = task.deferLater(self._clock, delay, lambda: None)
        try:
            await self._waiting
        except defer.CancelledError:
            pass  # retry_now: go at once
        finally:
            self._waiting = None
            watch.stop()
