"""The real server on PostgreSQL (``--database``): people sign up, chat and read history as
on the flat files, a restart keeps everything, and a wrong database stops the start in one
line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from pychat.client import auth
from pychat.server.tap import StartupError
from pychat.testing import start_server
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope
from tests.client_helpers import signed_up
from tests.pg_server import PgCluster
from tests.process_helpers import connect_srp, history_of, logged_in


@pytest_twisted.ensureDeferred
async def test_two_people_chat_through_a_server_on_postgresql_and_a_restart_keeps_it(
    pg_url: str, tmp_path: Path
) -> None:
    server = await start_server(tmp_path / "data", database=pg_url)
    try:
        alice = await signed_up(server, tmp_path / "alice", "alice")
        bob = await signed_up(server, tmp_path / "bob", "bob")
        for text in ("one", "two", "three"):
            await alice.send("bob", text)
        await bob.send("alice", "got them")
        assert [(m.text, m.status) for m in await bob.read("alice")] == [
            ("one", "verified"),
            ("two", "verified"),
            ("three", "verified"),
            ("got them", "verified"),
        ]
        await alice.close()
        await bob.close()
    finally:
        await server.stop()
    assert not any((tmp_path / "data").glob("conversations/*.msg"))  # nothing in files
    again = await start_server(tmp_path / "data", database=pg_url)
    try:
        from tests.client_helpers import client_for

        bob = client_for(again, tmp_path / "bob")
        await bob.login("bob", "pw")
        seen = await bob.read("alice")
        assert [m.seq for m in seen] == [1, 2, 3, 4] and seen[-1].text == "got them"
        await bob.send("alice", "after the restart")
        assert [m.seq for m in await bob.read("alice", since=4)] == [5]
        await bob.close()
    finally:
        await again.stop()


@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_stops_the_start_in_one_line(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    with pytest.raises(StartupError) as info:
        await start_server(tmp_path / "data", database=pg_cluster.url("nowhere"))
    message = str(info.value)
    assert message.startswith("pychat: cannot start: cannot use the database")
    assert "\n" not in message and "nowhere" in message


@pytest_twisted.ensureDeferred
async def test_a_dump_of_the_database_holds_no_text_no_password_and_no_name(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path
) -> None:
    server = await start_server(tmp_path / "data", database=pg_url)
    secret_text = "the canary sings at midnight"
    try:
        alice = await signed_up(server, tmp_path / "a", "zebediah", "unguessable-passphrase-42")
        bob = await signed_up(server, tmp_path / "b", "philomena")
        await alice.send("philomena", secret_text)
        await bob.read("zebediah")
        await alice.close()
        await bob.close()
    finally:
        await server.stop()
    dump = pg_cluster.dump(pg_url)
    assert "CREATE TABLE public.messages" in dump  # the dump is the real thing
    for secret in ("zebediah", "philomena", secret_text, "unguessable-passphrase-42", "canary"):
        assert secret not in dump


@pytest_twisted.ensureDeferred
async def test_while_the_database_is_away_a_send_is_refused_with_storage_error_then_works(
    tmp_path: Path,
) -> None:
    from pychat.client.protocol import RemoteError
    from tests.pg_server import start_cluster

    cluster = start_cluster()  # its own: this test stops it
    assert cluster is not None
    try:
        server = await start_server(tmp_path / "data", database=cluster.create_database("away"))
        try:
            alice = await signed_up(server, tmp_path / "a", "alice")
            bob = await signed_up(server, tmp_path / "b", "bob")
            await alice.send("bob", "before")
            # several requests at once: the pool holds several connections, all of which
            # the restart below leaves dead
            await defer.gatherResults([defer.ensureDeferred(bob.read("alice")) for _ in range(6)])
            cluster.pause()
            with pytest.raises(RemoteError) as info:
                await alice.send("bob", "while it is away")
            assert info.value.code == "storage_error" and info.value.error["retry_after"] > 0
            cluster.resume()
            # every pooled connection is dead now; each request still succeeds at once
            await defer.gatherResults([defer.ensureDeferred(bob.read("alice")) for _ in range(6)])
            await alice.send("bob", "after it came back")
            texts = [m.text for m in await bob.read("alice")]
            assert texts == ["before", "after it came back"]
            await alice.close()
            await bob.close()
        finally:
            await server.stop()
    finally:
        cluster.stop()


@pytest_twisted.ensureDeferred
async def test_a_resend_while_its_first_copy_is_on_its_way_is_stored_and_pushed_once(
    pg_url: str, tmp_path: Path
) -> None:
    server = await start_server(tmp_path / "data", database=pg_url)
    try:
        for name in ("alice", "bob"):
            proto, params = await connect_srp(server.port)
            await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
            proto.close()
        alice, bob = await logged_in(server.port, "alice"), await logged_in(server.port, "bob")
        pushed: list[dict[str, Any]] = []
        bob.on_event = pushed.append
        opened = await alice.request("open_conversation", peer="bob", envelope=envelope())
        conv = opened["conversation"]
        send = {"conversation": conv, "epoch": 1, "ciphertext": "b25l", "client_id": "same"}
        first, again = await defer.gatherResults(  # the second asked before the first lands
            [alice.request("send", **send), alice.request("send", **send)]
        )
        assert (first["seq"], first["duplicate"]) == (1, False)
        assert (again["seq"], again["duplicate"]) == (1, True)
        later = await alice.request("send", **{**send, "client_id": "next"})
        assert later["seq"] == 2
        for _ in range(100):  # bob's pushes come in order: once the second is here, all are
            if any(p.get("seq") == 2 for p in pushed):
                break
            await deferLater(reactor, 0.02)
        assert [p["seq"] for p in pushed if p.get("event") == "message"] == [1, 2], pushed
        assert [m["seq"] for m in await history_of(bob, conv)] == [1, 2]
        alice.close()
        bob.close()
    finally:
        await server.stop()
