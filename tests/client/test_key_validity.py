"""A retired key never speaks again: the key-validity rule seen from a stolen-key holder's and
a hostile server's side (docs/e2e.md §3, "Key validity").

The thief here holds a copy of alice's keystore from before the change (her old identity keys
and epoch keys); the server stores whatever it is handed, straight into its own store, and
serves what it likes.  Each forged message is otherwise perfect (it decrypts and its signature
verifies under a key bob once accepted for alice), so only the validity rule can refuse it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from pychat.client.errors import KeysReplaced, PeerKeyChanged
from pychat.client.keystore import KeystoreData
from pychat.client.peer_trust import _accept_last
from pychat.client.protocol import RemoteError
from pychat.client.session import ChatClient
from pychat.client.validity import envelope_problem, retired_after
from pychat.crypto.e2e import seal_message, time_ms
from pychat.crypto.envelopes import EnvelopeFacts, make_envelope
from pychat.crypto.identity import IdentityKeyPair
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import collect, memory_pair
from tests.store_helpers import appended
from tests.trust_helpers import new_machine, reregister

CONV = conversation_id("alice", "bob")


def stolen(client: ChatClient) -> KeystoreData:
    """A copy of the client's keystore as it is now (what a thief carries away)."""
    assert client.data is not None
    return KeystoreData.from_json(json.loads(json.dumps(client.data.to_json())))


async def store_forged(
    server: MemoryServer, keys: KeystoreData, body: str, *, epoch: int, signer: Any = None
) -> int:
    """A message from ``keys``'s owner, sealed with the epoch key and signed by ``signer``
    (the keystore's current identity by default), stored by the server as if sent; its seq."""
    store = server.chat.store.conversations
    conv = store.get(CONV)
    assert conv is not None
    keys.counter += 1000  # far ahead of anything the owner sent: the replay rule lets it by
    inner = {
        "v": 2, "sender": keys.username, "device": keys.device_id,
        "recipient": "bob" if keys.username == "alice" else "alice", "conversation": CONV,
        "epoch": epoch, "counter": keys.counter, "time": time_ms(server.clock.seconds()),
        "body": body,
    }  # fmt: skip
    key = keys.conversation_keys[CONV][str(epoch)].encode()
    ciphertext = seal_message(key, signer or keys.identity, inner)
    record = await appended(
        store,
        conv,
        keys.username,
        epoch,
        ciphertext,
        f"forged-{keys.counter}",
        server.clock.seconds(),
    )
    return int(record["seq"])


async def rotated_with_a_thief(
    server: MemoryServer, tmp_path: Path, *, bob_reads: bool = True
) -> tuple[ChatClient, ChatClient, KeystoreData]:
    """alice writes to bob, a thief copies alice's keystore, alice rotates her identity (her
    client begins epoch 2 with the new key) and bob reads (unless ``bob_reads`` is False)."""
    alice, bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "hello")
    thief = stolen(alice)
    await alice.rotate_identity()
    if bob_reads:
        assert [m.status for m in await bob.read("alice")] == ["verified"]
    return alice, bob, thief


def shown(messages: list[Any]) -> list[tuple[str | None, str]]:
    return [(m.text, m.status) for m in messages]


@pytest_twisted.ensureDeferred
async def test_old_key_after_a_signed_rotation_is_refused_in_the_old_and_the_new_epoch(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "before the rotation")
    thief = stolen(alice)
    await alice.rotate_identity()  # alice's client begins epoch 2 with her new key
    assert alice.data is not None
    thief.conversation_keys[CONV]["2"] = alice.data.conversation_keys[CONV]["2"]
    await store_forged(server, thief, "old key, old epoch", epoch=1)
    await store_forged(server, thief, "old key, new epoch", epoch=2)
    await alice.send("bob", "after the rotation")
    seen = await bob.read("alice")
    assert shown(seen)[0] == ("before the rotation", "verified")
    assert shown(seen)[-1] == ("after the rotation", "verified")
    old_epoch, new_epoch = seen[1], seen[2]
    assert old_epoch.status == new_epoch.status == "rejected"
    assert "after alice began epoch 2" in str(old_epoch.reason)
    assert "signed with a key alice has retired" in str(new_epoch.reason)
    assert old_epoch.text is None and new_epoch.text is None


