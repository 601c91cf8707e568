"""Two nodes on one PostgreSQL database serve the same users: alice on one, bob on the
other, chat live (messages pushed after their commit), see each other's presence, typing
and new epochs, share files, and each node knows the accounts and conversations the other
made."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from pychat.client.protocol import RemoteError
from pychat.testing import RunningServer, start_server
from tests.chat_helpers import TestUser, envelope, login, signup
from tests.group_helpers import TestGroup

#: How long a push may take to cross from one node to the other, at most, in these tests.
ACROSS = 5.0


async def two_nodes(pg_url: str, tmp_path: Path) -> tuple[RunningServer, RunningServer]:
    """Two servers on one database, each with its own data dir and the same store key."""
    key = tmp_path / "store.key"
    one = await start_server(tmp_path / "one", database=pg_url, store_key=key)
    two = await start_server(tmp_path / "two", database=pg_url, store_key=key)
    return one, two


Nodes = tuple[RunningServer, RunningServer]


@pytest_twisted.async_yield_fixture
async def nodes(pg_url: str, tmp_path: Path) -> AsyncIterator[Nodes]:
    """Two nodes on one new database, stopped after the test."""
    one, two = await two_nodes(pg_url, tmp_path)
    try:
        yield one, two
    finally:
        await one.stop()
        await two.stop()


async def until(check: object, timeout: float = ACROSS) -> None:
    """Wait (bounded) until ``check()`` is true."""
    for _ in range(int(timeout / 0.02)):
        if check():  # type: ignore[operator]
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("not within the time allowed")


async def chatting(one: RunningServer, two: RunningServer) -> tuple[TestUser, TestUser, str]:
    """alice signed up on node one, bob on node two, both logged in there, and their
    conversation opened by alice."""
    await signup(one, "alice")
    await signup(two, "bob")
    alice = await login(one, "alice")
    await until(lambda: two.chat.store.accounts.get("alice") is not None)
    bob = await login(two, "bob")
    await until(lambda: one.chat.store.accounts.get("bob") is not None)
    opened = await alice.request("open_conversation", peer="bob", envelope=envelope())
    await bob.wait_for("conversation", timeout=ACROSS)  # how bob hears of it, on his node
    return alice, bob, opened["conversation"]


@pytest_twisted.ensureDeferred
async def test_alice_on_one_node_and_bob_on_the_other_chat_live(nodes: Nodes) -> None:
    one, two = nodes
    alice, bob, conv = await chatting(one, two)
    for n in range(5):
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext=f"c{n}", client_id=f"a{n}"
        )
    pushed = await bob.wait_for("message", 5, timeout=ACROSS)
    assert [p["seq"] for p in pushed] == [1, 2, 3, 4, 5]
    assert [p["ciphertext"] for p in pushed] == [f"c{n}" for n in range(5)]
    reply = await bob.request("send", conversation=conv, epoch=1, ciphertext="r", client_id="b")
    assert reply["seq"] == 6
    (back,) = await alice.wait_for("message", timeout=ACROSS)
    assert back["seq"] == 6 and back["sender"] == "bob"
    for user in (alice, bob):
        page = await user.request("history", conversation=conv, after=0, limit=50)
        assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5, 6]
    (mine,) = (await alice.request("conversations"))["conversations"]
    assert (mine["last_seq"], mine["unread"]) == (6, 1)  # bob's, stored by the other node
    soon = int(time.time()) + 600  # a disappearing message: its text in a blob
    await alice.request(
        "send", conversation=conv, epoch=1, ciphertext="brief", client_id="d", expires=soon
    )
    (brief,) = [p for p in await bob.wait_for("message", 6) if p["seq"] == 7]
    assert (brief["ciphertext"], brief["expires"]) == ("brief", soon)


@pytest_twisted.ensureDeferred
async def test_presence_typing_epochs_and_read_markers_cross_nodes(nodes: Nodes) -> None:
    one, two = nodes
    alice, bob, conv = await chatting(one, two)
    listed = await bob.request("conversations")
    assert listed["conversations"][0]["peer_online"] is True  # alice, on the other node
    await alice.request("signal", conversation=conv, ciphertext="typing…")
    (signal,) = await bob.wait_for("signal", timeout=ACROSS)
    assert signal["sender"] == "alice" and signal["ciphertext"] == "typing…"
    await bob.request("add_epoch", conversation=conv, envelope={**envelope(2), "creator": "bob"})
    (epoch,) = await alice.wait_for("epoch", timeout=ACROSS)
    assert epoch["epoch"] == 2
    sent = await alice.request(
        "send", conversation=conv, epoch=2, ciphertext="in two", client_id="e2"
    )
    assert sent["seq"] == 1
    await bob.wait_for("message", timeout=ACROSS)
    bob_again = await login(one, "bob")  # bob's second device, on alice's node
    await bob.request("mark_read", conversation=conv, seq=1)
    (read,) = await bob_again.wait_for("read", timeout=ACROSS)
    assert read["read"] == 1
    bob_again.proto.close()
    await until(lambda: not one.chat.users.get("bob"))
    assert not [p for p in alice.of_kind("presence") if p["online"] is False]
    bob.proto.close()  # his last connection anywhere
    await until(lambda: [p for p in alice.of_kind("presence") if p["online"] is False])
    assert alice.of_kind("presence")[-1] == {
        "event": "presence",
        "user": "bob",
        "online": False,
    }


@pytest_twisted.ensureDeferred
async def test_a_file_sent_through_one_node_is_fetched_through_the_other(nodes: Nodes) -> None:
    one, two = nodes
    alice, bob, conv = await chatting(one, two)
    data = b"sealed bytes of a picture" * 10
    started = await alice.request("file_start", conversation=conv, size=len(data))
    await alice.request(
        "file_chunk", file=started["file"], index=0, data=base64.b64encode(data).decode()
    )
    fetched = None
    for _ in range(int(ACROSS / 0.02)):
        status = await bob.request("file_status", file=started["file"])
        if status["received"] == status["chunks"]:
            fetched = await bob.request("file_get", file=started["file"], index=0)
            break
        await deferLater(reactor, 0.02, lambda: None)
    assert fetched is not None and base64.b64decode(fetched["data"]) == data


@pytest_twisted.ensureDeferred
async def test_an_account_made_on_one_node_is_known_on_the_other(nodes: Nodes) -> None:
    one, two = nodes
    await signup(one, "carol")
    await until(lambda: two.chat.store.accounts.get("carol") is not None)
    carol = await login(two, "carol")
    assert (await carol.request("conversations"))["conversations"] == []
    with pytest.raises(RemoteError) as refused:
        await signup(two, "carol")
    assert refused.value.code == "username_taken"
    await one.chat.set_disabled("carol", True)
    closing = await carol.wait_for("closing", timeout=ACROSS)
    assert closing[0]["reason"] == "account_disabled"


@pytest_twisted.ensureDeferred
async def test_after_the_database_was_away_a_node_catches_up_without_losing_or_doubling(
    tmp_path: Path,
) -> None:
    from tests.pg_server import start_cluster

    cluster = start_cluster()  # its own: this test stops it
    assert cluster is not None
    try:
        one, two = await two_nodes(cluster.create_database("away"), tmp_path)
        try:
            alice, bob, conv = await chatting(one, two)
            await alice.request("send", conversation=conv, epoch=1, ciphertext="0", client_id="0")
            await bob.wait_for("message", timeout=ACROSS)
            cluster.pause()
            with pytest.raises(RemoteError) as refused:
                await alice.request(
                    "send", conversation=conv, epoch=1, ciphertext="x", client_id="x"
                )
            assert refused.value.code == "storage_error"
            cluster.resume()
            # at once: node two's listening connection is still away, its NOTIFYs missed
            for n in range(1, 11):
                await alice.request(
                    "send", conversation=conv, epoch=1, ciphertext=f"{n}", client_id=f"{n}"
                )
            pushed = await bob.wait_for("message", 11, timeout=ACROSS * 2)
            await deferLater(reactor, 0.5, lambda: None)  # room for a push twice
            assert [p["seq"] for p in bob.of_kind("message")] == list(range(1, 12))
            assert [p["ciphertext"] for p in pushed][1:] == [f"{n}" for n in range(1, 11)]
        finally:
            await one.stop()
            await two.stop()
    finally:
        cluster.stop()


async def wrong_password(server: RunningServer, name: str) -> str:
    """A login with a wrong password: the error code it ends with."""
    try:
        await login(server, name, "not the password")
    except RemoteError as exc:
        return exc.code
    raise AssertionError("a wrong password was let in")


@pytest_twisted.ensureDeferred
async def test_failed_logins_and_signups_count_on_every_node_and_on_one_that_starts_later(
    pg_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "store.key"
    one = await start_server(tmp_path / "one", database=pg_url, store_key=key, signups_per_hour=2)
    two = await start_server(tmp_path / "two", database=pg_url, store_key=key, signups_per_hour=2)
    three = None
    try:
        await signup(one, "dora")
        for _ in range(5):  # the free failures, all on node one
            assert await wrong_password(one, "dora") == "auth_failed"
        assert await wrong_password(one, "dora") == "auth_failed"  # locks the account
        await until(lambda: two.chat.account_service.logins.account_failures.retry_after("dora"))
        assert await wrong_password(two, "dora") == "rate_limited"  # locked on node two too
        await signup(two, "eve")  # the address's second signup this hour, on the other node
        signups = one.chat.account_service.signups
        assert signups is not None
        await until(lambda: signups.retry_after("127.0.0.1"))
        with pytest.raises(RemoteError) as refused:
            await signup(one, "fred")
        assert refused.value.code == "rate_limited"
        three = await start_server(
            tmp_path / "three", database=pg_url, store_key=key, signups_per_hour=2
        )
        failures = three.chat.account_service.logins.account_failures.failures
        await until(lambda: failures("dora")[0] == 6)  # replayed at its start
        with pytest.raises(RemoteError) as refused:
            await signup(three, "fred")
        assert refused.value.code == "rate_limited"  # a node that starts later knows them
    finally:
        for server in (one, two, three):
            if server is not None:
                await server.stop()


@pytest_twisted.ensureDeferred
async def test_an_invite_made_on_one_node_makes_one_account_on_any(
    pg_url: str, tmp_path: Path
) -> None:
    from pychat.client import auth
    from tests.accounts_helpers import KDF, public_keys

    key = tmp_path / "store.key"
    one = await start_server(tmp_path / "one", database=pg_url, store_key=key, signup="invite")
    two = await start_server(tmp_path / "two", database=pg_url, store_key=key, signup="invite")

    async def signup_with(server: RunningServer, name: str, code: str) -> None:
        proto = await server.connect(hello=False)
        params = auth.srp_params_from_hello(await proto.request("hello", version=1))
        try:
            await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF, invite=code)
        finally:
            proto.close()

    try:
        code, _ = await one.chat.signup_gate.create(one.chat.clock.seconds(), 1.0)
        await signup_with(two, "gina", code)
        for server in (one, two):
            with pytest.raises(RemoteError) as refused:
                await signup_with(server, "hank", code)
            assert refused.value.code == "bad_invite"
    finally:
        await one.stop()
        await two.stop()


@pytest_twisted.ensureDeferred
async def test_a_send_checked_against_epochs_another_node_has_passed_is_refused(
    nodes: Nodes,
) -> None:
    one, two = nodes
    _, bob, conv = await chatting(one, two)
    bob_elsewhere = await login(one, "bob")
    assert two.chat.bus is not None
    await two.chat.bus.stop()  # node two hears nothing more from node one
    placed = {**envelope(2), "v": 2, "after": 0, "creator": "bob"}
    await bob_elsewhere.request("add_epoch", conversation=conv, envelope=placed)
    assert len(two.chat.store.conversations.get(conv).epochs) == 1  # type: ignore[union-attr]
    with pytest.raises(RemoteError) as refused:  # bob's device on node two, in epoch 1
        await bob.request("send", conversation=conv, epoch=1, ciphertext="old", client_id="o")
    assert refused.value.code == "bad_epoch"
    await until(lambda: len(two.chat.store.conversations.get(conv).epochs) == 2)  # type: ignore[union-attr]
    with pytest.raises(RemoteError) as told:  # now checked on node two itself
        await bob.request("send", conversation=conv, epoch=1, ciphertext="old", client_id="o")
    assert told.value.code == "bad_epoch" and "you began epoch 2" in told.value.message
    sent = await bob.request("send", conversation=conv, epoch=2, ciphertext="new", client_id="n")
    assert sent["seq"] == 1


@pytest_twisted.ensureDeferred
async def test_history_on_a_node_holds_what_another_stored_before_its_event_arrives(
    nodes: Nodes,
) -> None:
    one, two = nodes
    alice, bob, conv = await chatting(one, two)
    assert two.chat.bus is not None
    await two.chat.bus.stop()  # node two hears nothing more from node one
    for n in range(3):
        await alice.request("send", conversation=conv, epoch=1, ciphertext=f"{n}", client_id=f"{n}")
    page = await bob.request("history", conversation=conv, after=0, limit=50)
    assert [m["ciphertext"] for m in page["messages"]] == ["0", "1", "2"]
    assert page["last_seq"] == 3 and not page["has_more"]


@pytest_twisted.ensureDeferred
async def test_real_clients_on_two_nodes_chat_react_and_flip_fairly(
    nodes: Nodes, tmp_path: Path
) -> None:
    from tests.client_helpers import collect, signed_up

    one, two = nodes
    alice = await signed_up(one, tmp_path / "alice", "alice")
    bob = await signed_up(two, tmp_path / "bob", "bob")
    await until(lambda: one.chat.store.accounts.get("bob") is not None)
    alice_events, bob_events = collect(alice), collect(bob)
    await alice.send("bob", "heads or tails?")
    await until(lambda: any(e.kind == "message" for e in bob_events))
    await bob.react("alice", 1, "👍")
    await until(lambda: any(e.kind == "message" for e in alice_events))  # bob's reaction
    (_, reaction) = await alice.read("bob")
    assert (reaction.kind, reaction.text, reaction.status) == ("reaction", "👍", "verified")
    game = await alice.games.start("bob", "flip")

    def result(events: list[Any]) -> list[str]:
        return [e.data["text"] for e in events if e.kind == "game" and e.data["game"] == game]

    await until(lambda: result(alice_events) and result(bob_events))
    assert result(alice_events) == result(bob_events)
    assert result(alice_events)[0].startswith("🪙 ") and "— fair" in result(alice_events)[0]
    texts = [m.text for m in await bob.read("alice")]
    assert texts[0] == "heads or tails?" and texts[-1] == result(bob_events)[0]
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_a_node_away_longer_than_events_are_kept_reads_everything_again(
    nodes: Nodes, pg_url: str
) -> None:
    import psycopg

    from pychat.server.cluster import FELL_BEHIND

    one, two = nodes
    alice, _, conv = await chatting(one, two)
    bus: Any = two.chat.bus
    bus._stopped = True  # node two stops reading, as if cut off from the database
    await signup(one, "ivy")
    await alice.request("send", conversation=conv, epoch=1, ciphertext="x", client_id="x")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM pychat_events")  # meanwhile swept away
    bus._stopped = False
    bus._last_read = two.chat.clock.seconds() - FELL_BEHIND - 1
    bus.read()
    known = two.chat.store.conversations.get(conv)
    assert known is not None
    await until(lambda: two.chat.store.accounts.get("ivy") is not None and known.last_seq == 1)


@pytest_twisted.ensureDeferred
async def test_a_group_changed_on_one_node_is_followed_on_the_other(nodes: Nodes) -> None:
    one, two = nodes
    for name, node in (("alice", one), ("bob", two), ("carol", two)):
        await signup(node, name)
    await until(lambda: all(n.chat.store.accounts.get("carol") for n in (one, two)))
    alice, bob, carol = (
        await login(one, "alice"),
        await login(two, "bob"),
        await login(two, "carol"),
    )
    group = TestGroup()
    create = group.create("alice", "bob", "carol")
    await alice.request("group_create", statement=create, envelope=group.envelope("alice", 0))
    await bob.wait_for("group", timeout=ACROSS)
    await bob.request("send", conversation=group.id, epoch=1, ciphertext="c", client_id="b1")
    (pushed,) = await alice.wait_for("message", timeout=ACROSS)
    assert (pushed["sender"], pushed["seq"]) == ("bob", 1)
    # Removed on node one; node two follows: carol's send there is refused, bob's new
    # epoch taken.
    remove = group.say("alice", "remove", member="carol")
    await alice.request(
        "group_change", conversation=group.id, statement=remove, envelope=group.envelope("alice", 1)
    )
    await carol.wait_for("group", 2, timeout=ACROSS)
    with pytest.raises(RemoteError) as info:
        await carol.request("send", conversation=group.id, epoch=2, ciphertext="x", client_id="c")
    assert info.value.code == "unknown_conversation"
    reply = await bob.request(
        "send", conversation=group.id, epoch=2, ciphertext="d", client_id="b2"
    )
    assert reply["seq"] == 2
    # Two admins' changes at once on two nodes: the database takes one statement 3.
    admin = group.say("alice", "admin", member="bob")
    await alice.request("group_change", conversation=group.id, statement=admin)
    await until(lambda: _chain_length(two, group.id) == 3)
    first = group.copy().say("alice", "rename", name="From alice")
    second = group.copy().say("bob", "rename", name="From bob")
    replies = await defer.DeferredList(
        [
            alice.request("group_change", conversation=group.id, statement=first),
            bob.request("group_change", conversation=group.id, statement=second),
        ],
        consumeErrors=True,
    )
    assert sorted(ok for ok, _ in replies) == [False, True]
    for node in (one, two):
        await until(lambda n=node: _chain_length(n, group.id) == 4)


def _chain_length(node: RunningServer, group: str) -> int:
    conv = node.chat.store.conversations.get(group)
    return 0 if conv is None or conv.group is None else conv.group.state.n
