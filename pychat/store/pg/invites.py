"""Invites in PostgreSQL (an :class:`~pychat.store.interfaces.InviteRepository`): a row per
open invite, its code's SHA-256 and times (migrations/0006_invites.sql).  A signup takes its
invite's row out in one statement, so two nodes asked for one code at once let one signup
through; a failed signup puts it back.  (A node killed in the middle of a signup loses that
invite: the operator makes another.)"""

from __future__ import annotations

import secrets
from typing import Any

from pychat.store.invites import digest_of
from pychat.store.pg.database import Database


class PgInvites:
    """The invites of one database."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._held: dict[str, tuple[float, float]] = {}

    async def reserve(self, code: str, now: float) -> str | None:
        """Take the invite out for one signup; its handle, or None when there is no such
        open invite (unknown, used, expired, or taken by a signup under way)."""
        digest = digest_of(code)
        taken: tuple[float, float] | None = await self._db.run(_take, digest, now)
        if taken is None:
            return None
        self._held[digest] = taken
        return digest

    async def release(self, handle: str) -> None:
        """The signup failed: put the invite back."""
        held = self._held.pop(handle, None)
        if held is not None:
            await self._db.run(_put, handle, *held)

    async def consume(self, handle: str) -> None:
        """The signup succeeded: the invite stays out."""
        self._held.pop(handle, None)

    async def create(self, now: float, hours: float) -> tuple[str, float]:
        """A new code valid for ``hours``, committed before it is returned."""
        if hours <= 0:
            raise ValueError("an invite must be valid for some time")
        code = secrets.token_urlsafe(12)
        expires = now + hours * 3600
        await self._db.run(_put, digest_of(code), now, expires)
        return code, expires


def _take(cursor: Any, digest: str, now: float) -> tuple[float, float] | None:
    cursor.execute("DELETE FROM invites WHERE expires <= %s", (now,))
    cursor.execute("DELETE FROM invites WHERE digest = %s RETURNING created, expires", (digest,))
    row = cursor.fetchone()
    return None if row is None else (float(row[0]), float(row[1]))


def _put(cursor: Any, digest: str, created: float, expires: float) -> None:
    cursor.execute(
        "INSERT INTO invites (digest, created, expires) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (digest, created, expires),
    )
