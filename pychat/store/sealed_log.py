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

from pychat.durable import write_atomic
from pychat.encoding import b64decode, b64encode
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
        #: Whether :meth:`open` started from a saved index instead of scanning everything.
        self.used_index = False
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
        known = _read_index(path, sealer, label)
        offsets, size, complete_end = _scan_lines(path, known)
        opened = cls(path, sealer, label, offsets, complete_end)
        opened.used_index = known is not None
        cut_to = complete_end
        if offsets:
            try:
                opened._read_at(len(offsets) - 1)
            except StoreError:
                if known is not None:
                    # Never cut on the word of an index: it may be stale.  Scan it all again.
                    opened.close()
                    index_path(path).unlink(missing_ok=True)
                    return cls.open(path, sealer, label, on_cut=on_cut)
                cut_to = offsets.pop()
                opened._end = cut_to
        if cut_to < size:
            with open(path, "r+b") as f:
                f.truncate(cut_to)
                f.flush()
                os.fsync(f.fileno())
            on_cut(path, size - cut_to)
        return opened

    def write_index(self) -> None:
        """Save the line offsets next to the log (``NAME.idx``), so the next open reads only
        what was appended after this point instead of scanning the whole log.

        Call it only when everything appended is durable (at a clean stop).  The index is
        sealed like the records; a missing, damaged or stale one just means a full scan.
        """
        payload = json.dumps({"end": self._end, "offsets": b64encode(self._offsets.tobytes())})
        sealed = self._sealer.seal(payload.encode(), _index_aad(self.path, self.label))
        body = {"format": INDEX_FORMAT, "v": 1, "sealed": b64encode(sealed)}
        write_atomic(index_path(self.path), json.dumps(body).encode() + b"\n", mode=0o600)

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


INDEX_FORMAT = "pychat-log-index"


def index_path(log_path: Path) -> Path:
    """Where the saved offsets of ``log_path`` live."""
    return log_path.with_name(log_path.name + ".idx")


def _index_aad(log_path: Path, label: str) -> bytes:
    return f"index/{label}/{log_path.name}".encode()


def _read_index(path: Path, sealer: RecordSealer, label: str) -> tuple[array[int], int] | None:
    """The saved (offsets, end) of ``path`` if a usable index is there, else None."""
    idx = index_path(path)
    if not idx.exists() or not path.exists():
        return None
    try:
        body = json.loads(idx.read_bytes())
        if body.get("format") != INDEX_FORMAT or body.get("v") != 1:
            return None
        payload = json.loads(sealer.open(b64decode(body["sealed"]), _index_aad(path, label)))
        offsets: array[int] = array("q")
        offsets.frombytes(b64decode(payload["offsets"]))
        end = int(payload["end"])
    except (OSError, ValueError, KeyError, TypeError, InvalidTag):
        return None
    if end > path.stat().st_size or (offsets and offsets[-1] >= end):
        return None  # the log is shorter than the index says: an older copy; scan it all
    return offsets, end


def _scan_lines(
    path: Path, known: tuple[array[int], int] | None = None
) -> tuple[array[int], int, int]:
    """(start offset of every complete line, file size, end of the last complete line),
    scanning from the end of ``known`` (saved offsets) when given."""
    offsets: array[int] = array("q")
    if not path.exists():
        return offsets, 0, 0
    size = path.stat().st_size
    position = 0
    if known is not None:
        offsets, position = array("q", known[0]), known[1]
    carry = b""
    with open(path, "rb") as f:
        f.seek(position)
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
