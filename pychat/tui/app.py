"""The full-screen client: keys and network events change the model; the view draws it.

Twisted's reactor drives everything: curses input is a reader on standard input, the chat
client's events arrive as callbacks, and slow work (KDF, RSA) runs in threads inside the
client library, so the screen never freezes.  Any exception in a handler is shown in the
status line and logged to ``HOME/tui.log``; the terminal is restored on every exit path
(quit, Ctrl-C, SIGTERM, a crash).
"""

from __future__ import annotations

import argparse
import curses
import locale
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from zope.interface import implementer

from pychat.client.address import AddressError
from pychat.client.config import ClientConfig, ConfigError, default_home
from pychat.client.keystore import KeystoreError
from pychat.client.protocol import ConnectionClosed, RemoteError
from pychat.client.session import (
    CertificateChanged,
    ChatClient,
    ClientError,
    ClientEvent,
    PeerKeyChanged,
)
from pychat.tui import loading
from pychat.tui.actions import run_action
from pychat.tui.client_events import handle_event, outbox_item
from pychat.tui.commands import run_command
from pychat.tui.input_history import history_path, load_history
from pychat.tui.keys import BINDINGS, Key, KeyDecoder
from pychat.tui.login import login_key
from pychat.tui.model import ChatModel, ConversationState, LoginForm, Modal
from pychat.tui.notifications import notify
from pychat.tui.password_prompt import PasswordPrompt, prompt_key
from pychat.tui.render import (
    FULL_HEIGHT,
    FULL_WIDTH,
    LIST_WIDTH,
    render_login,
    render_main,
    visible_message_lines,
)
from pychat.tui.search import search_key
from pychat.tui.view import CursesView, colours_wanted, to_terminal

log = Logger(namespace="pychat.tui")

#: Milliseconds curses waits after Escape for the rest of a key sequence.
ESCAPE_DELAY_MS = 25


@implementer(IReadDescriptor)
class _StdinReader:
    """Tells the app when standard input has something to read."""

    def __init__(self, app: TuiApp) -> None:
        self.app = app

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def doRead(self) -> None:
        self.app.on_input()

    def connectionLost(self, reason: Failure) -> None:
        self.app.quit()

    def logPrefix(self) -> str:
        return "tui-stdin"


