"""The stream of changes and pushes that the nodes sharing one database tell each other
(migrations/0005_events.sql).

A node writes an event in the very transaction that makes the change it tells of (an append,
a new epoch, an account stored), so the event exists exactly when the change committed; a
push with no change behind it (typing, presence, a ``read`` to one's other devices) is
written on its own.  Each body is sealed with the store key: the rows show a node id, a time
and ciphertext, no more than any other row.  ``NOTIFY pychat_events`` carries the writer's
node id only.

Readers keep a position ``(txid, pos)`` and read the rows after it whose transaction is older
than every write transaction still running: no row can later commit behind a position, so
nothing is skipped, and nothing is read twice.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from pychat.store.atrest import AtRestKey

#: The channel the nodes LISTEN on.
CHANNEL = "pychat_events"

#: Events kept for nodes that were away (seconds); older ones are swept.
KEEP_EVENTS = 3600.0

#: The most rows one read returns (the next read goes on from there).
READ_BATCH = 500

_AAD = b"pychat-pg/event"


@dataclass(frozen=True, order=True)
class Position:
    """Where a reader is in the stream: the transaction id and row of the last row read."""

    txid: int
    pos: int


class EventLog:
    """Writes and reads events for one node.

    :param key: the store key (events are sealed with their own subkey).
    :param node: this node's id (random per process unless given).
    """

    def __init__(
        self, key: AtRestKey, node: str | None = None, start: Position | None = None
    ) -> None:
        self.node = node or secrets.token_hex(6)
        self._sealer = key.sealer("events")
        #: Where this node begins to read: taken before it loaded the database.
        self.start = start or Position(0, 0)

    def write(self, cursor: Any, body: dict[str, Any]) -> None:
        """Add an event to the transaction of ``cursor``, and wake the other nodes when it
        commits."""
        self.write_all(cursor, [body])

    def write_all(self, cursor: Any, bodies: list[dict[str, Any]]) -> None:
        """Add several events, in order, to the transaction of ``cursor``."""
        if not bodies:
            return
        rows = [(self.node, _kind(body), self._seal(body)) for body in bodies]
        cursor.executemany(
            "INSERT INTO pychat_events (node, kind, sealed) VALUES (%s, %s, %s)", rows
        )
        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.node))

    def _seal(self, body: dict[str, Any]) -> bytes:
        return self._sealer.seal(json.dumps(body, separators=(",", ":")).encode(), _AAD)

    def open(self, sealed: bytes) -> dict[str, Any]:
        """An event's body.

        :raises cryptography.exceptions.InvalidTag: altered, or sealed with another key.
        """
        body: dict[str, Any] = json.loads(self._sealer.open(sealed, _AAD))
        return body


@dataclass(frozen=True)
class ReadEvents:
    """What one read of the stream found."""

    #: (node, sealed body) of every row written by other nodes, in order.
    rows: list[tuple[str, bytes]]
    #: Where the next read goes on from.
    position: Position
    #: Rows are there past the position that cannot be read yet (their transaction, or an
    #: older one, is still running), or more than one batch: read again soon.
    more: bool


def read_after(cursor: Any, after: Position, node: str) -> ReadEvents:
    """The events after ``after`` that no running transaction can still precede, except
    ``node``'s own (the position moves past those too)."""
    cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    (xmin,) = cursor.fetchone()
    cursor.execute(
        "SELECT txid::text::bigint, pos, node, sealed FROM pychat_events "
        "WHERE (txid, pos) > (%s::text::xid8, %s) AND txid < %s::text::xid8 "
        "ORDER BY txid, pos LIMIT %s",
        (str(after.txid), after.pos, str(xmin), READ_BATCH),
    )
    found = cursor.fetchall()
    rows = [(str(writer), bytes(sealed)) for _, _, writer, sealed in found if writer != node]
    position = Position(int(found[-1][0]), int(found[-1][1])) if found else after
    if len(found) == READ_BATCH:
        return ReadEvents(rows, position, True)
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pychat_events WHERE (txid, pos) > (%s::text::xid8, %s))",
        (str(position.txid), position.pos),
    )
    (waiting,) = cursor.fetchone()
    return ReadEvents(rows, position, bool(waiting))


def start_position(cursor: Any) -> Position:
    """A position before every event that may still commit (taken before reading what the
    database holds, so that whatever changes after is read again)."""
    cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    (xmin,) = cursor.fetchone()
    return Position(int(xmin), 0)


def _kind(body: dict[str, Any]) -> str:
    """What the row says in the clear: ``limit`` for a limit's change, else nothing."""
    return "limit" if body.get("k") == "limit" else ""


def limits_before(cursor: Any, start: Position, keep: float = KEEP_EVENTS) -> list[bytes]:
    """The sealed changes to limits of the last ``keep`` seconds that committed before
    ``start`` (a starting node replays them; those after it come with the other events)."""
    cursor.execute(
        "SELECT sealed FROM pychat_events WHERE kind = 'limit' "
        "AND at > now() - make_interval(secs => %s) AND txid < %s::text::xid8 "
        "ORDER BY txid, pos",
        (keep, str(start.txid)),
    )
    return [bytes(sealed) for (sealed,) in cursor.fetchall()]


def prune(cursor: Any, keep: float = KEEP_EVENTS) -> int:
    """Delete events older than ``keep`` seconds; return how many went."""
    cursor.execute(
        "DELETE FROM pychat_events WHERE at < now() - make_interval(secs => %s)", (keep,)
    )
    return int(cursor.rowcount)
