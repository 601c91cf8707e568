"""The TUI's pure parts: input editing, keys, scrolling, list ordering, rendering."""

from __future__ import annotations

import curses
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pychat.tui import width as width_module
from pychat.tui.actions import run_action
from pychat.tui.input_line import InputLine
from pychat.tui.keys import BINDINGS, Key, KeyDecoder
from pychat.tui.model import ChatModel, LoginForm, MessageItem, Modal
from pychat.tui.render import render_login, render_main, visible_message_lines
from pychat.tui.view import SYNC_BEGIN, SYNC_END, CursesView
from pychat.tui.width import clip, text_width, wrap

T0 = 1_764_196_800.0  # 2025-11-26, a fixed time for stable day separators


# -- input line --------------------------------------------------------------------------------


def test_typing_and_moving_the_cursor() -> None:
    line = InputLine()
    line.insert("héllo 世界")
    line.left()
    line.left()
    line.insert("🙂")
    assert line.text == "héllo 🙂世界" and line.cursor == 7
    line.home()
    line.delete()
    assert line.text == "éllo 🙂世界"
    line.end()
    line.backspace()
    assert line.text == "éllo 🙂世"


def test_ctrl_w_and_ctrl_u() -> None:
    line = InputLine()
    line.insert("one two  three")
    line.kill_word()
    assert line.text == "one two  "
    line.kill_word()
    assert line.text == "one "
    line.insert("x")
    line.left()
    line.kill_to_start()
    assert (line.text, line.cursor) == ("x", 0)


def test_history_keeps_the_draft() -> None:
    line = InputLine()
    for text in ("first", "second"):
        line.insert(text)
        line.take()
    line.insert("draft")
    line.history_prev()
    assert line.text == "second"
    line.history_prev()
    line.history_prev()
    assert line.text == "first"
    line.history_next()
    line.history_next()
    assert line.text == "draft"


def test_view_scrolls_to_keep_the_cursor_visible_by_display_width() -> None:
    line = InputLine()
    line.insert("世界" * 10)  # 40 cells
    visible, x = line.view(11)
    assert text_width(visible) <= 11 and x <= 10
    assert visible.endswith("界") and x == text_width(visible)
    line.home()
    visible, x = line.view(11)
    assert visible.startswith("世") and x == 0


def test_newlines_show_as_a_mark() -> None:
    line = InputLine()
    line.insert("a\nb")
    assert line.view(20) == ("a↵b", 3)


OPS = ["ins", "left", "right", "home", "end", "bs", "del", "w", "u"]


@given(st.lists(st.sampled_from(OPS), max_size=40), st.text(max_size=5))
def test_cursor_always_stays_inside_the_text(ops: list[str], chunk: str) -> None:
    line = InputLine()
    actions = {
        "left": line.left,
        "right": line.right,
        "home": line.home,
        "end": line.end,
        "bs": line.backspace,
        "del": line.delete,
        "w": line.kill_word,
        "u": line.kill_to_start,
    }
    for op in ops:
        if op == "ins":
            line.insert(chunk)
        else:
            actions[op]()
        assert 0 <= line.cursor <= len(line.text)
        visible, x = line.view(10)
        assert text_width(visible) <= 10 and 0 <= x <= 10


# -- keys --------------------------------------------------------------------------------------


def test_decoder_names_keys_and_collects_a_bracketed_paste() -> None:
    d = KeyDecoder()
    keys = d.feed(["a", "\x17", curses.KEY_PPAGE, "\x1b", "\r", "\x1b", "3"])
    assert [k.name for k in keys] == ["char", "ctrl-w", "pgup", "alt-enter", "alt-3"]
    pasted = d.feed(list("\x1b[200~line one\r\nline two\x1b[201~"))
    assert pasted == [Key("paste", "line one\nline two")]
    assert d.feed(["\x1b"]) == [Key("escape")]
    assert [k.name for k in d.feed(list("\x1b[5~\x1b[Z"))] == ["pgup", "btab"]


# -- width and wrapping ------------------------------------------------------------------------


