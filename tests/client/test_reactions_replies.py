"""Reactions and replies: signed messages that name another message by seq and digest; a
server that moves one to another message is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.errors import ClientError
from pychat.client.references import check_reaction, parse_reference
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import memory_pair


@pytest_twisted.ensureDeferred
async def test_a_reaction_and_a_reply_arrive_bound_to_their_message(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(memory, tmp_path)
    first = await alice.send("bob", "shall we meet at the lighthouse at noon tomorrow?")
    assert first is not None
    await bob.react("alice", first, "👍🏽")
    await bob.send("alice", "yes, by the north door", reply_to=first)
    messages = await alice.read("bob")
    original, reaction, reply = messages
    assert reaction.kind == "reaction" and reaction.text == "👍🏽"
    assert reaction.reference is not None and reaction.reference.seq == first
    assert reaction.reference.digest == original.digest
    assert reply.kind == "reply" and reply.text == "yes, by the north door"
    assert reply.reference is not None and reply.reference.seq == first
    assert reply.reference.quote == "shall we meet at the lighthouse at noon tomorrow?"
    assert reply.to_json()["reference"]["seq"] == first
    await bob.react("alice", first, "")  # taking it back is a reaction with no emoji
    assert (await alice.read("bob", since=reply.seq))[0].text == ""


@pytest_twisted.ensureDeferred
async def test_a_reaction_to_a_message_bob_never_saw_is_fetched_and_checked(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(memory, tmp_path)
    seq = await alice.send("bob", "an old message")
    assert seq is not None
    fresh = memory.client(tmp_path / "bob-elsewhere")  # a device that has seen nothing
    await fresh.login("bob", "pw")
    await fresh.react("alice", seq, "🎉")
    (_, reaction) = await alice.read("bob")
    assert reaction.status == "verified" and reaction.reference is not None
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_reactions_and_replies_to_what_is_not_there_are_refused(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    await memory.signed_up(tmp_path / "bob", "bob")
    seq = await alice.send("bob", "hello")
    assert seq is not None
    with pytest.raises(ClientError, match="no message #99"):
        await alice.react("bob", 99, "👍")
    with pytest.raises(ClientError, match="one emoji"):
        await alice.react("bob", seq, "not an emoji")
    with pytest.raises(ClientError, match="no message #99"):
        await alice.send("bob", "re", reply_to=99)


@pytest_twisted.ensureDeferred
async def test_a_reaction_moved_to_another_message_by_the_server_is_rejected(
    memory: MemoryServer, tmp_path: Path
) -> None:
    """The server cannot re-point a reaction: it names the digest of the message it was for."""
    alice, bob = await memory_pair(memory, tmp_path)
    good = await alice.send("bob", "please say yes to this")
    bad = await alice.send("bob", "and no to this")
    assert good is not None and bad is not None
    await bob.react("alice", good, "👍")
    conv = conversation_id("alice", "bob")
    messages = (await alice.request("history", conversation=conv, after=0))["messages"]
    fresh = memory.client(tmp_path / "alice-fresh")  # has seen nothing: asks the server
    await fresh.login("alice", "pw")
    assert (await fresh.messaging.decrypt("bob", messages[2])).status == "verified"

    liar = memory.client(tmp_path / "alice-fresh-2")
    await liar.login("alice", "pw")

    async def swapped(conversation: str, seq: int) -> dict[str, object]:
        return {**messages[1], "seq": seq}  # the server answers with "and no to this"

    liar.messaging.digests.message = swapped  # type: ignore[method-assign]
    moved = await liar.messaging.decrypt("bob", messages[2])
    assert moved.status == "rejected" and "not the message it was about" in (moved.reason or "")
    assert moved.text is None


def test_malformed_references_are_named() -> None:
    digest = "A" * 44
    assert parse_reference("reaction", "👍", {"seq": 1, "hash": digest}, 5).seq == 1  # type: ignore[union-attr]
    assert "earlier" in str(parse_reference("reaction", "👍", {"seq": 5, "hash": digest}, 5))
    assert "earlier" in str(parse_reference("reaction", "👍", {"seq": True, "hash": digest}, 5))
    assert "hash" in str(parse_reference("reply", "x", {"seq": 1, "hash": "short"}, 5))
    assert "quote" in str(parse_reference("reply", "x", {"seq": 1, "hash": digest}, 5))
    assert "emoji" in str(parse_reference("reaction", "ab", {"seq": 1, "hash": digest}, 5))
    assert "no reference" in str(parse_reference("reply", "x", None, 5))
    for fine in ("👍", "🇯🇵", "👍🏽", "❤️", ""):
        check_reaction(fine)
    for wrong in ("a", "👍👍", "ok", "1"):
        with pytest.raises(ClientError):
            check_reaction(wrong)
