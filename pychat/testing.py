"""Run a real pyChat server in-process and talk to it: for tests, benchmarks, bots and scripts.

Two ways:

* :class:`MemoryServer`: the whole server in memory, on a fake clock, with real
  :class:`~pychat.client.session.ChatClient` objects wired to it back to back (no sockets, no
  threads, no sleeping).  What most tests and bot experiments want.
* :func:`start_server`: the service tree that ``twistd pychat`` builds, listening on an
  ephemeral loopback port over real TLS, on the global reactor; :meth:`RunningServer.connect`
  opens a TLS connection to it.  For the few end-to-end tests of TLS and the real reactor.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from pychat.client.address import ServerAddress
from pychat.client.protocol import ClientProtocol
from pychat.client.session import ChatClient
from pychat.server.chat import ChatServer
from pychat.server.config import ServerConfig
from pychat.server.listener import TLSListenerService
from pychat.server.tap import makeService
from pychat.tls import CERT_FILE, certificate_fingerprint


@dataclass
class RunningServer:
    """A started server: its service tree, chat server object, port and data dir."""

    service: IService
    chat: ChatServer
    host: str
    port: int
    config: ServerConfig
    clients: list[ClientProtocol] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of the server's certificate, as clients pin it."""
        return certificate_fingerprint((self.config.data_dir / CERT_FILE).read_bytes())

    async def connect(self, *, hello: bool = True) -> ClientProtocol:
        """A new TLS connection (the certificate is not checked: tests pin nothing here)."""
        from twisted.internet import reactor

        endpoint = SSL4ClientEndpoint(reactor, self.host, self.port, CertificateOptions())
        proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
        self.clients.append(proto)
        if hello:
            await proto.request("hello", version=1)
        return proto

    async def stop(self) -> None:
        """Close every test client, then stop the server's service tree (once: stopping a
        stopped server does nothing)."""
        if not self.service.running:
            return
        for proto in self.clients:
            if not proto.is_closed:
                proto.close()
                await proto.closed_d
        await defer.maybeDeferred(self.service.stopService)


async def start_server(data_dir: Path, **overrides: Any) -> RunningServer:
    """Start a server on 127.0.0.1, an ephemeral port, with ``data_dir`` and ``overrides``."""
    from twisted.internet import reactor

    config = dataclasses.replace(
        ServerConfig(
            data_dir=data_dir,
            listen=("ssl:0:interface=127.0.0.1",),
            exit_on_listen_failure=False,
        ),
        **overrides,
    )
    service = makeService({"config": config}, reactor=reactor)
    service.startService()
    if not isinstance(service, MultiService):
        raise TypeError("makeService must return a MultiService")
    listener = next(s for s in service if isinstance(s, TLSListenerService))
    chat = next(s for s in service if isinstance(s, ChatServer))
    port = await listener.when_listening()
    host = port.getHost()
    return RunningServer(service, chat, host.host, host.port, config)  # type: ignore[attr-defined]


# -- in memory: no sockets, no threads, no real time -------------------------------------------


