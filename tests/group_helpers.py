"""Groups made by test users at the protocol level: statements signed and epochs wrapped
with the real crypto (pychat/crypto/group_chain.py, group_envelopes.py)."""

from __future__ import annotations

from typing import Any

from pychat.crypto.group_chain import GroupState, apply_statement, next_statement
from pychat.crypto.group_envelopes import make_group_envelope
from pychat.crypto.identity import PublicIdentity
from tests.accounts_helpers import keypair

TIME_MS = 1_800_000_000_000


def identity(name: str) -> PublicIdentity:
    return keypair(name).public()


def key_of(name: str, fingerprint: str) -> Any:
    """Every test user's one key."""
    public = identity(name)
    return public.signing_key if public.fingerprint() == fingerprint else None


class TestGroup:
    """One group's chain as its honest members see it, and what they would send."""

    __test__ = False

    def __init__(self) -> None:
        self.statements: list[dict[str, Any]] = []
        self.state: GroupState | None = None
        self.epochs = 0

    def draft(self, by: str, op: str, **fields: Any) -> dict[str, Any]:
        """The next statement, signed by ``by``, not taken into the chain (it may not hold)."""
        return next_statement(
            self.state,
            op,
            by=by,
            fingerprint=identity(by).fingerprint(),
            time_ms=TIME_MS + len(self.statements),
            signing=keypair(by).signing,
            **fields,
        )

    def say(self, by: str, op: str, **fields: Any) -> dict[str, Any]:
        """The next statement, signed by ``by`` (and taken as the chain's next)."""
        statement = self.draft(by, op, **fields)
        self.statements.append(statement)
        self.state = apply_statement(self.state, statement, key_of)
        return statement

    def create(self, by: str, *others: str, name: str = "Family") -> dict[str, Any]:
        members = {m: identity(m).fingerprint() for m in (by, *others)}
        return self.say(by, "create", name=name, members=members, admins=[by])

    def copy(self) -> TestGroup:
        """Another view of the same chain (what a member makes on their own)."""
        other = TestGroup()
        other.statements, other.state, other.epochs = list(self.statements), self.state, self.epochs
        return other

    def add(self, by: str, member: str) -> dict[str, Any]:
        return self.say(by, "add", member=member, member_fingerprint=identity(member).fingerprint())

    def envelope(self, creator: str, after: int) -> dict[str, Any]:
        """The next epoch for the members as the chain leaves them."""
        assert self.state is not None
        self.epochs += 1
        identities = {m: identity(m) for m in self.state.members}
        made, _ = make_group_envelope(
            self.state,
            epoch=self.epochs,
            after=after,
            creator=creator,
            creator_keys=keypair(creator),
            identities=identities,
        )
        return made

    @property
    def id(self) -> str:
        assert self.state is not None
        return self.state.group
