"""Base64 as the protocol and the files use it: standard alphabet, with padding, strict."""

from __future__ import annotations

import base64
import binascii


def b64encode(data: bytes) -> str:
    """``data`` as standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object) -> bytes:
    """The bytes of standard base64 ``text``.

    :raises ValueError: ``text`` is not a string, or not strictly valid base64.
    """
    if not isinstance(text, str):
        raise ValueError("base64 data must be text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not valid base64: {exc}") from None
