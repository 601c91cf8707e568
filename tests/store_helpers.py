"""Helpers for tests that drive the store directly."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from pychat.store.conversation import NewMessage


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
