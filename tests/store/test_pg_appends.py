"""A conversation's appends on PostgreSQL go in batches: one transaction under way at a time,
those asked for meanwhile together in the next, each answered only when its own batch ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import defer
from twisted.python.failure import Failure

from pychat.store.atrest import AtRestKey
from pychat.store.conversation import NewMessage
from pychat.store.errors import Resent, StorageFailure
from pychat.store.pg.appends import BATCH_MAX, ConversationAppends
from pychat.wire.shapes import StoredMessage
from tests.chat_helpers import envelope
from tests.store_helpers import appended


class FakeDatabase:
    """Transactions the test commits or fails by hand."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.pending: list[tuple[list[tuple[str, NewMessage]], defer.Deferred[Any]]] = []
        self.seq = 0

    def run(self, batch: list[tuple[str, NewMessage]]) -> defer.Deferred[Any]:
        self.batches.append([message.client_id for _, message in batch])
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append((batch, d))
        return d

    def commit(self) -> None:
        batch, d = self.pending.pop(0)
        stored = []
        for _, message in batch:
            self.seq += 1
            record: StoredMessage = {
                "seq": self.seq,
                "sender": message.sender,
                "epoch": message.epoch,
                "ciphertext": message.ciphertext,
                "client_id": message.client_id,
                "time": message.time,
            }
            stored.append((record, 10))
        d.callback(stored)

    def fail(self) -> None:
        _, d = self.pending.pop(0)
        d.errback(Failure(StorageFailure(None, "the database is unavailable")))


def message(client_id: str) -> NewMessage:
    return NewMessage("alice", 1, "ct", client_id, 1.0)


class Told:
    def __init__(self) -> None:
        self.results: dict[str, Any] = {}

    def outcome(self, client_id: str) -> Any:
        def tell(result: Any) -> None:
            self.results[client_id] = (
                result.value if isinstance(result, Failure) else result[0]["seq"]
            )

        return tell


def test_appends_asked_for_during_a_transaction_go_together_in_the_next_in_order() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)
    appends.append("k1", message("m1"), told.outcome("m1"))
    for n in range(2, 6):
        appends.append(f"k{n}", message(f"m{n}"), told.outcome(f"m{n}"))
    assert db.batches == [["m1"]]  # the others wait for the first transaction
    assert told.results == {}  # nothing is answered before its COMMIT
    db.commit()
    assert told.results == {"m1": 1}
    assert db.batches == [["m1"], ["m2", "m3", "m4", "m5"]]
    db.commit()
    assert told.results == {"m1": 1, "m2": 2, "m3": 3, "m4": 4, "m5": 5}
    assert appends.idle and not db.pending


def test_a_batch_is_bounded() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)
    for n in range(1 + BATCH_MAX + 3):
        appends.append(f"k{n}", message(f"m{n}"), told.outcome(f"m{n}"))
    db.commit()
    db.commit()
    assert [len(b) for b in db.batches] == [1, BATCH_MAX, 3]


def test_a_failed_batch_fails_each_of_its_messages_and_the_next_batch_still_runs() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)
    appends.append("k1", message("m1"), told.outcome("m1"))
    appends.append("k2", message("m2"), told.outcome("m2"))
    appends.append("k3", message("m3"), told.outcome("m3"))
    db.fail()  # m1's transaction
    assert isinstance(told.results["m1"], StorageFailure)
    db.fail()  # m2 and m3 together
    assert isinstance(told.results["m2"], StorageFailure)
    assert isinstance(told.results["m3"], StorageFailure)
    appends.append("k4", message("m4"), told.outcome("m4"))
    db.commit()
    assert told.results["m4"] == 1 and appends.idle


def test_settled_fires_once_everything_asked_for_so_far_has_ended() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)
    assert appends.settled().called  # nothing under way
    appends.append("k1", message("m1"), told.outcome("m1"))
    after_first = appends.settled()
    appends.append("k2", message("m2"), told.outcome("m2"))
    after_both = appends.settled()
    db.commit()
    assert after_first.called and not after_both.called
    db.commit()
    assert after_both.called


