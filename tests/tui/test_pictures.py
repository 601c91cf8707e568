"""The preview worker (pychat/tui/image_worker.py) run as the TUI runs it, and the bytes that
draw its pictures (pychat/tui/pictures.py): what is decoded, what is refused and why, and
what each terminal protocol gets."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from pychat.tui import previews
from pychat.tui.image_worker import Request, preview, sixel
from pychat.tui.model import ConversationState, MessageItem, Preview
from pychat.tui.pictures import (
    KITTY_CHUNK,
    Picture,
    block_row,
    drawing_mode,
    kitty_place,
    kitty_send,
)


def _worker(*args: str) -> tuple[int, dict[str, object]]:
    """The worker as the TUI starts it: its exit code and its answer."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", previews._WORKER, *args],
        capture_output=True,
        timeout=60,
        env={"LC_ALL": "C.UTF-8"},
    )
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif", ".webp"])
def test_each_format_becomes_half_blocks_of_its_shape(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"wide{suffix}"
    Image.new("RGB", (400, 100), (0, 200, 0)).save(path)
    code, answer = _worker("blocks", "40", "10", "10", "20", str(path))
    assert code == 0 and (answer["cols"], answer["rows"]) == (40, 5)  # 40 x 10 pixels
    pixels = base64.b64decode(str(answer["data"]))
    assert len(pixels) == 40 * 5 * 2 * 3
    assert all(abs(a - b) < 8 for a, b in zip(pixels[:3], (0, 200, 0), strict=True))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"MZ\x90\x00 a program, named like a picture", "not a PNG, JPEG, GIF or WebP image"),
        (b"BM" + b"\x00" * 60, "not a PNG, JPEG, GIF or WebP image"),  # BMP: not taken
    ],
)
def test_what_is_not_one_of_the_four_formats_is_refused(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    assert _worker("blocks", "40", "10", "10", "20", str(path)) == (1, {"error": why})


def test_a_damaged_image_and_a_pixel_bomb_are_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    Image.effect_noise((200, 200), 60).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:2000])
    code, answer = _worker("blocks", "40", "10", "10", "20", str(cut))
    assert code == 1 and str(answer["error"]).startswith("damaged image")
    bomb = tmp_path / "bomb.gif"
    Image.new("L", (8000, 8000)).save(bomb)  # 64 million pixels
    code, answer = _worker("kitty", "40", "10", "10", "20", str(bomb))
    assert code == 1 and str(answer["error"]).startswith("too large")


def test_a_bad_call_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    code, answer = _worker("blocks", "0", "10", "10", "20", str(tmp_path / "none.png"))
    assert code == 2 and "out of range" in str(answer["error"])


def test_sixel_has_the_size_a_palette_and_a_band_per_six_rows() -> None:
    image = Image.new("RGB", (30, 14), (255, 0, 0))
    image.paste((0, 0, 255), (15, 0, 30, 14))
    data = sixel(image)
    assert data.startswith(b'\x1bP0;1;0q"1;1;30;14') and data.endswith(b"\x1b\\")
    assert data.count(b"-") == 3  # 14 rows: bands of 6, 6 and 2
    assert len(re.findall(rb"#\d+;2;", data)) == 2  # red and blue
    assert b"!15~" in data  # 15 pixels of a full band in one run


def test_kitty_sends_in_chunks_once_then_places_by_number() -> None:
    image = Image.effect_noise((120, 120), 90).convert("RGB")
    answer = preview(image.convert("RGBA"), Request("kitty", 12, 6, 10, 20))
    png = base64.b64decode(str(answer["data"]))
    picture = Picture("kitty", int(str(answer["cols"])), int(str(answer["rows"])), png, 7)
    sent = kitty_send(picture)
    parts = re.findall(rb"\x1b_G([^;]*);([A-Za-z0-9+/=]*)\x1b\\", sent)
    assert parts[0][0] == b"a=t,f=100,q=2,i=7,m=1" and parts[-1][0] == b"m=0"
    assert all(len(chunk) <= KITTY_CHUNK for _, chunk in parts)
    assert base64.b64decode(b"".join(chunk for _, chunk in parts)) == png
    assert kitty_place(picture) == b"\x1b_Ga=p,q=2,i=7,p=1,c=%d,r=%d,C=1\x1b\\" % (
        picture.cols,
        picture.rows,
    )


