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


class _MessageFields(TypedDict):
    """What every shape of a message holds."""

    seq: int
    sender: str
    epoch: int
    #: Empty in a disappearing message's record, whose ciphertext is in its blob.
    ciphertext: str
    client_id: str
    #: The server's clock when it stored the message.
    time: float
    #: A disappearing message's expiry.
    expires: NotRequired[int]


class StoredMessage(_MessageFields):
    """A message's record as the store keeps it (sealed at rest)."""

    #: A disappearing message's blob name.
    blob: NotRequired[str]


class Message(_MessageFields):
    """A message as clients see it (``history`` entries, ``message`` pushes)."""

    conversation: str


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


class GroupSummary(TypedDict):
    """A group as one member sees it in lists and pushes (its name is in its chain)."""

    conversation: str
    group: bool
    members: list[str]
    admins: list[str]
    #: The number of the chain's last statement.
    chain: int
    #: Its membership changed after its newest epoch: nobody sends until an epoch comes.
    awaits_epoch: bool
    #: Members online who share it.
    online: list[str]
    last_seq: int
    read: int
    unread: int
    last_activity: float
    epochs: int
    damaged: bool


class OpenReply(Summary):
    """``open_conversation``: the summary, whether it was made now, and every envelope."""

    created: bool
    envelopes: list[Envelope]


class EpochsReply(TypedDict):
    """``epochs``: every envelope, and where an epoch added now begins (and a group's chain)."""

    conversation: str
    envelopes: list[Envelope]
    after: int
    statements: NotRequired[list[dict[str, Any]]]


class AddEpochReply(TypedDict):
    """``add_epoch``: the number the new epoch got."""

    conversation: str
    epoch: int


class ConversationsReply(TypedDict):
    """``conversations``: the caller's, most recent first."""

    conversations: list[Summary | GroupSummary]


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


class Nothing(TypedDict):
    """A reply with no fields beyond ``id`` and ``ok``."""


class SignupReply(TypedDict):
    """``signup``: the account's name in its normal form."""

    username: str


class LoginChallengeReply(TypedDict):
    """``login_start`` and ``change_password_start``: the SRP challenge and its parameters
    (the group's fields follow docs/protocol.md)."""

    username: str
    salt: str
    kdf: dict[str, Any]
    B: str
    group: str
    hash: str


class LoginReply(TypedDict):
    """``login_finish``: the server's proof, the name and a device token."""

    M2: str
    username: str
    device_token: str


class ProofReply(TypedDict):
    """``change_password``: the server's proof."""

    M2: str


class KeyBackupReply(TypedDict):
    """``get_key_backup``: the opaque backup (None when there is none)."""

    key_backup: str | None


class KeysReply(TypedDict):
    """``get_keys`` and ``rotate_keys``: a user's directory entry."""

    username: str
    public_keys: dict[str, str]
    fingerprint: str | None
    key_version: int


class KeyHistoryReply(TypedDict):
    """``key_history``: every identity a user has had, oldest first."""

    username: str
    history: list[dict[str, Any]]


class PresenceReply(TypedDict):
    """``set_presence``: the setting now."""

    share: bool


class FileReply(TypedDict):
    """``file_chunk`` and ``file_status``: what a member may know of a file."""

    file: str
    conversation: str
    size: int
    chunks: int
    received: int
    complete: bool
    expires: float


class FileStartReply(FileReply):
    """``file_start``: the file, and the size of each chunk."""

    chunk_bytes: int


class FileChunkData(TypedDict):
    """``file_get``: one chunk of a complete file."""

    file: str
    index: int
    data: str


class PingReply(TypedDict):
    """``ping``: the server's clock."""

    time: float


class SignalPush(TypedDict):
    """The ``signal`` push: an ephemeral event from the other member."""

    conversation: str
    sender: str
    ciphertext: str


class PresencePush(TypedDict):
    """The ``presence`` push: a peer came online or went offline."""

    user: str
    online: bool
