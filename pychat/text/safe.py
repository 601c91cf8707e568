"""Showing text that came from a peer or a server without letting it drive the terminal.

Everything a client receives is data.  Before any of it reaches a terminal (the CLI's output,
the TUI's screen, an error line on stderr) it goes through :func:`visible`, which turns every
character that a terminal would act on into a visible escape:

* C0 controls and DEL in caret notation: ESC is ``^[``, NUL ``^@``, CR ``^M``, DEL ``^?``;
* C1 controls, bidirectional overrides and isolates, line/paragraph separators, lone
  surrogates and noncharacters as ``<U+202E>``.

Newlines are kept only where the caller asks for them (:func:`visible_lines` splits on them
so each line can be marked as a continuation); tabs become spaces.  Emoji joiners and variation
selectors are kept: they are how 👍🏽 and 🇯🇵 are written, and they move no cursor.

For ``--json`` output :func:`json_line` keeps the text exact (JSON escapes it) and also escapes
the C1, bidi and surrogate code points that JSON itself would pass through raw.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Code points shown as ``<U+202E>``-style escapes: C1 controls, Arabic letter mark, LRM and
#: RLM, LRE..RLO, LRI..PDI, line and paragraph separators, lone surrogates, BOM, interlinear
#: annotations, and the noncharacters U+FFFE/U+FFFF.
_NAMED = (
    "\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
    "\ud800-\udfff\ufeff\ufff9-\ufffb\ufffe\uffff"
)
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f{_NAMED}]")
_UNSAFE_KEEP_NEWLINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f{_NAMED}]")
_JSON_UNSAFE = re.compile(f"[\x7f{_NAMED}]")
TAB = "    "


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def visible(text: str) -> str:
    """``text`` with every terminal-active character shown as a visible escape (one line)."""
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(_escape, text.replace("\t", TAB))


def visible_lines(text: str) -> list[str]:
    """``text`` split at its newlines, each line made :func:`visible` (CR shows as ``^M``)."""
    if not isinstance(text, str):
        text = str(text)
    return [_UNSAFE_KEEP_NEWLINE.sub(_escape, line) for line in text.replace("\t", TAB).split("\n")]


def is_visible(text: str) -> bool:
    """Whether ``text`` holds nothing that :func:`visible` would escape (newlines excepted)."""
    return _UNSAFE_KEEP_NEWLINE.search(text) is None


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(obj: Any) -> str:
    """One line of JSON, readable (non-ASCII kept) but with nothing a terminal acts on.

    JSON already escapes C0 controls; this also escapes DEL, C1, bidi controls and lone
    surrogates, so the output is valid UTF-8 and decodes to exactly ``obj``.
    """
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(obj, ensure_ascii=False))
