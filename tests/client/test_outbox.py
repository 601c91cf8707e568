"""The outbox: a message written while the server is away is kept (sealed) on disk, shown as
pending, and sent once, in order, with its original ``client_id`` when the server is back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.outbox import OutboxEntry, OutboxFile
from pychat.client.protocol import RemoteError
from pychat.client.session import ChatClient, ClientEvent
from pychat.crypto.kdf import minimum_params
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import Outage, collect


async def _alice_and_bob(
    memory: MemoryServer, tmp_path: Path
) -> tuple[ChatClient, ChatClient, Outage]:
    outage = Outage(memory)
    alice = outage.client(tmp_path / "alice")
    await alice.signup("alice", "pw", kdf=minimum_params())
    await alice.login("alice", "pw")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "while online")
    return alice, bob, outage


def _outbox_path(client: ChatClient) -> Path:
    assert client.keystore is not None
    return client.keystore.path.with_suffix(".outbox")


def _states(events: list[ClientEvent]) -> list[tuple[str, str]]:
    return [(e.data["state"], e.data["entry"].text) for e in events if e.kind == "outbox"]


@pytest_twisted.ensureDeferred
async def test_a_message_written_while_away_is_sent_once_in_order_when_the_server_is_back(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, outage = await _alice_and_bob(memory, tmp_path)
    events = collect(alice)
    outage.go_down()
    assert alice.connection.state == "reconnecting"
    for text in ("first while away", "second while away", "third while away"):
        assert await alice.send("bob", text, queue=True) is None
    assert [t for _, t in _states(events)] == [
        "first while away", "second while away", "third while away"
    ]  # fmt: skip
    sealed = _outbox_path(alice).read_bytes()
    assert b"while away" not in sealed and b"bob" not in sealed  # sealed, not plaintext
    assert _outbox_path(alice).stat().st_mode & 0o777 == 0o600

    outage.down = False
    memory.advance(1.0)  # the first reconnect: log in again, catch up, send the outbox
    assert alice.connection.state == "online"
    received = await bob.read("alice")
    assert [(m.text, m.status) for m in received] == [
        ("while online", "verified"),
        ("first while away", "verified"),
        ("second while away", "verified"),
        ("third while away", "verified"),
    ]
    assert [s for s, _ in _states(events)] == ["queued"] * 3 + ["sent"] * 3
    assert not _outbox_path(alice).exists()
    assert await alice.sender.pending() == []


@pytest_twisted.ensureDeferred
async def test_the_outbox_survives_a_restart_of_the_client_and_the_next_login_sends_it(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, outage = await _alice_and_bob(memory, tmp_path)
    outage.go_down()
    await alice.send("bob", "written before quitting", queue=True)
    (waiting,) = await alice.sender.pending()
    await alice.close()
    outage.down = False
    memory.advance(1.0)  # bob is back
    again = outage.client(tmp_path / "alice")
    events = collect(again)
    await again.login("alice", "pw")
    assert _states(events) == [("sent", "written before quitting")]
    (message,) = (m for m in await bob.read("alice") if m.text == "written before quitting")
    assert message.status == "verified"
    page = await again.request("history", conversation=conversation_id("alice", "bob"))
    (kept,) = (m for m in page["messages"] if m["seq"] == message.seq)
    assert kept["client_id"] == waiting.client_id  # the id it was given when written


@pytest_twisted.ensureDeferred
async def test_a_resend_of_a_message_the_server_already_stored_is_not_a_second_message(
    memory: MemoryServer, tmp_path: Path
) -> None:
    """The ack was lost: the message reached the server but the client never heard so.  The
    resend carries the same client_id, and the server answers with the first copy's seq."""
    alice, bob, _ = await _alice_and_bob(memory, tmp_path)
    entry = await alice.messaging.new_entry("bob", "acknowledged, but the ack was lost")
    seq = await alice.messaging.deliver(entry)
    outbox = await alice.sender._file()
    outbox.save([entry])  # as if the client died between the send and its reply
    events = collect(alice)
    await alice.sender.flush()
    assert [(e.data["state"], e.data["seq"]) for e in events if e.kind == "outbox"] == [
        ("sent", seq)
    ]
    texts = [m.text for m in await bob.read("alice")]
    assert texts.count("acknowledged, but the ack was lost") == 1


