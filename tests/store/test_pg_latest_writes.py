"""Read markers on PostgreSQL: at most one write under way per marker, one more after it
however often the marker moved meanwhile, and nobody told "stored" before their value is."""

from __future__ import annotations

from twisted.internet import defer
from twisted.python.failure import Failure

from pychat.store.errors import StorageFailure
from pychat.store.pg.latest_writes import LatestWrites


class Marker:
    """A marker's value and the writes of it the test ends by hand."""

    def __init__(self) -> None:
        self.value = 0
        self.stored = 0
        self.writes: list[tuple[int, defer.Deferred[None]]] = []

    def write(self, key: str) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self.writes.append((self.value, d))  # the value as it is when the write begins
        return d

    def commit(self) -> None:
        value, d = self.writes.pop(0)
        self.stored = value
        d.callback(None)

    def fail(self) -> None:
        _, d = self.writes.pop(0)
        d.errback(Failure(StorageFailure(None, "the database is unavailable")))


def test_moves_during_a_write_cost_one_more_write_with_the_newest_value() -> None:
    marker = Marker()
    writes = LatestWrites(marker.write)
    marker.value = 1
    first = writes.write("alice")
    told = []
    for value in range(2, 50):
        marker.value = value
        told.append(writes.write("alice"))
    assert [v for v, _ in marker.writes] == [1]  # one under way
    marker.commit()
    assert first.called and not any(d.called for d in told)  # 2..49 are not stored yet
    assert [v for v, _ in marker.writes] == [49]  # one more, with the newest value
    marker.commit()
    assert all(d.called for d in told) and marker.stored == 49
    assert not marker.writes


def test_keys_are_written_independently() -> None:
    marker = Marker()
    writes = LatestWrites(marker.write)
    writes.write("alice")
    writes.write("bob")
    assert len(marker.writes) == 2


def test_a_failed_write_fails_those_waiting_on_it_and_the_next_write_still_runs() -> None:
    marker = Marker()
    writes = LatestWrites(marker.write)
    first = writes.write("alice")
    marker.value = 7
    second = writes.write("alice")
    errors: list[Failure] = []
    first.addErrback(errors.append)
    marker.fail()
    assert errors and errors[0].check(StorageFailure)
    marker.commit()
    assert second.called and marker.stored == 7


def test_settled_waits_for_every_write_asked_for_so_far() -> None:
    marker = Marker()
    writes = LatestWrites(marker.write)
    assert writes.settled().called
    writes.write("alice")
    writes.write("alice").addErrback(lambda _: None)  # fails below
    settled = writes.settled()
    marker.commit()
    assert not settled.called  # the second write is still to come
    marker.fail()
    assert settled.called  # ended, stored or not


def test_a_write_asked_for_while_one_is_being_told_follows_it() -> None:
    marker = Marker()
    writes = LatestWrites(marker.write)
    again: list[defer.Deferred[None]] = []
    writes.write("alice").addCallback(lambda _: again.append(writes.write("alice")))
    marker.value = 5
    writes.write("alice")
    marker.commit()
    assert len(marker.writes) == 1  # the two asked for meanwhile share one write
    marker.commit()
    assert again[0].called and marker.stored == 5
