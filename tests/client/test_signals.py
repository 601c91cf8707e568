"""Typing and read signals: relayed end to end, never stored, opt-in on both sides, limited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from pychat.client.events import ClientEvent
from pychat.client.protocol import RemoteError
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import collect, memory_pair


def _signals(events: list[ClientEvent]) -> list[tuple[str, str, int | None]]:
    return [(e.data["peer"], e.data["kind"], e.data["seq"]) for e in events if e.kind == "signal"]


@pytest_twisted.ensureDeferred
async def test_typing_and_read_reach_the_peer_only_when_both_have_them_on(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(memory, tmp_path)
    seq = await alice.send("bob", "hello")
    await bob.read("alice")
    heard = collect(alice)
    assert await bob.signals.send("alice", "typing") is False  # bob has them off: nothing sent
    bob.signals.enabled = True
    assert await bob.signals.send("alice", "typing") is True
    assert _signals(heard) == []  # alice has them off: she does not see bob's
    alice.signals.enabled = True
    await bob.signals.send("alice", "typing")
    await bob.signals.send("alice", "read", seq)
    assert _signals(heard) == [("bob", "typing", None), ("bob", "read", seq)]
    assert (await alice.conversations())[0]["last_seq"] == 1  # nothing was stored


@pytest_twisted.ensureDeferred
async def test_a_stale_forged_or_foreign_signal_is_dropped(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(memory, tmp_path)
    await alice.send("bob", "hello")
    await bob.read("alice")
    alice.signals.enabled = bob.signals.enabled = True
    sent: list[dict[str, Any]] = []
    original = bob.request

    async def keep(op: str, **fields: object) -> dict[str, Any]:
        if op == "signal":
            sent.append(dict(fields))
        return await original(op, **fields)

    bob.request = keep  # type: ignore[method-assign]
    heard = collect(alice)
    await bob.signals.send("alice", "typing")
    conv = conversation_id("alice", "bob")
    replay = {"event": "signal", "conversation": conv, "sender": "bob", **sent[0]}
    memory.advance(120)  # two minutes later the server replays it
    await alice.pushes.handle(replay)
    await alice.pushes.handle({**replay, "sender": "carol"})  # not from this conversation
    await alice.pushes.handle({**replay, "ciphertext": "garbage"})
    await alice.pushes.handle({**replay, "sender": 7})
    assert _signals(heard) == [("bob", "typing", None)]  # only the live one


@pytest_twisted.ensureDeferred
async def test_signals_are_rate_limited_and_need_membership(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    await memory.signed_up(tmp_path / "bob", "bob")
    carol = await memory.signed_up(tmp_path / "carol", "carol")
    await alice.send("bob", "hello")
    conv = conversation_id("alice", "bob")
    for _ in range(20):
        await alice.request("signal", conversation=conv, ciphertext="x")
    with pytest.raises(RemoteError) as caught:
        await alice.request("signal", conversation=conv, ciphertext="x")
    assert caught.value.code == "rate_limited" and caught.value.error["retry_after"] >= 1
    with pytest.raises(RemoteError) as caught:
        await carol.request("signal", conversation=conv, ciphertext="x")
    assert caught.value.code == "unknown_conversation"
    with pytest.raises(RemoteError) as caught:
        await carol.request("signal", conversation=conv, ciphertext="x" * 3000)
    assert caught.value.code == "bad_field"
