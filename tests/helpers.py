"""Helpers for driving server connections over in-memory transports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from pychat.server.chat import ChatServer
from pychat.server.config import ServerConfig
from pychat.server.protocol import ChatServerProtocol
from pychat.store.blocking import inline_runner
from pychat.store.server_store import ServerStore


@dataclass
class FakeConn:
    """A server connection over a StringTransport, with helpers to talk JSON lines."""

    proto: ChatServerProtocol
    transport: StringTransport
    _next_id: int = field(default=1)

    def send(self, line: bytes) -> None:
        self.proto.dataReceived(line)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request and return the one reply to it (handlers finish synchronously here)."""
        rid = self._next_id
        self._next_id += 1
        self.send(json.dumps({"id": rid, "op": op, **fields}).encode() + b"\n")
        replies = [m for m in self.received() if m.get("id") == rid]
        assert len(replies) == 1, replies
        return replies[0]

    def received(self) -> list[dict[str, Any]]:
        """Every object written since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return [json.loads(line) for line in data.splitlines() if line]

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)


def make_server(
    tmp_path: Path, clock: MemoryReactorClock | None = None, **config: Any
) -> ChatServer:
    """A ChatServer on a fake clock with its store in ``tmp_path``, not listening anywhere."""
    cfg = ServerConfig(data_dir=tmp_path, **config)
    store = ServerStore.open(tmp_path, cfg.store_key_path, inline_runner)
    return ChatServer(cfg, clock or MemoryReactorClock(), store)


def connect(server: ChatServer, host: str = "192.0.2.10", port: int = 40000) -> FakeConn:
    """A new connection to ``server`` from ``host:port`` over a StringTransport."""
    proto = server.factory().buildProtocol(IPv4Address("TCP", host, port))
    assert isinstance(proto, ChatServerProtocol)
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    return FakeConn(proto, transport)
