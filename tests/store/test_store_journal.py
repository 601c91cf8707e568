"""The journal: one sync per group commit however many conversations a batch touched, and
nothing acknowledged lost when every conversation log write that was not yet synced is lost
(only the journal was synced), nor when a crash cuts a checkpoint or a compaction short."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.logger import formatEvent, globalLogPublisher

from pychat.store import journal
from pychat.store.blocking import inline_runner
from pychat.store.conversation_files import LoggedConversation as Conversation
from pychat.store.conversations import ConversationStore
from pychat.store.errors import StoreError
from pychat.store.server_store import ServerStore
from pychat.wire.shapes import StoredMessage
from tests.chat_helpers import envelope
from tests.log_capture import as_observer
from tests.store_helpers import HeldRunner, appended, done, held_store


def _open(data: Path, runner: Any = inline_runner) -> ConversationStore:
    store = ServerStore.open(data, data / "store.key", runner).conversations
    assert isinstance(store, ConversationStore)
    return store


def _create(store: ConversationStore, a: str, b: str) -> Conversation:
    d = defer.ensureDeferred(store.create(a, b, envelope(), 1.0))
    return done(d)


def _send(store: ConversationStore, conv: Conversation, text: str) -> defer.Deferred[StoredMessage]:
    durable = appended(store, conv, conv.members[0], 1, text, f"id-{text}", 2.0)
    return durable


def _crash(store: ConversationStore) -> None:
    """Leave the files as a SIGKILL would (no clean stop)."""
    for conv in store:
        conv.messages.close()
        conv.control.close()


def _texts(store: ConversationStore) -> dict[tuple[str, ...], list[str]]:
    return {
        conv.members: [r["ciphertext"] for r in conv.messages.read_range(0, conv.last_seq)]
        for conv in store
    }


def _segments(data: Path) -> list[Path]:
    return sorted((data / "conversations").glob("journal-*.jnl"))


def test_a_batch_over_many_conversations_costs_one_sync_and_no_log_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = HeldRunner()
    store = _open(tmp_path, runner)
    convs = []
    for i in range(20):
        convs.append(defer.ensureDeferred(store.create(f"u{i}", f"v{i}", envelope(), 1.0)))
        runner.release()
    synced: list[int] = []
    monkeypatch.setattr(journal, "_os_fdatasync", lambda fd: synced.append(fd))
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(-fd))
    _send(store, done(convs[0]), "first")  # starts a batch, held
    waiters = [_send(store, done(c), f"m{i}") for i, c in enumerate(convs)]
    runner.release_one()
    synced.clear()
    assert len(runner.jobs) == 1  # 20 conversations wait for one batch ...
    runner.release()
    assert synced == [store.journal._fd]  # ... which syncs the journal once, and no log
    assert all(d.called for d in waiters)


def test_acknowledged_messages_survive_losing_every_log_write_that_was_not_synced(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path)
    alice_bob, carol_dave = _create(store, "alice", "bob"), _create(store, "carol", "dave")
    for i in range(5):
        _send(store, alice_bob, f"ab{i}")
        _send(store, carol_dave, f"cd{i}")
    want = _texts(store)
    _crash(store)
    # A power cut: the logs were never synced (only the journal was), so they are gone.
    for log_file in (tmp_path / "conversations").glob("*.*"):
        if log_file.suffix in (".msg", ".ctl"):
            log_file.write_bytes(b"")
    again = _open(tmp_path)
    assert _texts(again) == want
    conv = again.find("alice", "bob")
    assert conv is not None and conv.epochs == [envelope()]
    assert not list((tmp_path / "conversations").glob("journal-*.jnl"))[2:]  # replayed, gone


def test_checkpoints_bound_the_journal_and_what_they_synced_needs_no_replay(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path)
    store.journal._checkpoint_bytes = 4096
    convs = [_create(store, "alice", "bob"), _create(store, "carol", "dave")]
    for i in range(60):
        _send(store, convs[i % 2], f"m{i}")
    assert store.journal.checkpoints >= 3
    assert len(_segments(tmp_path)) == 2  # the one in use and the spare
    assert sum(p.stat().st_size for p in _segments(tmp_path)) < 4096 + 1024
    synced_sizes = {p: p.stat().st_size for p in (tmp_path / "conversations").glob("*.msg")}
    for i in range(60, 64):
        _send(store, convs[i % 2], f"m{i}")  # after the last checkpoint: only journaled
    want = _texts(store)
    _crash(store)
    for path, size in synced_sizes.items():
        os.truncate(path, size)  # a power cut loses what no checkpoint synced
    assert _texts(_open(tmp_path)) == want


def test_a_record_in_a_log_but_not_in_the_journal_was_never_acknowledged_and_is_cut(
    tmp_path: Path,
) -> None:
    store, runner, conv = held_store(tmp_path)
    acknowledged = _send(store, conv, "acknowledged")
    runner.release()
    assert acknowledged.called
    _send(store, conv, "in flight")  # written to its log; its batch is held ...
    assert conv.messages.path.stat().st_size > conv.messages.durable_end
    _send(store, conv, "also in flight")
    _crash(store)  # ... and the crash comes before the batch writes the journal
    with open(conv.messages.path, "ab") as log_file:
        log_file.write(b'{"s":"half a rec')  # and the last write was cut short
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(as_observer(seen.append))
    try:
        assert _texts(_open(tmp_path)) == {("alice", "bob"): ["acknowledged"]}
    finally:
        globalLogPublisher.removeObserver(as_observer(seen.append))
    said = [formatEvent(e) for e in seen]
    (dropped,) = [line for line in said if "after the last commit" in line]
    assert "dropped 2 record(s)" in dropped and "never acknowledged" in dropped
    (torn,) = [line for line in said if "torn record" in line]
    assert "cut a torn record of 16 bytes" in torn  # only the unfinished line is torn


def test_a_torn_journal_tail_is_cut_and_a_damaged_line_stops_the_start(tmp_path: Path) -> None:
    store = _open(tmp_path)
    conv = _create(store, "alice", "bob")
    _send(store, conv, "kept")
    _crash(store)
    current = _segments(tmp_path)[0]
    with current.open("ab") as f:
        f.write(b'{"f":"00')  # torn by the crash
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(as_observer(seen.append))
    try:
        again = _open(tmp_path)
    finally:
        globalLogPublisher.removeObserver(as_observer(seen.append))
    assert _texts(again) == {("alice", "bob"): ["kept"]}
    assert any(e.get("path") == str(current) for e in seen)  # the cut is reported
    found = again.find("alice", "bob")
    assert found is not None
    _send(again, found, "more")
    _crash(again)
    (current,) = [p for p in _segments(tmp_path) if p.stat().st_size]
    current.write_bytes(current.read_bytes().replace(b'"o":', b'"o":"', 1))
    with pytest.raises(StoreError, match="journal line 1 is damaged"):
        _open(tmp_path)


def _compaction_held_before(tmp_path: Path, step: str) -> tuple[ConversationStore, Any]:
    """A control log compaction run up to (not including) the thread job named ``step``."""
    from pychat.store.control import CONTROL_COMPACT_AT

    store, runner, conv = held_store(tmp_path)
    for seq in range(1, CONTROL_COMPACT_AT + 1):
        store.set_read_nowait(conv, "bob", seq)
        while runner.jobs and conv.compacting is None:
            runner.release_one()
    while runner.jobs[0][0].__name__ != "_write_compaction":
        runner.release_one()
    runner.release_one()  # the fresh file is written and synced
    while runner.jobs[0][0].__name__ != step:
        runner.release_one()
    return store, conv


@pytest.mark.parametrize("step", ["run_batch", "_install"], ids=["before-marker", "before-rename"])
def test_a_crash_during_a_compaction_leaves_one_whole_control_log(
    tmp_path: Path, step: str
) -> None:
    from pychat.store.control import CONTROL_COMPACT_AT

    store, conv = _compaction_held_before(tmp_path, step)
    ctl = conv.control.path
    assert ctl.with_name(ctl.name + ".compact").exists()
    _crash(store)
    again = _open(tmp_path).find("alice", "bob")
    assert again is not None
    # open, epoch and 998 read markers made the log long enough; the last two markers wait
    # in memory for the new log and were never durable
    assert again.read == {"bob": CONTROL_COMPACT_AT - 2} and again.epochs == [envelope()]
    assert not ctl.with_name(ctl.name + ".compact").exists()


def test_after_a_compaction_the_journal_never_replays_the_old_log_into_the_new(
    tmp_path: Path,
) -> None:
    from pychat.store.control import CONTROL_COMPACT_AT

    store, conv = _compaction_held_before(tmp_path, "_install")
    runner = store._run
    assert isinstance(runner, HeldRunner)
    runner.release()  # renamed; the two waiting markers go to the new log
    assert len(conv.control) < 10
    d = defer.ensureDeferred(store.add_epoch(conv, envelope(2), 5.0))
    runner.release()
    assert d.called
    _crash(store)
    again = _open(tmp_path).find("alice", "bob")
    assert again is not None
    assert again.read == {"bob": CONTROL_COMPACT_AT} and again.epochs == [envelope(), envelope(2)]


def test_a_stale_compaction_file_never_replaces_a_log_that_was_written_after_a_marker(
    tmp_path: Path,
) -> None:
    """Found by the soak: a compaction finished (its marker in the journal), a later one
    failed on a full disk and left its fresh file behind, the server was killed, and the
    replay renamed that empty file over the control log."""
    from pychat.store.control import CONTROL_COMPACT_AT

    store = _open(tmp_path)
    conv = _create(store, "alice", "bob")
    for seq in range(1, CONTROL_COMPACT_AT + 20):
        store.set_read_nowait(conv, "bob", seq)  # compacted once, then 20 more records
    assert len(conv.control) < 30
    ctl = conv.control.path
    ctl.with_name(ctl.name + ".compact").write_bytes(b"")  # what the failed attempt left
    _crash(store)
    again = _open(tmp_path).find("alice", "bob")
    assert again is not None and again.read == {"bob": CONTROL_COMPACT_AT + 19}
    assert not ctl.with_name(ctl.name + ".compact").exists()


def test_a_full_disk_during_a_compaction_abandons_it_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from pychat.store import sealed_log
    from pychat.store.control import CONTROL_COMPACT_AT

    store = _open(tmp_path)
    conv = _create(store, "alice", "bob")
    real_open = os.open

    def full_for_compaction(path: Any, *args: Any) -> int:
        fd = real_open(path, *args)
        if str(path).endswith(".compact"):
            monkeypatch.setattr(sealed_log, "_os_write", no_space)
        return fd

    def no_space(fd: int, data: Any) -> int:
        monkeypatch.setattr(sealed_log, "_os_write", os.write)  # one failed write, then space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "open", full_for_compaction)
    for seq in range(1, CONTROL_COMPACT_AT + 1):
        store.set_read_nowait(conv, "bob", seq)
    monkeypatch.setattr(os, "open", real_open)
    assert conv.compacting is None  # abandoned, not stuck: appends go on
    ctl = conv.control.path
    assert not ctl.with_name(ctl.name + ".compact").exists()
    d = defer.ensureDeferred(store.add_epoch(conv, envelope(2), 5.0))
    assert d.called and done(d) is None
    _crash(store)
    again = _open(tmp_path).find("alice", "bob")
    assert again is not None and again.epochs == [envelope(), envelope(2)]
    assert again.read == {"bob": CONTROL_COMPACT_AT}


def test_a_read_marker_that_moves_many_times_between_batches_is_written_once(
    tmp_path: Path,
) -> None:
    store, runner, conv = held_store(tmp_path)
    _send(store, conv, "holds a batch")  # in flight while the marker moves
    records_before = len(conv.control)
    for seq in range(1, 51):
        store.set_read_nowait(conv, "bob", seq)
        store.set_read_nowait(conv, "alice", seq)
    runner.release()
    assert len(conv.control) == records_before + 2  # one record per user, not 100
    _crash(store)
    again = _open(tmp_path).find("alice", "bob")
    assert again is not None and again.read == {"alice": 50, "bob": 50}  # and it is durable
