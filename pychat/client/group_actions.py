"""What a user does in groups: make one, change it (add, remove, leave, rename, make an
admin), send to it and read it, every message checked (docs/e2e.md §7).

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
from pychat.client.errors import ClientError, check_sendable
from pychat.client.events import ChatMessage, message_fields
from pychat.client.group_keys import GroupKeys, GroupView
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.client.validity import message_problem
from pychat.crypto.e2e import MESSAGE_VERSION, OpenedMessage, open_message, seal_message, time_ms
from pychat.crypto.envelopes import EnvelopeFacts
from pychat.crypto.errors import E2EError
from pychat.crypto.group_chain import apply_statement, group_safety_number, next_statement
from pychat.wire.usernames import normal_form

#: Statements that come with the epoch they begin.
WITH_EPOCH = ("add", "remove")


class GroupActions:
    """One logged-in user's groups."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust) -> None:
        self._ctx = ctx
        self._trust = trust
        self.keys = GroupKeys(ctx, trust)

    # -- finding -------------------------------------------------------------------------------

    async def find(self, name_or_id: str) -> str:
        """The id of the group called ``name_or_id`` (as its verified chain names it) or
        whose id begins with it.

        :raises ClientError: none, or more than one.
        """
        groups = await self.summaries()
        found = [g for g in groups if g["conversation"].startswith(name_or_id)]
        found = found or [g for g in groups if g["name"] == name_or_id]
        if len(found) != 1:
            raise ClientError(
                f"no group called {name_or_id!r}"
                if not found
                else f"{len(found)} groups are called {name_or_id!r}: give its id"
            )
        return str(found[0]["conversation"])

    async def summaries(self) -> list[dict[str, Any]]:
        """This user's groups: the server's summaries with each name as this device verified
        it (a group not loaded yet is loaded)."""
        _, data = self._ctx.require_login()
        out = []
        for summary in (await self._ctx.request("conversations"))["conversations"]:
            if not summary.get("group"):
                continue
            group = summary["conversation"]
            if group not in data.groups or len(data.groups[group]["hashes"]) < summary["chain"]:
                await self.keys.load(group)
            out.append({**summary, "name": data.groups[group]["name"]})
        return out

    # -- changes -------------------------------------------------------------------------------

    async def create(self, name: str, members: list[str]) -> str:
        """A new group of this user (its admin) and ``members``; its id."""
        me, data = self._ctx.require_login()
        others = sorted({normal_form(m) for m in members} - {me})
        if not others:
            raise ClientError("a group needs at least one other member")
        identities = await self.keys.identities(others)
        statement = next_statement(
            None,
            "create",
            by=me,
            fingerprint=identities[me].fingerprint(),
            time_ms=time_ms(self._ctx.now()),
            signing=data.identity.signing,
            name=name,
            members={m: identities[m].fingerprint() for m in sorted(identities)},
            admins=[me],
        )
        state = apply_statement(None, statement, self.keys.key_of(data))
        envelope, _ = await self.keys.make_epoch(GroupView(state, [], [statement], 0, 0, {}))
        await self._ctx.request("group_create", statement=statement, envelope=envelope)
        await self.keys.load(statement["group"])
        return str(statement["group"])

    async def change(self, group: str, op: str, **fields: Any) -> GroupView:
        """Make the next statement of ``group`` (with the epoch it begins, when it begins
        one) and send it; the group as it is then (fetched again, checked)."""
        me, data = self._ctx.require_login()
        for attempt in range(3):
            view = await self.keys.load(group)
            statement = next_statement(
                view.state,
                op,
                by=me,
                fingerprint=data.identity.public().fingerprint(),
                time_ms=time_ms(self._ctx.now()),
                signing=data.identity.signing,
                **fields,
            )
            request: dict[str, Any] = {"conversation": group, "statement": statement}
            if op in WITH_EPOCH:
                state = apply_statement(view.state, statement, self.keys.key_of(data))
                statements = [*view.statements, statement]
                made = GroupView(state, [], statements, view.epochs, view.place, {})
                request["envelope"], _ = await self.keys.make_epoch(made)
            try:
                await self._ctx.request("group_change", **request)
            except RemoteError as exc:
                moved = exc.code == "bad_epoch" or exc.error.get("reason") == "order"
                if moved and attempt < 2:
                    continue  # a message or a statement came first: make it again
                raise
            break
        if op == "leave":
            data.groups.pop(group, None)
            await self._ctx.save()
            return view
        return await self.keys.settle(group, await self.keys.load(group))

    async def add(self, group: str, member: str) -> GroupView:
        """Add ``member`` (this user must be an admin); they read from the epoch it begins."""
        member = normal_form(member)
        identity = (await self.keys.identities([member]))[member]
        return await self.change(
            group, "add", member=member, member_fingerprint=identity.fingerprint()
        )

    async def verify(self, group: str) -> tuple[str, GroupView]:
        """The group safety number (the same for every member who holds the same history)."""
        view = await self.keys.load(group)
        return group_safety_number(view.state), view

    # -- messages ------------------------------------------------------------------------------

    async def send(self, group: str, text: str, *, kind: str = "text") -> int:
        """Seal, sign and send ``text`` in the group's newest epoch; its seq.

        :raises PeerKeyChanged: a member's key changed (when this user owes the group an
            epoch): blocked until ``pychat trust``.
        :raises ClientError: this device holds no key of the newest epoch, or the group waits
            for an epoch from an admin.
        """
        me, data = self._ctx.require_login()
        self._trust.require_own_keys()
        check_sendable(text)
        counter, reserved = data.next_counter()
        if reserved:
            await self._ctx.save()
        client_id = f"{data.device_id}-{counter}"
        for attempt in range(2):
            view = await self.keys.settle(group, await self.keys.load(group))
            key = data.conversation_keys.get(group, {}).get(str(view.epochs))
            if key is None:
                raise ClientError(
                    f"this device holds no key of the group's newest epoch ({view.epochs}): "
                    + view.refused.get(view.epochs, "the server has not given it")
                )
            inner: dict[str, Any] = {
                "v": MESSAGE_VERSION,
                "sender": me,
                "device": data.device_id,
                "recipient": group,
                "conversation": group,
                "epoch": view.epochs,
                "counter": counter,
                "time": time_ms(self._ctx.now()),
                "body": text,
            }
            if kind != "text":
                inner["kind"] = kind
            ciphertext = seal_message(key.encode(), data.identity, inner)
            try:
                reply = await self._ctx.request(
                    "send",
                    conversation=group,
                    epoch=view.epochs,
                    ciphertext=ciphertext,
                    client_id=client_id,
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
            return int(reply["seq"])
        raise ClientError("the group's epochs kept moving: try again")  # pragma: no cover

    async def read(self, group: str, *, since: int = 0, limit: int = 100) -> list[ChatMessage]:
        """Messages with seq > ``since`` (at most ``limit``), each checked or rejected with
        the reason."""
        view = await self.keys.load(group)
        page = await self._ctx.request("history", conversation=group, after=since, limit=limit)
        out = [await self.check(group, view, m) for m in page["messages"]]
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
        if isinstance(opened, str):
            return ChatMessage(group, group, seq, sender, sent, "rejected", None, opened)
        return ChatMessage(
            group,
            group,
            seq,
            sender,
            sent,
            "verified",
            opened.body,
            None,
            opened.kind,
            sender_time=opened.time,
        )

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
        reason = f"no key of {sender} accepted on this device"
        for identity in identities:
            try:
                opened = open_message(
                    ciphertext,
                    key,
                    sender=sender,
                    sender_identity=identity,
                    recipient=group,
                    conversation=group,
                    epoch=epoch,
                )
            except E2EError as exc:
                reason = str(exc)
                continue
            return opened, identity.fingerprint()
        return reason
