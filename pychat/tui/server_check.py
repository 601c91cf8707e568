"""The login form's look at the server before the password is typed: a connection made as
soon as the password field is reached, so that a new server's certificate is shown and asked
about (and a changed one refused) before anything secret is entered. The form stays usable
meanwhile; submitting it waits for the check and goes on over the same connection."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer

from pychat.client.address import AddressError, ServerAddress
from pychat.client.session import ChatClient
from pychat.tui.context import ScreenHost

#: Asked on first contact with a server: (server, fingerprint) -> accepted?
AskNewServer = Callable[[str, str], defer.Deferred[bool]]


class ServerCheck:
    """At most one checked (or being checked) connection, for the server the form names."""

    def __init__(self, host: ScreenHost, ask_new_server: AskNewServer) -> None:
        self.host = host
        self.ask_new_server = ask_new_server
        #: The server text the connection is for (None: nothing checked or the check failed).
        self.server: str | None = None
        self._client: ChatClient | None = None
        self._done: defer.Deferred[None] | None = None

    @property
    def running(self) -> bool:
        """Whether a check is under way (connecting, or asking about the certificate)."""
        return self._done is not None and not self._done.called

    def start(self, server: str) -> None:
        """Check ``server`` unless it is the one checked already; a failure (refused
        certificate, no answer) is told under the form and the next start tries again."""
        if server == self.server:
            return
        self.server = server
        done: defer.Deferred[None] = defer.Deferred()
        self._done = done

        async def run() -> None:
            try:
                await self._connect(server)
            finally:
                done.callback(None)

        self.host.guard(run)

    async def _connect(self, server: str) -> None:
        try:
            address = ServerAddress.parse(server)
        except AddressError:
            self.server = None
            return  # told when the form is sent
        await self.close()
        client = ChatClient(
            address, self.host.home, ca=self.host.ca, on_new_server=self.ask_new_server
        )
        self.host.redraw()
        try:
            await client.connect()
        except Exception:
            await client.close()
            if self.server == server:
                self.server = None
            raise
        if self.server != server:  # the form moved on to another server meanwhile
            await client.close()
            return
        self._client = client

    async def client_for(self, server: str, address: ServerAddress) -> ChatClient:
        """The client to log in with: the checked one when it is for ``server`` and still
        connected (after waiting for a check under way), else a new one."""
        if self._done is not None and not self._done.called:
            await self._done
        client, self._client = self._client, None
        if client is not None and self.server == server and _connected(client):
            self.server = None  # handed over: a failed login checks again
            return client
        self.server = None
        if client is not None:
            await client.close()
        return ChatClient(
            address, self.host.home, ca=self.host.ca, on_new_server=self.ask_new_server
        )

    async def close(self) -> None:
        """Close the checked connection, if any."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _connected(client: ChatClient) -> bool:
    proto = client.connection.proto
    return proto is not None and not proto.is_closed
