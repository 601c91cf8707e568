"""Reactions and replies: messages about another message, bound to it by its seq and digest.

A reaction (``kind: "reaction"``, the emoji as its body) or a reply (``kind: "reply"``, with a
quote of the start of the message replied to) carries ``data = {"seq": N, "hash": D}`` in
its signed inner message, where ``D`` is :func:`message_digest` of the ciphertext the server
stores at ``seq``.  A receiver accepts it only if the server's message ``N`` in the same
conversation has that digest, so a reaction cannot be moved to another message by the server
(nor a reply's quote put under another one).  An empty reaction takes back an earlier one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import regex

from pychat.client.context import ClientContext
from pychat.client.errors import ClientError
from pychat.client.events import Reference
from pychat.wire.encoding import b64encode

#: The kinds that name another message.
REFERENCE_KINDS = frozenset({"reaction", "reply"})
#: A reply quotes at most this many characters of the message replied to.
QUOTE_LENGTH = 120
#: Digests remembered per client (seq by conversation), newest kept.
DIGEST_MEMORY = 20000
_ONE_GRAPHEME = regex.compile(r"\X")


def message_digest(ciphertext: str) -> str:
    """The digest reactions and replies name a message by: base64 SHA-256 of its ciphertext."""
    return b64encode(hashlib.sha256(ciphertext.encode()).digest())


def check_reaction(emoji: str) -> None:
    """A reaction is one emoji (one user-perceived character, a flag or skin tone included),
    or empty to take one back.

    :raises ClientError: anything else.
    """
    if emoji and (len(emoji) > 32 or len(_ONE_GRAPHEME.findall(emoji)) != 1 or emoji.isalnum()):
        raise ClientError(f"a reaction is one emoji, not {emoji!r}")


def parse_reference(kind: str, body: str, data: Any, seq: int) -> Reference | str:
    """The reference a message of ``kind`` carries, or why it is malformed."""
    if not isinstance(data, dict):
        return f"malformed {kind}: no reference to a message"
    target, digest, quote = data.get("seq"), data.get("hash"), data.get("quote")
    if not isinstance(target, int) or isinstance(target, bool) or not 0 < target < seq:
        return f"malformed {kind}: it must name an earlier message"
    if not isinstance(digest, str) or len(digest) != 44:
        return f"malformed {kind}: the message it names has no valid hash"
    if kind == "reply" and not (isinstance(quote, str) and len(quote) <= QUOTE_LENGTH + 1):
        return "malformed reply: no valid quote"
    if kind == "reaction":
        try:
            check_reaction(body)
        except ClientError:
            return "malformed reaction: not one emoji"
    return Reference(target, digest, quote if kind == "reply" else None)


def quote_of(text: str) -> str:
    """The start of ``text`` a reply quotes (cut with … when longer)."""
    first = " ".join(text.split())
    return first if len(first) <= QUOTE_LENGTH else first[:QUOTE_LENGTH] + "…"


class Digests:
    """The digest of each message seen, by (conversation, seq), and the server's copy of one
    not seen yet (fetched by its seq)."""

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx
        self._known: OrderedDict[tuple[str, int], str] = OrderedDict()
        #: The quotable start of each verified text seen (for replies made offline).
        self.quotes: dict[tuple[str, int], str] = {}

    def remember(self, conversation: str, seq: int, digest: str, text: str | None = None) -> None:
        """Note the digest of message ``seq`` (and the start of its text, to quote)."""
        self._known[(conversation, seq)] = digest
        if text is not None:
            self.quotes[(conversation, seq)] = quote_of(text)
        self._known.move_to_end((conversation, seq))
        while len(self._known) > DIGEST_MEMORY:
            old, _ = self._known.popitem(last=False)
            self.quotes.pop(old, None)

    def known(self, conversation: str, seq: int) -> str | None:
        """The digest of message ``seq`` if this client has seen it."""
        return self._known.get((conversation, seq))

    async def message(self, conversation: str, seq: int) -> dict[str, Any] | None:
        """The server's message ``seq`` of ``conversation`` (None if it has none)."""
        page = await self._ctx.request("history", conversation=conversation, after=seq - 1, limit=1)
        messages = page.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            if messages[0].get("seq") == seq and isinstance(messages[0].get("ciphertext"), str):
                return messages[0]
        return None

    async def digest(self, conversation: str, seq: int) -> str | None:
        """The digest of the server's message ``seq`` (None if it has none)."""
        known = self._known.get((conversation, seq))
        if known is not None:
            return known
        found = await self.message(conversation, seq)
        if found is None:
            return None
        digest = message_digest(found["ciphertext"])
        self.remember(conversation, seq, digest)
        return digest

    async def check(self, conversation: str, reference: Reference) -> str | None:
        """Why ``reference`` does not hold, or None when it names the server's message."""
        digest = await self.digest(conversation, reference.seq)
        if digest is None:
            return f"it names message #{reference.seq}, which the server does not have"
        if digest != reference.digest:
            return f"it names message #{reference.seq}, but that is not the message it was about"
        return None
