"""Pinned server certificates, like ssh's known_hosts: ``known_servers.json`` in the home.

Not secret (fingerprints of public certificates), but integrity matters, so it is written
atomically with mode 0600.  A changed certificate is never pinned silently: the user must run
``pychat accept-server HOST[:PORT] FINGERPRINT``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pychat.durable import ensure_private_dir, write_atomic

FILE = "known_servers.json"


class PinFileError(Exception):
    """The pin file is unreadable; it is left as it is."""


class ServerPins:
    """Certificate fingerprints by ``host:port``."""

    def __init__(self, home: Path) -> None:
        self.path = home / FILE

    def _load(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PinFileError(f"cannot read {self.path}: {exc}; fix or remove it") from None
        if not isinstance(data, dict):
            raise PinFileError(f"{self.path} is not a pin file; fix or remove it")
        return data

    def get(self, server: str) -> str | None:
        """The pinned fingerprint of ``server``, or None."""
        entry = self._load().get(server)
        return (
            str(entry["fingerprint"])
            if isinstance(entry, dict) and "fingerprint" in entry
            else None
        )

    def pin(self, server: str, fingerprint: str) -> None:
        """Pin (or re-pin, when the user accepted a change) ``server``'s certificate."""
        data = self._load()
        data[server] = {"fingerprint": fingerprint, "pinned": time.time()}
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", 0o600)
