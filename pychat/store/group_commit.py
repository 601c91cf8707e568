"""Group commit: appends become durable in batches, one journal sync per batch.

While a batch is being synced, new appends gather for the next one, so under load many
messages share one sync, and none is acknowledged before the sync of its own batch finished.
The batch's cost does not depend on how many conversations it touched: only the journal
(store/journal.py) is synced; the conversation logs are synced at checkpoints.

A failed write or sync of the journal fails the whole batch and everything noted after it:
every log written since its last durable batch is rolled back and every waiter fails with
:class:`StorageFailure`.  An error is never retried as if it had worked.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from itertools import chain
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StorageFailure
from pychat.store.journal import Journal
from pychat.store.sealed_log import SealedLog

log = Logger(namespace="pychat.store")


class Phase(enum.Enum):
    """Where the committer is::

        idle --an append, or request()--> syncing --the batch is durable--+
          ^                                  ^                            |
          |                                  +--- more was appended ------+
          |                                                               v
          +---------- its waiters have heard, nothing new ---------- telling

    In ``telling`` no batch is in flight, but the waiters of the batch that just became
    durable are being told, and what they append gathers for one next batch rather than
    starting one each.  A failed batch goes back to ``idle`` once its waiters have failed.
    """

    IDLE = "idle"
    SYNCING = "syncing"
    TELLING = "telling"


#: Told once its batch is durable (None) or failed (the error; then it never will be).
Waiter = Callable[[BaseException | None], None]
_Waiters = dict[SealedLog | None, list[Waiter]]


class GroupCommitter:
    """Batches journal syncs and runs checkpoints beside them."""

    def __init__(self, run_blocking: BlockingRunner, journal: Journal) -> None:
        self._run = run_blocking
        self.journal = journal
        self._pending: _Waiters = {}
        self.phase = Phase.IDLE
        #: A batch was asked for while one was in flight: run one after it.
        self._again = False
        #: Waiters of durable batches not told yet, oldest batch first.
        self._durable: deque[Iterator[Waiter]] = deque()
        self._telling = False
        #: Paced telling (see :meth:`pace_telling`): the clock and the waiters per turn.
        self._pace: tuple[IReactorTime, int] | None = None
        self._more_telling: IDelayedCall | None = None
        #: Called at the start of every batch, to append what rides it (read markers).
        self.before_batch: list[Callable[[], None]] = []
        self._idle: list[defer.Deferred[None]] = []
        self._checkpoint: defer.Deferred[None] | None = None
        self.batches = 0
        self.synced = 0

    def pace_telling(self, clock: IReactorTime, per_turn: int) -> None:
        """Tell at most ``per_turn`` waiters of durable batches in one reactor turn, and the
        rest in the turns after (through ``clock``).

        Told at once, a batch of thousands of messages held every reply and push for tens of
        milliseconds: the writes of a turn leave at its end.  Clients waiting for those
        replies sat idle meanwhile, and then the server, waiting for what they sent next
        (a tenth of its time at 50 conversations with 64 messages in flight each).  In slices
        the first replies leave while the rest are still being made.  Earlier batches' waiters
        are still told first, and a failed batch's waiters only after all of them."""
        self._pace = (clock, per_turn)

    def durable(self, log_file: SealedLog | None) -> defer.Deferred[None]:
        """Fires once everything appended to ``log_file`` so far (and every marker noted in
        the journal) is on disk, or fails with :class:`StorageFailure` (then it never will)."""
        d: defer.Deferred[None] = defer.Deferred()
        self.when_durable(log_file, partial(fire, d))
        return d

    def when_durable(self, log_file: SealedLog | None, waiter: Waiter) -> None:
        """:meth:`durable` without a Deferred, for the busiest path: ``waiter(None)`` once
        it is on disk, ``waiter(StorageFailure(...))`` if it never will be."""
        waiting = self._pending.get(log_file)
        if waiting is None:
            self._pending[log_file] = [waiter]
        else:
            waiting.append(waiter)
        if self.phase is Phase.IDLE:
            self._start()

    def request(self) -> None:
        """Run a batch soon even if nobody waits for one (for what :attr:`before_batch`
        appends)."""
        if self.phase is Phase.IDLE:
            self._start()
        else:
            self._again = True

    def marker(self, log_name: str, kind: str) -> defer.Deferred[None]:
        """Journal a log's marker (``compacted``, ``kept`` or ``deleted``); fires once it is
        durable."""
        self.journal.note_marker(log_name, kind)
        return self.durable(None)

    def _start(self) -> None:
        self.phase, self._again = Phase.SYNCING, False
        for hook in self.before_batch:
            hook()  # its appends join this batch (busy: durable() starts nothing)
        if self.journal.wants_checkpoint():
            self._begin_checkpoint()  # no batch is in flight: the segment can change now
        waiters, self._pending = self._pending, {}
        if not waiters:
            self.phase = Phase.IDLE
            self._idle_unless_busy()
            return
        ends = {f: f.written_end for f in waiters if f is not None}
        batch = self.journal.take()

        def done(result: Failure | None) -> None:
            self.batches += 1
            if isinstance(result, Failure):
                self._tell_durable(everything=True)  # earlier batches' waiters hear first
                # Still busy while they hear: whatever they append joins the next batch.
                self._fail(waiters, result.value or RuntimeError("batch failed"))
                self.phase = Phase.IDLE
                if self._pending or self._again:
                    self._start()
                self._idle_unless_busy()
                return
            self.journal.committed(batch)
            for log_file, ds in waiters.items():
                if log_file is not None:
                    log_file.durable_end = max(log_file.durable_end, ends[log_file])
                self.synced += len(ds)
            # The next batch goes to the disk first, so its sync overlaps with the work of
            # this batch's waiters (replies, pushes); what they append joins the batch after
            # it.  With nothing to sync yet, the committer stays busy while they hear, so what
            # they append gathers into one batch.  Never two batches side by side.
            self._durable.append(chain.from_iterable(waiters.values()))
            self.phase = Phase.IDLE
            started = bool(self._pending or self._again)
            if started:
                self._start()
            else:
                self.phase = Phase.TELLING
            self._tell_durable()
            if not started:
                self.phase = Phase.IDLE
                if self._pending or self._again:
                    self._start()
            self._idle_unless_busy()

        _as_deferred(self._run(Journal.run_batch, batch)).addBoth(done)

    def _tell_durable(self, *, everything: bool = False) -> None:
        """Tell the waiters of the batches that are durable, oldest batch first (a runner that
        finishes a batch at once calls back inside :meth:`_start`: its waiters wait their
        turn behind those of the batch before it).  Paced, at most so many in this turn
        unless ``everything``; the rest in a later turn."""
        if self._telling:
            return
        self._telling = True
        left = -1 if everything or self._pace is None else self._pace[1]
        try:
            while self._durable:
                waiters = self._durable[0]
                for waiter in waiters:
                    _tell(waiter, None)
                    left -= 1
                    if left == 0:
                        self._tell_later()
                        return
                self._durable.popleft()
        finally:
            self._telling = False

    def _tell_later(self) -> None:
        """Go on telling in a later turn (its writes leave in between)."""
        if self._more_telling is None and self._pace is not None:
            self._more_telling = self._pace[0].callLater(0, self._go_on_telling)

    def _go_on_telling(self) -> None:
        self._more_telling = None
        self._tell_durable()
        if self.phase is Phase.IDLE and (self._pending or self._again):
            self._start()
        self._idle_unless_busy()

    def _idle_unless_busy(self) -> None:
        """Tell who waits for quiet, once no batch is in flight and every waiter has heard
        (those waiters appended nothing that started another batch)."""
        if self.phase is Phase.IDLE and not self._telling and not self._durable:
            self._fire_idle()

    def _fire_idle(self) -> None:
        idle, self._idle = self._idle, []
        for d in idle:
            d.callback(None)

    def _fail(self, waiters: _Waiters, problem: BaseException) -> None:
        later, self._pending = self._pending, {}  # noted after this batch: cut too
        self.journal.forget_noted()
        code = problem.errno if isinstance(problem, OSError) else None
        reason = getattr(problem, "strerror", None) or str(problem)
        dropped = 0
        for log_file in {*waiters, *later}:
            if log_file is not None and not log_file.closed:
                dropped += log_file.rollback()
        log.error(
            "the journal could not be written or synced ({why}); rolled back {n} "
            "unacknowledged records",
            why=reason,
            n=dropped,
        )
        for ds in [*waiters.values(), *later.values()]:
            for waiter in ds:
                _tell(waiter, StorageFailure(code, f"syncing the journal: {reason}"))

    # -- checkpoints ---------------------------------------------------------------------------

    def _begin_checkpoint(self) -> None:
        journal = self.journal
        journal.switch()
        retired = list(journal.retired)

        def finished(result: int | Failure) -> None:
            self._checkpoint = None
            journal.checkpointing = False
            if isinstance(result, Failure):
                log.warn(
                    "a journal checkpoint failed ({e}); the old segments stay until the next",
                    e=result.value,
                )
                return
            journal.retired = [r for r in journal.retired if r not in retired]
            journal.spare = result
            journal.checkpoints += 1

        journal.checkpointing = True
        running: defer.Deferred[int] = defer.ensureDeferred(
            _await(self._run(journal.run_checkpoint, retired))
        )
        self._checkpoint = running.addBoth(finished)

    async def close(self, open_logs: list[SealedLog]) -> None:
        """Wait for every batch and checkpoint, sync the open logs and delete the journal's
        segments (at a clean stop, once nothing appends any more)."""
        if self.phase is not Phase.IDLE:
            idle: defer.Deferred[None] = defer.Deferred()
            self._idle.append(idle)
            await idle
        if self._checkpoint is not None:
            await _shared(self._checkpoint)

        def sync_logs() -> None:
            for log_file in open_logs:
                if not log_file.closed:
                    os.fsync(log_file.fileno())

        await self._run(self.journal.close, sync_logs)


def fire(d: defer.Deferred[None], error: BaseException | None) -> None:
    """A :data:`Waiter` that fires ``d`` (bound with ``functools.partial``)."""
    if error is None:
        d.callback(None)
    else:
        d.errback(error)


def _tell(waiter: Waiter, error: BaseException | None) -> None:
    """Call one waiter; a bug in it is logged and never keeps the others from hearing."""
    try:
        waiter(error)
    except Exception:
        log.failure("a durability waiter failed")


async def _shared(d: defer.Deferred[None]) -> None:
    """Wait for ``d`` to fire, leaving its result to its own callbacks."""
    waiter: defer.Deferred[None] = defer.Deferred()

    def pass_on(result: object) -> object:
        waiter.callback(None)
        return result

    d.addBoth(pass_on)
    await waiter


def _as_deferred(awaitable: Awaitable[Any]) -> defer.Deferred[Any]:
    """The runner's result as a Deferred (it usually is one already: no coroutine per batch)."""
    if isinstance(awaitable, defer.Deferred):
        return awaitable
    return defer.ensureDeferred(_await(awaitable))


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
