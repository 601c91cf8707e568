"""Groups in PostgreSQL: a group's conversation row and its membership chain
(``group_statements``, migrations/0007), created and extended in one transaction each with
the key epoch that comes with the change, checked there against what every node stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pychat.crypto.group_chain import GroupState
from pychat.store.conversation import (
    ChainChange,
    ChainMoved,
    Conversation,
    GroupChain,
    apply_chain,
    check_place,
)
from pychat.store.conversation_index import ConversationIndex
from pychat.store.pg.creation import create_conversation
from pychat.store.pg.database import Database
from pychat.wire.shapes import Envelope

#: Adds the event of a change to its transaction (see :mod:`.conversations`).
Told = Callable[..., None] | None


class KeepsGroups:
    """The part of :class:`~pychat.store.pg.conversations.PgConversationStore` that creates
    groups and extends their chains."""

    # What the store it is part of holds (see FollowsOtherNodes).
    _db: Database
    _index: ConversationIndex[Conversation]
    _key: Callable[[Conversation], str]
    _seal: Callable[..., bytes]
    _open: Callable[..., Any]
    _told: Callable[[Conversation], Told]
    refresh: Callable[..., Any]

    def load_chains(self, by_key: dict[str, Conversation]) -> None:
        """Every group's chain, read at start (its members follow)."""
        rows = self._db.query_now(
            "SELECT conv_key, n, sealed FROM group_statements ORDER BY conv_key, n"
        )
        chains: dict[str, list[dict[str, Any]]] = {}
        for conv_key, n, sealed in rows:
            record = self._open(bytes(sealed), "statement", conv_key, str(n))
            chains.setdefault(conv_key, []).append(record["statement"])
        for conv_key, statements in chains.items():
            apply_chain(by_key[conv_key], statements)

    def chain_of(
        self,
        conv: Conversation,
        conv_key: str,
        rows: list[tuple[int, bytes]],
        *,
        regroup: bool = False,
    ) -> None:
        """Set a group's chain to the statements read (again: another node changed it; a
        conversation already indexed is ``regroup``-ed, found by its members as they are)."""
        statements = [self._open(s, "statement", conv_key, str(n))["statement"] for n, s in rows]
        if not statements:
            return
        had = conv.members
        conv.group = None
        apply_chain(conv, statements)
        if regroup:
            members, conv.members = conv.members, had
            self._index.regroup(conv, members)

    async def create_group(
        self, statement: dict[str, Any], state: GroupState, envelope: Envelope, now: float
    ) -> Conversation:
        """A new group, from its checked create statement, with its first key epoch."""
        if self._index.get(state.group) is not None:
            raise ValueError("group exists")
        members = tuple(sorted(state.members))
        conv = Conversation(
            state.group, members, now, last_activity=now, group=GroupChain([statement], state)
        )
        conv_key = self._key(conv)
        meta = self._seal(
            {"id": conv.id, "members": list(members), "time": now, "group": True},
            "conversation",
            conv_key,
        )
        first = self._seal({"envelope": envelope, "time": now}, "epoch", conv_key, "1")
        chain = self._seal({"statement": statement, "time": now}, "statement", conv_key, "1")
        created = await self._db.run(_create_group, conv_key, meta, first, chain, self._told(conv))
        if not created or self._index.get(conv.id) is not None:
            raise ValueError("group exists")
        conv.epochs.append(envelope)
        self._index.add(conv)
        return conv

    async def change_group(
        self,
        conv: Conversation,
        statement: dict[str, Any],
        state: GroupState,
        envelope: Envelope | None,
        now: float,
    ) -> None:
        """Append a checked statement (and the epoch it begins), both checked again in the
        transaction against what every node stored.

        :raises ChainMoved: another statement came first (the group is read again).
        :raises EpochRefused: the envelope is not the next epoch, or placed elsewhere.
        """
        conv_key = self._key(conv)
        before = ChainChange.begin(conv, statement, state, envelope, conv.position)
        self._index.regroup(conv, before.members_after)
        n = statement["n"]
        sealed = self._seal({"statement": statement, "time": now}, "statement", conv_key, str(n))
        epoch = None
        if envelope is not None:
            where = ("epoch", conv_key, str(envelope["epoch"]))
            epoch = (envelope, self._seal({"envelope": envelope, "time": now}, *where))
        try:
            await self._db.run(_change_group, conv_key, n, sealed, epoch, self._told(conv))
        except Exception:
            self._index.regroup(conv, before.members)
            before.undo(conv)
            await self.refresh(conv_key, conv.id)
            raise


def _create_group(
    cursor: Any, conv_key: str, meta: bytes, first_epoch: bytes, statement: bytes, told: Told
) -> bool:
    if not create_conversation(cursor, conv_key, meta, first_epoch, None):
        return False
    cursor.execute(
        "INSERT INTO group_statements (conv_key, n, sealed) VALUES (%s, 1, %s)",
        (conv_key, statement),
    )
    if told is not None:
        told(cursor)
    return True


def _change_group(
    cursor: Any,
    conv_key: str,
    n: int,
    statement: bytes,
    epoch: tuple[Envelope, bytes] | None,
    told: Told,
) -> None:
    cursor.execute("SELECT last_seq FROM conversations WHERE conv_key = %s FOR UPDATE", (conv_key,))
    (last_seq,) = cursor.fetchone()
    cursor.execute(
        "SELECT coalesce(max(n), 0) FROM group_statements WHERE conv_key = %s", (conv_key,)
    )
    (last_n,) = cursor.fetchone()
    if int(last_n) != n - 1:
        raise ChainMoved("the group's chain has moved on: fetch it and try again")
    if epoch is not None:
        envelope, sealed = epoch
        cursor.execute("SELECT count(*) FROM conversation_epochs WHERE conv_key = %s", (conv_key,))
        (count,) = cursor.fetchone()
        check_place(envelope, int(count), int(last_seq))
        cursor.execute(
            "INSERT INTO conversation_epochs (conv_key, epoch, sealed) VALUES (%s, %s, %s)",
            (conv_key, envelope["epoch"], sealed),
        )
    cursor.execute(
        "INSERT INTO group_statements (conv_key, n, sealed) VALUES (%s, %s, %s)",
        (conv_key, n, statement),
    )
    if told is not None:
        told(cursor)