def test_a_reader_that_raises_does_not_keep_the_others_unanswered() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)

    def broken(result: Any) -> None:
        raise RuntimeError("a bug in one reader")

    appends.append("k0", message("m0"), told.outcome("m0"))
    appends.append("k1", message("m1"), broken)
    appends.append("k2", message("m2"), told.outcome("m2"))
    db.commit()
    db.commit()
    assert told.results == {"m0": 1, "m2": 3}
    assert appends.idle


@pytest_twisted.ensureDeferred
async def test_the_database_stores_a_message_sent_twice_at_once_only_once(
    pg_url: str, tmp_path: Path
) -> None:
    """A resend whose first copy is still on its way (here, or on another node) is stored
    once, and told as a resend with the first copy's record."""
    from pychat.store.pg.conversations import PgConversationStore
    from pychat.store.pg.database import Database

    database = Database.open(pg_url)
    try:
        key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
        repo = PgConversationStore.open(database, key)
        conv = await repo.create("alice", "bob", envelope(1), 1.0)
        await appended(repo, conv, "alice", 1, "first", "id-first", 2.0)
        told: list[tuple[int, str]] = []
        sends = [
            ("under way", "id-x"),  # the others wait for its transaction
            ("again", "same-id"),
            ("again", "same-id"),  # in the same batch
            ("first", "id-first"),  # stored before
        ]
        for text, client_id in sends:

            def then(record: StoredMessage, error: BaseException | None) -> None:
                kind = "resent" if isinstance(error, Resent) else "new" if error is None else "?"
                told.append((record["seq"], kind))

            repo.append_message(conv, NewMessage("alice", 1, text, client_id, 3.0), then)
        await repo.wait_durable(conv)
        assert told == [(2, "new"), (3, "new"), (3, "resent"), (1, "resent")]
        assert conv.last_seq == 3
        page = await repo.page(conv, 1, 10)
        assert [r["ciphertext"] for r in page] == ["first", "under way", "again"]
    finally:
        database.close()


def test_an_append_asked_for_while_a_batch_is_being_answered_waits_for_the_next() -> None:
    db, told = FakeDatabase(), Told()
    appends = ConversationAppends(db.run)

    def answered_then_sends_again(result: Any) -> None:
        told.outcome("m1")(result)
        appends.append("k2", message("m2"), told.outcome("m2"))  # e.g. from a reader's push
        appends.append("k3", message("m3"), told.outcome("m3"))

    appends.append("k1", message("m1"), answered_then_sends_again)
    db.commit()
    assert db.batches == [["m1"], ["m2", "m3"]]  # one transaction at a time, in order
    assert len(db.pending) == 1
    db.commit()
    assert told.results == {"m1": 1, "m2": 2, "m3": 3}


@pytest_twisted.ensureDeferred
async def test_a_sender_has_read_what_they_sent_and_a_marker_never_moves_back(
    pg_url: str, tmp_path: Path
) -> None:
    """The sender's marker moves in the append's own transaction (no write of its own), and
    a write of an older marker that commits later leaves the newer one in place."""
    from pychat.store.pg.conversations import PgConversationStore, _set_read
    from pychat.store.pg.database import Database

    database = Database.open(pg_url)
    try:
        key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
        repo = PgConversationStore.open(database, key)
        conv = await repo.create("alice", "bob", envelope(1), 1.0)
        for n in range(3):
            await appended(repo, conv, "alice", 1, f"m{n}", f"id-{n}", 2.0)
        await appended(repo, conv, "bob", 1, "reply", "b-1", 3.0)
        assert conv.read == {"alice": 3, "bob": 4}
        await repo.close()
        again = PgConversationStore.open(database, key).get(conv.id)
        assert again is not None and again.read == {"alice": 3, "bob": 4}

        member_key = repo._names(conv.id, "alice")
        await database.run(_set_read, repo._key(conv), member_key, 1, b"an older marker")
        rows = database.query_now(
            "SELECT seq FROM conversation_reads WHERE member_key = %s", (member_key,)
        )
        assert [seq for (seq,) in rows] == [3]
    finally:
        database.close()
