"""The mouse, when ``mouse = true`` in the settings (off by default, so that the terminal's own
selection keeps working): the wheel scrolls the messages, a click on a conversation in the
list shows it.  The terminal reports in SGR form (modes 1000 and 1006): ``ESC [ < b ; x ; y M``
(a press) or ``m`` (a release), columns and rows from 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pychat.tui.render import FULL_HEIGHT, FULL_WIDTH, LIST_WIDTH

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

#: Turn reporting on (presses, releases and the wheel, in SGR form) and off again.
MOUSE_ON = b"\x1b[?1000h\x1b[?1006h"
MOUSE_OFF = b"\x1b[?1006l\x1b[?1000l"
#: Rows above the first conversation in the list: the title and the list's heading.
LIST_TOP = 2
WHEEL_UP, WHEEL_DOWN = 64, 65


def parse(report: str) -> tuple[int, int, int, bool] | None:
    """(button, column, row, pressed) of a report ``<b;x;y`` + ``M``/``m`` (0-based column
    and row), or None when it is not one."""
    if not report.startswith("<") or report[-1:] not in ("M", "m"):
        return None
    parts = report[1:-1].split(";")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    button, x, y = (int(p) for p in parts)
    return button, x - 1, y - 1, report.endswith("M")


def on_mouse(ctx: TuiContext, report: str) -> None:
    """What a mouse report does on the main screen."""
    parsed = parse(report)
    if parsed is None:
        return
    button, x, y, pressed = parsed
    if button == WHEEL_UP:
        ctx.scroll(+1)
    elif button == WHEEL_DOWN:
        ctx.scroll(-1)
    elif button == 0 and pressed:
        height, width = ctx.host.view_size()
        full = width >= FULL_WIDTH and height >= FULL_HEIGHT
        index = y - LIST_TOP
        order = ctx.model.ordered()
        if full and x < LIST_WIDTH and 0 <= index < len(order):
            ctx.guard(ctx.show(order[index].peer))
