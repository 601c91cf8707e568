"""A conversation as the server holds it in memory (a pair's, or a group's with its membership
chain): members, epochs, read markers, and how far its log is durable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pychat.crypto.group_chain import MEMBERSHIP_OPS, GroupState, replay_checked
from pychat.store.recent_ids import RecentIds
from pychat.wire.shapes import Envelope


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: who sent it, in which epoch, its ciphertext (empty for a
    disappearing one, whose ``extra`` names its blob), its client id and when it arrived."""

    sender: str
    epoch: int
    ciphertext: str
    client_id: str
    time: float
    #: Fields of a disappearing message's record: ``blob`` and ``expires``.
    extra: dict[str, Any] | None = None
    #: How many epochs the conversation had when the message was checked against them: a
    #: store shared by several nodes refuses it when another node has added one since.
    epochs_known: int | None = None


class EpochsMoved(Exception):
    """Another node added a key epoch after a message was checked against the epochs: it is
    refused, and its sender fetches the epochs and sends again (``bad_epoch``)."""


class EpochRefused(Exception):
    """A key envelope that is not the next epoch, or (version 2) not placed after the
    conversation's last message; ``after`` is the place to use."""

    def __init__(self, message: str, after: int) -> None:
        super().__init__(message)
        self.after = after


def check_place(envelope: Envelope, epochs: int, position: int) -> None:
    """Refuse an envelope that is not epoch ``epochs + 1``, or whose ``after`` (version 2) is
    not ``position``: the seq of the last message stored so far, where the epoch then begins
    (docs/e2e.md §2; readers tell what was sent before it from what was sent after).  Every
    backend runs this where it knows the last seq for sure (the database: in the transaction).

    :raises EpochRefused: saying which, with the place to use.
    """
    expected = epochs + 1
    if envelope.get("epoch") != expected:
        raise EpochRefused(f"the next epoch is {expected}, not {envelope.get('epoch')}", position)
    if "after" in envelope and envelope["after"] != position:
        raise EpochRefused(
            f"the conversation's last message is #{position}: an envelope made now begins "
            f"after it, not after #{envelope['after']}",
            position,
        )


def pair(a: str, b: str) -> tuple[str, str]:
    """The two members in the order the store keeps them."""
    return (a, b) if a <= b else (b, a)


def group_name_parts(group_id: str) -> tuple[str, str]:
    """What a group's keyed names are made of (``#group`` is no username)."""
    return ("#group", group_id)


@dataclass
class GroupChain:
    """What the server holds of a group beyond what a pair's conversation has: its membership
    chain as stored (checked when it came, docs/e2e.md §7) and the state it leaves."""

    statements: list[dict[str, Any]]
    state: GroupState
    #: The number of the last statement that changed who is a member.
    changed_at: int = 1

    def extended(self, statement: dict[str, Any], state: GroupState) -> GroupChain:
        """The chain with one more (checked) statement."""
        changed = state.n if statement["op"] in MEMBERSHIP_OPS else self.changed_at
        return GroupChain([*self.statements, statement], state, changed)


