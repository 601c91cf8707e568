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
from dataclasses import asdict
from pathlib import Path

from cryptography.exceptions import InvalidTag

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.account_cache import AccountCache
from pychat.store.accounts_record import FORMAT, VERSION, Account
from pychat.store.atrest import AtRestKey, SealedDirectory
from pychat.store.blocking import BlockingRunner
from pychat.store.errors import StoreError

__all__ = ["FORMAT", "VERSION", "Account", "AccountStore"]


class AccountStore(AccountCache):
    """The accounts of one data dir, in memory, written through to disk."""

    def __init__(self, place: SealedDirectory) -> None:
        super().__init__()
        self.directory = place.directory
        self._sealer = place.sealer
        self._names = place.names
        self._run = place.run_blocking

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

    # -- writing one account (AccountCache) -----------------------------------------------

    async def _write_new(self, account: Account) -> bool:
        path = self._path(account.username)
        await self._run(write_atomic, path, self._encode(account, path), 0o600)
        return True

    async def _write(self, account: Account) -> None:
        path = self._path(account.username)
        await self._run(write_atomic, path, self._encode(account, path), 0o600)

    async def _remove(self, username: str) -> None:
        await self._run(_unlink_durably, self._path(username))


def _unlink_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
