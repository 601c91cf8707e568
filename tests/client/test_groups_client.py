"""Groups through the client library (pychat/client/group_actions.py): three people make a
group, chat, add a fourth (who reads from his epoch on), remove one (who cannot read what
follows), leave and rename; and what a hostile server tries is caught (a fork of the chain,
a message replayed, an old epoch speaking after a removal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.errors import ClientError
from pychat.client.group_actions import statement_text
from pychat.client.group_keys import GroupForked
from pychat.client.session import ChatClient
from pychat.crypto.e2e import MESSAGE_VERSION, seal_message, time_ms
from pychat.testing import MemoryServer
from tests.client_helpers import collect


async def _people(memory: MemoryServer, tmp_path: Path, *names: str) -> list[ChatClient]:
    return [await memory.signed_up(tmp_path / name, name) for name in names]


@pytest_twisted.ensureDeferred
async def test_a_group_chats_grows_and_shrinks(memory: MemoryServer, tmp_path: Path) -> None:
    alice, bob, carol, dave = await _people(memory, tmp_path, "alice", "bob", "carol", "dave")
    group = await alice.groups.create("Family", ["bob", "carol"])
    assert (await bob.groups.find("Family")) == group
    await bob.groups.send(group, "hello all")
    await carol.groups.send(group, "waves", kind="action")
    read = await alice.groups.read(group)
    assert [(m.sender, m.text, m.status) for m in read] == [
        ("bob", "hello all", "verified"),
        ("carol", "waves", "verified"),
    ]
    await alice.groups.add(group, "dave")
    await dave.groups.send(group, "hi, I'm dave")
    seen_by_dave = await dave.groups.read(group)
    assert [m.status for m in seen_by_dave[:2]] == ["rejected", "rejected"]  # before he came
    assert "no key of epoch 1" in (seen_by_dave[0].reason or "")
    assert seen_by_dave[2].text == "hi, I'm dave"

    await alice.groups.change(group, "remove", member="carol")
    await bob.groups.send(group, "carol is gone")
    with pytest.raises(ClientError):  # the group does not exist for her any more
        await carol.groups.read(group)
    number_alice, _ = await alice.groups.verify(group)
    number_dave, _ = await dave.groups.verify(group)
    assert number_alice == number_dave

    alice.drop_connection()  # the only admin is away when bob leaves
    await bob.groups.change(group, "leave")
    with pytest.raises(ClientError, match="waits for a new key"):
        await dave.groups.send(group, "anyone?")
    await alice.relogin()
    await alice.groups.send(group, "still here")  # alice, an admin, makes the epoch first
    await dave.groups.send(group, "yes")
    await dave.groups.change(group, "rename", name="Two of us")
    texts = [m.text for m in await alice.groups.read(group, since=3)]
    assert texts == ["carol is gone", "still here", "yes"]
    (listed,) = await alice.groups.summaries()
    assert (listed["name"], listed["members"]) == ("Two of us", ["alice", "dave"])


@pytest_twisted.ensureDeferred
async def test_a_server_that_forks_the_chain_or_replays_is_caught(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await _people(memory, tmp_path, "alice", "bob")
    group = await alice.groups.create("Club", ["bob"])
    await alice.groups.send(group, "one")
    assert [m.status for m in await bob.groups.read(group)] == ["verified"]
    # The server serves bob another statement 1 than the one he accepted: a fork.
    _, data = bob.require_login()
    data.groups[group]["hashes"][0] = "0" * 64
    with pytest.raises(GroupForked, match="forked"):
        await bob.groups.read(group)
    data.groups[group]["hashes"].append("f" * 64)  # and one he saw that is gone: a rewind
    data.groups[group]["hashes"][0] = (await alice.groups.keys.load(group)).states[0].head
    with pytest.raises(GroupForked, match="rewound"):
        await bob.groups.read(group)
    data.groups[group]["hashes"].pop()
    # A message served again at another seq is a replay.
    view = await bob.groups.keys.load(group)
    (message,) = (await bob.request("history", conversation=group))["messages"]
    again = await bob.groups.check(group, view, {**message, "seq": 7})
    assert again.status == "rejected" and "replay" in (again.reason or "")


@pytest_twisted.ensureDeferred
async def test_a_removed_member_who_keeps_sending_is_refused(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, carol = await _people(memory, tmp_path, "alice", "bob", "carol")
    group = await alice.groups.create("Club", ["bob", "carol"])
    await carol.groups.send(group, "while a member")
    await alice.groups.change(group, "remove", member="carol")
    await bob.groups.send(group, "after carol")
    # A server on carol's side serves what she sealed with the key she kept (epoch 1), placed
    # after her removal began epoch 2; and one from a user never in the group.
    _, data = carol.require_login()
    key = data.conversation_keys[group]["1"].encode()
    inner = {
        "v": MESSAGE_VERSION,
        "sender": "carol",
        "device": data.device_id,
        "recipient": group,
        "conversation": group,
        "epoch": 1,
        "counter": 10_000,
        "time": time_ms(memory.clock.seconds()),
        "body": "I am still here",
    }
    forged = {
        "conversation": group,
        "seq": 3,
        "sender": "carol",
        "epoch": 1,
        "ciphertext": seal_message(key, data.identity, inner),
        "client_id": "x",
        "time": memory.clock.seconds(),
    }
    view = await bob.groups.keys.load(group)
    checked = await bob.groups.check(group, view, forged)
    assert checked.status == "rejected" and "old key" in (checked.reason or "")
    stranger = await bob.groups.check(group, view, {**forged, "sender": "mallory", "seq": 2})
    assert stranger.status == "rejected" and "not a member" in (stranger.reason or "")


@pytest_twisted.ensureDeferred
async def test_members_hear_messages_and_changes_live(memory: MemoryServer, tmp_path: Path) -> None:
    alice, bob, carol = await _people(memory, tmp_path, "alice", "bob", "carol")
    heard = {name: collect(c) for name, c in (("alice", alice), ("bob", bob), ("carol", carol))}
    group = await alice.groups.create("Club", ["bob", "carol"])
    await bob.groups.send(group, "live")
    for name in ("alice", "carol"):
        (message,) = [e.message for e in heard[name] if e.kind == "message"]
        assert message is not None and (message.text, message.status) == ("live", "verified")
    assert [e.data["name"] for e in heard["carol"] if e.kind == "group"] == ["Club"]
    # carol leaves; alice's client, online and an admin, makes the epoch the group awaits at
    # once, so bob can send without waiting.
    await carol.groups.change(group, "leave")
    (told,) = [e.data for e in heard["alice"] if e.kind == "group"][-1:]
    assert "carol left" in statement_text(told["statement"])
    assert (await bob.groups.send(group, "just us")) == 2
    assert (await alice.groups.read(group, since=1))[0].text == "just us"
    # Catching up after a reconnect brings what came meanwhile.
    alice.drop_connection()
    await bob.groups.send(group, "while you were away")
    await alice.relogin()
    await alice.catch_up()
    texts = [e.message.text for e in heard["alice"] if e.kind == "message" and e.message]
    assert texts[-1] == "while you were away"


@pytest_twisted.ensureDeferred
async def test_reactions_replies_files_and_timers_in_a_group(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, carol = await _people(memory, tmp_path, "alice", "bob", "carol")
    group = await alice.groups.create("Club", ["bob", "carol"])
    target = f"#{group}"
    assert await alice.send(target, "dinner at 8?") == 1
    assert await bob.react(target, 1, "👍") == 2
    assert await carol.send(target, "yes!", reply_to=1) == 3
    source = tmp_path / "menu.txt"
    source.write_bytes(b"soup, bread")
    seq = await bob.files.send(target, source)
    assert seq == 4
    saved = await carol.files.fetch(target, seq, tmp_path / "down")
    assert saved.read_bytes() == b"soup, bread"
    await alice.disappearing.set(target, "1h")
    await carol.send(target, "gone in an hour")
    read = await alice.read(target)
    assert [(m.sender, m.kind, m.status) for m in read] == [
        ("alice", "text", "verified"),
        ("bob", "reaction", "verified"),
        ("carol", "reply", "verified"),
        ("bob", "file", "verified"),
        ("alice", "disappear", "verified"),
        ("carol", "text", "verified"),
    ]
    assert read[1].reference is not None and read[1].reference.seq == 1
    assert read[2].reference is not None and read[2].reference.quote == "dinner at 8?"
    assert read[5].expires is not None
    assert bob.disappearing.timer(target) == 3600


@pytest_twisted.ensureDeferred
async def test_typing_in_a_group_and_no_games_there(memory: MemoryServer, tmp_path: Path) -> None:
    alice, bob, carol = await _people(memory, tmp_path, "alice", "bob", "carol")
    group = await alice.groups.create("Club", ["bob", "carol"])
    await carol.groups.view(group)
    heard = collect(carol)
    for client in (bob, carol):
        client.signals.enabled = True
    assert await bob.signals.send(f"#{group}", "typing")
    (signal,) = [e.data for e in heard if e.kind == "signal"]
    assert (signal["peer"], signal["sender"], signal["kind"]) == (f"#{group}", "bob", "typing")
    with pytest.raises(ClientError, match="between two people"):
        await alice.games.start(f"#{group}", "flip")
