"""Tab completion of commands and user names on the input line."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from pychat.tui.actions import run_action
from pychat.tui.completion import Completer
from pychat.tui.input_line import InputLine
from pychat.tui.model import ChatModel

COMMANDS = ["new", "query", "quit", "verify"]
NAMES = ["bob", "bobby", "carol"]


def _line(text: str) -> InputLine:
    line = InputLine()
    line.insert(text)
    return line


def test_a_command_completes_and_tab_again_steps_through_the_matches() -> None:
    line, completer = _line("/q"), Completer()
    assert completer.complete(line, COMMANDS, NAMES)
    assert (line.text, line.cursor) == ("/query ", 7)
    completer.complete(line, COMMANDS, NAMES)
    assert line.text == "/quit "
    completer.complete(line, COMMANDS, NAMES)
    assert line.text == "/query "  # round again


def test_names_complete_anywhere_and_text_after_the_cursor_stays() -> None:
    line, completer = _line("hi B and more"), Completer()
    line.cursor = 4  # after "B"
    assert completer.complete(line, COMMANDS, NAMES)
    assert (line.text, line.cursor) == ("hi bob  and more", 7)
    completer.complete(line, COMMANDS, NAMES)
    assert (line.text, line.cursor) == ("hi bobby  and more", 9)
    line.insert("x")  # typing ends the cycle: the next Tab completes afresh
    assert not completer.complete(line, COMMANDS, NAMES)
    assert line.text == "hi bobby x and more"


def test_a_command_name_is_not_completed_as_a_user_name() -> None:
    line, completer = _line("/new car"), Completer()
    assert completer.complete(line, COMMANDS, NAMES)
    assert line.text == "/new carol "
    assert not Completer().complete(_line("//q"), COMMANDS, NAMES)


def test_tab_switches_conversations_only_on_an_empty_line() -> None:
    model = ChatModel(me="alice", server="memory")
    for peer in ("bob", "carol"):
        model.conversation(peer)
    model.select("bob")
    app = SimpleNamespace(model=model, guard=lambda work: None, show=lambda peer: None)
    run_action(app, "complete_or_next")
    assert model.current == "carol" and model.input.text == ""
    model.input.insert("/ver")
    run_action(app, "complete_or_next")
    assert model.current == "carol" and model.input.text == "/verify "
    model.input.take()
    model.input.insert("zz")
    run_action(app, "complete_or_next")
    assert (model.input.text, model.notice) == ("zz", "nothing to complete")


@given(
    before=st.text(alphabet="ab /", max_size=12),
    after=st.text(alphabet="ab /", max_size=6),
    presses=st.integers(min_value=1, max_value=4),
)
def test_completion_only_ever_replaces_the_word_before_the_cursor(
    before: str, after: str, presses: int
) -> None:
    line, completer = _line(before + after), Completer()
    line.cursor = len(before)
    start = max(before.rfind(" "), before.rfind("\n")) + 1
    for _ in range(presses):
        if not completer.complete(line, ["ab", "ba"], ["a", "ab", "b"]):
            assert line.text == before + after
            return
    assert line.text.startswith(before[:start]) and line.text.endswith(" " + after)
    assert line.text[line.cursor - 1] == " " and 0 <= line.cursor <= len(line.text)
