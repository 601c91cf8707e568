"""A user's group messages: sent, pushed, read and checked (docs/e2e.md §7).

A group message is a message of docs/e2e.md §3 whose ``recipient`` and ``conversation`` are
the group's id.  A reader accepts it only if its epoch's key is one this device holds, the
sender is a member of that epoch, it is signed under a key accepted for them, it is placed
after its epoch began and before any later epoch began (in a group only the newest epoch
speaks: a removed member's old key stops at the epoch their removal began), no key it was
signed with is retired there, and its counter is new.
"""

from __future__ import annotations

from typing import Any

from pychat.client.context import ClientContext
from pychat.client.errors import ClientError
from pychat.client.events import ChatMessage, message_fields
from pychat.client.group_keys import GroupKeys, GroupView
from pychat.client.messaging import Messaging, sealed_entry
from pychat.client.opening import open_under_any
from pychat.client.outbox import OutboxEntry
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.client.validity import message_problem
from pychat.crypto.e2e import OpenedMessage
from pychat.crypto.envelopes import EnvelopeFacts
from pychat.wire.ids import GROUP_MARK


class GroupMessages:
    """One logged-in user's group messages: sent, received, read, checked."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust, messaging: Messaging) -> None:
        self._ctx = ctx
        self._trust = trust
        self._messaging = messaging
        messaging.groups = self
        self.keys = GroupKeys(ctx, trust)
        #: Each group as last loaded (chain and epochs checked), by id.
        self.views: dict[str, GroupView] = {}
        #: The highest seq seen per group (for catching up after a reconnect).
        self.last_seen: dict[str, int] = {}

    # -- live ----------------------------------------------------------------------------------

    def is_group(self, conversation: str) -> bool:
        """Whether this device knows ``conversation`` as a group."""
        _, data = self._ctx.require_login()
        return conversation in self.views or conversation in data.groups

    async def view(self, group: str, *, fresh: bool = False) -> GroupView:
        """The group as last loaded, or loaded now (checked)."""
        if fresh or group not in self.views:
            self.views[group] = await self.keys.load(group)
        return self.views[group]

    async def receive(self, event: dict[str, Any]) -> ChatMessage:
        """A pushed group message, checked."""
        group = str(event.get("conversation"))
        try:
            message = await self.check_message(group, event)
        except ClientError as exc:  # the group's chain failed a check (a fork): said with it
            _, sender, seq, sent = message_fields(event)
            target = GROUP_MARK + group
            return ChatMessage(group, target, seq, sender, sent, "rejected", None, str(exc))
        self.last_seen[group] = max(self.last_seen.get(group, 0), message.seq)
        await self._ctx.save()
        return message

    async def check_message(self, group: str, message: Any) -> ChatMessage:
        """One of the group's messages, checked (the group loaded again once when its epoch
        is not known yet: the epoch's envelope may have come a moment before)."""
        checked = await self.check(group, await self.view(group), message)
        if checked.status != "verified" and (checked.reason or "").startswith("no key of epoch"):
            checked = await self.check(group, await self.view(group, fresh=True), message)
        return checked

    # -- messages ------------------------------------------------------------------------------

    async def send(self, group: str, text: str, *, kind: str = "text") -> int:
        """Seal, sign and send ``text`` in the group's newest epoch; its seq (see
        :meth:`deliver`)."""
        entry = await self._messaging.new_entry(GROUP_MARK + group, text, kind=kind)
        return await self.deliver(group, entry)

    async def deliver(self, group: str, entry: OutboxEntry) -> int:
        """Seal and send an outbox entry in the group's newest epoch; its seq.  Sending the
        same entry again is safe (one copy per ``client_id``).

        :raises PeerKeyChanged: a member's key changed (when this user owes the group an
            epoch): blocked until ``pychat trust``.
        :raises ClientError: this device holds no key of the newest epoch, or the group waits
            for an epoch from an admin.
        """
        self._trust.require_own_keys()
        for attempt in range(2):
            view = await self.keys.settle(group, await self.view(group, fresh=True))
            self.views[group] = view
            ciphertext, fields = self._sealed(group, view, entry)
            try:
                reply = await self._ctx.request(
                    "send",
                    conversation=group,
                    epoch=view.epochs,
                    ciphertext=ciphertext,
                    client_id=entry.client_id,
                    **fields,
                )
            except RemoteError as exc:
                if exc.code == "bad_epoch" and exc.error.get("awaits_epoch"):
                    raise ClientError(
                        "the group's members changed: it waits for a new key from an "
                        "admin's client (one comes when an admin is online)"
                    ) from None
                if exc.code == "bad_epoch" and attempt == 0:
                    continue  # a new epoch came: send in it
                raise
            seq = int(reply["seq"])
            self.last_seen[group] = max(self.last_seen.get(group, 0), seq)
            return seq
        raise ClientError("the group's epochs kept moving: try again")  # pragma: no cover

    def _sealed(
        self, group: str, view: GroupView, entry: OutboxEntry
    ) -> tuple[str, dict[str, Any]]:
        """The entry sealed in the newest epoch, and the send's extra fields."""
        me, data = self._ctx.require_login()
        key = data.conversation_keys.get(group, {}).get(str(view.epochs))
        facts = data.epoch_facts.get(group, {}).get(str(view.epochs)) or {}
        if key is not None and int(facts.get("chain", 0)) < view.changed_at:
            # The newest epoch served was made before the members last changed: a removed
            # member could read what is sealed in it (a server serving an old epoch).
            raise ClientError(
                "the group's newest key was made before its members last changed: it waits "
                "for a new key from an admin's client; nothing was sent"
            )
        if key is None:
            raise ClientError(
                f"this device holds no key of the group's newest epoch ({view.epochs}): "
                + view.refused.get(view.epochs, "the server has not given it")
            )
        return sealed_entry(
            data,
            entry,
            sender=me,
            conversation=group,
            recipient=group,
            epoch=view.epochs,
            key=key,
            now=self._ctx.now(),
        )

    async def read(self, group: str, *, since: int = 0, limit: int = 100) -> list[ChatMessage]:
        """Messages with seq > ``since`` (at most ``limit``), each checked or rejected with
        the reason."""
        view = self.views[group] = await self.keys.load(group)
        page = await self._ctx.request("history", conversation=group, after=since, limit=limit)
        out = [await self.check(group, view, m) for m in page["messages"]]
        if out:
            self.last_seen[group] = max(self.last_seen.get(group, 0), out[-1].seq)
        await self._ctx.save()
        return out

    async def check(self, group: str, view: GroupView, message: Any) -> ChatMessage:
        """One message of the group as the user sees it."""
        conv, sender, seq, sent = message_fields(message)
        opened = (
            self._opened(group, view, message, sender, seq)
            if conv == group
            else "the server sent a message of another conversation"
        )
        target = GROUP_MARK + group
        if isinstance(opened, str):
            return ChatMessage(group, target, seq, sender, sent, "rejected", None, opened)
        return await self._messaging.finished(group, target, message, opened)

    def _opened(
        self, group: str, view: GroupView, message: Any, sender: str, seq: int
    ) -> OpenedMessage | str:
        _, data = self._ctx.require_login()
        epoch = message.get("epoch") if isinstance(message, dict) else None
        if not isinstance(epoch, int) or not isinstance(message.get("ciphertext"), str):
            return "the server sent a malformed message"
        facts_json = data.epoch_facts.get(group, {})
        facts = {int(n): EnvelopeFacts.from_json(int(n), f) for n, f in facts_json.items()}
        key = data.conversation_keys.get(group, {}).get(str(epoch))
        if epoch not in facts or key is None:
            why = view.refused.get(epoch, "not a member then, or the server withholds it")
            return f"no key of epoch {epoch} on this device ({why})"
        if sender not in facts[epoch].members:
            return f"{sender} is not a member of epoch {epoch}"
        later = [(n, f.after) for n, f in facts.items() if n > epoch and f.after is not None]
        stale = [(n, after) for n, after in later if seq > after]
        if stale:
            n, after = min(stale)
            return (
                f"sent in epoch {epoch} after epoch {n} began (after message #{after}): an "
                "old key speaking, perhaps a removed member's"
            )
        signed = self._signed(group, message["ciphertext"], key.encode(), sender, epoch)
        if isinstance(signed, str):
            return signed
        opened, signer = signed
        keys = self._trust.accepted_order(data, sender) if sender != data.username else []
        problem = message_problem(
            facts, sender=sender, keys=keys, signer=signer, seq=seq, epoch=epoch
        )
        if problem is None:
            problem = data.check_counter(group, sender, opened.device, seq, opened.counter)
        return problem if problem else opened

    def _signed(
        self, group: str, ciphertext: str, key: bytes, sender: str, epoch: int
    ) -> tuple[OpenedMessage, str] | str:
        _, data = self._ctx.require_login()
        if sender == data.username:
            identities = [k.public() for k in data.identities]
        else:
            identities = self._trust.accepted(data, sender)
        return open_under_any(
            identities,
            ciphertext,
            key,
            f"no key of {sender} accepted on this device",
            sender=sender,
            recipient=group,
            conversation=group,
            epoch=epoch,
        )
