"""Run the real TUI in a pseudo-terminal and read its screen with pyte."""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
from pathlib import Path

import pyte
from twisted.internet import defer, protocol, reactor, task

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
    "f2": "\x1bOQ",
    "alt-enter": "\x1b\r",
    "escape": "\x1b",
    **{f"ctrl-{c}": chr(ord(c) - 96) for c in "acdeluwnr"},
    **{f"alt-{d}": f"\x1b{d}" for d in "123456789a"},
}


class _Pty(protocol.ProcessProtocol):
    def __init__(self, stream: pyte.ByteStream) -> None:
        self.stream = stream
        self.ended: defer.Deferred[int] = defer.Deferred()
        self.raw = bytearray()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.raw += data
        self.stream.feed(data)

    def processEnded(self, reason: object) -> None:
        self.ended.callback(getattr(reason.value, "exitCode", None))  # type: ignore[attr-defined]


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """``pychat`` (the TUI) in a pty of ``cols`` x ``rows``."""

    def __init__(self, home: Path, server: str, user: str, cols: int = 100, rows: int = 30) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.proto = _Pty(pyte.ByteStream(self.screen))
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
        }
        argv = [
            sys.executable,
            "-m",
            "pychat",
            "--server",
            server,
            "--home",
            str(home),
            "--user",
            user,
        ]
        self.transport = reactor.spawnProcess(  # type: ignore[attr-defined]
            self.proto,
            argv[0],
            argv,
            env=env,
            path=str(ROOT),
            usePTY=(master, slave, os.ttyname(slave)),
        )

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def line(self, y: int) -> str:
        return self.screen.display[y]

    def type(self, text: str) -> None:
        self.transport.write(text.encode())

    def press(self, *names: str) -> None:
        for name in names:
            self.transport.write(KEYS[name].encode())

    def resize(self, cols: int, rows: int) -> None:
        self.screen.resize(rows, cols)
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
        return await self.proto.ended
