"""The server-wide journal: the commit point of every conversation log append.

Every record appended to a conversation's message or control log is also noted here, as the
exact sealed bytes written to the log with the log's file name, the record's index and its
byte offset.  A group commit writes the noted records to the current journal segment and
syncs that one file: one ``fdatasync`` per batch, however many conversations the batch
touched.  The conversation logs themselves are synced only at a *checkpoint*, when a segment
has grown past :data:`CHECKPOINT_BYTES`: the journal moves to a fresh segment, and a thread
syncs every log written since the old segment began, then deletes it.

After a crash, :func:`recover` replays what the segments hold before any log is opened: for
each log named there, the file is cut back to the offset of its first journaled record and
the journaled records are written again, byte for byte, then synced.  A record that reached
its log but not the journal was never acknowledged and is cut by the replay.  A journal line
without its newline is a torn tail (never acknowledged) and is dropped; a complete line that
does not parse is damage, and the store refuses to start rather than guess.

A control log's compaction (a fresh file renamed over the old one) notes a *compacted*
marker once the fresh file is synced and before the rename: replay ignores that log's
records before the marker and finishes a rename the crash interrupted.

The journal holds what the logs hold: sealed records and keyed-hash file names, nothing in
clear.  Its framing is not sealed again; every record inside is bound to its log file and
index by the at-rest key, so a moved or altered record fails when it is read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from twisted.logger import Logger

from pychat.durable import fsync_dir
from pychat.store.errors import StoreError

log = Logger(namespace="pychat.store")

# The system calls that can fail with a full or failing disk, named so tests can inject faults.
_os_write = os.write
_os_fdatasync = os.fdatasync
_os_ftruncate = os.ftruncate

#: A segment longer than this is retired at the next group commit (and so is what a start
#: after a crash replays at most, plus what came while the checkpoint ran).
CHECKPOINT_BYTES = 16 << 20

_MARKERS = ("compacted", "kept", "deleted")
_SEGMENT = re.compile(r"journal-(\d{8})\.jnl")
_LOG_NAME = re.compile(r"[0-9a-f]{16,128}\.(msg|ctl)")


def segment_path(directory: Path, number: int) -> Path:
    """The file of segment ``number``."""
    return directory / f"journal-{number:08d}.jnl"


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("journal-*.jnl"):
        match = _SEGMENT.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _open_segment(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


@dataclass
class Retired:
    """A segment taken out of use: deleted once every log it covers is synced."""

    path: Path
    fd: int | None
    logs: set[str]


@dataclass
class Batch:
    """What one group commit writes and syncs (taken on the reactor, done in a thread)."""

    fd: int
    data: bytes
    start: int  # the segment's durable size before this batch
    logs: set[str] = field(default_factory=set)


class Journal:
    """The current segment, the records noted since the last group commit, and the segments
    waiting for a checkpoint.  Only the reactor thread calls its methods, except the
    ``run_*`` functions handed to a thread."""

    def __init__(self, directory: Path, number: int, fd: int, *, checkpoint_bytes: int) -> None:
        self.directory = directory
        self.number = number
        self._fd = fd
        self._checkpoint_bytes = checkpoint_bytes
        self._noted: list[bytes] = []
        self._noted_logs: set[str] = set()
        self._logs: set[str] = set()  # logs with records in the current segment
        self.size = 0  # bytes of the current segment that are written and synced
        self.retired: list[Retired] = []
        #: The next segment, created ahead so that switching needs no disk access.
        self.spare: int | None = None
        self.checkpointing = False
        self.checkpoints = 0

    # -- noting records (reactor thread) -------------------------------------------------------

    def note(self, log_name: str, index: int, offset: int, sealed_b64: bytes) -> None:
        """Remember one record just written to a log; it is journaled at the next batch."""
        self._noted.append(
            b'{"f":"%s","i":%d,"o":%d,"s":"%s"}\n' % (log_name.encode(), index, offset, sealed_b64)
        )
        self._noted_logs.add(log_name)

    def note_marker(self, log_name: str, kind: str) -> None:
        """Remember a log's fate: ``compacted`` (its synced compaction replaces it from here
        on), ``kept`` (the compaction was abandoned) or ``deleted`` (the conversation is
        gone: replay removes the file unless a new one was begun after)."""
        if kind not in _MARKERS:
            raise ValueError(f"not a journal marker: {kind}")
        self._noted.append(b'{"f":"%s","t":"%s"}\n' % (log_name.encode(), kind.encode()))

    def take(self) -> Batch:
        """The records noted so far, to write and sync as one batch."""
        batch = Batch(self._fd, b"".join(self._noted), self.size, set(self._noted_logs))
        self._logs |= self._noted_logs
        self._noted, self._noted_logs = [], set()
        return batch

    def forget_noted(self) -> None:
        """Drop noted records that will not be written (their logs were rolled back)."""
        self._noted, self._noted_logs = [], set()

    def committed(self, batch: Batch) -> None:
        """``batch`` is on disk."""
        if batch.fd == self._fd:
            self.size = batch.start + len(batch.data)

    # -- the batch's work (a thread) -----------------------------------------------------------

    @staticmethod
    def run_batch(batch: Batch) -> None:
        """Write and sync ``batch``; on failure cut the segment back to where it was (and if
        that cut fails too, the next batch makes it first).

        :raises OSError: the cut, the write or the sync failed (nothing of it is durable).
        """
        if os.fstat(batch.fd).st_size != batch.start:
            _os_ftruncate(batch.fd, batch.start)  # what a failed batch left behind
        try:
            view = memoryview(batch.data)
            while view:
                view = view[_os_write(batch.fd, view) :]
            _os_fdatasync(batch.fd)
        except OSError:
            with contextlib.suppress(OSError):
                _os_ftruncate(batch.fd, batch.start)
            raise

    # -- checkpoints ---------------------------------------------------------------------------

    def wants_checkpoint(self) -> bool:
        """The segment is long enough to retire, its successor is ready, and no checkpoint
        is running."""
        return (
            self.size >= self._checkpoint_bytes
            and self.spare is not None
            and not self.checkpointing
        )

    def switch(self) -> None:
        """Start writing the spare segment; the current one is retired until a checkpoint
        has synced the logs it covers.  Only while no batch is in flight."""
        if self.spare is None:
            raise RuntimeError("no spare journal segment")
        self.retired.append(
            Retired(segment_path(self.directory, self.number), self._fd, set(self._logs))
        )
        self.number += 1
        self._fd, self.spare = self.spare, None
        self._logs = set(self._noted_logs)
        self.size = 0

    def run_checkpoint(self, retired: list[Retired]) -> int:
        """Sync every log the ``retired`` segments cover, delete those segments, and create
        the next spare segment; return its descriptor (blocking: a thread)."""
        for name in sorted(set().union(*(r.logs for r in retired))):
            try:
                fd = os.open(self.directory / name, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(self.directory)  # new logs' names, before the journal that held them goes
        for r in retired:
            if r.fd is not None:
                os.close(r.fd)
                r.fd = None
            r.path.unlink(missing_ok=True)
        spare = _open_segment(segment_path(self.directory, self.number + 1))
        fsync_dir(self.directory)
        return spare

    def close(self, sync_logs: Callable[[], None]) -> None:
        """At a clean stop, once every batch is done: sync the logs (``sync_logs``) and
        delete every segment, so the next start replays nothing (blocking)."""
        sync_logs()
        fsync_dir(self.directory)
        for fd in [r.fd for r in self.retired] + [self._fd, self.spare]:
            if fd is not None:
                os.close(fd)
        for _, path in _segments(self.directory):
            path.unlink()
        fsync_dir(self.directory)


# -- recovery ------------------------------------------------------------------------------------


@dataclass
class _Replay:
    """One log's records found in the journal, after its last compaction marker."""

    records: list[tuple[int, int, bytes]] = field(default_factory=list)
    compacted: bool = False
    deleted: bool = False


