"""What the ``pychat`` command says when keys change: a peer's signed rotation (once), a key
swapped in one answer (cleared when the pin is back), and an old device whose account was
reset and signed up again elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.crypto.identity import IdentityKeyPair
from pychat.testing import RunningServer
from tests.cli_helpers import Cli
from tests.trust_helpers import reregister

pytestmark = pytest.mark.usefixtures("cheap_kdf")


async def pair(server: RunningServer, tmp_path: Path) -> tuple[Cli, Cli]:
    alice = Cli(server, tmp_path / "alice", "alice", "pw")
    bob = Cli(server, tmp_path / "bob", "bob", "pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    assert (await alice.run("send", "bob", "hello")).code == 0
    return alice, bob


@pytest_twisted.ensureDeferred
async def test_a_peers_signed_rotation_is_told_once_on_read_and_on_send(
    server: RunningServer, tmp_path: Path
) -> None:
    alice, bob = await pair(server, tmp_path)
    assert (await bob.run("rotate-identity")).code == 0
    first = await alice.run("read", "bob")
    assert first.code == 0 and "bob rotated their identity keys" in first.err
    assert "New safety number" in first.err and "pychat verify bob" in first.err
    again = await alice.run("send", "bob", "seen it")
    assert again.code == 0 and "rotated" not in again.err  # once per rotation
    assert (await bob.run("rotate-identity")).code == 0
    told = await alice.run("send", "bob", "and again")
    assert told.code == 0 and "bob rotated their identity keys" in told.err


@pytest_twisted.ensureDeferred
async def test_verify_mark_works_again_after_a_key_swapped_in_one_answer(
    server: RunningServer, tmp_path: Path
) -> None:
    alice, _bob = await pair(server, tmp_path)
    accounts = server.chat.store.accounts
    account = accounts.get("bob")
    assert account is not None
    await accounts.update("bob", public_keys=IdentityKeyPair.generate().public().to_json())
    assert (await alice.run("send", "bob", "to the impostor?")).code == 4
    assert (await alice.run("verify", "bob", "--mark")).code == 4
    await accounts.update("bob", public_keys=account.public_keys)
    r = await alice.run("verify", "bob", "--mark")
    assert r.code == 0 and "bob is now marked verified" in r.out
    assert "pinned key again" in r.err and "CHANGED" not in r.out
    assert (await alice.run("send", "bob", "back to normal")).code == 0


@pytest_twisted.ensureDeferred
async def test_an_old_device_after_a_reset_says_so_and_refuses_to_send(
    server: RunningServer, tmp_path: Path
) -> None:
    alice, _bob = await pair(server, tmp_path)
    await reregister(server, "alice", "pw")
    r = await alice.run("send", "bob", "from the old phone")
    assert r.code == 4
    assert "THIS DEVICE'S KEYS ARE NOT ALICE'S ANY MORE" in r.err
    assert "move this device's keystore aside" in r.err and "log in again" in r.err
    r = await alice.run("login")
    assert r.code == 4 and "This device will not send" in r.err
