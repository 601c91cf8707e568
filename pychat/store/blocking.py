"""Running blocking file work (fsync) off the reactor thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.python.failure import Failure

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


def run_inline(work: Coroutine[Any, Any, T]) -> T:
    """Run a store coroutine whose blocking work goes to :func:`inline_runner`, so that it is
    finished when this returns (tools without a reactor); raise what it raised."""
    results: list[Any] = []
    defer.ensureDeferred(work).addBoth(results.append)
    if not results:
        raise RuntimeError("the coroutine waited for something the inline runner does not run")
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]  # type: ignore[no-any-return]
