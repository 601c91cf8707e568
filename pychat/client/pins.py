"""Pinned server certificates, like ssh's known_hosts: ``known_servers.json`` in the home.

Not secret (fingerprints of public certificates), but integrity matters, so it is written
atomically with mode 0600.  A changed certificate is never pinned silently: the user must run
``pychat accept-server HOST[:PORT] FINGERPRINT``.

A server is known by its certificate as well as by the address typed: when a new address
presents a certificate already pinned under another one, the new address is pinned as the
*same server* (``same_as``), so ``127.0.0.1`` and ``localhost`` share one keystore and the
user is not asked twice.
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

    def server_with(self, fingerprint: str) -> str | None:
        """The first address pinned with ``fingerprint`` (its own name, not an alias), or None."""
        for server, entry in sorted(self._load().items()):
            if (
                isinstance(entry, dict)
                and entry.get("fingerprint") == fingerprint
                and not entry.get("same_as")
            ):
                return server
        return None

    def canonical(self, server: str) -> str:
        """The name ``server`` is known by: the first address its certificate was pinned under."""
        entry = self._load().get(server)
        same_as = entry.get("same_as") if isinstance(entry, dict) else None
        return same_as if isinstance(same_as, str) else server

    def pin(self, server: str, fingerprint: str, *, same_as: str | None = None) -> None:
        """Pin (or re-pin, when the user accepted a change) ``server``'s certificate; with
        ``same_as``, as another address of an already pinned server."""
        data = self._load()
        entry: dict[str, object] = {"fingerprint": fingerprint, "pinned": time.time()}
        if same_as is not None and same_as != server:
            entry["same_as"] = same_as
        data[server] = entry
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", 0o600)
