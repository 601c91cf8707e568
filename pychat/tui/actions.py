"""Main-screen key actions: :data:`pychat.tui.keys.BINDINGS` maps a key to an action name,
and :data:`ACTIONS` maps the name to what it does (line edits go to the input line)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pychat.tui.commands import COMMANDS
from pychat.tui.help import HELP
from pychat.tui.input_history import save_history
from pychat.tui.model import Modal

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

#: Action name -> the InputLine method it calls (also used on the login form's fields).
EDITS: dict[str, str] = {
    "cursor_left": "left",
    "cursor_right": "right",
    "cursor_home": "home",
    "cursor_end": "end",
    "end_or_bottom": "end",  # on the main screen ACTIONS has it first (see run_action)
    "delete_back": "backspace",
    "delete_forward": "delete",
    "delete_word": "kill_word",
    "delete_to_start": "kill_to_start",
    "history_prev": "history_prev",
    "history_next": "history_next",
}


def run_action(ctx: TuiContext, action: str) -> None:
    """Do what ``action`` names on the main screen."""
    if action in ACTIONS:
        ACTIONS[action](ctx)
    elif action in EDITS:
        getattr(ctx.model.input, EDITS[action])()
    elif action.startswith("select_"):
        conv = ctx.model.select_index(int(action[-1]) - 1)
        if conv is not None:
            ctx.guard(ctx.show(conv.peer))


def _submit(ctx: TuiContext) -> None:
    text = ctx.model.input.take()
    conv = ctx.model.current_conversation
    if conv is not None and conv.timer and not text.startswith("/"):
        # A disappearing conversation's lines are not kept in the input history either.
        if ctx.model.input.history and ctx.model.input.history[-1] == text:
            ctx.model.input.history.pop()
    if text.strip():
        ctx.guard(ctx.submit(text))
        if ctx.history_file is not None:
            try:
                save_history(ctx.history_file, ctx.model.input.history)
            except OSError as exc:
                ctx.model.tell(f"input history not saved: {exc.strerror}", error=True)


def _reconnect_now(ctx: TuiContext) -> None:
    """Ctrl-R: while disconnected, try again now instead of waiting out the backoff."""
    if ctx.client.connection.state != "online":
        ctx.client.reconnector.retry_now()
        ctx.model.tell("reconnecting now…")


def _next_unread(ctx: TuiContext) -> None:
    """Alt-A: the next conversation with unread messages."""
    conv = ctx.model.next_unread()
    if conv is None:
        ctx.model.tell("no unread messages")
    else:
        ctx.guard(ctx.show(conv.peer))


def _bottom(ctx: TuiContext) -> None:
    """Ctrl-End: back to the newest message, following new ones again."""
    conv = ctx.model.current_conversation
    if conv is not None:
        conv.scroll = 0


def _end_or_bottom(ctx: TuiContext) -> None:
    """End: the end of the input line; pressed there while scrolled up, the newest message."""
    line, conv = ctx.model.input, ctx.model.current_conversation
    if line.cursor >= len(line.text) and conv is not None and conv.scroll:
        conv.scroll = 0
    else:
        line.end()


def _complete_or_next(ctx: TuiContext) -> None:
    """Tab: complete a command or a user name; on an empty line, the next conversation."""
    line = ctx.model.input
    if not line.text.strip():
        _cycle(1)(ctx)
        return
    names = [*ctx.model.conversations, ctx.model.me]
    if not ctx.model.completer.complete(line, COMMANDS, names):
        ctx.model.tell("nothing to complete")


def _cycle(direction: int) -> Callable[[TuiContext], None]:
    def cycle(ctx: TuiContext) -> None:
        conv = ctx.model.cycle(direction)
        if conv is not None:
            ctx.guard(ctx.show(conv.peer))

    return cycle


ACTIONS: dict[str, Callable[[TuiContext], None]] = {
    "newline": lambda ctx: ctx.model.input.insert("\n"),
    "submit": _submit,
    "next_conversation": _cycle(1),
    "complete_or_next": _complete_or_next,
    "prev_conversation": _cycle(-1),
    "scroll_up": lambda ctx: ctx.scroll(+1),
    "scroll_down": lambda ctx: ctx.scroll(-1),
    "redraw": lambda ctx: ctx.host.clear_screen(),
    "reconnect_now": lambda ctx: _reconnect_now(ctx),
    "bottom": _bottom,
    "end_or_bottom": _end_or_bottom,
    "next_unread": lambda ctx: _next_unread(ctx),
    "quit": lambda ctx: ctx.host.quit(),
    "help": lambda ctx: ctx.show_modal(Modal("Help", HELP)),
}
