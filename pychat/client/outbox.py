"""The outbox: messages written but not yet acknowledged by the server, kept on disk.

A message goes into the outbox before it is first sent and leaves it when the server
acknowledges it (or refuses it for good), so nothing typed while the server is away is lost,
not even across a restart of the client.  Each entry keeps the message counter and the
``client_id`` it was given when it was written: a resend is the same message, and the
server's idempotency (protocol.md, ``send``) stores it once however often it is sent.

The file is ``keystores/<server>/<username>.outbox`` next to the keystore, mode 0600:
``{"format": "pychat-outbox", "v": 1, "sealed": b64}``, the entries sealed with AES-256-GCM
under the keystore's local key (:meth:`~pychat.client.keystore.KeystoreData.local_files_key`),
so the plaintext is never on disk.  It is rewritten atomically at every change and removed
when empty.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.wire.encoding import b64decode, b64encode

FORMAT = "pychat-outbox"
SUFFIX = ".outbox"


class OutboxUnreadable(Exception):
    """The outbox file is damaged or sealed under another key; it was moved aside."""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting to be sent, exactly as it will be sealed."""

    client_id: str
    peer: str
    counter: int
    time: float
    text: str
    #: The signed kind (``text``, ``action``, ``reaction``, ``reply``) and its ``data``.
    kind: str = "text"
    data: dict[str, Any] | None = None

    @property
    def action(self) -> bool:
        """An emote (``/me``)."""
        return self.kind == "action"

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "client_id": self.client_id,
            "peer": self.peer,
            "counter": self.counter,
            "time": self.time,
            "text": self.text,
            "kind": self.kind,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: Any) -> OutboxEntry:
        """The inverse of :meth:`to_json`.

        :raises ValueError: a field is missing or of the wrong type.
        """
        if not isinstance(obj, dict):
            raise ValueError("an outbox entry is not an object")
        fields = (
            obj.get("client_id"),
            obj.get("peer"),
            obj.get("counter"),
            obj.get("time"),
            obj.get("text"),
            obj.get("kind", "text"),
            obj.get("data"),
        )
        client_id, peer, counter, when, text, kind, data = fields
        if not (
            isinstance(client_id, str)
            and isinstance(peer, str)
            and isinstance(counter, int)
            and not isinstance(counter, bool)
            and isinstance(when, int | float)
            and not isinstance(when, bool)
            and math.isfinite(when)
            and isinstance(text, str)
            and isinstance(kind, str)
            and (data is None or isinstance(data, dict))
        ):
            raise ValueError("an outbox entry has a missing or malformed field")
        return cls(client_id, peer, counter, float(when), text, kind, data)


class OutboxFile:
    """The outbox of one (server, username), next to its keystore."""

    def __init__(self, keystore_path: Path, key: bytes, server: str, username: str) -> None:
        self.path = keystore_path.with_suffix(SUFFIX)
        self._aead = AESGCM(key)
        self._context = f"pychat-outbox\0{server}\0{username}".encode()

    def load(self) -> list[OutboxEntry]:
        """The waiting messages, oldest first (none when there is no file).

        :raises OutboxUnreadable: the file is damaged or sealed under another key (written
            before the keystore was rebuilt from the server's backup); it is moved aside
            to ``<name>.outbox.unreadable-<n>`` and the outbox starts empty.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            outer = json.loads(raw)
            if outer.get("format") != FORMAT or outer.get("v") != 1:
                raise ValueError("not a pyChat outbox")
            sealed = b64decode(outer["sealed"])
            plain = self._aead.decrypt(sealed[:12], sealed[12:], self._context)
            return [OutboxEntry.from_json(e) for e in json.loads(plain)]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, InvalidTag):
            aside = self._aside()
            os.replace(self.path, aside)
            raise OutboxUnreadable(
                f"the outbox {self.path} could not be opened (damaged, or written before this "
                f"keystore was rebuilt); its messages were not sent. It was moved to {aside}"
            ) from None

    def save(self, entries: list[OutboxEntry]) -> None:
        """Replace the outbox with ``entries``, durably (the file goes when they are none)."""
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
                fsync_dir(self.path.parent)
            return
        nonce = os.urandom(12)
        plain = json.dumps([e.to_json() for e in entries], separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, self._context)
        body = {"format": FORMAT, "v": 1, "sealed": b64encode(sealed)}
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, json.dumps(body).encode() + b"\n", mode=0o600)

    def _aside(self) -> Path:
        n = 1
        while (aside := self.path.with_name(f"{self.path.name}.unreadable-{n}")).exists():
            n += 1
        return aside
