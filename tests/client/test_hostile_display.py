"""What a mischievous peer sends is shown as data: in ``pychat read`` and in the TUI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from pychat.client.cli import _run
from pychat.client.cli_parser import build_parser
from pychat.testing import RunningServer
from tests.client_helpers import signed_up
from tests.tui_terminal import Terminal

pytestmark = pytest.mark.usefixtures("cheap_kdf")

NUL = "nul\x00inside"
TERMINAL_TRICKS = "\x1b[2J\x1b]0;pwned\x07after"
FORGED = "innocent\n2026-01-01 00:00 #99 alice: send me your password"
BIDI = "\u202eevil\u202c and C1 \x9b31m"
TEXTS = [NUL, TERMINAL_TRICKS, FORGED, BIDI]
RAW_CONTROLS = [chr(c) for c in range(0x20) if c != 0x0A] + ["\x7f", "\x9b", "\u202e"]


async def _mischief(server: RunningServer, tmp_path: Path) -> None:
    dave = await signed_up(server, tmp_path / "dave", "dave")
    erin = await signed_up(server, tmp_path / "erin", "erin")
    await erin.close()
    for text in TEXTS:
        await dave.send("erin", text)
    await dave.close()


async def _read(
    server: RunningServer, home: Path, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> int:
    monkeypatch.setenv("PYCHAT_PASSWORD", "pw")
    argv = ["read", "dave", "--server", f"127.0.0.1:{server.port}", "--home", str(home)]
    argv += ["--user", "erin", *extra]
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))
    return await _run(reactor, build_parser().parse_args(argv))


@pytest_twisted.ensureDeferred
async def test_read_shows_control_characters_as_escapes_and_marks_continuations(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _mischief(server, tmp_path)
    assert await _read(server, tmp_path / "erin", monkeypatch) == 0
    out = capsys.readouterr().out
    for raw in RAW_CONTROLS:
        assert raw not in out, repr(raw)
    lines = out.splitlines()
    assert lines[0].endswith("#1 dave: nul^@inside")
    assert lines[1].endswith("#2 dave: ^[[2J^[]0;pwned^Gafter")
    assert lines[2].endswith("#3 dave: innocent")
    # the peer's second line cannot pass for a message of alice's: it sits behind the gutter
    assert lines[3] == "    │ 2026-01-01 00:00 #99 alice: send me your password"
    assert lines[4].endswith("#4 dave: <U+202E>evil<U+202C> and C1 <U+009B>31m")
    assert len(lines) == 5


@pytest_twisted.ensureDeferred
async def test_read_json_keeps_the_text_exact_and_the_terminal_safe(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _mischief(server, tmp_path)
    assert await _read(server, tmp_path / "erin", monkeypatch, "--json") == 0
    out = capsys.readouterr().out
    for raw in RAW_CONTROLS:
        assert raw not in out, repr(raw)
    assert [json.loads(line)["text"] for line in out.splitlines()] == TEXTS


@pytest_twisted.ensureDeferred
async def test_tui_logs_in_and_shows_a_nul_and_escape_sequences_safely(
    server: RunningServer, tmp_path: Path
) -> None:
    await _mischief(server, tmp_path)
    term = Terminal(tmp_path / "erin", f"127.0.0.1:{server.port}", "erin")
    try:
        await term.wait_for("Log in")
        term.type("pw")
        term.press("enter")
        screen = await term.wait_for("nul^@inside")  # not stuck on "working…"
        assert "^[[2J^[]0;pwned^Gafter" in screen
        assert "│ 2026-01-01 00:00 #99 alice: send me your password" in screen
        assert "<U+202E>evil" in screen
        assert term.screen.title != "pwned"
        raw = bytes(term.proto.raw)
        assert b"\x00" not in raw and b"pwned\x07" not in raw and "\u202e".encode() not in raw
    finally:
        await term.quit()
