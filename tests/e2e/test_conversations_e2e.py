"""Conversations end to end: several users, several connections each, on the in-memory server
(every push has arrived when the request that caused it returns: no polling, no sleeping)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from pychat.client.protocol import RemoteError
from pychat.testing import MemoryServer, start_server
from tests.chat_helpers import envelope, login, signup


def ciphertext(text: str) -> str:
    """What a client sends: opaque to the server (here random bytes, not the text)."""
    return base64.b64encode(os.urandom(len(text) + 16)).decode()


async def three_users(server: MemoryServer) -> None:
    for name in ("alice", "bob", "mallory"):
        await signup(server, name)


@pytest_twisted.ensureDeferred
async def test_open_send_and_live_push_to_every_connection(server: MemoryServer) -> None:
    await three_users(server)
    alice, alice2 = await login(server, "alice"), await login(server, "alice")
    bob1, bob2 = await login(server, "bob"), await login(server, "bob")

    opened = await alice.request("open_conversation", peer="Bob", envelope=envelope())
    assert opened["created"] and opened["peer"] == "bob" and opened["envelopes"] == [envelope()]
    again = await bob1.request("open_conversation", peer="alice")
    assert again["conversation"] == opened["conversation"] and not again["created"]
    await bob2.wait_for("conversation")

    sent = await alice.request(
        "send", conversation=opened["conversation"], epoch=1, ciphertext="Y3Q=", client_id="m1"
    )
    assert sent["seq"] == 1 and not sent["duplicate"]
    for conn in (bob1, bob2, alice2):
        (push,) = await conn.wait_for("message")
        assert push["seq"] == 1 and push["sender"] == "alice" and push["ciphertext"] == "Y3Q="
    assert alice.of_kind("message") == []  # the sending connection has its reply

    by_peer = await bob2.request("send", peer="alice", epoch=1, ciphertext="cmU=", client_id="r1")
    assert by_peer["seq"] == 2


@pytest_twisted.ensureDeferred
async def test_offline_delivery_unread_counts_and_mark_read(server: MemoryServer) -> None:
    await three_users(server)
    alice = await login(server, "alice")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    for i in range(5):
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext=ciphertext("x"), client_id=f"c{i}"
        )

    bob = await login(server, "bob")  # bob was offline for all of it
    (entry,) = (await bob.request("conversations"))["conversations"]
    assert entry["peer"] == "alice" and entry["unread"] == 5 and entry["last_seq"] == 5
    assert entry["peer_online"] is True
    page = await bob.request("history", conversation=conv)
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5]

    bob_phone = await login(server, "bob")
    marked = await bob.request("mark_read", conversation=conv, seq=3)
    assert marked["unread"] == 2
    (read_push,) = await bob_phone.wait_for("read")
    assert read_push == {"event": "read", "conversation": conv, "read": 3, "unread": 2}
    (entry,) = (await bob_phone.request("conversations"))["conversations"]
    assert entry["unread"] == 2
    # the sender's own messages are read for the sender
    (mine,) = (await alice.request("conversations"))["conversations"]
    assert mine["unread"] == 0


@pytest_twisted.ensureDeferred
async def test_paging_both_ways_across_a_thousand_messages(server: MemoryServer) -> None:
    await signup(server, "alice")
    await signup(server, "bob")
    alice = await login(server, "alice")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    # Pipelined: many sends share one fsync, replies still come in order.
    replies = await defer.gatherResults(
        [
            alice.request(
                "send", conversation=conv, epoch=1, ciphertext=f"m{i}", client_id=f"id{i}"
            )
            for i in range(1000)
        ]
    )
    assert [r["seq"] for r in replies] == list(range(1, 1001))
    bob = await login(server, "bob")

    backwards: list[int] = []
    before = None
    while True:
        fields = {"conversation": conv, "limit": 100}
        if before is not None:
            fields["before"] = before
        page = await bob.request("history", **fields)
        seqs = [m["seq"] for m in page["messages"]]
        backwards = seqs + backwards
        if not page["has_more"]:
            break
        before = seqs[0]
    assert backwards == list(range(1, 1001))

    forwards: list[int] = []
    after = 0
    while True:
        page = await bob.request("history", conversation=conv, after=after, limit=77)
        forwards += [m["seq"] for m in page["messages"]]
        if not page["has_more"]:
            break
        after = forwards[-1]
    assert forwards == list(range(1, 1001))
    assert [
        m["ciphertext"]
        for m in (await bob.request("history", conversation=conv, after=499, limit=2))["messages"]
    ] == ["m499", "m500"]


@pytest_twisted.ensureDeferred
async def test_a_retried_send_is_stored_once(server: MemoryServer) -> None:
    await signup(server, "alice")
    await signup(server, "bob")
    alice = await login(server, "alice")
    bob = await login(server, "bob")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    first = await alice.request(
        "send", conversation=conv, epoch=1, ciphertext="b25l", client_id="same"
    )
    retry = await alice.request(
        "send", conversation=conv, epoch=1, ciphertext="b25l", client_id="same"
    )
    assert retry["seq"] == first["seq"] and retry["duplicate"] is True
    page = await bob.request("history", conversation=conv)
    assert [m["seq"] for m in page["messages"]] == [1]
    await bob.wait_for("message")
    assert len(bob.of_kind("message")) == 1


@pytest_twisted.ensureDeferred
async def test_third_user_can_neither_read_page_send_nor_list(server: MemoryServer) -> None:
    await three_users(server)
    alice = await login(server, "alice")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    await alice.request("send", conversation=conv, epoch=1, ciphertext="c2Vj", client_id="1")
    mallory = await login(server, "mallory")
    attempts = [
        ("history", {"conversation": conv}),
        ("history", {"conversation": conv, "after": 0}),
        ("send", {"conversation": conv, "epoch": 1, "ciphertext": "eA==", "client_id": "z"}),
        ("mark_read", {"conversation": conv, "seq": 1}),
        ("epochs", {"conversation": conv}),
        ("add_epoch", {"conversation": conv, "envelope": envelope(2)}),
    ]
    for op, fields in attempts:
        with pytest.raises(RemoteError) as info:
            await mallory.request(op, **fields)
        assert info.value.code == "unknown_conversation", op
    with pytest.raises(RemoteError) as info:
        await mallory.request("send", peer="alice", epoch=1, ciphertext="eA==", client_id="z")
    assert info.value.code == "unknown_conversation"
    assert (await mallory.request("conversations"))["conversations"] == []
    assert mallory.of_kind("message") == []


@pytest_twisted.ensureDeferred
async def test_bad_conversation_requests(server: MemoryServer) -> None:
    await signup(server, "alice")
    await signup(server, "bob")
    alice = await login(server, "alice")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("open_conversation", {"peer": "alice", "envelope": envelope()}, "self_conversation"),
        ("open_conversation", {"peer": "ghost", "envelope": envelope()}, "unknown_user"),
        ("open_conversation", {"peer": "bob"}, "bad_field"),
        ("open_conversation", {"peer": "bob", "envelope": envelope(2)}, "bad_epoch"),
        ("get_keys", {"username": "ghost"}, "unknown_user"),
    ]
    for op, fields, code in cases:
        with pytest.raises(RemoteError) as info:
            await alice.request(op, **fields)
        assert info.value.code == code, (op, fields)
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    too_big = "x" * (server.chat.config.max_ciphertext + 1)
    more = [
        (
            "send",
            {"conversation": conv, "epoch": 1, "ciphertext": too_big, "client_id": "b"},
            "message_too_large",
        ),
        (
            "send",
            {"conversation": conv, "epoch": 2, "ciphertext": "eA==", "client_id": "c"},
            "bad_epoch",
        ),
        ("send", {"epoch": 1, "ciphertext": "eA==", "client_id": "d"}, "bad_field"),
        ("history", {"conversation": conv, "before": 5, "after": 1}, "bad_field"),
        ("history", {"conversation": conv, "limit": 1000}, "bad_field"),
        ("add_epoch", {"conversation": conv, "envelope": envelope(5)}, "bad_epoch"),
    ]
    for op, fields, code in more:
        with pytest.raises(RemoteError) as info:
            await alice.request(op, **fields)
        assert info.value.code == code, (op, code)
    assert (await alice.request("add_epoch", conversation=conv, envelope=envelope(2)))["epoch"] == 2
    sent = await alice.request("send", conversation=conv, epoch=2, ciphertext="eA==", client_id="e")
    assert sent["seq"] == 1


@pytest_twisted.ensureDeferred
async def test_data_dir_holds_no_plaintext_and_no_usernames_in_names(tmp_path: Path) -> None:
    # (on PostgreSQL: the canary over a pg_dump, tests/e2e/test_postgresql_server.py)
    server = MemoryServer(tmp_path / "data")
    canary = "CANARY-the-eagle-lands-at-dawn-7f3a"
    await signup(server, "alice")
    await signup(server, "bob")
    alice = await login(server, "alice")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    for i in range(20):
        # a careless client sending its plaintext as "ciphertext": still sealed at rest
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext=f"{canary} {i}", client_id=str(i)
        )
    data_dir: Path = server.config.data_dir
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".msg" for p in files)
    for path in files:
        raw = path.read_bytes()
        assert canary.encode() not in raw, path  # '-' is not base64: no chance match
        # Usernames are short enough to turn up inside random base64 by chance, so look for
        # them in everything except the sealed (base64) payloads.
        clear = _without_base64_payloads(raw)
        assert b"alice" not in clear and b"bob" not in clear, path
        assert "alice" not in path.name and "bob" not in path.name


def _without_base64_payloads(raw: bytes) -> bytes:
    """The file with every long base64 run (sealed records, PEM bodies) blanked out."""
    return re.sub(rb"[A-Za-z0-9+/=]{24,}", b"", raw)


@pytest_twisted.ensureDeferred
async def test_presence_and_key_change_pushes(server: MemoryServer) -> None:
    from pychat.crypto.identity import IdentityKeyPair, rotation_statement
    from tests.accounts_helpers import keypair

    await signup(server, "alice")
    await signup(server, "bob")
    alice = await login(server, "alice")
    await alice.request("open_conversation", peer="bob", envelope=envelope())
    bob = await login(server, "bob")
    (online,) = await alice.wait_for("presence")
    assert online == {"event": "presence", "user": "bob", "online": True}
    bob.proto.close()
    await alice.wait_for("presence", 2)
    assert alice.of_kind("presence")[-1]["online"] is False

    bob = await login(server, "bob")
    await alice.wait_for("presence", 3)
    new = IdentityKeyPair.generate().public()
    statement = rotation_statement("alice", 2, new.fingerprint())
    forged = base64.b64encode(IdentityKeyPair.generate().signing.sign(statement)).decode()
    with pytest.raises(RemoteError) as info:
        await alice.request("rotate_keys", public_keys=new.to_json(), signature=forged)
    assert info.value.code == "bad_signature"
    good = base64.b64encode(keypair().signing.sign(statement)).decode()
    rotated = await alice.request("rotate_keys", public_keys=new.to_json(), signature=good)
    assert rotated["key_version"] == 2 and rotated["fingerprint"] == new.fingerprint()
    (changed,) = await bob.wait_for("keys_changed")
    assert changed["user"] == "alice" and changed["key_version"] == 2
    history = (await bob.request("key_history", username="alice"))["history"]
    assert [h["key_version"] for h in history] == [1, 2] and history[1]["signature"] == good

    await bob.request("set_presence", share=False)
    (entry,) = (await alice.request("conversations"))["conversations"]
    assert entry["peer_online"] is None


@pytest_twisted.async_yield_fixture(params=["files", "postgresql"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The same scenarios on both backends: the in-memory server on flat files, and a real
    server over TLS on PostgreSQL (where a push is waited for, bounded)."""
    if request.param == "files":
        yield MemoryServer(tmp_path / "data")
        return
    running = await start_server(tmp_path / "data", database=request.getfixturevalue("pg_url"))
    try:
        yield running
    finally:
        await running.stop()
