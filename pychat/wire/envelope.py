"""The request envelope: turns one received line into a :class:`Request` or a typed error.

A request is a JSON object with an integer ``id``, a string ``op`` and the op's own fields.
Replies echo the ``id``; pushes carry ``event`` and no ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from pychat import limits
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.framing import encode_line


class Request(NamedTuple):
    """A well-formed request envelope; ``fields`` is everything but ``id`` and ``op``.  A
    named tuple: one is made for every line received."""

    id: int
    op: str
    fields: Mapping[str, Any]
    #: Bytes of the line it came in (what the server holds for it until it is answered).
    size: int = 0


class EnvelopeError(ProtocolError):
    """A line that is not a usable request.  ``request_id`` is known when the id was readable."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | None = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are how two parsers come to disagree about one message; refuse them.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return obj


_orjson_loads, _orjson_dumps = orjson.loads, orjson.dumps

#: Built once: ``json.loads`` with options builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def parse_json_line(line: bytes) -> Any:
    """Decode one line as strict JSON (UTF-8, no NaN/Infinity, no duplicate keys).

    A line that orjson decodes and that is, byte for byte, what orjson writes for what it
    decoded cannot have held a duplicate key (its text would be longer): most lines, since
    clients write compact JSON.  Every other line goes through the strict standard decoder,
    which refuses duplicates and says what is wrong.

    :raises EnvelopeError: ``malformed_json``.
    """
    try:
        obj = _orjson_loads(line)
    except ValueError:  # orjson.JSONDecodeError: the strict decoder says what is wrong
        pass
    else:
        if _orjson_dumps(obj) == line:
            return obj
    try:
        return _DECODER.decode(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EnvelopeError(
            ErrorCode.MALFORMED_JSON, f"line is not valid UTF-8 JSON: {exc}"
        ) from None


def valid_id(value: Any) -> bool:
    """Whether ``value`` is usable as a request id: a non-negative JSON integer (not a bool)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= limits.MAX_REQUEST_ID
    )


def parse_request(line: bytes) -> Request:
    """Parse one line into a :class:`Request`.

    :raises EnvelopeError: ``malformed_json``, ``not_an_object``, ``bad_id`` or ``bad_field``
        (for a missing or non-string ``op``).  ``request_id`` is set when the id was valid, so
        the error reply can echo it.
    """
    obj = parse_json_line(line)
    if not isinstance(obj, dict):
        raise EnvelopeError(ErrorCode.NOT_AN_OBJECT, "a request must be a JSON object")
    if "id" not in obj:
        raise EnvelopeError(ErrorCode.BAD_ID, "a request needs an integer 'id'")
    request_id = obj["id"]
    if not valid_id(request_id):
        raise EnvelopeError(
            ErrorCode.BAD_ID, f"'id' must be an integer from 0 to {limits.MAX_REQUEST_ID}"
        )
    op = obj.get("op")
    if not isinstance(op, str):
        raise EnvelopeError(ErrorCode.BAD_FIELD, "'op' must be a string", request_id)
    if len(op) > limits.MAX_OP_NAME:
        raise EnvelopeError(ErrorCode.UNKNOWN_OP, "'op' is too long to be an op name", request_id)
    del obj["id"], obj["op"]  # the rest are the fields (the dict is fresh: no copy needed)
    return Request(id=request_id, op=op, fields=obj, size=len(line))


def encode_ok(request_id: int, result: Mapping[str, Any]) -> bytes:
    """The line of a successful reply: ``{"id": .., "ok": true, ...result}``."""
    body: dict[str, Any] = {"id": request_id, "ok": True, **result}
    if len(body) != len(result) + 2:  # the result held "id" or "ok"
        raise ValueError("result may not set 'id' or 'ok'")
    return encode_line(body)


def encode_error(request_id: int | None, error: ProtocolError) -> bytes:
    """The line of a failed reply; ``id`` is null when the request's id was unreadable."""
    return encode_line({"id": request_id, "ok": False, "error": error.to_json()})


def encode_event(event: str, payload: Mapping[str, Any]) -> bytes:
    """The line of a server push: ``{"event": name, ...payload}``, never with an ``id``."""
    body: dict[str, Any] = {"event": event}
    body.update(payload)
    return encode_line(body)
