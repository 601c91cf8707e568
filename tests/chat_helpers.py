"""Logged-in test clients over real TLS, and ways to wait for what they receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, reactor, task

from pychat.client import auth
from pychat.client.protocol import ClientProtocol
from pychat.testing import MemoryServer, RunningServer
from tests.accounts_helpers import KDF, public_keys

PASSWORD = "pw-for-tests"


@dataclass
class TestUser:
    """A logged-in connection and the pushes it received."""

    name: str
    proto: ClientProtocol
    events: list[dict[str, Any]] = field(default_factory=list)

    def request(self, op: str, **fields: Any) -> defer.Deferred[dict[str, Any]]:
        return self.proto.request(op, **fields)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    async def wait_for(
        self, kind: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait (bounded) until at least ``count`` pushes of ``kind`` arrived."""
        for _ in range(int(timeout / 0.01)):
            if len(self.of_kind(kind)) >= count:
                return self.of_kind(kind)
            await task.deferLater(reactor, 0.01, lambda: None)
        raise AssertionError(
            f"{self.name} got {len(self.of_kind(kind))} {kind} pushes, wanted {count}"
        )


async def signup(server: RunningServer | MemoryServer, name: str, password: str = PASSWORD) -> None:
    proto = await server.connect(hello=False)
    params = auth.srp_params_from_hello(await proto.request("hello", version=1))
    await auth.signup(proto, params, name, password, public_keys(name), kdf=KDF)
    proto.close()


async def login(
    server: RunningServer | MemoryServer, name: str, password: str = PASSWORD
) -> TestUser:
    proto = await server.connect(hello=False)
    params = auth.srp_params_from_hello(await proto.request("hello", version=1))
    user = TestUser(name, proto)
    proto.on_event = user.events.append
    await auth.login(proto, params, name, password)
    return user


def envelope(epoch: int = 1) -> dict[str, Any]:
    """A stand-in key envelope: the server stores it as given."""
    return {"epoch": epoch, "wrapped": {"a": "AAAA", "b": "BBBB"}, "signature": "c2ln"}
