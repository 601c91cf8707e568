"""Values the client library hands to its users: messages as shown, events, safety numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pychat.crypto.e2e import LATEST_TIME

#: How far (seconds) a sender's signed time may differ from the server's before readers show
#: both ("their clock: ...").
CLOCK_SKEW_SHOWN = 300


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
    #: The signed kind: ``text``, ``action`` (an emote, ``* sender text``), ``reaction`` (``text``
    #: is the emoji, ``reference`` the message reacted to) or ``reply`` (``reference`` is the
    #: message replied to, with its quote).
    kind: str = "text"
    #: The message a reaction or reply is about, checked against the server's copy.
    reference: Reference | None = None
    #: :func:`~pychat.client.references.message_digest` of the ciphertext (what reactions and
    #: replies name).
    digest: str = ""
    #: The signed ``data`` of a structured kind (a ``file`` message's key and name ...).
    data: dict[str, Any] | None = None
    #: A disappearing message: when it goes (from everyone's screen, and the server).
    expires: float | None = None
    #: The sender's signed time (their clock); ``time`` is the server's, when it stored the
    #: message.  None for a rejected message.
    sender_time: float | None = None

    @property
    def clock_differs(self) -> bool:
        """Whether the sender's clock disagrees with the server's by more than
        :data:`CLOCK_SKEW_SHOWN` seconds (both times are shown then)."""
        return self.sender_time is not None and abs(self.sender_time - self.time) > CLOCK_SKEW_SHOWN

    @property
    def action(self) -> bool:
        """An emote (``/me``): shown as ``* sender text``."""
        return self.kind == "action"

    def to_json(self) -> dict[str, Any]:
        """For ``pychat read --json``."""
        out = {
            "conversation": self.conversation,
            "peer": self.peer,
            "seq": self.seq,
            "sender": self.sender,
            "time": self.time,
            "status": self.status,
            "text": self.text,
            "reason": self.reason,
            "action": self.action,
            "kind": self.kind,
        }
        if self.reference is not None:
            out["reference"] = self.reference.to_json()
        if self.expires is not None:
            out["expires"] = self.expires
        if self.sender_time is not None:
            out["sender_time"] = self.sender_time
        return out


@dataclass(frozen=True)
class Reference:
    """The message a reaction or reply names: its seq and digest, and for a reply the start of
    its text as the sender quoted it."""

    seq: int
    digest: str
    quote: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As the signed ``data`` of the message (and ``read --json``)."""
        out: dict[str, Any] = {"seq": self.seq, "hash": self.digest}
        if self.quote is not None:
            out["quote"] = self.quote
        return out


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
