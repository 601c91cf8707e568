"""Values the client library hands to its users: messages as shown, events, safety numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pychat.crypto.e2e import LATEST_TIME


@dataclass(frozen=True)
class ChatMessage:
    """A message as the user sees it.  ``text`` is None unless ``status`` is ``verified``."""

    conversation: str
    peer: str
    seq: int
    sender: str
    time: float
    status: str  # "verified" or "rejected"
    text: str | None = None
    reason: str | None = None
    #: An emote (``/me``): shown as ``* sender text``.
    action: bool = False

    def to_json(self) -> dict[str, Any]:
        """For ``pychat read --json``."""
        return {
            "conversation": self.conversation,
            "peer": self.peer,
            "seq": self.seq,
            "sender": self.sender,
            "time": self.time,
            "status": self.status,
            "text": self.text,
            "reason": self.reason,
            "action": self.action,
        }


@dataclass(frozen=True)
class SafetyNumbers:
    """What ``/verify`` shows: the number with the peer's current key and, while a key change
    is pending, the number with the key pinned before it."""

    current: str
    pinned: str | None
    verified: bool
    pending: bool


@dataclass
class ClientEvent:
    """Something that happened: ``kind`` is ``message``, ``presence``, ``read``,
    ``keys_changed`` (an unsigned change: ``user``, ``warning``, ``old_safety``,
    ``new_safety``), ``keys_rotated`` (a signed rotation: ``user``, ``verified``), ``notice``
    (``text``), ``connection`` (state changes) or ``conversation``."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    message: ChatMessage | None = None


def message_fields(message: Any) -> tuple[str, str, int, float]:
    """(conversation, sender, seq, time) of a message object from the server, with harmless
    stand-ins for whatever is missing or of the wrong type (it is then shown as rejected)."""
    if not isinstance(message, dict):
        message = {}
    conv, sender, seq, sent = (message.get(k) for k in ("conversation", "sender", "seq", "time"))
    return (
        conv if isinstance(conv, str) else "?",
        sender if isinstance(sender, str) else "?",
        seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        float(sent)
        if isinstance(sent, int | float) and not isinstance(sent, bool) and 0 <= sent <= LATEST_TIME
        else 0.0,
    )
