"""Line framing: how received bytes become lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pychat.wire.framing import LineBuffer, Oversized, encode_line


def test_lines_split_on_newline_and_drop_carriage_return() -> None:
    buf = LineBuffer(100)
    assert buf.feed(b'{"a":1}\r\n{"b"') == [b'{"a":1}']
    assert buf.feed(b":2}\n") == [b'{"b":2}']


def test_line_at_the_limit_is_accepted() -> None:
    buf = LineBuffer(10)
    assert buf.feed(b"x" * 10 + b"\n") == [b"x" * 10]


def test_line_over_the_limit_is_reported_even_before_its_newline() -> None:
    buf = LineBuffer(10)
    assert buf.feed(b"x" * 5) == []
    assert buf.feed(b"x" * 7) == [Oversized(10)]
    # Nothing after an oversized line is parsed: there is no frame boundary to trust.
    assert buf.feed(b"\nok\n") == []


def test_complete_oversized_line_is_reported_after_earlier_good_lines() -> None:
    buf = LineBuffer(4)
    assert buf.feed(b"ab\n" + b"y" * 6 + b"\nzz\n") == [b"ab", Oversized(4)]


@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
)
def test_any_split_of_the_stream_yields_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    buf = LineBuffer(100)
    out: list[bytes | Oversized] = []
    prev = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        out += buf.feed(stream[prev:cut])
        prev = cut
    expected = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    assert out == expected


def test_encode_line_is_compact_utf8_json_with_newline() -> None:
    assert encode_line({"t": "héllo 🙂"}) == '{"t":"héllo 🙂"}\n'.encode()
