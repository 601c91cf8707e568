"""Device tokens: what a server gives a client at each successful login, shown at the next.

A login that comes with a valid token for its account skips the server's account and address
locks (only the token's own failures count), so a stranger who hammers your account from
anywhere cannot lock you out of it.  The token is not a password: it cannot log in by itself.

It has to be read *before* logging in, when the keystore is still locked, so it lives in its
own file, ``device_tokens.json`` in the client home (mode 0600), by server and username.
"""

from __future__ import annotations

import json
from pathlib import Path

from pychat.durable import ensure_private_dir, write_atomic

FILE = "device_tokens.json"


class DeviceTokens:
    """The device tokens this client home holds."""

    def __init__(self, home: Path) -> None:
        self.path = home / FILE

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}  # missing or damaged: logins just go without a token
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def get(self, server: str, username: str) -> str | None:
        """The token for ``username`` on ``server``, if there is one."""
        return self._load().get(f"{server}/{username}")

    def put(self, server: str, username: str, token: str) -> None:
        """Keep the newest token for ``username`` on ``server``."""
        data = self._load()
        data[f"{server}/{username}"] = token
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", 0o600)
