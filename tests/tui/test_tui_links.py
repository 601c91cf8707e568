"""Links and copying (pychat/tui/links.py): only http, https and mailto links, whose target is
the text shown; nothing a peer writes can end or start an escape sequence; /links and /copy."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st

from pychat.testing import MemoryServer
from pychat.text.safe import visible
from pychat.tui.commands import run_command
from pychat.tui.links import clipboard, find_links, hyperlink
from tests.tui.test_tui_commands import main_screen


def test_links_are_found_as_shown_and_only_of_three_schemes() -> None:
    text = "see https://example.org/a?b=1#c, mail mailto:bob@example.org. javascript:alert(1)"
    assert [link.url for link in find_links(text)] == [
        "https://example.org/a?b=1#c",
        "mailto:bob@example.org",
    ]
    hostile = visible("https://ok.example/x\x1b]8;;https://evil.example/\x1b\\click")
    assert [link.url for link in find_links(hostile)] == [
        "https://ok.example/x",
        "https://evil.example/",
    ]
    assert hyperlink("https://ok.example/x") == (
        b"\x1b]8;;https://ok.example/x\x1b\\https://ok.example/x\x1b]8;;\x1b\\"
    )


@given(st.text())
def test_no_text_makes_a_link_that_breaks_out_of_its_sequence(text: str) -> None:
    for link in find_links(visible(text)):
        assert re.fullmatch(r"(https?://|mailto:)[\x21-\x7e]+", link.url)
        drawn = hyperlink(link.url)
        assert drawn.count(b"\x1b") == 4 and b"\x07" not in drawn  # only its own framing


@pytest_twisted.ensureDeferred
async def test_links_lists_and_copy_writes_osc_52(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pychat.tui.links.has_display", lambda: False)
    memory = MemoryServer(tmp_path / "data")
    alice = await memory.signed_up(tmp_path / "alice", "alice")
    bob = await memory.signed_up(tmp_path / "bob", "bob")
    await bob.send("alice", "the menu: https://example.org/menu and mailto:chef@example.org")
    await bob.send("alice", "dinner at 8 ✓")
    app, host = main_screen(alice, tmp_path)
    await app.load_conversations()
    await app.show("bob")
    await run_command(app, "/links")
    assert host.shown[-1].lines[:2] == [
        "  1  https://example.org/menu",
        "  2  mailto:chef@example.org",
    ]
    await run_command(app, "/links 1")  # no display in the tests: shown, and on the clipboard
    assert host.shown[-1].lines[0] == "https://example.org/menu"
    assert host.written[-1] == clipboard("https://example.org/menu")
    await run_command(app, "/copy")
    assert host.written[-1] == b"\x1b]52;c;" + base64.b64encode("dinner at 8 ✓".encode()) + b"\x07"
    await run_command(app, "/copy #1")
    payload = host.written[-1].removeprefix(b"\x1b]52;c;").removesuffix(b"\x07")
    assert base64.b64decode(payload).decode().startswith("the menu: https://example.org/menu")
