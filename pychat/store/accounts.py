"""Accounts: one encrypted JSON file per user under ``DATA_DIR/accounts/``.

A file is named by a keyed hash of the username's normal form (so the directory listing does
not name users) and holds ``{"format": "pychat-account", "v": 1, "sealed": b64}``, where
``sealed`` is the AES-GCM sealed JSON of the :class:`Account`, bound to the file name.  Writing
one account rewrites only its own file, atomically (temp, fsync, rename, fsync dir).

All accounts are read into memory at start; a file that does not open stops the start with a
:class:`StoreError` naming it, and nothing is written over it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from twisted.internet.defer import DeferredLock

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.atrest import AtRestKey, SealedDirectory
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError, UsernameTaken

FORMAT = "pychat-account"
VERSION = 1


@dataclass(frozen=True)
class Account:
    """Everything the server keeps about one user.  Nothing here is secret from the server:
    the verifier proves a password without revealing it, and the keys are public.

    :ivar username: the normal form.
    :ivar salt: the SRP salt (b64).
    :ivar verifier: the SRP verifier (b64, big-endian).
    :ivar kdf: the KDF parameters the client uses to derive x.
    :ivar public_keys: the user's current public identity (JSON form).
    :ivar key_version: 1 at signup, +1 per key rotation.
    :ivar key_backup: the client's encrypted private-key backup (opaque), if any.
    :ivar share_presence: whether peers are told when this user comes and goes.
    :ivar key_history: every public identity the user has had, oldest first; entries are
        ``{"key_version", "public_keys", "fingerprint", "signature", "time"}`` (the signature,
        by the previous signing key, is null for the first).  Only ever appended to.
    :ivar disabled: the operator disabled the account (``pychat-admin disable``): its logins
        are refused.
    :ivar last_login: when the user last logged in (saved at most once an hour), or None.
    """

    username: str
    salt: str
    verifier: str
    kdf: dict[str, Any]
    public_keys: dict[str, str]
    created: float
    updated: float
    key_version: int = 1
    key_backup: str | None = None
    share_presence: bool = True
    key_history: list[dict[str, Any]] = field(default_factory=list)
    disabled: bool = False
    last_login: float | None = None

    def with_changes(self, **changes: Any) -> Account:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


class AccountStore:
    """The accounts of one data dir, in memory, written through to disk."""

    def __init__(self, place: SealedDirectory) -> None:
        self.directory = place.directory
        self._sealer = place.sealer
        self._names = place.names
        self._run = place.run_blocking
        self._accounts: dict[str, Account] = {}
        self._reserved: set[str] = set()
        self._locks: dict[str, DeferredLock] = {}

    @classmethod
    def open(cls, directory: Path, key: AtRestKey, run_blocking: BlockingRunner) -> AccountStore:
        """Load every account under ``directory`` (created if missing).

        :raises StoreError: a file that cannot be read, decrypted or parsed.
        """
        ensure_private_dir(directory)
        store = cls(SealedDirectory.of(directory, key, "account", run_blocking))
        for path in sorted(directory.glob("*.json")):
            account = store.read_file(path)
            store._accounts[account.username] = account
        return store

    def _path(self, username: str) -> Path:
        return self.directory / f"{self._names(username)}.json"

    def _aad(self, path: Path) -> bytes:
        return f"{FORMAT}/{VERSION}/{path.name}".encode()

    def read_file(self, path: Path) -> Account:
        """The account in ``path`` (read, decrypted and checked; nothing is changed).

        :raises StoreError: the file cannot be read, decrypted or parsed.
        """
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise StoreError(path, f"cannot read account file: {exc.strerror}") from None
        try:
            outer = json.loads(raw)
            if not isinstance(outer, dict) or outer.get("format") != FORMAT:
                raise ValueError("not a pyChat account file")
            if outer.get("v") != VERSION:
                raise ValueError(f"unsupported account format version {outer.get('v')!r}")
            sealed = base64.b64decode(outer["sealed"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise StoreError(path, f"account file is corrupt or truncated ({exc})") from None
        try:
            plain = self._sealer.open(sealed, self._aad(path))
        except InvalidTag:
            raise StoreError(
                path, "account file does not decrypt: altered, truncated, or a different store key"
            ) from None
        try:
            account = Account(**json.loads(plain))
        except (ValueError, TypeError) as exc:
            raise StoreError(path, f"account record is malformed ({exc})") from None
        if self._path(account.username) != path:
            raise StoreError(path, "account record is in the wrong file")
        return account

    def _encode(self, account: Account, path: Path) -> bytes:
        plain = json.dumps(asdict(account), separators=(",", ":")).encode()
        sealed = self._sealer.seal(plain, self._aad(path))
        body = {"format": FORMAT, "v": VERSION, "sealed": base64.b64encode(sealed).decode()}
        return json.dumps(body).encode() + b"\n"

    # -- the interface -----------------------------------------------------------------------

    def get(self, username: str) -> Account | None:
        """The account of a normal-form username, or None."""
        return self._accounts.get(username)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

    def __len__(self) -> int:
        return len(self._accounts)

    async def create(self, account: Account) -> None:
        """Store a new account durably.

        :raises UsernameTaken: the name exists or is being created right now.
        """
        name = account.username
        if name in self._accounts or name in self._reserved:
            raise UsernameTaken(name)
        self._reserved.add(name)
        try:
            path = self._path(name)
            await self._run(write_atomic, path, self._encode(account, path), 0o600)
            self._accounts[name] = account
        finally:
            self._reserved.discard(name)

    async def delete(self, username: str) -> None:
        """Remove an account durably (its file, then the directory entry is synced), after
        any change to it already under way."""
        async with self._turn(username):
            if username not in self._accounts:
                raise KeyError(username)
            path = self._path(username)
            await self._run(_unlink_durably, path)
            del self._accounts[username]

    async def update(self, username: str, **changes: Any) -> Account:
        """Change fields of an existing account durably; return the account as changed (the
        memory copy changes once it is on disk).

        Changes to one account take turns, each applied to the account as the one before it
        left it: two made at once (an operator's ``disabled`` and a login's ``last_login``, a
        new password and a key backup) both hold, where writing whole copies let the one that
        finished last silently undo the other.

        :raises KeyError: there is no such account (or it was deleted meanwhile).
        """
        async with self._turn(username):
            current = self._accounts.get(username)
            if current is None:
                raise KeyError(username)
            account = current.with_changes(**changes)
            path = self._path(username)
            await self._run(write_atomic, path, self._encode(account, path), 0o600)
            self._accounts[username] = account
            return account

    @asynccontextmanager
    async def _turn(self, username: str) -> AsyncIterator[None]:
        """One change to ``username``'s file at a time, in the order they were asked for."""
        lock = self._locks.setdefault(username, DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(username, None)


def _unlink_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
