"""Replies in request order: a request takes a slot when it starts, and a slot's reply is
written once every earlier slot's has been, however the handlers' finishing order goes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class ReplySlot:
    """Where one request's reply waits until every earlier reply has been written."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None


class ReplyOrder:
    """The slots of one connection's requests that are not answered yet, oldest first."""

    __slots__ = ("_slots", "_write")

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._slots: deque[ReplySlot] = deque()
        self._write = write

    def take(self) -> ReplySlot:
        """The slot of a request that starts now."""
        slot = ReplySlot()
        self._slots.append(slot)
        return slot

    def fill(self, slot: ReplySlot, data: bytes) -> None:
        """Set ``slot``'s reply, then write every reply now at the front, in order."""
        slot.data = data
        slots = self._slots
        while slots and slots[0].data is not None:
            ready = slots.popleft().data
            assert ready is not None  # noqa: S101 - checked by the loop condition
            self._write(ready)

    def __len__(self) -> int:
        """Requests started and not yet answered."""
        return len(self._slots)
