"""The PostgreSQL schema: versioned migrations applied once, a newer schema refused, and an
unreachable database said in one line."""

from __future__ import annotations

import psycopg
import pytest

from pychat.store.pg.database import Database, DatabaseUnavailable
from pychat.store.pg.schema import migrations
from tests.pg_server import PgCluster


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM pychat_schema ORDER BY 1")]


def test_migrations_are_applied_once_in_order(pg_url: str) -> None:
    shipped = [m.version for m in migrations()]
    assert shipped == sorted(shipped) and shipped[0] == 1
    Database.open(pg_url)
    Database.open(pg_url)  # a second start (or a second node) changes nothing
    assert _versions(pg_url) == shipped


def test_a_schema_newer_than_this_code_is_refused_in_one_line(pg_url: str) -> None:
    Database.open(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO pychat_schema (version, name) VALUES (9999, 'from_the_future')")
    with pytest.raises(DatabaseUnavailable) as info:
        Database.open(pg_url)
    message = str(info.value)
    assert "version 9999, newer than this pyChat knows" in message and "\n" not in message


def test_an_unreachable_database_is_one_line(pg_cluster: PgCluster) -> None:
    url = pg_cluster.url("no_such_database")
    with pytest.raises(DatabaseUnavailable) as info:
        Database.open(url)
    message = str(info.value)
    assert message.startswith("cannot use the database") and "\n" not in message
    assert "no_such_database" in message
