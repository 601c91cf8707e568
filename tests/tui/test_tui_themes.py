"""Themes (pychat/tui/themes.py), rendered by the real TUI in a pty and read cell by cell with
pyte: the dark and light themes paint every cell, and every character stands out from its
background by a contrast of at least 4.5 (WCAG AA; 3 for the lines between panes); the
terminal's own theme, and any theme under NO_COLOR, sets no colour at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.testing import RunningServer
from tests.tui_scenes import alice_in_tui
from tests.tui_terminal import Terminal

#: The 16 colours pyte names, as xterm draws them.
NAMED = {
    "black": "000000", "red": "cd0000", "green": "00cd00", "brown": "cdcd00",
    "blue": "0000ee", "magenta": "cd00cd", "cyan": "00cdcd", "white": "e5e5e5",
}  # fmt: skip
LINES = set("│─┌┐└┘├┤")


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    high, low = sorted((luminance(NAMED.get(fg, fg)), luminance(NAMED.get(bg, bg))), reverse=True)
    return (high + 0.05) / (low + 0.05)


def cells(term: Terminal) -> list[tuple[str, str, str]]:
    """(character, foreground, background) of every drawn character (reverse applied)."""
    out = []
    for y in range(term.screen.lines):
        row = term.screen.buffer[y]
        for x in range(term.screen.columns):
            cell = row[x]
            if cell.data.strip():
                fg, bg = (cell.bg, cell.fg) if cell.reverse else (cell.fg, cell.bg)
                out.append((cell.data, fg, bg))
    return out


def _config(tmp_path: Path, theme: str) -> None:
    folder = tmp_path / "alice" / "config" / "pychat"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(f'theme = "{theme}"\n')


SAID = [("bob", "alice", "hello from bob"), ("alice", "bob", "hi bob, alice here")]


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest_twisted.ensureDeferred
async def test_each_theme_is_readable_everywhere(
    theme: str, server: RunningServer, tmp_path: Path
) -> None:
    _config(tmp_path, theme)
    peers = ("bob", "carol")  # inside tmux, as over SSH: its colours are what is read
    async with alice_in_tui(server, tmp_path, peers=peers, said=SAID, tmux=True) as scene:
        term = scene.term
        await scene.peers["carol"].send("alice", "carol, unread")
        await term.wait_until(lambda t: "carol" in t.text())
        screens = [cells(term)]
        term.press("f1")
        await term.wait_for("Commands:")
        screens.append(cells(term))
    for drawn in screens:
        assert drawn and all(fg != "default" and bg != "default" for _, fg, bg in drawn)
        worst = min((contrast(fg, bg), ch, fg, bg) for ch, fg, bg in drawn if ch not in LINES)
        assert worst[0] >= 4.5, worst
        lines = [contrast(fg, bg) for ch, fg, bg in drawn if ch in LINES]
        assert min(lines) >= 3.0


@pytest.mark.parametrize(("theme", "no_color"), [("terminal", False), ("dark", True)])
@pytest_twisted.ensureDeferred
async def test_the_terminals_own_colours_and_no_color_set_none(
    theme: str, no_color: bool, server: RunningServer, tmp_path: Path
) -> None:
    _config(tmp_path, theme)
    env = {"NO_COLOR": "1"} if no_color else None
    async with alice_in_tui(server, tmp_path, said=SAID, env=env) as scene:
        drawn = cells(scene.term)
    assert drawn and all(fg == "default" and bg == "default" for _, fg, bg in drawn)
