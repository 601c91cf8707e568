"""The local keystore: one encrypted file per (server, username) with everything secret.

It holds the identity private keys (current and retired), the conversation keys of every
epoch, this device's id and message counter, what has been seen from each sending device
(for replay detection), and the pins of peers' identity keys.  The file is
``{"format": "pychat-keystore", "v": 1, "kdf": {...}, "salt": b64, "sealed": b64}``: the JSON
content sealed with AES-256-GCM under a key derived from the password with Argon2id (or
scrypt).  It is written atomically with mode 0600 and never written unless it was opened
with the right password, so a damaged file stays as it is.

The module also makes and opens the **key backup**: the identity private keys sealed under
another password-derived key (own salt, own context), which the server keeps for its owner so
a new machine can log in with only the password.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pychat.crypto.canonical import MAX_SAFE_INTEGER
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import KdfParams, KdfParamsError, default_params, derive
from pychat.durable import ensure_private_dir, write_atomic
from pychat.wire.encoding import b64decode, b64encode

FORMAT = "pychat-keystore"
BACKUP_FORMAT = "pychat-key-backup"
SALT_BYTES = 16
#: Replay-detection memory per sending device: counters of this many recent messages.
RECENT_COUNTERS = 2000
#: Message counters are reserved in blocks of this size, so the keystore is written once per
#: block rather than once per message; after a crash the unused rest of a block is skipped,
#: so a counter is never used twice.
COUNTER_BLOCK = 100


class KeystoreError(Exception):
    """The keystore cannot be used; the message says why and what to do."""


class WrongPassword(KeystoreError):
    """The password does not open this keystore (or backup)."""


def identity_to_json(keys: IdentityKeyPair) -> dict[str, str]:
    """Private keys as PKCS#8 DER (base64); only ever stored sealed."""
    fmt = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    return {
        "encryption": b64encode(
            keys.encryption.private_bytes(serialization.Encoding.DER, fmt, none)
        ),
        "signing": b64encode(keys.signing.private_bytes(serialization.Encoding.DER, fmt, none)),
    }


def identity_from_json(obj: dict[str, str]) -> IdentityKeyPair:
    """The inverse of :func:`identity_to_json`.

    The RSA key's consistency check (about 0.15 s per 3072-bit key here, seconds on a small
    board, at every unlock and for every identity kept) is skipped: these keys were made by
    this client and come only out of an authenticated seal (the keystore, or the key backup
    under the password), so nobody else could have shaped them.
    """
    enc = serialization.load_der_private_key(
        b64decode(obj["encryption"]), None, unsafe_skip_rsa_key_validation=True
    )
    sig = serialization.load_der_private_key(b64decode(obj["signing"]), None)
    if not isinstance(enc, rsa.RSAPrivateKey) or not isinstance(sig, ed25519.Ed25519PrivateKey):
        raise ValueError("wrong key types")
    return IdentityKeyPair(enc, sig)


