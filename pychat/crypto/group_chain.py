"""A group's membership as a chain of signed statements (docs/e2e.md §7).

Every change to a group (create, add, remove, leave, admin, rename) is a statement signed by
the member who made it, numbered from 1 and naming the SHA-256 of the statement before it, so
every member holds the same history and a server that forks it (serves two different
statements at one number) or rewinds it (serves fewer than a member has seen) is caught.  Only
an admin adds, removes or makes an admin; any member may leave or rename the group.  The
server stores the chain and checks what it can; clients check everything here.

This module is pure: statements in, the group's state (members with their fingerprints,
admins, name, number and head) out, or :class:`ChainRefused` saying why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from pychat.crypto.canonical import NotPortable, canonical, check_portable
from pychat.crypto.errors import E2EError, b64d
from pychat.wire.encoding import b64encode

#: What a statement's signature covers, before its canonical JSON.
STATEMENT_CONTEXT = b"pychat-group-v1"
#: What a group's id is derived from, before its create statement's canonical JSON.
ID_CONTEXT = b"pychat-group-id-v1"
#: What the group safety number is derived from.
SAFETY_CONTEXT = b"pychat-group-safety-v1"

#: The changes a statement may make.
OPS = ("create", "add", "remove", "leave", "admin", "rename")
#: Statements that change who is a member: an epoch pinned before the last of them is stale
#: (a new epoch follows each: docs/e2e.md §7).
MEMBERSHIP_OPS = ("create", "add", "remove", "leave")
#: The longest group name, in characters.
MAX_NAME = 64
#: The most members a chain may hold, whatever a server allows (a server's own limit is lower).
MAX_MEMBERS = 1000

#: The signing key a member published under a fingerprint, if this client accepts it for them.
KeyOf = Callable[[str, str], ed25519.Ed25519PublicKey | None]

_FIELDS = {
    "create": {"name", "members", "admins", "nonce"},
    "add": {"member", "member_fingerprint"},
    "remove": {"member"},
    "leave": set(),
    "admin": {"member"},
    "rename": {"name"},
}
_COMMON = {"v", "group", "n", "prev", "op", "by", "fingerprint", "time", "signature"}


class ChainRefused(E2EError):
    """A statement, or a chain, that does not hold; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ChainFork(ChainRefused):
    """The chain served does not extend the one this client had seen: forked or rewound."""


@dataclass(frozen=True)
class GroupState:
    """A group as its chain leaves it."""

    group: str
    name: str
    #: Member name -> the fingerprint of the identity they were added with.
    members: Mapping[str, str]
    admins: frozenset[str]
    #: The number of the last statement, and its SHA-256 (hex).
    n: int
    head: str
    #: Every statement's hash, by number (to compare with a chain served later).
    hashes: tuple[str, ...] = field(default=(), repr=False)


