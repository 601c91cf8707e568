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
    PeerKeyChanged,
)
from pychat.tui.keys import Key, KeyDecoder
from pychat.tui.login import LoginScreen
from pychat.tui.main_screen import MainScreen
from pychat.tui.model import Modal
from pychat.tui.mouse import MOUSE_OFF, MOUSE_ON
from pychat.tui.password_prompt import PasswordPrompt, prompt_key
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
    """The running TUI: the terminal, the reactor's input and clock, the boxes, and the screen
    on show (:class:`~pychat.tui.login.LoginScreen`, then
    :class:`~pychat.tui.main_screen.MainScreen`); a :class:`~pychat.tui.context.ScreenHost`."""

    def __init__(
        self, args: argparse.Namespace, config: ClientConfig, screen: Any, reactor: Any
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.terminal: Any = screen
        self.view = CursesView(
            screen, colours_wanted(config.colours), write=to_terminal, theme=config.theme
        )
        self.home: Path = args.home or default_home()
        self.ca: Path | None = args.ca
        self.decoder = KeyDecoder()
        server = args.server or os.environ.get("PYCHAT_SERVER") or config.server or "localhost"
        user = args.user or os.environ.get("PYCHAT_USER") or config.user or ""
        self.screen: LoginScreen | MainScreen = LoginScreen(self, server, user)
        self.exit_code = 0
        self._redraw_call: Any = None
        self._choice: defer.Deferred[bool] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Read the terminal, follow its size, tick once a second, draw."""
        self.reactor.addReader(_StdinReader(self))
        signal.signal(signal.SIGWINCH, lambda *_: self.reactor.callFromThread(self.on_resize))
        self._tick()
        if isinstance(self.screen, LoginScreen):
            self.screen.started()
        self.redraw()

    def _tick(self) -> None:
        if isinstance(self.screen, MainScreen):
            model = self.screen.model
            expired = [c.drop_expired(self.now()) for c in model.conversations.values()]
            if model.connection == "reconnecting" or any(expired):
                self.redraw()
        self.reactor.callLater(1.0, self._tick)

    def now(self) -> float:
        """Seconds since the epoch, from the reactor's clock."""
        return float(self.reactor.seconds())

    def call_later(self, seconds: float, what: Callable[[], None]) -> None:
        """Run ``what`` after ``seconds``."""
        self.reactor.callLater(seconds, what)

    def quit(self) -> None:
        """Stop reconnecting and stop the reactor (the terminal's pictures forgotten)."""
        forget = self.view.pictures.clear()
        if forget:
            to_terminal(forget)
        if isinstance(self.screen, MainScreen):
            self.screen.client.stop_reconnecting()
        if self.reactor.running:
            self.reactor.stop()

    def on_resize(self) -> None:
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
            curses.resizeterm(size.lines, size.columns)
        except (OSError, curses.error):
            pass
        self.clear_screen()

    async def logged_in(self, client: ChatClient, username: str) -> None:
        """The login screen succeeded: the main screen takes over."""
        main = MainScreen(self, client)
        self.screen = main
        await main.start(self.config.signals)

    # -- drawing ---------------------------------------------------------------------------------

    def redraw(self) -> None:
        """Draw soon (several changes in one reactor turn draw once)."""
        if self._redraw_call is None or not self._redraw_call.active():
            self._redraw_call = self.reactor.callLater(0, self._draw)

    def to_terminal(self, data: bytes) -> None:
        """Write an escape sequence to the terminal as it is (OSC 52, ...), between frames."""
        to_terminal(data)

    def suspended(self, run: Callable[[], None]) -> None:
        """Call ``run`` with the terminal given back (curses ended, the terminal's own mode,
        no bracketed paste), then take it again and draw everything."""
        to_terminal(b"\x1b[?2004l" + (MOUSE_OFF if self.config.mouse else b""))
        curses.def_prog_mode()
        curses.endwin()
        try:
            run()
        finally:
            curses.reset_prog_mode()
            to_terminal(b"\x1b[?2004h" + (MOUSE_ON if self.config.mouse else b""))
            self.clear_screen()

    def clear_screen(self) -> None:
        """Forget what the terminal shows and draw it all again."""
        self.terminal.clear()
        self.view.pictures.forget()
        self.redraw()

    def view_size(self) -> tuple[int, int]:
        """The terminal's (height, width)."""
        height, width = self.view.size()
        return height, width

    def _draw(self) -> None:
        height, width = self.view.size()
        self.view.draw(self.screen.frame(width, height))

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
            if isinstance(self.screen, MainScreen):
                self.screen.key_changed(exc.peer)
        elif isinstance(exc, RemoteError):
            self.screen.tell_error(exc.message or exc.code)
        elif isinstance(exc, ClientError | KeystoreError | ConnectionClosed | AddressError):
            self.screen.tell_error(str(exc))
        else:
            log.failure("handler failed", failure=failure)
            self.screen.tell_error(f"error: {exc!r} (details in {self.home / 'tui.log'})")

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        """Show ``modal`` and wait for y or n."""
        self._choice = defer.Deferred()
        self.show_modal(modal)
        return self._choice

    def show_modal(self, modal: Modal) -> None:
        """Put a box over the screen (any key closes it)."""
        self.screen.modals.append(modal)
        self.redraw()

    # -- input -----------------------------------------------------------------------------------

    def on_input(self) -> None:
        """Standard input has something: decode the keys and handle each."""
        items: list[str | int] = []
        while True:
            try:
                items.append(self.terminal.get_wch())
            except curses.error:
                break
        for key in self.decoder.feed(items):
            try:
                self.handle_key(key)
            except Exception:
                log.failure("key handler failed")
                self.screen.tell_error(
                    f"internal error handling {key.name} (see {self.home / 'tui.log'})"
                )
        self.redraw()

    def handle_key(self, key: Key) -> None:
        """One key: the app's own (resize, Ctrl-C), then the top box's, then the screen's."""
        if key.name == "resize":
            self.on_resize()
            return
        if key.name == "ctrl-c":  # quits from anywhere, a box open or not
            self.quit()
            return
        modals = self.screen.modals
        if (
            modals
            and isinstance(modals[-1], PasswordPrompt)
            and isinstance(self.screen, MainScreen)
        ):
            prompt_key(self.screen, modals[-1], key)
        elif modals:
            self._box_key(modals, key)
        else:
            self.screen.key(key)

    def _box_key(self, modals: list[Modal], key: Key) -> None:
        """A key while a box is open: y or n answers a question; any key closes the rest."""
        if self._choice is None:
            modals.pop()
        elif key.name == "char" and key.text.lower() in ("y", "n"):
            choice, self._choice = self._choice, None
            modals.pop()
            choice.callback(key.text.lower() == "y")


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
        if config.mouse:
            to_terminal(MOUSE_ON)
        app = TuiApp(args, config, screen, reactor)
        reactor.callWhenRunning(app.start)
        reactor.run()
    finally:
        try:
            to_terminal(b"\x1b[?2004l" + (MOUSE_OFF if config.mouse else b""))
            screen.keypad(False)
            curses.noraw()
            curses.echo()
        finally:
            curses.endwin()
        log_file.close()
    return app.exit_code if app is not None else 1