class _Pipe:
    """Delivers what either end writes to the other end's protocol, in order, at once (a
    write made while delivering waits its turn, so nothing nests)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Protocol, bytes]] = deque()
        self._delivering = False

    def send(self, to: Protocol, data: bytes) -> None:
        self._queue.append((to, data))
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                protocol, chunk = self._queue.popleft()
                protocol.dataReceived(chunk)
        finally:
            self._delivering = False


class _PipeEnd(StringTransport):
    """One end of a :class:`_Pipe`: a transport whose writes reach the other protocol."""

    def __init__(self, pipe: _Pipe, host: IPv4Address, peer: IPv4Address) -> None:
        super().__init__(hostAddress=host, peerAddress=peer)
        self.pipe = pipe
        self.other: _PipeEnd | None = None
        self.protocol: Protocol | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed and self.other is not None and self.other.protocol is not None:
            self.pipe.send(self.other.protocol, data)

    def loseConnection(self) -> None:
        for end in (self, self.other):
            if end is not None and not end.closed:
                end.closed = True
                if end.protocol is not None:
                    end.protocol.connectionLost(Failure(ConnectionDone("closed")))

    def abortConnection(self) -> None:
        self.loseConnection()


class MemoryServer:
    """A whole pyChat server in memory, for tests, bots and scripts.

    The real :class:`~pychat.server.chat.ChatServer` and store run on a
    :class:`~twisted.internet.testing.MemoryReactorClock`; clients are real
    :class:`~pychat.client.session.ChatClient` objects whose connections are in-memory pipes
    to it (no TLS, no sockets) and whose slow work runs inline (no threads).  Everything a
    request causes happens before it returns; time moves only with :meth:`advance`.

    ::

        server = MemoryServer(tmp_path / "data")
        alice = await server.signed_up(tmp_path / "alice", "alice")
        bob = await server.signed_up(tmp_path / "bob", "bob")
        await alice.send("bob", "hi")                  # bob's listeners have heard it already
        server.advance(300)                            # idle timeouts, reconnect backoff, ...
    """

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        from twisted.internet.testing import MemoryReactorClock

        from pychat.store.blocking import inline_runner
        from pychat.store.server_store import ServerStore

        self.clock = MemoryReactorClock()
        self.config = dataclasses.replace(
            ServerConfig(data_dir=data_dir, exit_on_listen_failure=False), **overrides
        )
        store = ServerStore.open(data_dir, self.config.store_key_path, inline_runner)
        self.chat = ChatServer(self.config, self.clock, store)
        self._ports = 40000

    async def connect(self, *, hello: bool = True) -> ClientProtocol:
        """A new raw protocol connection (as :meth:`RunningServer.connect`, in memory)."""
        proto = self.connect_now()
        if hello:
            await proto.request("hello", version=1)
        return proto

    def connect_now(self) -> ClientProtocol:
        """A new client protocol connected to the server (say ``hello`` first)."""
        self._ports += 1
        server_address = IPv4Address("TCP", "127.0.0.1", 8765)
        client_address = IPv4Address("TCP", "127.0.0.1", self._ports)
        server_proto = self.chat.factory().buildProtocol(client_address)
        assert isinstance(server_proto, Protocol)  # noqa: S101 - our factory always builds one
        client_proto = ClientProtocol()
        pipe = _Pipe()
        client_end = _PipeEnd(pipe, client_address, server_address)
        server_end = _PipeEnd(pipe, server_address, client_address)
        client_end.other, server_end.other = server_end, client_end
        client_end.protocol, server_end.protocol = client_proto, server_proto
        server_proto.makeConnection(server_end)
        client_proto.makeConnection(client_end)
        client_proto.handshakeCompleted()  # there is no TLS handshake to wait for
        return client_proto

    def client(self, home: Path) -> ChatClient:
        """A chat client of this server with its own data dir ``home`` (not logged in)."""
        from pychat.client.blocking import inline

        async def connector() -> ClientProtocol:
            return self.connect_now()

        return ChatClient(
            ServerAddress("memory", 1),
            home,
            reactor=self.clock,
            run_blocking=inline,
            connector=connector,
        )

    async def signed_up(
        self,
        home: Path,
        name: str,
        password: str = "pw",  # noqa: S107 - a test helper's default
    ) -> ChatClient:
        """A client that signed up (cheapest accepted KDF) and logged in as ``name``."""
        from pychat.crypto.kdf import minimum_params

        client = self.client(home)
        await client.signup(name, password, kdf=minimum_params())
        await client.login(name, password)
        return client

    @property
    def data_dir(self) -> Path:
        """The server's data directory."""
        return self.config.data_dir

    def advance(self, seconds: float) -> None:
        """Move the clock: timers of the server and of every client fire as they fall due."""
        self.clock.advance(seconds)

    def drop_connections(self) -> None:
        """Cut every connection at once (as a network outage does)."""
        for conn in list(self.chat.connections):
            conn.transport.loseConnection()  # type: ignore[union-attr]
