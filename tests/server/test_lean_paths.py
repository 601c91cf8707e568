"""The busiest path's plumbing without Deferreds: a Later settled directly, the group
committer's plain waiters, the store's callback append, and the server's collector settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from pychat.server.ops import Later
from pychat.store.conversation import NewMessage
from pychat.store.errors import StorageFailure
from pychat.wire.envelope import encode_event
from tests.log_capture import as_observer
from tests.store_helpers import held_store


def append_then(
    store: Any,
    conv: Any,
    sender: str,
    epoch: int,
    ciphertext: str,
    client_id: str,
    now: float,
    extra: dict[str, Any] | None,
    then: Any,
) -> dict[str, Any]:
    """The store's one append call, its message given field by field."""
    message = NewMessage(sender, epoch, ciphertext, client_id, now, extra)
    record: dict[str, Any] = store.append_message(conv, message, then)
    return record


def test_a_later_hands_its_outcome_on_whenever_it_is_asked() -> None:
    early, late = Later(), Later()
    seen: list[Any] = []
    early.answer({"seq": 1})
    early.then(lambda outcome, tag: seen.append((tag, outcome)), "early")
    late.then(lambda outcome, tag: seen.append((tag, outcome)), "late")
    assert seen == [("early", {"seq": 1})]
    late.refuse(Failure(ValueError("no")))
    assert seen[1][0] == "late" and isinstance(seen[1][1], Failure)
    with pytest.raises(RuntimeError):
        late.answer({"seq": 2})  # settled once


def test_a_later_from_a_deferred_follows_it() -> None:
    d: defer.Deferred[Mapping[str, Any]] = defer.Deferred()
    later = Later(d)
    seen: list[Any] = []
    later.then(seen.append)
    d.errback(ValueError("refused"))
    assert isinstance(seen[0], Failure) and isinstance(seen[0].value, ValueError)


def test_every_waiter_hears_even_when_one_of_them_fails(tmp_path: Path) -> None:
    store, runner, conv = held_store(tmp_path / "data")
    heard: list[tuple[int, BaseException | None]] = []
    errors: list[dict[str, Any]] = []

    def broken(record: dict[str, Any], error: BaseException | None) -> None:
        raise RuntimeError("a bug in a waiter")

    globalLogPublisher.addObserver(as_observer(errors.append))
    try:
        append_then(store, conv, "alice", 1, "m0", "c0", 2.0, None, broken)
        append_then(
            store, conv, "alice", 1, "m1", "c1", 2.0, None, lambda r, e: heard.append((r["seq"], e))
        )
        runner.release()
    finally:
        globalLogPublisher.removeObserver(as_observer(errors.append))
    assert heard == [(2, None)]
    assert conv.durable_seq == 2
    assert any("durability waiter failed" in str(e.get("log_format")) for e in errors)


def test_a_failed_batch_tells_its_waiters_and_forgets_their_ids(tmp_path: Path) -> None:
    store, runner, conv = held_store(tmp_path / "data")
    heard: list[BaseException | None] = []
    append_then(store, conv, "alice", 1, "m0", "c0", 2.0, None, lambda r, e: heard.append(e))
    _, _, batch = runner.jobs.pop(0)
    batch.errback(OSError(28, "No space left on device"))  # the journal's sync failed
    assert len(heard) == 1 and isinstance(heard[0], StorageFailure)
    assert store.duplicate(conv, "alice", "c0") is None  # a retry is a new message


def test_the_next_batch_is_on_its_way_to_the_disk_before_the_last_ones_waiters_hear(
    tmp_path: Path,
) -> None:
    """Replies and pushes of one batch overlap with the sync of the next."""
    store, runner, conv = held_store(tmp_path / "data")
    jobs_seen: list[int] = []
    append_then(
        store,
        conv,
        "alice",
        1,
        "m0",
        "c0",
        2.0,
        None,
        lambda r, e: jobs_seen.append(len(runner.jobs)),
    )
    append_then(store, conv, "alice", 1, "m1", "c1", 2.0, None, lambda r, e: None)
    runner.release_one()  # the first batch is durable; the second was waiting for it
    assert jobs_seen == [1]  # when m0's waiter heard, m1's batch was already handed over


def test_waiters_hear_in_batch_order_when_a_batch_finishes_at_once(tmp_path: Path) -> None:
    """With a runner that finishes the next batch inside the call that starts it, the earlier
    batch's waiters still hear first (its pushes go out in sequence order)."""
    store, runner, conv = held_store(tmp_path / "data")
    heard: list[int] = []
    for n in range(3):
        append_then(
            store,
            conv,
            "alice",
            1,
            f"m{n}",
            f"c{n}",
            2.0,
            None,
            lambda r, e: heard.append(r["seq"]),
        )
    f, args, first = runner.jobs.pop(0)

    def at_once(f: Any, *args: Any) -> defer.Deferred[Any]:
        return defer.succeed(f(*args))

    store.committer._run = at_once  # the second batch will finish inside _start
    first.callback(f(*args))
    assert heard == [1, 2, 3]


