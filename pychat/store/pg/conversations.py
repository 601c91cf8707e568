"""Conversations in PostgreSQL (a :class:`~pychat.store.interfaces.ConversationRepository`).

Rows are keyed by pseudonyms and hold sealed records (migrations/0002_conversations.sql).
Every conversation's members, epochs, read markers and recent client ids are held in memory
(loaded at start, written through); message bodies are read by seq range.

An append is one transaction: lock the conversation's row, look for the same (sender, client
id) already stored (a resend lands once), take the next seq from the row, insert the sealed
record, commit.  Only then is its sender answered and its readers pushed (``then``).  On one
node the appends of a conversation run one transaction after another, in the order they were
asked for (a device's counters rise with its seqs); those asked for while one is under way go
together in the next (:mod:`pychat.store.pg.appends`).  Across nodes the row lock keeps the
numbering gap-free and strictly increasing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.store.atrest import AtRestKey, RecordSealer
from pychat.store.conversation import Conversation, EpochsMoved, NewMessage, check_place, pair
from pychat.store.conversation_index import ConversationIndex
from pychat.store.errors import Resent
from pychat.store.pg.appends import ConversationAppends
from pychat.store.pg.conversation_queries import epoch_rows, page_rows
from pychat.store.pg.creation import create_conversation
from pychat.store.pg.database import Database, DatabaseUnavailable
from pychat.store.pg.events import EventLog
from pychat.store.pg.following import FollowsOtherNodes
from pychat.store.pg.groups import KeepsGroups
from pychat.store.pg.latest_writes import LatestWrites
from pychat.store.recent_ids import RECENT_CLIENT_IDS
from pychat.wire.ids import conversation_id
from pychat.wire.shapes import Duplicate, Envelope, StoredMessage

log = Logger(namespace="pychat.store")

#: Told that an append landed: ``(record, None)``, or ``(record, error)``.
Landed = Any

#: What a batch stored: each message's record (the first copy's, for a resend) and size.
Stored = list[tuple[StoredMessage, int]]

#: The size told for a message refused because another node added an epoch since it was
#: checked (:class:`~pychat.store.conversation.EpochsMoved`).
MOVED = -1


class PgConversationStore(FollowsOtherNodes, KeepsGroups):
    """The conversations of one database."""

    def __init__(self, database: Database, key: AtRestKey, events: EventLog | None = None) -> None:
        self._db = database
        self._events = events
        self._sealer = key.sealer("conversation")
        self._names = key.name_hasher("conversation")
        self._index: ConversationIndex[Conversation] = ConversationIndex()
        self._appends: dict[str, ConversationAppends] = {}
        self._reads: LatestWrites[tuple[str, str]] = LatestWrites(self._write_read)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, database: Database, key: AtRestKey, events: EventLog | None = None
    ) -> PgConversationStore:
        """Load every conversation (members, epochs, read markers, recent client ids); with
        ``events``, every change is told to the other nodes."""
        store = cls(database, key, events)
        by_key: dict[str, Conversation] = {}
        for conv_key, sealed, last_seq in database.query_now(
            "SELECT conv_key, sealed, last_seq FROM conversations"
        ):
            meta = store._open(bytes(sealed), "conversation", conv_key)
            conv = Conversation(meta["id"], tuple(sorted(meta["members"])), meta["time"])
            conv.durable_seq = conv.assigned = int(last_seq)
            conv.last_activity = meta["time"]
            by_key[conv_key] = conv
        for conv_key, epoch, sealed in database.query_now(
            "SELECT conv_key, epoch, sealed FROM conversation_epochs ORDER BY conv_key, epoch"
        ):
            by_key[conv_key].epochs.append(
                store._open(bytes(sealed), "epoch", conv_key, str(epoch))["envelope"]
            )
        for conv_key, member_key, sealed in database.query_now(
            "SELECT conv_key, member_key, sealed FROM conversation_reads"
        ):
            marker = store._open(bytes(sealed), "read", conv_key, member_key)
            by_key[conv_key].read[marker["user"]] = marker["seq"]
        store._load_recent(by_key)
        store.load_chains(by_key)
        for conv in by_key.values():
            store._index.add(conv)
        return store

    def _load_recent(self, by_key: dict[str, Conversation]) -> None:
        """Recent client ids, last activity and sizes, from the newest messages."""
        rows = self._db.query_now(
            "SELECT conv_key, seq, sealed FROM (SELECT conv_key, seq, sealed, row_number() "
            "OVER (PARTITION BY conv_key ORDER BY seq DESC) AS n FROM messages) AS newest "
            "WHERE n <= %s ORDER BY conv_key, seq",
            (RECENT_CLIENT_IDS,),
        )
        for conv_key, seq, sealed in rows:
            record = self._open(bytes(sealed), "message", conv_key, str(seq))
            conv = by_key[conv_key]
            conv.remember(record)
            conv.last_activity = max(conv.last_activity, record["time"])
        for conv_key, size in self._db.query_now(
            "SELECT conv_key, sum(octet_length(sealed)) FROM messages GROUP BY conv_key"
        ):
            by_key[conv_key].stored = int(size)

    # -- sealing -------------------------------------------------------------------------------

    def _key(self, conv: Conversation) -> str:
        return self._names(*conv.name_parts)

    def _seal(self, obj: Any, *where: str) -> bytes:
        return seal_row(self._sealer, obj, *where)

    def _open(self, sealed: bytes, *where: str) -> Any:
        """A row's record.

        :raises DatabaseUnavailable: it does not open (altered, or another store key).
        """
        aad = "/".join(("pychat-pg", *where)).encode()
        try:
            return json.loads(self._sealer.open(sealed, aad))
        except (InvalidTag, ValueError):
            kind, conv_key, *rest = where
            raise DatabaseUnavailable(
                f"a {kind} row of conversation {conv_key[:12]}… {'/'.join(rest)} does not open "
                "(altered, or sealed with another store key): pychat-admin check says more"
            ) from None

    # -- queries -------------------------------------------------------------------------------

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation with this id, or None."""
        return self._index.get(conversation_id)

    def find(self, a: str, b: str) -> Conversation | None:
        """The conversation of the pair, or None."""
        return self._index.find(a, b)

    def for_user(self, username: str) -> Sequence[Conversation]:
        """The user's conversations, most recently active first."""
        return self._index.for_user(username)

    def __iter__(self) -> Iterator[Conversation]:
        return iter(self._index)

    async def last_stored(self, conv: Conversation) -> int:
        """The newest seq committed, by this node or another (whose event may still be on
        its way here)."""
        stored: int = await self._db.run(_last_seq, self._key(conv))
        return max(conv.last_seq, stored)

    async def page(self, conv: Conversation, first_seq: int, stop_seq: int) -> list[StoredMessage]:
        """Messages with ``first_seq <= seq < stop_seq`` (an index range scan)."""
        conv_key = self._key(conv)
        rows = await self._db.run(page_rows, conv_key, first_seq, stop_seq)
        return [self._open(bytes(sealed), "message", conv_key, str(seq)) for seq, sealed in rows]

    def duplicate(self, conv: Conversation, sender: str, client_id: str) -> Duplicate | None:
        """The ``seq`` and ``time`` of the message this (sender, client id) already made, if
        it is recent."""
        found = conv.recent_ids.get(sender, client_id)
        return None if found is None else {"seq": found[0], "time": found[1]}

    # -- changes (each committed before it returns) -------------------------------------------

    async def create(self, a: str, b: str, envelope: Envelope, now: float) -> Conversation:
        """A new conversation between ``a`` and ``b`` with its first key epoch (or the one
        another node made at the same moment)."""
        members = pair(a, b)
        return await self._index.create_once(members, lambda: self._create(members, envelope, now))

    async def _create(
        self, members: tuple[str, str], envelope: Envelope, now: float
    ) -> Conversation:
        conv = Conversation(conversation_id(*members), members, now, last_activity=now)
        conv_key = self._key(conv)
        meta = self._seal(
            {"id": conv.id, "members": list(members), "time": now}, "conversation", conv_key
        )
        first = self._seal({"envelope": envelope, "time": now}, "epoch", conv_key, "1")
        created = await self._db.run(create_conversation, conv_key, meta, first, self._told(conv))
        if not created:  # another node made it first: as it is now
            made = await self.refresh(conv_key, conv.id)
            assert made is not None  # noqa: S101 - it was there a moment ago (no delete races)
            return made
        conv.epochs.append(envelope)
        self._index.add(conv)
        return conv

    async def _epochs(self, conv_key: str) -> list[Envelope]:
        rows = await self._db.run(epoch_rows, conv_key)
        return [self._open(bytes(s), "epoch", conv_key, str(n))["envelope"] for n, s in rows]

    async def add_epoch(self, conv: Conversation, envelope: Envelope, now: float) -> None:
        """Append the next key epoch, placed after the last message, both checked in the
        transaction that stores it (another node may have added one or a message).

        :raises EpochRefused: not the next number, or placed elsewhere.
        """
        conv_key = self._key(conv)
        number = envelope.get("epoch")
        sealed = self._seal({"envelope": envelope, "time": now}, "epoch", conv_key, str(number))
        await self._db.run(_add_epoch, conv_key, envelope, sealed, self._told(conv))
        conv.epochs[:] = await self._epochs(conv_key)

    async def set_read(self, conv: Conversation, username: str, seq: int) -> None:
        """Move ``username``'s read marker forward to ``seq``; returns once it is stored."""
        if seq <= conv.read.get(username, 0):
            return
        conv.read[username] = seq
        await self._reads.write((conv.id, username))

    def set_read_nowait(self, conv: Conversation, username: str, seq: int) -> None:
        """Move a read marker forward without waiting for its commit (a failure is logged).
        However often it moves while its row is written, one more write follows."""
        if seq <= conv.read.get(username, 0):
            return
        conv.read[username] = seq
        d = self._reads.write((conv.id, username))
        d.addErrback(lambda f: log.warn("a read marker was not saved: {e}", e=f.value))

    def _write_read(self, key: tuple[str, str]) -> defer.Deferred[None]:
        """Store a read marker as it is now (nothing, if its conversation is gone)."""
        conversation_id, username = key
        conv = self._index.get(conversation_id)
        if conv is None or username not in conv.read:
            return defer.succeed(None)
        conv_key = self._key(conv)
        member_key = self._names(conv.id, username)
        seq = conv.read[username]
        sealed = self._seal({"user": username, "seq": seq}, "read", conv_key, member_key)
        told = None
        if self._events is not None:
            told = {"k": "read", "id": conv.id, "user": username, "seq": seq}
        return self._db.run(_write_read, conv_key, member_key, seq, sealed, self._events, told)

    async def delete(self, conv: Conversation) -> None:
        """Remove a conversation and its messages for good (an account is being deleted)."""
        await self.wait_durable(conv)
        await self._db.run(_delete, self._key(conv), self._told(conv))
        self._index.remove(conv)
        self._appends.pop(conv.id, None)

    def pace_read_markers(self, clock: IReactorTime, interval: float) -> None:
        """Nothing to pace: a read marker's row has one write under way at most, and however
        often it moves meanwhile, one more write follows (:mod:`.latest_writes`)."""

    def pace_telling(self, clock: IReactorTime, per_turn: int) -> None:
        """Nothing to pace: each append is told when its own transaction commits."""

    def wait_durable(self, conv: Conversation) -> defer.Deferred[None]:
        """Fires once every message appended to ``conv`` so far has committed (or failed)."""
        appends = self._appends.get(conv.id)
        return appends.settled() if appends is not None else defer.succeed(None)

    def append_message(self, conv: Conversation, message: NewMessage, then: Landed) -> None:
        """Store a message after the conversation's appends before it, in the same
        transaction as those that wait with it; ``then(record, None)`` after the COMMIT,
        ``then(stand_in, error)`` if it failed."""
        client_key = self._names(conv.id, message.sender, message.client_id)
        appends = self._appends.get(conv.id)
        if appends is None:
            conv_key, sealer, db = self._key(conv), self._sealer, self._db
            names, told = self._names, self._told(conv)

            def run(batch: list[tuple[str, NewMessage]]) -> defer.Deferred[Stored]:
                members = {m.sender: names(conv.id, m.sender) for _, m in batch}
                return db.run(_append_all, conv_key, batch, sealer, members, told)

            appends = self._appends[conv.id] = ConversationAppends(run)
        appends.append(client_key, message, _Landed(conv, message, then, self._refresher(conv)))

    def _refresher(self, conv: Conversation) -> Callable[[], None]:
        """Reads ``conv`` again (its epochs moved on another node), logging a failure."""
        conv_key = self._key(conv)

        def refresh() -> None:
            d = defer.ensureDeferred(self.refresh(conv_key, conv.id))
            d.addErrback(lambda f: log.warn("a conversation was not read again: {e}", e=f.value))

        return refresh

    def _told(self, conv: Conversation) -> Told:
        """Writes the event that tells the other nodes ``conv`` changed (with what a batch
        of messages added, when there is one)."""
        events = self._events
        if events is None:
            return None
        body = {"k": "conversation", "id": conv.id, "key": self._key(conv)}

        def told(cursor: Any, first: int = 0, last: int = 0) -> None:
            if last:
                events.write(cursor, {**body, "k": "messages", "first": first, "last": last})
            else:
                events.write(cursor, body)

        return told

    async def close(self) -> None:
        """Wait for the appends and read markers under way."""
        for conv in list(self._index):
            await self.wait_durable(conv)
        await self._reads.settled()


