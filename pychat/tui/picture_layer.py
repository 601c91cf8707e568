"""The pictures on the terminal, kept apart from curses: curses draws blank cells where a
preview goes and knows nothing of what is drawn over them, so this layer remembers what it
drew, tells the view which rows curses must paint again when a picture moves or goes (curses
thinks those cells blank already), and writes the pictures of each frame that changes them."""

from __future__ import annotations

from pychat.tui.pictures import (
    Placed,
    block_row,
    kitty_forget_all,
    kitty_hide,
    kitty_place,
    kitty_send,
)


class PictureLayer:
    """What pictures the terminal shows, and the bytes that bring it to a frame's."""

    def __init__(self, true_colour: bool) -> None:
        self.true_colour = true_colour
        self.shown: list[Placed] = []
        #: Kitty pictures the terminal holds already (by number).
        self._sent: set[int] = set()
        #: Everything was painted again (a resize, the editor): draw the pictures again.
        self._stale = False

    def forget(self) -> None:
        """The whole screen is being painted again: nothing of ours is left on it."""
        self._stale = True

    def changes(self, placed: list[Placed]) -> bool:
        """Whether ``placed`` differs from what is shown."""
        return self._stale or placed != self.shown

    def rows_to_repaint(self) -> list[int]:
        """The screen rows the shown pictures cover (to be painted again by curses before
        new pictures go over them)."""
        rows: set[int] = set()
        for place in self.shown:
            height = 1 if place.picture.mode == "blocks" else place.picture.rows
            rows.update(range(place.y, place.y + height))
        return sorted(rows)

    def draw(self, placed: list[Placed]) -> bytes:
        """The bytes that show ``placed`` (cursor moves included; the caller saves and puts
        back the cursor), after curses painted the rows the old ones covered."""
        out = bytearray()
        numbers = {p.picture.number for p in placed if p.picture.mode == "kitty"}
        for place in self.shown:
            if place.picture.mode == "kitty" and place.picture.number not in numbers:
                out += kitty_hide(place.picture.number)
        for place in placed:
            out += b"\x1b[%d;%dH" % (place.y + 1, place.x + 1)
            picture = place.picture
            if picture.mode == "blocks":
                out += block_row(picture, place.row, self.true_colour)
            elif picture.mode == "kitty":
                if picture.number not in self._sent:
                    out += kitty_send(picture)
                    self._sent.add(picture.number)
                out += kitty_place(picture)
            else:
                out += picture.data  # a sixel image, drawn from the cursor down
        self.shown = list(placed)
        self._stale = False
        return bytes(out)

    def clear(self) -> bytes:
        """The bytes that take every kitty picture away (at quit)."""
        return kitty_forget_all() if self._sent else b""
