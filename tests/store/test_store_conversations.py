"""The conversation logs on disk: torn tails, damage, and reopening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import globalLogPublisher

from pychat.store.blocking import inline_runner
from pychat.store.errors import LogDamaged
from pychat.store.server_store import ServerStore
from tests.log_capture import as_observer
from tests.store_helpers import appended


def _open(data: Path) -> ServerStore:
    return ServerStore.open(data, data / "store.key", inline_runner)


async def _conversation_with(data: Path, count: int, *, clean_stop: bool = False) -> str:
    """A conversation of ``count`` messages, its files closed as by a crash or a clean stop."""
    store = _open(data)
    conv = await store.logs.create("alice", "bob", {"epoch": 1}, 1.0)
    for i in range(count):
        durable = appended(store.conversations, conv, "alice", 1, f"c{i}", f"id{i}", 2.0 + i)
        await durable
    if clean_stop:
        await store.close()
    else:
        conv.messages.close()
        conv.control.close()
    return conv.id


def _msg_file(data: Path) -> Path:
    (path,) = (data / "conversations").glob("*.msg")
    return path


@pytest.mark.parametrize("tail", [b'{"s":"AAAA', b"\x00\x00\x00"], ids=["cut-mid-line", "zeros"])
@pytest_twisted.ensureDeferred
async def test_torn_tail_is_cut_logged_and_appends_continue(tmp_path: Path, tail: bytes) -> None:
    conv_id = await _conversation_with(tmp_path, 5)
    path = _msg_file(tmp_path)
    good = path.read_bytes()
    path.write_bytes(good + tail)
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(as_observer(seen.append))
    try:
        store = _open(tmp_path)
    finally:
        globalLogPublisher.removeObserver(as_observer(seen.append))
    assert path.read_bytes() == good
    assert any("torn" in str(e.get("log_format", "")) for e in seen)
    conv = store.logs.get(conv_id)
    assert conv is not None and conv.last_seq == 5
    record = await appended(store.conversations, conv, "bob", 1, "new", "n", 9.0)
    assert record["seq"] == 6
    assert [r["ciphertext"] for r in await store.conversations.page(conv, 1, 7)] == [
        "c0", "c1", "c2", "c3", "c4", "new"
    ]  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_state_survives_reopen(tmp_path: Path) -> None:
    conv_id = await _conversation_with(tmp_path, 3)
    store = _open(tmp_path)
    conv = store.logs.get(conv_id)
    assert conv is not None
    await store.conversations.set_read(conv, "bob", 2)
    await store.conversations.add_epoch(conv, {"epoch": 2}, 5.0)
    conv.messages.close()
    conv.control.close()
    again = _open(tmp_path).logs.get(conv_id)
    assert again is not None
    assert again.read == {"bob": 2} and again.unread("bob") == 1
    assert again.epochs == [{"epoch": 1}, {"epoch": 2}]
    assert again.members == ("alice", "bob")
    assert again.recent_ids.get("alice", "id2") == (3, 4.0)


def _flip_a_byte_of_record(path: Path, index: int) -> bytes:
    lines = path.read_bytes().split(b"\n")
    lines[index] = (
        lines[index][:10] + (b"B" if lines[index][10:11] != b"B" else b"C") + lines[index][11:]
    )
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    return damaged


@pytest.mark.parametrize("index", [3, 1], ids=["last-record", "earlier-record"])
@pytest_twisted.ensureDeferred
async def test_a_damaged_complete_record_is_kept_reported_and_the_rest_is_served(
    tmp_path: Path, index: int
) -> None:
    # damage to a log the journal no longer covers (it was checkpointed: here, a clean stop)
    conv_id = await _conversation_with(tmp_path, 4, clean_stop=True)
    path = _msg_file(tmp_path)
    damaged = _flip_a_byte_of_record(path, index)
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(as_observer(seen.append))
    try:
        store = _open(tmp_path)  # the server starts
    finally:
        globalLogPublisher.removeObserver(as_observer(seen.append))
    assert path.read_bytes() == damaged  # never cut, never rewritten
    (aside,) = path.parent.glob(f"{path.name}.damaged-*")
    assert aside.read_bytes() == damaged
    reports = [e for e in seen if "does not authenticate" in str(e.get("log_format", ""))]
    assert reports and reports[0]["n"] == index and reports[0]["path"] == str(path)
    conv = store.logs.get(conv_id)
    assert conv is not None and conv.damaged is not None
    assert conv.last_seq == index  # read-only up to the damage
    assert [r["ciphertext"] for r in await store.conversations.page(conv, 1, index + 1)] == [
        f"c{i}" for i in range(index)
    ]
    with pytest.raises(LogDamaged):  # an acknowledged seq is never reused
        appended(store.conversations, conv, "bob", 1, "new", "n", 9.0)
    other = await store.logs.create("carol", "dave", {"epoch": 1}, 1.0)
    durable = appended(store.conversations, other, "carol", 1, "x", "x1", 2.0)
    await durable  # the rest of the server keeps serving


@pytest_twisted.ensureDeferred
async def test_control_log_is_compacted_and_keeps_its_state(tmp_path: Path) -> None:
    from pychat.store.control import CONTROL_COMPACT_AT

    conv_id = await _conversation_with(tmp_path, 0)
    store = _open(tmp_path)
    conv = store.logs.get(conv_id)
    assert conv is not None
    await store.conversations.add_epoch(conv, {"epoch": 2}, 3.0)
    for i in range(CONTROL_COMPACT_AT + 50):
        durable = appended(store.conversations, conv, "alice", 1, "c", f"x{i}", 4.0)
        await durable
        store.conversations.set_read_nowait(conv, "alice", i + 1)
        if i % 2:
            await store.conversations.set_read(conv, "bob", i)
    assert len(conv.control) < CONTROL_COMPACT_AT
    (ctl,) = (tmp_path / "conversations").glob("*.ctl")
    assert sum(1 for _ in ctl.open("rb")) < CONTROL_COMPACT_AT
    assert not list((tmp_path / "conversations").glob("*.compact"))
    conv.messages.close()
    conv.control.close()
    again = _open(tmp_path).logs.get(conv_id)
    assert again is not None
    assert again.epochs == [{"epoch": 1}, {"epoch": 2}]
    assert again.read == {"alice": CONTROL_COMPACT_AT + 50, "bob": conv.read["bob"]}
    assert again.members == ("alice", "bob") and again.created == 1.0


@pytest_twisted.ensureDeferred
async def test_a_clean_stop_saves_an_index_and_the_next_start_uses_it(tmp_path: Path) -> None:
    conv_id = await _conversation_with(tmp_path, 30, clean_stop=True)
    assert list((tmp_path / "conversations").glob("*.msg.idx"))
    store = _open(tmp_path)
    conv = store.logs.get(conv_id)
    assert conv is not None and conv.messages.used_index and conv.last_seq == 30
    # more messages, then a crash (no clean stop): the old index is a prefix, the tail is scanned
    for i in range(30, 35):
        durable = appended(store.conversations, conv, "bob", 1, f"c{i}", f"id{i}", 50.0)
        await durable
    conv.messages.close()
    conv.control.close()
    again = _open(tmp_path).logs.get(conv_id)
    assert again is not None and again.messages.used_index and again.last_seq == 35
    records = await _open_page(again)
    assert [r["ciphertext"] for r in records] == [f"c{i}" for i in range(35)]


async def _open_page(conv: Any) -> list[dict[str, Any]]:
    return list(conv.messages.read_range(0, len(conv.messages)))


@pytest_twisted.ensureDeferred
async def test_an_index_that_does_not_fit_the_log_is_ignored_and_nothing_is_cut(
    tmp_path: Path,
) -> None:
    conv_id = await _conversation_with(tmp_path, 10, clean_stop=True)
    path = _msg_file(tmp_path)
    idx = path.with_name(path.name + ".idx")
    good_index, good_log = idx.read_bytes(), path.read_bytes()
    # an older copy of the log restored next to a newer index: shorter than the index says
    lines = good_log.split(b"\n")
    path.write_bytes(b"\n".join(lines[:5]) + b"\n")
    store = _open(tmp_path)
    conv = store.logs.get(conv_id)
    assert conv is not None and not conv.messages.used_index and conv.last_seq == 5
    conv.messages.close()
    conv.control.close()
    # other line boundaries than the index records: its offsets no longer hold the records
    shifted = good_log.replace(b'{"s":"', b'{ "s":"', 1)[:-1]
    path.write_bytes(shifted + b"\n")
    idx.write_bytes(good_index)
    before = path.read_bytes()
    conv2 = _open(tmp_path).logs.get(conv_id)
    assert conv2 is not None and not conv2.messages.used_index
    assert conv2.last_seq == 10 and path.read_bytes() == before  # rescanned, nothing cut
