"""Compact JSON text for the busiest paths (protocol lines, sealed records).

:func:`compact_bytes_encoder` writes with orjson (a Rust encoder, ten times the C
accelerator's speed on a message's objects) and falls back to the standard encoder for
whatever orjson would write differently in meaning: a value it refuses (a lone surrogate, an
integer past 64 bits, a key that is not a string) and any text holding ``null`` (orjson writes
NaN and the infinities as ``null``; the standard encoder refuses them or writes them as
``allow_nan`` says).  Numbers may be spelled differently (``1e16`` for ``1e+16``); the values
are the same.

``json.JSONEncoder.encode`` builds a new C encoder object (and a dict to track circular
references) on every call; for the three small objects a message costs (the sealed record,
the reply, the push) that set-up was a third of each encoding.  These encoders are built
once, by the same C accelerator ``json`` itself uses, without the circular-reference check
(the objects are plain dicts and lists built by pyChat).  Without the accelerator they fall
back to ``json.JSONEncoder``: the same text, slower.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _json_encoder
from typing import Any

import orjson

_c_make_encoder = getattr(_json_encoder, "c_make_encoder", None)


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_encoder(*, allow_nan: bool) -> Callable[[Any], str]:
    """A function from an object to its JSON text: separators ``,`` and ``:``, non-ASCII
    kept as is; NaN and infinities refused unless ``allow_nan``."""
    fallback = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    if _c_make_encoder is None:  # pragma: no cover - CPython always has the accelerator
        return fallback.encode
    try:
        c_encoder = _c_make_encoder(
            None,  # no circular-reference check
            _not_json,
            _json_encoder.encode_basestring,
            None,  # no indent
            ":",
            ",",
            False,  # keys in insertion order
            False,  # non-string keys refused
            allow_nan,
        )
    except TypeError:  # pragma: no cover - an interpreter whose accelerator takes other arguments
        return fallback.encode

    def encode(obj: Any) -> str:
        if isinstance(obj, str):  # the C encoder takes containers; json.dumps takes anything
            return fallback.encode(obj)
        return "".join(c_encoder(obj, 0))

    return encode


#: orjson hands these to ``default`` (which refuses them), where it would otherwise write what
#: the standard encoder refuses: dataclasses and dates.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def compact_bytes_encoder(*, allow_nan: bool) -> Callable[[Any], bytes]:
    """A function from an object to its compact JSON as UTF-8 bytes: the same value
    :func:`compact_encoder` writes, refused where it refuses.  The bytes may hold more memory
    than their length (orjson's buffer): copy what is kept for long."""
    general = compact_encoder(allow_nan=allow_nan)
    dumps = orjson.dumps

    def encode(obj: Any) -> bytes:
        try:
            text = dumps(obj, _not_json, _ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: let the general encoder say what is wrong
            return general(obj).encode()
        if b"null" in text:  # perhaps a NaN or an infinity written as null
            return general(obj).encode()
        return text

    return encode


def finite_bytes_encoder(*, allow_nan: bool) -> Callable[[Any], bytes]:
    """:func:`compact_bytes_encoder` for objects known to hold no NaN and no infinity (a
    message record the store made, with a finite time): orjson's text then needs no scan for
    the ``null`` it writes in their place, a scan of the whole text (a third of a
    microsecond for a 300-byte message).  Whatever orjson refuses still goes to the general
    encoder."""
    general = compact_encoder(allow_nan=allow_nan)
    dumps = orjson.dumps

    def encode(obj: Any) -> bytes:
        try:
            return dumps(obj, _not_json, _ORJSON_OPTIONS)
        except TypeError:
            return general(obj).encode()

    return encode
