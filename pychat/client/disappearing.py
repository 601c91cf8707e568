"""Disappearing messages: a timer per conversation that either member sets for both.

Setting it sends a signed ``kind: "disappear"`` message (``data: {"ttl": seconds}``, 0 for
off); every client keeps the newest setting of each conversation in its keystore.  While a
timer is on, each message carries ``expires`` in its signed content and in the clear for the
server, which stops serving it then and deletes its ciphertext from disk within a minute
(:mod:`pychat.store.ephemeral`); clients drop it from screen.  What it cannot stop: a
screenshot, a copy, or a modified client that keeps what it was shown.
"""

from __future__ import annotations

from typing import Any

from pychat.client.errors import ClientError
from pychat.wire.ids import conversation_of
from pychat.wire.usernames import normal_form

#: The timers one may choose, by name.
CHOICES = {"off": 0, "5m": 300, "1h": 3600, "1d": 86400, "1w": 7 * 86400}
NAMES = {seconds: name for name, seconds in CHOICES.items()}


class Disappearing:
    """One client's disappearing-message timers."""

    def __init__(self, client: Any) -> None:
        self._client = client
        client.messaging.kind_handlers["disappear"] = self._describe

    def timer(self, peer: str) -> int:
        """The seconds messages with ``peer`` last (0: they stay)."""
        me, data = self._client.require_login()
        return int((data.timers.get(conversation_of(me, normal_form(peer))) or [0, 0])[1])

    async def set(self, peer: str, choice: str) -> int | None:
        """Set the timer with ``peer`` (``off``, ``5m``, ``1h``, ``1d``, ``1w``) for both."""
        if choice not in CHOICES:
            raise ClientError(f"the timer is one of {', '.join(CHOICES)}, not {choice!r}")
        me, data = self._client.require_login()
        peer = normal_form(peer)
        ttl = CHOICES[choice]
        body = f"⏱ {me} " + (
            f"set disappearing messages to {choice}" if ttl else "turned disappearing messages off"
        )
        seq: int | None = await self._client.sender.send_kind(
            peer, body, "disappear", {"ttl": ttl}, queue=True
        )
        conv = conversation_of(me, peer)
        data.timers[conv] = [seq or 2**53, ttl]
        await self._client.save()
        return seq

    async def _describe(self, conv: str, peer: str, seq: int, opened: Any) -> str:
        ttl = (opened.data or {}).get("ttl")
        if ttl not in NAMES:
            raise ValueError("malformed timer setting")
        _, data = self._client.require_login()
        known = data.timers.get(conv)
        if known is None or known[0] <= seq:
            data.timers[conv] = [seq, int(ttl)]
        who = opened.sender
        return (
            f"⏱ {who} set disappearing messages to {NAMES[ttl]}"
            if ttl
            else (f"⏱ {who} turned disappearing messages off")
        )
