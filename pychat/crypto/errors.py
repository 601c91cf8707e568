"""The one error of the end-to-end format: something a peer or the server sent fails a check."""

from __future__ import annotations

from typing import Any

from pychat.wire.encoding import b64decode


class E2EError(Exception):
    """Something a peer or the server sent fails a check; the message says which."""


def b64d(text: Any, what: str) -> bytes:
    """Decode base64 or raise :class:`E2EError` naming ``what``."""
    try:
        return b64decode(text)
    except ValueError:
        raise E2EError(f"{what} is missing or not valid base64") from None