@pytest_twisted.ensureDeferred
async def test_old_keystore_after_a_reset_is_told_and_its_messages_are_refused(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "from the old phone")
    await bob.read("alice")
    await alice.close()
    await reregister(server, "alice", "pw")  # operator reset, signup on a new phone
    new_alice = await new_machine(server, tmp_path / "alice-new", "alice")
    await bob.trust("alice")  # bob's new epoch names alice's new key: the old one is retired
    # the old phone (or whoever holds it) logs in with the same password
    old = server.client(tmp_path / "alice")
    events = collect(old)
    await old.login("alice", "pw")
    notices = [e.data["text"] for e in events if e.kind == "notice"]
    assert any("THIS DEVICE'S KEYS ARE NOT ALICE'S ANY MORE" in t for t in notices)
    with pytest.raises(KeysReplaced, match="move this device's keystore aside"):
        await old.send("bob", "still me?")
    # a modified client skips its own check; the honest server stores the message
    entry = await old.messaging.new_entry("bob", "the old key speaks")
    await old.messaging._deliver_in(CONV, entry)
    await new_alice.send("bob", "from the new phone")
    seen = await bob.read("alice", since=1)
    assert seen[0].status == "rejected" and seen[0].text is None
    assert "signed with a key alice has retired" in str(seen[0].reason)
    assert shown(seen[1:]) == [("from the new phone", "verified")]
    for client in (old, new_alice, bob):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_an_old_epoch_after_a_new_one_is_refused_by_reader_and_server(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "in epoch 1")
    await alice.rotate("bob")  # alice began epoch 2
    assert alice.data is not None
    # the server itself refuses a send of alice's in epoch 1 now (honest devices never trip it)
    with pytest.raises(Exception, match="began epoch 2"):
        await alice.request(
            "send", conversation=CONV, epoch=1, ciphertext="x", client_id="stale-epoch"
        )
    # a hostile server stores one anyway (alice's own key, alice's old epoch key)
    await store_forged(server, stolen(alice), "epoch 1 again", epoch=1)
    first, forged = await bob.read("alice")
    assert shown([first]) == [("in epoch 1", "verified")]
    assert forged.status == "rejected" and "after alice began epoch 2" in str(forged.reason)


@pytest_twisted.ensureDeferred
async def test_a_withheld_envelope_does_not_take_its_place_back(
    server: MemoryServer, tmp_path: Path
) -> None:
    _, bob, thief = await rotated_with_a_thief(server, tmp_path)  # bob saw epoch 2
    conv = server.chat.store.conversations.get(CONV)
    assert conv is not None
    conv.epochs[:] = conv.epochs[:1]  # from now on the server serves only epoch 1
    await store_forged(server, thief, "the retired key", epoch=1)
    (forged,) = await bob.read("alice", since=1)
    assert forged.status == "rejected" and "alice began epoch 2" in str(forged.reason)


@pytest_twisted.ensureDeferred
async def test_a_rolled_back_and_reordered_key_history_brings_no_old_key_back(
    server: MemoryServer, tmp_path: Path
) -> None:
    _, bob, thief = await rotated_with_a_thief(server, tmp_path)  # bob holds epoch 2's place
    accounts = server.chat.store.accounts
    account = accounts.get("alice")
    assert account is not None
    first, second = account.key_history
    # the server claims alice's first key is current again, its history reordered to match
    await accounts.update(
        "alice",
        public_keys=first["public_keys"],
        key_version=1,
        key_history=[second, {**first, "key_version": 3}],
    )
    with pytest.raises(PeerKeyChanged):
        await bob.send("alice", "to whom?")
    await store_forged(server, thief, "rolled back", epoch=1)
    (forged,) = await bob.read("alice", since=1)
    assert forged.status == "rejected"
    assert bob.peer_trust("alice") == (False, True)  # a pending change, never a silent one


