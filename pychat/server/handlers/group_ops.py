"""Group ops: ``group_create`` and ``group_change`` (docs/protocol.md, "Groups").

A group's conversation is a conversation with more members, whose membership is a chain of
signed statements (docs/e2e.md §7).  The server checks what it can of each statement before
storing it (its place in the chain, its author's signature under their current key, the
author is the caller, admin rights, the members exist) and of the key epoch that comes with a
change (pinned to the new chain point, wrapped for exactly its members, made by the caller,
who may make epochs); members check everything again themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pychat.crypto.group_chain import GroupState
from pychat.server.handlers.common import CONVERSATION_ID_MAX, HandlerDeps, OpDef, current_user
from pychat.server.handlers.envelope_checks import refused_epoch
from pychat.server.handlers.group_checks import (
    bad_statement,
    check_group_envelope,
    checked_statement,
)
from pychat.server.handlers.summaries import group_summary, member_conversation
from pychat.server.ops import OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.store.conversation import ChainMoved, Conversation, EpochRefused
from pychat.wire.schema import bad_field, bounded

#: Statements that must come with the key epoch they begin, and those that never do (the one
#: who leaves cannot make an epoch for the others: a remaining admin's client does).
NEEDS_EPOCH = ("create", "add", "remove")
NO_EPOCH = ("leave",)


@dataclass(frozen=True)
class CreateParams:
    """``group_create``: the create statement and the group's first key envelope."""

    statement: dict[str, Any] = bounded()
    envelope: dict[str, Any] = bounded()


@dataclass(frozen=True)
class ChangeParams:
    """``group_change``: the next statement of a group's chain, and the epoch it begins."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    statement: dict[str, Any] = bounded()
    envelope: dict[str, Any] | None = None


def tell_members(
    deps: HandlerDeps,
    ctx: OpContext,
    conv: Conversation,
    readers: set[str],
    event: Mapping[str, Any],
) -> None:
    """Push a change of the group to ``readers`` (each with their own summary), the caller's
    own connection excepted."""
    for name in sorted(readers):
        payload = {**event, "conversation": group_summary(deps, conv, name)}
        if name not in conv.members:
            payload["conversation"] = {**payload["conversation"], "removed": True}
        deps.presence.push_to_user(name, "group", payload, skip=ctx)


async def group_create(deps: HandlerDeps, ctx: OpContext, params: CreateParams) -> dict[str, Any]:
    """A new group with its first epoch; every member hears of it."""
    me = current_user(ctx)
    state = checked_statement(deps, me, None, params.statement)
    envelope = check_group_envelope(deps, me, state, params.envelope, first=True)
    if deps.conversations.get(state.group) is not None:
        raise bad_statement("order", "that group exists already", None)
    try:
        conv = await deps.conversations.create_group(
            params.statement, state, envelope, deps.clock.seconds()
        )
    except ValueError:
        raise bad_statement("order", "that group exists already", None) from None
    event = {"statements": [params.statement], "envelope": envelope}
    tell_members(deps, ctx, conv, set(conv.members), event)
    return {**group_summary(deps, conv, me), "statements": [params.statement]}


async def group_change(deps: HandlerDeps, ctx: OpContext, params: ChangeParams) -> dict[str, Any]:
    """The next statement of a group (with the epoch it begins); the members before and
    after it hear of it."""
    me = current_user(ctx)
    conv = member_conversation(deps, me, params.conversation)
    if conv.group is None:
        raise bad_field("conversation", "must be a group")
    state = checked_statement(deps, me, conv.group.state, params.statement)
    envelope = _change_envelope(deps, me, state, params)
    readers = set(conv.members) | set(state.members)
    try:
        await deps.conversations.change_group(
            conv, params.statement, state, envelope, deps.clock.seconds()
        )
    except ChainMoved as exc:
        raise bad_statement("order", str(exc), conv.group.state) from None
    except EpochRefused as exc:
        raise refused_epoch(exc) from None
    event: dict[str, Any] = {"statements": [params.statement]}
    if envelope is not None:
        event["envelope"] = envelope
    tell_members(deps, ctx, conv, readers, event)
    if me not in conv.members:  # left: nothing of the group is theirs to see any more
        return {"conversation": conv.id, "left": True}
    return {**group_summary(deps, conv, me)}


def _change_envelope(
    deps: HandlerDeps, me: str, state: GroupState, params: ChangeParams
) -> dict[str, Any] | None:
    op = params.statement["op"]
    if op in NEEDS_EPOCH and params.envelope is None:
        raise bad_field("envelope", f"a {op} statement comes with the key epoch it begins")
    if op in NO_EPOCH and params.envelope is not None:
        raise bad_field("envelope", "one who leaves makes no epoch: an admin's client does")
    if params.envelope is None:
        return None
    return check_group_envelope(deps, me, state, params.envelope, first=False)


_LOGGED_IN = stay_in(*LOGGED_IN)

OPS = (
    OpDef("group_create", CreateParams, _LOGGED_IN, group_create),
    OpDef("group_change", ChangeParams, _LOGGED_IN, group_change),
)
