"""Run the real TUI in a pseudo-terminal and read its screen with pyte."""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyte
from twisted.internet import defer, protocol, reactor, task

from tests.key_pool import TUI_SLOTS

ROOT = Path(__file__).resolve().parent.parent

KEYS = {
    "enter": "\r",
    "tab": "\t",
    "btab": "\x1b[Z",
    "left": "\x1b[D",
    "right": "\x1b[C",
    "up": "\x1b[A",
    "down": "\x1b[B",
    "home": "\x1b[H",
    "end": "\x1b[F",
    "pgup": "\x1b[5~",
    "pgdn": "\x1b[6~",
    "backspace": "\x7f",
    "delete": "\x1b[3~",
    "f1": "\x1bOP",
    "f2": "\x1bOQ",
    "alt-enter": "\x1b\r",
    "escape": "\x1b",
    **{f"ctrl-{c}": chr(ord(c) - 96) for c in "acdeluwnrx"},
    **{f"alt-{d}": f"\x1b{d}" for d in "123456789a"},
}


#: Each TUI process takes its identity keys from the next slot of the test key pool: the
#: terminals of one test sign up with keys that differ.
_KEY_SLOTS = itertools.cycle(TUI_SLOTS)


SYNC_BEGIN = b"\x1b[?2026h"
SYNC_END = b"\x1b[?2026l"
_SYNC = re.compile(rb"(\x1b\[\?2026[hl])")


def _held_back(data: bytes) -> int:
    """How many bytes at the end of ``data`` could be the start of a sync marker."""
    for size in range(min(len(SYNC_BEGIN) - 1, len(data)), 0, -1):
        if SYNC_BEGIN.startswith(data[-size:]) or SYNC_END.startswith(data[-size:]):
            return size
    return 0


class _Pty(protocol.ProcessProtocol):
    """Feeds the TUI's output to a pyte screen the way a terminal with synchronized output
    shows it: inside a frame (between the TUI's sync markers) the screen as it was before the
    frame is what is read, so a test never reads a half-drawn frame."""

    def __init__(self, screen: pyte.Screen) -> None:
        self.screen = screen
        self.stream = pyte.ByteStream(screen)
        self.ended: defer.Deferred[int] = defer.Deferred()
        self.raw = bytearray()
        self.frames = 0
        self._held = b""
        #: The display as it was when the frame being drawn began (None: no frame open).
        self.shown: list[str] | None = None
        self.shown_cursor = (0, 0)
        #: ``screen.display`` as of the last byte fed (None: fed since).  pyte renders every
        #: cell on each ``display``; the tests poll it 50 times a second per terminal.
        self._rows: list[str] | None = None

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.raw += data
        data = self._held + data
        keep = _held_back(data)
        data, self._held = data[: len(data) - keep], data[len(data) - keep :]
        for part in _SYNC.split(data):
            if part == SYNC_BEGIN:
                self.shown = self._screen_rows()
                self.shown_cursor = (self.screen.cursor.y, self.screen.cursor.x)
            elif part == SYNC_END:
                self.shown = None
                self.frames += 1
            elif part:
                self.stream.feed(part)
                self._rows = None

    def forget_rows(self) -> None:
        """The screen changed other than by bytes fed (a resize)."""
        self._rows = None

    def _screen_rows(self) -> list[str]:
        if self._rows is None:
            self._rows = self.screen.display
        return self._rows

    def display(self) -> list[str]:
        """The rows a person would see now."""
        return self.shown if self.shown is not None else self._screen_rows()

    def cursor(self) -> tuple[int, int]:
        """Where a person would see the cursor now: (row, column)."""
        if self.shown is not None:
            return self.shown_cursor
        return self.screen.cursor.y, self.screen.cursor.x

    def processEnded(self, reason: object) -> None:
        code = getattr(getattr(reason, "value", None), "exitCode", None)
        self.ended.callback(code if isinstance(code, int) else -1)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


#: What a TUI run inside tmux gets (no status line, so the screen is the TUI's alone; no
#: wait after an ESC, so Alt-keys reach it as typed; /copy's OSC 52 passed on, as docs/tui.md
#: asks of tmux users).
TMUX_CONF = """\
set -g status off
set -g escape-time 0
set -g default-terminal tmux-256color
set -g exit-empty on
set -g set-clipboard on
"""


