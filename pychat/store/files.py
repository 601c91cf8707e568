"""Encrypted files users send each other, as the server keeps them: opaque chunks on disk.

Each file is ``files/<id>.data`` (the client's ciphertext chunks, appended in order, each
fsynced before it is acknowledged) and ``files/<id>.meta`` (sealed at rest: owner,
conversation, declared size and chunk count, times).  The id is random; the server never sees
a file's name, type or content (the client encrypts each chunk with a key only the
conversation's members get).  An upload resumes where the durable chunks end: after a crash,
a torn last chunk is cut and the client is told how many chunks the server has.  A file
expires ``max_age`` seconds after its upload started and is then deleted, data and all.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path

from cryptography.exceptions import InvalidTag

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.atrest import RecordSealer
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError
from pychat.store.file_records import FileRecords
from pychat.store.files_record import CHUNK_BYTES, StoredFile
from pychat.wire.shapes import FileReply

FILES_DIR = "files"

__all__ = ["CHUNK_BYTES", "FILES_DIR", "FileStore", "StoredFile", "describe"]


class FileStore(FileRecords):
    """The files of one data dir: records in memory, written through to disk."""

    def __init__(self, directory: Path, sealer: RecordSealer, run_blocking: BlockingRunner):
        super().__init__()
        self.directory = directory
        self._sealer = sealer
        self._run = run_blocking

    @classmethod
    def open(cls, directory: Path, sealer: RecordSealer, run_blocking: BlockingRunner) -> FileStore:
        """Load every record; cut torn chunk tails; drop data without a record.

        :raises StoreError: a record that does not open (damage, or another key).
        """
        store = cls(directory, sealer, run_blocking)
        ensure_private_dir(directory)
        for meta in sorted(directory.glob("*.meta")):
            record = store._read(meta)
            store.files[record.id] = record
            store._resume(record)
        for data in directory.glob("*.data"):
            if data.stem not in store.files:
                data.unlink()  # its record was never written: the upload never started
        return store

    def _read(self, meta: Path) -> StoredFile:
        try:
            plain = self._sealer.open(meta.read_bytes(), self._aad(meta.stem))
            return StoredFile(**json.loads(plain))
        except (OSError, ValueError, TypeError, InvalidTag) as exc:
            raise StoreError(meta, f"file record does not open: {exc}") from None

    def _resume(self, record: StoredFile) -> None:
        """Count the whole chunks on disk; cut a torn one at the end."""
        path = self._data(record.id)
        try:
            length = path.stat().st_size
        except FileNotFoundError:
            length = 0
            path.touch(0o600)
        whole, end = 0, 0
        while whole < record.chunks and end + record.chunk_length(whole) <= length:
            end += record.chunk_length(whole)
            whole += 1
        if length != end:
            with open(path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        record.received = whole

    def _aad(self, file_id: str) -> bytes:
        return f"pychat-file-record\0{file_id}".encode()

    def _data(self, file_id: str) -> Path:
        return self.directory / f"{file_id}.data"

    def write_record(self, record: StoredFile) -> None:
        """Write ``record`` (sealed) in place of the one on disk."""
        body = {k: v for k, v in asdict(record).items() if k != "received"}
        sealed = self._sealer.seal(json.dumps(body).encode(), self._aad(record.id))
        write_atomic(self.directory / f"{record.id}.meta", sealed, mode=0o600)

    def data_path(self, file_id: str) -> Path:
        """Where a file's data lies (for a copy of the store: rotation, backup)."""
        return self._data(file_id)

    async def start(
        self, owner: str, conversation: str, size: int, chunks: int, now: float, max_age: float
    ) -> StoredFile:
        """A new, empty upload (its record on disk first)."""
        record = StoredFile(
            secrets.token_hex(16), owner, conversation, size, chunks, now, now + max_age
        )

        def create() -> None:
            ensure_private_dir(self.directory)
            fd = os.open(self._data(record.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            self.write_record(record)

        await self._run(create)
        self.files[record.id] = record
        return record

    async def put(self, record: StoredFile, index: int, chunk: bytes) -> None:
        """Append chunk ``index`` (the next one) durably."""

        def append() -> None:
            with open(self._data(record.id), "ab") as f:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())

        await self._run(append)
        record.received = index + 1

    async def get(self, record: StoredFile, index: int) -> bytes:
        """Chunk ``index`` of a complete file."""
        offset = CHUNK_BYTES * index

        def read() -> bytes:
            with open(self._data(record.id), "rb") as f:
                f.seek(offset)
                return f.read(record.chunk_length(index))

        return await self._run(read)

    async def delete(self, record: StoredFile) -> None:
        """Remove a file, data and record."""
        self.files.pop(record.id, None)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{record.id}.meta").unlink()
            with contextlib.suppress(FileNotFoundError):
                self._data(record.id).unlink()
            fsync_dir(self.directory)

        await self._run(remove)


def describe(record: StoredFile) -> FileReply:
    """What a member may know of a file."""
    return {
        "file": record.id,
        "conversation": record.conversation,
        "size": record.size,
        "chunks": record.chunks,
        "received": record.received,
        "complete": record.complete,
        "expires": record.expires,
    }
