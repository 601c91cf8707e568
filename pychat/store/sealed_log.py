"""An append-only log of sealed JSON records, one per line, with an in-memory offset index.

Each line is ``{"s": "<base64 of AES-GCM nonce|ciphertext|tag>"}``; the sealed plaintext is the
record's JSON.  The associated data binds each record to its file and its position, so a
record moved, dropped or reordered fails to open.  Offsets of every line are kept in memory,
so reading record ``i`` costs one seek whatever the log's length, and appending costs one
write.

After a crash the last line may be torn: written only in part, so it has no newline.  On open
such a tail is cut off and reported.  A *complete* line that does not authenticate cannot come
from a crash (lines are written whole, in one append): it is damage, and it is never cut; the
caller decides what to do (:attr:`SealedLog.damaged_at`).

Durability is the caller's business: :meth:`SealedLog.append` writes and notes the record in
the server's journal (store/journal.py); the group committer (store/group_commit.py) syncs the
journal and says when appends are on disk.  A failed write is rolled back at once (the file
truncated to its last complete line); a failed sync rolls the log back to the end of its last
durable batch, failing every append after it, because after an fsync error the kernel may
have dropped those pages: they are never reported as durable.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from twisted.logger import Logger

from pychat.durable import write_atomic
from pychat.store.atrest import RecordSealer
from pychat.store.errors import LogDamaged, StorageFailure, StoreError
from pychat.wire.encoding import b64decode, b64encode
from pychat.wire.message_text import record_bytes

if TYPE_CHECKING:
    from pychat.store.journal import Journal

log = Logger(namespace="pychat.store")

# The system calls that can fail with a full or failing disk, named so tests can inject faults.
_os_write = os.write
_os_ftruncate = os.ftruncate
_b64encode = binascii.b2a_base64

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
        journal: Journal | None = None,
    ) -> None:
        self.path = path
        self._name = path.name  # asked for at every append: pathlib works it out each time
        self._aad_prefix = f"{label}/{path.name}/"
        self._journal = journal
        self.label = label
        self._sealer = sealer
        self._offsets = offsets  # start of each line; the line ends where the next starts
        self._end = end
        #: Where the last successful fsync left the file (what a rollback returns to).
        self.durable_end = end
        #: Index of the first complete record found not to authenticate, if any.
        self.damaged_at: int | None = None
        #: Why appends are refused (a rollback that could not truncate), or None.
        self.broken: str | None = None
        self.closed = False
        #: Whether :meth:`open` started from a saved index instead of scanning everything.
        self.used_index = False
        self._fd = (
            fd if fd is not None else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        )

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        sealer: RecordSealer,
        label: str,
        *,
        on_cut: Callable[[Path, int], None],
        journal: Journal | None = None,
    ) -> SealedLog:
        """Open (or create) the log at ``path``, cutting a torn last line.

        :param on_cut: told ``(path, bytes_cut)`` when a torn tail was removed.
        :raises StoreError: a damaged line that is not the last one shows up only when read;
            the last line is checked here.
        """
        known = _read_index(path, sealer, label)
        offsets, size, complete_end = _scan_lines(path, known)
        opened = cls(path, sealer, label, offsets, complete_end, journal=journal)
        opened.used_index = known is not None
        cut_to = complete_end
        if offsets:
            try:
                opened._read_at(len(offsets) - 1)
            except StoreError:
                if known is not None:
                    # Never trust an index over the file: it may be stale.  Scan it all again.
                    opened.close()
                    index_path(path).unlink(missing_ok=True)
                    return cls.open(path, sealer, label, on_cut=on_cut, journal=journal)
                opened.damaged_at = len(offsets) - 1
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
        records: Iterable[dict[str, Any]],
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

    @property
    def written_end(self) -> int:
        """The byte offset where the last record written so far ends (durable or not yet)."""
        return self._end

    def __len__(self) -> int:
        return len(self._offsets)

    def _aad(self, index: int) -> bytes:
        return f"{self._aad_prefix}{index}".encode()

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

    def iter_records(self, stop: int, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
        """Records 0 up to ``stop``, read ``chunk`` at a time (a long log never whole in
        memory; blocking)."""
        for first in range(0, stop, chunk):
            yield from self.read_range(first, min(stop, first + chunk))

    # -- writing -------------------------------------------------------------------------------

    def find_damage(self) -> int | None:
        """Read every record; return the index of the first that does not authenticate (and
        remember it in :attr:`damaged_at`), or None (blocking: a whole scan)."""
        for index in range(len(self._offsets)):
            try:
                self._read_at(index)
            except StoreError:
                self.damaged_at = index
                return index
        return None

    def append(self, record: dict[str, Any]) -> int:
        """Write ``record`` as the next line; return its index.  Not durable until fsynced.

        :raises StorageFailure: the write failed; the file was truncated back to its last
            complete line, so the next append starts clean.
        :raises LogDamaged: the log holds damage; it takes no more records.
        """
        if self.damaged_at is not None:
            raise LogDamaged(f"{self.path.name}: record {self.damaged_at} is damaged")
        if self.broken is not None and not self._truncate(self._end):
            raise StorageFailure(None, self.broken)
        index = len(self._offsets)
        plain = record_bytes(record)
        sealed = _b64encode(self._sealer.seal(plain, self._aad(index)), newline=False)
        line = b'{"s":"' + sealed + b'"}\n'
        try:
            written = _os_write(self._fd, line)
            if written < len(line):  # a short write: the rest, until it is all there
                view = memoryview(line)[written:]
                while view:
                    view = view[_os_write(self._fd, view) :]
        except OSError as exc:
            self._truncate(self._end)
            failure = StorageFailure(exc.errno, f"writing {self.path.name}: {exc.strerror}")
            _report_write_failure(failure)
            raise failure from None
        if self._journal is not None:
            self._journal.note(self._name, index, self._end, sealed)
        self._offsets.append(self._end)
        self._end += len(line)
        if _failing:
            _report_write_success()
        return index

    def _truncate(self, end: int) -> bool:
        """Cut the file to ``end``; on failure refuse appends until a later cut works."""
        try:
            _os_ftruncate(self._fd, end)
        except OSError as exc:
            self.broken = f"cannot roll {self.path.name} back after a failed write: {exc.strerror}"
            log.critical("{why}; it takes no appends until it can", why=self.broken)
            return False
        self.broken = None
        return True

    def rollback(self) -> int:
        """Forget everything after :attr:`durable_end` (an fsync failed: those pages may be
        lost) and cut the file there; return how many records were dropped."""
        dropped = 0
        while self._offsets and self._offsets[-1] >= self.durable_end:
            self._offsets.pop()
            dropped += 1
        self._end = self.durable_end
        self._truncate(self._end)
        return dropped

    def fileno(self) -> int:
        """The descriptor (to sync at a clean stop)."""
        return self._fd

    def close(self) -> None:
        """Close the descriptor (once everything appended is durable)."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)


_failing: list[str] = []  # the reason writes fail, while they do (one log line per spell)


def _report_write_failure(failure: StorageFailure) -> None:
    if not _failing:
        what = "the disk is full" if failure.full else f"a write failed ({failure})"
        log.error(
            "{what}: messages are refused (storage_full/storage_error) until it can write again",
            what=what,
        )
        _failing.append(str(failure))


def _report_write_success() -> None:
    if _failing:
        _failing.clear()
        log.info("the store can write again")


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


def check_log(path: Path, sealer: RecordSealer, label: str) -> tuple[int, list[str]]:
    """Read every record of the log at ``path`` without changing anything (``pychat-admin
    check``): how many complete records it holds, and what is wrong (a torn tail, records that
    do not authenticate)."""
    offsets, size, end = _scan_lines(path)
    problems = [f"{path}: a torn last record of {size - end} bytes"] if end < size else []
    reader = SealedLog(path, sealer, label, offsets, end, fd=-1)  # never written: no descriptor
    for index in range(len(offsets)):
        try:
            reader._read_at(index)
        except StoreError as exc:
            problems.append(str(exc))
    return len(offsets), problems
