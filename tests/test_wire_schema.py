"""Op parameter schemas turn received fields into typed values or a bad_field error."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

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
    assert got == Sample(name="ab", count=3, tags=("x",), note=None, flag=True)  # type: ignore[arg-type]


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
