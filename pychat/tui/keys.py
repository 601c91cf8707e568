"""Turning what the terminal sends into named keys, and the key bindings table.

curses decodes the keys terminfo knows (arrows, PageUp, ...) into ``KEY_*`` codes; the rest
arrive as characters.  :class:`KeyDecoder` adds what curses leaves raw: Alt-combinations
(ESC followed by a key), bracketed paste (``ESC [200~ ... ESC [201~``), and control keys by
name.  Everything is a :class:`Key` with a name (``"ctrl-w"``, ``"alt-enter"``, ``"pgup"``,
``"char"`` ...), so bindings are a plain table.
"""

from __future__ import annotations

import curses
from dataclasses import dataclass

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"


@dataclass(frozen=True)
class Key:
    """One key press; ``text`` holds the character(s) for ``char`` and ``paste``."""

    name: str
    text: str = ""


_CURSES_NAMES = {
    curses.KEY_LEFT: "left",
    curses.KEY_RIGHT: "right",
    curses.KEY_UP: "up",
    curses.KEY_DOWN: "down",
    curses.KEY_HOME: "home",
    curses.KEY_END: "end",
    curses.KEY_BACKSPACE: "backspace",
    curses.KEY_DC: "delete",
    curses.KEY_PPAGE: "pgup",
    curses.KEY_NPAGE: "pgdn",
    curses.KEY_BTAB: "btab",
    curses.KEY_RESIZE: "resize",
    curses.KEY_ENTER: "enter",
    curses.KEY_F1: "f1",
    curses.KEY_F2: "f2",
}

_CONTROL_NAMES = {
    "\r": "enter",
    "\n": "enter",
    "\t": "tab",
    "\x7f": "backspace",
    "\x08": "backspace",
    "\x1b": "escape",
}

# CSI sequences curses may leave undecoded (depends on the terminal's terminfo entry).
_CSI_NAMES = {
    "A": "up",
    "B": "down",
    "C": "right",
    "D": "left",
    "H": "home",
    "F": "end",
    "Z": "btab",
    "1~": "home",
    "4~": "end",
    "7~": "home",
    "8~": "end",
    "3~": "delete",
    "5~": "pgup",
    "6~": "pgdn",
    "1;5F": "ctrl-end",
    "1;3F": "alt-end",
    "4;5~": "ctrl-end",
}


# Modified keys curses decodes by the terminal's terminfo (xterm's names: 5 is Ctrl, 3 Alt).
_TERMINFO_NAMES = {"kEND5": "ctrl-end", "kEND3": "alt-end"}


def _curses_name(code: int) -> str:
    if code in _CURSES_NAMES:
        return _CURSES_NAMES[code]
    try:
        terminfo = curses.keyname(code).decode("ascii", "replace")
    except (curses.error, ValueError):
        terminfo = ""
    return _TERMINFO_NAMES.get(terminfo, f"key-{code}")


def _control(ch: str) -> Key:
    if ch in _CONTROL_NAMES:
        return Key(_CONTROL_NAMES[ch])
    code = ord(ch)
    if code < 32:
        return Key("ctrl-" + chr(code + 96))
    return Key("char", ch)


class KeyDecoder:
    """Feed it what ``get_wch`` returned, in order; it returns the keys they make up."""

    def __init__(self) -> None:
        self._pending = ""  # an escape sequence not finished yet
        self._paste: list[str] | None = None

    def feed(self, items: list[str | int]) -> list[Key]:
        """Decode a batch (everything that was readable at once)."""
        keys: list[Key] = []
        for item in items:
            if isinstance(item, int):
                if self._paste is not None:
                    continue
                if item == curses.KEY_MOUSE:  # curses took the report's start (terminfo
                    self._pending = "\x1b[<"  # kmous): the rest follows as characters
                    continue
                keys.append(Key(_curses_name(item)))
                continue
            for ch in item:
                keys += self._char(ch)
        # An ESC with nothing after it in the same batch is the Escape key itself.
        if self._pending == "\x1b" and self._paste is None:
            self._pending = ""
            keys.append(Key("escape"))
        return keys

    def _char(self, ch: str) -> list[Key]:
        if self._pending:
            self._pending += ch
            return self._sequence()
        if ch == "\x1b":
            self._pending = ch
            return []
        if self._paste is not None:
            self._paste.append(ch)
            return []
        return [_control(ch)]

    def _sequence(self) -> list[Key]:
        seq = self._pending
        if len(seq) == 2 and seq[1] != "[" and seq[1] != "O":
            self._pending = ""
            if self._paste is not None:
                self._paste.append(seq)
                return []
            second = seq[1]
            if second in "\r\n":
                return [Key("alt-enter")]
            if second == "\x1b":
                self._pending = "\x1b"
                return [Key("escape")]
            return [Key("alt-" + second)]
        if len(seq) >= 3 and 0x40 <= ord(seq[-1]) <= 0x7E:  # final byte of CSI / SS3
            self._pending = ""
            if seq == PASTE_START:
                self._paste = []
                return []
            if seq == PASTE_END:
                text = "".join(self._paste or [])
                self._paste = None
                return [Key("paste", text.replace("\r\n", "\n").replace("\r", "\n"))]
            if self._paste is not None:
                self._paste.append(seq)
                return []
            if seq.startswith("\x1b[<"):  # a mouse report (SGR form): pychat.tui.mouse
                return [Key("mouse", seq[2:])]
            name = _CSI_NAMES.get(seq[2:])
            return [Key(name)] if name else []
        if len(seq) > 16:  # not a sequence we know; drop it rather than swallow input forever
            self._pending = ""
        return []


#: Main-screen bindings: key name -> action name (see TuiApp.ACTIONS).
BINDINGS: dict[str, str] = {
    "left": "cursor_left",
    "right": "cursor_right",
    "home": "cursor_home",
    "ctrl-a": "cursor_home",
    "end": "end_or_bottom",
    "ctrl-end": "bottom",
    "alt-end": "bottom",
    "ctrl-e": "cursor_end",
    "backspace": "delete_back",
    "delete": "delete_forward",
    "ctrl-d": "delete_forward",
    "ctrl-w": "delete_word",
    "ctrl-u": "delete_to_start",
    "up": "history_prev",
    "down": "history_next",
    "alt-enter": "newline",
    "enter": "submit",
    "tab": "complete_or_next",
    "btab": "prev_conversation",
    "pgup": "scroll_up",
    "pgdn": "scroll_down",
    "ctrl-l": "redraw",
    "ctrl-r": "reconnect_now",
    "alt-a": "next_unread",
    "resize": "redraw",
    "ctrl-c": "quit",
    "f1": "help",
    **{f"alt-{d}": f"select_{d}" for d in "123456789"},
}
