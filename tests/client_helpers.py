"""Clients of the real client library against an in-process server."""

from __future__ import annotations

from pathlib import Path

from pychat.client.address import ServerAddress
from pychat.client.session import ChatClient, ClientEvent
from pychat.crypto.kdf import minimum_params
from pychat.testing import MemoryServer, RunningServer

KDF = minimum_params()


def client_for(server: RunningServer, home: Path) -> ChatClient:
    return ChatClient(ServerAddress("127.0.0.1", server.port), home)


async def signed_up(
    server: RunningServer, home: Path, name: str, password: str = "pw"
) -> ChatClient:
    """A client that signed up and logged in as ``name`` with its own home."""
    client = client_for(server, home)
    await client.signup(name, password, kdf=KDF)
    await client.login(name, password)
    return client


def collect(client: ChatClient) -> list[ClientEvent]:
    events: list[ClientEvent] = []
    client.listeners.append(events.append)
    return events


async def memory_pair(memory: MemoryServer, tmp_path: Path) -> tuple[ChatClient, ChatClient]:
    """alice and bob, signed up and logged in on an in-memory server."""
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    return alice, bob
