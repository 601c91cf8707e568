"""Typing and read signals: ephemeral, end-to-end encrypted, opt-in, never stored.

A signal is sealed and signed like a message (docs/e2e.md §3: ``kind`` ``typing`` or
``read``, ``data.seq`` for a read mark, ``counter`` 0 because it is not a message) under the
conversation's newest key, and sent with the ``signal`` op; the server relays it to the
peer's open connections and keeps nothing.  Off by default: a client with signals off sends
none and ignores those it gets, so each side sees them only when both have them on.  A signal
older than :data:`MAX_AGE` seconds (a replay) is dropped.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from pychat.client.context import ClientContext
from pychat.client.events import ClientEvent
from pychat.client.peer_trust import PeerTrust
from pychat.crypto.e2e import (
    MESSAGE_VERSION,
    OpenedMessage,
    open_message,
    seal_message,
    time_ms,
)
from pychat.crypto.errors import E2EError
from pychat.wire.ids import GROUP_MARK, conversation_id, conversation_of, group_of
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")

KINDS = frozenset({"typing", "read"})
#: A signal written longer ago than this (seconds) is not shown.
MAX_AGE = 60.0


class Signals:
    """One client's typing and read signals."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust) -> None:
        self._ctx = ctx
        self._trust = trust
        #: Whether this user shares (and sees) typing and read signals.
        self.enabled = False

    async def send(self, peer: str, kind: str, seq: int | None = None) -> bool:
        """Tell ``peer`` this user is typing, or has read up to ``seq``; False when signals
        are off or the conversation has no key here yet (nothing is sent then)."""
        if not self.enabled or kind not in KINDS:
            return False
        me, data = self._ctx.require_login()
        peer = normal_form(peer)
        conv = conversation_of(me, peer)
        recipient = group_of(peer) or peer  # in a group: the group's id (docs/e2e.md §7)
        keys = data.conversation_keys.get(conv)
        if not keys:
            return False
        epoch = max(int(e) for e in keys)
        inner: dict[str, Any] = {
            "v": MESSAGE_VERSION,
            "sender": me,
            "device": data.device_id,
            "recipient": recipient,
            "conversation": conv,
            "epoch": epoch,
            "counter": 0,
            "time": time_ms(self._ctx.now()),
            "body": "",
            "kind": kind,
        }
        if seq is not None:
            inner["data"] = {"seq": seq}
        ciphertext = seal_message(keys[str(epoch)].encode(), data.identity, inner)
        await self._ctx.request("signal", conversation=conv, ciphertext=ciphertext)
        return True

    async def handle(self, event: dict[str, Any]) -> None:
        """A ``signal`` push: checked, then told as a ``signal`` event (``peer``, ``kind``,
        and ``seq`` for a read mark); dropped when off, unreadable, stale or malformed."""
        if not self.enabled:
            return
        me, data = self._ctx.require_login()
        sender, conv, ciphertext = (event.get(k) for k in ("sender", "conversation", "ciphertext"))
        if not (isinstance(sender, str) and isinstance(ciphertext, str) and sender != me):
            return
        in_group = isinstance(conv, str) and conv in data.groups
        if conv != conversation_id(me, sender) and not in_group:
            return
        keys = data.conversation_keys.get(str(conv), {})
        if in_group and keys:  # only the newest epoch speaks in a group (a removed member's
            newest = max(keys, key=int)  # old key stops at the epoch the removal began)
            keys = {newest: keys[newest]}
        opened = self._open(sender, str(conv), ciphertext, keys, str(conv) if in_group else me)
        if opened is None or opened.kind not in KINDS:
            return
        if abs(self._ctx.now() - opened.time) > MAX_AGE:
            return
        seq = (opened.data or {}).get("seq")
        if opened.kind == "read" and (not isinstance(seq, int) or isinstance(seq, bool)):
            return
        fields = {
            "peer": GROUP_MARK + str(conv) if in_group else sender,
            "sender": sender,
            "kind": opened.kind,
            "seq": seq if opened.kind == "read" else None,
        }
        self._ctx.emit(ClientEvent("signal", fields))

    def _open(
        self, sender: str, conv: str, ciphertext: str, keys: dict[str, str], recipient: str
    ) -> OpenedMessage | None:
        _, data = self._ctx.require_login()
        for epoch in sorted(keys, key=int, reverse=True):
            for identity in self._trust.current(data, sender):
                try:
                    return open_message(
                        ciphertext,
                        keys[epoch].encode(),
                        sender=sender,
                        sender_identity=identity,
                        recipient=recipient,
                        conversation=conv,
                        epoch=int(epoch),
                    )
                except E2EError:
                    continue
        return None
