"""Conversation control logs (creation, key epochs, read markers): appending, and
compacting a long one into its current state without blocking the reactor.

While a compaction runs in the blocking runner, records that come wait in memory and go to
the new log once it is in place, so nothing is acknowledged in a file being replaced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from pychat.durable import fsync_dir
from pychat.store.atrest import RecordSealer
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import LogDamaged, StorageFailure
from pychat.store.sealed_log import GroupCommitter, SealedLog

if TYPE_CHECKING:
    from pychat.store.conversations import Conversation

log = Logger(namespace="pychat.store")

#: A control log with more records than this is rewritten with just the current state, so
#: neither it nor the time to read it at start grows with the number of messages.
CONTROL_COMPACT_AT = 1000


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

    def _compaction_records(self, conv: Conversation) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = [
            {"t": "open", "id": conv.id, "members": list(conv.members), "time": conv.created}
        ]
        records += [{"t": "epoch", "envelope": e} for e in conv.epochs]
        records += [{"t": "read", "user": u, "seq": s} for u, s in sorted(conv.read.items())]
        return records

    def _rewrite(self, path: Path, records: list[dict[str, Any]]) -> SealedLog:
        """Write ``records`` as the new log at ``path`` (temp, fsync, rename, fsync of the
        directory) and open it.  Blocking: runs in a thread, or at start-up."""
        tmp = path.with_name(path.name + ".compact")
        try:
            SealedLog.write_fresh(path, self._sealer, "ctl", records, at=tmp)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError:
            tmp.unlink(missing_ok=True)  # the original is intact until the rename
            raise
        return SealedLog.open(path, self._sealer, "ctl", on_cut=self._report_cut)

    def compact_at_start(self, conv: Conversation) -> None:
        """Compaction while loading (nothing else runs yet)."""
        if len(conv.control) < CONTROL_COMPACT_AT:
            return
        try:
            new = self._rewrite(conv.control.path, self._compaction_records(conv))
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
        await self._committer.durable(old)
        try:
            new: SealedLog = await self._run(self._rewrite, old.path, records)
        except OSError as exc:
            log.warn("could not compact {p} for now: {e}", p=str(old.path), e=exc)
            new = old
        else:
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