@pytest_twisted.ensureDeferred
async def test_an_epoch_made_with_a_retired_key_opens_nothing(
    server: MemoryServer, tmp_path: Path
) -> None:
    _, bob, thief = await rotated_with_a_thief(server, tmp_path)
    # the thief makes epoch 3 with the old key, wrapped for bob, and the server stores it
    conv = server.chat.store.conversations.get(CONV)
    assert conv is not None and bob.data is not None
    key = b"l7UKy3JoI85nmxbt2WQT4SfgiJaXGaFDSu6p9Q44nV4="
    envelope = make_envelope(
        CONV, 3, "alice", thief.identity,
        {"alice": thief.identity.public(), "bob": bob.data.identity.public()}, key,
        after=conv.position,
    )  # fmt: skip
    await server.chat.store.conversations.add_epoch(conv, envelope, 0.0)
    thief.conversation_keys[CONV]["3"] = key.decode()
    await store_forged(server, thief, "in the thief's epoch", epoch=3)
    (forged,) = await bob.read("alice", since=1)
    assert forged.status == "rejected" and "no trusted key for epoch 3" in str(forged.reason)


@pytest_twisted.ensureDeferred
async def test_bob_places_a_rotation_himself_when_alices_epoch_is_withheld(
    server: MemoryServer, tmp_path: Path
) -> None:
    _, bob, thief = await rotated_with_a_thief(server, tmp_path, bob_reads=False)
    conv = server.chat.store.conversations.get(CONV)
    assert conv is not None
    conv.epochs[:] = conv.epochs[:1]  # alice's epoch 2 never reaches bob
    assert [m.status for m in await bob.read("alice")] == ["verified"]
    assert len(conv.epochs) == 2 and conv.epochs[1]["creator"] == "bob"  # bob's own place
    await store_forged(server, thief, "after bob's place", epoch=1)
    (forged,) = await bob.read("alice", since=1)
    assert forged.status == "rejected" and "retired" in str(forged.reason)


@pytest_twisted.ensureDeferred
async def test_the_server_places_each_new_epoch_after_the_last_message(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "one")
    await alice.send("bob", "two")
    assert alice.data is not None and bob.data is not None
    identities = {"alice": alice.data.identity.public(), "bob": bob.data.identity.public()}
    key = b"l7UKy3JoI85nmxbt2WQT4SfgiJaXGaFDSu6p9Q44nV4="
    stale = make_envelope(CONV, 2, "alice", alice.data.identity, identities, key, after=1)
    with pytest.raises(RemoteError) as info:
        await alice.request("add_epoch", conversation=CONV, envelope=stale)
    assert info.value.code == "bad_epoch" and info.value.error["after"] == 2
    assert (await alice.request("epochs", conversation=CONV))["after"] == 2
    placed = make_envelope(CONV, 2, "alice", alice.data.identity, identities, key, after=2)
    await alice.request("add_epoch", conversation=CONV, envelope=placed)


