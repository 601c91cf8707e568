"""An append-only log of sealed JSON records, one per line, with an in-memory offset index.

Each line is ``{"s": "<base64 of AES-GCM nonce|ciphertext|tag>"}``; the sealed plaintext is the
record's JSON.  The associated data binds each record to its file and its position, so a
record moved, dropped or reordered fails to open.  Offsets of every line are kept in memory,
so reading record ``i`` costs one seek whatever the log's length, and appending costs one
write.

After a crash the last line may be torn (cut short, or written but not flushed whole).  On
open a last line without its newline, or one that does not parse or decrypt, is cut off and
reported; a damaged line *before* the last cannot come from a crash and stops the open with a
:class:`StoreError`, leaving the file as it is.

Durability is the caller's business: :meth:`SealedLog.append` writes; :class:`GroupCommitter`
fsyncs many logs' appends together and says when they are on disk.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from array import array
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.store.atrest import RecordSealer
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError

log = Logger(namespace="pychat.store")

_READ_CHUNK = 1 << 20


class SealedLog:
    """One append-only file of sealed records."""

    def __init__(
        self,
        path: Path,
        sealer: RecordSealer,
        label: str,
        offsets: array[int],
        end: int,
        *,
        fd: int | None = None,
    ) -> None:
        self.path = path
        self.label = label
        self._sealer = sealer
        self._offsets = offsets  # start of each line; the line ends where the next starts
        self._end = end
        self._fd = (
            fd if fd is not None else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        )

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, sealer: RecordSealer, label: str, *, on_cut: Callable[[Path, int], None]
    ) -> SealedLog:
        """Open (or create) the log at ``path``, cutting a torn last line.

        :param on_cut: told ``(path, bytes_cut)`` when a torn tail was removed.
        :raises StoreError: a damaged line that is not the last one shows up only when read;
            the last line is checked here.
        """
        offsets, size, complete_end = _scan_lines(path)
        opened = cls(path, sealer, label, offsets, complete_end)
        cut_to = complete_end
        if offsets:
            try:
                opened._read_at(len(offsets) - 1)
            except StoreError:
                cut_to = offsets.pop()
                opened._end = cut_to
        if cut_to < size:
            with open(path, "r+b") as f:
                f.truncate(cut_to)
                f.flush()
                os.fsync(f.fileno())
            on_cut(path, size - cut_to)
        return opened

    @classmethod
    def write_fresh(
        cls,
        path: Path,
        sealer: RecordSealer,
        label: str,
        records: list[dict[str, Any]],
        *,
        at: Path,
    ) -> None:
        """Write ``records`` as a complete log meant to live at ``path``, into the file ``at``
        (to be renamed over ``path``), and fsync it."""
        fd = os.open(at, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            writer = cls(path, sealer, label, array("q"), 0, fd=fd)
            for record in records:
                writer.append(record)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._offsets)

    def _aad(self, index: int) -> bytes:
        return f"{self.label}/{self.path.name}/{index}".encode()

    def _line_span(self, index: int) -> tuple[int, int]:
        start = self._offsets[index]
        end = self._offsets[index + 1] if index + 1 < len(self._offsets) else self._end
        return start, end

    def _decode(self, index: int, line: bytes) -> dict[str, Any]:
        try:
            outer = json.loads(line)
            sealed = base64.b64decode(outer["s"], validate=True)
            record = json.loads(self._sealer.open(sealed, self._aad(index)))
        except (ValueError, KeyError, TypeError, binascii.Error, InvalidTag) as exc:
            raise StoreError(
                self.path, f"record {index} is damaged ({type(exc).__name__})"
            ) from None
        if not isinstance(record, dict):
            raise StoreError(self.path, f"record {index} is not an object")
        return record

    def _read_at(self, index: int) -> dict[str, Any]:
        start, end = self._line_span(index)
        with open(self.path, "rb") as f:
            f.seek(start)
            return self._decode(index, f.read(end - start))

    def read_range(self, first: int, stop: int) -> list[dict[str, Any]]:
        """Records ``first`` up to (not including) ``stop``, in order (blocking: use a thread).

        :raises StoreError: a record that does not open (the file was damaged after start).
        """
        first, stop = max(0, first), min(stop, len(self._offsets))
        if first >= stop:
            return []
        start = self._offsets[first]
        end = self._offsets[stop] if stop < len(self._offsets) else self._end
        with open(self.path, "rb") as f:
            f.seek(start)
            blob = f.read(end - start)
        out = []
        for i in range(first, stop):
            a, b = self._line_span(i)
            out.append(self._decode(i, blob[a - start : b - start]))
        return out

    def read_all(self) -> list[dict[str, Any]]:
        """Every record (for the small control logs read at start)."""
        return self.read_range(0, len(self._offsets))

    # -- writing -------------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> int:
        """Write ``record`` as the next line; return its index.  Not durable until fsynced."""
        index = len(self._offsets)
        plain = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self._sealer.seal(plain, self._aad(index))
        line = b'{"s":"' + base64.b64encode(sealed) + b'"}\n'
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        self._offsets.append(self._end)
        self._end += len(line)
        return index

    def fileno(self) -> int:
        """The descriptor to fsync."""
        return self._fd

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self._fd)


def _scan_lines(path: Path) -> tuple[array[int], int, int]:
    """(start offset of every complete line, file size, end of the last complete line)."""
    offsets: array[int] = array("q")
    if not path.exists():
        return offsets, 0, 0
    size = path.stat().st_size
    position = 0
    carry = b""
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            data = carry + chunk
            base = position - len(carry)
            start = 0
            while (nl := data.find(b"\n", start)) >= 0:
                offsets.append(base + start)
                start = nl + 1
            carry = data[start:]
            position += len(chunk)
    return offsets, size, size - len(carry)


class GroupCommitter:
    """Makes appends durable in batches: one fsync per dirty log per batch.

    While a batch is being synced, new appends gather for the next one, so under load many
    messages share one fsync and none is acknowledged before its own fsync finished.
    """

    def __init__(self, run_blocking: BlockingRunner) -> None:
        self._run = run_blocking
        self._pending: dict[int, list[defer.Deferred[None]]] = {}
        self._busy = False
        self.batches = 0
        self.synced = 0

    def durable(self, log_file: SealedLog) -> defer.Deferred[None]:
        """Fires once everything appended to ``log_file`` so far is on disk."""
        d: defer.Deferred[None] = defer.Deferred()
        self._pending.setdefault(log_file.fileno(), []).append(d)
        if not self._busy:
            self._start()
        return d

    def _start(self) -> None:
        batch, self._pending = self._pending, {}
        self._busy = True
        fds = list(batch)

        def sync_all() -> None:
            for fd in fds:
                os.fsync(fd)

        def done(result: object) -> None:
            self._busy = False
            self.batches += 1
            self.synced += sum(len(v) for v in batch.values())
            for waiters in batch.values():
                for d in waiters:
                    if isinstance(result, Failure):
                        d.errback(result)
                    else:
                        d.callback(None)
            if self._pending:
                self._start()

        defer.ensureDeferred(_await(self._run(sync_all))).addBoth(done)


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable
