"""Rate limits with an injected clock, keyed by account or address.

Two shapes:

- :class:`FailureBackoff` for failed logins: a key has some free failures, then each further
  failure locks it for a delay that doubles up to a cap; a success clears it; a quiet key is
  forgotten.
- :class:`TokenBucket` for actions that are fine in moderation (signups, login attempts per
  address): ``capacity`` at once, refilled at ``capacity`` per ``period`` seconds.

Both hold at most ``max_keys`` keys (oldest forgotten first), so a flood of addresses or names
cannot grow memory without bound.  Callers ask ``retry_after(key)``: 0 means go ahead.

Nodes that share a database share the limits that protect accounts: each change made here is
told (``tell(op, key, n, at)``) and the other nodes make the same change with its time
(:meth:`FailureBackoff.apply`, :meth:`TokenBucket.apply`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

#: Told of a change to a limit, for the other nodes: (op, key, count, time).
Tell = Callable[[str, str, int, float], None]


@dataclass
class _Backoff:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True)
class BackoffPolicy:
    """How failures lock a key: ``free`` failures, then ``base_delay`` seconds doubling up to
    ``max_delay``; a key with no failure for ``forget_after`` seconds starts afresh."""

    free: int
    base_delay: float
    max_delay: float
    forget_after: float

    def limiter(self, clock: IReactorTime, max_keys: int) -> FailureBackoff:
        """A :class:`FailureBackoff` with this policy."""
        return FailureBackoff(
            clock,
            free=self.free,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            forget_after=self.forget_after,
            max_keys=max_keys,
        )


class FailureBackoff:
    """Exponential lockout after repeated failures.

    :param free: failures allowed before any lock.
    :param base_delay: the first lock, in seconds; each further failure doubles it.
    :param max_delay: the longest lock.
    :param forget_after: seconds without a failure after which the key starts afresh.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        free: int,
        base_delay: float,
        max_delay: float,
        forget_after: float,
        max_keys: int,
    ) -> None:
        self._clock = clock
        self.free = free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Backoff] = OrderedDict()
        #: Told of each failure and success counted here (None: nobody else to tell).
        self.tell: Tell | None = None

    def _state(self, key: str) -> _Backoff | None:
        state = self._keys.get(key)
        if state is not None and self._clock.seconds() - state.last_failure > self.forget_after:
            del self._keys[key]
            return None
        return state

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        state = self._state(key)
        if state is None:
            return 0.0
        return max(0.0, state.locked_until - self._clock.seconds())

    def failures(self, key: str) -> tuple[int, float | None]:
        """(failures counted for ``key``, when the last one was), for ``whatdoyouknow``."""
        state = self._state(key)
        return (state.failures, state.last_failure) if state is not None else (0, None)

    def record_failure(self, key: str, at: float | None = None) -> None:
        """Count a failure (made ``at``, on another node; else now, here); lock the key once
        it is past its free failures."""
        now = self._clock.seconds() if at is None else at
        if at is None and self.tell is not None:
            self.tell("failure", key, 1, now)
        state = self._state(key) or _Backoff()
        state.failures += 1
        state.last_failure = now
        over = state.failures - self.free
        if over > 0:
            delay = min(self.max_delay, self.base_delay * 2 ** min(over - 1, 32))
            state.locked_until = now + delay
        self._keys[key] = state
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def record_success(self, key: str, at: float | None = None) -> None:
        """Forget ``key``'s failures."""
        if at is None and self.tell is not None:
            self.tell("success", key, 1, self._clock.seconds())
        self._keys.pop(key, None)

    def apply(self, op: str, key: str, n: int, at: float) -> None:
        """Make a change another node told of."""
        if op == "failure":
            self.record_failure(key, at)
        elif op == "success":
            self.record_success(key, at)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBucket:
    """``capacity`` actions at once, refilled evenly over ``period`` seconds."""

    def __init__(self, clock: IReactorTime, *, capacity: int, period: float, max_keys: int) -> None:
        self._clock = clock
        self.capacity = capacity
        self.rate = capacity / period
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Bucket] = OrderedDict()
        #: Told of the tokens spent here (None: nobody else to tell).
        self.tell: Tell | None = None

    def _refilled(self, key: str, at: float | None = None) -> _Bucket:
        now = self._clock.seconds() if at is None else at
        bucket = self._keys.get(key)
        if bucket is None:
            return _Bucket(float(self.capacity), now)
        refill = max(0.0, now - bucket.stamp) * self.rate
        tokens = min(float(self.capacity), bucket.tokens + refill)
        return _Bucket(tokens, max(now, bucket.stamp))

    def retry_after(self, key: str) -> float:
        """Seconds until one action is allowed for ``key``; 0 when it is now."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def take_up_to(self, key: str, wanted: int, at: float | None = None) -> int:
        """Spend up to ``wanted`` tokens at once (``at``: on another node, then); return how
        many were spent (as many as ``wanted`` calls of :meth:`take` would have spent, one
        after another)."""
        bucket = self._refilled(key, at)
        granted = min(wanted, int(bucket.tokens))
        if granted > 0 and at is None and self.tell is not None:
            self.tell("take", key, granted, bucket.stamp)
        if granted > 0:
            bucket.tokens -= granted
            self._keys[key] = bucket
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return granted

    def take(self, key: str) -> float:
        """Spend one token if there is one.  Returns 0 when spent, else the seconds to wait."""
        bucket = self._refilled(key)
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self.rate
        if self.tell is not None:
            self.tell("take", key, 1, bucket.stamp)
        bucket.tokens -= 1
        self._keys[key] = bucket
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return 0.0

    def apply(self, op: str, key: str, n: int, at: float) -> None:
        """Spend tokens another node told of."""
        if op == "take":
            self.take_up_to(key, n, at)
