"""How a conversation store on PostgreSQL follows what other nodes change: a conversation
made, changed or deleted there is read again, messages stored there are taken in (and handed
back for pushing), a read marker moved there moves here (:mod:`pychat.server.cluster`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pychat.store.conversation import Conversation
from pychat.store.conversation_index import ConversationIndex
from pychat.store.pg.conversation_queries import (
    all_conversations,
    load_one,
    page_rows,
    range_rows,
)
from pychat.store.pg.database import Database
from pychat.store.recent_ids import RECENT_CLIENT_IDS
from pychat.wire.shapes import StoredMessage


class FollowsOtherNodes:
    """The part of :class:`~pychat.store.pg.conversations.PgConversationStore` that takes in
    other nodes' changes."""

    # What the store it is part of holds: its database, index and append queues, how it
    # opens a sealed row (``_open(sealed, *where)``) and names a conversation's rows (``_key``).
    _db: Database
    _index: ConversationIndex[Conversation]
    _appends: dict[str, Any]
    _open: Callable[..., Any]
    _key: Callable[[Conversation], str]
    chain_of: Callable[..., None]

    async def keys(self) -> dict[str, str]:
        """Conversation id -> key of every conversation the database holds now, and of this
        node's (to read each again)."""
        found = {}
        for conv_key, sealed in await self._db.run(all_conversations):
            found[self._open(sealed, "conversation", conv_key)["id"]] = conv_key
        for conv in self._index:
            found.setdefault(conv.id, self._key(conv))
        return found

    async def refresh(self, conv_key: str, conversation_id: str) -> Conversation | None:
        """Read a conversation again (another node made or changed it): its epochs, read
        markers, place and recent client ids; None, and forgotten, once it is gone."""
        loaded = await self._db.run(load_one, conv_key, RECENT_CLIENT_IDS)
        conv = self._index.get(conversation_id)
        if loaded is None:
            if conv is not None:
                self._index.remove(conv)
                self._appends.pop(conv.id, None)
            return None
        sealed, last_seq, epochs, reads, newest, size, statements = loaded
        if conv is None:
            meta = self._open(sealed, "conversation", conv_key)
            conv = Conversation(meta["id"], tuple(sorted(meta["members"])), meta["time"])
            conv.last_activity = meta["time"]
            self.chain_of(conv, conv_key, statements)
            self._index.add(conv)
        else:
            self.chain_of(conv, conv_key, statements, regroup=True)
        conv.epochs[:] = [self._open(s, "epoch", conv_key, str(n))["envelope"] for n, s in epochs]
        for member_key, s in reads:
            marker = self._open(s, "read", conv_key, member_key)
            conv.read[marker["user"]] = max(conv.read.get(marker["user"], 0), marker["seq"])
        conv.durable_seq = max(conv.durable_seq, last_seq)
        conv.assigned = max(conv.assigned, last_seq)
        conv.stored = size
        for seq, s in newest:
            record = self._open(s, "message", conv_key, str(seq))
            conv.remember(record)
            conv.last_activity = max(conv.last_activity, record["time"])
        return conv

    async def fetch_ranges(
        self, ranges: list[tuple[str, int, int]]
    ) -> dict[str, list[tuple[int, bytes]]]:
        """The sealed messages of several ``(conversation key, first, last)`` ranges, in one
        query: what another node's batches of events name."""
        return await self._db.run(range_rows, ranges)

    async def landed_elsewhere(
        self,
        conv_key: str,
        conversation_id: str,
        first: int,
        last: int,
        fetched: list[tuple[int, bytes]] | None = None,
    ) -> tuple[Conversation, list[StoredMessage]] | None:
        """Messages ``first..last`` that another node stored (``fetched`` already, or read
        now): the conversation takes them in (its place, size, recent ids, the sender's read
        marker) and they are returned for pushing; None when the conversation is unknown
        here."""
        conv = self._index.get(conversation_id)
        if conv is None:
            conv = await self.refresh(conv_key, conversation_id)
            if conv is None:
                return None
        if fetched is None:
            fetched = await self._db.run(page_rows, conv_key, first, last + 1)
        rows = [(seq, sealed) for seq, sealed in fetched if first <= seq <= last]
        records: list[StoredMessage] = []
        for seq, sealed in rows:
            record = self._open(sealed, "message", conv_key, str(seq))
            conv.durable_seq = max(conv.durable_seq, seq)
            conv.assigned = max(conv.assigned, seq)
            conv.stored += len(sealed)
            conv.remember(dict(record))
            conv.last_activity = max(conv.last_activity, record["time"])
            sender = record["sender"]
            conv.read[sender] = max(conv.read.get(sender, 0), seq)
            records.append(record)
        return conv, records

    def read_elsewhere(self, conversation_id: str, username: str, seq: int) -> None:
        """Another node moved a read marker (only forward)."""
        conv = self._index.get(conversation_id)
        if conv is not None and seq > conv.read.get(username, 0):
            conv.read[username] = seq
