"""The input line's history kept across restarts: what this user typed (messages they sent
and commands), never what peers wrote.  One file beside the user's keystore, mode 0600.

A damaged or foreign file is not trusted: only a JSON list of strings is read back, cut to
:data:`~pychat.tui.input_line.HISTORY_LIMIT` lines of bounded length.
"""

from __future__ import annotations

import json
from pathlib import Path

from pychat.durable import write_atomic
from pychat.tui.input_line import HISTORY_LIMIT

#: Lines longer than this are not kept (a pasted wall of text is not worth recalling).
MAX_LINE = 4000


def history_path(keystore_path: Path) -> Path:
    """Where the input history of the keystore's user lives."""
    return keystore_path.with_name(keystore_path.stem + ".history.json")


def load_history(path: Path) -> list[str]:
    """The saved lines, oldest first ([] when there is no file or it is not ours)."""
    try:
        lines = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(lines, list):
        return []
    kept = [line for line in lines if isinstance(line, str) and 0 < len(line) <= MAX_LINE]
    return kept[-HISTORY_LIMIT:]


def save_history(path: Path, lines: list[str]) -> None:
    """Replace the saved history with ``lines`` (atomically, private to the user)."""
    kept = [line for line in lines if len(line) <= MAX_LINE][-HISTORY_LIMIT:]
    write_atomic(path, json.dumps(kept, ensure_ascii=False).encode("utf-8") + b"\n", 0o600)
