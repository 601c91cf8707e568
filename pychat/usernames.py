"""Usernames: one normal form, and the rules a name must follow.

The normal form is NFKC, then case-folded, then NFKC again (case folding can undo NFKC),
so "Alice", "ALICE" and full-width "Alice" (U+FF21...) are one account.  A name in normal
form is 3 to 32 characters, each a letter or digit (any script) or one of ``_ - .``; it
starts with a letter or digit; and it is not reserved.  Uniqueness, file names and SRP's
identity I all use the normal form.
"""

from __future__ import annotations

import unicodedata

MIN_LENGTH = 3
MAX_LENGTH = 32
PUNCTUATION = frozenset("_-.")

#: Names people could mistake for the server or its operator.
RESERVED = frozenset(
    {
        "admin", "administrator", "root", "system", "server", "pychat", "support", "help",
        "moderator", "operator", "postmaster", "security", "nobody", "null", "everyone",
        "all", "anonymous", "guest",
    }
)  # fmt: skip


class UsernameError(ValueError):
    """The name breaks a rule; the message says which."""


def _allowed(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] == "L" or category == "Nd" or ch in PUNCTUATION


def normal_form(name: str) -> str:
    """The normal form of ``name``, without checking the rules (what SRP's I is made of)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def normalize(name: str) -> str:
    """The normal form of ``name``, checked against the rules.

    :raises UsernameError: the name is too short or long, has a character outside letters,
        digits and ``_ - .``, starts with punctuation, or is reserved.
    """
    normal = normal_form(name)
    if not MIN_LENGTH <= len(normal) <= MAX_LENGTH:
        raise UsernameError(f"a username has {MIN_LENGTH} to {MAX_LENGTH} characters")
    bad = sorted({ch for ch in normal if not _allowed(ch)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise UsernameError(f"a username may only hold letters, digits and _ - . (not {shown})")
    if normal[0] in PUNCTUATION:
        raise UsernameError("a username starts with a letter or a digit")
    if normal in RESERVED:
        raise UsernameError(f"the username {normal!r} is reserved")
    return normal
