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
from typing import Any, ClassVar

from twisted.internet import defer
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from zope.interface import implementer

from pychat.client.address import AddressError, ServerAddress
from pychat.client.config import ClientConfig, ConfigError, default_home
from pychat.client.keystore import KeystoreError
from pychat.client.password_strength import WeakPassword, check_password
from pychat.client.protocol import ConnectionClosed, RemoteError
from pychat.client.session import (
    CertificateChanged,
    ChatClient,
    ChatMessage,
    ClientError,
    ClientEvent,
    PeerKeyChanged,
)
from pychat.tui.keys import BINDINGS, Key, KeyDecoder
from pychat.tui.model import ChatModel, LoginForm, MessageItem, Modal
from pychat.tui.render import (
    FULL_HEIGHT,
    FULL_WIDTH,
    LIST_WIDTH,
    render_login,
    render_main,
    visible_message_lines,
)
from pychat.tui.view import CursesView, colours_wanted
from pychat.usernames import UsernameError, normal_form, normalize
from pychat.wire.ids import conversation_id

log = Logger(namespace="pychat.tui")

PAGE = 50
HELP = [
    "Commands:",
    "  /new NAME      open a conversation with NAME",
    "  /verify        show the safety number (y marks the peer verified)",
    "  /trust         accept the peer's new key after a change (not verified)",
    "  /rotate        start a new conversation key",
    "  /rekey         new identity keys for you, signed by the old ones",
    "  /search TEXT   search the loaded history of this conversation",
    "  /help          this help      /quit   leave",
    "Keys:",
    "  Tab / Shift-Tab, Alt-1..9   switch conversation",
    "  PgUp / PgDn                 scroll (older messages load on demand)",
    "  Enter send · Alt-Enter new line · Up/Down history",
    "  Ctrl-A/E home/end · Ctrl-W delete word · Ctrl-U delete to start",
    "  Ctrl-L redraw · Ctrl-C quit",
]