def statement_hash(statement: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a whole statement, signature included: what the next names."""
    return hashlib.sha256(canonical(dict(statement))).hexdigest()


def signed_bytes(statement: Mapping[str, Any]) -> bytes:
    """What a statement's signature covers."""
    unsigned = {k: v for k, v in statement.items() if k != "signature"}
    return STATEMENT_CONTEXT + b"\0" + canonical(unsigned)


def group_id(create: Mapping[str, Any]) -> str:
    """A group's id: from its create statement (without ``group`` and ``signature``)."""
    body = {k: v for k, v in create.items() if k not in ("group", "signature")}
    return hashlib.sha256(ID_CONTEXT + b"\0" + canonical(body)).hexdigest()[:32]


def sign_statement(
    signing: ed25519.Ed25519PrivateKey, statement: Mapping[str, Any]
) -> dict[str, Any]:
    """``statement`` with its ``signature`` (and, for a create, its ``group`` id)."""
    body = {k: v for k, v in statement.items() if k != "signature"}
    if body.get("op") == "create":
        body["group"] = group_id(body)
    body["signature"] = b64encode(signing.sign(signed_bytes(body)))
    return body


def next_statement(
    state: GroupState | None,
    op: str,
    *,
    by: str,
    fingerprint: str,
    time_ms: int,
    signing: ed25519.Ed25519PrivateKey,
    **fields: Any,
) -> dict[str, Any]:
    """The statement that follows ``state`` (a create when None), signed by ``by``."""
    body: dict[str, Any] = {
        "v": 1,
        "group": "" if state is None else state.group,
        "n": 1 if state is None else state.n + 1,
        "prev": "" if state is None else state.head,
        "op": op,
        "by": by,
        "fingerprint": fingerprint,
        "time": time_ms,
        **fields,
    }
    if op == "create":
        body.setdefault("nonce", new_nonce())
    return sign_statement(signing, body)


def new_nonce() -> str:
    """The random part of a create statement (two groups never share an id)."""
    return b64encode(os.urandom(16))


def _check_shape(statement: Any) -> dict[str, Any]:
    if not isinstance(statement, dict):
        raise ChainRefused("shape", "a statement must be an object")
    op = statement.get("op")
    if op not in OPS:
        raise ChainRefused("shape", f"unknown statement {op!r}")
    extra = set(statement) - _COMMON - _FIELDS[op]
    missing = (_COMMON | _FIELDS[op]) - set(statement)
    if extra or missing:
        raise ChainRefused("shape", f"a {op} statement with fields {sorted(extra | missing)}")
    try:
        check_portable(statement)
    except NotPortable as exc:
        raise ChainRefused("shape", str(exc)) from None
    for name in ("group", "prev", "by", "fingerprint", "signature"):
        if not isinstance(statement[name], str):
            raise ChainRefused("shape", f"{name} must be text")
    for name in ("v", "n", "time"):
        if not isinstance(statement[name], int) or isinstance(statement[name], bool):
            raise ChainRefused("shape", f"{name} must be an integer")
    if statement["v"] != 1:
        raise ChainRefused("shape", f"statement version {statement['v']} is not known")
    return statement


def _check_signature(statement: dict[str, Any], key_of: KeyOf) -> None:
    key = key_of(statement["by"], statement["fingerprint"])
    if key is None:
        raise ChainRefused(
            "unknown_key",
            f"{statement['by']}'s key {statement['fingerprint'][:16]}… is not one accepted",
        )
    try:
        key.verify(b64d(statement["signature"], "signature"), signed_bytes(statement))
    except InvalidSignature:
        raise ChainRefused(
            "signature", f"statement {statement['n']} is not signed by its author"
        ) from None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ChainRefused("shape", f"{what} must be text of 1 to {MAX_NAME} characters")
    return value


def _created(statement: dict[str, Any], max_members: int) -> GroupState:
    if statement["n"] != 1 or statement["prev"] != "":
        raise ChainRefused("order", "a group begins with statement 1, naming no previous one")
    if statement["group"] != group_id(statement):
        raise ChainRefused("group", "the group id is not the one its create statement gives")
    members, admins = statement["members"], statement["admins"]
    if not isinstance(members, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in members.items()
    ):
        raise ChainRefused("shape", "members must map names to fingerprints")
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise ChainRefused("shape", "admins must be a list of names")
    by = statement["by"]
    if members.get(by) != statement["fingerprint"] or by not in admins:
        raise ChainRefused("not_admin", "the creator must be a member and an admin")
    if not set(admins) <= set(members):
        raise ChainRefused("not_member", "every admin must be a member")
    if len(members) > max_members:
        raise ChainRefused("too_many", f"a group holds at most {max_members} members")
    _name(statement["name"], "the group's name")
    b64d(statement["nonce"], "nonce")
    head = statement_hash(statement)
    return GroupState(
        statement["group"], statement["name"], dict(members), frozenset(admins), 1, head, (head,)
    )


def _changed(state: GroupState, statement: dict[str, Any], max_members: int) -> GroupState:
    if statement["group"] != state.group:
        raise ChainRefused("group", "a statement of another group")
    if statement["n"] != state.n + 1 or statement["prev"] != state.head:
        raise ChainRefused("order", f"statement {statement['n']} does not follow {state.n}")
    op, by = statement["op"], statement["by"]
    if by not in state.members:  # (its key is one this client accepts for them: checked)
        raise ChainRefused("not_member", f"{by} is not a member")
    members, admins, name = dict(state.members), set(state.admins), state.name
    if op in ("add", "remove", "admin") and by not in state.admins:
        raise ChainRefused("not_admin", f"only an admin may {op}; {by} is not one")
    if op == "add":
        member = _name(statement["member"], "the member")
        if member in members:
            raise ChainRefused("already_member", f"{member} is a member already")
        if len(members) >= max_members:
            raise ChainRefused("too_many", f"a group holds at most {max_members} members")
        members[member] = statement["member_fingerprint"]
    elif op in ("remove", "admin"):
        member = statement["member"]
        if member not in members:
            raise ChainRefused("not_a_member", f"{member!r} is not a member")
        if op == "remove":
            if member == by:
                raise ChainRefused("shape", "a member leaves with a leave statement")
            del members[member]
            admins.discard(member)
        else:
            admins.add(member)
    elif op == "leave":
        del members[by]
        admins.discard(by)
    elif op == "rename":
        name = _name(statement["name"], "the group's name")
    head = statement_hash(statement)
    return GroupState(
        state.group, name, members, frozenset(admins), state.n + 1, head, (*state.hashes, head)
    )


def apply_statement(
    state: GroupState | None,
    statement: Any,
    key_of: KeyOf,
    max_members: int = MAX_MEMBERS,
) -> GroupState:
    """The group after ``statement`` (a create when ``state`` is None).

    :raises ChainRefused: with its reason: ``shape``, ``group``, ``order``, ``unknown_key``,
        ``signature``, ``not_member``, ``not_admin``, ``already_member``, ``not_a_member``,
        ``too_many``.
    """
    checked = _check_shape(statement)
    if state is None and checked["op"] != "create":
        raise ChainRefused("order", "a group's chain begins with its create statement")
    if state is not None and checked["op"] == "create":
        raise ChainRefused("order", "a group is created once")
    _check_signature(checked, key_of)
    if state is None:
        return _created(checked, max_members)
    return _changed(state, checked, max_members)


def verify_chain(
    statements: Sequence[Any],
    key_of: KeyOf,
    *,
    seen: GroupState | None = None,
    max_members: int = MAX_MEMBERS,
) -> GroupState:
    """The group a whole chain makes, checked statement by statement; with ``seen`` (what
    this client accepted before), the chain must extend it.

    :raises ChainFork: it does not extend ``seen`` (another statement at a number seen, or
        fewer statements than seen).
    :raises ChainRefused: a statement does not hold.
    """
    if not statements:
        raise ChainRefused("order", "a group's chain is never empty")
    state: GroupState | None = None
    for statement in statements:
        state = apply_statement(state, statement, key_of, max_members)
        if seen is not None and state.n <= seen.n and seen.hashes[state.n - 1] != state.head:
            raise ChainFork(
                "fork", f"the server's statement {state.n} is not the one this device saw"
            )
    assert state is not None  # noqa: S101 - the chain is not empty
    if seen is not None and state.n < seen.n:
        raise ChainFork(
            "rewound", f"the server serves {state.n} statements; this device saw {seen.n}"
        )
    return state


def group_safety_number(state: GroupState) -> str:
    """Sixty digits in twelve groups of five over the group's id and chain head: the same
    for every member who holds the same history."""
    digest = hashlib.sha512(
        b"\0".join(
            [SAFETY_CONTEXT, state.group.encode(), str(state.n).encode(), state.head.encode()]
        )
    ).digest()
    groups = [int.from_bytes(digest[i * 5 : i * 5 + 5], "big") % 100000 for i in range(12)]
    return " ".join(f"{g:05d}" for g in groups)


def replay_checked(
    statements: Sequence[Any], state: GroupState | None = None, max_members: int = MAX_MEMBERS
) -> GroupState:
    """The group a chain makes (from ``state`` on, when given), its statements' signatures
    taken as checked already: a server reading back the chain it stored after checking each
    statement as it came.  Shape, order, ids and rights are checked again; clients never use
    this: they verify with :func:`verify_chain`.

    :raises ChainRefused: a statement does not hold.
    """
    if state is None and not statements:
        raise ChainRefused("order", "a group's chain is never empty")
    for statement in statements:
        checked = _check_shape(statement)
        if (state is None) != (checked["op"] == "create"):
            raise ChainRefused("order", "a group's chain has one create statement, its first")
        if state is None:
            state = _created(checked, max_members)
        else:
            state = _changed(state, checked, max_members)
    assert state is not None  # noqa: S101 - statements or a state were given
    return state
