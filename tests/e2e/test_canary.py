"""The canary: after every feature is used (messages, a reply and a reaction, a fair flip, a
file, typing and read signals, whatdoyouknow, a disappearing message, a group made, chatted
in, renamed and changed), nothing a user wrote
or sent, nor a file's name, nor a username, is in the server's data dir or log; and an
expired file and an expired message are gone from disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from pychat.testing import start_server
from pychat.wire.ids import conversation_id
from tests.client_helpers import signed_up
from tests.log_capture import as_observer

TEXT = "canary-text-7c1e"
REPLY = "canary-reply-93fd"
FILE_NAME = "canary-name-51aa.txt"
FILE_CONTENT = b"canary-file-content-e0b2 " * 4000
USERS = ("canaryalice", "canarybob")
VANISH = "canary-vanish-4d2c"
GROUP_TEXT = "canary-group-text-a81c"
GROUP_NAMES = ("canary-group-6f0e", "canary-rename-2b7d")
CAROL = "canarycarol"


def _everything_in(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


@pytest_twisted.ensureDeferred
async def test_nothing_users_wrote_reaches_the_servers_disk_or_log(tmp_path: Path) -> None:
    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(as_observer(observe))
    server = await start_server(tmp_path / "data", file_max_age=1.0)
    try:
        alice = await signed_up(server, tmp_path / "alice", USERS[0])
        bob = await signed_up(server, tmp_path / "bob", USERS[1])
        seq = await alice.send(USERS[1], TEXT)
        assert seq is not None
        await bob.read(USERS[0])
        await bob.send(USERS[0], REPLY, reply_to=seq)
        await bob.react(USERS[0], seq, "👍")
        alice.signals.enabled = bob.signals.enabled = True
        await alice.signals.send(USERS[1], "typing")
        await bob.signals.send(USERS[0], "read", seq)
        results: list[str] = []
        alice.listeners.append(lambda e: results.append("x") if e.kind == "game" else None)
        await alice.games.start(USERS[1], "flip")
        source = tmp_path / FILE_NAME
        source.write_bytes(FILE_CONTENT)
        file_seq = await alice.files.send(USERS[1], source)
        assert file_seq is not None
        fetched = await bob.files.fetch(USERS[0], file_seq, tmp_path / "got")
        assert fetched.read_bytes() == FILE_CONTENT
        for _ in range(100):  # the flip's answer and reveal go by themselves
            if results:
                break
            await task.deferLater(reactor, 0.05, lambda: None)
        assert results, "the flip did not finish"
        await alice.request("whatdoyouknow")
        await alice.disappearing.set(USERS[1], "5m")
        _, keystore = alice.require_login()
        keystore.timers[conversation_id(*USERS)][1] = 1  # a second, not five minutes
        await alice.send(USERS[1], VANISH)
        carol = await signed_up(server, tmp_path / "carol", CAROL)
        group = await alice.groups.create(GROUP_NAMES[0], [USERS[1], CAROL])
        await bob.groups.send(group, GROUP_TEXT)
        assert [m.text for m in await carol.groups.read(group)] == [GROUP_TEXT]
        await carol.groups.change(group, "rename", name=GROUP_NAMES[1])
        await alice.groups.change(group, "remove", member=CAROL)
        await carol.close()

        data = tmp_path / "data"
        stored = _everything_in(data)
        secrets = (TEXT, REPLY, VANISH, FILE_NAME, GROUP_TEXT, *GROUP_NAMES, *USERS, CAROL)
        for secret in (*secrets, "canary-file-content"):
            assert secret.encode() not in stored, f"{secret} is on the server's disk"
        log = "\n".join(lines)
        for secret in (*secrets, "canary-file-content", "👍"):
            assert secret not in log, f"{secret} is in the server's log"

        assert len(list((data / "ephemeral").iterdir())) == 1  # the vanishing message
        await task.deferLater(reactor, 2.1, lambda: None)  # the file's and message's time is up
        await server.chat._sweep_files()
        assert list((data / "files").iterdir()) == []  # gone from disk, data and record
        assert list((data / "ephemeral").iterdir()) == []
        for c in (alice, bob):
            await c.close()
    finally:
        globalLogPublisher.removeObserver(as_observer(observe))
        await server.stop()
    assert os.path.exists(tmp_path / "got")
