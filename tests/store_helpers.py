"""Helpers for tests that drive the store directly."""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from pychat.store.conversation import NewMessage

T = TypeVar("T")


def appended(
    conversations: Any,
    conv: Any,
    sender: str,
    epoch: int,
    ciphertext: str,
    client_id: str,
    now: float,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Deferred[None]]:
    """Append a message through the store's one append call; its record and a Deferred
    that fires once it is durable (or fails if it never will be)."""
    durable: Deferred[None] = Deferred()

    def landed(_: dict[str, Any], error: BaseException | None) -> None:
        if error is None:
            durable.callback(None)
        else:
            durable.errback(error)

    message = NewMessage(sender, epoch, ciphertext, client_id, now, extra)
    return conversations.append_message(conv, message, landed), durable


def done(d: Deferred[T]) -> T:
    """The result of a Deferred that has already fired (the inline runner's work), or what
    it failed with, raised."""
    results: list[Any] = []

    def keep(result: Any) -> Any:
        results.append(result)
        return result

    d.addBoth(keep)  # the result stays for whoever else waits on ``d``
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        d.addErrback(lambda _: None)  # raised here: handled
        results[0].raiseException()
    result: T = results[0]
    return result
