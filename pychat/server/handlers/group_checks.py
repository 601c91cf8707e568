"""What the server checks of a group's statements and key epochs before storing them
(docs/e2e.md §7): each statement's place in the chain, its author's signature under their
current key, that its author is the caller, admin rights and that members added exist with
the keys named; each epoch made by the caller, who may make epochs, pinned to the chain as
it is, wrapped for exactly its members.  Members check everything again themselves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from pychat.crypto.group_chain import ChainRefused, GroupState, apply_statement
from pychat.crypto.group_envelopes import may_make_epochs
from pychat.crypto.identity import IdentityKeyError, parse_public_identity
from pychat.server.handlers.common import HandlerDeps
from pychat.server.handlers.envelope_checks import check_envelope
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bad_field


def key_of_accounts(
    deps: HandlerDeps,
) -> Callable[[str, str], ed25519.Ed25519PublicKey | None]:
    """A statement's key check as the server can make it: the author's current key."""

    def key_of(name: str, fingerprint: str) -> ed25519.Ed25519PublicKey | None:
        account = deps.accounts.get(name)
        if account is None or not account.key_history:
            return None
        if account.key_history[-1].get("fingerprint") != fingerprint:
            return None
        try:
            return parse_public_identity(account.public_keys).signing_key
        except IdentityKeyError:
            return None

    return key_of


def checked_statement(
    deps: HandlerDeps, me: str, state: GroupState | None, statement: dict[str, Any]
) -> GroupState:
    """The group after ``statement``, as far as the server can check it.

    :raises ProtocolError: ``bad_statement`` with the reason (docs/e2e.md §7's, or
        ``not_author``, ``unknown_user``).
    """
    if statement.get("by") != me:
        raise bad_statement("not_author", "a statement is made by the one who sends it")
    try:
        after = apply_statement(
            state, statement, key_of_accounts(deps), deps.config.group_member_limit
        )
    except ChainRefused as exc:
        raise bad_statement(exc.reason, str(exc), state) from None
    before = set() if state is None else set(state.members)
    for name in set(after.members) - before:  # each one added names their current key
        account = deps.accounts.get(name)
        if account is None:
            raise bad_statement("unknown_user", f"no user called {name!r}", state)
        if (
            not account.key_history
            or account.key_history[-1].get("fingerprint") != (after.members[name])
        ):
            raise bad_statement(
                "unknown_key", f"{name} is added with a key that is not theirs", state
            )
    return after


def bad_statement(reason: str, message: str, state: GroupState | None = None) -> ProtocolError:
    details: dict[str, Any] = {"reason": reason}
    if state is not None:
        details["n"] = state.n
    return ProtocolError(ErrorCode.BAD_STATEMENT, message, details=details)


def check_group_envelope(
    deps: HandlerDeps, me: str, state: GroupState, envelope: Mapping[str, Any], first: bool
) -> dict[str, Any]:
    """A group epoch's envelope as far as the server can check it: made by the caller, who
    may make epochs, pinned to the chain as ``state`` leaves it, wrapped for exactly its
    members (docs/e2e.md §7); its number and place are the store's to check."""
    placed = check_envelope(envelope, first, deps.config.max_group_envelope)
    if placed.get("v") != 1 or placed.get("group") != state.group:
        raise bad_field("envelope", "must be a version-1 envelope of this group")
    if placed.get("chain") != state.n or placed.get("head") != state.head:
        raise bad_field(
            "envelope", f"must be made for the chain as it is now (statement {state.n})"
        )
    members = placed.get("members")
    if not isinstance(members, dict) or set(members) != set(state.members):
        raise bad_field("envelope", "must be wrapped for exactly the group's members")
    if placed.get("creator") != me or not may_make_epochs(state, me):
        raise bad_field("envelope", "must be made by you, as one who may make the group's epochs")
    return placed
