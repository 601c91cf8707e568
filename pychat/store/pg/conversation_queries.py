"""The reads of conversations that both the store and its following of other nodes make
(each a transaction function, run on a pool thread)."""

from __future__ import annotations

from typing import Any

#: One conversation as :func:`load_one` reads it: sealed row, last seq, epochs, read markers,
#: newest messages, size, a group's statements.
Loaded = tuple[
    bytes,
    int,
    list[tuple[int, bytes]],
    list[tuple[str, bytes]],
    list[tuple[int, bytes]],
    int,
    list[tuple[int, bytes]],
]


def page_rows(cursor: Any, conv_key: str, first: int, stop: int) -> list[tuple[int, bytes]]:
    """The sealed messages with ``first <= seq < stop`` (an index range scan)."""
    cursor.execute(
        "SELECT seq, sealed FROM messages WHERE conv_key = %s AND seq >= %s AND seq < %s "
        "ORDER BY seq",
        (conv_key, first, stop),
    )
    return [(int(seq), bytes(sealed)) for seq, sealed in cursor.fetchall()]


def range_rows(
    cursor: Any, ranges: list[tuple[str, int, int]]
) -> dict[str, list[tuple[int, bytes]]]:
    """The sealed messages of several ``(conversation key, first, last)`` ranges, by key."""
    cursor.execute(
        "SELECT m.conv_key, m.seq, m.sealed FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
        "AS r(conv_key, first, last) JOIN messages m ON m.conv_key = r.conv_key "
        "AND m.seq BETWEEN r.first AND r.last ORDER BY m.conv_key, m.seq",
        ([k for k, _, _ in ranges], [f for _, f, _ in ranges], [last for _, _, last in ranges]),
    )
    found: dict[str, list[tuple[int, bytes]]] = {}
    for conv_key, seq, sealed in cursor.fetchall():
        found.setdefault(conv_key, []).append((int(seq), bytes(sealed)))
    return found


def epoch_rows(cursor: Any, conv_key: str) -> list[tuple[int, bytes]]:
    """A conversation's sealed epochs, in order."""
    cursor.execute(
        "SELECT epoch, sealed FROM conversation_epochs WHERE conv_key = %s ORDER BY epoch",
        (conv_key,),
    )
    return [(int(n), bytes(s)) for n, s in cursor.fetchall()]


def load_one(cursor: Any, conv_key: str, newest: int) -> Loaded | None:
    """One conversation as the database holds it: its sealed row, last seq, epochs, read
    markers, newest messages and size; None when it is gone."""
    cursor.execute("SELECT sealed, last_seq FROM conversations WHERE conv_key = %s", (conv_key,))
    row = cursor.fetchone()
    if row is None:
        return None
    epochs = epoch_rows(cursor, conv_key)
    cursor.execute(
        "SELECT member_key, sealed FROM conversation_reads WHERE conv_key = %s", (conv_key,)
    )
    reads = [(str(m), bytes(s)) for m, s in cursor.fetchall()]
    cursor.execute(
        "SELECT seq, sealed FROM messages WHERE conv_key = %s ORDER BY seq DESC LIMIT %s",
        (conv_key, newest),
    )
    recent = [(int(n), bytes(s)) for n, s in reversed(cursor.fetchall())]
    cursor.execute(
        "SELECT coalesce(sum(octet_length(sealed)), 0) FROM messages WHERE conv_key = %s",
        (conv_key,),
    )
    (size,) = cursor.fetchone()
    cursor.execute(
        "SELECT n, sealed FROM group_statements WHERE conv_key = %s ORDER BY n", (conv_key,)
    )
    statements = [(int(n), bytes(s)) for n, s in cursor.fetchall()]
    return bytes(row[0]), int(row[1]), epochs, reads, recent, int(size), statements


def all_conversations(cursor: Any) -> list[tuple[str, bytes]]:
    """Every conversation's key and sealed row."""
    cursor.execute("SELECT conv_key, sealed FROM conversations")
    return [(str(k), bytes(s)) for k, s in cursor.fetchall()]
