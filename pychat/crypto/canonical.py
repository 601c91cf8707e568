"""Canonical JSON, the bytes that end-to-end signatures cover, and the numbers it may hold.

Version-1 messages carried their time as a float, written as Python's ``repr`` writes it; a
whole number then reads ``1764254400.0``, which JavaScript writes ``1764254400``, so other
languages could not rebuild the signed bytes.  From version 2 on, a signed object holds
integers only, each within JavaScript's exact range (``|n| <= 2**53 - 1``), and its canonical
form is the same in every language that sorts keys by code point (docs/e2e.md, "Canonical
JSON").
"""

from __future__ import annotations

import json
from typing import Any

#: The largest integer every JSON implementation reads exactly (an IEEE-754 double's 53 bits).
MAX_SAFE_INTEGER = 2**53 - 1


class NotPortable(ValueError):
    """A signed object holds a number other languages would write differently."""


def canonical(obj: Any) -> bytes:
    """Canonical JSON: keys sorted by code point, no spaces, UTF-8, minimal escapes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_portable(obj: Any) -> None:
    """Refuse a non-integer number, or an integer beyond ``MAX_SAFE_INTEGER``, anywhere in
    ``obj`` (the version-2 number rule).

    :raises NotPortable: naming the first such number.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                raise NotPortable(f"the integer {item} is beyond 2^53-1")
        elif isinstance(item, float):
            raise NotPortable(f"the number {item!r} is not an integer")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            raise NotPortable(f"a {type(item).__name__} has no JSON form")
