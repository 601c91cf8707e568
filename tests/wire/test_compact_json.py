"""The fast JSON encoder writes exactly what ``json.dumps`` writes with the same options."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat.wire.compact_json import compact_bytes_encoder, compact_encoder

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def _documents(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects and lists of nested ``scalars``."""
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
    return st.dictionaries(st.text(), values, max_size=6) | st.lists(values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(obj=_documents(_scalars))
def test_the_same_text_as_json_dumps(obj: Any) -> None:
    for allow_nan in (False, True):
        expected = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
        assert compact_encoder(allow_nan=allow_nan)(obj) == expected


def test_nan_and_infinities_are_refused_unless_allowed() -> None:
    strict, lenient = compact_encoder(allow_nan=False), compact_encoder(allow_nan=True)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            strict({"time": bad})
    assert lenient({"x": math.inf}) == '{"x":Infinity}'


def test_what_is_not_json_is_refused() -> None:
    with pytest.raises(TypeError, match="bytes"):
        compact_encoder(allow_nan=False)({"ciphertext": b"raw"})


def test_a_bare_string_is_encoded_too() -> None:
    assert compact_encoder(allow_nan=False)('é"\n') == json.dumps('é"\n', ensure_ascii=False)


def _pairs(text: bytes | str) -> Any:
    """The decoded value with every object as its list of pairs (so key order counts), NaN
    as a marker (so it equals itself)."""
    return json.loads(text, object_pairs_hook=list, parse_constant=lambda name: ("const", name))


def _outcome(f: Any, obj: Any) -> Any:
    try:
        return f(obj)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        return type(exc)


#: Everything, NaN, lone surrogates and what is not JSON included.
_any_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=()))
    | st.binary(max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(obj=_documents(_any_scalars))
def test_the_bytes_encoder_writes_the_same_values_and_refuses_the_same(obj: Any) -> None:
    for allow_nan in (False, True):
        text = _outcome(compact_encoder(allow_nan=allow_nan), obj)
        general = _outcome(str.encode, text) if isinstance(text, str) else text
        fast = _outcome(compact_bytes_encoder(allow_nan=allow_nan), obj)
        if isinstance(general, bytes):
            assert isinstance(fast, bytes)
            assert _pairs(fast) == _pairs(general)
        else:
            assert fast is general  # the same refusal


def test_the_bytes_encoder_refuses_nan_unless_allowed_and_writes_none_as_null() -> None:
    strict, lenient = compact_bytes_encoder(allow_nan=False), compact_bytes_encoder(allow_nan=True)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            strict({"time": bad})
    assert lenient({"x": math.nan, "y": None}) == b'{"x":NaN,"y":null}'
    assert strict({"id": None, "ok": False}) == b'{"id":null,"ok":false}'
