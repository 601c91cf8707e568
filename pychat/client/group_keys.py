"""A group's chain and keys as this device accepts them (docs/e2e.md §7).

:class:`GroupKeys` fetches a group's chain and envelopes (``epochs``), checks every statement
under keys this user accepted for its author (pinning members on first use, as for pairs),
refuses a chain that does not extend the one this device accepted before (a fork or a
rewind: :class:`GroupForked`), checks each envelope against the chain at the point it names,
and keeps the keys wrapped for this user and what each envelope says (for the key-validity
rule).  It also makes the epochs this user's client owes the group (after a membership
change, when this user may make them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from pychat.client.context import ClientContext
from pychat.client.errors import ClientError, TrustError
from pychat.client.keystore import KeystoreData
from pychat.client.peer_trust import PeerTrust
from pychat.client.protocol import RemoteError
from pychat.crypto.envelopes import EnvelopeFacts
from pychat.crypto.errors import E2EError
from pychat.crypto.group_chain import MEMBERSHIP_OPS, ChainRefused, GroupState, apply_statement
from pychat.crypto.group_envelopes import (
    make_group_envelope,
    may_make_epochs,
    unwrap_group_envelope,
    verify_group_envelope,
)
from pychat.crypto.identity import PublicIdentity


class GroupForked(TrustError):
    """The server's chain of a group does not extend the one this device accepted: it
    forked it (another statement at a number seen) or rewound it (fewer statements)."""


@dataclass(frozen=True)
class GroupView:
    """A group as its verified chain leaves it, and where its log stands on the server."""

    state: GroupState
    #: The state after each statement (``states[n - 1]`` after statement n).
    states: list[GroupState]
    statements: list[dict[str, Any]]
    #: The group's epochs on the server, and its place (what ``after`` an epoch made now names).
    epochs: int
    place: int
    #: Envelopes this device refused, with why (shown; never used).
    refused: dict[int, str]

    @property
    def changed_at(self) -> int:
        """The number of the last statement that changed who is a member."""
        return max(n for n, s in enumerate(self.statements, 1) if s["op"] in MEMBERSHIP_OPS)


class GroupKeys:
    """One logged-in user's groups: chains checked, keys unwrapped, epochs made."""

    def __init__(self, ctx: ClientContext, trust: PeerTrust) -> None:
        self._ctx = ctx
        self._trust = trust

    def key_of(self, data: KeystoreData) -> Any:
        """A statement's key check: a key this user accepted for its author (their own keys
        for this user)."""
        me = data.username

        def key_of(name: str, fingerprint: str) -> ed25519.Ed25519PublicKey | None:
            if name == me:
                own = [k.public() for k in data.identities]
            else:
                own = self._trust.accepted(data, name)
            for identity in own:
                if identity.fingerprint() == fingerprint:
                    return identity.signing_key
            return None

        return key_of

    async def _pin_everyone(self, statements: list[Any]) -> None:
        """Pin on first use every user a chain names (a changed key stays pending: the keys
        accepted before still check what they signed)."""
        me, data = self._ctx.require_login()
        names: set[Any] = set()
        for statement in statements:
            if isinstance(statement, dict):
                names |= {statement.get("by"), statement.get("member")} - {None}
                if isinstance(statement.get("members"), dict):
                    names |= set(statement["members"])
        for name in sorted(n for n in names if isinstance(n, str) and n != me):
            if name not in data.pins:
                try:
                    await self._trust.peer_identity(name)
                except (ClientError, RemoteError):
                    continue  # unknown to the server or changed: its statements say so

    async def load(self, group: str) -> GroupView:
        """The group's chain and envelopes, fetched and checked.

        :raises GroupForked: the chain does not extend what this device accepted.
        :raises ClientError: not a group, or its chain does not hold.
        """
        _, data = self._ctx.require_login()
        try:
            reply = await self._ctx.request("epochs", conversation=group)
        except RemoteError as exc:
            if exc.code != "unknown_conversation":
                raise
            raise ClientError("no such group among yours (left, or removed from it)") from None
        statements = reply.get("statements")
        if not isinstance(statements, list) or not statements:
            raise ClientError("that conversation is not a group")
        await self._pin_everyone(statements)
        states = self._verified_chain(data, group, statements)
        view = GroupView(
            states[-1], states, statements, len(reply["envelopes"]), int(reply["after"]), {}
        )
        for number, envelope in enumerate(reply["envelopes"], 1):
            problem = self._take_envelope(data, group, number, envelope, states)
            if problem is not None:
                view.refused[number] = problem
        data.groups[group] = {"hashes": [s.head for s in states], "name": view.state.name}
        await self._ctx.save()
        return view

    def _verified_chain(
        self, data: KeystoreData, group: str, statements: list[Any]
    ) -> list[GroupState]:
        states: list[GroupState] = []
        key_of = self.key_of(data)
        for statement in statements:
            try:
                states.append(apply_statement(states[-1] if states else None, statement, key_of))
            except ChainRefused as exc:
                raise ClientError(
                    f"the server's chain of this group does not hold: {exc}"
                ) from None
        if states[0].group != group:
            raise ClientError("the server served another group's chain")
        seen = (data.groups.get(group) or {}).get("hashes", [])
        for n, head in enumerate(seen[: len(states)], 1):
            if states[n - 1].head != head:
                raise GroupForked(
                    f"the server's statement {n} of this group is not the one this device "
                    "saw: the server forked the group's history (compare /verify numbers)"
                )
        if len(states) < len(seen):
            raise GroupForked(
                f"the server serves {len(states)} statements of this group; this device saw "
                f"{len(seen)}: the server rewound the group's history"
            )
        return states

    def _identity(self, data: KeystoreData, name: str, fingerprint: str) -> PublicIdentity | None:
        if name == data.username:
            own = [k.public() for k in data.identities]
        else:
            own = self._trust.accepted(data, name)
        return next((i for i in own if i.fingerprint() == fingerprint), None)

    def _take_envelope(
        self,
        data: KeystoreData,
        group: str,
        number: int,
        envelope: Any,
        states: list[GroupState],
    ) -> str | None:
        """Check one envelope and keep what it gives; why it is refused, or None."""
        if not isinstance(envelope, dict) or envelope.get("epoch") != number:
            return f"the server's envelope of epoch {number} is malformed"
        chain = envelope.get("chain")
        if not isinstance(chain, int) or not 1 <= chain <= len(states):
            return f"epoch {number} names a point of the chain this device was not served"
        members = envelope.get("members")
        creator = envelope.get("creator")
        entry = members.get(creator) if isinstance(members, dict) else None
        fingerprint = entry.get("fingerprint") if isinstance(entry, dict) else None
        identity = self._identity(data, str(creator), str(fingerprint))
        if identity is None:
            return f"epoch {number} is made with a key of {creator!r} not accepted"
        try:
            facts = verify_group_envelope(
                envelope, state=states[chain - 1], creator_identity=identity
            )
        except E2EError as exc:
            return f"epoch {number} refused: {exc}"
        kept = data.epoch_facts.setdefault(group, {})
        record = EnvelopeFacts(number, facts.creator, facts.after, dict(facts.fingerprints))
        said = {**record.to_json(), "chain": facts.chain}
        if kept.setdefault(str(number), said) != said:
            return f"the server swapped epoch {number} for another"
        if data.username in envelope["members"]:
            try:
                key = unwrap_group_envelope(envelope, data.username, data.identities)
            except E2EError as exc:
                return f"epoch {number}'s key does not open on this device: {exc}"
            data.conversation_keys.setdefault(group, {})[str(number)] = key.decode()
        return None

    async def identities(self, members: list[str]) -> dict[str, PublicIdentity]:
        """Every member's current identity, checked against its pin.

        :raises PeerKeyChanged: a member's key changed and was not accepted: blocked until
            ``pychat trust``, as in pairs.
        """
        me, data = self._ctx.require_login()
        out = {me: data.identity.public()}
        for name in members:
            if name == me:
                continue
            try:
                out[name] = await self._trust.peer_identity(name)
            except RemoteError as exc:
                if exc.code != "unknown_user":
                    raise
                raise ClientError(
                    f"{name} has no account any more: remove them from the group first "
                    "(no key can be wrapped for them)"
                ) from None
        return out

    async def make_epoch(self, view: GroupView) -> tuple[dict[str, Any], bytes]:
        """A new epoch for the members as ``view`` leaves them, made by this user."""
        me, data = self._ctx.require_login()
        identities = await self.identities(sorted(view.state.members))
        return make_group_envelope(
            view.state,
            epoch=view.epochs + 1,
            after=view.place,
            creator=me,
            creator_keys=data.identity,
            identities=identities,
        )

    async def settle(self, group: str, view: GroupView) -> GroupView:
        """``view``, after adding the epoch the group awaits (its members changed since its
        newest epoch) when this user may make it."""
        me, data = self._ctx.require_login()
        if not may_make_epochs(view.state, me):
            return view
        facts = (data.epoch_facts.get(group) or {}).get(str(view.epochs)) or {}
        if int(facts.get("chain", 0)) >= view.changed_at:
            return view
        envelope, _ = await self.make_epoch(view)
        await self._ctx.request("add_epoch", conversation=group, envelope=envelope)
        return await self.load(group)
