"""Image previews on the terminal: which way this terminal draws pictures, and the bytes that
draw one (already decoded and scaled by :mod:`pychat.tui.image_worker`) at a place on screen.

Three ways, the best the terminal has: the kitty graphics protocol (kitty, WezTerm,
Ghostty), sixel (foot, mlterm, contour, xterm started as a VT340, iTerm2), and everywhere
else Unicode half blocks (``▀``, the upper pixel in the foreground colour, the lower one in
the background), in 24-bit colour where the terminal says it has it, else the 256-colour
palette. Inside tmux, where the first two do not get through, half blocks.
"""

from __future__ import annotations

import base64
import fcntl
import os
import struct
import sys
import termios
from collections.abc import Mapping
from dataclasses import dataclass

#: The largest preview, in cells.
MAX_COLS = 40
MAX_ROWS = 10
#: A cell's size in pixels when the terminal does not say.
DEFAULT_CELL = (10, 20)
#: Bytes of a kitty graphics payload per escape sequence (the protocol's limit).
KITTY_CHUNK = 4096

_KITTY_PROGRAMS = {"WezTerm", "ghostty"}
_SIXEL_TERMS = ("foot", "mlterm", "contour", "yaft")


@dataclass(frozen=True)
class Picture:
    """A decoded preview: how it is drawn, its size in cells and its payload (RGB pixels, two
    per cell, for ``blocks``; a PNG for ``kitty``; a sixel image for ``sixel``)."""

    mode: str
    cols: int
    rows: int
    data: bytes
    #: The kitty image number it is sent under (once), then placed by.
    number: int = 0


def drawing_mode(setting: str, env: Mapping[str, str] | None = None) -> str:
    """How previews are drawn: the setting, or with ``auto`` what the terminal says it is;
    ``off`` for none."""
    if setting != "auto":
        return setting
    env = os.environ if env is None else env
    if env.get("TMUX"):
        return "blocks"
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if term == "xterm-kitty" or env.get("KITTY_WINDOW_ID") or program in _KITTY_PROGRAMS:
        return "kitty"
    if term.startswith(_SIXEL_TERMS) or program == "iTerm.app":
        return "sixel"
    return "blocks"


def cell_pixels() -> tuple[int, int]:
    """A cell's (width, height) in pixels, from the terminal's window size report."""
    try:
        packed = fcntl.ioctl(sys.stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols, width, height = struct.unpack("HHHH", packed)
    except OSError:
        return DEFAULT_CELL
    if not (rows and cols and width and height):
        return DEFAULT_CELL
    return max(1, width // cols), max(1, height // rows)


def true_colour(env: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal says it has 24-bit colour (``COLORTERM``)."""
    env = os.environ if env is None else env
    return env.get("COLORTERM", "").lower() in ("truecolor", "24bit")


def _palette_index(r: int, g: int, b: int) -> int:
    """The nearest colour of the 256-colour palette's 6x6x6 cube or grey ramp."""
    levels = (0, 95, 135, 175, 215, 255)

    def nearest(v: int) -> int:
        return min(range(6), key=lambda i: abs(levels[i] - v))

    cube = (nearest(r), nearest(g), nearest(b))
    cube_rgb = tuple(levels[i] for i in cube)
    grey = min(23, max(0, round((r + g + b) / 3 - 8) // 10))
    grey_v = 8 + grey * 10
    cube_d = sum((a - c) ** 2 for a, c in zip((r, g, b), cube_rgb, strict=True))
    grey_d = sum((a - grey_v) ** 2 for a in (r, g, b))
    if grey_d < cube_d:
        return 232 + grey
    return 16 + 36 * cube[0] + 6 * cube[1] + cube[2]


def _colour(rgb: tuple[int, int, int], ground: int, true: bool) -> bytes:
    if true:
        return b"%d;2;%d;%d;%d" % (ground, *rgb)
    return b"%d;5;%d" % (ground, _palette_index(*rgb))


def block_row(picture: Picture, row: int, true: bool) -> bytes:
    """Row ``row`` of a half-block picture: ``cols`` cells of ``▀`` coloured with the two
    pixels each stands for, ending in the terminal's plain attributes."""
    width = picture.cols
    top = picture.data[row * 2 * width * 3 : (row * 2 + 1) * width * 3]
    bottom = picture.data[(row * 2 + 1) * width * 3 : (row * 2 + 2) * width * 3]
    out = bytearray()
    last: tuple[bytes, bytes] | None = None
    for x in range(width):
        up = (top[x * 3], top[x * 3 + 1], top[x * 3 + 2])
        down = (bottom[x * 3], bottom[x * 3 + 1], bottom[x * 3 + 2])
        colours = (_colour(up, 38, true), _colour(down, 48, true))
        if colours != last:
            out += b"\x1b[" + colours[0] + b";" + colours[1] + b"m"
            last = colours
        out += "▀".encode()
    return bytes(out) + b"\x1b[0m"


def kitty_send(picture: Picture) -> bytes:
    """Send a kitty picture's PNG to the terminal under its number, not shown yet."""
    payload = base64.b64encode(picture.data)
    chunks = [payload[i : i + KITTY_CHUNK] for i in range(0, len(payload), KITTY_CHUNK)]
    out = bytearray()
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        keys = b"a=t,f=100,q=2,i=%d,m=%d" % (picture.number, more) if i == 0 else b"m=%d" % more
        out += b"\x1b_G" + keys + b";" + chunk + b"\x1b\\"
    return bytes(out)


def kitty_place(picture: Picture) -> bytes:
    """Show a sent kitty picture at the cursor, over its cells, the cursor left where it was
    (one placement per picture: placing it again moves it)."""
    return b"\x1b_Ga=p,q=2,i=%d,p=1,c=%d,r=%d,C=1\x1b\\" % (
        picture.number,
        picture.cols,
        picture.rows,
    )


def kitty_hide(number: int) -> bytes:
    """Take kitty picture ``number`` off the screen (the terminal keeps it for later)."""
    return b"\x1b_Ga=d,d=i,q=2,i=%d\x1b\\" % number


def kitty_forget_all() -> bytes:
    """Take every picture off the screen and out of the terminal's memory (at quit)."""
    return b"\x1b_Ga=d,d=A,q=2\x1b\\"


@dataclass(frozen=True)
class Placed:
    """A picture on screen: its top-left cell, and for half blocks the one row of it drawn
    there (a whole picture otherwise, ``row`` 0)."""

    y: int
    x: int
    picture: Picture
    row: int = 0
