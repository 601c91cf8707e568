"""Sending and reading messages: seal, sign and send; fetch, open, check and show.

Nothing is ever shown as verified unless every check passed: a message that fails one comes
out with ``status="rejected"`` and the reason, and one bad message never stops the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pychat.client.context import ClientContext
from pychat.client.epochs import ConversationKeys
from pychat.client.errors import ClientError, MessageTooLong, check_sendable
from pychat.client.events import ChatMessage, ClientEvent, Reference, message_fields
from pychat.client.outbox import OutboxEntry
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.client.references import (
    REFERENCE_KINDS,
    Digests,
    message_digest,
    parse_reference,
)
from pychat.crypto.e2e import E2EError, OpenedMessage, open_message, seal_message
from pychat.usernames import normal_form
from pychat.wire.ids import conversation_id

#: What a message of a structured kind means: ``(conversation, peer, seq, opened) -> text``.
KindHandler = Callable[[str, str, int, OpenedMessage], Awaitable[str]]


class Messaging:
    """One logged-in user's messages."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust, keys: ConversationKeys) -> None:
        self._ctx = ctx
        self._trust = trust
        self._keys = keys
        #: The highest sequence number seen per conversation (for catching up).
        self.last_seen: dict[str, int] = {}
        #: Digests of messages, for checking what reactions and replies name.
        self.digests = Digests(ctx)
        #: What a verified message of a structured kind means, by kind: ``(conversation,
        #: peer, seq, opened) -> text`` (raising ``ValueError`` to reject it).
        self.kind_handlers: dict[str, KindHandler] = {}

    async def new_entry(
        self, peer: str, text: str, *, kind: str = "text", data: dict[str, Any] | None = None
    ) -> OutboxEntry:
        """A message to ``peer`` with its own counter and ``client_id``, not sent yet (the
        counter's block is on disk before it is used).

        :raises UnsendableText: the text cannot be sent (empty, control characters).
        """
        _, keystore = self._ctx.require_login()
        check_sendable(text)
        peer, extra = normal_form(peer), data
        counter, reserved = keystore.next_counter()
        if reserved:
            await self._ctx.save()  # the block is on disk before any counter of it is used
        return OutboxEntry(
            f"{keystore.device_id}-{counter}", peer, counter, self._ctx.now(), text, kind, extra
        )

    async def deliver(self, entry: OutboxEntry) -> int:
        """Encrypt, sign and send ``entry``; return its sequence number.  Sending the same
        entry again is safe: the server keeps one copy per ``client_id``.

        :raises PeerKeyChanged: the peer's key changed and was not accepted yet.
        :raises MessageTooLong: the ciphertext is longer than the server takes.
        """
        me, data = self._ctx.require_login()
        peer = entry.peer
        conv = await self._keys.open_conversation(peer)
        await self._trust.peer_identity(peer)
        keys = data.conversation_keys[conv]
        epoch = max(int(e) for e in keys)
        inner = {
            "v": 1,
            "sender": me,
            "device": data.device_id,
            "recipient": peer,
            "conversation": conv,
            "epoch": epoch,
            "counter": entry.counter,
            "time": entry.time,
            "body": entry.text,
        }
        if entry.kind != "text":
            inner["kind"] = entry.kind
        if entry.data is not None:
            inner["data"] = entry.data
        fields: dict[str, Any] = {}
        ttl = (data.timers.get(conv) or [0, 0])[1]
        if ttl and entry.kind != "disappear":
            inner["expires"] = fields["expires"] = int(self._ctx.now() + ttl)
        ciphertext = seal_message(keys[str(epoch)].encode(), data.identity, inner)
        self._check_length(entry.text, ciphertext)
        reply = await self._ctx.request(
            "send", conversation=conv, epoch=epoch, ciphertext=ciphertext,
            client_id=entry.client_id, **fields,
        )  # fmt: skip
        seq = int(reply["seq"])
        self.last_seen[conv] = max(self.last_seen.get(conv, 0), seq)
        return seq

    def _check_length(self, text: str, ciphertext: str) -> None:
        max_len = int(self._ctx.hello().get("limits", {}).get("max_ciphertext", 0) or 0)
        if max_len and len(ciphertext) > max_len:
            about = len(text) * max_len // len(ciphertext)
            raise MessageTooLong(
                f"message too long: {len(text)} characters make {len(ciphertext)} bytes of "
                f"ciphertext; this server takes at most {max_len} bytes of ciphertext, "
                f"about {about} characters like these"
            )

    async def decrypt(self, peer: str, message: Any) -> ChatMessage:
        """A message from the server, opened and checked (or rejected, with the reason)."""
        conv, sender, seq, sent = message_fields(message)
        opened = await self._open(peer, message, conv, sender, seq)
        if isinstance(opened, str):
            return ChatMessage(conv, peer, seq, sender, sent, "rejected", None, opened)
        digest = message_digest(message["ciphertext"])
        quotable = opened.kind in ("text", "action", "reply")
        self.digests.remember(conv, seq, digest, opened.body if quotable else None)
        reference = None
        if opened.kind in REFERENCE_KINDS:
            reference = parse_reference(opened.kind, opened.body, opened.data, seq)
            problem = (
                reference
                if isinstance(reference, str)
                else await self.digests.check(conv, reference)
            )
            if problem is not None:
                return ChatMessage(conv, peer, seq, sender, sent, "rejected", None, problem)
        text = opened.body
        handler = self.kind_handlers.get(opened.kind)
        if handler is not None:
            try:
                text = await handler(conv, peer, seq, opened)
            except ValueError as exc:
                return ChatMessage(conv, peer, seq, sender, sent, "rejected", None, str(exc))
        return ChatMessage(
            conv, peer, seq, sender, opened.time, "verified", text, None, opened.kind,
            reference if isinstance(reference, Reference) else None, digest, opened.data,
            opened.expires,
        )  # fmt: skip

    async def _open(
        self, peer: str, message: Any, conv: str, sender: str, seq: int
    ) -> OpenedMessage | str:
        """The opened message, or why it is rejected."""
        me, data = self._ctx.require_login()
        if not isinstance(message, dict) or not isinstance(message.get("ciphertext"), str):
            return "the server sent a malformed message"
        if not isinstance(message.get("epoch"), int) or isinstance(message.get("epoch"), bool):
            return "the server sent a message without a valid epoch"
        if sender not in (me, peer):
            return f"sender {sender!r} is not a member of this conversation"
        epoch = message.get("epoch")
        keys = data.conversation_keys.get(conv, {})
        if (conv, str(epoch)) in self._keys.unreadable:
            return f"sent before {me}'s key change (unreadable on this device)"
        if str(epoch) not in keys:
            await self._keys.refresh_epochs(conv, peer)
            keys = data.conversation_keys.get(conv, {})
            if str(epoch) not in keys:
                if (conv, str(epoch)) in self._keys.unreadable:
                    return f"sent before {me}'s key change (unreadable on this device)"
                return f"no trusted key for epoch {epoch}"
        if sender == me:
            identities = [k.public() for k in data.identities]
        else:
            identities = self._trust.accepted(data, peer)
        recipient = peer if sender == me else me
        opened = None
        reason = "no trusted key of the sender"
        for identity in identities:
            try:
                opened = open_message(
                    message["ciphertext"],
                    keys[str(epoch)].encode(),
                    sender=sender,
                    sender_identity=identity,
                    recipient=recipient,
                    conversation=conv,
                    epoch=int(epoch),  # type: ignore[arg-type]
                )
                break
            except E2EError as exc:
                reason = str(exc)
        if opened is None:
            pending = (data.pins.get(peer) or {}).get("pending") if sender == peer else None
            if pending:
                reason += (
                    f" ({peer}'s key changed: compare safety numbers, then pychat trust {peer})"
                )
            return reason
        problem = data.check_counter(conv, sender, opened.device, seq, opened.counter)
        return problem if problem else opened

    async def reference_to(self, peer: str, seq: int, *, quote: bool) -> Reference:
        """What a reaction (or, with ``quote``, a reply) to message ``seq`` with ``peer`` names:
        from what this client has seen, else from the server's copy, checked like any message.

        :raises ClientError: there is no such message, or it failed a check.
        """
        me, _ = self._ctx.require_login()
        conv = conversation_id(me, normal_form(peer))
        digest = self.digests.known(conv, seq)
        if digest is None or (quote and (conv, seq) not in self.digests.quotes):
            found = await self.digests.message(conv, seq)
            if found is None:
                raise ClientError(f"there is no message #{seq} with {peer}")
            checked = await self.decrypt(normal_form(peer), found)
            if checked.status != "verified":
                raise ClientError(f"message #{seq} failed a check: {checked.reason}")
            digest = checked.digest
        if quote and (conv, seq) not in self.digests.quotes:
            raise ClientError(f"message #{seq} is not a text to reply to")
        return Reference(seq, digest, self.digests.quotes[(conv, seq)] if quote else None)

    async def decrypt_all(self, peer: str, messages: list[dict[str, Any]]) -> list[ChatMessage]:
        out = [await self.decrypt(peer, m) for m in messages]
        if out:
            conv = out[0].conversation
            self.last_seen[conv] = max(self.last_seen.get(conv, 0), max(m.seq for m in out))
            await self._ctx.save()
        return out

    async def read(
        self, peer: str, *, since: int = 0, limit: int | None = None
    ) -> list[ChatMessage]:
        """Messages with seq > ``since`` (all of them, or the first ``limit``), checked."""
        me, _ = self._ctx.require_login()
        peer = normal_form(peer)
        conv = conversation_id(me, peer)
        try:
            await self._keys.refresh_epochs(conv, peer)
        except RemoteError as exc:
            if exc.code == "unknown_conversation":
                return []
            raise
        collected: list[dict[str, Any]] = []
        after = since
        while limit is None or len(collected) < limit:
            page_size = 100 if limit is None else min(100, limit - len(collected))
            page = await self._ctx.request(
                "history", conversation=conv, after=after, limit=page_size
            )
            collected += page["messages"]
            if not page["has_more"] or not page["messages"]:
                break
            after = page["messages"][-1]["seq"]
        return await self.decrypt_all(peer, collected)

    async def older(
        self, peer: str, before: int, limit: int = 50
    ) -> tuple[list[ChatMessage], bool]:
        """Messages older than ``before`` (the newest if 0), and whether older ones exist."""
        me, _ = self._ctx.require_login()
        peer = normal_form(peer)
        conv = conversation_id(me, peer)
        fields: dict[str, Any] = {"conversation": conv, "limit": limit}
        if before:
            fields["before"] = before
        try:
            page = await self._ctx.request("history", **fields)
        except RemoteError as exc:
            if exc.code == "unknown_conversation":
                return [], False
            raise
        return await self.decrypt_all(peer, page["messages"]), bool(page["has_more"])

    async def mark_read(self, peer: str, seq: int) -> None:
        """Everything up to ``seq`` with ``peer`` has been read (on every device)."""
        me, _ = self._ctx.require_login()
        await self._ctx.request(
            "mark_read", conversation=conversation_id(me, normal_form(peer)), seq=seq
        )

    async def conversations(self) -> list[dict[str, Any]]:
        """Summaries of this user's conversations, most recent first."""
        return list((await self._ctx.request("conversations"))["conversations"])

    async def catch_up(self) -> None:
        """Fetch what arrived in each conversation since it was last seen; emit it."""
        for conv in await self.conversations():
            since = self.last_seen.get(conv["conversation"])
            if since is None or conv["last_seq"] <= since:
                continue
            for message in await self.read(conv["peer"], since=since):
                self._ctx.emit(ClientEvent("message", message=message))
