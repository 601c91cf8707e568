"""Display width of text in terminal cells: CJK and emoji take two, combining marks none."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Zero-width characters that are not combining marks (ZWJ, variation selectors, ...).
_ZERO_WIDTH = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF} | set(range(0xFE00, 0xFE10))


@lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Cells ``ch`` takes: 0, 1 or 2 (control characters count as 0)."""
    code = ord(ch)
    if code < 32 or 0x7F <= code < 0xA0:
        return 0
    if code in _ZERO_WIDTH or unicodedata.combining(ch):
        return 0
    category = unicodedata.category(ch)
    if category in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def text_width(text: str) -> int:
    """Cells the whole of ``text`` takes."""
    if text.isascii() and text.isprintable():  # the common case: one cell a character
        return len(text)
    return sum(map(char_width, text))


def clip(text: str, width: int) -> str:
    """The longest prefix of ``text`` that fits in ``width`` cells."""
    used = 0
    for i, ch in enumerate(text):
        w = char_width(ch)
        if used + w > width:
            return text[:i]
        used += w
    return text


def pad(text: str, width: int) -> str:
    """``text`` clipped or padded with spaces to exactly ``width`` cells."""
    clipped = clip(text, width)
    return clipped + " " * (width - text_width(clipped))


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells: newlines are kept, long lines break at spaces when
    they can and mid-word when a word is longer than a line."""
    width = max(1, width)
    out: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0
        for word in _words(paragraph):
            w = text_width(word)
            if used + w <= width:
                line, used = line + word, used + w
                continue
            if line.strip():
                out.append(line.rstrip())
            line, used = "", 0
            word = word.lstrip(" ")
            # A word longer than a line is cut into line-sized pieces, each measured once
            # (a hostile peer's 30,000-character word must not cost a redraw seconds).
            head = clip(word, width)
            while len(head) < len(word):
                head = head or word[0]
                out.append(head)
                word = word[len(head) :]
                head = clip(word, width)
            line, used = word, text_width(word)
        out.append(line.rstrip() if line.strip() else line[:0])
    return out


def _words(text: str) -> list[str]:
    """Split keeping each word's leading spaces with it."""
    words: list[str] = []
    current = ""
    for ch in text:
        if ch == " " and current.strip():
            words.append(current)
            current = ""
        current += ch
    if current:
        words.append(current)
    return words
