"""The event stream between nodes (pychat/store/pg/events.py), against a real PostgreSQL:
read in commit order from a position, nothing skipped when an older transaction commits
late, nothing read twice, a node's own events passed over, bodies sealed."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pychat.store.atrest import AtRestKey
from pychat.store.pg.database import Database
from pychat.store.pg.events import EventLog, Position, read_after


def _opened(url: str, tmp_path: Path) -> tuple[Database, EventLog, EventLog]:
    database = Database.open(url)  # migrated
    key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
    return database, EventLog(key, node="one"), EventLog(key, node="two")


def _read(
    url: str, events: EventLog, after: Position
) -> tuple[list[dict[str, object]], Position, bool]:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        found = read_after(cursor, after, events.node)
    return [events.open(sealed) for _, sealed in found.rows], found.position, found.more


def test_an_event_whose_transaction_commits_late_is_not_skipped(
    pg_url: str, tmp_path: Path
) -> None:
    database, one, two = _opened(pg_url, tmp_path)
    start = database.start_position()
    with psycopg.connect(pg_url) as late, psycopg.connect(pg_url, autocommit=True) as quick:
        with late.cursor() as cursor:  # begins first, commits last
            one.write(cursor, {"k": "first"})
            with quick.cursor() as other:
                one.write(other, {"k": "second"})
            seen, position, more = _read(pg_url, two, start)
            assert (seen, position, more) == ([], start, True)  # "second" waits for "first"
        late.commit()
    seen, position, more = _read(pg_url, two, start)
    assert [e["k"] for e in seen] == ["first", "second"] and not more
    assert _read(pg_url, two, position)[0] == []  # nothing twice


def test_a_node_passes_over_its_own_events_and_moves_past_them(pg_url: str, tmp_path: Path) -> None:
    database, one, two = _opened(pg_url, tmp_path)
    start = database.start_position()
    with psycopg.connect(pg_url) as conn, conn.cursor() as cursor:
        one.write_all(cursor, [{"k": "a"}, {"k": "b"}])
        two.write(cursor, {"k": "mine"})
    seen, position, _ = _read(pg_url, two, start)
    assert [e["k"] for e in seen] == ["a", "b"]
    seen, position2, _ = _read(pg_url, one, start)
    assert [e["k"] for e in seen] == ["mine"] and position2 == position


def test_a_body_is_sealed_and_the_notification_names_only_the_node(
    pg_url: str, tmp_path: Path
) -> None:
    _, one, _ = _opened(pg_url, tmp_path)
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN pychat_events")
        with psycopg.connect(pg_url) as conn, conn.cursor() as cursor:
            one.write(cursor, {"k": "push", "to": ["zebediah"], "payload": {"ciphertext": "x"}})
        notes = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.payload for n in notes] == ["one"]
        row = listener.execute("SELECT sealed FROM pychat_events").fetchone()
    assert row is not None
    sealed = row[0]
    assert b"zebediah" not in bytes(sealed) and b"push" not in bytes(sealed)
