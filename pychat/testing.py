"""Run a real pyChat server in-process and talk to it: for tests, benchmarks and scripts.

:func:`start_server` builds the service tree through the same ``makeService`` that ``twistd
pychat`` uses, listening on an ephemeral loopback port over TLS; :meth:`RunningServer.connect`
opens a TLS client connection to it.  Everything here uses the global reactor.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions

from pychat.client.protocol import ClientProtocol
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
        """Close every test client, then stop the server's service tree."""
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