def _item(message: ChatMessage) -> MessageItem:
    return MessageItem(
        message.seq, message.sender, message.time, message.status, message.text, message.reason
    )


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
        self.screen = screen
        self.view = CursesView(screen, colours_wanted(config.colours))
        self.home: Path = args.home or default_home()
        self.decoder = KeyDecoder()
        self.form = LoginForm()
        self.form.server.insert(
            args.server or os.environ.get("PYCHAT_SERVER") or config.server or "localhost"
        )
        self.form.username.insert(args.user or os.environ.get("PYCHAT_USER") or config.user or "")
        self.form.focus = 1 if not self.form.username.text else 2
        self.model = ChatModel()
        self.client: ChatClient | None = None
        self.exit_code = 0
        self._redraw_call: Any = None
        self._mark_read_pending = False
        self._choice: defer.Deferred[bool] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.reactor.addReader(_StdinReader(self))
        signal.signal(signal.SIGWINCH, lambda *_: self.reactor.callFromThread(self.on_resize))
        self._tick()
        self.redraw()

    def _tick(self) -> None:
        if self.model.connection == "reconnecting":
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
        self._maybe_mark_read(width, height)

    def notify(self, peer: str) -> None:
        """Bell plus an OSC 9 / 777 desktop notification (passed through tmux when inside it).

        It names the sender only: the message text stays off the notification, which other
        programs and the lock screen may show.
        """
        if not self.config.notifications:
            return
        body = f"message from {peer}"
        sequences = [f"\x1b]9;pyChat: {body}\x07", f"\x1b]777;notify;pyChat;{body}\x07"]
        if os.environ.get("TMUX"):
            # tmux passes a sequence to the outer terminal when wrapped in its DCS, with every
            # ESC inside doubled.
            sequences = [
                f"\x1bPtmux;{seq.replace(chr(27), chr(27) * 2)}\x1b\\" for seq in sequences
            ]
        osc = "".join(sequences)
        try:
            os.write(sys.stdout.fileno(), b"\a" + osc.encode())
        except OSError:
            pass

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
            self._show_modal(
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
            self._show_key_change(peer, info.pinned, info.current)

    def _show_key_change(self, peer: str, old: str, new: str) -> None:
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
        self._show_modal(Modal(f"{peer.upper()}'S KEY CHANGED", lines, warning=True))

    def _tell_error(self, text: str) -> None:
        if self.client is None:
            self.form.message = text
        else:
            self.model.tell(text, error=True)

    def _show_modal(self, modal: Modal) -> None:
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
        modals = self.form.modals if self.client is None else self.model.modals
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
            self._login_key(key)
        else:
            self._main_key(key)

    def _login_key(self, key: Key) -> None:
        form = self.form
        if form.busy:
            if key.name == "ctrl-c":
                self.quit()
            return
        field = form.focused()
        name = key.name
        if name == "ctrl-c":
            self.quit()
        elif name in ("tab", "down"):
            form.move(1)
        elif name in ("btab", "up"):
            form.move(-1)
        elif name in ("f2", "ctrl-n"):
            form.toggle_mode()
        elif name == "enter":
            if form.focus < len(form.fields()) - 1:
                form.move(1)
            else:
                self.guard(self._submit_login)
        elif name == "char" or name == "paste":
            field.insert(key.text.replace("\n", ""))
        else:
            action = BINDINGS.get(name)
            if action in self._EDITS:
                getattr(field, self._EDITS[action])()

    _EDITS: ClassVar[dict[str, str]] = {
        "cursor_left": "left",
        "cursor_right": "right",
        "cursor_home": "home",
        "cursor_end": "end",
        "delete_back": "backspace",
        "delete_forward": "delete",
        "delete_word": "kill_word",
        "delete_to_start": "kill_to_start",
        "history_prev": "history_prev",
        "history_next": "history_next",
    }

    def _main_key(self, key: Key) -> None:
        if key.name in ("char", "paste"):
            self.model.input.insert(key.text)
            return
        action = BINDINGS.get(key.name)
        if action is None:
            return
        if action in self._EDITS:
            getattr(self.model.input, self._EDITS[action])()
        elif action == "newline":
            self.model.input.insert("\n")
        elif action == "submit":
            text = self.model.input.take()
            if text.strip():
                self.guard(self.submit(text))
        elif action in ("next_conversation", "prev_conversation"):
            conv = self.model.cycle(1 if action == "next_conversation" else -1)
            if conv is not None:
                self.guard(self.show(conv.peer))
        elif action.startswith("select_"):
            conv = self.model.select_index(int(action[-1]) - 1)
            if conv is not None:
                self.guard(self.show(conv.peer))
        elif action == "scroll_up":
            self.scroll(+1)
        elif action == "scroll_down":
            self.scroll(-1)
        elif action == "redraw":
            self.screen.clear()
        elif action == "quit":
            self.quit()
        elif action == "help":
            self._show_modal(Modal("Help", HELP))

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
                self.guard(self.load_older(conv.peer))

    def _pane_width(self, width: int) -> int:
        height, _ = self.view.size()
        return width - (LIST_WIDTH + 1) if width >= FULL_WIDTH and height >= FULL_HEIGHT else width

    # -- login -----------------------------------------------------------------------------------

    async def _submit_login(self) -> None:
        form = self.form
        username, password = form.username.text.strip(), form.password.text
        if not username or not password:
            form.message = "enter a username and a password"
            return
        if form.signup and password != form.confirm.text:
            form.message = "the passwords do not match"
            return
        if form.signup:
            try:
                normalize(username)
                check_password(password, username=username)
            except (UsernameError, WeakPassword) as exc:
                form.message = str(exc)
                return
        try:
            address = ServerAddress.parse(form.server.text)
        except AddressError as exc:
            form.message = str(exc)
            return
        form.busy, form.message = True, ""
        self.redraw()
        client = ChatClient(address, self.home, ca=self.args.ca, on_new_server=self._ask_new_server)
        try:
            if form.signup:
                await client.signup(username, password)
            await client.login(username, password)
        except Exception:
            await client.close()
            raise
        finally:
            form.busy = False
        form.password.take()
        form.confirm.take()
        self.client = client
        self.model.me = client.username or username
        self.model.server = client.server
        self.model.connection = "online"
        client.listeners.append(self.on_client_event)
        await self.load_conversations()

    def _ask_new_server(self, server: str, fingerprint: str) -> defer.Deferred[bool]:
        self._choice = defer.Deferred()
        lines = [
            f"First contact with {server}. Its certificate fingerprint (SHA-256) is:",
            fingerprint,
            "Compare it with the one the server printed when it started.",
            "Accept and pin it? (y/n)",
        ]
        self._show_modal(
            Modal("New server", lines, warning=False, prompt="(y: accept · n: refuse)")
        )
        return self._choice

    # -- conversations ---------------------------------------------------------------------------

    async def load_conversations(self) -> None:
        assert self.client is not None  # noqa: S101
        for summary in await self.client.conversations():
            conv = self.model.conversation(summary["peer"])
            conv.unread = summary["unread"]
            conv.last_seq = summary["last_seq"]
            conv.last_activity = summary["last_activity"]
            conv.online = summary["peer_online"]
            conv.verified, conv.key_changed = self.client.peer_trust(conv.peer)
        order = self.model.ordered()
        if order and self.model.current is None:
            await self.show(order[0].peer)

    async def show(self, peer: str) -> None:
        """Put ``peer``'s conversation on screen, loading its newest page the first time."""
        assert self.client is not None  # noqa: S101
        conv = self.model.select(peer)
        conv.verified, conv.key_changed = self.client.peer_trust(peer)
        if not conv.loaded:
            conv.loaded = True
            messages, more = await self.client.older(peer, 0, PAGE)
            for m in messages:
                self.model.add_message(peer, _item(m), on_screen=True)
            conv.has_older = more
        self.redraw()

    async def load_older(self, peer: str) -> None:
        assert self.client is not None  # noqa: S101
        conv = self.model.conversation(peer)
        if not conv.has_older or not conv.messages:
            return
        conv.has_older = False  # one load at a time
        messages, more = await self.client.older(peer, conv.oldest_loaded, PAGE)
        for m in messages:
            self.model.add_message(peer, _item(m), on_screen=True)
        conv.has_older = more
        self.model.tell(f"loaded {len(messages)} older messages")

    def _maybe_mark_read(self, width: int, height: int) -> None:
        conv = self.model.current_conversation
        if (
            self.client is None
            or conv is None
            or conv.scroll
            or not conv.unread
            or self.model.modals
        ):
            return
        if self._mark_read_pending:
            return
        self._mark_read_pending = True
        last = conv.last_seq

        async def mark() -> None:
            assert self.client is not None  # noqa: S101
            try:
                await self.client.mark_read(conv.peer, last)
                conv.unread = 0
            finally:
                self._mark_read_pending = False

        self.guard(mark)

    # -- what the user types -----------------------------------------------------------------

    async def submit(self, text: str) -> None:
        if text.startswith("/") and not text.startswith("//"):
            await self.command(text)
            return
        if text.startswith("//"):
            text = text[1:]
        conv = self.model.current_conversation
        if conv is None or self.client is None:
            self.model.tell("no conversation open: /new NAME starts one", error=True)
            return
        seq = await self.client.send(conv.peer, text)
        self.model.add_message(
            conv.peer,
            MessageItem(seq, self.model.me, time.time(), "verified", text),
            on_screen=True,
        )
        conv.scroll = 0
        self.model.tell("")

    async def command(self, text: str) -> None:
        assert self.client is not None  # noqa: S101
        name, _, rest = text[1:].partition(" ")
        rest = rest.strip()
        conv = self.model.current_conversation
        if name == "quit":
            self.quit()
        elif name == "help":
            self._show_modal(Modal("Help", HELP))
        elif name == "new":
            if not rest:
                self.model.tell("usage: /new NAME", error=True)
                return
            await self.client.open_conversation(rest)
            peer = normal_form(rest)
            self.model.conversation(peer).last_activity = time.time()
            await self.load_conversations()  # the new one's summary: presence, counts
            await self.show(peer)
            self.model.tell(f"conversation with {peer} open")
        elif conv is None:
            self.model.tell(f"/{name} needs an open conversation", error=True)
        elif name == "verify":
            await self._verify(conv.peer)
        elif name == "trust":
            was_pending = conv.key_changed
            await self.client.trust(conv.peer)
            conv.verified, conv.key_changed = self.client.peer_trust(conv.peer)
            self.model.tell(
                f"accepted {conv.peer}'s new key; not verified: /verify to compare"
                if was_pending
                else f"{conv.peer}'s key is accepted; /verify compares safety numbers"
            )
        elif name == "rekey":
            self.model.tell("making new identity keys…")
            self.redraw()
            fingerprint = await self.client.rotate_identity()
            self.model.tell(f"new identity keys {fingerprint[:16]}…, signed by the old ones")
        elif name == "rotate":
            epoch = await self.client.rotate(conv.peer)
            self.model.tell(f"new conversation key: epoch {epoch}")
        elif name == "search":
            needle = rest.casefold()
            hits = [
                m
                for m in conv.sorted_messages()
                if m.text and needle and needle in m.text.casefold()
            ]
            lines = [f"#{m.seq} {m.sender}: {m.text}" for m in hits[-20:]] or [
                "no match in the loaded history"
            ]
            self._show_modal(Modal(f"Search {rest!r}: {len(hits)} found", lines))
        else:
            self.model.tell(f"unknown command /{name}; /help lists them", error=True)

    async def _verify(self, peer: str) -> None:
        """Show the safety number; y marks the peer verified.  While a change is pending it
        shows both numbers and how to accept the new key instead."""
        assert self.client is not None  # noqa: S101
        info = await self.client.safety_numbers(peer)
        conv = self.model.conversation(peer)
        if info.pending and info.pinned:
            self._show_key_change(peer, info.pinned, info.current)
            return
        groups = info.current.split()
        lines = [" ".join(groups[:6]), " ".join(groups[6:]), ""]
        if info.verified:
            self._show_modal(Modal(f"Safety number with {peer}", [*lines, "marked verified ✓"]))
            return
        lines.append(f"Compare it with {peer} in person or on a call.")
        self._choice = defer.Deferred()
        self._show_modal(
            Modal(
                f"Safety number with {peer}",
                lines,
                prompt="(y: it matches, mark verified · n: not now)",
            )
        )
        if await self._choice:
            await self.client.mark_verified(peer)
            conv.verified, conv.key_changed = self.client.peer_trust(peer)
            self.model.tell(f"{peer} is marked verified ✓")

    # -- events from the client ------------------------------------------------------------------

    def on_client_event(self, event: ClientEvent) -> None:
        try:
            self._client_event(event)
        except Exception:
            log.failure("event handler failed")
            self.model.tell("internal error handling an event (see tui.log)", error=True)
        self.redraw()

    def _client_event(self, event: ClientEvent) -> None:
        model = self.model
        if event.kind == "message" and event.message is not None:
            m = event.message
            current = model.current_conversation
            on_screen = current is not None and current.peer == m.peer
            following = on_screen and current is not None and current.scroll == 0
            is_new = model.add_message(m.peer, _item(m), on_screen=following)
            conv = model.conversation(m.peer)
            conv.last_activity = max(
                conv.last_activity, m.time, time.time() if m.sender != model.me else 0
            )
            if is_new and m.sender != model.me and not on_screen:
                self.notify(m.peer)
        elif event.kind == "presence":
            user = str(event.data.get("user"))
            if user in model.conversations:
                model.conversations[user].online = bool(event.data.get("online"))
        elif event.kind == "read":
            for conv in model.conversations.values():
                if self.client is not None and event.data.get("conversation") and conv.last_seq:
                    if conversation_id(model.me, conv.peer) == event.data["conversation"]:
                        conv.unread = int(event.data.get("unread", 0))
        elif event.kind == "conversation":
            summary = event.data.get("conversation") or {}
            peer = summary.get("peer")
            if isinstance(peer, str):
                conv = model.conversation(peer)
                conv.last_activity = max(conv.last_activity, float(summary.get("last_activity", 0)))
        elif event.kind == "keys_changed":
            user = str(event.data.get("user"))
            model.conversation(user).key_changed = True
            self._show_key_change(
                user, str(event.data.get("old_safety")), str(event.data.get("new_safety"))
            )
        elif event.kind == "keys_rotated":
            user = str(event.data.get("user"))
            still = "still verified" if event.data.get("verified") else "not verified"
            model.note(user, f"{user} rotated keys (signed by the old ones); {still}")
        elif event.kind == "notice":
            about = event.data.get("user")
            text = str(event.data.get("text", ""))
            if isinstance(about, str):
                model.note(about, text)
            else:
                model.tell(text)
        elif event.kind == "connection":
            state = str(event.data.get("state"))
            model.connection = state
            if state == "reconnecting":
                model.reconnect_at = time.time() + float(event.data.get("delay", 0))
            elif state == "online" and model.notice_is_error:
                model.tell("")  # an error from while it was offline is stale now
            elif state == "refused":
                model.warn("CONNECTION REFUSED", str(event.data.get("reason", "")).splitlines())


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
    app: TuiApp | None = None
    try:
        curses.noecho()
        curses.raw()
        screen.keypad(True)
        screen.nodelay(True)
        os.write(sys.stdout.fileno(), b"\x1b[?2004h")  # bracketed paste on
        app = TuiApp(args, config, screen, reactor)
        reactor.callWhenRunning(app.start)
        reactor.run()
    finally:
        try:
            os.write(sys.stdout.fileno(), b"\x1b[?2004l")
            screen.keypad(False)
            curses.noraw()
            curses.echo()
        finally:
            curses.endwin()
        log_file.close()
    return app.exit_code if app is not None else 1
