"""The at-rest key and the authenticated encryption of stored records.

The key file (``store.key``, mode 0600, path settable with ``--store-key`` so it can live apart
from the data, e.g. in a systemd credential) holds 32 random bytes.  Sub-keys for each use are
derived from it with HKDF-SHA256, so one file feeds record encryption, the keyed hashes that
name files, and the secret behind fake login challenges, and none of them can stand in for
another.

Records are sealed with AES-256-GCM under a random 96-bit nonce, with associated data that
names what the record is (its kind and the file it belongs in), so a record moved to another
file or another purpose fails to open.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pychat.durable import write_atomic
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError

KEY_FORMAT = "pychat-store-key"
NONCE_BYTES = 12


class AtRestKey:
    """The master key of the store; hands out purpose-bound sub-keys."""

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the at-rest key is 32 bytes")
        self._master = master

    @classmethod
    def load_or_create(cls, path: Path, *, data_exists: bool) -> AtRestKey:
        """Read the key file, or make one when the store is new.

        :param data_exists: whether encrypted data is already there; then a missing key is an
            error, never a reason to make a new one (which would orphan all of it).
        :raises StoreError: the file is missing (with data), unreadable or malformed.
        """
        if not path.exists():
            if data_exists:
                raise StoreError(
                    path,
                    "the at-rest key is missing but the data dir holds encrypted data; "
                    "restore the key file (see docs/operations.md)",
                )
            return cls.create(path)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise StoreError(path, f"cannot read the at-rest key: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(
                path,
                f"the at-rest key is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                f"anyone who can read it can read the whole store: chmod 600 {path}",
            )
        try:
            body = json.loads(path.read_bytes())
            if body.get("format") != KEY_FORMAT or body.get("v") != 1:
                raise ValueError("not a pyChat store key (format/v)")
            return cls(base64.b64decode(body["key"], validate=True))
        except OSError as exc:
            raise StoreError(path, f"cannot read the at-rest key: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise StoreError(path, f"the at-rest key file is malformed: {exc}") from None

    @classmethod
    def create(cls, path: Path) -> AtRestKey:
        """Make a new random key and write it to ``path`` (mode 0600, atomically).

        :raises FileExistsError: ``path`` exists (a key is never overwritten).
        """
        if path.exists():
            raise FileExistsError(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        master = os.urandom(32)
        body = {"format": KEY_FORMAT, "v": 1, "key": base64.b64encode(master).decode()}
        write_atomic(path, json.dumps(body).encode() + b"\n", mode=0o600)
        return cls(master)

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` alone."""
        return HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"pychat-store " + purpose.encode(),
        ).derive(self._master)

    def sealer(self, purpose: str) -> RecordSealer:
        """An AEAD for records of ``purpose``."""
        return RecordSealer(self.subkey(f"seal:{purpose}"))

    def name_hasher(self, purpose: str) -> NameHasher:
        """A keyed hash for naming files of ``purpose`` without revealing what they are for."""
        return NameHasher(self.subkey(f"name:{purpose}"))


class RecordSealer:
    """AES-256-GCM over records, bound to associated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """nonce | ciphertext+tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of :meth:`seal`'s output.

        :raises InvalidTag: wrong key, altered bytes, or another record's associated data.
        """
        if len(sealed) < NONCE_BYTES + 16:
            raise InvalidTag()
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)


class NameHasher:
    """HMAC-SHA256 of names, as hex, for file names that hide who they are about."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, *parts: str) -> str:
        mac = hmac.HMAC(self._key, hashes.SHA256())
        for part in parts:
            data = part.encode("utf-8")
            mac.update(len(data).to_bytes(4, "big") + data)  # length-prefixed: no ambiguity
        return mac.finalize().hex()[:40]


@dataclass(frozen=True)
class SealedDirectory:
    """A directory of files sealed at rest: where it is, how its records are sealed, how its
    file names are made (keyed hashes), and where its blocking work runs."""

    directory: Path
    sealer: RecordSealer
    names: NameHasher
    run_blocking: BlockingRunner

    @classmethod
    def of(
        cls, directory: Path, key: AtRestKey, purpose: str, run_blocking: BlockingRunner
    ) -> SealedDirectory:
        """``directory`` with the sealer and name hasher ``key`` derives for ``purpose``."""
        return cls(directory, key.sealer(purpose), key.name_hasher(purpose), run_blocking)