@dataclass
class Conversation:
    """One pair's or one group's conversation as the server holds it in memory, whatever the
    backend: a backend keeps ``assigned`` (its place) and ``stored`` (its size) up to date, or, like
    the flat files (:class:`~pychat.store.conversation_files.LoggedConversation`), says them
    from its logs."""

    id: str
    #: The members, sorted (a pair's two; a group's as its chain leaves it).
    members: tuple[str, ...]
    created: float
    epochs: list[dict[str, Any]] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    last_activity: float = 0.0
    #: Messages known to be durable; only these are shown to anyone.
    durable_seq: int = 0
    recent_ids: RecentIds = field(default_factory=RecentIds)
    #: Why the conversation is read-only (a damaged record), or None.
    damaged: str | None = None
    #: The seq of the newest message stored or being stored, and the bytes the store holds
    #: for the conversation (backends that do not derive them keep them here).
    assigned: int = 0
    stored: int = 0
    #: A group's chain; None for a pair.
    group: GroupChain | None = None

    @property
    def is_group(self) -> bool:
        """Whether this is a group's conversation."""
        return self.group is not None

    @property
    def awaits_epoch(self) -> bool:
        """A group whose membership changed after its newest epoch was made: nobody may send
        until an admin's client adds an epoch for the members as they are now."""
        if self.group is None or not self.epochs:
            return False
        return int(self.epochs[-1].get("chain", 0)) < self.group.changed_at

    @property
    def name_parts(self) -> tuple[str, ...]:
        """What the store's keyed names (file names, row keys) of this conversation are made
        of: a pair's two members, or a group's id (``#group`` is no username)."""
        return self.members if self.group is None else group_name_parts(self.id)

    def others(self, username: str) -> tuple[str, ...]:
        """Every member but ``username``."""
        return tuple(m for m in self.members if m != username)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest durable message (0 when there is none)."""
        return self.durable_seq

    @property
    def position(self) -> int:
        """The sequence number of the newest message stored or being stored: where an epoch
        added now begins (its envelope's ``after``)."""
        return self.assigned

    @property
    def stored_bytes(self) -> int:
        """What the conversation takes in the store, sealed (for ``whatdoyouknow``)."""
        return self.stored

    def newer_epoch_by(self, sender: str, epoch: int) -> int | None:
        """The newest epoch above ``epoch`` that ``sender`` began with a placed (version-2)
        envelope, or None: readers refuse ``sender``'s messages in older epochs after it."""
        for number in range(len(self.epochs), epoch, -1):
            envelope = self.epochs[number - 1]
            if envelope.get("creator") == sender and "after" in envelope:
                return number
        return None

    def peer_of(self, username: str) -> str:
        """The other member of a pair."""
        a, b = self.members
        return b if username == a else a

    def unread(self, username: str) -> int:
        """Messages after ``username``'s read marker."""
        return max(0, self.last_seq - self.read.get(username, 0))

    def remember(self, record: dict[str, Any]) -> None:
        """Keep a message's (sender, client id) for duplicate detection."""
        self.recent_ids.remember(
            record["sender"], record["client_id"], record["seq"], record["time"]
        )


class ChainMoved(Exception):
    """A group statement that does not follow the chain as stored (another came first)."""


@dataclass(frozen=True)
class ChainChange:
    """A group's chain extended in memory before the change is stored, and how to undo it
    if it never is.  Every backend checks here, where nothing can come between the check and
    the change."""

    chain: GroupChain
    epochs: int
    members: tuple[str, ...]
    members_after: tuple[str, ...]

    @classmethod
    def begin(
        cls,
        conv: Conversation,
        statement: dict[str, Any],
        state: GroupState,
        envelope: Envelope | None,
        position: int,
    ) -> ChainChange:
        """Check ``statement`` follows the chain and ``envelope`` is the next epoch placed at
        ``position``, then extend ``conv`` (its caller regroups the members).

        :raises ChainMoved: the statement is not the next one.
        :raises EpochRefused: the envelope is not the next epoch, or placed elsewhere.
        """
        chain = conv.group
        if chain is None or statement.get("n") != chain.state.n + 1:
            raise ChainMoved("the group's chain has moved on: fetch it and try again")
        if envelope is not None:
            check_place(envelope, len(conv.epochs), position)
            conv.epochs.append(envelope)
        conv.group = chain.extended(statement, state)
        after = tuple(sorted(state.members))
        return cls(chain, len(conv.epochs) - (envelope is not None), conv.members, after)

    def undo(self, conv: Conversation) -> None:
        """The change was not stored: ``conv`` as it was."""
        conv.group = self.chain
        del conv.epochs[self.epochs :]


def apply_chain(conv: Conversation, statements: list[dict[str, Any]]) -> None:
    """Extend a group's chain with statements the server checked when they came (its members
    follow; a pair read as a group's first record becomes the group)."""
    chain = conv.group
    for statement in statements:
        if chain is None:
            chain = GroupChain([statement], replay_checked([statement]))
        else:
            chain = chain.extended(statement, replay_checked([statement], chain.state))
    conv.group = chain
    if chain is not None:
        conv.members = tuple(sorted(chain.state.members))