class _Landed:
    """How an append ended: committed (the conversation's place moves, its readers may
    hear) or failed (its sender is told, with a stand-in record)."""

    def __init__(
        self, conv: Conversation, message: NewMessage, then: Landed, refresh: Callable[[], None]
    ) -> None:
        self.conv, self.message, self.then, self.refresh = conv, message, then, refresh

    def __call__(self, result: tuple[StoredMessage, int] | Failure) -> None:
        if isinstance(result, Failure):
            self._failed(result)
            return
        record, size = result
        conv = self.conv
        if size == MOVED:  # another node added an epoch since the message was checked
            self._failed(Failure(EpochsMoved()))
            self.refresh()
            return
        if size == 0:  # a first copy, stored before or earlier in the same batch
            conv.remember(dict(record))
            self.then(record, Resent(record))
            return
        conv.durable_seq = max(conv.durable_seq, record["seq"])
        conv.assigned = max(conv.assigned, record["seq"])
        conv.stored += size
        conv.remember(dict(record))
        conv.last_activity = max(conv.last_activity, record["time"])
        sender = record["sender"]  # its marker was stored with it (_append_all)
        conv.read[sender] = max(conv.read.get(sender, 0), record["seq"])
        self.then(record, None)

    def _failed(self, failure: Failure) -> None:
        message = self.message
        stand_in: StoredMessage = {
            "seq": 0,
            "sender": message.sender,
            "epoch": message.epoch,
            "ciphertext": message.ciphertext,
            "client_id": message.client_id,
            "time": message.time,
        }
        self.then(stand_in, failure.value)


