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


@pytest_twisted.ensureDeferred
async def test_group_commands_mute_and_a_mention_that_still_rings(tmp_path: Path) -> None:
    from pychat.client.session import ClientEvent
    from pychat.tui.client_events import handle_event, mentions

    memory = MemoryServer(tmp_path / "data")
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await memory.signed_up(tmp_path / "carol", "carol")
    app, host = main_screen(alice, tmp_path)
    rang: list[str] = []
    app.notify = rang.append  # type: ignore[method-assign,assignment]
    await run_command(app, "/group new Club bob")
    conv = app.model.current_conversation
    assert conv is not None and conv.is_group and conv.label == "#Club"
    await run_command(app, "/invite carol")
    assert conv.members == ["alice", "bob", "carol"]
    assert conv.notices[-1][1] == "alice added carol"
    await run_command(app, "/members")
    assert "admin" in "\n".join(host.shown[-1].lines)
    await run_command(app, "/verify")
    number, _ = await alice.groups.verify(conv.peer[1:])
    assert number.split()[0] in host.shown[-1].lines[0]
    await run_command(app, "/mute")
    app.model.select("elsewhere")  # the group is off screen
    group = conv.peer[1:]
    for text in ("just chatting", "@alice look at this"):
        await bob.groups.send(group, text)
        (message,) = await alice.groups.read(group, since=conv.last_seq)
        handle_event(app, ClientEvent("message", {}, message))
    assert rang == ["bob in #Club"]  # the muted group rang once: for the mention
    assert mentions("hi @Alice!", "alice") and not mentions("mail@alice.org", "alice")
    await run_command(app, "/leave")  # here: not a group
    assert "group's buffer" in app.model.notice
    app.model.select(conv.peer)
    await run_command(app, "/leave")
    assert conv.closed and conv.notices[-1][1] == "you left this group"


@pytest_twisted.ensureDeferred
async def test_groups_are_in_the_list_at_login_beside_pairs(tmp_path: Path) -> None:
    memory = MemoryServer(tmp_path / "data")
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    group = await bob.groups.create("Club", ["alice"])
    await bob.groups.send(group, "welcome")
    await bob.send("alice", "and hello")
    app, _ = main_screen(alice, tmp_path)
    await app.load_conversations()
    labels = {c.label: c for c in app.model.ordered()}
    assert set(labels) == {"#Club", "bob"}
    club = labels["#Club"]
    assert (club.members, club.unread) == (["alice", "bob"], 1)
    await app.show(club.peer)
    assert [m.text for m in club.sorted_messages()] == ["welcome"]