class Terminal:
    """``pychat`` (the TUI) in a pty of ``cols`` x ``rows``; with ``tmux``, inside a tmux
    session of its own (a tmux server on a private socket) in that pty, as people run it over
    SSH."""

    def __init__(
        self,
        home: Path,
        server: str,
        user: str,
        cols: int = 100,
        rows: int = 30,
        *,
        tmux: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.proto = _Pty(self.screen)
        master, slave = os.openpty()
        _set_size(slave, cols, rows)
        self.master = master
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYCHAT_TEST_KEY_SLOT": str(next(_KEY_SLOTS)),
            **(env or {}),
        }
        argv = [
            sys.executable,
            str(ROOT / "tests" / "tui_main.py"),  # ``python -m pychat``, with a cheap KDF
            "--server",
            server,
            "--home",
            str(home),
            "--user",
            user,
        ]
        self.tmux: str | None = None
        if tmux and shutil.which("tmux") is not None:  # without tmux: the pty alone
            home.mkdir(parents=True, exist_ok=True)
            (home / "tmux.conf").write_text(TMUX_CONF)
            # A socket in the test's own directory (gone with it), unless its path is too long
            # for a unix socket: then a private name in tmux's directory.
            socket = home / "tmux.sock"
            self.tmux = str(socket) if len(str(socket)) < 100 else f"{home.name}-{os.getpid()}"
            argv = [
                "tmux", *self.tmux_socket(), "-f", str(home / "tmux.conf"), "new-session",
                "-x", str(cols), "-y", str(rows), "--", *argv,
            ]  # fmt: skip
            argv[0] = str(shutil.which("tmux"))
        self.transport = reactor.spawnProcess(
            self.proto,
            argv[0],
            argv,
            env=env,
            path=str(ROOT),
            usePTY=(master, slave, os.ttyname(slave)),  # type: ignore[arg-type]
        )

    def tmux_socket(self) -> list[str]:
        """The options that name this terminal's tmux server."""
        assert self.tmux is not None
        return ["-S", self.tmux] if self.tmux.startswith("/") else ["-L", self.tmux]

    def text(self) -> str:
        return "\n".join(self.proto.display())

    def line(self, y: int) -> str:
        return self.proto.display()[y]

    def cursor(self) -> tuple[int, int]:
        return self.proto.cursor()

    def type(self, text: str) -> None:
        self.transport.write(text.encode())

    def press(self, *names: str) -> None:
        for name in names:
            self.transport.write(KEYS[name].encode())

    def resize(self, cols: int, rows: int) -> None:
        self.screen.resize(rows, cols)
        self.proto.forget_rows()
        _set_size(self.master, cols, rows)  # the kernel sends SIGWINCH to the TUI

    async def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        """Wait (bounded) until ``needle`` is on screen; return the screen text."""
        for _ in range(int(timeout / 0.02)):
            text = self.text()
            if needle in text:
                return text
            if self.proto.ended.called:
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        raise AssertionError(f"{needle!r} never appeared on screen:\n{self.text()}")

    async def wait_until(self, predicate, timeout: float = 20.0) -> str:  # type: ignore[no-untyped-def]
        """Wait (bounded) until ``predicate(self)`` holds; return the screen text."""
        for _ in range(int(timeout / 0.02)):
            if predicate(self):
                return self.text()
            await task.deferLater(reactor, 0.02, lambda: None)
        raise AssertionError(f"screen never got there:\n{self.text()}")

    async def wait_gone(self, needle: str, timeout: float = 20.0) -> str:
        for _ in range(int(timeout / 0.02)):
            text = self.text()
            if needle not in text:
                return text
            await task.deferLater(reactor, 0.02, lambda: None)
        raise AssertionError(f"{needle!r} stayed on screen:\n{self.text()}")

    async def quit(self) -> int | None:
        if not self.proto.ended.called:
            self.press("ctrl-c")
            for _ in range(500):
                if self.proto.ended.called:
                    break
                await task.deferLater(reactor, 0.02, lambda: None)
            if not self.proto.ended.called:
                self.transport.signalProcess("KILL")
        if self.tmux is not None:  # its server goes with its last session; if not, now
            subprocess.run(
                ["tmux", "-L", self.tmux, "kill-server"],
                capture_output=True,
                check=False,
                timeout=10,
            )
        return await self.proto.ended
