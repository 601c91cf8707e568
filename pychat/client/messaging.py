"""Sending and reading messages: seal, sign and send; fetch, open, check and show.

Nothing is ever shown as verified unless every check passed: a message that fails one comes
out with ``status="rejected"`` and the reason, and one bad message never stops the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pychat.client.context import ClientContext
from pychat.client.epochs import ConversationKeys
from pychat.client.errors import ClientError, MessageTooLong, check_sendable
from pychat.client.events import ChatMessage, ClientEvent, Reference, message_fields
from pychat.client.keystore import KeystoreData
from pychat.client.opening import MessageOpener
from pychat.client.outbox import OutboxEntry
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.client.references import (
    REFERENCE_KINDS,
    Digests,
    message_digest,
    parse_reference,
)
from pychat.crypto.e2e import (
    MESSAGE_VERSION,
    OpenedMessage,
    seal_message,
    time_ms,
)
from pychat.wire.ids import conversation_of, group_of
from pychat.wire.usernames import normal_form


class GroupRoute(Protocol):
    """What messaging hands to groups (:class:`pychat.client.group_actions.GroupActions`)."""

    async def deliver(self, group: str, entry: OutboxEntry) -> int:
        """Seal and send an outbox entry in the group; its seq."""

    async def check_message(self, group: str, message: Any) -> ChatMessage:
        """One of the group's messages, checked."""

    async def read(self, group: str, *, since: int = 0, limit: int = 100) -> list[ChatMessage]:
        """The group's messages after ``since``, checked."""

    async def view(self, group: str, *, fresh: bool = False) -> Any:
        """The group loaded (its chain and keys checked)."""


#: What a message of a structured kind means: ``(conversation, peer, seq, opened) -> text``.
KindHandler = Callable[[str, str, int, OpenedMessage], Awaitable[str]]


def sealed_entry(
    data: KeystoreData,
    entry: OutboxEntry,
    *,
    sender: str,
    conversation: str,
    recipient: str,
    epoch: int,
    key: str,
    now: float,
) -> tuple[str, dict[str, Any]]:
    """An outbox entry signed and sealed in an epoch's key (docs/e2e.md §3; in a group the
    recipient is the group's id, §7), and the send's extra fields (``expires`` under a
    disappearing-message timer)."""
    inner: dict[str, Any] = {
        "v": MESSAGE_VERSION,
        "sender": sender,
        "device": data.device_id,
        "recipient": recipient,
        "conversation": conversation,
        "epoch": epoch,
        "counter": entry.counter,
        "time": time_ms(entry.time),
        "body": entry.text,
    }
    if entry.kind != "text":
        inner["kind"] = entry.kind
    if entry.data is not None:
        inner["data"] = entry.data
    fields: dict[str, Any] = {}
    ttl = (data.timers.get(conversation) or [0, 0])[1]
    if ttl and entry.kind != "disappear":
        inner["expires"] = fields["expires"] = int(now + ttl)
    return seal_message(key.encode(), data.identity, inner), fields


