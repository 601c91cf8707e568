"""A server that lies: every tampering is detected and reported, never silently accepted."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from pychat.client.session import CertificateChanged, ChatClient, PeerKeyChanged
from pychat.crypto.identity import IdentityKeyPair
from pychat.testing import RunningServer, start_server
from pychat.tls import CERT_FILE, KEY_FILE
from pychat.wire.ids import conversation_id
from tests.client_helpers import signed_up
from tests.store_helpers import appended


@pytest_twisted.ensureDeferred
async def test_swapped_public_key_blocks_sending_and_fails_receipt(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    bob = await signed_up(server, tmp_path / "b", "bob")
    await alice.send("bob", "before the swap")
    await bob.read("alice")
    # The server swaps bob's keys for its own (it cannot sign the change with bob's key).
    accounts = server.chat.store.accounts
    account = accounts.get("bob")
    assert account is not None
    fake = IdentityKeyPair.generate()
    entry = {
        "key_version": 2,
        "public_keys": fake.public().to_json(),
        "fingerprint": fake.public().fingerprint(),
        "signature": "AAAA",
        "time": 0,
    }
    await accounts.update(
        account.username,
        public_keys=fake.public().to_json(),
        key_version=2,
        key_history=[*account.key_history, entry],
    )
    with pytest.raises(PeerKeyChanged) as info:
        await alice.send("bob", "to the impostor?")
    assert info.value.chain_ok is False
    assert "NOT signed by their previous key" in str(info.value) and "pychat trust bob" in str(
        info.value
    )
    assert "CHANGED" in str(info.value)
    # nothing reached the server for the impostor
    conv = server.chat.store.conversations.get(conversation_id("alice", "bob"))
    assert conv is not None and conv.last_seq == 1


@pytest_twisted.ensureDeferred
async def test_modified_ciphertext_is_rejected(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    bob = await signed_up(server, tmp_path / "b", "bob")
    await alice.send("bob", "the original")
    store = server.chat.store.conversations
    real_page = store.page

    async def tampering_page(conv: Any, first: int, stop: int) -> list[dict[str, Any]]:
        records = await real_page(conv, first, stop)
        out = []
        for r in records:
            c = r["ciphertext"]
            middle = len(c) // 2
            out.append(
                {
                    **r,
                    "ciphertext": c[:middle] + ("A" if c[middle] != "A" else "B") + c[middle + 1 :],
                }
            )
        return out

    monkeypatch.setattr(store, "page", tampering_page)
    (message,) = await bob.read("alice")
    assert message.status == "rejected" and message.text is None
    assert "cannot decrypt" in (message.reason or "")


@pytest_twisted.ensureDeferred
async def test_replayed_message_is_rejected(server: RunningServer, tmp_path: Path) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    bob = await signed_up(server, tmp_path / "b", "bob")
    await alice.send("bob", "pay bob 10 euros")
    store = server.chat.store.conversations
    conv = store.get(conversation_id("alice", "bob"))
    assert conv is not None
    (original,) = await store.page(conv, 1, 2)
    durable = appended(store, conv, "alice", 1, original["ciphertext"], "replayed", 99.0)
    await durable
    first, replay = await bob.read("alice")
    assert first.status == "verified" and first.text == "pay bob 10 euros"
    assert replay.status == "rejected" and "replay" in (replay.reason or "")


@pytest_twisted.ensureDeferred
async def test_message_readdressed_to_a_third_user_is_rejected(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    await signed_up(server, tmp_path / "b", "bob")
    carol = await signed_up(server, tmp_path / "c", "carol")
    await alice.send("bob", "for bob only")
    await alice.send("carol", "hi carol")
    store = server.chat.store.conversations
    to_bob = store.get(conversation_id("alice", "bob"))
    to_carol = store.get(conversation_id("alice", "carol"))
    assert to_bob is not None and to_carol is not None
    (stolen,) = await store.page(to_bob, 1, 2)
    durable = appended(store, to_carol, "alice", 1, stolen["ciphertext"], "moved", 99.0)
    await durable
    genuine, moved = await carol.read("alice")
    assert genuine.status == "verified"
    assert moved.status == "rejected" and moved.text is None


@pytest_twisted.ensureDeferred
async def test_message_claimed_from_the_wrong_sender_is_rejected(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    bob = await signed_up(server, tmp_path / "b", "bob")
    await alice.send("bob", "from alice")
    store = server.chat.store.conversations
    conv = store.get(conversation_id("alice", "bob"))
    assert conv is not None
    (original,) = await store.page(conv, 1, 2)
    # The server claims bob's own device sent alice's message back to alice.
    durable = appended(store, conv, "bob", 1, original["ciphertext"], "spoofed", 99.0)
    await durable
    messages = await alice.read("bob")
    assert messages[1].status == "rejected"
    assert "signed by alice but delivered as from bob" in (
        messages[1].reason or ""
    ) or "signature" in (messages[1].reason or "")
    del bob


@pytest_twisted.ensureDeferred
async def test_envelope_without_signature_is_refused(server: RunningServer, tmp_path: Path) -> None:
    alice = await signed_up(server, tmp_path / "a", "alice")
    bob = await signed_up(server, tmp_path / "b", "bob")
    await alice.send("bob", "secret")
    conv = server.chat.store.conversations.get(conversation_id("alice", "bob"))
    assert conv is not None
    conv.epochs[0] = {k: v for k, v in conv.epochs[0].items() if k != "signature"}
    (message,) = await bob.read("alice")
    assert message.status == "rejected" and "no trusted key" in (message.reason or "")
    assert bob.data is not None and not bob.data.conversation_keys.get(conv.id)


@pytest_twisted.ensureDeferred
async def test_changed_server_certificate_refuses_before_any_credential(tmp_path: Path) -> None:
    first = await start_server(tmp_path / "data")
    port = first.port
    alice = ChatClient(dataclasses.replace(_address(port)), tmp_path / "home")
    await alice.signup("alice", "pw", kdf=_kdf())
    await alice.close()
    await first.stop()
    pins_before = (tmp_path / "home" / "known_servers.json").read_bytes()

    # The "same" server comes back with another certificate (an impostor, or a careless operator).
    (tmp_path / "data" / CERT_FILE).unlink()
    (tmp_path / "data" / KEY_FILE).unlink()
    second = await start_server(tmp_path / "data", listen=(f"ssl:{port}:interface=127.0.0.1",))
    try:
        again = ChatClient(_address(port), tmp_path / "home")
        with pytest.raises(CertificateChanged) as info:
            await again.login("alice", "pw")
        text = str(info.value)
        assert "CHANGED" in text and f"pychat accept-server 127.0.0.1:{port}" in text
        assert info.value.presented == second.chat.tls_fingerprint
        assert (tmp_path / "home" / "known_servers.json").read_bytes() == pins_before
        assert (
            len(second.chat.account_service.logins.login_starts._keys) == 0
        )  # no login was attempted
    finally:
        await second.stop()


def _address(port: int) -> Any:
    from pychat.client.address import ServerAddress

    return ServerAddress("127.0.0.1", port)


def _kdf() -> Any:
    from pychat.crypto.kdf import minimum_params

    return minimum_params()
