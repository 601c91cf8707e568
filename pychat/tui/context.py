"""What the TUI's parts see of each other, as small protocols (the way the client library's
collaborators see :class:`~pychat.client.context.ClientContext`).

- :class:`ScreenHost` is what a screen gets from the running app (:class:`~pychat.tui.app.
  TuiApp`): drawing, boxes, guarded async work, the clock, quitting, and the switch from the
  login screen to the main screen.
- :class:`TuiContext` is what everything on the main screen gets (key actions, slash commands,
  client events, loading, search, the password box): the :class:`~pychat.tui.main_screen.
  MainScreen`, which always has a logged-in client, so none of them asks whether it has one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer

from pychat.client.config import ClientConfig
from pychat.tui.model import ChatModel, ConversationState, Modal

if TYPE_CHECKING:
    from pychat.client.session import ChatClient


class ScreenHost(Protocol):
    """The running app, as its screens see it."""

    home: Path
    config: ClientConfig
    #: A CA certificate to check the server with instead of pinning (``--ca``), or None.
    ca: Path | None

    def now(self) -> float:
        """Seconds since the epoch, from the app's clock (the reactor's; a fake in tests)."""

    def redraw(self) -> None:
        """Draw soon (several changes in one reactor turn draw once)."""

    def clear_screen(self) -> None:
        """Forget what the terminal shows and draw it all again."""

    def view_size(self) -> tuple[int, int]:
        """The terminal's (height, width)."""

    def guard(self, work: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> None:
        """Run async work; a failure shows in the status line and goes to the log."""

    def show_modal(self, modal: Modal) -> None:
        """Put a box over the screen (any key closes it)."""

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        """Show ``modal`` and wait for y or n."""

    def call_later(self, seconds: float, what: Callable[[], None]) -> None:
        """Run ``what`` after ``seconds`` on the app's clock."""

    def to_terminal(self, data: bytes) -> None:
        """Write an escape sequence to the terminal as it is (OSC 52, ...), between frames."""

    def suspended(self, run: Callable[[], None]) -> None:
        """Call ``run`` with the terminal given back (the full screen put away), then take
        it again and draw everything."""

    def quit(self) -> None:
        """End the program."""

    def logged_in(self, client: ChatClient, username: str) -> Awaitable[None]:
        """The login screen succeeded: switch to the main screen."""


class TuiContext(Protocol):
    """The main screen, as its parts see it: a logged-in client, the model it fills, and the
    app's means."""

    model: ChatModel
    client: ChatClient
    host: ScreenHost
    #: Where the input line's history is kept (None: not kept).
    history_file: Path | None
    #: A mark_read is on its way (one at a time).
    mark_read_pending: bool

    def redraw(self) -> None:
        """Draw soon."""

    def guard(self, work: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> None:
        """Run async work; a failure shows in the status line."""

    def show_modal(self, modal: Modal) -> None:
        """Put a box over the screen."""

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        """Show ``modal`` and wait for y or n."""

    def now(self) -> float:
        """Seconds since the epoch, from the app's clock."""

    def notify(self, peer: str) -> None:
        """Bell and desktop notification for a message from ``peer`` not on screen."""

    def show_key_change(self, peer: str, old: str, new: str) -> None:
        """The box shown when a peer's key changed unsigned."""

    async def show(self, peer: str) -> None:
        """Put ``peer``'s conversation on screen."""

    async def load_conversations(self) -> None:
        """Refresh the conversation list from the server."""

    async def submit(self, text: str) -> None:
        """What the user typed: a command, or a message to the conversation on screen."""

    async def send_text(self, conv: ConversationState, text: str, action: bool = False) -> None:
        """Send ``text`` in ``conv`` through the outbox."""

    def scroll(self, direction: int) -> None:
        """A page up (+1) or down (-1)."""