@dataclass
class KeystoreData:
    """The decrypted content of a keystore."""

    server: str
    username: str
    identities: list[IdentityKeyPair]  # newest first
    device_id: str = field(default_factory=lambda: secrets.token_hex(8))
    counter: int = 0
    counter_reserved: int = 0
    conversation_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A random key for this device's local files (the outbox), base64; empty in a keystore
    #: written before it existed, until :meth:`local_files_key` makes one.
    local_key: str = field(default_factory=lambda: b64encode(os.urandom(32)))
    #: This device's part in fair games (flips, rolls): by game id, the secret nonce it
    #: committed to and what it has sent (pychat.client.games).
    games: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Disappearing-message timers by conversation: [seq of the setting, seconds (0: off)].
    timers: dict[str, list[int]] = field(default_factory=dict)
    #: What each verified key envelope says (creator, ``after``, members' fingerprints), by
    #: conversation and epoch: the places the key-validity rule reads.  Kept, so a server
    #: that stops serving an envelope cannot take its place back.
    epoch_facts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Each group's membership chain as this device accepted it: ``{"hashes": [...],
    #: "name": ...}`` by group id.  A chain served later must extend it (else: a fork).
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def identity(self) -> IdentityKeyPair:
        """The current identity keys."""
        return self.identities[0]

    def to_json(self) -> dict[str, Any]:
        """Everything, for sealing."""
        return {
            "server": self.server,
            "username": self.username,
            "identities": [identity_to_json(k) for k in self.identities],
            "device_id": self.device_id,
            "counter": self.counter,
            "counter_reserved": self.counter_reserved,
            "conversation_keys": self.conversation_keys,
            "pins": self.pins,
            "seen": self.seen,
            "local_key": self.local_key,
            "games": self.games,
            "timers": self.timers,
            "epoch_facts": self.epoch_facts,
            "groups": self.groups,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> KeystoreData:
        """Rebuild from :meth:`to_json`'s output."""
        return cls(
            server=obj["server"],
            username=obj["username"],
            identities=[identity_from_json(k) for k in obj["identities"]],
            device_id=obj["device_id"],
            # Resume after the whole reserved block: some of it may have been used unsaved.
            counter=max(obj["counter"], obj.get("counter_reserved", 0)),
            counter_reserved=obj.get("counter_reserved", 0),
            conversation_keys=obj["conversation_keys"],
            pins=obj["pins"],
            seen=obj["seen"],
            local_key=obj.get("local_key", ""),
            games=obj.get("games", {}),
            timers=obj.get("timers", {}),
            epoch_facts=obj.get("epoch_facts", {}),
            groups=obj.get("groups", {}),
        )

    def local_files_key(self) -> tuple[bytes, bool]:
        """The key of this device's local files, and whether it was made just now (then save
        the keystore before anything is sealed with it)."""
        if self.local_key:
            return b64decode(self.local_key), False
        self.local_key = b64encode(os.urandom(32))
        return b64decode(self.local_key), True

    def next_counter(self) -> tuple[int, bool]:
        """The next message counter, and whether a new block was reserved (save the keystore
        before using it)."""
        if self.counter >= MAX_SAFE_INTEGER:
            raise KeystoreError(
                "this device has used every message counter (2^53-1); log in on a new device"
            )
        self.counter += 1
        if self.counter > self.counter_reserved:
            self.counter_reserved = self.counter + COUNTER_BLOCK - 1
            return self.counter, True
        return self.counter, False

    # -- replay detection --------------------------------------------------------------------

    def check_counter(
        self, conversation: str, sender: str, device: str, seq: int, counter: int
    ) -> str | None:
        """Record (seq, counter) from a sending device; return why it is refused, or None.

        A counter seen before at another seq is a replay; a newer message (higher seq) must
        carry a higher counter than the newest seen, an older one a lower counter.
        """
        key = f"{conversation}/{sender}/{device}"
        state = self.seen.setdefault(key, {"high_seq": 0, "high_counter": -1, "recent": {}})
        recent: dict[str, int] = state["recent"]
        earlier = recent.get(str(counter))
        if earlier is not None:
            return None if earlier == seq else f"replay of message {earlier} (counter {counter})"
        if seq > state["high_seq"]:
            if counter <= state["high_counter"]:
                return f"counter went backwards ({counter} after {state['high_counter']})"
            state["high_seq"], state["high_counter"] = seq, counter
        elif counter >= state["high_counter"]:
            return f"counter {counter} is out of order for message {seq}"
        recent[str(counter)] = seq
        if len(recent) > RECENT_COUNTERS:
            for old in sorted(recent, key=lambda c: recent[c])[: len(recent) - RECENT_COUNTERS]:
                del recent[old]
        return None


def _derive(password: str, salt: bytes, kdf: KdfParams, context: bytes) -> bytes:
    return derive(kdf, context + b"\0" + password.encode(), salt, 32)


class KeystoreFile:
    """The keystore of one (server, username) under a client home directory."""

    def __init__(self, home: Path, server: str, username: str) -> None:
        safe_server = re.sub(r"[^A-Za-z0-9._-]", "_", server)
        self.path = home / "keystores" / safe_server / f"{username}.json"
        self.server = server
        self.username = username
        self._key: bytes | None = None
        self._kdf: KdfParams | None = None
        self._salt: bytes | None = None

    def exists(self) -> bool:
        """Whether a keystore file is there."""
        return self.path.exists()

    def _context(self) -> bytes:
        return f"pychat-keystore\0{self.server}\0{self.username}".encode()

    def unlock(self, password: str) -> KeystoreData:
        """Read and decrypt the keystore (slow: the KDF; call it in a thread).

        :raises WrongPassword: the password does not open it.
        :raises KeystoreError: the file is missing, truncated or damaged (it is left as is).
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(f"no keystore at {self.path}") from None
        except OSError as exc:
            raise KeystoreError(f"cannot read keystore {self.path}: {exc.strerror}") from None
        try:
            outer = json.loads(raw)
            if outer.get("format") != FORMAT or outer.get("v") != 1:
                raise ValueError("not a pyChat keystore")
            kdf = KdfParams.from_json(outer["kdf"])
            salt, sealed = b64decode(outer["salt"]), b64decode(outer["sealed"])
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            binascii.Error,
            KdfParamsError,
        ) as exc:
            raise KeystoreError(
                f"keystore {self.path} is damaged or truncated ({exc}); it was left untouched. "
                "Restore it from a backup, or move it aside and log in again to rebuild it "
                "from the server's key backup."
            ) from None
        key = _derive(password, salt, kdf, self._context())
        try:
            plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], self._context())
        except (InvalidTag, ValueError):
            raise WrongPassword(f"wrong password for keystore {self.path}") from None
        try:
            data = KeystoreData.from_json(json.loads(plain))
        except (ValueError, KeyError, TypeError) as exc:
            raise KeystoreError(f"keystore {self.path} content is malformed ({exc})") from None
        self._key, self._kdf, self._salt = key, kdf, salt
        return data

    def set_password(self, password: str, kdf: KdfParams | None = None) -> None:
        """Derive a new key for the next :meth:`save` (slow: call it in a thread)."""
        self._kdf = kdf or default_params()
        self._salt = os.urandom(SALT_BYTES)
        self._key = _derive(password, self._salt, self._kdf, self._context())

    def save(self, data: KeystoreData) -> None:
        """Seal and write ``data`` atomically, mode 0600 (after unlock or set_password)."""
        if self._key is None or self._kdf is None or self._salt is None:
            raise KeystoreError("keystore is locked")
        nonce = os.urandom(12)
        plain = json.dumps(data.to_json(), separators=(",", ":")).encode()
        sealed = nonce + AESGCM(self._key).encrypt(nonce, plain, self._context())
        body = {
            "format": FORMAT,
            "v": 1,
            "kdf": self._kdf.to_json(),
            "salt": b64encode(self._salt),
            "sealed": b64encode(sealed),
        }
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, json.dumps(body).encode() + b"\n", mode=0o600)


# -- the key backup kept by the server -----------------------------------------------------------


def _backup_context(username: str) -> bytes:
    return f"pychat-key-backup\0{username}".encode()


def make_key_backup(
    identities: list[IdentityKeyPair], username: str, password: str, kdf: KdfParams | None = None
) -> str:
    """Seal the identity keys under a password-derived key (slow: call it in a thread).

    The key is derived with its own salt and context, so it is unrelated to SRP's x and to
    the local keystore's key.
    """
    kdf = kdf or default_params()
    salt = os.urandom(SALT_BYTES)
    key = _derive(password, salt, kdf, _backup_context(username))
    nonce = os.urandom(12)
    plain = json.dumps([identity_to_json(k) for k in identities]).encode()
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, _backup_context(username))
    body = {
        "format": BACKUP_FORMAT,
        "v": 1,
        "kdf": kdf.to_json(),
        "salt": b64encode(salt),
        "sealed": b64encode(sealed),
    }
    return b64encode(json.dumps(body).encode())


def open_key_backup(blob: str, username: str, password: str) -> list[IdentityKeyPair]:
    """The identity keys in a backup (slow: call it in a thread).

    :raises WrongPassword: the password does not open it.
    :raises KeystoreError: the backup is malformed or its KDF parameters are unacceptable.
    """
    try:
        body = json.loads(b64decode(blob))
        if body.get("format") != BACKUP_FORMAT or body.get("v") != 1:
            raise ValueError("not a pyChat key backup")
        kdf = KdfParams.from_json(body["kdf"])
        salt, sealed = b64decode(body["salt"]), b64decode(body["sealed"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, KdfParamsError) as exc:
        raise KeystoreError(f"the server's key backup is unusable ({exc})") from None
    key = _derive(password, salt, kdf, _backup_context(username))
    try:
        plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], _backup_context(username))
    except (InvalidTag, ValueError):
        raise WrongPassword("the password does not open the key backup") from None
    return [identity_from_json(k) for k in json.loads(plain)]
