"""``pychat group ...`` and ``send``/``read`` with ``#NAME`` (docs/client.md): a script
makes a group, chats in it, adds and removes members, checks the safety number, and a name a
peer chose is printed safely."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import pytest_twisted

from pychat.testing import RunningServer
from tests.cli_helpers import Cli, lines_out, listening

pytestmark = pytest.mark.usefixtures("cheap_kdf")


@pytest_twisted.ensureDeferred
async def test_a_script_runs_a_group(server: RunningServer, tmp_path: Path) -> None:
    people = {n: Cli(server, tmp_path / n, n, f"{n}-pw") for n in ("alice", "bob", "carol")}
    for cli in people.values():
        assert (await cli.run("signup")).code == 0
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    made = await alice.run("group", "create", "Fam\x1b[2Jily", "bob")
    assert made.code == 0 and "\x1b" not in made.out, made.err
    listed = await bob.run("group", "list")
    assert "Fam^[[2Jily" in listed.out and "\x1b" not in listed.out
    group_id = listed.out.split()[1]
    assert (await bob.run("send", f"#{group_id}", "hello group")).out.strip() == "sent #1"
    added = await alice.run("group", "add", f"#{group_id}", "carol")
    assert "carol" in added.out and "admin" in added.out, added.err
    assert (await carol.run("send", f"#{group_id}", "thanks", "--me")).code == 0
    read = await alice.run("read", f"#{group_id}", "--json")
    lines = [json.loads(line) for line in read.out.splitlines()]
    assert [(m["sender"], m["text"], m["status"]) for m in lines] == [
        ("bob", "hello group", "verified"),
        ("carol", "thanks", "verified"),
    ]
    carols = await carol.run("read", f"#{group_id}")
    assert carols.code == 6 and "REJECTED" in carols.out  # bob's came before she joined
    numbers = [
        (await c.run("group", "verify", group_id)).out.splitlines()[1:3] for c in (alice, carol)
    ]
    assert numbers[0] == numbers[1]
    removed = await alice.run("group", "remove", group_id, "bob")
    assert "bob" not in removed.out
    gone = await bob.run("read", f"#{group_id}")
    assert gone.code == 1 and "no group" in gone.err
    members = await carol.run("group", "members", group_id, "--json")
    assert [json.loads(line)["member"] for line in members.out.splitlines()] == ["alice", "carol"]


@pytest_twisted.ensureDeferred
async def test_listen_prints_group_messages_and_changes(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "alice-pw")
    bob = Cli(server, tmp_path / "bob", "bob", "bob-pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    assert (await alice.run("group", "create", "Club", "bob")).code == 0
    proc, transport = await listening(bob)
    assert (await alice.run("send", "#Club", "to the club")).code == 0
    assert (await alice.run("group", "rename", "#Club", "Book club")).code == 0
    await lines_out(proc, 2)
    transport.signalProcess(signal.SIGINT)
    assert await proc.done == 0
    message, change = (json.loads(line) for line in proc.out.decode().splitlines())
    assert (message["text"], message["where"], message["sender"]) == (
        "to the club",
        "#Club",
        "alice",
    )
    assert change["event"] == "group" and "alice renamed the group" in change["line"]
