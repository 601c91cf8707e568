"""pychat.testing.MemoryServer: the real server and real clients in memory, on a fake clock.

These are the library's end-to-end behaviours again, without sockets, threads or sleeping:
every push has arrived when the request that caused it returns, and time moves only when the
test says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.session import PeerKeyChanged
from pychat.testing import MemoryServer
from tests.client_helpers import collect
from tests.trust_helpers import reregister


@pytest_twisted.ensureDeferred
async def test_two_users_chat_and_the_push_is_there_when_send_returns(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    heard = collect(bob)
    await alice.send("bob", "hello bob")
    (pushed,) = [e.message for e in heard if e.kind == "message"]
    assert pushed is not None and (pushed.text, pushed.status) == ("hello bob", "verified")
    await bob.send("alice", "hi alice")
    assert [(m.sender, m.text) for m in await alice.read("bob")] == [
        ("alice", "hello bob"),
        ("bob", "hi alice"),
    ]


@pytest_twisted.ensureDeferred
async def test_a_dropped_connection_reconnects_on_the_fake_clock_and_catches_up(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await bob.read("alice")  # bob has seen the (empty) conversation
    await alice.send("bob", "before")
    states = collect(bob)
    memory.drop_connections()
    await alice.relogin()
    await alice.send("bob", "while bob was away")
    assert bob.connection.state == "reconnecting"
    memory.advance(1.0)  # the first backoff: bob logs in again and catches up
    assert bob.connection.state == "online"
    assert any(e.message and e.message.text == "while bob was away" for e in states)


@pytest_twisted.ensureDeferred
async def test_an_unsigned_key_change_is_heard_at_once(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "before")
    await bob.close()
    events = collect(alice)
    await reregister(memory, "bob", "pw")
    assert [e.kind for e in events if e.kind == "keys_changed"] == ["keys_changed"]
    with pytest.raises(PeerKeyChanged):
        await alice.send("bob", "blocked")


@pytest_twisted.ensureDeferred
async def test_a_silent_connection_is_closed_when_the_clock_says_so(memory: MemoryServer) -> None:
    await memory.connect()
    assert len(memory.chat.connections) == 1
    memory.advance(memory.config.idle_timeout + 1)
    assert len(memory.chat.connections) == 0


@pytest_twisted.ensureDeferred
async def test_a_logged_in_client_pings_and_is_never_idle(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    first = alice.connection.proto
    states = collect(alice)
    for _ in range(12):  # four idle timeouts, in steps
        memory.advance(memory.config.idle_timeout / 3)
    assert first is not None
    assert alice.connection.proto is first and not first.is_closed  # the same, never dropped
    assert not [e for e in states if e.kind == "connection"]


@pytest_twisted.ensureDeferred
async def test_the_side_that_did_not_open_the_conversation_learns_the_peers_presence(
    memory: MemoryServer, tmp_path: Path
) -> None:
    from pychat.tui.client_events import handle_event
    from pychat.tui.main_screen import MainScreen
    from tests.tui_fakes import FakeHost

    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    heard = collect(bob)
    await alice.open_conversation("bob")
    app = MainScreen(FakeHost(tmp_path), bob)
    for event in heard:
        handle_event(app, event)
    assert app.model.conversations["alice"].online is True  # bob never opened it
    await alice.close()
    for event in heard[len(heard) - 1 :]:
        handle_event(app, event)
    assert app.model.conversations["alice"].online is False


@pytest_twisted.ensureDeferred
async def test_retry_now_reconnects_without_waiting_out_the_backoff(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    memory.drop_connections()
    assert alice.connection.state == "reconnecting"
    alice.reconnector.retry_now()  # Ctrl-R in the TUI
    assert alice.connection.state == "online"  # with no time passing at all
