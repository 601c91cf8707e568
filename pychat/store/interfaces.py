"""What the protocol code needs of storage; a different backend implements these."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from pychat.crypto.group_chain import GroupState
from pychat.store.accounts import Account
from pychat.store.conversation import Conversation, NewMessage
from pychat.store.files import StoredFile
from pychat.wire.shapes import Duplicate, Envelope, StoredMessage


class AccountRepository(Protocol):
    """Accounts by normal-form username."""

    def get(self, username: str) -> Account | None:
        """The account, or None."""

    def __iter__(self) -> Iterator[Account]:
        """Every account."""

    def __len__(self) -> int:
        """How many accounts there are."""

    async def create(self, account: Account) -> None:
        """Store a new account durably; raise UsernameTaken if it exists."""

    async def update(self, username: str, **changes: Any) -> Account:
        """Change fields of an existing account durably, after any change to it already
        under way; return it as changed.  Raise KeyError if there is none."""

    async def delete(self, username: str) -> None:
        """Remove an account durably; raise KeyError if there is none."""


class ConversationRepository(Protocol):
    """Conversations of pairs of users and of groups (with their membership chains), their
    key epochs, read markers and message logs.

    Every change is durable when its awaitable finishes, except :meth:`append_message`, which
    returns the record at once and calls back when it is durable (nobody may hear of the
    message before), and :meth:`set_read_nowait`, which rides a later write.
    """

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation with this id, or None."""

    def find(self, a: str, b: str) -> Conversation | None:
        """The conversation of the pair, or None."""

    def for_user(self, username: str) -> Sequence[Conversation]:
        """The user's conversations, most recently active first."""

    def __iter__(self) -> Iterator[Conversation]:
        """Every conversation."""

    async def last_stored(self, conv: Conversation) -> int:
        """The seq of the newest message stored for good, wherever it was stored (another node
        may have stored some its events have not told of yet): where a page of history
        ends."""

    async def page(self, conv: Conversation, first_seq: int, stop_seq: int) -> list[StoredMessage]:
        """Messages with ``first_seq <= seq < stop_seq``."""

    async def create(self, a: str, b: str, envelope: Envelope, now: float) -> Conversation:
        """A new conversation with its first key epoch."""

    async def add_epoch(self, conv: Conversation, envelope: Envelope, now: float) -> None:
        """Append the next key epoch, placed after the last message (``check_place``);
        raise EpochRefused otherwise."""

    async def create_group(
        self, statement: dict[str, Any], state: GroupState, envelope: Envelope, now: float
    ) -> Conversation:
        """A new group from its create statement (checked: ``state`` is what it makes) with
        its first key epoch; raise ValueError if the group exists."""

    async def change_group(
        self,
        conv: Conversation,
        statement: dict[str, Any],
        state: GroupState,
        envelope: Envelope | None,
        now: float,
    ) -> None:
        """Append the next statement of a group's chain (checked: ``state`` is what it
        leaves) and the key epoch it begins, if any, together (``ChainChange``); raise
        ChainMoved when it is not the next statement any more, EpochRefused when the envelope
        is not the next epoch placed after the last message."""

    async def set_read(self, conv: Conversation, username: str, seq: int) -> None:
        """Move a read marker forward."""

    def set_read_nowait(self, conv: Conversation, username: str, seq: int) -> None:
        """Move a read marker forward; it is saved with a later write (never raises)."""

    def duplicate(self, conv: Conversation, sender: str, client_id: str) -> Duplicate | None:
        """The ``seq`` and ``time`` of the message this (sender, client id) already made, if
        it is recent."""

    def append_message(
        self,
        conv: Conversation,
        message: NewMessage,
        then: Callable[[StoredMessage, BaseException | None], None],
    ) -> None:
        """Write a message; ``then(record, None)`` with its record (``seq``, ``time``) once
        it is durable, or ``then(record, error)`` if it never will be (the busiest path: no
        Deferred).  Appends to one conversation get their seqs in the order they are asked
        for.  A resend that :meth:`duplicate` could not see yet (its first copy still on its
        way, perhaps through another node) may be told ``then(first_copy, Resent(first_copy))``
        once the first copy is durable: nothing new was stored."""

    def pace_read_markers(self, clock: IReactorTime, interval: float) -> None:
        """Save markers moved by :meth:`set_read_nowait` at most every ``interval`` seconds."""

    def pace_telling(self, clock: IReactorTime, per_turn: int) -> None:
        """Tell at most ``per_turn`` waiters of durable messages a reactor turn."""

    def wait_durable(self, conv: Conversation) -> Deferred[None]:
        """Fires once every message appended to ``conv`` so far is durable."""

    async def delete(self, conv: Conversation) -> None:
        """Remove a conversation and its files for good."""

    async def close(self) -> None:
        """Flush what is pending and close (at a clean stop)."""


class FileRepository(Protocol):
    """Encrypted files users send each other (opaque chunks; docs/protocol.md, files)."""

    def record(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None."""

    async def lookup(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None, looked up wherever it may be (another node may
        have made it a moment ago)."""

    def records(self) -> list[StoredFile]:
        """Every file."""

    def bytes_of(self, owner: str) -> int:
        """What ``owner``'s files take (their declared sizes)."""

    def of_user(self, owner: str) -> list[StoredFile]:
        """``owner``'s files."""

    async def start(
        self, owner: str, conversation: str, size: int, chunks: int, now: float, max_age: float
    ) -> StoredFile:
        """A new, empty upload (durable when this returns)."""

    async def put(self, record: StoredFile, index: int, chunk: bytes) -> None:
        """Append chunk ``index`` (the next one) durably."""

    async def get(self, record: StoredFile, index: int) -> bytes:
        """Chunk ``index`` of a complete file."""

    async def delete(self, record: StoredFile) -> None:
        """Remove a file, data and record."""

    async def sweep(self, now: float) -> int:
        """Delete every expired file; return how many went."""


class InviteRepository(Protocol):
    """Single-use, expiring signup codes (``--signup invite``): only a code's SHA-256 is kept,
    and one code makes one account, however many nodes are asked at once."""

    async def reserve(self, code: str, now: float) -> str | None:
        """Hold ``code`` for one signup; a handle, or None when it is unknown, used, expired
        or held by a signup in progress."""

    async def release(self, handle: str) -> None:
        """The signup failed: the invite is usable again."""

    async def consume(self, handle: str) -> None:
        """The signup succeeded: the invite is gone for good."""

    async def create(self, now: float, hours: float) -> tuple[str, float]:
        """A new code valid for ``hours``, stored before it is returned with its expiry."""


class BlobRepository(Protocol):
    """The ciphertexts of disappearing messages, kept apart from the log and deleted when
    they expire."""

    async def put(self, conversation: str, ciphertext: str, expires: float) -> str:
        """Keep a ciphertext until ``expires``; return its name (the record holds it)."""

    async def get(self, conversation: str, name: str) -> str | None:
        """A kept ciphertext, or None once it is gone."""

    async def sweep(self, now: float) -> int:
        """Delete what has expired; return how many went."""