def seal_row(sealer: RecordSealer, obj: Any, *where: str) -> bytes:
    """``obj`` as sealed JSON, bound to the row it is for (``where``)."""
    aad = "/".join(("pychat-pg", *where)).encode()
    return sealer.seal(json.dumps(obj, separators=(",", ":")).encode(), aad)


# -- transactions (each on a pool thread, committed when it returns) ------------------------


#: Adds the event of a change to the transaction that makes it: ``told(cursor)``, or
#: ``told(cursor, first, last)`` for a batch of messages (None: no other nodes told).
Told = Callable[..., None] | None


def _add_epoch(cursor: Any, conv_key: str, envelope: Envelope, sealed: bytes, told: Told) -> None:
    cursor.execute("SELECT last_seq FROM conversations WHERE conv_key = %s FOR UPDATE", (conv_key,))
    (last_seq,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM conversation_epochs WHERE conv_key = %s", (conv_key,))
    (count,) = cursor.fetchone()
    check_place(envelope, int(count), int(last_seq))
    cursor.execute(
        "INSERT INTO conversation_epochs (conv_key, epoch, sealed) VALUES (%s, %s, %s)",
        (conv_key, envelope["epoch"], sealed),
    )
    if told is not None:
        told(cursor)


def _set_read(cursor: Any, conv_key: str, member_key: str, seq: int, sealed: bytes) -> None:
    """Store a read marker unless the row already holds a later one (writes of one marker
    may commit out of order: an append moves its sender's, and nodes write theirs)."""
    cursor.execute(
        "INSERT INTO conversation_reads (conv_key, member_key, seq, sealed) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (conv_key, member_key) DO UPDATE "
        "SET seq = EXCLUDED.seq, sealed = EXCLUDED.sealed "
        "WHERE conversation_reads.seq < EXCLUDED.seq",
        (conv_key, member_key, seq, sealed),
    )


def _write_read(
    cursor: Any,
    conv_key: str,
    member_key: str,
    seq: int,
    sealed: bytes,
    events: EventLog | None,
    told: dict[str, Any] | None,
) -> None:
    """A read marker written on its own, told to the other nodes."""
    _set_read(cursor, conv_key, member_key, seq, sealed)
    if events is not None and told is not None:
        events.write(cursor, told)


def _delete(cursor: Any, conv_key: str, told: Told) -> None:
    cursor.execute("DELETE FROM conversations WHERE conv_key = %s", (conv_key,))
    if told is not None:
        told(cursor)


def _last_seq(cursor: Any, conv_key: str) -> int:
    cursor.execute("SELECT last_seq FROM conversations WHERE conv_key = %s", (conv_key,))
    row = cursor.fetchone()
    return 0 if row is None else int(row[0])


def _locked(
    cursor: Any, conv_key: str, batch: list[tuple[str, NewMessage]], sealer: RecordSealer
) -> tuple[int, int, dict[str, StoredMessage]]:
    """Lock the conversation's row; its last seq, its number of epochs, and the first copies
    of the batch's messages already stored (by client key)."""
    cursor.execute(
        "SELECT last_seq, (SELECT count(*) FROM conversation_epochs e "
        "WHERE e.conv_key = c.conv_key) FROM conversations c WHERE conv_key = %s FOR UPDATE",
        (conv_key,),
    )
    last_seq, epochs = cursor.fetchone()
    cursor.execute(
        "SELECT client_key, seq, sealed FROM messages WHERE conv_key = %s AND client_key = ANY(%s)",
        (conv_key, [client_key for client_key, _ in batch]),
    )
    first_copies: dict[str, StoredMessage] = {}
    for client_key, seq, sealed in cursor.fetchall():
        aad = "/".join(("pychat-pg", "message", conv_key, str(seq))).encode()
        first_copies[client_key] = json.loads(sealer.open(bytes(sealed), aad))
    return int(last_seq), int(epochs), first_copies


def _append_all(
    cursor: Any,
    conv_key: str,
    batch: list[tuple[str, NewMessage]],
    sealer: RecordSealer,
    members: dict[str, str],
    told: Told = None,
) -> Stored:
    """Every message of a batch, in order, in the one transaction: each one's stored record
    (the first copy's, for a resend: stored before, or earlier in this batch) and the bytes
    it added.  Each sender has read what they sent: their read marker (``members``: sender
    -> member key) moves to their last new message in the same transaction.  Four
    statements and one per sender, however many messages."""
    last_seq, epochs, first_copies = _locked(cursor, conv_key, batch, sealer)
    stored: Stored = []
    rows: list[tuple[str, int, str, bytes]] = []
    seq = int(last_seq)
    for client_key, message in batch:
        if client_key in first_copies:
            stored.append((first_copies[client_key], 0))
            continue
        if message.epochs_known is not None and message.epochs_known < epochs:
            unused: Any = {}
            stored.append((unused, MOVED))  # checked against fewer epochs than there are
            continue
        seq += 1
        record: Any = {
            "seq": seq,
            "sender": message.sender,
            "epoch": message.epoch,
            "ciphertext": message.ciphertext,
            "client_id": message.client_id,
            "time": message.time,
            **(message.extra or {}),
        }
        sealed = seal_row(sealer, record, "message", conv_key, str(seq))
        rows.append((conv_key, seq, client_key, sealed))
        first_copies[client_key] = record
        stored.append((record, len(sealed)))
    if rows:
        cursor.execute(
            "UPDATE conversations SET last_seq = %s WHERE conv_key = %s", (seq, conv_key)
        )
        cursor.executemany(
            "INSERT INTO messages (conv_key, seq, client_key, sealed) VALUES (%s, %s, %s, %s)", rows
        )
        last_sent = {record["sender"]: record["seq"] for record, size in stored if size > 0}
        for sender, seq in last_sent.items():
            marker = seal_row(
                sealer, {"user": sender, "seq": seq}, "read", conv_key, members[sender]
            )
            _set_read(cursor, conv_key, members[sender], seq, marker)
        if told is not None:
            told(cursor, rows[0][1], rows[-1][1])
    return stored