def test_widths_of_wide_and_combining_characters() -> None:
    assert text_width("abc") == 3
    assert text_width("世界") == 4
    assert text_width("🙂") == 2
    assert text_width("e\u0301") == 1
    assert text_width("a\x1bb\x7f") == 2
    assert clip("世界x", 3) == "世"


@given(st.text(max_size=200), st.integers(min_value=1, max_value=50))
def test_wrapped_lines_fit(text: str, width: int) -> None:
    for line in wrap(text, width):
        assert text_width(line) <= max(width, 2)


def test_a_very_long_word_is_wrapped_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer's 30,000-character word without a space: each character is measured a few
    times, not once per line it is cut into (which froze every redraw for a second)."""
    measured = 0
    real = width_module.char_width

    def counting(ch: str) -> int:
        nonlocal measured
        measured += 1
        return real(ch)

    monkeypatch.setattr(width_module, "char_width", counting)
    word = "é" * 30_000
    lines = wrap(word, 80)
    assert lines == ["é" * 80] * 375
    assert measured <= 3 * len(word)


# -- conversations, scrolling ------------------------------------------------------------------


def _model() -> ChatModel:
    model = ChatModel(me="alice", server="localhost:8765")
    for peer, t in (("bob", 100.0), ("carol", 300.0), ("dave", 200.0)):
        model.conversation(peer).last_activity = T0 + t
    return model


def test_list_is_ordered_by_last_activity_and_reorders_on_new_messages() -> None:
    model = _model()
    assert [c.peer for c in model.ordered()] == ["carol", "dave", "bob"]
    model.add_message("bob", MessageItem(1, "bob", T0 + 500, "verified", "hi"), on_screen=False)
    assert [c.peer for c in model.ordered()] == ["bob", "carol", "dave"]
    assert model.conversations["bob"].unread == 1


def test_tab_cycles_and_alt_digit_selects() -> None:
    model = _model()
    assert model.cycle(1).peer == "carol"  # type: ignore[union-attr]
    assert model.cycle(1).peer == "dave"  # type: ignore[union-attr]
    assert model.cycle(-1).peer == "carol"  # type: ignore[union-attr]
    # Alt-digit goes by the conversation's number (the order it first appeared), not by
    # where activity has put it in the list.
    assert model.select_index(2).peer == "dave"  # type: ignore[union-attr]
    assert model.select_index(0).peer == "bob"  # type: ignore[union-attr]
    assert model.select_index(7) is None


def test_alt_a_goes_to_the_next_conversation_with_unread_messages() -> None:
    model = _model()
    model.select("carol")
    assert model.next_unread() is None  # nothing unread: stay
    assert model.current == "carol"
    model.conversation("bob").unread = 2
    model.conversation("dave").unread = 1
    # list order is carol, dave, bob: after carol comes dave, then bob, then round again
    assert model.next_unread().peer == "dave"  # type: ignore[union-attr]
    model.conversation("dave").unread = 0  # read on screen
    assert model.next_unread().peer == "bob"  # type: ignore[union-attr]


def test_close_hides_a_conversation_until_a_message_or_a_choice_brings_it_back() -> None:
    model = _model()
    model.select("carol")
    model.close("carol")
    assert [c.peer for c in model.ordered()] == ["dave", "bob"]
    assert model.current == "dave"  # the next one is on screen
    assert model.number("carol") == 2  # its number is kept for when it comes back
    model.add_message("carol", MessageItem(1, "carol", T0 + 900, "verified", "hi"), on_screen=False)
    assert model.ordered()[0].peer == "carol"
    model.close("bob")
    model.select("bob")  # /new bob or Alt-1
    assert "bob" in [c.peer for c in model.ordered()]


def test_selecting_a_conversation_places_the_new_messages_marker() -> None:
    model = _model()
    conv = model.conversation("bob")
    conv.last_seq, conv.unread = 10, 3
    model.select("bob")
    assert conv.marker_seq == 8


def test_scrolling_stops_at_the_top_and_reports_it() -> None:
    model = _model()
    conv = model.select("bob")
    for seq in range(1, 41):
        model.add_message(
            "bob", MessageItem(seq, "bob", T0 + seq, "verified", f"m{seq}"), on_screen=True
        )
    view, at_top = visible_message_lines(conv, "alice", 60, 10, "%H:%M")
    assert not at_top and "m40" in "".join(t for t, _ in view[-1])
    conv.scroll = 1000
    view, at_top = visible_message_lines(conv, "alice", 60, 10, "%H:%M")
    assert at_top and conv.scroll < 1000
    assert "PgUp loads older" in "".join(t for t, _ in view[0])


def _texts(view: list[list[tuple[str, str]]]) -> list[str]:
    return ["".join(t for t, _ in row) for row in view]


def test_scrolled_up_the_view_holds_still_and_says_what_is_below() -> None:
    model = _model()
    conv = model.select("bob")
    for seq in range(1, 41):
        model.add_message(
            "bob", MessageItem(seq, "bob", T0 + seq, "verified", f"m{seq}"), on_screen=True
        )
    visible_message_lines(conv, "alice", 60, 10, "%H:%M")  # drawn at the bottom
    conv.scroll = 15
    before, _ = visible_message_lines(conv, "alice", 60, 10, "%H:%M")
    assert _texts(before)[-1].strip("─").strip() == "more below · End"
    for seq in (41, 42):  # arrivals while scrolled up are not on screen: unread
        model.add_message(
            "bob", MessageItem(seq, "bob", T0 + seq, "verified", f"m{seq}"), on_screen=False
        )
    after, _ = visible_message_lines(conv, "alice", 60, 10, "%H:%M")
    assert _texts(after)[:-1] == _texts(before)[:-1]  # the same messages, in the same rows
    assert "more below (2 new) · End" in _texts(after)[-1]
    keys = KeyDecoder().feed(["\x1b[1;5F"])  # Ctrl-End as xterm sends it
    assert [k.name for k in keys] == ["ctrl-end"]


# -- rendering ---------------------------------------------------------------------------------


def test_main_screen_at_80x24() -> None:
    model = _model()
    model.select("bob")
    model.add_message(
        "bob", MessageItem(1, "bob", T0 + 1000, "verified", "hello 世界 🙂"), on_screen=True
    )
    model.add_message(
        "bob", MessageItem(2, "bob", T0 + 1001, "rejected", None, "cannot decrypt"), on_screen=True
    )
    model.add_message(
        "bob", MessageItem(3, "alice", T0 + 1002, "verified", "reply"), on_screen=True
    )
    model.add_message(
        "bob", MessageItem(4, "bob", T0 + 1003, "verified", "waves", action=True), on_screen=True
    )
    model.input.insert("typing…")
    frame = render_main(model, 80, 24, now=T0)
    text = frame.text()
    rows = text.splitlines()
    assert len(rows) == 24 and all(text_width(r) == 80 for r in rows)
    assert rows[0].startswith(" pyChat │ alice @ localhost:8765")
    assert " Conversations" in rows[1] and "bob" in text and "carol" in text
    assert "· bob: hello 世界 🙂" in text  # valid signature, peer not verified yet
    assert "✗ bob: [rejected: cannot decrypt]" in text
    assert "✓ alice: reply" in text
    assert "· * bob waves" in text  # an action (/me)
    assert rows[22].startswith("[online]") or rows[22].startswith("[connecting]")
    assert rows[23].startswith("bob> typing…")
    assert frame.cursor == (23, len("bob> typing…"))


def test_small_terminals_degrade_clearly() -> None:
    model = _model()
    model.select("bob")
    narrow = render_main(model, 60, 20, now=T0).text()
    assert " Conversations" not in narrow and "3 conversations (Tab)" in narrow
    tiny = render_main(model, 30, 6, now=T0).text()
    assert "terminal too small" in tiny


def test_modal_is_drawn_over_the_screen() -> None:
    model = _model()
    model.modals.append(Modal("BOB'S KEY CHANGED", ["compare safety numbers"], warning=True))
    text = render_main(model, 80, 24, now=T0).text()
    assert "BOB'S KEY CHANGED" in text and "(press any key)" in text


def test_login_screen_never_shows_the_password() -> None:
    form = LoginForm()
    form.server.insert("localhost")
    form.username.insert("alice")
    form.password.insert("hunter2")
    form.focus = 2
    text = render_login(form, 80, 24).text()
    assert "hunter2" not in text and "Log in" in text
    form.focus = 0
    assert "hunter2" not in render_login(form, 80, 24).text()


def test_a_long_status_line_is_cut_with_an_ellipsis() -> None:
    model = ChatModel()
    model.me, model.server = "alice", "127.0.0.1:8765"
    model.tell("the server did not answer history within 30 s; " * 4, error=True)
    status = render_main(model, 80, 24, now=0.0).text().splitlines()[-2]
    assert status.endswith("…") and text_width(status) == 80


def test_reconnecting_clears_an_error_from_while_it_was_offline(tmp_path: Path) -> None:
    from pychat.client.address import ServerAddress
    from pychat.client.session import ChatClient, ClientEvent
    from pychat.tui.client_events import handle_event
    from pychat.tui.main_screen import MainScreen
    from tests.tui_fakes import FakeHost

    model = ChatModel()
    client = ChatClient(ServerAddress("127.0.0.1", 8765), tmp_path)
    app = MainScreen(FakeHost(tmp_path), client, model)
    model.tell("not connected", error=True)
    handle_event(app, ClientEvent("connection", {"state": "online"}))
    assert model.notice == "" and model.connection == "online"


def test_messages_unreadable_for_one_reason_show_once_with_a_count() -> None:
    model = ChatModel()
    model.me = "bob"
    reason = "sent before bob's key change (unreadable on this device)"
    for seq in range(1, 6):
        model.add_message(
            "alice", MessageItem(seq, "alice", 0.0, "rejected", None, reason), on_screen=True
        )
    model.add_message("alice", MessageItem(6, "alice", 0.0, "verified", "hi again"), on_screen=True)
    model.select("alice")
    text = render_main(model, 100, 24, now=0.0).text()
    assert text.count("unreadable on this device") == 1
    assert "5 messages: [sent before bob's key change" in text and "hi again" in text


def test_a_cut_input_line_shows_an_ellipsis_where_text_is_hidden() -> None:
    line = InputLine()
    line.insert("abcdefghijklmnopqrstuvwxyz")
    visible, x = line.view(10)  # cursor at the end: text hidden on the left
    assert visible.startswith("…") and visible.endswith("z") and x == text_width(visible)
    line.home()
    visible, x = line.view(10)  # cursor at the start: hidden on the right
    assert visible.startswith("a") and visible.endswith("…") and x == 0
    for _ in range(13):
        line.right()
    visible, x = line.view(10)  # in the middle: the mark never covers the cursor's cell
    assert visible[0] == "…" and visible[x] == "n" and text_width(visible) == 10
    line.take()
    line.insert("世界" * 10)
    visible, x = line.view(11)
    assert visible.startswith("…") and text_width(visible) <= 11 and x == text_width(visible)


def test_conversation_numbers_stay_put_while_the_list_reorders() -> None:
    model = ChatModel()
    model.me = "me"
    for peer in ("ann", "bob", "cat"):
        model.conversation(peer)
    assert [model.number(p) for p in ("ann", "bob", "cat")] == [1, 2, 3]
    model.add_message("cat", MessageItem(1, "cat", 999.0, "verified", "hi"), on_screen=False)
    assert model.ordered()[0].peer == "cat"  # the list shows activity first ...
    assert model.select_index(1) is not None and model.current == "bob"  # ... Alt-2 is bob
    text = render_main(model, 80, 24, now=0.0).text()
    assert any(line.startswith("3") and "cat" in line[:22] for line in text.splitlines())


def test_editing_goes_by_what_a_person_sees_as_one_character() -> None:
    line = InputLine()
    line.insert("a🇯🇵👍🏽e\u0301")  # a, a flag, a thumbs-up with skin tone, e + combining accent
    line.backspace()
    assert line.text == "a🇯🇵👍🏽"  # the accented e went whole
    line.backspace()
    assert line.text == "a🇯🇵"  # the skin tone did not stay behind
    line.left()
    assert line.cursor == 1  # Left stepped over the whole flag
    line.delete()
    assert line.text == "a"
    line.insert("👨\u200d👩\u200d👧x")
    line.home()
    line.right()
    line.right()
    assert line.text[: line.cursor] == "a👨\u200d👩\u200d👧"


def test_end_goes_to_the_end_of_the_line_then_to_the_newest_message() -> None:
    model = _model()
    conv = model.select("bob")
    conv.scroll = 12
    model.input.insert("draft")
    model.input.home()
    app = SimpleNamespace(model=model)
    run_action(app, BINDINGS["end"])
    assert model.input.cursor == 5 and conv.scroll == 12
    run_action(app, BINDINGS["end"])
    assert conv.scroll == 0
    conv.scroll = 3
    run_action(app, BINDINGS["ctrl-end"])
    assert conv.scroll == 0


def test_the_new_messages_line_sits_above_the_first_message_not_seen() -> None:
    model = _model()
    conv = model.select("carol")
    model.add_message("bob", MessageItem(5, "bob", T0 + 5, "verified", "unseen"), on_screen=False)
    model.add_message("bob", MessageItem(6, "alice", T0 + 6, "verified", "mine"), on_screen=False)
    model.select("bob")
    assert model.conversations["bob"].marker_seq == 5  # not above alice's own message
    # scrolled up in the conversation on screen: the line goes above the first arrival
    conv = model.select("bob")
    conv.scroll, conv.unread = 4, 0
    model.add_message("bob", MessageItem(7, "bob", T0 + 7, "verified", "while up"), on_screen=False)
    model.add_message("bob", MessageItem(8, "bob", T0 + 8, "verified", "more"), on_screen=False)
    assert conv.marker_seq == 7 and conv.unread == 2


@given(
    text=st.text(alphabet="ab世🙂\u0301", max_size=60),
    cursor_at=st.floats(min_value=0, max_value=1),
    width=st.integers(min_value=1, max_value=20),
)
def test_the_input_view_keeps_as_much_as_fits_before_the_cursor(
    text: str, cursor_at: float, width: int
) -> None:
    line = InputLine(text=text, cursor=int(len(text) * cursor_at))
    _, x = line.view(width)
    before = text_width(text[: line.cursor])
    if before < width:
        assert x == before  # no scrolling while the start fits
    else:
        assert width - 2 <= x < width  # scrolled only as far as needed (a wide char may not fit)


def test_a_frame_is_drawn_as_one_synchronized_update() -> None:
    """The view brackets everything curses writes for a frame (at refresh) with the
    synchronized-output markers, so a terminal shows the frame whole or not at all."""
    events: list[object] = []

    class Screen:
        def erase(self) -> None:
            events.append("erase")

        def addstr(self, y: int, x: int, text: str, attr: int) -> None:
            events.append("addstr")

        def move(self, y: int, x: int) -> None: ...

        def refresh(self) -> None:
            events.append("refresh")

    view = CursesView(Screen(), colours=False, write=events.append)  # type: ignore[arg-type]
    view.draw(render_main(_model(), 80, 24, now=T0))
    assert events[0] == SYNC_BEGIN and events[-2:] == ["refresh", SYNC_END]
    assert events.count(SYNC_BEGIN) == events.count(SYNC_END) == 1

    class Failing(Screen):
        def refresh(self) -> None:
            raise curses.error("the terminal went away")

    events.clear()
    failing = CursesView(Failing(), colours=False, write=events.append)  # type: ignore[arg-type]
    with pytest.raises(curses.error):
        failing.draw(render_main(_model(), 80, 24, now=T0))
    assert events[0] == SYNC_BEGIN and events[-1] == SYNC_END  # the terminal is not left held


def test_a_notification_naming_a_group_cannot_inject_a_terminal_sequence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pychat.tui import notifications

    written: list[bytes] = []
    monkeypatch.setattr(notifications, "to_terminal", written.append)
    monkeypatch.delenv("TMUX", raising=False)
    notifications.notify("bob in #evil\x07\x1b]52;c;aGk=\x07;x")
    (raw,) = written
    assert raw.count(b"\x07") == 3  # the bell and the two sequences' own ends, nothing more
    assert raw.count(b"\x1b") == 2 and b"]52;" not in raw
    assert b"^G^[]52,c,aGk=^G,x" in raw
