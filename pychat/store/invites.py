"""Single-use, expiring signup codes, for a server run with ``--signup invite``.

``DATA_DIR/invites.json`` (0600, replaced atomically) holds for each open invite only the
SHA-256 of its code, when it was made and when it expires: the codes themselves are shown once,
to the operator who made them, and are not on disk.  Using a code removes it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from pychat.durable import write_atomic
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError

log = Logger(namespace="pychat.accounts")

INVITES_FILE = "invites.json"
FORMAT = "pychat-invites"

#: Hours an invite stays usable unless the operator says otherwise.
DEFAULT_HOURS = 72.0


def digest_of(code: str) -> str:
    """What is kept of an invite's code: its SHA-256, in hex."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass
class InviteBook:
    """The open invites of one data dir (in memory; :meth:`save` writes them)."""

    path: Path
    invites: dict[str, dict[str, float]] = field(default_factory=dict)
    _reserved: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, data_dir: Path) -> InviteBook:
        """The invites of ``data_dir`` (none when the file is absent).

        :raises StoreError: the file is there but unreadable.
        """
        path = data_dir / INVITES_FILE
        book = cls(path)
        if not path.exists():
            return book
        try:
            body = json.loads(path.read_bytes())
            if body.get("format") != FORMAT or body.get("v") != 1:
                raise ValueError("not a pyChat invites file")
            book.invites = {
                str(d): {"created": float(i["created"]), "expires": float(i["expires"])}
                for d, i in body["invites"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(path, f"the invites file is unreadable ({exc})") from None
        return book

    def save(self) -> None:
        """Write the open invites (blocking: a thread, or the admin tool)."""
        body = {"format": FORMAT, "v": 1, "invites": self.invites}
        write_atomic(self.path, json.dumps(body, indent=1).encode() + b"\n", mode=0o600)

    def create(self, now: float, hours: float = DEFAULT_HOURS) -> tuple[str, float]:
        """A new code, valid for ``hours``; returns it and its expiry (call :meth:`save`)."""
        if hours <= 0:
            raise ValueError("an invite must be valid for some time")
        code = secrets.token_urlsafe(12)
        expires = now + hours * 3600
        self.invites[digest_of(code)] = {"created": now, "expires": expires}
        self.drop_expired(now)
        return code, expires

    def drop_expired(self, now: float) -> None:
        """Forget invites past their expiry."""
        for digest in [d for d, i in self.invites.items() if i["expires"] <= now]:
            if digest not in self._reserved:
                del self.invites[digest]

    def reserve(self, code: str, now: float) -> str | None:
        """Hold ``code`` for one signup; return its handle, or None when it is unknown, used,
        expired or held by a signup in progress."""
        digest = digest_of(code)
        invite = self.invites.get(digest)
        if invite is None or invite["expires"] <= now or digest in self._reserved:
            return None
        self._reserved.add(digest)
        return digest

    def release(self, handle: str) -> None:
        """The signup failed: the invite is usable again."""
        self._reserved.discard(handle)

    def consume(self, handle: str) -> None:
        """The signup succeeded: the invite is gone (call :meth:`save`)."""
        self._reserved.discard(handle)
        self.invites.pop(handle, None)

    def summary(self, now: float) -> list[dict[str, Any]]:
        """Open invites, oldest first (no codes: they are not kept)."""
        return sorted(
            (
                {"created": i["created"], "expires": i["expires"]}
                for i in self.invites.values()
                if i["expires"] > now
            ),
            key=lambda i: i["created"],
        )


class FileInvites:
    """The invites of a data dir as an :class:`~pychat.store.interfaces.InviteRepository`:
    held in memory, saved to ``invites.json`` (off the reactor) when one is made or used."""

    def __init__(self, book: InviteBook, run_blocking: BlockingRunner) -> None:
        self.book = book
        self._run = run_blocking

    async def reserve(self, code: str, now: float) -> str | None:
        """Hold ``code`` for one signup; its handle, or None (unknown, used, expired, held)."""
        return self.book.reserve(code, now)

    async def release(self, handle: str) -> None:
        """The signup failed: the invite is usable again."""
        self.book.release(handle)

    async def consume(self, handle: str) -> None:
        """The signup succeeded: the invite is gone (and saved as such)."""
        self.book.consume(handle)
        try:
            await self._run(self.book.save)
        except OSError as exc:  # the account exists; the worst case is a reusable invite
            log.error("could not save that an invite was used: {e}", e=exc)

    async def create(self, now: float, hours: float) -> tuple[str, float]:
        """A new invite, saved before it is handed out."""
        code, expires = self.book.create(now, hours)
        await self._run(self.book.save)
        return code, expires
