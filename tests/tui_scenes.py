"""The one setup of the pty tests: accounts, what was said before, and alice's real TUI in a
pseudo-terminal, logged in or at the form; the terminal quits and every client closes after,
whatever the test did."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pychat.client.session import ChatClient
from pychat.testing import RunningServer
from tests.client_helpers import signed_up
from tests.tui_terminal import Terminal

#: alice's password in every pty test (her peers' is "pw"), and the one she signs up with in
#: the TUI's own form (which refuses a weak one).
ALICE_PW = "alice-pw"
ALICE_NEW_PW = "alice-password"


@dataclass
class Scene:
    """alice's terminal and her peers' clients (logged in, by name)."""

    term: Terminal
    peers: dict[str, ChatClient] = field(default_factory=dict)

    @property
    def bob(self) -> ChatClient:
        return self.peers["bob"]


def address(server: RunningServer) -> str:
    """The server as the TUI's form takes it."""
    return f"127.0.0.1:{server.port}"


async def log_in(term: Terminal, password: str, expect: str) -> str:
    """Type the password into the form (server and name are filled in) and wait for
    ``expect``; the screen then."""
    await term.wait_for("Log in")
    term.type(password)
    term.press("enter")
    return await term.wait_for(expect)


async def accept_first_contact(term: Terminal) -> None:
    """The form checks a new server before the password is typed: accept its certificate."""
    await term.wait_for("First contact with")
    term.type("y")
    await term.wait_gone("First contact with")


async def sign_up(term: Terminal, password: str) -> None:
    """Accept the server's certificate (asked before any password), sign up in the form (F2),
    wait for the main screen."""
    await term.wait_for("Log in")
    await accept_first_contact(term)
    term.press("f2")
    await term.wait_for("Sign up")
    term.type(password)
    term.press("enter")
    term.type(password)
    term.press("enter")
    await term.wait_for("No conversation open")


@asynccontextmanager
async def tui(
    server: RunningServer,
    home: Path,
    *,
    cols: int = 100,
    rows: int = 30,
    env: dict[str, str] | None = None,
    tmux: bool = False,
) -> AsyncIterator[Terminal]:
    """alice's TUI at its form (inside tmux with ``tmux``), quit at the end."""
    async with tui_for(server, home, "alice", cols=cols, rows=rows, env=env, tmux=tmux) as term:
        yield term


@asynccontextmanager
async def tui_for(
    server: RunningServer,
    home: Path,
    user: str,
    *,
    cols: int = 100,
    rows: int = 30,
    tmux: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Terminal]:
    """``user``'s TUI at its form (inside tmux, with ``tmux``; with ``env`` besides its own
    environment), quit at the end."""
    term = Terminal(home, address(server), user, cols=cols, rows=rows, tmux=tmux, env=env)
    try:
        yield term
    finally:
        await term.quit()


@asynccontextmanager
async def alice_in_tui(
    server: RunningServer,
    tmp_path: Path,
    *,
    peers: Iterable[str] = ("bob",),
    said: Iterable[tuple[str, str, str]] = (),
    expect: str | None = None,
    sign_up_in_tui: bool = False,
    cols: int = 100,
    rows: int = 30,
    env: dict[str, str] | None = None,
    tmux: bool = False,
) -> AsyncIterator[Scene]:
    """alice and her ``peers`` signed up; each ``(sender, to, text)`` of ``said`` sent; then
    alice's TUI logged in (or, with ``sign_up_in_tui``, alice signed up in it) and showing
    ``expect`` (by default the last text said, or the empty main screen)."""
    clients = {name: await signed_up(server, tmp_path / name, name) for name in peers}
    alice: ChatClient | None = None
    if not sign_up_in_tui:
        alice = await signed_up(server, tmp_path / "alice", "alice", ALICE_PW)
    last = None
    for sender, to, text in said:
        client = clients.get(sender, alice)
        assert client is not None, "alice says nothing before she signs up"
        await client.send(to, text)
        last = text
    if alice is not None:
        await alice.close()
    try:
        async with tui(
            server, tmp_path / "alice", cols=cols, rows=rows, env=env, tmux=tmux
        ) as term:
            if sign_up_in_tui:
                await sign_up(term, ALICE_NEW_PW)
            else:
                await log_in(term, ALICE_PW, expect or last or "No conversation open")
            yield Scene(term, clients)
    finally:
        for client in clients.values():
            await client.close()


def history(count: int, marked: Iterable[int] = ()) -> list[tuple[str, str, str]]:
    """``count`` messages from bob to alice, "history line NNN", those numbered in ``marked``
    ending in " needle"."""
    marks = set(marked)
    return [
        ("bob", "alice", f"history line {i:03d}" + (" needle" if i in marks else ""))
        for i in range(1, count + 1)
    ]