@pytest_twisted.ensureDeferred
async def test_a_signal_signed_with_a_retired_key_is_dropped(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, bob, thief = await rotated_with_a_thief(server, tmp_path)
    alice.signals.enabled = bob.signals.enabled = True
    heard = collect(bob)
    inner = {
        "v": 2, "sender": "alice", "device": thief.device_id, "recipient": "bob",
        "conversation": CONV, "epoch": 1, "counter": 0,
        "time": time_ms(server.clock.seconds()), "body": "", "kind": "typing",
    }  # fmt: skip
    key = thief.conversation_keys[CONV]["1"].encode()
    forged = seal_message(key, thief.identity, inner)
    await bob.pushes.handle(
        {"event": "signal", "conversation": CONV, "sender": "alice", "ciphertext": forged}
    )
    await alice.signals.send("bob", "typing")
    assert [e.data["peer"] for e in heard if e.kind == "signal"] == ["alice"]  # the real one


def test_envelopes_placed_out_of_order_are_refused() -> None:
    fp = {"alice": "a" * 64, "bob": "b" * 64}
    epochs = {1: EnvelopeFacts(1, "alice", 0, fp), 3: EnvelopeFacts(3, "bob", 10, fp)}
    early = EnvelopeFacts(2, "alice", 12, fp)  # epoch 2 cannot begin after epoch 3 did
    late = EnvelopeFacts(4, "alice", 9, fp)
    for facts in (early, late):
        problem = envelope_problem(epochs, facts, keys=[fp["alice"]], signer=fp["alice"])
        assert problem is not None and "out of order" in problem
    fine = EnvelopeFacts(2, "alice", 5, fp)
    assert envelope_problem(epochs, fine, keys=[fp["alice"]], signer=fp["alice"]) is None


def test_a_key_accepted_again_retires_the_ones_accepted_between() -> None:
    pin: dict[str, Any] = {"accepted": {}}
    for fingerprint in ("k1", "k2", "k1"):  # k1, then a change to k2, then back to k1
        _accept_last(pin, fingerprint, {})
    assert list(pin["accepted"]) == ["k2", "k1"]
    epochs = {5: EnvelopeFacts(5, "bob", 40, {"alice": "k1", "bob": "b"})}
    assert retired_after(epochs, "alice", list(pin["accepted"]), "k2") == 40
    assert retired_after(epochs, "alice", list(pin["accepted"]), "k1") is None


# -- the directory, the clock -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_key_swapped_in_one_answer_stops_being_pending_when_the_pin_is_back(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice, _bob = await memory_pair(server, tmp_path)
    await alice.send("bob", "hi")
    accounts = server.chat.store.accounts
    account = accounts.get("bob")
    assert account is not None
    fake = IdentityKeyPair.generate().public()
    await accounts.update("bob", public_keys=fake.to_json())  # one lie
    with pytest.raises(PeerKeyChanged):
        await alice.send("bob", "blocked")
    assert alice.peer_trust("bob") == (False, True)
    events = collect(alice)
    await accounts.update("bob", public_keys=account.public_keys)  # honest again
    numbers = await alice.safety_numbers("bob")
    assert not numbers.pending and numbers.pinned is None
    assert any(e.kind == "keys_withdrawn" for e in events)
    await alice.mark_verified("bob")
    assert alice.peer_trust("bob") == (True, False)
    assert await alice.send("bob", "unblocked") == 2
    # trust also clears it when the pinned key is what the server shows
    await accounts.update("bob", public_keys=fake.to_json())
    with pytest.raises(PeerKeyChanged):
        await alice.send("bob", "blocked again")
    await accounts.update("bob", public_keys=account.public_keys)
    await alice.trust("bob")
    assert alice.peer_trust("bob") == (True, False)


@pytest_twisted.ensureDeferred
async def test_the_servers_clock_is_shown_and_a_far_sender_clock_beside_it(
    server: MemoryServer, tmp_path: Path
) -> None:
    from pychat.client.cli import format_message

    alice, bob = await memory_pair(server, tmp_path)
    entry = await alice.messaging.new_entry("bob", "party like it's 1999")
    await alice.messaging.deliver(dataclasses.replace(entry, time=946684800.0))
    await alice.send("bob", "on time")
    stored = await bob.request("history", conversation=CONV, after=0, limit=5)
    far, near = await bob.read("alice")
    assert far.time == stored["messages"][0]["time"] and far.sender_time == 946684800.0
    assert far.clock_differs and not near.clock_differs
    assert "(their clock: 2000-01-01" in format_message(far)
    assert "their clock" not in format_message(near)
    assert far.to_json()["time"] == far.time and far.to_json()["sender_time"] == 946684800.0


@pytest.fixture
def server(tmp_path: Path) -> MemoryServer:
    return MemoryServer(tmp_path / "data")
