"""Disappearing messages: a timer both sides see; the server stops serving a message when it
expires and deletes its ciphertext from disk within the sweep; the log never held it."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.errors import ClientError
from pychat.client.protocol import RemoteError
from pychat.store.ephemeral import EPHEMERAL_DIR
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import memory_pair


@pytest_twisted.ensureDeferred
async def test_a_timed_message_is_served_until_it_expires_then_gone_from_disk(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(memory, tmp_path)
    await alice.send("bob", "this one stays")
    await alice.disappearing.set("bob", "1h")
    seq = await alice.send("bob", "this one vanishes")
    assert seq is not None
    messages = await bob.read("alice")
    assert [m.text for m in messages] == [
        "this one stays",
        "⏱ alice set disappearing messages to 1h",
        "this one vanishes",
    ]
    assert bob.disappearing.timer("alice") == 3600
    vanishing = messages[-1]
    assert (
        vanishing.expires is not None and 3590 < vanishing.expires - memory.clock.seconds() <= 3600
    )
    blobs = tmp_path / "data" / EPHEMERAL_DIR
    assert len(list(blobs.glob("*.blob"))) == 1
    logs = b"".join(p.read_bytes() for p in (tmp_path / "data" / "conversations").iterdir())
    assert b"vanishes" not in logs and b"vanishes" not in next(blobs.glob("*.blob")).read_bytes()

    memory.advance(3601)
    fresh = memory.client(tmp_path / "bob-new")
    await fresh.login("bob", "pw")
    texts = [m.text for m in await fresh.read("alice")]
    assert "this one vanishes" not in texts and "this one stays" in texts  # no longer served
    assert await memory.chat.store.ephemeral.sweep(memory.clock.seconds()) == 1
    assert list(blobs.glob("*.blob")) == []  # the ciphertext is gone from disk

    await bob.disappearing.set("alice", "off")
    await alice.read("bob")
    assert alice.disappearing.timer("bob") == 0
    later = await alice.send("bob", "stays again")
    assert later is not None and (await bob.read("alice", since=later - 1))[0].expires is None


@pytest_twisted.ensureDeferred
async def test_expiry_times_and_timer_choices_are_checked(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    await memory.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "hello")
    conv = conversation_id("alice", "bob")
    now = int(memory.clock.seconds())
    for bad in (now - 1, now + 9 * 86400):
        with pytest.raises(RemoteError) as caught:
            await alice.request(
                "send", conversation=conv, epoch=1, ciphertext="x", client_id=f"t{bad}", expires=bad
            )
        assert caught.value.code == "bad_field"
    with pytest.raises(ClientError, match="one of off, 5m"):
        await alice.disappearing.set("bob", "2h")
