"""Op parameter schemas turn received fields into typed values or a bad_field error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat.wire import schema
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bounded, parse_params


@dataclass(frozen=True)
class Sample:
    name: str = bounded(max_len=5)
    count: int = bounded(min=0, max=10)
    tags: list[str] = bounded(default=(), max_len=2)
    note: str | None = None
    flag: bool = False


def test_valid_fields_build_the_dataclass() -> None:
    got = parse_params(Sample, {"name": "ab", "count": 3, "tags": ["x"], "flag": True})
    made = Sample(name="ab", count=3, tags=("x",), note=None, flag=True)  # type: ignore[arg-type]
    assert got == made
    assert (hash(got), repr(got)) == (hash(made), repr(made))
    with pytest.raises(FrozenInstanceError):
        got.name = "other"  # type: ignore[misc]


@dataclass(frozen=True)
class Checked:
    value: int = bounded(min=0)

    def __post_init__(self) -> None:
        if self.value == 13:
            raise ValueError("unlucky")


def test_a_dataclass_with_post_init_is_built_through_its_init() -> None:
    assert parse_params(Checked, {"value": 12}) == Checked(12)
    with pytest.raises(ValueError, match="unlucky"):
        parse_params(Checked, {"value": 13})


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"count": 1}, "field 'name': is required"),
        ({"name": 3, "count": 1}, "field 'name': must be a string"),
        ({"name": "abcdef", "count": 1}, "at most 5"),
        ({"name": "a", "count": True}, "field 'count': must be an integer"),
        ({"name": "a", "count": 11}, "at most 10"),
        ({"name": "a", "count": -1}, "at least 0"),
        ({"name": "a", "count": 1, "tags": "x"}, "must be a list"),
        ({"name": "a", "count": 1, "tags": [1]}, "field 'tags[0]': must be a string"),
        ({"name": "a", "count": 1, "tags": ["a", "b", "c"]}, "at most 2 items"),
        ({"name": "a", "count": 1, "flag": 1}, "must be a boolean"),
        ({"name": "a", "count": 1, "extra": 1}, "field 'extra': is not a field"),
    ],
)
def test_bad_fields_name_the_field(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_params(Sample, fields)
    assert info.value.code is ErrorCode.BAD_FIELD
    assert fragment in info.value.message


# The checkers compiled per field must agree with the general check, value for value.
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=100),
    st.sampled_from([0, 1, 5, 64, 65]),  # the bounds and their neighbours
    st.sampled_from(["", "a", "abc", "abcd", "abcdefgh", "abcdefghi"]),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_TYPES = [str, int, str | None, int | None, bool, float]
_BOUNDS = st.fixed_dictionaries(
    {
        "min": st.sampled_from([None, 0, 1]),
        "max": st.sampled_from([None, 5, 64]),
        "max_len": st.sampled_from([None, 3, 8]),
        "min_len": st.sampled_from([None, 1]),
    }
)


def _outcome(fn: Callable[[], object]) -> object:
    try:
        return ("ok", fn())
    except ProtocolError as exc:
        return ("refused", exc.code, exc.message)


@settings(max_examples=400)
@given(value=_VALUES, tp=st.sampled_from(_TYPES), meta=_BOUNDS)
def test_compiled_checks_agree_with_the_general_check(
    value: object, tp: object, meta: dict[str, int | None]
) -> None:
    compiled = schema._checker("f", tp, meta)
    assert _outcome(lambda: compiled(value)) == _outcome(
        lambda: schema._check("f", value, tp, meta)
    )
