"""The request envelope: which lines are requests and which error each bad one gets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pychat.wire.envelope import (
    EnvelopeError,
    Request,
    encode_ok,
    parse_json_line,
    parse_request,
)
from pychat.wire.errors import ErrorCode


def test_well_formed_request_parses() -> None:
    line = b'{"id": 1, "op": "hello", "version": 1}'
    assert parse_request(line) == Request(id=1, op="hello", fields={"version": 1}, size=len(line))


def test_a_reply_carries_the_id_and_ok_before_its_fields() -> None:
    assert encode_ok(7, {"seq": 2, "time": 1.5}) == b'{"id":7,"ok":true,"seq":2,"time":1.5}\n'


@pytest.mark.parametrize("key", ["id", "ok"])
def test_a_result_may_not_set_the_reply_id_or_ok(key: str) -> None:
    with pytest.raises(ValueError, match="may not set"):
        encode_ok(7, {"seq": 2, key: 3})


@pytest.mark.parametrize(
    ("line", "code", "request_id"),
    [
        (b"{not json", ErrorCode.MALFORMED_JSON, None),
        (b"\xff\xfe", ErrorCode.MALFORMED_JSON, None),
        (b'{"id": 1, "op": "x", "v": NaN}', ErrorCode.MALFORMED_JSON, None),
        (b'{"id": 1, "id": 2, "op": "x"}', ErrorCode.MALFORMED_JSON, None),
        # Compact, as clients write (the fast decoder's path): still refused.
        (b'{"id":1,"op":"x","op":"y"}', ErrorCode.MALFORMED_JSON, None),
        (b'{"id":1,"op":"x","e":{"k":1,"k":2}}', ErrorCode.MALFORMED_JSON, None),
        (b'{"id":1,"op":"x","v":NaN}', ErrorCode.MALFORMED_JSON, None),
        (b"[1, 2]", ErrorCode.NOT_AN_OBJECT, None),
        (b'"hello"', ErrorCode.NOT_AN_OBJECT, None),
        (b'{"op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": "1", "op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": 1.5, "op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": true, "op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": -1, "op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": 9007199254740992, "op": "hello"}', ErrorCode.BAD_ID, None),
        (b'{"id": 7}', ErrorCode.BAD_FIELD, 7),
        (b'{"id": 7, "op": 3}', ErrorCode.BAD_FIELD, 7),
    ],
)
def test_bad_envelopes_get_their_error_code(
    line: bytes, code: ErrorCode, request_id: int | None
) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_request(line)
    assert info.value.code is code
    assert info.value.request_id == request_id


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_request(b"[" * 100_000 + b"]" * 100_000)
    assert info.value.code in (ErrorCode.MALFORMED_JSON, ErrorCode.NOT_AN_OBJECT)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_request_or_an_envelope_error(line: bytes) -> None:
    try:
        req = parse_request(line)
    except EnvelopeError as exc:
        assert exc.code in set(ErrorCode)
    else:
        assert isinstance(req.id, int) and isinstance(req.op, str)


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=6,
    )
)
def test_any_json_object_parses_or_is_refused_with_a_code(obj: dict[str, object]) -> None:
    try:
        req = parse_request(json.dumps(obj).encode())
    except EnvelopeError as exc:
        assert exc.code in (ErrorCode.BAD_ID, ErrorCode.BAD_FIELD, ErrorCode.UNKNOWN_OP)
    else:
        assert req.id == obj["id"] and req.op == obj["op"]


def _strict(line: bytes) -> object:
    """What the standard strict decoder makes of ``line`` (or the type of its refusal)."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    def no_constant(name: str) -> object:
        raise ValueError(name)

    try:
        return json.loads(line, object_pairs_hook=unique, parse_constant=no_constant)
    except (ValueError, RecursionError):
        return EnvelopeError


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_json_values, st.sampled_from(["compact", "spaced", "duplicated"]))
def test_the_fast_decoder_agrees_with_the_strict_one(value: object, form: str) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if form == "spaced":
        text = json.dumps(value)
    elif form == "duplicated" and text.startswith("{") and text != "{}":
        text = text[:-1] + "," + text[1:]  # every key of the outer object twice
    line = text.encode("utf-8", "surrogatepass")
    try:
        got: object = parse_json_line(line)
    except EnvelopeError:
        got = EnvelopeError
    expected = _strict(line)
    assert got == expected
