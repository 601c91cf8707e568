"""What the parts of a logged-in client share, behind one small interface.

:class:`~pychat.client.peer_trust.PeerTrust`, :class:`~pychat.client.epochs.ConversationKeys`
and :class:`~pychat.client.messaging.Messaging` each get a :class:`ClientContext` (the
:class:`~pychat.client.session.ChatClient` is one), never the whole client, so each can be
driven alone with a fake.
"""

from __future__ import annotations

from typing import Any, Protocol

from pychat.client.events import ClientEvent
from pychat.client.keystore import KeystoreData


class ClientContext(Protocol):
    """A logged-in client's shared means."""

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request to the server; its reply fields.

        :raises RemoteError: the server refused it.
        """

    def emit(self, event: ClientEvent) -> None:
        """Tell the client's listeners (CLI, TUI) that something happened."""

    def require_login(self) -> tuple[str, KeystoreData]:
        """(this user's name, the open keystore); raises ``ClientError`` when logged out."""

    async def save(self) -> None:
        """Write the keystore (off the reactor thread)."""

    def hello(self) -> dict[str, Any]:
        """The server's ``hello`` reply (limits)."""

    def now(self) -> float:
        """The current time, from the client's clock (a fake one in tests)."""
