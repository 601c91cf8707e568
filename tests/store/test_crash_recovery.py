"""Durability: a server killed with SIGKILL while clients send loses no acknowledged message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor, task

from pychat.client import auth
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope
from tests.process_helpers import ServerProcess, connect_srp, history_of


@pytest_twisted.ensureDeferred
async def test_sigkill_while_sending_loses_no_acknowledged_message(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data)
    processes.append(first)
    port = await first.started()
    for name in ("alice", "bob"):
        proto, params = await connect_srp(port)
        await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
        proto.close()

    senders = []
    for name in ("alice", "bob"):
        proto, params = await connect_srp(port)
        await auth.login(proto, params, name, "pw")
        senders.append((name, proto))
    conv = (await senders[0][1].request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]

    acked: dict[str, int] = {}  # client id -> acknowledged seq

    async def pump(name: str, proto: ClientProtocol) -> None:
        for batch in range(200):
            wave = []
            for i in range(10):
                cid = f"{name}-{batch}-{i}"
                d = proto.request(
                    "send", conversation=conv, epoch=1, ciphertext=f"body {cid}", client_id=cid
                )
                d.addCallback(_acked, acked, cid)
                wave.append(d)
            try:
                await defer.gatherResults(wave, consumeErrors=True)
            except (defer.FirstError, ConnectionClosed, RemoteError):
                return

    pumps = [defer.ensureDeferred(pump(name, proto)) for name, proto in senders]
    for _ in range(1000):  # kill once a good number of messages are acknowledged
        if len(acked) >= 300:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    first.kill()
    await defer.DeferredList(pumps)
    assert len(acked) >= 300

    second = ServerProcess(data)
    processes.append(second)
    port = await second.started()
    proto, params = await connect_srp(port)
    await auth.login(proto, params, "bob", "pw")
    stored = await history_of(proto, conv)
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    ids = [m["client_id"] for m in stored]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    by_id = {m["client_id"]: m for m in stored}
    for cid, seq in acked.items():
        assert cid in by_id, f"acknowledged message {cid} is lost"
        assert by_id[cid]["seq"] == seq and by_id[cid]["ciphertext"] == f"body {cid}"
    # A retry of an acknowledged message after the restart is recognised, not stored again.
    cid, seq = next(iter(acked.items()))
    proto2, params = await connect_srp(port)
    await auth.login(proto2, params, cid.split("-")[0], "pw")
    retry = await proto2.request(
        "send", conversation=conv, epoch=1, ciphertext=f"body {cid}", client_id=cid
    )
    assert retry["duplicate"] is True and retry["seq"] == seq
    proto.close()
    proto2.close()
    await second.stop()
    assert "Traceback" not in second.log.read_text()


def _acked(reply: dict[str, Any], acked: dict[str, int], cid: str) -> None:
    acked[cid] = reply["seq"]
