"""The client message ids of a conversation's recent messages, for idempotent retries.

Every open conversation holds up to :data:`RECENT_CLIENT_IDS` of them, so they are kept small:
a ring of the last insertions (key, ``seq`` and time in flat arrays) and a dict from
``sender + "\n" + client_id`` to its ring slot: about 150 bytes per message, against some 310
for an ordered dict of tuples.  Writing a slot drops the id it held, so the ids remembered are
those of the last :data:`RECENT_CLIENT_IDS` messages stored (a rolled-back one still counts).
"""

from __future__ import annotations

from array import array

#: Client message ids remembered per conversation for idempotent retries.  A retry is
#: recognised when it comes back within this many messages of the original.
RECENT_CLIENT_IDS = 1000


def _key(sender: str, client_id: str) -> str:
    return f"{sender}\n{client_id}"  # a username never holds a newline


class RecentIds:
    """(sender, client id) -> (seq, time) for the last :data:`RECENT_CLIENT_IDS` messages."""

    def __init__(self, capacity: int = RECENT_CLIENT_IDS) -> None:
        self.capacity = capacity
        self._slots: dict[str, int] = {}
        self._keys: list[str | None] = [None] * capacity
        self._seqs = array("q", bytes(8 * capacity))
        self._times = array("d", bytes(8 * capacity))
        self._next = 0

    def __len__(self) -> int:
        return len(self._slots)

    def remember(self, sender: str, client_id: str, seq: int, time: float) -> None:
        """Keep a new message's id in the next slot, dropping the id that slot held."""
        key = f"{sender}\n{client_id}"  # _key, inline: once for every message
        earlier = self._slots.pop(key, None)
        if earlier is not None:
            self._keys[earlier] = None
        slot = self._next % self.capacity
        self._next += 1
        dropped = self._keys[slot]
        if dropped is not None:
            del self._slots[dropped]
        self._keys[slot] = key
        self._slots[key] = slot
        self._seqs[slot] = seq
        self._times[slot] = time

    def get(self, sender: str, client_id: str) -> tuple[int, float] | None:
        """The (seq, time) of the message this sender sent with this id, if it is recent."""
        slot = self._slots.get(f"{sender}\n{client_id}")  # _key, inline
        return None if slot is None else (self._seqs[slot], self._times[slot])

    def forget(self, sender: str, client_id: str, seq: int) -> None:
        """Drop the id if it still names message ``seq`` (that message was rolled back)."""
        key = _key(sender, client_id)
        slot = self._slots.get(key)
        if slot is not None and self._seqs[slot] == seq:
            del self._slots[key]
            self._keys[slot] = None