@pytest_twisted.ensureDeferred
async def test_a_message_refused_for_good_leaves_the_outbox_and_the_rest_still_goes(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, outage = await _alice_and_bob(memory, tmp_path)
    outage.go_down()
    await alice.send("nobody-here", "to a user who does not exist", queue=True)
    await alice.send("bob", "after the refused one", queue=True)
    events = collect(alice)
    outage.down = False
    memory.advance(1.0)
    states = [(e.data["state"], e.data["entry"].text) for e in events if e.kind == "outbox"]
    assert states == [
        ("failed", "to a user who does not exist"),
        ("sent", "after the refused one"),
    ]
    (failed,) = (e for e in events if e.kind == "outbox" and e.data["state"] == "failed")
    assert "unknown_user" in failed.data["reason"]
    assert [m.text for m in await bob.read("alice")][-1] == "after the refused one"
    assert await alice.sender.pending() == []


@pytest_twisted.ensureDeferred
async def test_a_queued_send_refused_at_once_raises_and_is_not_kept(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, _, _ = await _alice_and_bob(memory, tmp_path)
    with pytest.raises(RemoteError) as caught:
        await alice.send("nobody-here", "refused now", queue=True)
    assert caught.value.code == "unknown_user"
    assert await alice.sender.pending() == []


@pytest_twisted.ensureDeferred
async def test_a_plain_send_while_away_fails_and_keeps_nothing(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, _, outage = await _alice_and_bob(memory, tmp_path)
    outage.go_down()
    with pytest.raises(Exception, match="not connected"):
        await alice.send("bob", "not queued")
    assert await alice.sender.pending() == []


@pytest_twisted.ensureDeferred
async def test_a_plain_send_goes_after_what_waits_in_the_outbox(
    memory: MemoryServer, tmp_path: Path
) -> None:
    """Counters must rise with seqs (receivers refuse them otherwise): what waits goes first."""
    alice, bob, outage = await _alice_and_bob(memory, tmp_path)
    outage.go_down()
    await alice.send("bob", "queued first", queue=True)
    outage.down = False
    await alice.relogin()  # before the reconnect loop's own flush
    await alice.send("bob", "sent plainly after")
    memory.advance(1.0)  # bob is back too
    received = await bob.read("alice")
    assert [(m.text, m.status) for m in received[-2:]] == [
        ("queued first", "verified"),
        ("sent plainly after", "verified"),
    ]


def test_a_damaged_outbox_is_moved_aside_and_reported(tmp_path: Path) -> None:
    keystore = tmp_path / "alice.json"
    outbox = OutboxFile(keystore, b"k" * 32, "server", "alice")
    outbox.save([OutboxEntry("d-1", "bob", 1, 1.0, "hello")])
    assert outbox.load() == [OutboxEntry("d-1", "bob", 1, 1.0, "hello")]
    other_key = OutboxFile(keystore, b"x" * 32, "server", "alice")
    with pytest.raises(Exception, match="moved to"):
        other_key.load()
    assert not outbox.path.exists()
    assert (tmp_path / "alice.outbox.unreadable-1").exists()
    assert other_key.load() == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"format": "pychat-outbox", "v": 1}',
        b'{"format": "pychat-outbox", "v": 1, "sealed": "!!"}',
        b'{"format": "other", "v": 1, "sealed": ""}',
        b"[]",
    ],
)
def test_any_damage_to_the_outbox_file_is_reported_never_raised_raw(
    tmp_path: Path, content: bytes
) -> None:
    outbox = OutboxFile(tmp_path / "alice.json", b"k" * 32, "server", "alice")
    outbox.path.write_bytes(content)
    with pytest.raises(Exception, match="moved to") as caught:
        outbox.load()
    assert type(caught.value).__name__ == "OutboxUnreadable"


def test_entries_with_malformed_fields_are_refused() -> None:
    good = OutboxEntry("d-1", "bob", 1, 1.0, "hello", "action").to_json()
    assert OutboxEntry.from_json(json.loads(json.dumps(good))).action is True
    for field, bad in [
        ("counter", True), ("time", float("nan")), ("text", 3), ("peer", None), ("data", [1]),
        ("kind", None),
    ]:  # fmt: skip
        with pytest.raises(ValueError):
            OutboxEntry.from_json({**good, field: bad})
