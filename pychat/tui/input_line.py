r"""The input line: text and cursor, history, and the editing operations the keys call.

Pure: no curses.  The cursor is an index into ``text`` (code points) that always sits on a
grapheme-cluster boundary: Left, Right, Backspace and Delete move over or remove what a person
sees as one character (🇯🇵, 👍🏽, é written as e + accent), never half of one.  The clusters
come from the ``regex`` module's ``\X`` (Unicode's segmentation rules, kept up to date there,
not in a table of ours).  What is shown is computed by :meth:`InputLine.view` from display
widths, so CJK and emoji stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from pychat.tui.width import char_width

#: One extended grapheme cluster (Unicode TR29), from the regex module.
_CLUSTER = regex.compile(r"\X", regex.DOTALL)

#: How a newline in a multi-line message is shown on the one-line input.
NEWLINE_MARK = "↵"
HISTORY_LIMIT = 200


@dataclass
class InputLine:
    """Editable text with a cursor and a history of sent lines."""

    text: str = ""
    cursor: int = 0
    history: list[str] = field(default_factory=list)
    _history_pos: int | None = None
    _draft: str = ""

    def insert(self, s: str) -> None:
        """Type ``s`` at the cursor (newlines allowed: multi-line messages)."""
        s = "".join(ch for ch in s if ch == "\n" or ch == "\t" or ord(ch) >= 32).replace(
            "\t", "    "
        )
        self.text = self.text[: self.cursor] + s + self.text[self.cursor :]
        self.cursor += len(s)

    def _boundaries(self) -> list[int]:
        """Every grapheme-cluster boundary of the text, 0 and ``len(text)`` included."""
        return [0, *(m.end() for m in _CLUSTER.finditer(self.text))]

    def _previous(self) -> int:
        return max((b for b in self._boundaries() if b < self.cursor), default=0)

    def _next(self) -> int:
        return min((b for b in self._boundaries() if b > self.cursor), default=len(self.text))

    def left(self) -> None:
        """One character (grapheme cluster) to the left."""
        self.cursor = self._previous()

    def right(self) -> None:
        """One character (grapheme cluster) to the right."""
        self.cursor = self._next()

    def home(self) -> None:
        self.cursor = 0

    def end(self) -> None:
        self.cursor = len(self.text)

    def backspace(self) -> None:
        """Remove the character (grapheme cluster) before the cursor, whole."""
        start = self._previous()
        self.text = self.text[:start] + self.text[self.cursor :]
        self.cursor = start

    def delete(self) -> None:
        """Remove the character (grapheme cluster) at the cursor, whole."""
        self.text = self.text[: self.cursor] + self.text[self._next() :]

    def kill_word(self) -> None:
        """Ctrl-W: delete the word before the cursor (and the spaces after it)."""
        i = self.cursor
        while i and self.text[i - 1].isspace():
            i -= 1
        while i and not self.text[i - 1].isspace():
            i -= 1
        self.text = self.text[:i] + self.text[self.cursor :]
        self.cursor = i

    def kill_to_start(self) -> None:
        """Ctrl-U: delete everything before the cursor."""
        self.text = self.text[self.cursor :]
        self.cursor = 0

    def history_prev(self) -> None:
        """Up: the previous sent line (the current text is kept as a draft)."""
        if not self.history:
            return
        if self._history_pos is None:
            self._draft = self.text
            self._history_pos = len(self.history)
        if self._history_pos > 0:
            self._history_pos -= 1
            self.text = self.history[self._history_pos]
            self.cursor = len(self.text)

    def history_next(self) -> None:
        """Down: the next sent line, then back to the draft."""
        if self._history_pos is None:
            return
        self._history_pos += 1
        if self._history_pos >= len(self.history):
            self._history_pos = None
            self.text = self._draft
        else:
            self.text = self.history[self._history_pos]
        self.cursor = len(self.text)

    def take(self) -> str:
        """Enter: the text (kept in history when not blank); the line is emptied."""
        text = self.text
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-HISTORY_LIMIT]
        self.text, self.cursor, self._history_pos, self._draft = "", 0, None, ""
        return text

    def view(self, width: int) -> tuple[str, int]:
        """What fits in ``width`` cells around the cursor, and the cursor's cell column.

        The view scrolls horizontally so the cursor is always visible.
        """
        shown = self.text.replace("\n", NEWLINE_MARK)
        width = max(1, width)
        # The view starts as far left as lets the cursor (and one cell for it) fit: walk back
        # from the cursor (one pass, so a long draft costs no more per key than a short one).
        start, cursor_x = self.cursor, 0
        while start > 0 and cursor_x + char_width(shown[start - 1]) < width:
            start -= 1
            cursor_x += char_width(shown[start])
        visible, used = "", 0
        for ch in shown[start:]:
            w = char_width(ch)
            if used + w > width:
                break
            visible += ch
            used += w
        # Mark the cut ends with "…" (never over the cursor's cell), keeping every width.
        if start > 0:
            visible = _mark_cut(visible, cursor_x, left=True)
        if start + len(visible) < len(shown):
            visible = _mark_cut(visible, used - cursor_x - 1, left=False)
        return visible, cursor_x


def _mark_cut(visible: str, room: int, *, left: bool) -> str:
    """``visible`` with its first (or last) cells replaced by ``…`` and padding, if the
    cells it covers (at least one) fit in ``room`` cells away from the cursor."""
    text = visible if left else visible[::-1]
    dropped, cells = 0, 0
    while dropped < len(text) and cells < 1:
        cells += char_width(text[dropped])
        dropped += 1
    if cells < 1 or cells > room:
        return visible
    mark = "…" + " " * (cells - 1)
    if left:
        return mark + text[dropped:]
    return text[dropped:][::-1] + mark[::-1]
