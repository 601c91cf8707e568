"""The thin curses layer: styles to attributes, and a :class:`Frame` onto the screen."""

from __future__ import annotations

import curses
import os
import sys
from collections.abc import Callable

from pychat.text.safe import visible
from pychat.tui.links import row_links
from pychat.tui.render import Frame
from pychat.tui.width import text_width

# style -> (foreground colour, bold) when colours are on; attributes alone otherwise
_COLOURS = {
    "title": (curses.COLOR_CYAN, True),
    "title-text": (curses.COLOR_CYAN, True),
    "status": (curses.COLOR_WHITE, False),
    "status-error": (curses.COLOR_RED, True),
    "me": (curses.COLOR_GREEN, True),
    "peer": (curses.COLOR_BLUE, True),
    "rejected": (curses.COLOR_RED, True),
    "marker": (curses.COLOR_YELLOW, True),
    "warning": (curses.COLOR_RED, True),
    "modal": (curses.COLOR_CYAN, False),
    "selected": (curses.COLOR_YELLOW, True),
    "unread": (curses.COLOR_WHITE, True),
    "prompt": (curses.COLOR_GREEN, True),
    "sep": (curses.COLOR_BLUE, False),
    "dim": (curses.COLOR_WHITE, False),
}
_PLAIN = {
    "title": curses.A_REVERSE | curses.A_BOLD,
    "status": curses.A_REVERSE,
    "status-error": curses.A_REVERSE | curses.A_BOLD,
    "me": curses.A_BOLD,
    "peer": curses.A_BOLD,
    "rejected": curses.A_BOLD | curses.A_UNDERLINE,
    "marker": curses.A_BOLD,
    "warning": curses.A_BOLD,
    "selected": curses.A_REVERSE,
    "unread": curses.A_BOLD,
    "prompt": curses.A_BOLD,
    "dim": curses.A_DIM,
    "title-text": curses.A_BOLD,
}


#: Synchronized output (DEC private mode 2026): a terminal that knows it shows everything
#: between the two as one update, so a frame never appears half drawn (over a slow SSH link
#: neither); terminals that do not know the mode ignore both sequences.
SYNC_BEGIN = b"\x1b[?2026h"
SYNC_END = b"\x1b[?2026l"


def to_terminal(data: bytes) -> None:
    """Write ``data`` to the terminal as it is, around curses (which has flushed its own)."""
    os.write(sys.stdout.fileno(), data)


def cells_text(text: str) -> str:
    """``text`` with each wide character followed by a placeholder, so that a character's
    index is its column (a link's place on screen)."""
    if text.isascii():
        return text
    cells = []
    for ch in text:
        width = text_width(ch)
        cells.append("" if width == 0 else ch + "\0" * (width - 1))
    return "".join(cells)


def colours_wanted(configured: bool) -> bool:
    """Colours when configured, the terminal has them, and NO_COLOR is not set."""
    return configured and not os.environ.get("NO_COLOR") and curses.has_colors()


class CursesView:
    """Copies frames to a curses window; with ``write`` (raw bytes to the terminal), each
    frame is one synchronized update."""

    def __init__(
        self,
        screen: curses.window,
        colours: bool,
        write: Callable[[bytes], object] | None = None,
    ) -> None:
        self.screen = screen
        self.colours = colours
        self._write = write
        self._attrs: dict[str, int] = {}
        #: Links in the text are drawn as OSC 8 hyperlinks (``links`` in the settings).
        self.links = True
        if colours:
            curses.start_color()
            try:
                curses.use_default_colors()
                background = -1
            except curses.error:
                background = curses.COLOR_BLACK
            for i, (style, (fg, bold)) in enumerate(_COLOURS.items(), start=1):
                curses.init_pair(i, fg, background)
                attr = curses.color_pair(i) | (curses.A_BOLD if bold else 0)
                if style in ("title", "status", "status-error", "selected"):
                    attr |= curses.A_REVERSE
                self._attrs[style] = attr
        else:
            self._attrs = dict(_PLAIN)

    def size(self) -> tuple[int, int]:
        """(height, width) of the screen."""
        height, width = self.screen.getmaxyx()
        return height, width

    def draw(self, frame: Frame) -> None:
        """Show ``frame``."""
        if self._write is None:
            self._draw(frame)
            return
        self._write(SYNC_BEGIN)
        try:
            self._draw(frame)
        finally:  # never leave the terminal holding back its screen
            self._write(SYNC_END)

    def _draw(self, frame: Frame) -> None:
        self.screen.erase()
        for y, row in enumerate(frame.rows[: frame.height]):
            x = 0
            for text, style in row:
                if not text:
                    continue
                # Frames are made visible when rendered; this is the last line of defence, so
                # that no control character (NUL makes addstr raise ValueError) ever reaches
                # curses or the terminal.
                text = visible(text)
                try:
                    self.screen.addstr(y, x, text, self._attrs.get(style, curses.A_NORMAL))
                except (curses.error, ValueError):
                    pass  # writing the bottom-right cell raises after drawing it
                x += text_width(text)
        if frame.cursor is not None:
            try:
                curses.curs_set(1)
                self.screen.move(*frame.cursor)
            except curses.error:
                pass
        else:
            try:
                curses.curs_set(0)
            except curses.error:
                pass
        self.screen.refresh()  # curses writes (and flushes) the whole update here
        if self._write is not None and self.links:
            self._links(frame)

    def _links(self, frame: Frame) -> None:
        """Draw the links curses just drew again as OSC 8 hyperlinks (the same characters
        in the same cells), then put the cursor back where the frame wants it."""
        out = b""
        for y, row in enumerate(frame.rows[: frame.height]):
            text = "".join(visible(t) for t, _ in row)
            if "://" in text or "mailto:" in text:
                out += row_links(y, cells_text(text))
        if out and self._write is not None:
            y, x = frame.cursor if frame.cursor is not None else (0, 0)
            self._write(b"\x1b7" + out + b"\x1b8" + f"\x1b[{y + 1};{x + 1}H".encode())