def test_what_waiters_append_with_no_batch_in_flight_goes_in_one_batch(tmp_path: Path) -> None:
    store, runner, conv = held_store(tmp_path / "data")
    before = store.committer.batches

    def append_three(record: dict[str, Any], error: BaseException | None) -> None:
        for n in range(1, 4):
            append_then(store, conv, "alice", 1, f"m{n}", f"c{n}", 2.0, None, lambda r, e: None)

    append_then(store, conv, "alice", 1, "m0", "c0", 2.0, None, append_three)
    runner.release()
    assert store.committer.batches - before == 2  # m0's, then one for m1..m3
    assert conv.durable_seq == 4


def test_the_server_process_keeps_young_objects_longer_and_freezes_start_up() -> None:
    code = (
        "import gc; from pychat.server import collector; collector.tune_for_server();"
        "young, middle, _ = gc.get_threshold();"
        "assert (young, middle) == (collector.YOUNG_GENERATION, collector.MIDDLE_GENERATION);"
        "assert gc.get_freeze_count() > 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _marker_records(conv: Any) -> list[int]:
    return [r["seq"] for r in conv.control.read_all() if r.get("t") == "read"]


def test_paced_read_markers_are_saved_once_per_interval_and_at_a_clean_stop(
    tmp_path: Path,
) -> None:
    from twisted.internet.task import Clock

    store, runner, conv = held_store(tmp_path / "data")
    clock = Clock()
    store.pace_read_markers(clock, 1.0)
    for seq in (1, 2, 3):
        append_then(store, conv, "alice", 1, f"m{seq}", f"c{seq}", 2.0, None, _ignore)
        runner.release()
        store.set_read_nowait(conv, "alice", seq)
        runner.release()
    assert _marker_records(conv) == []  # not at every batch
    clock.advance(1.0)
    runner.release()
    assert _marker_records(conv) == [3]  # once, the latest
    store.set_read_nowait(conv, "alice", 4)
    runner.release()
    assert _marker_records(conv) == [3]
    closing = defer.ensureDeferred(store.close())
    runner.release()
    assert closing.called and _marker_records(conv) == [3, 4]
    assert not clock.getDelayedCalls()


def _ignore(record: dict[str, Any], error: BaseException | None) -> None:
    assert error is None


class _LineConn:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def push_line(self, line: bytes) -> None:
        self.lines.append(line)


def test_a_push_is_encoded_once_for_every_connection_it_goes_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pychat.server import presence as presence_module

    encoded: list[str] = []
    real = encode_event

    def counting(event: str, payload: Any) -> bytes:
        encoded.append(event)
        return real(event, payload)

    monkeypatch.setattr(presence_module, "encode_event", counting)
    presence = presence_module.Presence(lambda user: [], lambda user: True)
    phone, laptop, bobs = _LineConn(), _LineConn(), _LineConn()
    presence.connections = cast(Any, {"alice": {phone, laptop}, "bob": {bobs}})
    sent = presence.push_to_users(("bob", "alice"), "message", {"seq": 1}, skip=cast(Any, phone))
    assert sent == 2 and encoded == ["message"]
    assert bobs.lines == laptop.lines == [b'{"event":"message","seq":1}\n'] and not phone.lines
    assert presence.push_to_users(("carol",), "message", {"seq": 2}) == 0
    assert encoded == ["message"]  # nobody there: nothing encoded


def test_a_bug_after_the_sync_is_an_internal_error_reply_not_one_that_never_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pychat.server.handlers import conversation_ops
    from tests.store_helpers import pair, send, server_on

    server = server_on(tmp_path / "data")
    alice, _, conv = pair(server)

    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(conversation_ops, "message_push_line", broken)
    reply = send(alice, conv, "hi", "c1")
    assert reply["error"]["code"] == "internal_error"
    assert alice.closing  # our bug closes this connection only


def test_the_committer_goes_idle_syncing_telling_idle(tmp_path: Path) -> None:
    from pychat.store.group_commit import Phase

    store, runner, conv = held_store(tmp_path / "data")
    assert store.committer.phase is Phase.IDLE
    seen: list[Phase] = []
    append_then(
        store,
        conv,
        "alice",
        1,
        "m0",
        "c0",
        2.0,
        None,
        lambda r, e: seen.append(store.committer.phase),
    )
    assert store.committer.phase is Phase.SYNCING
    runner.release()
    assert seen == [Phase.TELLING]  # its waiter heard with no batch in flight
    assert store.committer.phase is Phase.IDLE
