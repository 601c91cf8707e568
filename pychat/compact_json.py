"""Compact JSON text for the busiest paths (protocol lines, sealed records).

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
