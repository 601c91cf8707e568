"""Opening one stored message: its epoch key, its signature, its place, its counter.

:class:`MessageOpener` turns a message the server served into an
:class:`~pychat.crypto.e2e.OpenedMessage` or the reason it is rejected.  The checks, in order:
the server's fields, the epoch's key (fetching envelopes once when it is missing), the
Fernet token and the signature under a key accepted for the sender
(:func:`~pychat.crypto.e2e.open_message`), the key-validity rule
(:func:`~pychat.client.validity.message_problem`) and the replay rule.
"""

from __future__ import annotations

from typing import Any

from pychat.client.context import ClientContext
from pychat.client.epochs import ConversationKeys
from pychat.client.peer_trust import PeerTrust
from pychat.client.validity import message_problem
from pychat.crypto.e2e import OpenedMessage, open_message
from pychat.crypto.errors import E2EError
from pychat.crypto.identity import PublicIdentity


class MessageOpener:
    """The checks a received message goes through, for one logged-in user."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust, keys: ConversationKeys) -> None:
        self._ctx = ctx
        self._trust = trust
        self._keys = keys

    async def open(
        self, peer: str, message: Any, conv: str, sender: str, seq: int
    ) -> OpenedMessage | str:
        """The opened message, or why it is rejected."""
        me, data = self._ctx.require_login()
        if not isinstance(message, dict) or not isinstance(message.get("ciphertext"), str):
            return "the server sent a malformed message"
        epoch = message.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            return "the server sent a message without a valid epoch"
        if sender not in (me, peer):
            return f"sender {sender!r} is not a member of this conversation"
        key = await self._epoch_key(conv, peer, epoch)
        if isinstance(key, str):
            return key
        signed = self._signed(peer, message["ciphertext"], key, conv, sender, epoch)
        if isinstance(signed, str):
            return signed
        opened, signer = signed
        problem = message_problem(
            self._keys.epochs(conv),
            sender=sender,
            keys=self._keys.key_order(data, sender),
            signer=signer,
            seq=seq,
            epoch=epoch,
        )
        if problem is None:
            problem = data.check_counter(conv, sender, opened.device, seq, opened.counter)
        return problem if problem else opened

    async def _epoch_key(self, conv: str, peer: str, epoch: int) -> bytes | str:
        """The key of ``epoch`` (envelopes fetched once if it is not known), or why not."""
        me, data = self._ctx.require_login()
        unreadable = f"sent before {me}'s key change (unreadable on this device)"
        if (conv, str(epoch)) in self._keys.unreadable:
            return unreadable
        keys = data.conversation_keys.get(conv, {})
        if str(epoch) not in keys:
            await self._keys.refresh_epochs(conv, peer)
            keys = data.conversation_keys.get(conv, {})
            if str(epoch) not in keys:
                if (conv, str(epoch)) in self._keys.unreadable:
                    return unreadable
                return f"no trusted key for epoch {epoch}"
        return keys[str(epoch)].encode()

    def _signed(
        self, peer: str, ciphertext: str, key: bytes, conv: str, sender: str, epoch: int
    ) -> tuple[OpenedMessage, str] | str:
        """The message and the fingerprint of the accepted key it verified under, or why
        none: each key accepted for the sender is tried, newest last."""
        me, data = self._ctx.require_login()
        if sender == me:
            identities = [k.public() for k in data.identities]
        else:
            identities = self._trust.accepted(data, peer)
        found = open_under_any(
            identities,
            ciphertext,
            key,
            "no trusted key of the sender",
            sender=sender,
            recipient=peer if sender == me else me,
            conversation=conv,
            epoch=epoch,
        )
        if not isinstance(found, str):
            return found
        reason = found
        pending = (data.pins.get(peer) or {}).get("pending") if sender == peer else None
        if pending:
            reason += f" ({peer}'s key changed: compare safety numbers, then pychat trust {peer})"
        return reason


def open_under_any(
    identities: list[PublicIdentity],
    ciphertext: str,
    key: bytes,
    none: str,
    **expected: Any,
) -> tuple[OpenedMessage, str] | str:
    """A message opened under the first of ``identities`` its signature verifies for (each
    key accepted for its sender, oldest first), with that key's fingerprint; or why not
    (``none`` when there is no key to try).  ``expected``: what :func:`open_message` checks
    (sender, recipient, conversation, epoch)."""
    reason = none
    for identity in identities:
        try:
            opened = open_message(ciphertext, key, sender_identity=identity, **expected)
        except E2EError as exc:
            reason = str(exc)
            continue
        return opened, identity.fingerprint()
    return reason
