"""The database schema: numbered migration files in ``pychat/store/pg/migrations``
(``NNNN_what.sql``), applied in order at start inside one transaction, with the version
reached kept in ``pychat_schema``.  A database whose schema is newer than this code knows is
refused: an older node must not write into a shape it does not understand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class SchemaTooNew(Exception):
    """The database was migrated by a newer pyChat than this one."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this code, in order."""
    found = []
    for entry in resources.files("pychat.store.pg").joinpath("migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: Any) -> tuple[int, int]:
    """Bring the database's schema up to date in one transaction; return (the version it had,
    the version it has now).  Nodes starting at once take turns (a table lock).

    :raises SchemaTooNew: the database is at a version this code does not know.
    """
    known = migrations()
    latest = known[-1].version if known else 0
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pychat_schema ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("LOCK TABLE pychat_schema IN EXCLUSIVE MODE")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM pychat_schema").fetchone()
        current = int(row[0])
        if current > latest:
            raise SchemaTooNew(
                f"the database's schema is version {current}, newer than this pyChat knows "
                f"({latest}): run the pyChat that migrated it, or a newer one"
            )
        for migration in known:
            if migration.version > current:
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO pychat_schema (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
    return current, latest
