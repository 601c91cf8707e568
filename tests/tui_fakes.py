"""A stand-in for the running TUI app, for driving the TUI's screens without a terminal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from pychat.client.config import ClientConfig
from pychat.client.session import ChatClient
from pychat.tui.model import Modal


class FakeHost:
    """A :class:`~pychat.tui.context.ScreenHost` that keeps what would be drawn or shown:
    boxes in ``shown``, guarded work run at once (its failure raised), a fake clock."""

    def __init__(self, home: Path, *, height: int = 24, width: int = 80) -> None:
        self.home = home
        self.config = ClientConfig()
        self.ca: Path | None = None
        self.clock = Clock()
        self.shown: list[Modal] = []
        self.redraws = 0
        self.quitting = False
        self._size = (height, width)
        #: What was written to the terminal as it is (escape sequences).
        self.written: list[bytes] = []

    def to_terminal(self, data: bytes) -> None:
        self.written.append(data)

    def suspended(self, run: Callable[[], None]) -> None:
        run()

    def now(self) -> float:
        return float(self.clock.seconds())

    def redraw(self) -> None:
        self.redraws += 1

    def clear_screen(self) -> None:
        self.redraw()

    def view_size(self) -> tuple[int, int]:
        return self._size

    def guard(self, work: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> None:
        awaitable = work() if callable(work) else work
        defer.ensureDeferred(_awaited(awaitable))

    def show_modal(self, modal: Modal) -> None:
        self.shown.append(modal)

    def ask(self, modal: Modal) -> defer.Deferred[bool]:
        self.shown.append(modal)
        return defer.succeed(False)

    def call_later(self, seconds: float, what: Callable[[], None]) -> None:
        self.clock.callLater(seconds, what)

    def quit(self) -> None:
        self.quitting = True

    async def logged_in(self, client: ChatClient, username: str) -> None:
        raise AssertionError("a test of one screen does not switch screens")


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