class Messaging:
    """One logged-in user's messages."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust, keys: ConversationKeys) -> None:
        self._ctx = ctx
        self._trust = trust
        self._keys = keys
        self._opener = MessageOpener(ctx, trust, keys)
        #: The highest sequence number seen per conversation (for catching up).
        self.last_seen: dict[str, int] = {}
        #: Digests of messages, for checking what reactions and replies name.
        self.digests = Digests(ctx)
        #: What a verified message of a structured kind means, by kind: ``(conversation,
        #: peer, seq, opened) -> text`` (raising ``ValueError`` to reject it).
        self.kind_handlers: dict[str, KindHandler] = {}
        #: Where what names a group (``#`` and its id) goes (set by the client).
        self.groups: GroupRoute | None = None

    def _group(self, target: str) -> tuple[str, GroupRoute] | None:
        group = group_of(target)
        if group is None:
            return None
        if self.groups is None:
            raise ClientError("groups are not available here")
        return group, self.groups

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
        :raises KeysReplaced: this device's keys are no longer the account's.
        :raises MessageTooLong: the ciphertext is longer than the server takes.
        """
        self._trust.require_own_keys()
        routed = self._group(entry.peer)
        if routed is not None:
            return await routed[1].deliver(routed[0], entry)
        conv = await self._keys.open_conversation(entry.peer)
        await self._trust.peer_identity(entry.peer)
        await self._keys.ensure_current(conv, entry.peer)
        try:
            return await self._deliver_in(conv, entry)
        except RemoteError as exc:
            if exc.code != "bad_epoch":
                raise
        # This user began a newer epoch on another device: send in it.
        await self._keys.refresh_epochs(conv, entry.peer)
        return await self._deliver_in(conv, entry)

    async def _deliver_in(self, conv: str, entry: OutboxEntry) -> int:
        """Seal ``entry`` in the newest epoch this device holds and send it."""
        me, data = self._ctx.require_login()
        keys = data.conversation_keys[conv]
        epoch = max(int(e) for e in keys)
        ciphertext, fields = sealed_entry(
            data,
            entry,
            sender=me,
            conversation=conv,
            recipient=entry.peer,
            epoch=epoch,
            key=keys[str(epoch)],
            now=self._ctx.now(),
        )
        self._check_length(entry.text, ciphertext)
        reply = await self._ctx.request(
            "send",
            conversation=conv,
            epoch=epoch,
            ciphertext=ciphertext,
            client_id=entry.client_id,
            **fields,
        )
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
        routed = self._group(peer)
        if routed is not None:
            return await routed[1].check_message(routed[0], message)
        conv, sender, seq, sent = message_fields(message)
        opened = await self._opener.open(peer, message, conv, sender, seq)
        if isinstance(opened, str):
            return ChatMessage(conv, peer, seq, sender, sent, "rejected", None, opened)
        return await self.finished(conv, peer, message, opened)

    async def finished(
        self, conv: str, peer: str, message: Any, opened: OpenedMessage
    ) -> ChatMessage:
        """A message that passed its checks, with what its kind adds checked too (what a
        reaction or reply names, a structured kind's meaning)."""
        _, sender, seq, sent = message_fields(message)
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
            conv,
            peer,
            seq,
            sender,
            sent,
            "verified",
            text,
            None,
            opened.kind,
            reference if isinstance(reference, Reference) else None,
            digest,
            opened.data,
            opened.expires,
            sender_time=opened.time,
        )

    async def reference_to(self, peer: str, seq: int, *, quote: bool) -> Reference:
        """What a reaction (or, with ``quote``, a reply) to message ``seq`` with ``peer`` names:
        from what this client has seen, else from the server's copy, checked like any message.

        :raises ClientError: there is no such message, or it failed a check.
        """
        me, _ = self._ctx.require_login()
        conv = conversation_of(me, normal_form(peer))
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
        routed = self._group(peer)
        if routed is not None:
            return await routed[1].read(routed[0], since=since, limit=limit or 100)
        conv = conversation_of(me, peer)
        try:
            await self._keys.refresh_epochs(conv, peer)
        except RemoteError as exc:
            if exc.code == "unknown_conversation":
                return []
            raise
        await self._keys.ensure_current(conv, peer)
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
        conv = conversation_of(me, peer)
        routed = self._group(peer)
        if routed is not None:
            await routed[1].view(routed[0])
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
            "mark_read", conversation=conversation_of(me, normal_form(peer)), seq=seq
        )

    async def conversations(self) -> list[dict[str, Any]]:
        """Summaries of this user's conversations with one peer each, most recent first
        (groups: :meth:`pychat.client.group_actions.GroupActions.summaries`)."""
        summaries = (await self._ctx.request("conversations"))["conversations"]
        return [c for c in summaries if not c.get("group")]

    async def catch_up(self) -> None:
        """Fetch what arrived in each conversation since it was last seen; emit it."""
        for conv in await self.conversations():
            since = self.last_seen.get(conv["conversation"])
            if since is None or conv["last_seq"] <= since:
                continue
            for message in await self.read(conv["peer"], since=since):
                self._ctx.emit(ClientEvent("message", message=message))
