"""Image previews (pychat/tui/previews.py, pictures.py): the real TUI in a pty, bob sends
alice images, and her screen shows them: in half blocks (read cell by cell with pyte, inside
tmux), in the kitty graphics protocol and in sixel (read in the bytes written to the
terminal); a file that only claims to be an image, and one with too many pixels, get a line
saying why there is no preview; with ``images = "off"`` nothing is fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from PIL import Image

from pychat.testing import RunningServer
from tests.tui_scenes import alice_in_tui

SAID = [("bob", "alice", "look at this")]
RED, BLUE = (255, 0, 0), (0, 0, 255)
#: A cell of each half as pyte reads it: both pixels the colour (foreground, background).
RED_CELL, BLUE_CELL = ("ff0000", "ff0000"), ("0000ff", "0000ff")


def _config(tmp_path: Path, images: str) -> None:
    folder = tmp_path / "alice" / "config" / "pychat"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(f'images = "{images}"\n')


def _flag(path: Path) -> Path:
    """A 60 x 40 picture: red on the left, blue on the right."""
    image = Image.new("RGB", (60, 40), RED)
    image.paste(BLUE, (30, 0, 60, 40))
    image.save(path)
    return path


@pytest_twisted.ensureDeferred
async def test_a_received_image_shows_in_half_blocks_inside_tmux(
    server: RunningServer, tmp_path: Path
) -> None:
    _config(tmp_path, "auto")  # inside tmux: half blocks
    async with alice_in_tui(server, tmp_path, said=SAID, tmux=True) as scene:
        term = scene.term
        await scene.bob.files.send("alice", _flag(tmp_path / "flag.png"))
        await term.wait_for("📎 bob sent flag.png")
        await term.wait_until(lambda t: "▀" in t.text())
        # 60 x 40 pixels fit 40 cells of two pixels each as 30 x 20: 30 cells by 10 rows
        await term.wait_until(lambda t: len(_blocks(t)) == 30 * 10)
        cells = _blocks(term)
        left = min(x for x, _, _ in cells)
        colours = {x - left: (fg, bg) for x, fg, bg in cells}
        assert colours == {x: (RED_CELL if x < 15 else BLUE_CELL) for x in range(30)}, colours
        assert not list((tmp_path / "alice").rglob("flag*.png"))  # not kept on disk


def _blocks(term) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    """(column, foreground, background) of each half-block cell on screen."""
    out = []
    for y in range(term.screen.lines):
        row = term.screen.buffer[y]
        for x in range(term.screen.columns):
            if row[x].data == "▀":
                out.append((x, row[x].fg, row[x].bg))
    return out


@pytest.mark.parametrize(
    ("images", "start"),
    [("kitty", b"\x1b_Ga=t,f=100,q=2,i="), ("sixel", b'\x1bP0;1;0q"1;1;')],
)
@pytest_twisted.ensureDeferred
async def test_kitty_and_sixel_terminals_get_the_picture_in_their_protocol(
    images: str, start: bytes, server: RunningServer, tmp_path: Path
) -> None:
    _config(tmp_path, images)
    async with alice_in_tui(server, tmp_path, said=SAID) as scene:
        term = scene.term
        await scene.bob.files.send("alice", _flag(tmp_path / "flag.png"))
        await term.wait_for("📎 bob sent flag.png")
        await term.wait_until(lambda t: start in t.proto.raw)
        if images == "kitty":
            await term.wait_until(lambda t: b"\x1b_Ga=p,q=2,i=" in t.proto.raw)
        await term.quit()
        if images == "kitty":  # the terminal forgets the pictures at quit
            assert b"\x1b_Ga=d,d=A,q=2\x1b\\" in term.proto.raw


@pytest_twisted.ensureDeferred
async def test_no_preview_for_a_disguised_file_or_a_pixel_bomb(
    server: RunningServer, tmp_path: Path
) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"#!/bin/sh\necho not a picture\n" * 20)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)  # 81 million pixels in a few kilobytes
    async with alice_in_tui(server, tmp_path, said=SAID) as scene:
        term, bob = scene.term, scene.bob
        await bob.files.send("alice", fake)
        await term.wait_for("(no preview: not a PNG, JPEG, GIF or WebP image)")
        await bob.files.send("alice", bomb)
        await term.wait_for("(no preview: too large")
        assert term.proto.raw.count(b"\xe2\x96\x80") == 0  # no half block drawn


@pytest_twisted.ensureDeferred
async def test_with_images_off_nothing_is_fetched_or_drawn(
    server: RunningServer, tmp_path: Path
) -> None:
    _config(tmp_path, "off")
    async with alice_in_tui(server, tmp_path, said=SAID) as scene:
        term = scene.term
        await scene.bob.files.send("alice", _flag(tmp_path / "flag.png"))
        await term.wait_for("📎 bob sent flag.png")
        await scene.bob.send("alice", "said after the picture")
        screen = await term.wait_for("said after the picture")
        assert "preview" not in screen
        assert "▀" not in screen
