"""The client library end to end through a real server over TLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from pychat.client.keystore import KeystoreError, KeystoreFile
from pychat.client.session import ChatClient
from pychat.testing import RunningServer
from tests.client_helpers import client_for, collect, signed_up


async def until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("condition not reached")


@pytest.fixture
def server(server_on_each_backend: RunningServer) -> RunningServer:
    """These scenarios run on both backends."""
    return server_on_each_backend


@pytest_twisted.ensureDeferred
async def test_alice_and_bob_talk_and_agree_on_the_safety_number(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice")
    bob = await signed_up(server, tmp_path / "bob", "bob")
    bob_events = collect(bob)

    seq = await alice.send("bob", "hello bob 👋")
    assert seq == 1
    (first,) = await bob.read("alice")
    assert (first.status, first.sender, first.text) == ("verified", "alice", "hello bob 👋")
    await until(lambda: any(e.kind == "message" for e in bob_events))
    live = next(e for e in bob_events if e.kind == "message")
    assert live.message is not None and live.message.text == "hello bob 👋"

    await bob.send("alice", "hi alice")
    texts = [(m.sender, m.text, m.status) for m in await alice.read("bob")]
    assert texts == [("alice", "hello bob 👋", "verified"), ("bob", "hi alice", "verified")]

    number_a, verified = await alice.safety_number("bob")
    number_b, _ = await bob.safety_number("alice")
    assert number_a == number_b and not verified
    assert len(number_a.replace(" ", "")) == 60
    await alice.trust("bob")  # no change pending: accepts, marks nothing
    assert (await alice.safety_number("bob"))[1] is False
    await alice.mark_verified("bob")
    assert (await alice.safety_number("bob"))[1] is True

    assert await alice.rotate("bob") == 2
    await alice.send("bob", "after rotation")
    messages = await bob.read("alice")
    assert [(m.text, m.status) for m in messages] == [
        ("hello bob 👋", "verified"),
        ("hi alice", "verified"),
        ("after rotation", "verified"),
    ]
    await bob.send("alice", "bob uses epoch 2 too")
    assert (await alice.read("bob", since=3))[0].text == "bob uses epoch 2 too"
    for c in (alice, bob):
        await c.close()


@pytest_twisted.ensureDeferred
async def test_keystore_holds_nothing_in_clear(server: RunningServer, tmp_path: Path) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice")
    await signed_up(server, tmp_path / "bob", "bob")
    await alice.send("bob", "PLAINTEXT-CANARY-31337")
    assert alice.keystore is not None and alice.data is not None
    raw = alice.keystore.path.read_bytes()
    from cryptography.hazmat.primitives import serialization

    secrets_in_clear = [
        b"PLAINTEXT-CANARY-31337",
        b"PRIVATE KEY",
        alice.data.identity.signing.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ),
    ]
    for conv_keys in alice.data.conversation_keys.values():
        secrets_in_clear += [k.encode() for k in conv_keys.values()]
    for secret in secrets_in_clear:
        assert secret not in raw
    assert oct(alice.keystore.path.stat().st_mode & 0o777) == "0o600"
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_wrong_password_and_truncated_keystore_are_clear_errors(
    tmp_path: Path, server: RunningServer
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice", "right")
    await alice.close()
    store = KeystoreFile(tmp_path / "alice", alice.server, "alice")
    from pychat.client.keystore import WrongPassword

    with pytest.raises(WrongPassword, match="wrong password"):
        store.unlock("wrong")
    raw = store.path.read_bytes()
    store.path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(KeystoreError, match="damaged or truncated") as info:
        store.unlock("right")
    assert "left untouched" in str(info.value)
    assert store.path.read_bytes() == raw[: len(raw) // 2]
    # logging in with a damaged keystore stops with the same error and still leaves it alone
    again = ChatClient(alice.address, tmp_path / "alice")
    with pytest.raises(KeystoreError):
        await again.login("alice", "right")
    assert store.path.read_bytes() == raw[: len(raw) // 2]
    await again.close()


@pytest_twisted.ensureDeferred
async def test_new_machine_logs_in_with_only_the_password_and_reads_history(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice", "alice-pw")
    bob = await signed_up(server, tmp_path / "bob", "bob")
    await alice.send("bob", "sent from the old laptop")
    await bob.send("alice", "reply to the old laptop")
    await alice.rotate("bob")
    await alice.send("bob", "after a rotation")

    laptop = ChatClient(alice.address, tmp_path / "new-laptop")
    await laptop.login("alice", "alice-pw")
    texts = [(m.text, m.status) for m in await laptop.read("bob")]
    assert texts == [
        ("sent from the old laptop", "verified"),
        ("reply to the old laptop", "verified"),
        ("after a rotation", "verified"),
    ]
    await laptop.send("bob", "hello from the new laptop")
    assert (await bob.read("alice", since=3))[0].text == "hello from the new laptop"
    for c in (alice, bob, laptop):
        await c.close()


@pytest_twisted.ensureDeferred
async def test_password_change_reaches_server_backup_and_keystore(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice", "old-pw")
    await alice.change_password("old-pw", "new-pw")
    await alice.close()
    again = ChatClient(alice.address, tmp_path / "alice")
    await again.login("alice", "new-pw")  # local keystore opens with the new password
    other = ChatClient(alice.address, tmp_path / "elsewhere")
    await other.login("alice", "new-pw")  # and so does the server's key backup
    assert other.my_fingerprint() == again.my_fingerprint()
    for c in (again, other):
        await c.close()
    assert (
        json.loads(KeystoreFile(tmp_path / "alice", alice.server, "alice").path.read_text())["v"]
        == 1
    )


@pytest_twisted.ensureDeferred
async def test_reconnect_relogs_in_and_catches_up(server: RunningServer, tmp_path: Path) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice")
    bob = await signed_up(server, tmp_path / "bob", "bob")
    await alice.send("bob", "one")
    await bob.read("alice")
    events = collect(bob)
    assert bob.connection.proto is not None and bob.connection.proto.transport is not None
    bob.connection.proto.transport.loseConnection()  # the network drops
    await until(
        lambda: any(e.data.get("state") == "reconnecting" for e in events if e.kind == "connection")
    )
    await alice.send("bob", "two, while bob was away")

    def caught_up() -> bool:
        return any(
            e.message is not None and e.message.text == "two, while bob was away" for e in events
        )

    await until(caught_up, timeout=15)
    assert bob.connection.state == "online"
    for c in (alice, bob):
        await c.close()


def test_message_counters_never_repeat_across_a_crash(tmp_path: Path) -> None:
    from pychat.client.keystore import COUNTER_BLOCK, KeystoreData
    from pychat.crypto.identity import IdentityKeyPair

    data = KeystoreData(server="s", username="alice", identities=[IdentityKeyPair.generate()])
    first, must_save = data.next_counter()
    assert (first, must_save) == (1, True)
    saved = data.to_json()  # the keystore as written when the block was reserved
    used = [data.next_counter()[0] for _ in range(5)]
    assert used == [2, 3, 4, 5, 6]
    # crash: the later counters were never saved; the restarted client skips the whole block
    restarted = KeystoreData.from_json(saved)
    counter, must_save = restarted.next_counter()
    assert counter == COUNTER_BLOCK + 1 and must_save


@pytest_twisted.ensureDeferred
async def test_the_client_keeps_its_device_token_and_gets_past_a_stranger_lock(
    server: RunningServer, tmp_path: Path
) -> None:
    from pychat.client import auth
    from pychat.client.device_tokens import DeviceTokens
    from pychat.client.protocol import RemoteError

    alice = await signed_up(server, tmp_path / "alice", "alice", "right")
    await alice.close()
    assert DeviceTokens(tmp_path / "alice").get(f"127.0.0.1:{server.port}", "alice")
    # a stranger (from the same loopback address) guesses until the account is locked
    locked = False
    for _ in range(40):
        proto = await server.connect(hello=False)
        params = auth.srp_params_from_hello(await proto.request("hello", version=1))
        try:
            await auth.login(proto, params, "alice", "guess")
        except RemoteError as exc:
            locked = locked or exc.code == "rate_limited"
        proto.close()
        if locked:
            break
    assert locked
    again = client_for(server, tmp_path / "alice")
    await again.login("alice", "right")  # the token this home got at signup's login
    await again.close()