class TuiApp:
    """The running TUI."""

    def __init__(
        self, args: argparse.Namespace, config: ClientConfig, screen: Any, reactor: Any
    ) -> None:
        self.args = args
        self.config = config
        self.reactor = reactor
        self.screen: Any = screen
        self.view = CursesView(screen, colours_wanted(config.colours), write=to_terminal)
        self.home: Path = args.home or default_home()
        #: Where the input line's history is kept (set at login).
        self.history_file: Path | None = None
        self.decoder = KeyDecoder()
        self.form = LoginForm()
        self.form.server.insert(
            args.server or os.environ.get("PYCHAT_SERVER") or config.server or "localhost"
        )
        self.form.username.insert(args.user or os.environ.get("PYCHAT_USER") or config.user or "")
        self.form.focus = 1 if not self.form.username.text else 2
        self.model: ChatModel = ChatModel()
        self.client: ChatClient | None = None
        self.exit_code = 0
        self._redraw_call: Any = None
        #: A mark_read is on its way (one at a time).
        self.mark_read_pending = False
        self._typing_sent: dict[str, float] = {}
        self._choice: defer.Deferred[bool] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.reactor.addReader(_StdinReader(self))
        signal.signal(signal.SIGWINCH, lambda *_: self.reactor.callFromThread(self.on_resize))
        self._tick()
        self.redraw()

    def _tick(self) -> None:
        expired = [c.drop_expired(time.time()) for c in self.model.conversations.values()]
        if self.model.connection == "reconnecting" or any(expired):
            self.redraw()
        self.reactor.callLater(1.0, self._tick)

    def quit(self) -> None:
        if self.client is not None:
            self.client.stop_reconnecting()
        if self.reactor.running:
            self.reactor.stop()

    def on_resize(self) -> None:
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
            curses.resizeterm(size.lines, size.columns)
        except (OSError, curses.error):
            pass
        self.screen.clear()
        self.redraw()

    # -- drawing ---------------------------------------------------------------------------------

    def redraw(self) -> None:
        """Draw soon (several changes in one reactor turn draw once)."""
        if self._redraw_call is None or not self._redraw_call.active():
            self._redraw_call = self.reactor.callLater(0, self._draw)

    def _draw(self) -> None:
        height, width = self.view.size()
        if self.client is None:
            frame = render_login(self.form, width, height)
        else:
            frame = render_main(
                self.model, width, height, now=time.time(), time_format=self.config.time_format
            )
        self.view.draw(frame)
        loading.maybe_mark_read(self)

    def notify(self, peer: str) -> None:
        """Bell and desktop notification for a message from ``peer`` not on screen."""
        if self.config.notifications:
            notify(peer)

    # -- guarding handlers ---------------------------------------------------------------------

    def guard(self, work: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> None:
        """Run async work; any failure shows in the status line and goes to the log."""
        awaitable = work() if callable(work) else work
        d: defer.Deferred[Any] = defer.ensureDeferred(_as_coroutine(awaitable))
        d.addErrback(self._failed)
        d.addBoth(lambda _: self.redraw())

    def _failed(self, failure: Failure) -> None:
        exc = failure.value
        if isinstance(exc, CertificateChanged):
            self.show_modal(
                Modal("SERVER CERTIFICATE CHANGED", str(exc).splitlines(), warning=True)
            )
        elif isinstance(exc, PeerKeyChanged):
            if self.client is not None:
                self.model.conversation(exc.peer).key_changed = True
                self.guard(self._key_change_warning(exc.peer))
        elif isinstance(exc, RemoteError):
            self._tell_error(exc.message or exc.code)
        elif isinstance(exc, ClientError | KeystoreError | ConnectionClosed | AddressError):
            self._tell_error(str(exc))
        else:
            log.failure("handler failed", failure=failure)
            self._tell_error(f"error: {exc!r} (details in {self.home / 'tui.log'})")

    async def _key_change_warning(self, peer: str) -> None:
        """The box shown when a peer's key changed unsigned, in the TUI's own terms."""
        assert self.client is not None  # noqa: S101
        info = await self.client.safety_numbers(peer)
        if info.pending and info.pinned:
            self.show_key_change(peer, info.pinned, info.current)

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

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        """Show ``modal`` and wait for y or n."""
        self._choice = defer.Deferred()
        self.show_modal(modal)
        return self._choice

    def _tell_error(self, text: str) -> None:
        if self.client is None:
            self.form.message = text
        else:
            self.model.tell(text, error=True)

    def show_modal(self, modal: Modal) -> None:
        """Put a box over the screen (any key closes it)."""
        (self.form.modals if self.client is None else self.model.modals).append(modal)
        self.redraw()

    # -- input -----------------------------------------------------------------------------------

    def on_input(self) -> None:
        items: list[str | int] = []
        while True:
            try:
                items.append(self.screen.get_wch())
            except curses.error:
                break
        for key in self.decoder.feed(items):
            try:
                self.handle_key(key)
            except Exception:
                log.failure("key handler failed")
                self._tell_error(
                    f"internal error handling {key.name} (see {self.home / 'tui.log'})"
                )
        self.redraw()

    def handle_key(self, key: Key) -> None:
        if key.name == "resize":
            self.on_resize()
            return
        if key.name == "ctrl-c":  # quits from anywhere, a box open or not
            self.quit()
            return
        modals = self.form.modals if self.client is None else self.model.modals
        if modals and isinstance(modals[-1], PasswordPrompt):
            prompt_key(self, modals[-1], key)
            return
        if modals:
            if self._choice is not None:
                if key.name == "char" and key.text.lower() in ("y", "n"):
                    choice, self._choice = self._choice, None
                    modals.pop()
                    choice.callback(key.text.lower() == "y")
                return
            modals.pop()
            return
        if self.client is None:
            login_key(self, key)
        else:
            self._main_key(key)

    def _main_key(self, key: Key) -> None:
        if self.model.search is not None and search_key(self, key):
            return
        if key.name in ("char", "paste"):
            self.model.input.insert(key.text)
            self._typing()
            return
        action = BINDINGS.get(key.name)
        if action is not None:
            run_action(self, action)

    def scroll(self, direction: int) -> None:
        conv = self.model.current_conversation
        if conv is None:
            return
        height, width = self.view.size()
        page = max(1, height - 5)
        conv.scroll = max(0, conv.scroll + direction * page)
        if direction > 0:
            _, at_top = visible_message_lines(
                conv, self.model.me, self._pane_width(width), height - 3, self.config.time_format
            )
            if at_top and conv.has_older:
                self.guard(loading.load_older(self, conv.peer))

    def _typing(self) -> None:
        """Tell the peer on screen that this user is typing (signals on; every 3 s at most)."""
        conv = self.model.current_conversation
        if self.client is None or conv is None or not self.client.signals.enabled:
            return
        if self.model.connection != "online" or self.model.input.text.startswith("/"):
            return
        now = time.time()
        if now - self._typing_sent.get(conv.peer, 0.0) >= TYPING_EVERY:
            self._typing_sent[conv.peer] = now
            loading.quietly(self.client.signals.send(conv.peer, "typing"))

    def _pane_width(self, width: int) -> int:
        height, _ = self.view.size()
        return width - (LIST_WIDTH + 1) if width >= FULL_WIDTH and height >= FULL_HEIGHT else width

    # -- login -----------------------------------------------------------------------------------

    async def logged_in(self, client: ChatClient, username: str) -> None:
        """The login screen succeeded: show the conversations."""
        self.client = client
        self.model.me = client.username or username
        self.model.server = client.server
        self.model.connection = "online"
        client.listeners.append(self.on_client_event)
        client.signals.enabled = self.config.signals
        if client.keystore is not None:
            self.history_file = history_path(client.keystore.path)
            self.model.input.history = load_history(self.history_file)
        await self.load_conversations()
        for entry in await client.sender.pending():  # what the login could not send yet
            outbox_item(self, entry, "pending")

    # -- conversations (pychat.tui.loading) -----------------------------------------------------

    async def load_conversations(self) -> None:
        """Refresh the list from the server's summaries; show the first if none is."""
        await loading.load_conversations(self)

    async def show(self, peer: str) -> None:
        """Put ``peer``'s conversation on screen, loading its newest page the first time."""
        await loading.show(self, peer)

    # -- what the user types -----------------------------------------------------------------

    async def submit(self, text: str) -> None:
        if text.startswith("/") and not text.startswith("//"):
            await run_command(self, text)
            return
        if text.startswith("//"):
            text = text[1:]
        conv = self.model.current_conversation
        if conv is None or self.client is None:
            self.model.tell("no conversation open: /new NAME starts one", error=True)
            return
        await self.send_text(conv, text)

    async def send_text(self, conv: ConversationState, text: str, action: bool = False) -> None:
        """Send ``text`` in ``conv`` (an emote when ``action``) through the outbox: it shows
        at once, pending until the server acknowledges it (after a reconnect if need be)."""
        assert self.client is not None  # noqa: S101 - the main screen has a client
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
        try:
            handle_event(self, event)
        except Exception:
            log.failure("event handler failed")
            self.model.tell("internal error handling an event (see tui.log)", error=True)
        self.redraw()


#: Typing signals go at most this often per conversation (seconds).
TYPING_EVERY = 3.0


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def run_tui(args: argparse.Namespace) -> int:
    """Run the full-screen client until the user quits; return the exit status."""
    try:
        config = ClientConfig.load(args.config)
    except ConfigError as exc:
        print(f"pychat: {exc}", file=sys.stderr)
        return 1
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print(
            "pychat: the full-screen client needs a terminal; see pychat --help for commands",
            file=sys.stderr,
        )
        return 2
    home: Path = args.home or default_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_file = open(home / "tui.log", "a", encoding="utf-8")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log_file)], redirectStandardIO=False)
    locale.setlocale(locale.LC_ALL, "")
    from twisted.internet import reactor

    screen = curses.initscr()
    # Escape alone must be Escape at once: curses waits this long for the rest of a sequence
    # (1 s by default, which swallowed the next key as Alt-key).  ESCDELAY still wins.
    escdelay = os.environ.get("ESCDELAY", "")
    curses.set_escdelay(int(escdelay) if escdelay.isdigit() else ESCAPE_DELAY_MS)
    app: TuiApp | None = None
    try:
        curses.noecho()
        curses.raw()
        screen.keypad(True)
        screen.nodelay(True)
        to_terminal(b"\x1b[?2004h")  # bracketed paste on
        app = TuiApp(args, config, screen, reactor)
        reactor.callWhenRunning(app.start)
        reactor.run()
    finally:
        try:
            to_terminal(b"\x1b[?2004l")
            screen.keypad(False)
            curses.noraw()
            curses.echo()
        finally:
            curses.endwin()
        log_file.close()
    return app.exit_code if app is not None else 1