def recover(
    directory: Path,
    *,
    on_cut: Callable[[Path, int], None],
    checkpoint_bytes: int = CHECKPOINT_BYTES,
) -> Journal:
    """Replay every segment into the logs it names, sync them, delete the segments, and
    return a journal on a fresh segment (blocking: at start, before any log is opened).

    :raises StoreError: a damaged journal line, or a log that lost what a checkpoint synced.
    """
    segments = _segments(directory)
    replays: dict[str, _Replay] = {}
    for _, path in segments:
        _read_segment(path, replays, on_cut)
    for name, replay in replays.items():
        _replay_log(directory / name, replay, on_cut)
    if replays:
        fsync_dir(directory)
    for _, path in segments:
        path.unlink()
    number = segments[-1][0] + 1 if segments else 1
    journal = Journal(
        directory,
        number,
        _open_segment(segment_path(directory, number)),
        checkpoint_bytes=checkpoint_bytes,
    )
    journal.spare = _open_segment(segment_path(directory, number + 1))
    fsync_dir(directory)
    return journal


def _read_segment(
    path: Path, replays: dict[str, _Replay], on_cut: Callable[[Path, int], None]
) -> None:
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        on_cut(path, len(data) - complete)  # torn: never synced, never acknowledged
    for number, line in enumerate(data[:complete].splitlines(), 1):
        try:
            entry = json.loads(line)
            name = entry["f"]
            if not isinstance(name, str) or not _LOG_NAME.fullmatch(name):
                raise ValueError("not a log of this store")
            marker = entry.get("t")
            if marker == "compacted":  # the log before it is synced, and superseded
                replays[name] = _Replay(compacted=True)
                continue
            if marker == "kept":  # the compaction was abandoned: the old log stays
                replays.setdefault(name, _Replay()).compacted = False
                continue
            if marker == "deleted":  # the conversation was deleted: nothing before counts
                replays[name] = _Replay(deleted=True)
                continue
            index, offset, sealed = entry["i"], entry["o"], entry["s"]
            if not (isinstance(index, int) and isinstance(offset, int) and isinstance(sealed, str)):
                raise ValueError("bad field types")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(path, f"journal line {number} is damaged ({exc})") from None
        replay = replays.setdefault(name, _Replay())
        replay.records.append((index, offset, b'{"s":"%s"}\n' % sealed.encode()))


