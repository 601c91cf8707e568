"""The shapes of what the server keeps and says about messages and conversations, as typed
dictionaries: JSON objects are the point (they are written as they are), and these name their
fields for the code on either side of the store.  docs/protocol.md §4 and §5 are the contract;
these follow it.

Key envelopes stay plain objects (:data:`Envelope`): their content is the clients' business.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

#: A key envelope as a client made it (docs/e2e.md §2); the server reads only ``epoch``,
#: ``creator`` and ``after``.
Envelope = dict[str, Any]


class StoredMessage(TypedDict):
    """A message's record as the store keeps it (sealed at rest)."""

    seq: int
    sender: str
    epoch: int
    #: Empty for a disappearing message, whose ciphertext is in its blob.
    ciphertext: str
    client_id: str
    #: The server's clock when it stored the message.
    time: float
    #: A disappearing message's blob name and expiry.
    blob: NotRequired[str]
    expires: NotRequired[int]


class Message(TypedDict):
    """A message as clients see it (``history`` entries, ``message`` pushes)."""

    conversation: str
    seq: int
    sender: str
    epoch: int
    ciphertext: str
    client_id: str
    time: float
    expires: NotRequired[int]


class Summary(TypedDict):
    """A conversation as one member sees it in lists and pushes."""

    conversation: str
    peer: str
    last_seq: int
    read: int
    unread: int
    last_activity: float
    epochs: int
    peer_online: bool | None
    damaged: bool


class OpenReply(Summary):
    """``open_conversation``: the summary, whether it was made now, and every envelope."""

    created: bool
    envelopes: list[Envelope]


class EpochsReply(TypedDict):
    """``epochs``: every envelope, and where an epoch added now begins."""

    conversation: str
    envelopes: list[Envelope]
    after: int


class AddEpochReply(TypedDict):
    """``add_epoch``: the number the new epoch got."""

    conversation: str
    epoch: int


class ConversationsReply(TypedDict):
    """``conversations``: the caller's, most recent first."""

    conversations: list[Summary]


class SendReply(TypedDict):
    """``send``: the message's number and time (the first copy's, for a retry)."""

    conversation: str
    seq: int
    time: float
    duplicate: bool


class HistoryReply(TypedDict):
    """``history``: a page of messages."""

    conversation: str
    messages: list[Message]
    last_seq: int
    has_more: bool


class ReadReply(TypedDict):
    """``mark_read`` and the ``read`` push: where the caller's marker is."""

    conversation: str
    read: int
    unread: int


class ConversationPush(TypedDict):
    """The ``conversation`` push: one that includes you was created."""

    conversation: Summary
    envelope: Envelope


class EpochPush(TypedDict):
    """The ``epoch`` push: a new key epoch."""

    conversation: str
    epoch: int
    envelope: Envelope


class KeysChangedPush(TypedDict):
    """The ``keys_changed`` push: a user published new keys."""

    user: str
    key_version: int
    fingerprint: str


class Duplicate(TypedDict):
    """The first copy of a message sent again with the same client id."""

    seq: int
    time: float
