"""Request parameter schemas: untrusted JSON fields in, a frozen dataclass out.

Each op declares its parameters as a frozen dataclass.  :func:`parse_params` checks the
received fields against it once, at the edge, so handlers only ever see typed values:

- a field without a default is required; unknown fields are refused;
- ``int`` never accepts a bool, ``str`` never accepts a number;
- ``list[T]`` and ``dict[str, Any]`` are checked one level deep;
- bounds come from :func:`bounded` (``min``/``max`` for ints, ``max_len`` for strings and lists).

Every violation is a ``bad_field`` error that names the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, NamedTuple, TypeVar, Union

from pychat.wire.encoding import b64decode
from pychat.wire.errors import ErrorCode, ProtocolError

T = TypeVar("T")

_MISSING = dataclasses.MISSING


def bounded(
    *,
    default: Any = _MISSING,
    min: int | None = None,
    max: int | None = None,
    max_len: int | None = None,
    min_len: int | None = None,
) -> Any:
    """A dataclass field with bounds that :func:`parse_params` enforces."""
    metadata = {"min": min, "max": max, "max_len": max_len, "min_len": min_len}
    if default is _MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def bad_field(name: str, message: str) -> ProtocolError:
    """The ``bad_field`` error for one named field."""
    return ProtocolError(ErrorCode.BAD_FIELD, f"field '{name}': {message}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "a boolean"
    if tp is float:
        return "a number"
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or tp is dict:
        return "an object"
    return str(tp)


def _check(name: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    if tp is str:  # the common case first, before any typing introspection
        if not isinstance(value, str):
            raise bad_field(name, "must be a string")
        _check_len(name, value, meta, "characters")
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union in schema for {name}")
        return _check(name, value, inner[0], meta)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad_field(name, "must be a boolean")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_field(name, "must be an integer")
        if meta.get("min") is not None and value < meta["min"]:
            raise bad_field(name, f"must be at least {meta['min']}")
        if meta.get("max") is not None and value > meta["max"]:
            raise bad_field(name, f"must be at most {meta['max']}")
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad_field(name, "must be a number")
        return float(value)
    if origin is list:
        if not isinstance(value, list):
            raise bad_field(name, "must be a list")
        _check_len(name, value, meta, "items")
        (item_tp,) = typing.get_args(tp)
        return tuple(_check(f"{name}[{i}]", item, item_tp, {}) for i, item in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad_field(name, "must be an object")
        return value
    raise TypeError(f"unsupported type {tp!r} in schema for {name}")


def _check_len(name: str, value: Any, meta: Mapping[str, Any], unit: str) -> None:
    if meta.get("max_len") is not None and len(value) > meta["max_len"]:
        raise bad_field(name, f"must be at most {meta['max_len']} {unit}")
    if meta.get("min_len") is not None and len(value) < meta["min_len"]:
        raise bad_field(name, f"must be at least {meta['min_len']} {unit}")


def parse_params(cls: type[T], fields: Mapping[str, Any]) -> T:
    """Build ``cls`` (a dataclass) from received fields, or raise ``bad_field``.

    Lists arrive as tuples so the result is deeply immutable where it matters.
    """
    plan = _PLANS.get(cls) or _plan(cls)
    checks = plan.checks
    if not checks.keys() >= fields.keys():
        for name in fields:
            if name not in checks:
                raise bad_field(name, "is not a field of this op")
    values = plan.defaults.copy()
    for name, value in fields.items():
        values[name] = checks[name](value)
    if len(values) < len(checks):
        for name in plan.required:
            if name not in values:
                raise bad_field(name, f"is required and must be {_type_name(plan.types[name])}")
    built: T = plan.build(values)
    return built


_Checker = Callable[[Any], Any]


class _Plan(NamedTuple):
    """How :func:`parse_params` builds one dataclass, worked out once."""

    #: Each field's checker, by name.
    checks: dict[str, _Checker]
    #: The default of every optional field.
    defaults: dict[str, Any]
    #: The fields without a default, in declaration order.
    required: tuple[str, ...]
    types: dict[str, Any]
    #: Checked values (every field) in, the instance out.
    build: Callable[[dict[str, Any]], Any]


#: The plan of every parameter class seen so far.
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """Work out how to check and build ``cls``, once."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    if any(f.default_factory is not _MISSING for f in fields):
        raise TypeError(f"{cls!r}: a parameter field may not have a default factory")
    plan = _PLANS[cls] = _Plan(
        checks={f.name: _checker(f.name, hints[f.name], f.metadata) for f in fields},
        defaults={f.name: f.default for f in fields if f.default is not _MISSING},
        required=tuple(f.name for f in fields if f.default is _MISSING),
        types={f.name: hints[f.name] for f in fields},
        build=_builder(cls),
    )
    return plan


def _builder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """Makes an instance of the dataclass ``cls`` from every field's checked value.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: most
    of the cost of a request's parameters.  With no ``__post_init__`` and a ``__dict__``, the
    values (already checked, every field present) become the instance's attributes at once;
    the instance is the same, equal to the one ``__init__`` would make."""
    if hasattr(cls, "__post_init__") or "__slots__" in vars(cls):
        return lambda values: cls(**values)
    new = object.__new__

    def build(values: dict[str, Any]) -> Any:
        instance: Any = new(cls)
        instance.__dict__.update(values)
        return instance

    return build


def _checker(name: str, tp: Any, meta: Mapping[str, Any]) -> _Checker:
    """A function that checks one field's value (what :func:`_check` does, with the type's
    introspection done once): the common types get a direct check."""
    if tp is str:
        longest, shortest = meta.get("max_len"), meta.get("min_len")
        if longest is None and shortest is None:

            def check_any_str(value: Any) -> Any:
                if type(value) is not str and not isinstance(value, str):
                    raise bad_field(name, "must be a string")
                return value

            return check_any_str
        if longest is None:
            return lambda value: _check(name, value, tp, meta)
        least = shortest or 0

        def check_str(value: Any) -> Any:
            if type(value) is not str and not isinstance(value, str):
                raise bad_field(name, "must be a string")
            if not least <= len(value) <= longest:
                _check_len(name, value, meta, "characters")
            return value

        return check_str
    if tp is int:
        low, high = meta.get("min"), meta.get("max")

        def check_int(value: Any) -> Any:
            if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
                raise bad_field(name, "must be an integer")
            if low is not None and value < low:
                raise bad_field(name, f"must be at least {low}")
            if high is not None and value > high:
                raise bad_field(name, f"must be at most {high}")
            return value

        return check_int
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = typing.get_args(tp)
        inner = [o for o in options if o is not type(None)]
        if type(None) in options and len(inner) == 1:
            check_inner = _checker(name, inner[0], meta)
            return lambda value: None if value is None else check_inner(value)
    return lambda value: _check(name, value, tp, meta)


def b64_bytes(name: str, value: str, *, min_len: int = 0, max_len: int | None = None) -> bytes:
    """Decode a standard base64 field (with padding) and check its decoded length.

    :raises ProtocolError: ``bad_field`` naming the field.
    """
    try:
        raw = b64decode(value)
    except ValueError:
        raise bad_field(name, "must be standard base64") from None
    if len(raw) < min_len:
        raise bad_field(name, f"must decode to at least {min_len} bytes")
    if max_len is not None and len(raw) > max_len:
        raise bad_field(name, f"must decode to at most {max_len} bytes")
    return raw