def _replay_log(path: Path, replay: _Replay, on_cut: Callable[[Path, int], None]) -> None:
    if replay.deleted and not replay.records:
        for gone in (path, path.with_name(path.name + ".idx")):
            gone.unlink(missing_ok=True)  # deleted; the crash came before the unlink
        return
    compacted = path.with_name(path.name + ".compact")
    if compacted.exists():
        if replay.compacted and not replay.records:
            os.replace(compacted, path)  # the compaction was synced; its rename was cut short
        else:
            # Not journaled as done, abandoned, or left by a later attempt that failed (records
            # after the marker mean its rename was done): the log as it is stands.
            compacted.unlink()
    if not replay.records:
        return
    first_index, start, _ = replay.records[0]
    position, index = start, first_index
    for record_index, offset, line in replay.records:
        if record_index != index or offset != position:
            raise StoreError(path, f"the journal's records for it are not contiguous at {index}")
        position += len(line)
        index += 1
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size < start:
            raise StoreError(
                path, f"it is shorter ({size} bytes) than its last checkpoint ({start})"
            )
        if size > position:
            _report_unjournaled(fd, path, position, size, on_cut)
        os.ftruncate(fd, start)
        os.lseek(fd, start, os.SEEK_SET)
        view = memoryview(b"".join(line for _, _, line in replay.records))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _report_unjournaled(
    fd: int, path: Path, position: int, size: int, on_cut: Callable[[Path, int], None]
) -> None:
    """Say what is cut past the journal's last record of a log: whole records written after
    the last commit (never acknowledged, so nobody was told of them), and a torn one (an
    unfinished line) if the crash came in the middle of a write."""
    tail = os.pread(fd, size - position, position)
    whole = tail.rfind(b"\n") + 1
    records = tail[:whole].count(b"\n")
    if records:
        log.info(
            "dropped {k} record(s) ({n} bytes) written to {path} after the last commit: "
            "never acknowledged, so no one was told of them",
            k=records,
            n=whole,
            path=str(path),
        )
    if whole < len(tail):
        on_cut(path, len(tail) - whole)  # an unfinished line: torn
