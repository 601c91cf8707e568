"""Conversation keys: opening key envelopes, starting epochs, recovering after a key change.

Each conversation has one Fernet key per epoch, wrapped for both members in a signed envelope
the server stores.  :class:`ConversationKeys` verifies every envelope (its signature, and its
place under the key-validity rule, :mod:`pychat.client.validity`), keeps what each says, opens
the ones wrapped for keys this device holds, starts new epochs (rotation, recovery when none
can be opened here, or when the newest one does not name both members' current keys), and
remembers which epochs are wrapped only for keys this device does not have.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from twisted.logger import Logger

from pychat.client.context import ClientContext
from pychat.client.events import ClientEvent
from pychat.client.keystore import KeystoreData
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.client.validity import Epochs, envelope_problem
from pychat.crypto.envelopes import (
    EnvelopeFacts,
    make_envelope,
    unwrap_envelope,
    verify_envelope,
)
from pychat.crypto.errors import E2EError
from pychat.crypto.identity import PublicIdentity
from pychat.wire.ids import conversation_id
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")

#: How often an epoch is made again when messages arrive between reading the conversation's
#: place and adding the epoch (each try reads the new place).
EPOCH_TRIES = 5


def _epoch_number(envelope: Any) -> int:
    epoch = envelope.get("epoch") if isinstance(envelope, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0


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

    def epochs(self, conv: str) -> Epochs:
        """What the verified envelopes of ``conv`` say, by epoch."""
        _, data = self._ctx.require_login()
        known = data.epoch_facts.get(conv, {})
        return {int(n): EnvelopeFacts.from_json(int(n), f) for n, f in known.items()}

    def key_order(self, data: KeystoreData, user: str) -> list[str]:
        """``user``'s identity fingerprints as accepted here, oldest first."""
        if user == data.username:
            return [k.public().fingerprint() for k in reversed(data.identities)]
        return self._trust.accepted_order(data, user)

    async def open_envelopes(self, conv: str, peer: str, envelopes: list[Any]) -> None:
        """Verify and keep what each new envelope says; open those wrapped for this device."""
        changed = False
        for envelope in sorted(envelopes, key=_epoch_number):
            epoch = _epoch_number(envelope)
            if epoch:
                self._epochs_on_server[conv] = max(self._epochs_on_server.get(conv, 0), epoch)
            changed = self._open_one(conv, peer, epoch, envelope) or changed
        if changed:
            await self._ctx.save()

    def _open_one(self, conv: str, peer: str, epoch: int, envelope: Any) -> bool:
        """Take one envelope in; whether the keystore changed."""
        me, data = self._ctx.require_login()
        keys = data.conversation_keys.setdefault(conv, {})
        facts_here = data.epoch_facts.setdefault(conv, {})
        if str(epoch) in facts_here and (
            str(epoch) in keys or (conv, str(epoch)) in self.unreadable
        ):
            return False
        facts = self._verified(conv, peer, envelope)
        if facts is None:
            return False
        facts_here[str(facts.epoch)] = facts.to_json()
        try:
            keys[str(facts.epoch)] = unwrap_envelope(envelope, me, data.identities).decode()
        except E2EError as exc:
            if "not wrapped for any of my keys" in str(exc):
                self.unreadable.add((conv, str(facts.epoch)))
            log.warn("cannot open key envelope {e} of {c}: {r}", e=epoch, c=conv, r=exc)
        return True

    def _verified(self, conv: str, peer: str, envelope: Any) -> EnvelopeFacts | None:
        """The envelope's facts if its signature verifies under an accepted key of its
        creator and its place is valid under the key-validity rule; else None (logged)."""
        me, data = self._ctx.require_login()
        creator = envelope.get("creator") if isinstance(envelope, dict) else None
        if creator == me:
            candidates = [k.public() for k in data.identities]
        else:
            candidates = self._trust.accepted(data, peer)
        reason = "no accepted key of its creator"
        for identity in candidates:
            try:
                facts = verify_envelope(
                    envelope,
                    conversation=conv,
                    members=self._members(peer),
                    creator_identity=identity,
                )
            except E2EError as exc:
                reason = str(exc)
                continue
            problem = envelope_problem(
                self.epochs(conv),
                facts,
                keys=self.key_order(data, facts.creator),
                signer=identity.fingerprint(),
            )
            if problem is None:
                return facts
            reason = problem
        log.warn(
            "refused key envelope {e} of {c}: {r}", e=_epoch_number(envelope), c=conv, r=reason
        )
        return None

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
            conv,
            1,
            me,
            data.identity,
            {me: data.identity.public(), peer: identity},
            key,
            after=0,
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

    async def refresh_epochs(self, conv: str, peer: str) -> int:
        """Fetch and take in the conversation's envelopes; return where an epoch added now
        would begin (the server's ``after``)."""
        await self._trust.pin_if_new(peer)
        reply = await self._ctx.request("epochs", conversation=conv)
        await self.open_envelopes(conv, peer, reply["envelopes"])
        after = reply.get("after")
        return after if isinstance(after, int) and not isinstance(after, bool) else 0

    async def ensure_current(self, conv: str, peer: str) -> None:
        """Start an epoch when the newest verified one does not name both members' current
        keys (after either side rotated or was accepted anew): this fixes, signed by this
        user, the place from which the older keys are retired."""
        me, data = self._ctx.require_login()
        pin = data.pins.get(peer)
        epochs = self.epochs(conv)
        if not pin or pin.get("pending") or not epochs or not data.conversation_keys.get(conv):
            return
        newest = epochs[max(epochs)]
        mine = data.identity.public().fingerprint()
        if newest.members.get(me) == mine and newest.members.get(peer) == pin["fingerprint"]:
            return
        identity = self._trust.accepted_identity(data, peer, pin["fingerprint"])
        await self._start_epoch(conv, peer, identity)

    async def _start_epoch(self, conv: str, peer: str, identity: PublicIdentity) -> int:
        """Add the next epoch, wrapped for both current keys and placed after the
        conversation's last message; try again if the peer added an epoch or a message at
        the same moment."""
        me, data = self._ctx.require_login()
        for attempt in range(1, EPOCH_TRIES + 1):
            after = await self.refresh_epochs(conv, peer)
            epoch = self._epochs_on_server.get(conv, 0) + 1
            key = Fernet.generate_key()
            envelope = make_envelope(
                conv,
                epoch,
                me,
                data.identity,
                {me: data.identity.public(), peer: identity},
                key,
                after=after,
            )
            try:
                await self._ctx.request("add_epoch", conversation=conv, envelope=envelope)
            except RemoteError as exc:
                if exc.code != "bad_epoch" or attempt == EPOCH_TRIES:
                    raise
                continue
            self._epochs_on_server[conv] = epoch
            facts = EnvelopeFacts(
                epoch, me, after, {n: m["fingerprint"] for n, m in envelope["members"].items()}
            )
            data.epoch_facts.setdefault(conv, {})[str(epoch)] = facts.to_json()
            data.conversation_keys.setdefault(conv, {})[str(epoch)] = key.decode()
            await self._ctx.save()
            return epoch
        raise AssertionError("not reached")  # pragma: no cover

    async def rotate(self, peer: str) -> int:
        """Start a new key epoch in the conversation with ``peer``; return its number."""
        peer = normal_form(peer)
        conv = await self.open_conversation(peer)
        identity = await self._trust.peer_identity(peer)
        return await self._start_epoch(conv, peer, identity)
