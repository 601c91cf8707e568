"""Usernames: one normal form, and the rules a name must follow.

The normal form is NFKC, then case-folded, then NFKC again (case folding can undo NFKC),
so "Alice", "ALICE" and full-width "Alice" (U+FF21...) are one account.  A name in normal
form is 3 to 32 characters, each a letter or digit (any script) or one of ``_ - .``; it
starts with a letter or digit; it does not mix scripts (Latin with Cyrillic, say; Japanese
and Korean script mixes are fine); and it is not reserved.  Uniqueness, file names and SRP's
identity I all use the normal form.

Two names that look alike (``alice`` and ``\u0430lice`` with a Cyrillic a, or ``alice`` and
``a1ice``) have the same :func:`skeleton`, after Unicode TR39: the server refuses a new name
whose skeleton is an existing account's.  The confusables come from the Unicode data that
``confusable-homoglyphs`` ships, not from a table of ours.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

from confusable_homoglyphs import categories

MIN_LENGTH = 3
MAX_LENGTH = 32
PUNCTUATION = frozenset("_-.")

#: Names people could mistake for the server or its operator.
RESERVED = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "server",
        "pychat",
        "support",
        "help",
        "moderator",
        "operator",
        "postmaster",
        "security",
        "nobody",
        "null",
        "everyone",
        "all",
        "anonymous",
        "guest",
    }
)


class UsernameError(ValueError):
    """The name breaks a rule; the message says which."""


def _allowed(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] == "L" or category == "Nd" or ch in PUNCTUATION


def normal_form(name: str) -> str:
    """The normal form of ``name``, without checking the rules (what SRP's I is made of)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


#: Scripts that one name may combine (TR39's "highly restrictive" level): Japanese and Korean
#: writing mixes Han with their own scripts.  Common (digits, punctuation) and Inherited
#: (combining marks) go with any script.
_SCRIPT_MIXES = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "HANGUL"}),
    frozenset({"HAN", "BOPOMOFO"}),
)
_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")


def scripts(name: str) -> frozenset[str]:
    """The scripts of ``name``'s characters, Common and Inherited left out."""
    return frozenset(categories.unique_aliases(name)) - _ANY_SCRIPT


def _order(ch: str) -> tuple[bool, int]:
    return (not ch.isascii(), ord(ch))


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Character -> its prototype.

    Confusable characters are joined into groups (transitively: if a looks like b and b like
    c, all three are one group), and each group is represented by its smallest member, ASCII
    first, or by the ASCII sequence it looks like, so every member maps to the same text.
    """
    raw = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        parent.setdefault(ch, ch)
        while parent[ch] != ch:
            parent[ch] = parent[parent[ch]]
            ch = parent[ch]
        return ch

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            low, high = sorted((ra, rb), key=_order)
            parent[high] = low

    multi: list[tuple[str, str]] = []
    for key, glyphs in raw.items():
        key = key.translate(_DIRECTION_MARKS)
        if len(key) != 1:
            continue
        for glyph in glyphs:
            text = glyph["c"].translate(_DIRECTION_MARKS)
            if len(text) == 1:
                join(key, text)
            elif text:
                multi.append((text, key))
    # TR39 writes some characters as several ASCII ones ("m" as "rn", "\u2171" as "ii"):
    # every member of such a group is written as the smallest of those sequences.
    spelled: dict[str, str] = {}
    for many, one in multi:
        if many.isascii():
            root = find(one)
            if root not in spelled or (len(many), many) < (len(spelled[root]), spelled[root]):
                spelled[root] = many
    return {ch: spelled.get(find(ch), find(ch)) for ch in parent}


def skeleton(name: str) -> str:
    """What ``name`` looks like: its normal form with each character replaced by the
    prototype of its confusables (TR39 section 4), so look-alike names compare equal."""
    prototypes = _prototypes()
    text = unicodedata.normalize("NFD", normal_form(name))
    return unicodedata.normalize("NFD", "".join(prototypes.get(ch, ch) for ch in text))


@lru_cache(maxsize=1)
def _reserved_skeletons() -> frozenset[str]:
    return frozenset(skeleton(name) for name in RESERVED)


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
    if normal in RESERVED or skeleton(normal) in _reserved_skeletons():
        raise UsernameError(f"the username {normal!r} is reserved (or looks like one that is)")
    found = scripts(normal)
    if len(found) > 1 and not any(found <= allowed for allowed in _SCRIPT_MIXES):
        raise UsernameError(
            "a username may not mix scripts that look alike "
            f"({' and '.join(sorted(found))}); write it in one script"
        )
    return normal
