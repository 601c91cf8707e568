"""A full or failing disk loses nothing acknowledged, and nothing is acknowledged before it is
durable.  Faults are injected into the store's write and fsync calls; the server runs on a
fake clock over in-memory connections, and a "crash" reopens the data dir from what is on disk.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from pychat.store import journal, sealed_log
from pychat.store.blocking import inline_runner
from pychat.store.conversations import ConversationStore
from pychat.store.server_store import ServerStore
from tests.accounts_helpers import login_sync
from tests.chat_helpers import envelope
from tests.helpers import connect
from tests.store_helpers import HeldRunner, appended, crash_and_reopen, done, pair, send, server_on


def test_a_short_write_is_finished_and_the_record_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_on(tmp_path)
    alice, _, conv = pair(server)
    assert send(alice, conv, "m0", "c0")["ok"]
    writes = []

    def a_few_bytes_at_a_time(fd: int, data: Any) -> int:
        writes.append(len(data))
        return os.write(fd, bytes(data[:100]))

    monkeypatch.setattr(sealed_log, "_os_write", a_few_bytes_at_a_time)
    assert send(alice, conv, "m1" * 200, "c1")["ok"]
    monkeypatch.setattr(sealed_log, "_os_write", os.write)
    assert send(alice, conv, "m2", "c2")["ok"]
    assert len(writes) > 3  # the record took several writes
    assert crash_and_reopen(server, tmp_path) == ["m0", "m1" * 200, "m2"]


def test_enospc_mid_record_is_refused_cleanly_and_space_coming_back_heals_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_on(tmp_path)
    alice, _, conv = pair(server)
    acknowledged = []
    for i in range(3):
        assert send(alice, conv, f"m{i}", f"c{i}")["ok"]
        acknowledged.append(f"m{i}")

    def half_then_full(fd: int, data: Any) -> int:
        os.write(fd, bytes(data[: len(data) // 2]))
        monkeypatch.setattr(sealed_log, "_os_write", full)
        return len(data) // 2

    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sealed_log, "_os_write", half_then_full)
    for attempt in range(3):
        reply = send(alice, conv, "lost", f"full-{attempt}")
        assert reply["error"]["code"] == "storage_full" and reply["error"]["retry_after"] > 0
    monkeypatch.setattr(sealed_log, "_os_write", os.write)  # space is back
    for i in range(3, 43):
        reply = send(alice, conv, f"m{i}", f"c{i}")
        assert reply["ok"] and reply["seq"] == i + 1, reply
        acknowledged.append(f"m{i}")
    retry = send(alice, conv, "retried", "full-0")  # the refused one, resent: a new message
    assert retry["ok"] and not retry["duplicate"]
    acknowledged.append("retried")
    assert crash_and_reopen(server, tmp_path) == acknowledged


def test_an_fsync_error_is_never_taken_for_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_on(tmp_path)
    alice, bob, conv = pair(server)
    assert send(alice, conv, "m0", "c0")["ok"]
    bob.received()

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(journal, "_os_fdatasync", eio)
    reply = send(alice, conv, "lost", "c1")
    assert reply["error"]["code"] == "storage_error"
    assert not [e for e in bob.received() if e.get("event") == "message"]  # nobody was told
    monkeypatch.setattr(journal, "_os_fdatasync", os.fdatasync)
    again = send(alice, conv, "m1", "c1")
    assert again["ok"] and again["seq"] == 2 and not again["duplicate"]
    assert crash_and_reopen(server, tmp_path) == ["m0", "m1"]


def test_no_reply_and_no_push_leave_before_the_fsync_has_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = server_on(tmp_path)
    _, _, conv = pair(first)  # accounts and the conversation, on disk
    for c in first.store.logs:
        c.messages.close()
        c.control.close()
    runner = HeldRunner()
    fsynced: list[int] = []

    def spy(fd: int) -> None:
        fsynced.append(fd)
        os.fdatasync(fd)

    monkeypatch.setattr(journal, "_os_fdatasync", spy)
    server = server_on(tmp_path, runner)
    alice, bob = connect(server, port=40001), connect(server, port=40002)
    for conn, name in ((alice, "alice"), (bob, "bob")):
        assert conn.request("hello", version=1)["ok"]
        assert login_sync(conn, name, "pw")["ok"]
    runner.release()
    bob.received()
    fsynced.clear()
    alice.send(
        b'{"id": 91, "op": "send", "conversation": "' + conv.encode() + b'", "epoch": 1, '
        b'"ciphertext": "secret", "client_id": "k1"}\n'
    )
    assert not [m for m in alice.received() if m.get("id") == 91]  # held: no ack yet
    assert not [e for e in bob.received() if e.get("event") == "message"]  # and no push
    conversations = server.store.conversations
    assert isinstance(conversations, ConversationStore)
    journal_fd = conversations.journal._fd
    runner.release()
    assert journal_fd in fsynced  # the ack waited for a real sync of the journal
    (reply,) = [m for m in alice.received() if m.get("id") == 91]
    assert reply["ok"] and reply["seq"] == 1
    assert [e["seq"] for e in bob.received() if e.get("event") == "message"] == [1]


def test_a_stored_message_is_acknowledged_even_if_the_read_marker_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the soak: the disk filled between the message and the sender's read marker,
    and a message that was stored got storage_full."""
    server = server_on(tmp_path)
    alice, _, conv = pair(server)
    control = server.store.logs.get(conv).control  # type: ignore[union-attr]

    def full_for_control(fd: int, data: Any) -> int:
        if fd == control.fileno():
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    monkeypatch.setattr(sealed_log, "_os_write", full_for_control)
    reply = send(alice, conv, "stored", "c0")
    assert reply["ok"] and reply["seq"] == 1
    monkeypatch.setattr(sealed_log, "_os_write", os.write)
    assert crash_and_reopen(server, tmp_path) == ["stored"]


