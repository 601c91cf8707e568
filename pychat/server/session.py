"""What the server knows about one connection beyond its protocol state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    """Per-connection facts that handlers read and update.

    :ivar peer: the remote address as text, for logs and per-address limits.
    :ivar host: the remote host alone (no port), the key of per-address limits.
    :ivar username: the account this connection is logged in as, once authenticated.
    :ivar client: what the client called itself in ``hello`` (for the logs only).
    :ivar scratch: per-op state that lives between two requests of one exchange
        (the SRP challenge between ``login_start`` and ``login_finish``).
    """

    peer: str
    host: str
    username: str | None = None
    client: str | None = None
    scratch: dict[str, Any] = field(default_factory=dict)
