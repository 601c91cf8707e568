"""Two real ``twistd pychat`` processes on one PostgreSQL database: a message sent through
one is pushed live to a reader on the other, and when the sender's node is killed with
SIGKILL in the middle of a stream of sends, every acknowledged message is stored exactly
once, in order, and was pushed to the reader on the other node exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from pychat.client import auth
from pychat.client.protocol import ClientProtocol
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope
from tests.process_helpers import ServerProcess, connect_srp, history_of, logged_in, processes

__all__ = ["processes"]

#: Messages alice has in flight at once while her node is killed.
WINDOW = 16


def node(tmp_path: Path, name: str, url: str, started: list[ServerProcess]) -> ServerProcess:
    (tmp_path / name).mkdir()
    server = ServerProcess(
        tmp_path / name / "data", "--database", url, "--store-key", str(tmp_path / "store.key")
    )
    started.append(server)
    return server


async def signed_up(port: int, name: str) -> None:
    proto, params = await connect_srp(port)
    await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
    proto.close()


def pushes_of(proto: ClientProtocol) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    proto.on_event = got.append
    return got


@pytest_twisted.ensureDeferred
async def test_a_node_killed_mid_send_loses_no_acknowledged_message_and_doubles_no_push(
    pg_url: str, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    one = node(tmp_path, "one", pg_url, processes)
    port_one = await one.started()  # the first start makes the store key; then the second
    two = node(tmp_path, "two", pg_url, processes)
    port_two = await two.started()
    await signed_up(port_one, "alice")
    await signed_up(port_two, "bob")
    for _ in range(250):  # bob's account reaches node one through the event stream
        try:
            alice = await logged_in(port_one, "alice")
            conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
                "conversation"
            ]
            break
        except Exception:
            await deferLater(reactor, 0.02, lambda: None)
    bob = await logged_in(port_two, "bob")
    bob_saw = pushes_of(bob)

    acked: dict[str, int] = {}
    sent = 0

    async def send_one(n: int) -> None:
        try:
            reply = await alice.request(
                "send", conversation=conv, epoch=1, ciphertext=f"m{n}", client_id=f"c{n}"
            )
        except Exception:  # the node went: not acknowledged
            return
        acked[f"c{n}"] = reply["seq"]

    in_flight: list[defer.Deferred[None]] = []
    while sent < 2000:
        if len(acked) >= 60:
            one.kill()  # in the middle of a stream of sends: WINDOW of them under way
            break
        in_flight = [d for d in in_flight if not d.called]
        while len(in_flight) < WINDOW:
            in_flight.append(defer.ensureDeferred(send_one(sent)))
            sent += 1
        await deferLater(reactor, 0.001, lambda: None)
    await defer.DeferredList(in_flight, consumeErrors=True)
    assert one.proc.poll() is not None and len(acked) >= 60

    stored = await history_of(bob, conv)
    seqs = [m["seq"] for m in stored]
    assert seqs == list(range(1, len(stored) + 1))  # in order, no gaps
    by_client = {m["client_id"]: m["seq"] for m in stored}
    assert len(by_client) == len(stored)  # none twice
    assert all(by_client.get(c) == s for c, s in acked.items())  # every acknowledged one
    for _ in range(250):
        if len([p for p in bob_saw if p["event"] == "message"]) >= len(stored):
            break
        await deferLater(reactor, 0.02, lambda: None)
    pushed = [p["seq"] for p in bob_saw if p["event"] == "message"]
    assert pushed == seqs  # each stored message pushed once, in order, after its commit
    bob.close()
