"""The TUI's themes: the terminal's own colours (attributes only: bold, reverse, underline,
readable on any background), and a dark and a light theme in the xterm 256-colour palette,
each chosen so every text stands out from its background by a contrast of at least 4.5
(WCAG AA; a test renders each one and measures it).  ``NO_COLOR`` or ``colours = false``
means the terminal's own (docs/tui.md, "Themes")."""

from __future__ import annotations

from dataclasses import dataclass

THEMES = ("terminal", "dark", "light")

BOLD, REVERSE, UNDERLINE = 1, 2, 4


@dataclass(frozen=True)
class Look:
    """How one style is drawn: xterm 256-colour foreground and background (-1: the
    terminal's own), and attributes (``BOLD | REVERSE | UNDERLINE``)."""

    fg: int = -1
    bg: int = -1
    attrs: int = 0


#: The terminal's own colours: only attributes.
TERMINAL: dict[str, Look] = {
    "normal": Look(),
    "title": Look(attrs=REVERSE | BOLD),
    "title-text": Look(attrs=BOLD),
    "status": Look(attrs=REVERSE),
    "status-error": Look(attrs=REVERSE | BOLD),
    "me": Look(attrs=BOLD),
    "peer": Look(attrs=BOLD),
    "rejected": Look(attrs=BOLD | UNDERLINE),
    "marker": Look(attrs=BOLD),
    "warning": Look(attrs=BOLD),
    "modal": Look(),
    "selected": Look(attrs=REVERSE),
    "unread": Look(attrs=BOLD),
    "prompt": Look(attrs=BOLD),
    "sep": Look(),
    "dim": Look(),
}


def _palette(base: tuple[int, int], **looks: Look) -> dict[str, Look]:
    fg, bg = base
    out = {name: Look(fg, bg) for name in TERMINAL}
    for name, look in looks.items():
        out[name.replace("_", "-")] = Look(look.fg, bg if look.bg == -1 else look.bg, look.attrs)
    return out


DARK = _palette(
    (252, 234),  # #d0d0d0 on #1c1c1c
    title=Look(234, 110, BOLD),  # on #87afd7
    title_text=Look(110, -1, BOLD),
    status=Look(252, 238),  # on #444444
    status_error=Look(231, 124, BOLD),  # white on #af0000
    me=Look(114, -1, BOLD),  # #87d787
    peer=Look(117, -1, BOLD),  # #87d7ff
    rejected=Look(210, -1, BOLD | UNDERLINE),  # #ff8787
    marker=Look(221, -1, BOLD),  # #ffd75f
    warning=Look(210, -1, BOLD),
    modal=Look(252, 236),  # on #303030
    selected=Look(234, 221, BOLD),
    unread=Look(231, -1, BOLD),
    prompt=Look(114, -1, BOLD),
    sep=Look(244),  # #808080: lines, not text
    dim=Look(246),  # #949494
)

LIGHT = _palette(
    (235, 255),  # #262626 on #eeeeee
    title=Look(255, 24, BOLD),  # on #005f87
    title_text=Look(24, -1, BOLD),
    status=Look(235, 252),  # on #d0d0d0
    status_error=Look(231, 124, BOLD),
    me=Look(22, -1, BOLD),  # #005f00
    peer=Look(18, -1, BOLD),  # #000087
    rejected=Look(124, -1, BOLD | UNDERLINE),  # #af0000
    marker=Look(94, -1, BOLD),  # #875f00
    warning=Look(124, -1, BOLD),
    modal=Look(235, 254),  # on #e4e4e4
    selected=Look(255, 24, BOLD),
    unread=Look(16, -1, BOLD),
    prompt=Look(22, -1, BOLD),
    sep=Look(243),  # #767676: lines, not text
    dim=Look(241),  # #626262
)

LOOKS = {"terminal": TERMINAL, "dark": DARK, "light": LIGHT}


def chosen(theme: str, colours: bool, palette_size: int) -> dict[str, Look]:
    """The looks to draw with: ``theme`` when colours are wanted and the terminal has the
    256 colours it needs, else the terminal's own."""
    if not colours or palette_size < 256:
        return TERMINAL
    return LOOKS.get(theme, TERMINAL)
