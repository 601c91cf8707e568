"""A conversation as one member sees it (in lists, replies and pushes), and the lookup every
op that names a conversation makes: to anyone but its members it does not exist."""

from __future__ import annotations

from pychat.server.handlers.common import HandlerDeps
from pychat.store.conversation import Conversation
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.shapes import GroupSummary, Summary


def member_conversation(deps: HandlerDeps, username: str, conversation_id: str) -> Conversation:
    """The conversation if ``username`` is a member; to anyone else it does not exist."""
    conv = deps.conversations.get(conversation_id)
    if conv is None or username not in conv.members:
        raise ProtocolError(ErrorCode.UNKNOWN_CONVERSATION, "no such conversation among yours")
    return conv


def summary(deps: HandlerDeps, conv: Conversation, username: str) -> Summary | GroupSummary:
    """A conversation as ``username`` sees it: a pair's with its peer, a group's with its
    members (its name is in its chain, which members verify)."""
    if conv.group is not None:
        return group_summary(deps, conv, username)
    return pair_summary(deps, conv, username)


def pair_summary(deps: HandlerDeps, conv: Conversation, username: str) -> Summary:
    """A pair's conversation as one of the two sees it."""
    peer = conv.peer_of(username)
    return {
        "conversation": conv.id,
        "peer": peer,
        "last_seq": conv.last_seq,
        "read": conv.read.get(username, 0),
        "unread": conv.unread(username),
        "last_activity": conv.last_activity,
        "epochs": len(conv.epochs),
        "peer_online": deps.presence.visible_online(peer),
        "damaged": conv.damaged is not None,
    }


def group_summary(deps: HandlerDeps, conv: Conversation, username: str) -> GroupSummary:
    """A group as ``username`` sees it."""
    assert conv.group is not None  # noqa: S101 - the callers hold groups
    return {
        "conversation": conv.id,
        "group": True,
        "members": list(conv.members),
        "admins": sorted(conv.group.state.admins),
        "chain": conv.group.state.n,
        "awaits_epoch": conv.awaits_epoch,
        "online": [m for m in conv.members if deps.presence.visible_online(m)],
        "last_seq": conv.last_seq,
        "read": conv.read.get(username, 0),
        "unread": conv.unread(username),
        "last_activity": conv.last_activity,
        "epochs": len(conv.epochs),
        "damaged": conv.damaged is not None,
    }
