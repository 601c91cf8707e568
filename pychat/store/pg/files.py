"""Files and disappearing-message blobs in PostgreSQL (a
:class:`~pychat.store.interfaces.FileRepository` and a
:class:`~pychat.store.interfaces.BlobRepository`): the same records as the flat files, sealed,
in rows; a file's chunks as the clients' ciphertext, one row each."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from typing import Any

from cryptography.exceptions import InvalidTag

from pychat.store.atrest import AtRestKey
from pychat.store.file_records import FileRecords
from pychat.store.files_record import StoredFile
from pychat.store.pg.database import Database


class PgFileStore(FileRecords):
    """The files of one database; their records in memory, written through."""

    def __init__(self, database: Database, key: AtRestKey) -> None:
        super().__init__()
        self._db = database
        self._sealer = key.sealer("files")

    @classmethod
    def open(cls, database: Database, key: AtRestKey) -> PgFileStore:
        """Load every file's record, with how many chunks are stored."""
        store = cls(database, key)
        for file_id, sealed, received in database.query_now(
            "SELECT f.file_id, f.sealed, count(c.n) FROM files f "
            "LEFT JOIN file_chunks c USING (file_id) GROUP BY f.file_id, f.sealed"
        ):
            record = StoredFile(**json.loads(store._sealer.open(bytes(sealed), _aad(file_id))))
            record.received = int(received)
            store.files[file_id] = record
        return store

    def _sealed(self, record: StoredFile) -> bytes:
        body = {k: v for k, v in asdict(record).items() if k != "received"}
        return self._sealer.seal(json.dumps(body).encode(), _aad(record.id))

    async def start(
        self, owner: str, conversation: str, size: int, chunks: int, now: float, max_age: float
    ) -> StoredFile:
        """A new, empty upload (its record committed first)."""
        record = StoredFile(
            secrets.token_hex(16), owner, conversation, size, chunks, now, now + max_age
        )
        await self._db.run(_insert_file, record.id, record.expires, self._sealed(record))
        self.files[record.id] = record
        return record

    async def put(self, record: StoredFile, index: int, chunk: bytes) -> None:
        """Store chunk ``index`` (the next one), committed."""
        await self._db.run(_insert_chunk, record.id, index, chunk)
        record.received = index + 1

    async def get(self, record: StoredFile, index: int) -> bytes:
        """Chunk ``index`` of a complete file."""
        data: bytes = await self._db.run(_chunk, record.id, index)
        return data

    async def delete(self, record: StoredFile) -> None:
        """Remove a file, record and chunks."""
        self.files.pop(record.id, None)
        await self._db.run(_delete_file, record.id)


class PgBlobStore:
    """The blobs of disappearing messages, sealed, by name."""

    def __init__(self, database: Database, key: AtRestKey) -> None:
        self._db = database
        self._sealer = key.sealer("ephemeral")

    @staticmethod
    def _aad(conversation: str, name: str) -> bytes:
        return f"pychat-ephemeral\0{conversation}\0{name}".encode()

    async def put(self, conversation: str, ciphertext: str, expires: float) -> str:
        """Store a blob, committed; return its name."""
        name = f"{int(expires) + 1}-{secrets.token_hex(12)}"
        sealed = self._sealer.seal(ciphertext.encode(), self._aad(conversation, name))
        await self._db.run(_insert_blob, name, int(expires) + 1, sealed)
        return name

    async def get(self, conversation: str, name: str) -> str | None:
        """The ciphertext of blob ``name`` (None once it is gone)."""
        sealed: bytes | None = await self._db.run(_blob, name)
        if sealed is None:
            return None
        try:
            return self._sealer.open(sealed, self._aad(conversation, name)).decode()
        except (InvalidTag, ValueError):  # not this conversation's: as if it were not there
            return None

    async def sweep(self, now: float) -> int:
        """Delete every expired blob; return how many went."""
        gone: int = await self._db.run(_sweep_blobs, int(now))
        return gone


def _aad(file_id: str) -> bytes:
    return f"pychat-file-record\0{file_id}".encode()


def _insert_file(cursor: Any, file_id: str, expires: float, sealed: bytes) -> None:
    cursor.execute(
        "INSERT INTO files (file_id, expires, sealed) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (file_id, expires, sealed),
    )


def _insert_chunk(cursor: Any, file_id: str, index: int, data: bytes) -> None:
    cursor.execute(
        "INSERT INTO file_chunks (file_id, n, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (file_id, index, data),
    )


def _chunk(cursor: Any, file_id: str, index: int) -> bytes:
    cursor.execute("SELECT data FROM file_chunks WHERE file_id = %s AND n = %s", (file_id, index))
    row = cursor.fetchone()
    if row is None:
        raise KeyError(f"chunk {index} of {file_id}")
    return bytes(row[0])


def _delete_file(cursor: Any, file_id: str) -> None:
    cursor.execute("DELETE FROM files WHERE file_id = %s", (file_id,))


def _insert_blob(cursor: Any, name: str, expires: int, sealed: bytes) -> None:
    cursor.execute(
        "INSERT INTO blobs (name, expires, sealed) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (name, expires, sealed),
    )


def _blob(cursor: Any, name: str) -> bytes | None:
    cursor.execute("SELECT sealed FROM blobs WHERE name = %s", (name,))
    row = cursor.fetchone()
    return None if row is None else bytes(row[0])


def _sweep_blobs(cursor: Any, now: int) -> int:
    cursor.execute("DELETE FROM blobs WHERE expires <= %s", (now,))
    return int(cursor.rowcount)
