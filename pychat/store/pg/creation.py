"""The transaction that makes a conversation's row and its first epoch, which a pair's
creation and a group's share (each run on a pool thread, committed when it returns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Adds the event of a change to the transaction that makes it (None: no other nodes told).
Told = Callable[..., None] | None


def create_conversation(
    cursor: Any, conv_key: str, meta: bytes, first_epoch: bytes, told: Told
) -> bool:
    """Insert a conversation's row and its first epoch (a group's chain follows in the same
    transaction); False when it exists already."""
    cursor.execute(
        "INSERT INTO conversations (conv_key, sealed) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (conv_key, meta),
    )
    if cursor.rowcount != 1:
        return False
    cursor.execute(
        "INSERT INTO conversation_epochs (conv_key, epoch, sealed) VALUES (%s, 1, %s)",
        (conv_key, first_epoch),
    )
    if told is not None:
        told(cursor)
    return True
