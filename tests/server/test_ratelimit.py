"""Rate limiters on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from pychat.server.ratelimit import FailureBackoff, TokenBucket


def backoff(clock: Clock, max_keys: int = 100) -> FailureBackoff:
    return FailureBackoff(
        clock, free=2, base_delay=1.0, max_delay=8.0, forget_after=100.0, max_keys=max_keys
    )


def test_free_failures_then_doubling_lock_up_to_the_cap() -> None:
    clock = Clock()
    b = backoff(clock)
    b.record_failure("k")
    b.record_failure("k")
    assert b.retry_after("k") == 0
    delays = []
    for _ in range(6):
        b.record_failure("k")
        delays.append(b.retry_after("k"))
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    clock.advance(8.0)
    assert b.retry_after("k") == 0


def test_success_clears_and_quiet_keys_are_forgotten() -> None:
    clock = Clock()
    b = backoff(clock)
    for _ in range(3):
        b.record_failure("k")
    b.record_success("k")
    assert b.retry_after("k") == 0
    for _ in range(3):
        b.record_failure("j")
    clock.advance(101)
    b.record_failure("j")  # starts afresh: a free failure
    assert b.retry_after("j") == 0


def test_keys_are_bounded() -> None:
    b = backoff(Clock(), max_keys=3)
    for i in range(10):
        b.record_failure(str(i))
    assert len(b._keys) == 3


def test_token_bucket_allows_capacity_then_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(clock, capacity=3, period=30.0, max_keys=10)
    assert [bucket.take("a") for _ in range(3)] == [0, 0, 0]
    wait = bucket.take("a")
    assert wait == 10.0
    assert bucket.take("b") == 0  # other keys are unaffected
    clock.advance(10.0)
    assert bucket.take("a") == 0


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=0, max_value=40)),
        max_size=20,
    )
)
def test_taking_many_at_once_spends_what_taking_one_at_a_time_would(
    steps: list[tuple[float, int]],
) -> None:
    one_clock, many_clock = Clock(), Clock()
    one = TokenBucket(one_clock, capacity=20, period=1.0, max_keys=1)
    many = TokenBucket(many_clock, capacity=20, period=1.0, max_keys=1)
    for wait, wanted in steps:
        one_clock.advance(wait)
        many_clock.advance(wait)
        singly = sum(1 for _ in range(wanted) if one.take("requests") == 0)
        assert many.take_up_to("requests", wanted) == singly
        assert many.retry_after("requests") == pytest.approx(one.retry_after("requests"))
