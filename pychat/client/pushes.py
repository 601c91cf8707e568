"""What the client does with each server push, by a table from the push's ``event`` name.

``message`` is opened and checked, then emitted with the :class:`ChatMessage`;
``keys_changed`` looks the peer's key up again (a signed rotation is accepted, an unsigned
change becomes pending: see :mod:`pychat.client.peer_trust`); ``closing`` becomes a
connection event; anything else is passed on to the listeners as it came.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, ClassVar, Protocol

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.client.errors import PeerKeyChanged
from pychat.client.events import ClientEvent
from pychat.client.group_actions import GroupActions
from pychat.client.messaging import Messaging
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import ConnectionClosed
from pychat.client.signals import Signals
from pychat.wire.ids import conversation_id
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")


class PushTarget(Protocol):
    """What push handling needs of the client."""

    username: str | None
    messaging: Messaging
    groups: GroupActions
    trust_store: PeerTrust
    signals: Signals

    def emit(self, event: ClientEvent) -> None: ...
    def drop_connection(self) -> None: ...
    async def conversations(self) -> list[dict[str, Any]]: ...


class PushDispatcher:
    """Handles a client's pushes."""

    def __init__(self, client: PushTarget) -> None:
        self._client = client

    def on_push(self, event: dict[str, Any]) -> None:
        """The connection's push callback: handle ``event`` (failures are logged; one that
        fails because the connection went is redone by the catch-up after reconnecting)."""

        def failed(failure: Failure) -> None:
            if not failure.check(ConnectionClosed):
                log.failure("handling a push failed", failure=failure)

        defer.ensureDeferred(self.handle(event)).addErrback(failed)

    async def handle(self, event: dict[str, Any]) -> None:
        """Handle one push (every field of it is hostile data until checked)."""
        kind = event.get("event")
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            await handler(self, event)
        elif isinstance(kind, str):
            self._client.emit(ClientEvent(kind, dict(event)))

    async def _message(self, event: dict[str, Any]) -> None:
        client = self._client
        if client.username is None:
            return
        sender, conv = event.get("sender"), event.get("conversation")
        if await self._in_group(str(conv), sender):
            message = await client.groups.receive(event)
            client.emit(ClientEvent("message", dict(event), message))
            return
        peer = sender if sender != client.username else None
        if peer is None:
            summaries = await client.conversations()
            peer = next((c["peer"] for c in summaries if c["conversation"] == conv), None)
        if peer is None:
            return
        (message,) = await client.messaging.decrypt_all(str(peer), [event])
        client.emit(ClientEvent("message", dict(event), message))

    async def _in_group(self, conv: str, sender: Any) -> bool:
        """Whether a pushed message is a group's: a group this device knows, or not the
        conversation of its sender and this user."""
        client = self._client
        if client.groups.is_group(conv):
            return True
        if isinstance(sender, str) and sender != client.username and client.username:
            return conv != conversation_id(client.username, normal_form(sender))
        return False

    async def _group(self, event: dict[str, Any]) -> None:
        told = await self._client.groups.changed(event)
        self._client.emit(ClientEvent("group", {**dict(event), **told}))

    async def _epoch(self, event: dict[str, Any]) -> None:
        conv = event.get("conversation")
        if isinstance(conv, str) and self._client.groups.is_group(conv):
            await self._client.groups.view(conv, fresh=True)
        self._client.emit(ClientEvent("epoch", dict(event)))

    async def _keys_changed(self, event: dict[str, Any]) -> None:
        peer = event.get("user")
        if not isinstance(peer, str) or peer == self._client.username:
            return
        with suppress(PeerKeyChanged):  # peer_identity emitted what the user must see
            await self._client.trust_store.peer_identity(peer)

    async def _signal(self, event: dict[str, Any]) -> None:
        await self._client.signals.handle(event)

    async def _closing(self, event: dict[str, Any]) -> None:
        # The server is closing this connection: close our side at once, so it need not wait
        # out its grace period (reconnecting, if it applies, starts from the close).
        self._client.emit(ClientEvent("connection", {"state": "closing", **event}))
        self._client.drop_connection()

    _HANDLERS: ClassVar[dict[str, Callable[[PushDispatcher, dict[str, Any]], Awaitable[None]]]] = {
        "message": _message,
        "group": _group,
        "epoch": _epoch,
        "keys_changed": _keys_changed,
        "closing": _closing,
        "signal": _signal,
    }
