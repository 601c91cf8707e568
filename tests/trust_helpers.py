"""Helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path

from pychat.client.keystore import make_key_backup
from pychat.client.session import ChatClient
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.testing import MemoryServer, RunningServer
from tests.client_helpers import client_for


async def reregister(
    server: RunningServer | MemoryServer, name: str, password: str
) -> IdentityKeyPair:
    """What an operator's reset plus a new signup leaves: new keys that the old ones did not
    sign, and a key backup holding only the new keys; peers are told as after any change."""
    new = IdentityKeyPair.generate()
    accounts = server.chat.store.accounts
    account = accounts.get(name)
    assert account is not None
    entry = {
        "key_version": account.key_version + 1,
        "public_keys": new.public().to_json(),
        "fingerprint": new.public().fingerprint(),
        "signature": None,
        "time": 0.0,
    }
    await accounts.update(
        account.username,
        public_keys=new.public().to_json(),
        key_version=account.key_version + 1,
        key_history=[*account.key_history, entry],
        key_backup=make_key_backup([new], name, password, minimum_params()),
    )
    event = {"user": name, "key_version": entry["key_version"], "fingerprint": entry["fingerprint"]}
    for peer in ("alice", "bob"):
        if peer != name:
            server.chat.presence.push_to_user(peer, "keys_changed", event)
    return new


async def bob_reset_after(server: MemoryServer, tmp_path: Path, first: str) -> ChatClient:
    """alice and bob chat (alice writes ``first``), then bob's account is reset and he signs
    up again with new keys; returns alice's client."""
    alice = await server.signed_up(tmp_path / "alice", "alice")
    bob = await server.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", first)
    await bob.close()
    await reregister(server, "bob", "pw")
    return alice


async def new_machine(server: RunningServer | MemoryServer, home: Path, name: str) -> ChatClient:
    client = server.client(home) if isinstance(server, MemoryServer) else client_for(server, home)
    await client.login(name, "pw")
    return client
