"""Opening a checked connection to one server: TCP and TLS with timeouts, the certificate
pinned on first use (or checked against a CA), and nothing sent before that check.

Pins are kept by :class:`~pychat.client.pins.ServerPins`; on first contact the caller's
``on_new_server`` decides (the CLI asks at a terminal or needs ``--accept-server``, the TUI
asks in a box).  Another address of an already pinned certificate is the same server.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import Certificate, CertificateOptions, optionsForClientTLS

from pychat.client.address import ServerAddress
from pychat.client.errors import CertificateChanged, ClientError, ConnectError, TrustError
from pychat.client.events import ClientEvent
from pychat.client.network_watch import RouteWatch
from pychat.client.pins import ServerPins
from pychat.client.protocol import ClientProtocol
from pychat.tls import certificate_fingerprint

#: The certificate fingerprint an in-memory connection presents (no TLS there).
MEMORY_FINGERPRINT = ":".join(["00"] * 32)

#: Seconds a request may take before the client gives up on it.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a TCP connection, the TLS handshake, and each reply."""

    connect: float = 10.0
    handshake: float = 10.0
    request: float = REQUEST_TIMEOUT


@dataclass(frozen=True)
class CheckedConnection:
    """A TLS connection whose certificate passed: the protocol, the certificate's
    fingerprint, and the name the server is known by (its first pinned address)."""

    proto: ClientProtocol
    fingerprint: str
    server_name: str


@dataclass(frozen=True)
class ServerLink:
    """Opens checked connections to one server (each reconnect opens a new one).

    ``on_new_server`` decides on first contact; ``emit`` tells the client's listeners (the
    "same server" notice); ``connector``, when given, opens the connection instead of TCP and
    TLS (the in-memory harness), whose certificate is then taken as
    :data:`MEMORY_FINGERPRINT`.
    """

    address: ServerAddress
    pins: ServerPins
    ca: Path | None
    on_new_server: Callable[[str, str], bool | Awaitable[bool]]
    timeouts: Timeouts
    reactor: Any
    emit: Callable[[ClientEvent], None]
    connector: Callable[[], Awaitable[ClientProtocol]] | None = None
    #: The route to the server last reached (a change means the network changed).
    watch: RouteWatch = field(default_factory=RouteWatch)

    async def open(self) -> CheckedConnection:
        """A TLS connection whose certificate is checked; nothing was sent on it yet.

        :raises CertificateChanged: the pinned certificate differs.
        :raises TrustError: the user (or ``on_new_server``) refused a new server.
        :raises ConnectError: no TCP connection or TLS handshake within the timeouts.
        """
        if self.connector is not None:
            proto = await self.connector()
        else:
            proto = await self._open_tls()
            self.watch.remember(proto.transport)
        try:
            fingerprint = (
                MEMORY_FINGERPRINT if self.connector is not None else self._peer_fingerprint(proto)
            )
            name = str(self.address) if self.ca is not None else await self._check_pin(fingerprint)
        except Exception:
            proto.close()
            raise
        return CheckedConnection(proto, fingerprint, name)

    def _tls_options(self) -> Any:
        if self.ca is not None:
            try:
                root = Certificate.loadPEM(self.ca.read_bytes())
            except OSError as exc:
                raise ClientError(f"cannot read CA certificate {self.ca}: {exc.strerror}") from None
            return optionsForClientTLS(self.address.host, trustRoot=root)
        return CertificateOptions()  # verified afterwards, by pin

    async def _open_tls(self) -> ClientProtocol:
        endpoint = SSL4ClientEndpoint(
            self.reactor,
            self.address.host,
            self.address.port,
            self._tls_options(),
            timeout=max(1, int(self.timeouts.connect + 0.5)),
        )
        try:
            proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
        except Exception as exc:
            raise ConnectError(f"cannot connect to {self.address}: {exc}") from None
        handshake = proto.handshake_d
        handshake.addTimeout(self.timeouts.handshake, self.reactor)
        try:
            await handshake
        except defer.TimeoutError:
            proto.close()
            raise ConnectError(
                f"cannot connect to {self.address}: the TLS handshake did not finish within "
                f"{self.timeouts.handshake:g} s (is it a TLS server?)"
            ) from None
        except Exception as exc:
            proto.close()
            raise ConnectError(f"cannot connect to {self.address}: {exc}") from None
        return proto

    @staticmethod
    def _peer_fingerprint(proto: ClientProtocol) -> str:
        cert = proto.transport.getPeerCertificate()  # type: ignore[union-attr]
        der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
        return certificate_fingerprint(der)

    async def _check_pin(self, fingerprint: str) -> str:
        """Compare with the pin of the address typed; on first contact, recognise the server
        by its certificate or ask ``on_new_server``.  Returns the server's name."""
        typed = str(self.address)
        pinned = self.pins.get(typed)
        if pinned is None:
            known_as = self.pins.server_with(fingerprint)
            if known_as is not None:
                self.pins.pin(typed, fingerprint, same_as=known_as)
                notice = f"{typed} is the same server as {known_as}"
                self.emit(ClientEvent("notice", {"text": notice}))
            else:
                decision = self.on_new_server(typed, fingerprint)
                if inspect.isawaitable(decision):
                    decision = await decision
                if not decision:
                    raise TrustError(
                        f"the certificate of {typed} was not accepted; nothing was sent"
                    )
                self.pins.pin(typed, fingerprint)
        elif pinned != fingerprint:
            raise CertificateChanged(typed, pinned, fingerprint)
        return self.pins.canonical(typed)
