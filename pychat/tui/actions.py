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
    from pychat.tui.app import TuiApp

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


def run_action(app: TuiApp, action: str) -> None:
    """Do what ``action`` names on the main screen."""
    if action in ACTIONS:
        ACTIONS[action](app)
    elif action in EDITS:
        getattr(app.model.input, EDITS[action])()
    elif action.startswith("select_"):
        conv = app.model.select_index(int(action[-1]) - 1)
        if conv is not None:
            app.guard(app.show(conv.peer))


def _submit(app: TuiApp) -> None:
    text = app.model.input.take()
    conv = app.model.current_conversation
    if conv is not None and conv.timer and not text.startswith("/"):
        # A disappearing conversation's lines are not kept in the input history either.
        if app.model.input.history and app.model.input.history[-1] == text:
            app.model.input.history.pop()
    if text.strip():
        app.guard(app.submit(text))
        if app.history_file is not None:
            try:
                save_history(app.history_file, app.model.input.history)
            except OSError as exc:
                app.model.tell(f"input history not saved: {exc.strerror}", error=True)


def _reconnect_now(app: TuiApp) -> None:
    """Ctrl-R: while disconnected, try again now instead of waiting out the backoff."""
    if app.client is not None and app.client.connection.state != "online":
        app.client.reconnector.retry_now()
        app.model.tell("reconnecting now…")


def _next_unread(app: TuiApp) -> None:
    """Alt-A: the next conversation with unread messages."""
    conv = app.model.next_unread()
    if conv is None:
        app.model.tell("no unread messages")
    else:
        app.guard(app.show(conv.peer))


def _bottom(app: TuiApp) -> None:
    """Ctrl-End: back to the newest message, following new ones again."""
    conv = app.model.current_conversation
    if conv is not None:
        conv.scroll = 0


def _end_or_bottom(app: TuiApp) -> None:
    """End: the end of the input line; pressed there while scrolled up, the newest message."""
    line, conv = app.model.input, app.model.current_conversation
    if line.cursor >= len(line.text) and conv is not None and conv.scroll:
        conv.scroll = 0
    else:
        line.end()


def _complete_or_next(app: TuiApp) -> None:
    """Tab: complete a command or a user name; on an empty line, the next conversation."""
    line = app.model.input
    if not line.text.strip():
        _cycle(1)(app)
        return
    names = [*app.model.conversations, app.model.me]
    if not app.model.completer.complete(line, COMMANDS, names):
        app.model.tell("nothing to complete")


def _cycle(direction: int) -> Callable[[TuiApp], None]:
    def cycle(app: TuiApp) -> None:
        conv = app.model.cycle(direction)
        if conv is not None:
            app.guard(app.show(conv.peer))

    return cycle


ACTIONS: dict[str, Callable[[TuiApp], None]] = {
    "newline": lambda app: app.model.input.insert("\n"),
    "submit": _submit,
    "next_conversation": _cycle(1),
    "complete_or_next": _complete_or_next,
    "prev_conversation": _cycle(-1),
    "scroll_up": lambda app: app.scroll(+1),
    "scroll_down": lambda app: app.scroll(-1),
    "redraw": lambda app: app.screen.clear(),
    "reconnect_now": lambda app: _reconnect_now(app),
    "bottom": _bottom,
    "end_or_bottom": _end_or_bottom,
    "next_unread": lambda app: _next_unread(app),
    "quit": lambda app: app.quit(),
    "help": lambda app: app.show_modal(Modal("Help", HELP)),
}
