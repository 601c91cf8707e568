"""Conversation keys: opening key envelopes, starting epochs, recovering after a key change.

Each conversation has one Fernet key per epoch, wrapped for both members in a signed envelope
the server stores.  :class:`ConversationKeys` opens the envelopes it can (keys it holds in
the keystore), starts new epochs (rotation, or recovery when none can be opened here), and
remembers which epochs are wrapped only for keys this device does not have.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from twisted.logger import Logger

from pychat.client.context import ClientContext
from pychat.client.events import ClientEvent
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.crypto.e2e import E2EError, make_envelope, open_envelope
from pychat.crypto.identity import PublicIdentity
from pychat.usernames import normal_form
from pychat.wire.ids import conversation_id

log = Logger(namespace="pychat.client")


class ConversationKeys:
    """The epoch keys of one logged-in user's conversations."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust) -> None:
        self._ctx = ctx
        self._trust = trust
        #: Highest epoch seen on the server per conversation, and epochs whose envelope is
        #: wrapped only for identity keys this device does not have.
        self._epochs_on_server: dict[str, int] = {}
        self.unreadable: set[tuple[str, str]] = set()

    def _members(self, peer: str) -> tuple[str, str]:
        me, _ = self._ctx.require_login()
        low, high = sorted((me, peer))
        return (low, high)

    async def open_envelopes(self, conv: str, peer: str, envelopes: list[Any]) -> None:
        me, data = self._ctx.require_login()
        keys = data.conversation_keys.setdefault(conv, {})
        changed = False
        for envelope in envelopes:
            epoch = str(envelope.get("epoch")) if isinstance(envelope, dict) else "?"
            if epoch.isdigit():
                self._epochs_on_server[conv] = max(self._epochs_on_server.get(conv, 0), int(epoch))
            if epoch in keys:
                continue
            creator = envelope.get("creator") if isinstance(envelope, dict) else None
            if creator == me:
                candidates = [k.public() for k in data.identities]
            else:
                candidates = self._trust.accepted(data, peer)
            last_error: E2EError | None = None
            for identity in candidates:
                try:
                    opened = open_envelope(
                        envelope,
                        conversation=conv,
                        me=me,
                        my_keys=data.identities,
                        members=self._members(peer),
                        creator_identity=identity,
                    )
                except E2EError as exc:
                    last_error = exc
                    continue
                keys[str(opened.epoch)] = opened.key.decode()
                changed = True
                break
            else:
                if last_error is not None and "not wrapped for any of my keys" in str(last_error):
                    self.unreadable.add((conv, epoch))
                log.warn("refused key envelope {e} of {c}: {r}", e=epoch, c=conv, r=last_error)
        if changed:
            await self._ctx.save()

    async def open_conversation(self, peer: str) -> str:
        """The conversation with ``peer`` (created, with epoch 1, if new); its keys loaded.

        If no key envelope of the conversation can be opened here (this device's keys are
        newer than every epoch, after a re-registration), a new epoch is started for both
        sides' current keys, so the conversation goes on.
        """
        me, data = self._ctx.require_login()
        peer = normal_form(peer)
        identity = await self._trust.peer_identity(peer)
        conv = conversation_id(me, peer)
        if data.conversation_keys.get(conv):
            return conv
        key = Fernet.generate_key()
        envelope = make_envelope(
            conv, 1, me, data.identity, {me: data.identity.public(), peer: identity}, key
        )
        reply = await self._ctx.request("open_conversation", peer=peer, envelope=envelope)
        await self.open_envelopes(conv, peer, reply["envelopes"])
        if not data.conversation_keys.get(conv):
            await self._start_epoch(conv, peer, identity)
            self._ctx.emit(
                ClientEvent(
                    "notice",
                    {
                        "user": peer,
                        "text": f"started a new key with {peer}: the earlier ones are not "
                        "readable on this device",
                    },
                )
            )
        return conv

    async def refresh_epochs(self, conv: str, peer: str) -> None:
        await self._trust.pin_if_new(peer)
        reply = await self._ctx.request("epochs", conversation=conv)
        await self.open_envelopes(conv, peer, reply["envelopes"])

    async def _start_epoch(self, conv: str, peer: str, identity: PublicIdentity) -> int:
        """Add the next epoch, wrapped for both current keys; retry once if the peer added
        one at the same moment."""
        me, data = self._ctx.require_login()
        for attempt in (1, 2):
            epoch = self._epochs_on_server.get(conv, 0) + 1
            key = Fernet.generate_key()
            envelope = make_envelope(
                conv, epoch, me, data.identity, {me: data.identity.public(), peer: identity}, key
            )
            try:
                await self._ctx.request("add_epoch", conversation=conv, envelope=envelope)
            except RemoteError as exc:
                if exc.code != "bad_epoch" or attempt == 2:
                    raise
                await self.refresh_epochs(conv, peer)
                continue
            self._epochs_on_server[conv] = epoch
            data.conversation_keys.setdefault(conv, {})[str(epoch)] = key.decode()
            await self._ctx.save()
            return epoch
        raise AssertionError("not reached")  # pragma: no cover

    async def rotate(self, peer: str) -> int:
        """Start a new key epoch in the conversation with ``peer``; return its number."""
        peer = normal_form(peer)
        conv = await self.open_conversation(peer)
        identity = await self._trust.peer_identity(peer)
        await self.refresh_epochs(conv, peer)
        return await self._start_epoch(conv, peer, identity)
