"""A sent message's record text, and its push put together from that text.

A message goes out as three texts: the record the store seals, the reply to its sender and the
push to its readers.  The push holds the record's fields, in the record's order, after the
event name and the conversation.  So it is put together from the record's text (already
encoded for sealing) rather than encoded again: the 300-byte ciphertext is escaped and the
time formatted once, not twice.  It says what the general encoder's text says, field for
field (tests/wire/test_message_text.py holds it to that; a number may be spelled differently).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pychat.wire.compact_json import compact_bytes_encoder, finite_bytes_encoder

#: A plain message record's fields, in the order the store writes them and pushes carry them.
RECORD_FIELDS = ("seq", "sender", "epoch", "ciphertext", "client_id", "time")

#: A record's text longer than this is not kept (the push encodes it again): a message in
#: flight then holds its ciphertext once, not twice, however large it is.
KEEP_TEXT_MAX = 4096

_record_json = compact_bytes_encoder(allow_nan=True)
_finite_record_json = finite_bytes_encoder(allow_nan=True)


class MessageRecord(dict[str, Any]):
    """A message's record that keeps its JSON text once encoded (for the push to reuse).  A
    record is not changed once appended: what was sealed is what its readers are told."""

    __slots__ = ("_finite", "_text")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._text: bytes | None = None
        #: Every value is a string, an integer or a finite number: no NaN or infinity.
        self._finite = False

    @classmethod
    def plain(
        cls, seq: int, sender: str, epoch: int, ciphertext: str, client_id: str, time: float
    ) -> MessageRecord:
        """A plain message's record (:data:`RECORD_FIELDS`, in order), as the store makes it.
        Its text and its push skip the scans for NaN and infinities when the values are of
        the types named and the time is finite."""
        record = cls(
            {
                "seq": seq,
                "sender": sender,
                "epoch": epoch,
                "ciphertext": ciphertext,
                "client_id": client_id,
                "time": time,
            }
        )
        record._finite = (
            type(seq) is int
            and type(epoch) is int
            and type(sender) is str
            and type(ciphertext) is str
            and type(client_id) is str
            and (type(time) is float or type(time) is int)
            and time - time == 0
        )
        return record

    def text(self) -> bytes:
        """The record as UTF-8 JSON (kept from the first call, when it is short)."""
        if self._text is not None:
            return self._text
        text = _finite_record_json(self) if self._finite else _record_json(self)
        if len(text) <= KEEP_TEXT_MAX:
            # A copy of exactly its length: orjson's bytes keep the capacity they grew to
            # (4 KiB for a 300-byte message), and this one lives until the batch is durable.
            self._text = bytes(memoryview(text))
        return text

    def is_plain_and_finite(self) -> bool:
        """Made by :meth:`plain` with values of the types named and a finite time."""
        return self._finite


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
    if type(conversation) is not str:
        return None
    if type(record) is MessageRecord and record.is_plain_and_finite():
        return _push_head(conversation) + record.text()[1:] + b"\n"
    if tuple(record) != RECORD_FIELDS:
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
