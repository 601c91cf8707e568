"""Writes where only the newest value matters (read markers), at most one under way per key.

A marker may move many times while its row is being written; writing each value in turn
would cost one transaction per move (a reader who reads as messages arrive moves it with
every message).  Here a key has at most one write under way; asked again meanwhile, exactly
one more write follows it, with whatever the value is by then.  Whoever asked is told once a
write begun after they asked has ended, so an awaited write never returns before its value
(or a newer one) is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

K = TypeVar("K", bound=Hashable)


class LatestWrites(Generic[K]):
    """Coalesced writes: ``write(key)`` stores the key's value as it is when the write
    begins, in one transaction."""

    def __init__(self, write: Callable[[K], defer.Deferred[None]]) -> None:
        self._write = write
        #: Key -> those told when its write under way ends.
        self._running: dict[K, list[defer.Deferred[None]]] = {}
        #: Key -> those told when the write after the one under way ends.
        self._again: dict[K, list[defer.Deferred[None]]] = {}

    def write(self, key: K) -> defer.Deferred[None]:
        """Store the key's value soon; fires once a write begun after this call has ended
        (with that write's failure, if it failed)."""
        told: defer.Deferred[None] = defer.Deferred()
        if key in self._running:
            self._again.setdefault(key, []).append(told)
        else:
            self._start(key, [told])
        return told

    def settled(self) -> defer.Deferred[None]:
        """Fires once every write asked for so far has ended (stored or not)."""
        last: list[defer.Deferred[None]] = []
        for key, running in self._running.items():
            told: defer.Deferred[None] = defer.Deferred()
            self._again.get(key, running).append(told)
            last.append(told)
        done = defer.DeferredList(last, consumeErrors=True)
        return done.addCallback(lambda _: None)

    def _start(self, key: K, told: list[defer.Deferred[None]]) -> None:
        self._running[key] = told
        self._write(key).addBoth(self._ended, key)

    def _ended(self, result: object, key: K) -> None:
        # While they are told the key stays busy: a write asked for now follows this one.
        for told in self._running[key]:
            if isinstance(result, Failure):
                told.errback(result)
            else:
                told.callback(None)
        del self._running[key]
        waiting = self._again.pop(key, None)
        if waiting is not None:
            self._start(key, waiting)
