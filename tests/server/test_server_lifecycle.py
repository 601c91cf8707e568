"""The connection lifecycle table (pychat.server.lifecycle): what each event does in each
phase, and that no sequence of events reaches a phase the table does not name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pychat.server.lifecycle import TRANSITIONS, Event, Lifecycle, LifecycleError, Phase


def walk(*events: Event) -> Lifecycle:
    life = Lifecycle()
    for event in events:
        life.on(event)
    return life


def test_a_connection_admitted_runs_requests_until_a_handler_waits() -> None:
    life = walk(Event.ADMIT)
    assert life.runs_requests and life.admitted and not life.busy
    life.on(Event.WAIT)
    assert life.busy and not life.runs_requests
    life.on(Event.DONE)
    assert life.runs_requests


def test_a_drain_asked_while_a_handler_waits_closes_after_it_and_the_replies() -> None:
    life = walk(Event.ADMIT, Event.WAIT, Event.DRAIN)
    assert life.phase is Phase.DRAINING_BUSY and life.busy and life.draining
    life.on(Event.DONE)
    assert life.phase is Phase.DRAINING and not life.runs_requests and not life.closing
    life.on(Event.WRITTEN)
    assert life.phase is Phase.CLOSING and life.closing


def test_a_refused_connection_is_never_counted_in() -> None:
    life = walk(Event.REFUSE, Event.LOST)
    assert life.phase is Phase.REFUSED and not life.admitted and life.closing


@pytest.mark.parametrize(
    "events",
    [
        (Event.WAIT,),  # a request before admission
        (Event.ADMIT, Event.DONE),  # a handler finished that never waited
        (Event.ADMIT, Event.WRITTEN),  # replies out while not draining
        (Event.ADMIT, Event.WAIT, Event.WAIT),  # two coroutines at once
    ],
)
def test_an_event_the_table_has_no_row_for_is_a_bug_of_ours(events: tuple[Event, ...]) -> None:
    with pytest.raises(LifecycleError):
        walk(*events)


@given(st.lists(st.sampled_from(list(Event)), max_size=30))
def test_any_sequence_stays_in_the_table_and_closed_is_final(events: list[Event]) -> None:
    life = Lifecycle()
    closed = False
    for event in events:
        before = life.phase
        try:
            life.on(event)
        except LifecycleError:
            assert (before, event) not in TRANSITIONS
            assert life.phase is before
            continue
        assert life.phase is TRANSITIONS[(before, event)]
        if closed:
            assert life.phase is Phase.CLOSED  # nothing comes back from closed
        closed = closed or life.phase is Phase.CLOSED
        assert not (life.busy and life.runs_requests)
