"""A reader that stops reading is cut off once its queued output passes the cap; others carry on."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.interfaces import IPushProducer

from pychat.testing import start_server
from tests.chat_helpers import envelope, login, signup


@pytest_twisted.ensureDeferred
async def test_reader_that_never_reads_is_dropped_and_others_keep_receiving(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "data", max_output_queue=256 * 1024)
    try:
        for name in ("alice", "bob"):
            await signup(server, name)
        alice = await login(server, "alice")
        conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
            "conversation"
        ]
        stuck = await login(server, "bob")
        reader = await login(server, "bob")
        assert stuck.proto.transport is not None
        cast(
            IPushProducer, stuck.proto.transport
        ).pauseProducing()  # stop reading: the server's output piles up

        body = "x" * 40_000
        sent = 0
        for i in range(600):  # bounded: ~24 MB at most, far past kernel buffers and the cap
            await alice.request(
                "send", conversation=conv, epoch=1, ciphertext=body, client_id=str(i)
            )
            sent += 1
            if len(server.chat.presence.connections.get("bob", ())) == 1:
                break
        assert len(server.chat.presence.connections["bob"]) == 1, "the stuck reader was not dropped"

        # one more after the drop, and the reading connection has every message
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext="bGFzdA==", client_id="last"
        )
        await reader.wait_for("message", sent + 1, timeout=30)
        assert [e["seq"] for e in reader.of_kind("message")] == list(range(1, sent + 2))
        # the messages the stuck reader missed are in the store for its next login
        page = await reader.request("history", conversation=conv, after=sent - 1)
        assert [m["seq"] for m in page["messages"]] == [sent, sent + 1]
        cast(IPushProducer, stuck.proto.transport).resumeProducing()
        for _ in range(500):
            if stuck.proto.is_closed:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        assert stuck.proto.is_closed
    finally:
        await server.stop()
