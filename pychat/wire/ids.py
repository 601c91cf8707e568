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
