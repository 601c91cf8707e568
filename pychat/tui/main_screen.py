"""The main screen: conversations, messages and the input line of one logged-in user.

:class:`MainScreen` is built once the login screen succeeded, with the logged-in client, so
everything on it (key actions, slash commands, client events, loading, search, the password
box) sees a :class:`~pychat.tui.context.TuiContext` whose client is always there.  A key
press goes: the app's decoder, then :meth:`MainScreen.key` (search first, then typing, then
the binding's action in :mod:`pychat.tui.actions`); Enter submits to :meth:`submit`, which
runs a slash command (:mod:`pychat.tui.commands`) or sends through the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from pychat.client.session import ChatClient, ClientEvent
from pychat.tui import loading
from pychat.tui.actions import run_action
from pychat.tui.client_events import handle_event, outbox_item
from pychat.tui.commands import run_command
from pychat.tui.compose import compose
from pychat.tui.context import ScreenHost
from pychat.tui.input_history import history_path, load_history
from pychat.tui.keys import BINDINGS, Key
from pychat.tui.model import ChatModel, ConversationState, Modal
from pychat.tui.mouse import on_mouse
from pychat.tui.notifications import notify
from pychat.tui.pictures import cell_pixels, drawing_mode
from pychat.tui.previews import Previews
from pychat.tui.render import (
    FULL_HEIGHT,
    FULL_WIDTH,
    LIST_WIDTH,
    Frame,
    render_main,
    visible_message_lines,
)
from pychat.tui.search import search_key

log = Logger(namespace="pychat.tui")

#: Typing signals go at most this often per conversation (seconds).
TYPING_EVERY = 3.0


class MainScreen:
    """The screen of a logged-in user (a :class:`~pychat.tui.context.TuiContext`)."""

    def __init__(self, host: ScreenHost, client: ChatClient, model: ChatModel | None = None):
        self.host = host
        self.client = client
        self.model = model or ChatModel()
        self.model.me = client.username or self.model.me
        self.model.server = client.server
        self.model.connection = "online"
        self.history_file = history_path(client.keystore.path) if client.keystore else None
        if self.history_file is not None:
            self.model.input.history = load_history(self.history_file)
        self.mark_read_pending = False
        self._typing_sent: dict[str, float] = {}
        #: The first key of a two-key command (Ctrl-X, waiting for Ctrl-E), or None.
        self._chord: str | None = None
        mode = drawing_mode(host.config.images)
        self.previews = Previews(
            self, mode, cell_pixels() if mode in ("kitty", "sixel") else (1, 1)
        )

    @property
    def modals(self) -> list[Modal]:
        """The boxes open over this screen, the top one last."""
        return self.model.modals

    async def start(self, signals: bool) -> None:
        """Listen to the client, load the conversation list and what waits in the outbox."""
        self.client.listeners.append(self.on_client_event)
        self.client.signals.enabled = signals
        await self.load_conversations()
        for entry in await self.client.sender.pending():  # what the login could not send yet
            outbox_item(self, entry, "pending")

    # -- the host's means, for the screen's parts ------------------------------------------------

    def redraw(self) -> None:
        """Draw soon."""
        self.host.redraw()

    def guard(self, work: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> None:
        """Run async work; a failure shows in the status line."""
        self.host.guard(work)

    def show_modal(self, modal: Modal) -> None:
        """Put a box over the screen."""
        self.host.show_modal(modal)

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        """Show ``modal`` and wait for y or n."""
        return self.host.ask(modal)

    def now(self) -> float:
        """Seconds since the epoch, from the app's clock."""
        return self.host.now()

    def tell_error(self, text: str) -> None:
        """An error for the status line."""
        self.model.tell(text, error=True)

    def notify(self, peer: str) -> None:
        """Bell and desktop notification for a message from ``peer`` not on screen."""
        if self.host.config.notifications:
            notify(peer)

    # -- drawing -------------------------------------------------------------------------------

    def frame(self, width: int, height: int) -> Frame:
        """What the screen shows now; marks the conversation on screen read when its newest
        message is in view."""
        frame = render_main(
            self.model, width, height, now=self.now(), time_format=self.host.config.time_format
        )
        loading.maybe_mark_read(self)
        full = width >= FULL_WIDTH and height >= FULL_HEIGHT
        self.previews.look_at(self.model.current_conversation, width - (LIST_WIDTH + 1) * full)
        return frame

    def show_key_change(self, peer: str, old: str, new: str) -> None:
        """The box shown when a peer's key changed unsigned, in the TUI's own terms."""
        groups_old, groups_new = old.split(), new.split()
        lines = [
            f"{peer}'s identity key has CHANGED, and the change is NOT signed by the key",
            f"you had for {peer}. Sending to {peer} is blocked.",
            "",
            "Safety number with the NEW key:",
            "  " + " ".join(groups_new[:6]),
            "  " + " ".join(groups_new[6:]),
            "Safety number with the key you had:",
            "  " + " ".join(groups_old[:6]),
            "  " + " ".join(groups_old[6:]),
            "",
            f"Compare the new number with {peer} in person or on a call.",
            "/trust accepts the new key · /verify shows the numbers again",
        ]
        self.show_modal(Modal(f"{peer.upper()}'S KEY CHANGED", lines, warning=True))

    def key_changed(self, peer: str) -> None:
        """Sending to ``peer`` was refused for a key change: mark it, and show the box."""
        self.model.conversation(peer).key_changed = True
        self.guard(self._key_change_warning(peer))

    async def _key_change_warning(self, peer: str) -> None:
        info = await self.client.safety_numbers(peer)
        if info.pending and info.pinned:
            self.show_key_change(peer, info.pinned, info.current)

    # -- keys ------------------------------------------------------------------------------------

    def key(self, key: Key) -> None:
        """A key on the main screen, no box open."""
        if self.model.search is not None and search_key(self, key):
            return
        chord, self._chord = self._chord, None
        if chord == "ctrl-x" and key.name == "ctrl-e":  # as in bash: compose in $EDITOR
            self.guard(compose(self))
            return
        if key.name == "ctrl-x":
            self._chord = "ctrl-x"
            return
        if key.name == "mouse":
            on_mouse(self, key.text)
            return
        if key.name in ("char", "paste"):
            self.model.input.insert(key.text)
            self._typing()
            return
        action = BINDINGS.get(key.name)
        if action is not None:
            run_action(self, action)

    def scroll(self, direction: int) -> None:
        """A page up (+1) or down (-1); at the top, the next older page is loaded."""
        conv = self.model.current_conversation
        if conv is None:
            return
        height, width = self.host.view_size()
        page = max(1, height - 5)
        conv.scroll = max(0, conv.scroll + direction * page)
        if direction > 0:
            _, at_top = visible_message_lines(
                conv,
                self.model.me,
                self._pane_width(width, height),
                height - 3,
                self.host.config.time_format,
            )
            if at_top and conv.has_older:
                self.guard(loading.load_older(self, conv.peer))

    def _typing(self) -> None:
        """Tell the peer on screen that this user is typing (signals on; every 3 s at most)."""
        conv = self.model.current_conversation
        if conv is None or not self.client.signals.enabled:
            return
        if self.model.connection != "online" or self.model.input.text.startswith("/"):
            return
        now = self.now()
        if now - self._typing_sent.get(conv.peer, 0.0) >= TYPING_EVERY:
            self._typing_sent[conv.peer] = now
            loading.quietly(self.client.signals.send(conv.peer, "typing"))

    @staticmethod
    def _pane_width(width: int, height: int) -> int:
        return width - (LIST_WIDTH + 1) if width >= FULL_WIDTH and height >= FULL_HEIGHT else width

    # -- conversations (pychat.tui.loading) -----------------------------------------------------

    async def load_conversations(self) -> None:
        """Refresh the list from the server's summaries; show the first if none is."""
        await loading.load_conversations(self)

    async def show(self, peer: str) -> None:
        """Put ``peer``'s conversation on screen, loading its newest page the first time."""
        await loading.show(self, peer)

    # -- what the user types -----------------------------------------------------------------

    async def submit(self, text: str) -> None:
        """A slash command, or (``//`` escapes a leading slash) a message to the conversation
        on screen."""
        if text.startswith("/") and not text.startswith("//"):
            await run_command(self, text)
            return
        if text.startswith("//"):
            text = text[1:]
        conv = self.model.current_conversation
        if conv is None:
            self.model.tell("no conversation open: /new NAME starts one", error=True)
            return
        await self.send_text(conv, text)

    async def send_text(self, conv: ConversationState, text: str, action: bool = False) -> None:
        """Send ``text`` in ``conv`` (an emote when ``action``) through the outbox: it shows
        at once, pending until the server acknowledges it (after a reconnect if need be)."""
        conv.scroll = 0
        self.model.tell("")
        seq = await self.client.send(conv.peer, text, action=action, queue=True)
        if seq is None:
            self.model.tell(
                "not connected: the message waits in the outbox (…) and goes when "
                "the server is back (Ctrl-R retries now)"
            )

    # -- events from the client ------------------------------------------------------------------

    def on_client_event(self, event: ClientEvent) -> None:
        """Update the model for one client event, then draw."""
        try:
            handle_event(self, event)
        except Exception:
            log.failure("event handler failed")
            self.model.tell("internal error handling an event (see tui.log)", error=True)
        self.redraw()
