"""Clients of the real client library against an in-process server."""

from __future__ import annotations

from pathlib import Path

from pychat.client.address import ServerAddress
from pychat.client.blocking import inline
from pychat.client.errors import ConnectError
from pychat.client.protocol import ClientProtocol
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


class Outage:
    """A connector to a memory server that can be switched off (the server is away)."""

    def __init__(self, server: MemoryServer) -> None:
        self.server = server
        self.down = False

    async def connect(self) -> ClientProtocol:
        if self.down:
            raise ConnectError("the server is away (a test outage)")
        return self.server.connect_now()

    def client(self, home: Path) -> ChatClient:
        return ChatClient(
            ServerAddress("memory", 1),
            home,
            reactor=self.server.clock,
            run_blocking=inline,
            connector=self.connect,
        )

    def go_down(self) -> None:
        self.down = True
        self.server.drop_connections()
