"""A durable batch's waiters are told in slices, one slice a reactor turn, so the first
replies leave while the rest are made; earlier batches' waiters still hear first, and a failed
batch's waiters only after every earlier one."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from twisted.internet.base import DelayedCall
from twisted.internet.task import Clock

from pychat import limits
from pychat.store import journal
from pychat.store.errors import StorageFailure
from tests.chat_helpers import envelope
from tests.store_helpers import HeldRunner, held_store, logged_in, server_on

Heard = list[tuple[int, object]]


def _waiter(heard: Heard, i: int) -> Callable[[BaseException | None], None]:
    return lambda error: heard.append((i, error))


def _eight_waiting(tmp_path: Path) -> tuple[HeldRunner, Clock, Heard, Callable[[int], None]]:
    """Waiters 0..7 of alice and bob's log, told 3 a turn: 0 rides the first batch, 1..7
    gather for the second.  ``add(i)`` adds waiter ``i`` (to whichever batch is next)."""
    store, runner, conv = held_store(tmp_path)
    clock = Clock()
    store.committer.pace_telling(clock, 3)
    heard: Heard = []

    def add(i: int) -> None:
        store.committer.when_durable(conv.messages, _waiter(heard, i))

    for i in range(8):
        add(i)
    return runner, clock, heard, add


def test_a_batch_is_told_a_slice_a_turn_in_order(tmp_path: Path) -> None:
    runner, clock, heard, _ = _eight_waiting(tmp_path)
    runner.release_one()
    assert [i for i, _ in heard] == [0]
    runner.release_one()
    assert [i for i, _ in heard] == [0, 1, 2, 3]
    (later,) = clock.getDelayedCalls()
    assert later.getTime() == clock.seconds()  # the next turn, not a timer
    assert isinstance(later, DelayedCall)
    turn, args, kw = later.func, later.args, later.kw
    later.cancel()
    turn(*args, **kw)  # that turn alone
    assert [i for i, _ in heard] == [0, 1, 2, 3, 4, 5, 6]
    clock.advance(0)
    assert heard == [(i, None) for i in range(8)]
    assert not clock.getDelayedCalls()


def test_a_later_batch_waits_behind_the_rest_of_an_earlier_one(tmp_path: Path) -> None:
    runner, clock, heard, add = _eight_waiting(tmp_path)
    runner.release_one()
    runner.release_one()  # 1..3 told, 4..7 wait for a later turn
    add(8)
    runner.release_one()  # 8's batch is durable before 4..7 have heard
    clock.advance(0)
    clock.advance(0)
    assert heard == [(i, None) for i in range(9)]


def test_a_failed_batch_is_told_after_every_earlier_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _, heard, add = _eight_waiting(tmp_path)
    runner.release_one()
    runner.release_one()
    add(8)

    def failing_sync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(journal, "_os_fdatasync", failing_sync)
    runner.release_one()
    assert heard[:8] == [(i, None) for i in range(8)]  # told at once, before the failure
    assert heard[8][0] == 8 and isinstance(heard[8][1], StorageFailure)


def test_the_server_answers_a_large_batch_a_slice_a_turn(tmp_path: Path) -> None:
    server = server_on(tmp_path)
    alice = logged_in(server, "alice", 40001)
    logged_in(server, "bob", 40002)
    conv = alice.request("open_conversation", peer="bob", envelope=envelope())["conversation"]
    runner = HeldRunner()
    server.store.conversations.committer._run = runner  # type: ignore[attr-defined]
    count = limits.DURABLE_TELLS_PER_TURN + 50
    lines = b"".join(
        json.dumps({"id": 100 + n, "op": "send", "conversation": conv, "epoch": 1,
                    "ciphertext": f"m{n}", "client_id": f"c{n}"}).encode() + b"\n"
        for n in range(count)
    )  # fmt: skip
    alice.send(lines)
    runner.release()  # the first message's batch, then one batch of all the others
    runner.release()
    first = [m for m in alice.received() if m.get("ok")]
    assert 1 < len(first) <= limits.DURABLE_TELLS_PER_TURN + 1
    clock = server.clock
    clock.advance(0)  # type: ignore[attr-defined]
    rest = [m for m in alice.received() if m.get("ok")]
    assert [m["id"] for m in first + rest] == [100 + n for n in range(count)]
