"""The thin curses layer: styles to attributes, and a :class:`Frame` onto the screen."""

from __future__ import annotations

import curses
import os
import sys
from collections.abc import Callable

from pychat.text.safe import visible
from pychat.tui.links import row_links
from pychat.tui.picture_layer import PictureLayer
from pychat.tui.pictures import true_colour
from pychat.tui.render import Frame
from pychat.tui.themes import BOLD, REVERSE, UNDERLINE, Look, chosen
from pychat.tui.width import text_width

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
        theme: str = "terminal",
    ) -> None:
        self.screen = screen
        self.colours = colours
        self._write = write
        #: Links in the text are drawn as OSC 8 hyperlinks (``links`` in the settings).
        self.links = True
        #: Image previews, drawn over the blank cells curses leaves for them.
        self.pictures = PictureLayer(true_colour())
        palette = 0
        if colours:
            curses.start_color()
            curses.use_default_colors()
            palette = curses.COLORS
        self._attrs = self._attributes(chosen(theme, colours, palette))
        base = self._attrs.get("normal", curses.A_NORMAL)
        if base != curses.A_NORMAL:
            self.screen.bkgd(" ", base)  # the theme's background behind everything

    @staticmethod
    def _attributes(looks: dict[str, Look]) -> dict[str, int]:
        """A curses attribute per style (a colour pair each where the theme has colours)."""
        out: dict[str, int] = {}
        pairs: dict[tuple[int, int], int] = {}
        for style, look in looks.items():
            attr = curses.A_NORMAL
            if look.attrs & BOLD:
                attr |= curses.A_BOLD
            if look.attrs & REVERSE:
                attr |= curses.A_REVERSE
            if look.attrs & UNDERLINE:
                attr |= curses.A_UNDERLINE
            if (look.fg, look.bg) != (-1, -1):
                number = pairs.setdefault((look.fg, look.bg), len(pairs) + 1)
                curses.init_pair(number, look.fg, look.bg)
                attr |= curses.color_pair(number)
            out[style] = attr
        return out

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
        repaint = self._write is not None and self.pictures.changes(frame.pictures)
        if repaint:  # curses believes the cells under the old pictures blank: paint them
            for y in self.pictures.rows_to_repaint():
                if y < frame.height:
                    self.screen.redrawln(y, 1)
        self.screen.refresh()  # curses writes (and flushes) the whole update here
        if self._write is not None and self.links:
            self._links(frame)
        if repaint:
            self._put_back_cursor(frame, self.pictures.draw(frame.pictures))

    def _links(self, frame: Frame) -> None:
        """Draw the links curses just drew again as OSC 8 hyperlinks (the same characters
        in the same cells), then put the cursor back where the frame wants it."""
        out = b""
        for y, row in enumerate(frame.rows[: frame.height]):
            text = "".join(visible(t) for t, _ in row)
            if "://" in text or "mailto:" in text:
                out += row_links(y, cells_text(text))
        self._put_back_cursor(frame, out)

    def _put_back_cursor(self, frame: Frame, out: bytes) -> None:
        """Write ``out`` (which moves the cursor), then put the cursor and attributes back
        where curses left them."""
        if out and self._write is not None:
            y, x = frame.cursor if frame.cursor is not None else (0, 0)
            self._write(b"\x1b7" + out + b"\x1b8" + f"\x1b[{y + 1};{x + 1}H".encode())
