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

from pychat.store.atrest import AtRestKey, RecordSealer
from pychat.store.file_records import FileRecords
from pychat.store.files_record import StoredFile
from pychat.store.pg.database import Database
from pychat.store.pg.events import EventLog

#: The advisory lock a sweep holds, so that one node at a time sweeps (its transaction's).
SWEEP_LOCK = 0x70796368  # "pych"


class PgFileStore(FileRecords):
    """The files of one database; their records in memory, written through."""

    def __init__(self, database: Database, key: AtRestKey, events: EventLog | None = None) -> None:
        super().__init__()
        self._db = database
        self._sealer = key.sealer("files")
        self._events = events

    @classmethod
    def open(
        cls, database: Database, key: AtRestKey, events: EventLog | None = None
    ) -> PgFileStore:
        """Load every file's record, with how many chunks are stored; with ``events``, a new,
        completed or deleted file is told to the other nodes."""
        store = cls(database, key, events)
        for file_id, sealed, received in database.query_now(
            "SELECT f.file_id, f.sealed, count(c.n) FROM files f "
            "LEFT JOIN file_chunks c USING (file_id) GROUP BY f.file_id, f.sealed"
        ):
            record = StoredFile(**json.loads(store._sealer.open(bytes(sealed), _aad(file_id))))
            record.received = int(received)
            store.files[file_id] = record
        return store

    def _sealed(self, record: StoredFile) -> bytes:
        return sealed_file_record(self._sealer, record)

    async def start(
        self, owner: str, conversation: str, size: int, chunks: int, now: float, max_age: float
    ) -> StoredFile:
        """A new, empty upload (its record committed first)."""
        record = StoredFile(
            secrets.token_hex(16), owner, conversation, size, chunks, now, now + max_age
        )
        sealed = self._sealed(record)
        await self._db.run(_insert_file, record.id, record.expires, sealed, self._events)
        self.files[record.id] = record
        return record

    async def put(self, record: StoredFile, index: int, chunk: bytes) -> None:
        """Store chunk ``index`` (the next one), committed; the last one is told to the other
        nodes (the file can be fetched there from then on)."""
        events = self._events if index == record.chunks - 1 else None
        await self._db.run(_insert_chunk, record.id, index, chunk, events)
        record.received = index + 1

    async def get(self, record: StoredFile, index: int) -> bytes:
        """Chunk ``index`` of a complete file."""
        data: bytes = await self._db.run(_chunk, record.id, index)
        return data

    async def delete(self, record: StoredFile) -> None:
        """Remove a file, record and chunks."""
        self.files.pop(record.id, None)
        await self._db.run(_delete_file, record.id, self._events)

    async def sweep(self, now: float) -> int:
        """Delete every expired file in one transaction (skipped while another node sweeps);
        return how many went."""
        gone: list[str] = await self._db.run(_sweep_files, now, self._events)
        for file_id in gone:
            self.files.pop(file_id, None)
        return len(gone)

    async def lookup(self, file_id: str) -> StoredFile | None:
        """The file with this id: from memory, else from the database (another node made it
        and its event is still on the way)."""
        if file_id not in self.files:
            await self.refresh(file_id)
        return self.files.get(file_id)

    async def ids(self) -> set[str]:
        """Every file id the database holds now (and this node's), to read each again."""
        rows = await self._db.run(_file_ids)
        return set(rows) | set(self.files)

    async def refresh(self, file_id: str) -> None:
        """Read a file's record again (another node made, completed or deleted it)."""
        found = await self._db.run(_file, file_id)
        if found is None:
            self.files.pop(file_id, None)
            return
        sealed, received = found
        record = StoredFile(**json.loads(self._sealer.open(sealed, _aad(file_id))))
        record.received = received
        self.files[file_id] = record


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
        """Delete every expired blob (skipped while another node sweeps); return how many
        went."""
        gone: int = await self._db.run(_sweep_blobs, int(now))
        return gone


def _aad(file_id: str) -> bytes:
    return f"pychat-file-record\0{file_id}".encode()


def sealed_file_record(sealer: RecordSealer, record: StoredFile) -> bytes:
    """A file's record as its row holds it (without the count of chunks received)."""
    body = {k: v for k, v in asdict(record).items() if k != "received"}
    return sealer.seal(json.dumps(body).encode(), _aad(record.id))


def _tell(cursor: Any, events: EventLog | None, file_ids: list[str]) -> None:
    if events is not None:
        events.write_all(cursor, [{"k": "file", "id": file_id} for file_id in file_ids])


def _insert_file(
    cursor: Any, file_id: str, expires: float, sealed: bytes, events: EventLog | None
) -> None:
    cursor.execute(
        "INSERT INTO files (file_id, expires, sealed) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (file_id, expires, sealed),
    )
    _tell(cursor, events, [file_id])


def _insert_chunk(
    cursor: Any, file_id: str, index: int, data: bytes, events: EventLog | None
) -> None:
    cursor.execute(
        "INSERT INTO file_chunks (file_id, n, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (file_id, index, data),
    )
    _tell(cursor, events, [file_id])


def _file(cursor: Any, file_id: str) -> tuple[bytes, int] | None:
    cursor.execute(
        "SELECT f.sealed, (SELECT count(*) FROM file_chunks c WHERE c.file_id = f.file_id) "
        "FROM files f WHERE f.file_id = %s",
        (file_id,),
    )
    row = cursor.fetchone()
    return None if row is None else (bytes(row[0]), int(row[1]))


def _file_ids(cursor: Any) -> list[str]:
    cursor.execute("SELECT file_id FROM files")
    return [str(file_id) for (file_id,) in cursor.fetchall()]


def _swept_by_us(cursor: Any) -> bool:
    """Whether this transaction may sweep (no other node's sweep is under way)."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (SWEEP_LOCK,))
    (ours,) = cursor.fetchone()
    return bool(ours)


def _sweep_files(cursor: Any, now: float, events: EventLog | None) -> list[str]:
    if not _swept_by_us(cursor):
        return []
    cursor.execute("DELETE FROM files WHERE expires <= %s RETURNING file_id", (now,))
    gone = [str(file_id) for (file_id,) in cursor.fetchall()]
    _tell(cursor, events, gone)
    return gone


def _chunk(cursor: Any, file_id: str, index: int) -> bytes:
    cursor.execute("SELECT data FROM file_chunks WHERE file_id = %s AND n = %s", (file_id, index))
    row = cursor.fetchone()
    if row is None:
        raise KeyError(f"chunk {index} of {file_id}")
    return bytes(row[0])


def _delete_file(cursor: Any, file_id: str, events: EventLog | None) -> None:
    cursor.execute("DELETE FROM files WHERE file_id = %s", (file_id,))
    _tell(cursor, events, [file_id])


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
    if not _swept_by_us(cursor):
        return 0
    cursor.execute("DELETE FROM blobs WHERE expires <= %s", (now,))
    return int(cursor.rowcount)
