"""Line framing: bytes in, complete lines out, with a hard cap on line length.

One JSON object per line, lines end with ``\\n`` (a ``\\r`` before it is dropped).  The buffer
never holds more than ``max_line`` bytes of an unfinished line: past that it reports the line
as oversized and the caller closes the connection, because there is no way to find the next
frame boundary without reading (and buffering) the rest of the oversized line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pychat.wire.compact_json import compact_bytes_encoder


@dataclass(frozen=True)
class Oversized:
    """Marks that the peer sent a line longer than the limit; nothing after it is parsed."""

    limit: int


class LineBuffer:
    """Accumulates received bytes and splits them into lines.

    :param max_line: the longest line accepted, in bytes, without its newline.
    """

    def __init__(self, max_line: int) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._pending = bytearray()
        self._failed = False

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        """Add received bytes; return the complete lines they finish, in order.

        After an :class:`Oversized` item the buffer is dead: it returns nothing more,
        because the stream has no recoverable frame boundary.
        """
        if self._failed:
            return []
        out: list[bytes | Oversized] = []
        self._pending += data
        start = 0
        while True:
            newline = self._pending.find(b"\n", start)
            if newline < 0:
                break
            line = bytes(self._pending[start:newline])
            start = newline + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                return self._fail(out)
            out.append(line)
        del self._pending[:start]
        if len(self._pending) > self.max_line + 1:  # + 1: a trailing "\r" awaiting its "\n"
            return self._fail(out)
        return out

    @property
    def has_partial_line(self) -> bool:
        """Whether bytes of an unfinished line are waiting for their newline."""
        return bool(self._pending)

    def _fail(self, out: list[bytes | Oversized]) -> list[bytes | Oversized]:
        self._failed = True
        self._pending.clear()
        out.append(Oversized(self.max_line))
        return out


def encode_line(obj: dict[str, Any]) -> bytes:
    """Serialise one protocol object as a UTF-8 JSON line.

    Compact separators, non-ASCII kept as UTF-8 (it is valid JSON and half the size of
    ``\\u`` escapes), and no NaN/Infinity, which are not JSON.
    """
    return _to_json(obj) + b"\n"


_to_json = compact_bytes_encoder(allow_nan=False)
