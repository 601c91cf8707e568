"""A message's push put together from its record's text says what the general encoder's says
(the same fields, in the same order, with the same values), and a record keeps the text it was
sealed as."""

from __future__ import annotations

import json
from typing import Any, cast

from hypothesis import example, given
from hypothesis import strategies as st

from pychat.store.conversation import Conversation
from pychat.wire.compact_json import compact_encoder
from pychat.wire.envelope import encode_event
from pychat.wire.message_text import RECORD_FIELDS, MessageRecord, message_push_line, record_bytes
from pychat.wire.shapes import StoredMessage

#: Any character at all, lone surrogates included (the encoders must agree on those too).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NUMBERS = st.one_of(
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none()
)
VALUES = st.one_of(ANY_TEXT, NUMBERS, st.lists(st.integers(), max_size=2))

general_record = compact_encoder(allow_nan=True)


def plain(
    seq: Any, sender: Any, epoch: Any, ciphertext: Any, client_id: Any, time: Any
) -> dict[str, Any]:
    return {
        "seq": seq,
        "sender": sender,
        "epoch": epoch,
        "ciphertext": ciphertext,
        "client_id": client_id,
        "time": time,
    }


shapes = st.one_of(
    st.builds(plain, st.integers(), ANY_TEXT, st.integers(), ANY_TEXT, ANY_TEXT, NUMBERS),
    st.builds(plain, VALUES, VALUES, VALUES, VALUES, VALUES, VALUES),
    st.dictionaries(st.sampled_from(["seq", "sender", "time", "blob", "expires"]), VALUES),
    st.builds(lambda d: dict(reversed(list(d.items()))), st.builds(plain, *[VALUES] * 6)),
)
#: Records as the store makes them: the values of the types named, or any values at all.
made_plain = st.one_of(
    st.builds(MessageRecord.plain, st.integers(), ANY_TEXT, st.integers(), ANY_TEXT,
              ANY_TEXT, NUMBERS),
    st.builds(MessageRecord.plain, *[VALUES] * 6),
)  # fmt: skip
#: Plain dicts, and records that keep their text (as the store makes them).
records = st.one_of(shapes, shapes.map(MessageRecord), made_plain)


def outcome(f: Any, *args: Any) -> Any:
    """What ``f(*args)`` returns, or the type of what it raises."""
    try:
        return f(*args)
    except Exception as exc:  # the exception's type is what is compared
        return type(exc)


def general_push(conversation: str, record: dict[str, Any]) -> bytes:
    """The push as the server's general path writes it: message_json's fields, in its order."""
    fields = {name: record[name] for name in RECORD_FIELDS}
    return encode_event("message", {"conversation": conversation, **fields})


def said(result: Any) -> Any:
    """A text's fields and values in one spelling (orjson writes 1e-7 where Python writes
    1e-07: the same number); anything else (a refusal) as it is."""
    if not isinstance(result, bytes):
        return result
    return general_record(json.loads(result, object_pairs_hook=list))


@given(records)
@example(plain(1, "alice", 1, "Zm9v", "c-1", 1e-07))
@example(MessageRecord(plain(1, "alice", 1, "Zm9v", "c-1", 1e-07)))
def test_a_record_is_sealed_as_the_general_encoder_writes_it(record: dict[str, Any]) -> None:
    expected = said(outcome(lambda r: general_record(r).encode(), dict(record)))
    first = outcome(record_bytes, record)
    assert said(first) == expected
    assert outcome(record_bytes, record) == first  # the kept text, the second time


@given(ANY_TEXT, records)
@example("c0ffee", MessageRecord(plain(1, "alice", 1, "Zm9v", "c-1", 1e-07)))
def test_a_push_is_the_line_the_general_encoder_writes(
    conversation: str, record: dict[str, Any]
) -> None:
    line = outcome(message_push_line, conversation, record)
    if line is None:  # not of the plain shape: the caller takes the general path
        return
    assert said(line) == said(outcome(general_push, conversation, record))


def test_a_plain_record_takes_the_short_path_and_others_do_not() -> None:
    record = MessageRecord(plain(7, "alice", 1, "Zm9v", "c-1", 1700000000.25))
    assert message_push_line("c0ffee", record) == (
        b'{"event":"message","conversation":"c0ffee","seq":7,"sender":"alice","epoch":1,'
        b'"ciphertext":"Zm9v","client_id":"c-1","time":1700000000.25}\n'
    )
    disappearing = {**record, "blob": "b1", "expires": 1700000100}
    assert message_push_line("c0ffee", disappearing) is None
    assert message_push_line("c0ffee", {**record, "time": float("nan")}) is None


def test_only_a_record_of_the_types_named_with_a_finite_time_skips_the_scans() -> None:
    def finite(*values: Any) -> bool:
        return MessageRecord.plain(*values).is_plain_and_finite()

    assert finite(7, "alice", 1, "Zm9v", "c-1", 1700000000.25)
    assert finite(7, "alice", 1, "Zm9v", "c-1", 1700000000)
    assert not finite(7, "alice", 1, "Zm9v", "c-1", float("nan"))
    assert not finite(7, "alice", 1, "Zm9v", "c-1", float("inf"))
    assert not finite(7, "alice", True, "Zm9v", "c-1", 1.5)
    assert not finite(7, "alice", 1, None, "c-1", 1.5)
    assert not finite(7.0, "alice", 1, "Zm9v", "c-1", 1.5)
    record = MessageRecord.plain(7, "alice", 1, "Zm9v", "c-1", float("-inf"))
    assert message_push_line("c0ffee", record) is None


def test_the_general_push_has_the_fields_the_short_path_writes_in_the_same_order() -> None:
    from types import SimpleNamespace

    from pychat.server.handlers.conversation_ops import message_json

    record = cast(StoredMessage, plain(7, "alice", 1, "Zm9v", "c-1", 1.5))
    conv = cast(Conversation, SimpleNamespace(id="c0ffee"))
    assert tuple(message_json(conv, record)) == ("conversation", *RECORD_FIELDS)
    assert message_push_line("c0ffee", record) == encode_event(
        "message", message_json(conv, record)
    )


def test_a_record_in_flight_keeps_only_its_short_text_and_no_spare_capacity() -> None:
    import tracemalloc

    small = MessageRecord(plain(1, "alice", 1, "x" * 300, "c-1", 1.5))
    large = MessageRecord(plain(2, "alice", 1, "x" * 40_000, "c-2", 1.5))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        length = len(small.text())
        assert len(large.text()) > 40_000
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The small text, with no spare capacity (orjson's buffer held 4 KiB for it); the large
    # one not at all.  The margin is for whatever another thread allocates meanwhile.
    assert kept <= length + 2048
