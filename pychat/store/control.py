"""Conversation control logs (creation, key epochs, read markers): appending, and
compacting a long one into its current state without blocking the reactor.

While a compaction runs in the blocking runner, records that come wait in memory and go to
the new log once it is in place, so nothing is acknowledged in a file being replaced.  The
steps are journaled (store/journal.py) so that a crash at any point leaves one whole log:
the fresh file and the old one are synced, a ``compacted`` marker is made durable, then the
fresh file is renamed over the old; a rename that fails is journaled as ``kept``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.durable import fsync_dir
from pychat.store.atrest import RecordSealer
from pychat.store.blocking import BlockingRunner
from pychat.store.conversation_files import LoggedConversation as Conversation
from pychat.store.errors import LogDamaged, StorageFailure
from pychat.store.group_commit import GroupCommitter
from pychat.store.sealed_log import SealedLog

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

log = Logger(namespace="pychat.store")

#: A control log with more records than this is rewritten with just the current state, so
#: neither it nor the time to read it at start grows with the number of messages.
CONTROL_COMPACT_AT = 1000


def open_record(conv: Conversation) -> dict[str, Any]:
    """A control log's first record: the conversation's creation (a group's with its chain,
    which a compaction folds in)."""
    record: dict[str, Any] = {
        "t": "open",
        "id": conv.id,
        "members": list(conv.members),
        "time": conv.created,
    }
    if conv.group is not None:
        record["group"] = conv.group.statements
    return record


class ControlLogs:
    """Appends to and compacts the control logs of one conversation store."""

    def __init__(
        self,
        sealer: RecordSealer,
        run_blocking: BlockingRunner,
        committer: GroupCommitter,
        report_cut: Callable[[Path, int], None],
    ) -> None:
        self._sealer = sealer
        self._run = run_blocking
        self._committer = committer
        self._report_cut = report_cut
        #: Read markers moved in memory and not yet appended, by conversation id.
        self._unsaved_reads: dict[str, tuple[Conversation, set[str]]] = {}
        committer.before_batch.append(self._save_reads)
        #: Paced (see :meth:`pace_reads`): markers wait for the timer, not the next batch.
        self._pace: tuple[IReactorTime, float] | None = None
        self._reads_due = True
        self._reads_timer: IDelayedCall | None = None

    # -- read markers --------------------------------------------------------------------------

    def pace_reads(self, clock: IReactorTime, interval: float) -> None:
        """Append moved markers at most once every ``interval`` seconds (the server does).

        A marker that moved because its user sent a message would otherwise cost a sealed
        record at nearly every group commit under load (one per message with one message in
        flight per conversation).  A crash loses at most ``interval`` seconds of such moves:
        those messages show as unread again, and nothing else is lost."""
        self._pace = (clock, interval)
        self._reads_due = False

    def read_moved(self, conv: Conversation, username: str) -> None:
        """``username``'s marker in ``conv`` moved (in memory): append it at the start of the
        next group commit (paced: the first one after the timer), once however often it
        moves meanwhile."""
        unsaved = self._unsaved_reads.get(conv.id)
        if unsaved is None:
            self._unsaved_reads[conv.id] = (conv, {username})
        else:
            unsaved[1].add(username)
        if self._pace is None:
            self._committer.request()
        elif self._reads_timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._pace is not None and self._reads_timer is None:
            clock, interval = self._pace
            self._reads_timer = clock.callLater(interval, self._reads_now)

    def _reads_now(self) -> None:
        self._reads_timer = None
        self._reads_due = True
        if self._unsaved_reads:
            self._committer.request()

    def forget(self, conv: Conversation) -> None:
        """A deleted conversation's markers are not saved any more."""
        self._unsaved_reads.pop(conv.id, None)

    def save_reads_soon(self) -> None:
        """Make sure a batch runs for the markers not yet appended (at a clean stop)."""
        if self._reads_timer is not None and self._reads_timer.active():
            self._reads_timer.cancel()
        self._reads_timer = None
        self._reads_due = True
        if self._unsaved_reads:
            self._committer.request()

    def _save_reads(self) -> None:
        # Called once a message is durable: nothing here may turn its acknowledgement into an
        # error.  A marker that cannot be written now stays in memory and is tried again with
        # the next batch (a full disk must not fail a send that was stored).
        if not self._reads_due:
            return
        self._reads_due = self._pace is None
        unsaved, self._unsaved_reads = self._unsaved_reads, {}
        for conv, users in unsaved.values():
            for username in sorted(users):
                record = {"t": "read", "user": username, "seq": conv.read[username]}
                try:
                    saved = self.append(conv, record)
                except (StorageFailure, LogDamaged) as exc:
                    self._read_not_saved(Failure(exc), conv, username)
                    continue
                saved.addErrback(self._read_not_saved, conv, username)
            self.maybe_compact(conv)

    def _read_not_saved(self, failure: Failure, conv: Conversation, username: str) -> None:
        log.warn("read marker not saved for now: {e}", e=failure.value)
        self._unsaved_reads.setdefault(conv.id, (conv, set()))[1].add(username)
        self._arm_timer()  # paced: tried again after the interval; else with the next batch

    def _compaction_records(self, conv: Conversation) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = [open_record(conv)]
        records += [{"t": "epoch", "envelope": e} for e in conv.epochs]
        records += [{"t": "read", "user": u, "seq": s} for u, s in sorted(conv.read.items())]
        return records

    def _write_compaction(self, old: SealedLog, records: list[dict[str, Any]]) -> Path:
        """Write ``records`` as the fresh log beside ``old`` and sync both (blocking: a
        thread, or at start-up); return the fresh file's path."""
        tmp = old.path.with_name(old.path.name + ".compact")
        try:
            SealedLog.write_fresh(old.path, self._sealer, "ctl", records, at=tmp)
            if not old.closed:
                os.fsync(old.fileno())  # the journal will stop replaying it
        except (OSError, StorageFailure) as exc:
            tmp.unlink(missing_ok=True)  # the original is intact until the rename
            if isinstance(exc, StorageFailure):  # a full disk while writing the fresh file
                raise OSError(exc.errno, str(exc)) from None
            raise
        return tmp

    def _install(self, path: Path, tmp: Path) -> SealedLog:
        """Rename the fresh log over the old one, sync the directory, open it (blocking)."""
        try:
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return SealedLog.open(
            path, self._sealer, "ctl", on_cut=self._report_cut, journal=self._committer.journal
        )

    def compact_at_start(self, conv: Conversation) -> None:
        """Compaction while loading: nothing else runs yet and the journal is empty (replayed
        just before), so the rename needs no marker."""
        if len(conv.control) < CONTROL_COMPACT_AT:
            return
        try:
            tmp = self._write_compaction(conv.control, self._compaction_records(conv))
            new = self._install(conv.control.path, tmp)
        except OSError as exc:
            log.warn("could not compact {p} for now: {e}", p=str(conv.control.path), e=exc)
            return
        conv.control.close()
        conv.control = new

    def maybe_compact(self, conv: Conversation) -> None:
        """Rewrite a long control log as its current state, in a thread.

        Records that come meanwhile wait in memory (:meth:`append`) and go to the new
        log once it is in place, so nothing is acknowledged in a file that is being replaced.
        """
        if len(conv.control) < CONTROL_COMPACT_AT or conv.compacting is not None:
            return
        conv.compacting = []
        old = conv.control
        records = self._compaction_records(conv)
        # The old log's appends are all on disk before it is replaced.
        d = defer.ensureDeferred(self._compact(conv, old, records))
        d.addErrback(lambda f: log.failure("compaction failed", failure=f))

    async def _compact(
        self, conv: Conversation, old: SealedLog, records: list[dict[str, Any]]
    ) -> None:
        new = old
        try:
            await self._committer.durable(old)
            tmp: Path = await self._run(self._write_compaction, old, records)
        except (OSError, StorageFailure) as exc:
            log.warn("could not compact {p} for now: {e}", p=str(old.path), e=exc)
        else:
            new = await self._replace(old, tmp)
        if new is not old:
            conv.control = new
            old.close()
            log.info("compacted a conversation control log to {n} records", n=len(records))
        waiting, conv.compacting = conv.compacting or [], None
        for record, done in waiting:
            try:
                new.append(record)
            except (StorageFailure, LogDamaged) as exc:
                done.errback(exc)
                continue
            self._committer.durable(new).chainDeferred(done)

    async def _replace(self, old: SealedLog, tmp: Path) -> SealedLog:
        """Journal the compaction, then rename; return the log to use from now on."""
        try:
            await self._committer.marker(old.path.name, "compacted")
        except StorageFailure as exc:
            log.warn("could not compact {p} for now: {e}", p=str(old.path), e=exc)
            try:
                await self._run(tmp.unlink, True)
            except OSError as again:
                log.warn("could not remove {p}: {e}", p=str(tmp), e=again)
            return old
        try:
            new: SealedLog = await self._run(self._install, old.path, tmp)
        except OSError as exc:
            log.warn("could not compact {p} for now: {e}", p=str(old.path), e=exc)
            try:
                await self._committer.marker(old.path.name, "kept")
            except StorageFailure as again:
                log.critical(
                    "could not journal that the compaction of {p} was abandoned ({e}); if "
                    "{p}.compact is still there at the next start, remove it first",
                    p=str(old.path),
                    e=again,
                )
            return old
        return new

    def append(self, conv: Conversation, record: dict[str, Any]) -> defer.Deferred[None]:
        """Append to the control log (or queue it during a compaction); fires when durable.

        :raises StorageFailure: the write failed (not while compacting: then the Deferred fails).
        """
        if conv.compacting is not None:
            done: defer.Deferred[None] = defer.Deferred()
            conv.compacting.append((record, done))
            return done
        conv.control.append(record)
        return self._committer.durable(conv.control)
