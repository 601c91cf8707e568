"""Running blocking file work (fsync) off the reactor thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads

T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs ``f(*args)`` somewhere it may block, and lets the caller await the result."""

    def __call__(self, f: Callable[..., T], *args: Any) -> Awaitable[T]: ...


def inline_runner(f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
    """Run at once in this thread (tests on a fake reactor; tools without a reactor)."""
    return defer.maybeDeferred(f, *args)


def thread_runner(reactor: IReactorThreads) -> BlockingRunner:
    """Run in the reactor's thread pool."""

    def run(f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    return run
