"""Where the client runs slow work (password KDF, RSA key generation, keystore writes).

Threads by default, so the reactor and the screen never freeze; :func:`inline` runs it at once
instead, for the in-memory harness of :mod:`pychat.testing` (no threads, no real time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet import defer, threads

T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs ``f(*args)`` where it may block; the Deferred fires with the result."""

    def __call__(self, f: Callable[..., T], *args: Any) -> defer.Deferred[T]: ...


def in_thread(f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
    """In the reactor's thread pool."""
    return threads.deferToThread(f, *args)


def inline(f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
    """At once, in this thread."""
    return defer.maybeDeferred(f, *args)
