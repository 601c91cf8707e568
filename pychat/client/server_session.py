"""The connection to the server, from the client's side: opening it (TLS with the certificate
pinned or checked, then ``hello``), its state, keepalive pings, requests with a timeout, and
closing it.  Logging in, and what a dropped connection leads to, belong to the client
(:class:`~pychat.client.session.ChatClient`), which is told through ``on_lost``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from pychat.client import auth
from pychat.client.address import ServerAddress
from pychat.client.errors import ClientError, NotPyChatServer, ReplyTimeout
from pychat.client.events import ClientEvent
from pychat.client.keepalive import Keepalive, keepalive_interval
from pychat.client.link import ServerLink, Timeouts
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from pychat.srp import SrpParams


class ServerSession:
    """One client's connection to its server, as it comes and goes."""

    def __init__(
        self,
        address: ServerAddress,
        link: ServerLink,
        *,
        timeouts: Timeouts,
        reactor: Any,
        emit: Callable[[ClientEvent], None],
        on_push: Callable[[dict[str, Any]], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.address = address
        self.link = link
        self.timeouts = timeouts
        self._reactor = reactor
        self._emit = emit
        self._on_push = on_push
        self._on_lost = on_lost
        self.proto: ClientProtocol | None = None
        #: The server's ``hello`` reply, and the SRP parameters it announced.
        self.hello_reply: dict[str, Any] = {}
        self.srp: SrpParams | None = None
        #: The certificate's fingerprint, and the name its pin is kept under.
        self.fingerprint: str | None = None
        self.server_name: str | None = None
        self.state = "disconnected"
        #: Whether the program asked for no more reconnecting.
        self.closing = False
        self.keepalive = Keepalive(reactor, lambda: self.request("ping"))

    def set_state(self, state: str, **extra: Any) -> None:
        """Record the connection state and tell the listeners (and ping while online)."""
        self.state = state
        if state == "online":
            self.keepalive.start(keepalive_interval(self.hello_reply))
        else:
            self.keepalive.stop()
        self._emit(ClientEvent("connection", {"state": state, **extra}))

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request with a timeout; raises RemoteError, ConnectionClosed or TimeoutError."""
        if self.proto is None or self.proto.is_closed:
            raise ConnectionClosed("not connected")
        d = self.proto.request(op, **fields)
        d.addTimeout(self.timeouts.request, self._reactor)
        try:
            return await d
        except defer.TimeoutError:
            raise ReplyTimeout(
                f"the server did not answer {op} within {self.timeouts.request:g} s"
            ) from None

    def need_proto(self) -> ClientProtocol:
        """The open connection (:class:`ClientError` when there is none)."""
        if self.proto is None:
            raise ClientError("not connected")
        return self.proto

    async def connect(self) -> None:
        """Open the TLS connection, check the certificate, say hello.

        Nothing is sent before the certificate is checked (and, on first contact, accepted).

        :raises CertificateChanged: the pinned certificate differs (nothing was sent).
        :raises TrustError: the user (or ``on_new_server``) refused a new server.
        :raises ConnectError: no TCP connection, no TLS handshake, or no pyChat ``hello``
            within the timeouts.
        """
        self.set_state("connecting")
        try:
            checked = await self.link.open()
        except Exception:
            self.set_state("disconnected")
            raise
        proto = checked.proto
        self.fingerprint, self.server_name = checked.fingerprint, checked.server_name
        self.proto = proto
        proto.on_event = self._on_push
        proto.closed_d.addCallback(lambda _: self._lost(proto))
        try:
            self.hello_reply = await self.request("hello", version=1, client="pychat")
            self.srp = auth.srp_params_from_hello(self.hello_reply)
        except (ClientError, ConnectionClosed, RemoteError, auth.AuthError) as exc:
            proto.close()
            self.set_state("disconnected")
            raise NotPyChatServer(
                f"{self.address} is not a pyChat server (or not a compatible version): "
                f"its answer to hello was unusable ({exc})"
            ) from None
        self.set_state("connected")

    def drop(self) -> None:
        """Close the current connection (reconnecting follows if logged in)."""
        if self.proto is not None and not self.proto.is_closed:
            self.proto.close()

    async def close(self) -> None:
        """Close the connection; no reconnecting after this."""
        self.closing = True
        if self.proto is not None and not self.proto.is_closed:
            self.proto.close()
            await self.proto.closed_d
        self.set_state("disconnected")

    def _lost(self, proto: ClientProtocol) -> None:
        if proto is not self.proto:
            return
        if self.closing:
            self.set_state("disconnected")
            return
        self._on_lost()