def test_waiters_that_ask_again_never_start_a_second_batch_beside_the_first(
    tmp_path: Path,
) -> None:
    """Found by the soak: a waiter that appended and asked again started a new batch while
    the old one was still delivering, and two batches ran at once (one fsynced a log the
    other had closed)."""
    runner = HeldRunner()
    store = ServerStore.open(tmp_path, tmp_path / "store.key", runner)
    runner.release()
    conv = defer.ensureDeferred(store.logs.create("alice", "bob", envelope(), 1.0))
    runner.release()
    created = done(conv)
    appended(store.conversations, created, "alice", 1, "m0", "c0", 2.0)  # batch 0, held
    waiters = [appended(store.conversations, created, "alice", 1, f"m{i}", f"c{i}", 2.0)
               for i in (1, 2)]  # fmt: skip
    runner.release_one()  # batch 0 done: batch 1 starts with both waiters

    def ask_again(_: object, i: int) -> None:
        appended(store.conversations, created, "alice", 1, f"n{i}", f"d{i}", 3.0)

    for i, d in enumerate(waiters):
        d.addCallback(ask_again, i)
    runner.release_one()  # batch 1 done: both waiters append and ask again
    assert len(runner.jobs) == 1  # ... and wait together for one next batch
    runner.release()
    assert created.durable_seq == 5


def test_control_log_compaction_runs_off_the_reactor_and_keeps_what_comes_meanwhile(
    tmp_path: Path,
) -> None:
    from pychat.store.control import CONTROL_COMPACT_AT

    runner = HeldRunner()
    store = ServerStore.open(tmp_path, tmp_path / "store.key", runner)
    conv_d = defer.ensureDeferred(store.logs.create("alice", "bob", envelope(), 1.0))
    runner.release()
    conv = done(conv_d)
    for seq in range(1, CONTROL_COMPACT_AT - 2):
        store.conversations.set_read_nowait(conv, "bob", seq)  # each rides its own batch
        runner.release()
    # open, epoch and 997 markers: the next makes 1000 records and starts a compaction
    store.conversations.set_read_nowait(conv, "bob", CONTROL_COMPACT_AT - 2)
    while runner.jobs and runner.jobs[0][0].__name__ != "_write_compaction":
        runner.release_one()  # the batches the compaction waits for
    before = conv.control
    size_before = before.path.stat().st_size
    assert conv.compacting is not None  # the rewrite is a job for the runner ...
    assert before.path.stat().st_size == size_before  # ... not done on this thread
    store.conversations.set_read_nowait(conv, "alice", 5)  # arrives during the compaction
    epoch = defer.ensureDeferred(store.conversations.add_epoch(conv, envelope(2), 2.0))
    runner.release()
    assert epoch.called and conv.control is not before and conv.compacting is None
    assert len(conv.control) < 10  # compacted
    for c in store.conversations:
        c.messages.close()
        c.control.close()
    again = ServerStore.open(tmp_path, tmp_path / "store.key", inline_runner).conversations.get(
        conv.id
    )
    assert again is not None
    assert again.read == {"bob": CONTROL_COMPACT_AT - 2, "alice": 5}
    assert len(again.epochs) == 2
