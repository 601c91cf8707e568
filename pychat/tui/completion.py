"""Tab completion of the word before the cursor: slash commands at the start of the line,
user names anywhere else.  Pure: no curses.

Tab completes to the first match (in sorted order) and a space; Tab again, with nothing typed
in between, replaces it with the next match, round and round.  Any other edit starts over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pychat.tui.input_line import InputLine


@dataclass
class _Cycle:
    """A completion in progress: where the word starts, its matches, which one is in."""

    start: int
    matches: list[str]
    index: int
    text: str  # the line as completion left it (anything else means the user typed)
    cursor: int


class Completer:
    """Completes the input line's word before the cursor."""

    def __init__(self) -> None:
        self._cycle: _Cycle | None = None

    def complete(self, line: InputLine, commands: Iterable[str], names: Iterable[str]) -> bool:
        """Complete (or step to the next match); return False when nothing matches."""
        cycle = self._cycle
        if cycle is not None and (line.text, line.cursor) == (cycle.text, cycle.cursor):
            cycle.index = (cycle.index + 1) % len(cycle.matches)
        else:
            before = line.text[: line.cursor]
            start = max(before.rfind(" "), before.rfind("\n")) + 1
            word = before[start:]
            if start == 0 and word.startswith("/") and not word.startswith("//"):
                pool = sorted({f"/{c}" for c in commands})
            else:
                pool = sorted(set(names))
            matches = [m for m in pool if m.startswith(word.lower() if word[:1] != "/" else word)]
            if not matches:
                self._cycle = None
                return False
            cycle = _Cycle(start, matches, 0, "", 0)
        self._replace(line, cycle)
        return True

    def _replace(self, line: InputLine, cycle: _Cycle) -> None:
        """Put the current match (and a space) in place of the word before the cursor."""
        word_end = line.cursor
        if self._cycle is cycle:  # stepping: the previous match and its space go
            word_end = cycle.cursor
        completed = cycle.matches[cycle.index] + " "
        rest = line.text[word_end:]
        line.text = line.text[: cycle.start] + completed + rest
        line.cursor = cycle.start + len(completed)
        cycle.text, cycle.cursor = line.text, line.cursor
        self._cycle = cycle
