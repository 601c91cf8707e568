"""What a user does to groups: make one, find it, change it (add, remove, leave, rename,
make an admin), verify it, and hear of changes (docs/e2e.md §7); the messages are
:class:`~pychat.client.group_messages.GroupMessages`'."""

from __future__ import annotations

from typing import Any

from pychat.client.errors import ClientError
from pychat.client.events import ClientEvent
from pychat.client.group_keys import GroupView
from pychat.client.group_messages import GroupMessages
from pychat.client.protocol import RemoteError
from pychat.crypto.e2e import time_ms
from pychat.crypto.group_chain import apply_statement, group_safety_number, next_statement
from pychat.wire.usernames import normal_form

#: Statements that come with the epoch they begin.
WITH_EPOCH = ("add", "remove")


class GroupActions(GroupMessages):
    """One logged-in user's groups."""

    async def changed(self, event: dict[str, Any]) -> dict[str, Any]:
        """A ``group`` or group ``epoch`` push: the group loaded again, the epoch it awaits
        made when this user may make it; what the user is told."""
        summary = event.get("conversation")
        group = summary.get("conversation") if isinstance(summary, dict) else summary
        if not isinstance(group, str):
            return {"problem": "the server sent a malformed group change"}
        if isinstance(summary, dict) and summary.get("removed"):
            self.views.pop(group, None)
            name = self._ctx.require_login()[1].groups.get(group, {}).get("name")
            return {"group": group, "name": name, "removed": True}
        try:
            view = await self.view(group, fresh=True)
        except ClientError as exc:  # a fork or rewind, a chain that does not hold: shown
            self.views.pop(group, None)  # and nothing more is read against the old view
            return {"group": group, "problem": str(exc)}
        problem = None
        try:
            view = self.views[group] = await self.keys.settle(group, view)
        except (ClientError, RemoteError) as exc:  # a member's key changed, say: shown
            problem = f"the group's next key was not made here: {exc}"
        told: dict[str, Any] = {} if problem is None else {"problem": problem}
        return {
            **told,
            "group": group,
            "name": view.state.name,
            "members": sorted(view.state.members),
            "statement": view.statements[-1],
        }

    async def catch_up(self) -> None:
        """Fetch what arrived in each group since it was last seen; emit it."""
        for summary in await self.summaries():
            group = summary["conversation"]
            since = self.last_seen.get(group)
            if since is None or summary["last_seq"] <= since:
                continue
            for message in await self.read(group, since=since):
                self._ctx.emit(ClientEvent("message", {"conversation": group}, message))

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
            problem = None
            if group not in data.groups or len(data.groups[group]["hashes"]) < summary["chain"]:
                try:
                    await self.keys.load(group)
                except ClientError as exc:  # one group's failed check (a fork) stops no list
                    problem = str(exc)
            name = (data.groups.get(group) or {}).get("name") or f"group {group[:8]}"
            out.append({**summary, "name": name, **({"problem": problem} if problem else {})})
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


def statement_text(statement: dict[str, Any]) -> str:
    """A checked statement as one line a person reads (names as they came: show them through
    :mod:`pychat.text.safe`)."""
    by, op = statement.get("by"), statement.get("op")
    member = statement.get("member")
    said = {
        "create": f"{by} made the group {statement.get('name')!r}",
        "add": f"{by} added {member}",
        "remove": f"{by} removed {member}",
        "leave": f"{by} left",
        "admin": f"{by} made {member} an admin",
        "rename": f"{by} renamed the group to {statement.get('name')!r}",
    }
    return said.get(str(op), f"{by} changed the group")
