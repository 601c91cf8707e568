"""The saved input history: read back only what it should be, never trusted blindly."""

from __future__ import annotations

from pathlib import Path

from pychat.tui.input_history import MAX_LINE, load_history, save_history
from pychat.tui.input_line import HISTORY_LIMIT


def test_saved_lines_come_back_in_order_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "alice.history.json"
    save_history(path, ["first", "/new bob", "héllo 🙂"])
    assert load_history(path) == ["first", "/new bob", "héllo 🙂"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_missing_damaged_or_foreign_file_gives_what_is_sound(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    assert load_history(path) == []
    for bad in (b"not json", b'{"a": 1}', b"\xff\xfe", b"null"):
        path.write_bytes(bad)
        assert load_history(path) == []
    path.write_text('["ok", 3, null, "", "' + "x" * (MAX_LINE + 1) + '", "fine"]')
    assert load_history(path) == ["ok", "fine"]
    save_history(path, [f"line {i}" for i in range(HISTORY_LIMIT + 50)])
    kept = load_history(path)
    assert len(kept) == HISTORY_LIMIT and kept[-1] == f"line {HISTORY_LIMIT + 49}"
