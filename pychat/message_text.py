"""A sent message's record text, and its push put together from that text.

A message goes out as three texts: the record the store seals, the reply to its sender and the
push to its readers.  The push holds the record's fields, in the record's order, after the
event name and the conversation.  So it is put together from the record's text (already
encoded for sealing) rather than encoded again: the 300-byte ciphertext is escaped and the
time formatted once, not twice.  It says what the general encoder's text says, field for
field (tests/test_message_text.py holds it to that; a number may be spelled differently).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pychat.compact_json import compact_bytes_encoder

#: A plain message record's fields, in the order the store writes them and pushes carry them.
RECORD_FIELDS = ("seq", "sender", "epoch", "ciphertext", "client_id", "time")

#: A record's text longer than this is not kept (the push encodes it again): a message in
#: flight then holds its ciphertext once, not twice, however large it is.
KEEP_TEXT_MAX = 4096

_record_json = compact_bytes_encoder(allow_nan=True)


class MessageRecord(dict[str, Any]):
    """A message's record that keeps its JSON text once encoded (for the push to reuse).  A
    record is not changed once appended: what was sealed is what its readers are told."""

    __slots__ = ("_text",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._text: bytes | None = None

    def text(self) -> bytes:
        """The record as UTF-8 JSON (kept from the first call, when it is short)."""
        if self._text is not None:
            return self._text
        text = _record_json(self)
        if len(text) <= KEEP_TEXT_MAX:
            # A copy of exactly its length: orjson's bytes keep the capacity they grew to
            # (4 KiB for a 300-byte message), and this one lives until the batch is durable.
            self._text = bytes(memoryview(text))
        return text


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """``record`` as the UTF-8 JSON text the store seals (NaN and infinities allowed, as in
    every sealed record)."""
    if type(record) is MessageRecord:
        return record.text()
    return _record_json(record)


def message_push_line(conversation: str, record: Mapping[str, Any]) -> bytes | None:
    """The ``message`` push line of a plain record in ``conversation``: ``{"event":
    "message", "conversation": ..., <the record's fields>}``, put together from the record's
    text.  None when the record is not of the plain shape, or its text holds what a protocol
    line may not (a NaN or an infinity): the caller encodes the push the general way."""
    if type(conversation) is not str or tuple(record) != RECORD_FIELDS:
        return None
    text = record_bytes(record)
    if b"NaN" in text or b"Infinity" in text:  # perhaps only inside a string: then slower
        return None
    return _push_head(conversation) + text[1:] + b"\n"


@lru_cache(maxsize=4096)
def _push_head(conversation: str) -> bytes:
    """The start of a ``message`` push in ``conversation``, up to the record's first field
    (the same for every message of a conversation: kept for the busiest ones)."""
    return b'{"event":"message","conversation":' + _record_json(conversation) + b","
