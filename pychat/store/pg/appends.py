"""One conversation's appends on their way into PostgreSQL, in batches.

While a conversation's transaction is under way, the appends asked for meanwhile wait; when it
commits they go together in the next one (in the order they were asked for).  A sender with
many messages in flight so costs one commit, one sync of the database's log and one trip to a
pool thread per batch rather than per message (the flat files' group commit, per
conversation).  Every message of a batch is answered only after that batch's COMMIT; a batch
that fails fails each of its messages with the same error (nothing of it was stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.store.conversation import NewMessage
from pychat.wire.shapes import StoredMessage

log = Logger(namespace="pychat.store")

#: Runs one batch in one transaction: ``[(client key, message), ...]`` in, each message's
#: stored record and the bytes it added out, in the same order.
RunBatch = Callable[
    [list[tuple[str, NewMessage]]], "defer.Deferred[list[tuple[StoredMessage, int]]]"
]

#: Told how one message ended: its stored record and size, or the failure of its batch.
Outcome = Callable[[tuple[StoredMessage, int] | Failure], None]

#: The most messages one transaction stores (a bound on its size and on what a failure takes).
BATCH_MAX = 256


@dataclass
class _Batch:
    items: list[tuple[str, NewMessage]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    #: Fired once the batch has committed or failed (``wait_durable``).
    waiters: list[defer.Deferred[None]] = field(default_factory=list)


class ConversationAppends:
    """The queue of one conversation's appends: at most one transaction at a time."""

    def __init__(self, run: RunBatch) -> None:
        self._run = run
        self._waiting: list[_Batch] = []
        self._running: _Batch | None = None

    def append(self, client_key: str, message: NewMessage, outcome: Outcome) -> None:
        """Store ``message`` after every append asked for before it; ``outcome`` is told."""
        if not self._waiting or len(self._waiting[-1].items) >= BATCH_MAX:
            self._waiting.append(_Batch())
        batch = self._waiting[-1]
        batch.items.append((client_key, message))
        batch.outcomes.append(outcome)
        if self._running is None:
            self._next()

    def settled(self) -> defer.Deferred[None]:
        """Fires once every append asked for so far has committed or failed."""
        last = self._waiting[-1] if self._waiting else self._running
        if last is None:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        last.waiters.append(waiter)
        return waiter

    @property
    def idle(self) -> bool:
        """Nothing under way and nothing waiting."""
        return self._running is None and not self._waiting

    def _next(self) -> None:
        if not self._waiting:
            return
        batch = self._running = self._waiting.pop(0)
        done = self._run(batch.items)
        done.addBoth(self._ended, batch)

    def _ended(self, result: list[tuple[StoredMessage, int]] | Failure, batch: _Batch) -> None:
        # While they are told, this batch still counts as under way: an append asked for
        # from inside an outcome (a reader's push may lead to one) waits for the next batch.
        for k, outcome in enumerate(batch.outcomes):
            try:
                outcome(result if isinstance(result, Failure) else result[k])
            except Exception:  # one reader's trouble must not keep the others unanswered
                log.failure("telling an append's outcome failed")
        for waiter in batch.waiters:
            waiter.callback(None)
        self._running = None
        self._next()