def test_a_half_block_row_in_24_bit_and_in_the_256_colour_palette() -> None:
    red, blue = bytes((255, 0, 0)), bytes((0, 0, 255))
    picture = Picture("blocks", 2, 1, red + blue + red + red)  # top: red blue; bottom: red red
    assert block_row(picture, 0, True) == (
        b"\x1b[38;2;255;0;0;48;2;255;0;0m\xe2\x96\x80"
        b"\x1b[38;2;0;0;255;48;2;255;0;0m\xe2\x96\x80\x1b[0m"
    )
    assert block_row(picture, 0, False) == (
        b"\x1b[38;5;196;48;5;196m\xe2\x96\x80\x1b[38;5;21;48;5;196m\xe2\x96\x80\x1b[0m"
    )


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({"TERM": "xterm-kitty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "kitty"),
        ({"TERM": "foot"}, "sixel"),
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, "blocks"),
        ({"TERM": "xterm-256color"}, "blocks"),
    ],
)
def test_auto_picks_what_the_terminal_draws(env: dict[str, str], mode: str) -> None:
    assert drawing_mode("auto", env) == mode
    assert drawing_mode("off", env) == "off"


@pytest.mark.parametrize(
    "printed",
    [
        b"not json",
        b'{"cols": 900, "rows": 1, "data": ""}',
        b'{"cols": 2, "rows": 1, "data": "AAAA"}',  # too few pixels for 2 x 1 cells
        b'{"error": "\\u001b[2Jdamaged"}',
    ],
)
def test_what_a_worker_prints_is_checked_before_it_is_drawn(printed: bytes) -> None:
    maker = previews.Previews(None, "blocks", (1, 1))  # type: ignore[arg-type]
    with pytest.raises(previews.WorkerFailed):
        maker.picture_from(printed)


def test_a_disappearing_images_preview_goes_with_its_message() -> None:
    conv = ConversationState("bob")
    item = MessageItem(4, "bob", 100.0, "verified", "📎 bob sent a.png", kind="file")
    conv.messages[4] = replace(item, expires=160.0, file_name="a.png", file_size=90)
    conv.previews[4] = Preview("ready", Picture("blocks", 1, 1, bytes(6)))
    assert not conv.drop_expired(159.0) and 4 in conv.previews
    assert conv.drop_expired(160.0)
    assert conv.previews == {}  # the picture is not kept in memory after its message


class _Host:
    """Enough of a TUI for :class:`previews.Previews` to queue work."""

    def __init__(self) -> None:
        self.started = 0

    def guard(self, work: object) -> None:
        self.started += 1


def test_a_preview_made_for_a_wider_pane_is_made_again_to_fit() -> None:
    conv = ConversationState("bob")
    item = MessageItem(4, "bob", 100.0, "verified", "📎 bob sent a.png", kind="file")
    conv.messages[4] = replace(item, file_name="a.png", file_size=90)
    conv.previews[4] = Preview("ready", Picture("blocks", 40, 2, bytes(40 * 4 * 3)))
    host = _Host()
    maker = previews.Previews(host, "blocks", (1, 1))  # type: ignore[arg-type]
    maker.look_at(conv, 77)  # it fits: left as it is
    assert conv.previews[4].state == "ready" and host.started == 0
    maker.look_at(conv, 40)  # narrower than 6 + 40 cells: made again
    assert conv.previews[4].state == "loading" and host.started == 1
