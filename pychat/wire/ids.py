"""Identifiers both sides compute the same way."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

CONVERSATION_CONTEXT = b"pychat-conversation-v1"


def conversation_id(a: str, b: str) -> str:
    """The id of the conversation of users ``a`` and ``b`` (normal forms, any order).

    SHA-256 over ``"pychat-conversation-v1" 0x00 low 0x00 high`` (the two names sorted),
    first 32 hex digits.  Clients sign key envelopes over it, so they must know it before the
    server has stored the conversation.
    """
    low, high = sorted((a, b))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"\0".join([CONVERSATION_CONTEXT, low.encode(), high.encode()]))
    return digest.finalize().hex()[:32]


#: How a client names a group where it would name a peer: ``#`` and the group's id (``#`` is
#: never part of a username).
GROUP_MARK = "#"


def group_of(target: str) -> str | None:
    """The group id a target names (``#`` and the id), or None for a peer."""
    return target[1:] if target.startswith(GROUP_MARK) else None


def conversation_of(me: str, target: str) -> str:
    """The conversation a target names: a group's id, or the id of the pair of ``me`` and the
    peer (``target`` in normal form)."""
    group = group_of(target)
    return group if group is not None else conversation_id(me, target)
