"""The TUI's slash commands against real clients in memory (no terminal needed)."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from pychat.client.session import ChatClient
from pychat.testing import MemoryServer
from pychat.tui.commands import run_command
from pychat.tui.main_screen import MainScreen
from pychat.tui.model import MessageItem
from tests.tui_fakes import FakeHost


def main_screen(client: ChatClient, home: Path) -> tuple[MainScreen, FakeHost]:
    """The main screen of a logged-in client, on a host that keeps the boxes it shows."""
    host = FakeHost(home)
    return MainScreen(host, client), host


@pytest_twisted.ensureDeferred
async def test_info_shows_the_pinned_fingerprint_and_the_trust(tmp_path: Path) -> None:
    memory = MemoryServer(tmp_path / "data")
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "hello")  # alice pins bob's key
    app, host = main_screen(alice, tmp_path)
    app.model.select("bob")
    await run_command(app, "/info")
    (modal,) = host.shown
    text = "\n".join(modal.lines)
    grouped = " ".join(bob.my_fingerprint()[i : i + 4] for i in range(0, 64, 4))
    assert grouped.strip() in text
    assert "not verified" in text and alice.my_fingerprint() in text


@pytest_twisted.ensureDeferred
async def test_info_and_clear_need_a_conversation_and_clear_keeps_the_history(
    tmp_path: Path,
) -> None:
    memory = MemoryServer(tmp_path / "data")
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    await memory.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "kept on the server")
    app, host = main_screen(alice, tmp_path)
    await run_command(app, "/info")
    assert host.shown == [] and (app.model.notice, app.model.notice_is_error) == (
        "/info needs an open conversation",
        True,
    )
    conv = app.model.select("bob")
    app.model.add_message("bob", MessageItem(1, "alice", 1.0, "verified", "x"), on_screen=True)
    await run_command(app, "/clear")
    assert conv.messages == {} and conv.has_older  # PgUp loads it again
    assert [m.text for m in await alice.read("bob")] == ["kept on the server"]
