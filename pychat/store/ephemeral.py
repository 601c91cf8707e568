"""The ciphertext of disappearing messages, kept apart so it can really go.

The conversation logs are append-only; a disappearing message's record there holds its
metadata (seq, sender, time, client id, ``expires``) and the name of a blob, and the
ciphertext itself is this blob: ``ephemeral/<expires>-<random>.blob``, sealed at rest, written
and synced before the record is.  Deleting it is an unlink: crash-safe at every point (a blob
whose record never became durable is swept like any other when it expires).  Expired blobs
are deleted by :meth:`EphemeralStore.sweep` (the server runs it every minute), so an expired
message's ciphertext is gone from disk within a minute of its expiry; the server stops
serving it at once.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.atrest import RecordSealer
from pychat.store.blocking import BlockingRunner

EPHEMERAL_DIR = "ephemeral"


class EphemeralStore:
    """Blobs of disappearing messages, by name."""

    def __init__(self, directory: Path, sealer: RecordSealer, run_blocking: BlockingRunner):
        self.directory = directory
        self.sealer = sealer
        self._run = run_blocking

    @classmethod
    def open(
        cls, directory: Path, sealer: RecordSealer, run_blocking: BlockingRunner
    ) -> EphemeralStore:
        """The store in ``directory`` (made if missing)."""
        ensure_private_dir(directory)
        return cls(directory, sealer, run_blocking)

    @staticmethod
    def expiry_of(name: str) -> int:
        """When the blob called ``name`` expires (from its name)."""
        return int(name.split("-", 1)[0])

    def _aad(self, conversation: str, name: str) -> bytes:
        return f"pychat-ephemeral\0{conversation}\0{name}".encode()

    async def put(self, conversation: str, ciphertext: str, expires: float) -> str:
        """Write a blob durably; return its name."""
        name = f"{int(expires) + 1}-{secrets.token_hex(12)}"
        sealed = self.sealer.seal(ciphertext.encode(), self._aad(conversation, name))
        await self._run(write_atomic, self.directory / f"{name}.blob", sealed, 0o600)
        return name

    async def get(self, conversation: str, name: str) -> str | None:
        """The ciphertext of blob ``name`` (None once it is gone)."""

        def read() -> bytes | None:
            try:
                return (self.directory / f"{name}.blob").read_bytes()
            except (FileNotFoundError, OSError):
                return None

        sealed = await self._run(read)
        if sealed is None:
            return None
        try:
            return self.sealer.open(sealed, self._aad(conversation, name)).decode()
        except (InvalidTag, ValueError):
            return None

    async def sweep(self, now: float) -> int:
        """Delete every blob that has expired; return how many went."""

        def remove() -> int:
            gone = 0
            for path in self.directory.glob("*.blob"):
                try:
                    expired = self.expiry_of(path.stem) <= now
                except ValueError:
                    expired = True  # not one of ours
                if expired:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    gone += 1
            if gone:
                fsync_dir(self.directory)
            return gone

        result: int = await self._run(remove)
        return result
