"""Three people in real TUIs (each in tmux, in a pty) and one with the CLI hold a group
conversation:
made, chatted in, a fourth added, one removed (who then sees nothing new), renamed, a
reaction, a file, and a member leaving; every step read from the screens."""

from __future__ import annotations

import subprocess
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.errors import ClientError
from pychat.testing import RunningServer
from tests.cli_helpers import Cli
from tests.client_helpers import client_for, signed_up
from tests.tui_scenes import log_in, tui_for
from tests.tui_terminal import Terminal

PW = "pw"


async def _open(term: Terminal, group: str) -> None:
    term.type(f"/new #{group}")
    term.press("enter")
    await term.wait_for(f"#{group} ·")


def _say(term: Terminal, text: str) -> None:
    term.type(text)
    term.press("enter")


@pytest.mark.usefixtures("cheap_kdf")
@pytest_twisted.ensureDeferred
async def test_three_tuis_and_a_cli_hold_a_group(server: RunningServer, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        await (await signed_up(server, tmp_path / name, name, PW)).close()
    dave = Cli(server, tmp_path / "dave-cli", "dave", PW)
    async with AsyncExitStack() as stack:
        terms = {}
        for name in ("alice", "bob", "carol"):
            terms[name] = await stack.enter_async_context(
                tui_for(server, tmp_path / name, name, tmux=True)
            )
            await log_in(terms[name], PW, "No conversation open")
        alice, bob, carol = terms["alice"], terms["bob"], terms["carol"]
        for term in terms.values():  # each TUI runs in a tmux session of its own
            if term.tmux is None:
                continue  # a machine without tmux: the pty alone
            panes = subprocess.run(
                ["tmux", *term.tmux_socket(), "list-panes", "-F", "#{pane_current_command}"],
                capture_output=True, text=True, check=True, timeout=10,
            )  # fmt: skip
            assert "python" in panes.stdout

        _say(alice, "/group new Family bob carol")
        await alice.wait_for("group #Family made")
        for term in (bob, carol):
            await term.wait_for("#Family")  # in the list, marked as a group
            await _open(term, "Family")
        _say(bob, "hello family")
        for term in (alice, carol):
            await term.wait_for("bob: hello family")

        _say(alice, "/invite dave")
        for term in (alice, bob, carol):
            await term.wait_for("alice added dave")
        sent = await dave.run("send", "#Family", "hi from the cli")
        assert sent.code == 0, sent.err
        for term in (alice, bob, carol):
            await term.wait_for("dave: hi from the cli")

        _say(alice, "/kick carol")
        await carol.wait_for("no longer a member")
        await bob.wait_for("alice removed carol")
        _say(bob, "carol cannot read this")
        await alice.wait_for("bob: carol cannot read this")
        assert "carol cannot read this" not in carol.text()

        _say(bob, "/rename Family and friends")
        await alice.wait_for("bob renamed the group to 'Family and friends'")
        await alice.wait_for("#Family and friends ·")
        _say(alice, "/react 👍")  # to bob's newest
        await bob.wait_for("👍 alice")
        photo = tmp_path / "photo.txt"
        photo.write_bytes(b"not really a photo")
        _say(bob, f"/send-file {photo}")
        await alice.wait_for("bob sent photo.txt")

        left = await dave.run("group", "leave", "#Family and friends")
        assert left.code == 0, left.err
        for term in (alice, bob):
            await term.wait_for("dave left")
        _say(bob, "just the two of us now")  # alice's TUI made the epoch the leave awaits
        await alice.wait_for("bob: just the two of us now")
        read = await dave.run("read", "#Family and friends")
        assert read.code != 0 and "no group" in read.err

    # carol's own client, on her keystore: the server gives her nothing of the group now.
    carol_client = client_for(server, tmp_path / "carol")
    await carol_client.login("carol", PW)
    (group,) = carol_client.require_login()[1].groups
    with pytest.raises(ClientError, match="no such group"):
        await carol_client.groups.read(group)
    await carol_client.close()
