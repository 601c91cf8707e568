"""Groups at the protocol level on a real server, on the flat files and on PostgreSQL: made,
chatted in, changed (add, remove, leave, rename), with what the server refuses (a non-admin
who adds, a statement relayed for another, one out of order, an envelope for other members,
a removed member who keeps sending, a send in a stale epoch) and what survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from pychat.client.protocol import RemoteError
from pychat.crypto.group_chain import apply_statement
from pychat.testing import RunningServer, start_server
from tests.chat_helpers import TestUser, login, signup
from tests.group_helpers import TestGroup, identity, key_of

NAMES = ("alice", "bob", "carol", "dave")


async def _everyone(server: RunningServer, names: tuple[str, ...] = NAMES) -> dict[str, TestUser]:
    users = {}
    for name in names:
        await signup(server, name)
        users[name] = await login(server, name)
    return users


async def _refused(request: Any) -> dict[str, Any]:
    with pytest.raises(RemoteError) as info:
        await request
    return {"code": info.value.code, **info.value.error}


async def _send(user: TestUser, group: str, epoch: int, text: str) -> dict[str, Any]:
    return await user.request(
        "send", conversation=group, epoch=epoch, ciphertext=f"opaque {text}", client_id=text
    )


async def _made(users: dict[str, TestUser]) -> TestGroup:
    group = TestGroup()
    create = group.create("alice", "bob", "carol")
    reply = await users["alice"].request(
        "group_create", statement=create, envelope=group.envelope("alice", 0)
    )
    assert reply["members"] == ["alice", "bob", "carol"] and reply["chain"] == 1
    return group


@pytest_twisted.ensureDeferred
async def test_a_group_is_made_chatted_in_and_changed(
    server_on_each_backend: RunningServer,
) -> None:
    users = await _everyone(server_on_each_backend)
    alice, bob, carol, dave = (users[n] for n in NAMES)
    group = await _made(users)
    for member in (bob, carol):
        (push,) = await member.wait_for("group")
        assert push["statements"][0]["op"] == "create"
        assert push["envelope"]["members"].keys() == {"alice", "bob", "carol"}
    assert not dave.of_kind("group")
    assert (await _send(bob, group.id, 1, "hello all"))["seq"] == 1
    for member in (alice, carol):
        (message,) = await member.wait_for("message")
        assert (message["sender"], message["seq"]) == ("bob", 1)
    assert (await _refused(_send(dave, group.id, 1, "let me in")))["code"] == (
        "unknown_conversation"
    )

    # alice adds dave, with the epoch his arrival begins; he sees the group from here on.
    add = group.add("alice", "dave")
    await alice.request(
        "group_change", conversation=group.id, statement=add, envelope=group.envelope("alice", 1)
    )
    (push,) = await dave.wait_for("group")
    assert push["conversation"]["members"] == ["alice", "bob", "carol", "dave"]
    reply = await dave.request("epochs", conversation=group.id)
    assert [s["op"] for s in reply["statements"]] == ["create", "add"]
    assert (await _refused(_send(carol, group.id, 1, "old key")))["code"] == "bad_epoch"
    assert (await _send(dave, group.id, 2, "hi, I'm dave"))["seq"] == 2

    # alice removes carol: carol hears it, and from then on the group does not exist for her.
    remove = group.say("alice", "remove", member="carol")
    await alice.request(
        "group_change", conversation=group.id, statement=remove, envelope=group.envelope("alice", 2)
    )
    pushes = await carol.wait_for("group", 3)  # the create, dave added, her removal
    assert pushes[-1]["conversation"]["removed"] is True
    assert (await _refused(_send(carol, group.id, 2, "still here")))["code"] == (
        "unknown_conversation"
    )
    assert (await _refused(carol.request("history", conversation=group.id)))["code"] == (
        "unknown_conversation"
    )
    listed = await carol.request("conversations")
    assert group.id not in [c["conversation"] for c in listed["conversations"]]

    # bob leaves: no epoch comes with it, and nobody sends until an admin's client makes one.
    leave = group.say("bob", "leave")
    reply = await bob.request("group_change", conversation=group.id, statement=leave)
    assert reply == {"conversation": group.id, "left": True}
    error = await _refused(_send(dave, group.id, 3, "anyone?"))
    assert error["code"] == "bad_epoch" and error["awaits_epoch"] is True
    await alice.request("add_epoch", conversation=group.id, envelope=group.envelope("alice", 2))
    assert (await _send(dave, group.id, 4, "just us"))["seq"] == 3
    rename = group.say("dave", "rename", name="Two of us")
    reply = await dave.request("group_change", conversation=group.id, statement=rename)
    assert reply["chain"] == 5 and reply["members"] == ["alice", "dave"]
    page = await alice.request("history", conversation=group.id)
    assert [m["sender"] for m in page["messages"]] == ["bob", "dave", "dave"]
    # Each member's read marker is their own.
    marked = await alice.request("mark_read", conversation=group.id, seq=2)
    assert (marked["read"], marked["unread"]) == (2, 1)
    (listed,) = (await dave.request("conversations"))["conversations"]
    assert (listed["read"], listed["unread"]) == (3, 0)  # dave sent the last one


@pytest_twisted.ensureDeferred
async def test_what_the_server_refuses_of_a_group(server_on_each_backend: RunningServer) -> None:
    users = await _everyone(server_on_each_backend)
    alice, bob = users["alice"], users["bob"]
    group = await _made(users)

    def change(user: TestUser, statement: dict[str, Any], **more: Any) -> Any:
        return user.request("group_change", conversation=group.id, statement=statement, **more)

    # bob is no admin: his add is refused (the statement is well made and signed).
    dave_fp = identity("dave").fingerprint()
    add = group.draft("bob", "add", member="dave", member_fingerprint=dave_fp)
    error = await _refused(change(bob, add, envelope={"epoch": 2, "after": 0}))
    assert (error["code"], error["reason"]) == ("bad_statement", "not_admin")
    # alice's statement, relayed by bob, is not his to send.
    shadow = group.copy()
    add = shadow.add("alice", "dave")
    error = await _refused(change(bob, add, envelope=shadow.copy().envelope("alice", 0)))
    assert (error["code"], error["reason"]) == ("bad_statement", "not_author")
    # An add without its epoch, and an epoch wrapped for others than the members.
    assert (await _refused(change(alice, add)))["code"] == "bad_field"
    wrong_members = group.copy().envelope("alice", 0)  # made for the chain before the add
    assert (await _refused(change(alice, add, envelope=wrong_members)))["code"] == "bad_field"
    # A signature altered, and a statement that does not follow the chain.
    forged = {**add, "member": "mallory"}
    error = await _refused(change(alice, forged, envelope=shadow.copy().envelope("alice", 0)))
    assert error["code"] == "bad_statement"
    assert (await alice.request("epochs", conversation=group.id))["statements"] == (
        group.statements
    )
    group.add("alice", "dave")  # (never sent: the server's chain stays at 1)
    late = group.say("alice", "rename", name="Later")
    error = await _refused(change(alice, late))
    assert (error["code"], error["reason"], error["n"]) == ("bad_statement", "order", 1)
    # Members added with a key that is not theirs, or who have no account.
    fresh = TestGroup()  # the chain as the server holds it: the create alone
    fresh.statements = group.statements[:1]
    fresh.state = apply_statement(None, fresh.statements[0], key_of)
    wrong_key = fresh.draft("alice", "add", member="dave", member_fingerprint="ab" * 32)
    error = await _refused(change(alice, wrong_key, envelope={"epoch": 2, "after": 0}))
    assert (error["code"], error["reason"]) == ("bad_statement", "unknown_key")
    nobody = fresh.draft("alice", "add", member="nobody", member_fingerprint="ab" * 32)
    error = await _refused(change(alice, nobody, envelope={"epoch": 2, "after": 0}))
    assert (error["code"], error["reason"]) == ("bad_statement", "unknown_user")


@pytest.mark.parametrize("backend", ["files", "postgresql"])
@pytest_twisted.ensureDeferred
async def test_a_group_outlives_a_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    server = await start_server(tmp_path / "data", database=database)
    try:
        users = await _everyone(server, ("alice", "bob", "carol"))
        group = await _made(users)
        await _send(users["bob"], group.id, 1, "before")
        leave = group.say("carol", "leave")
        await users["carol"].request("group_change", conversation=group.id, statement=leave)
    finally:
        await server.stop()
    server = await start_server(tmp_path / "data", database=database)
    try:
        bob = await login(server, "bob")
        (listed,) = (await bob.request("conversations"))["conversations"]
        assert listed["members"] == ["alice", "bob"] and listed["awaits_epoch"] is True
        reply = await bob.request("epochs", conversation=group.id)
        assert reply["statements"] == group.statements
        carol = await login(server, "carol")
        assert (await carol.request("conversations"))["conversations"] == []
    finally:
        await server.stop()
