"""Accounts in PostgreSQL: one row per user, keyed by the pseudonym of the name, the account
sealed exactly as in a flat file.  All accounts are held in memory (the server reads them on
every login), loaded at start and written through."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from cryptography.exceptions import InvalidTag
from twisted.internet.defer import DeferredLock

from pychat.store.accounts import FORMAT, VERSION, Account
from pychat.store.atrest import AtRestKey
from pychat.store.errors import UsernameTaken
from pychat.store.pg.database import Database, DatabaseUnavailable


class PgAccountStore:
    """The accounts of one database (an :class:`~pychat.store.interfaces.AccountRepository`)."""

    def __init__(self, database: Database, key: AtRestKey) -> None:
        self._db = database
        self._sealer = key.sealer("account")
        self._names = key.name_hasher("account")
        self._accounts: dict[str, Account] = {}
        self._reserved: set[str] = set()
        self._locks: dict[str, DeferredLock] = {}

    @classmethod
    def open(cls, database: Database, key: AtRestKey) -> PgAccountStore:
        """Load every account.

        :raises DatabaseUnavailable: a row that does not open (damage, or another store key).
        """
        store = cls(database, key)
        for name_key, sealed in database.query_now("SELECT name_key, sealed FROM accounts"):
            account = store._unseal(name_key, bytes(sealed))
            store._accounts[account.username] = account
        return store

    def _aad(self, name_key: str) -> bytes:
        return f"{FORMAT}/{VERSION}/{name_key}".encode()

    def _seal(self, account: Account) -> tuple[str, bytes]:
        name_key = self._names(account.username)
        plain = json.dumps(asdict(account), separators=(",", ":")).encode()
        return name_key, self._sealer.seal(plain, self._aad(name_key))

    def _unseal(self, name_key: str, sealed: bytes) -> Account:
        try:
            account = Account(**json.loads(self._sealer.open(sealed, self._aad(name_key))))
        except (InvalidTag, ValueError, TypeError) as exc:
            why = str(exc) or "altered, or a different store key"
            raise DatabaseUnavailable(
                f"the account row {name_key[:12]}… does not open ({why})"
            ) from None
        if self._names(account.username) != name_key:
            raise DatabaseUnavailable(f"the account row {name_key[:12]}… is in the wrong row")
        return account

    # -- the interface -----------------------------------------------------------------------

    def get(self, username: str) -> Account | None:
        """The account of a normal-form username, or None."""
        return self._accounts.get(username)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

    def __len__(self) -> int:
        return len(self._accounts)

    async def create(self, account: Account) -> None:
        """Store a new account durably (committed).

        :raises UsernameTaken: the name exists or is being created right now.
        """
        name = account.username
        if name in self._accounts or name in self._reserved:
            raise UsernameTaken(name)
        self._reserved.add(name)
        try:
            name_key, sealed = self._seal(account)
            inserted = await self._db.run(_insert, name_key, sealed)
            if not inserted:
                raise UsernameTaken(name)
            self._accounts[name] = account
        finally:
            self._reserved.discard(name)

    async def delete(self, username: str) -> None:
        """Remove an account durably, after any change to it already under way."""
        async with self._turn(username):
            if username not in self._accounts:
                raise KeyError(username)
            await self._db.run(_delete, self._names(username))
            del self._accounts[username]

    async def update(self, username: str, **changes: Any) -> Account:
        """Change fields of an existing account durably, one change at a time per account,
        each applied to what the one before left.

        :raises KeyError: there is no such account (or it was deleted meanwhile).
        """
        async with self._turn(username):
            current = self._accounts.get(username)
            if current is None:
                raise KeyError(username)
            account = current.with_changes(**changes)
            name_key, sealed = self._seal(account)
            await self._db.run(_update, name_key, sealed)
            self._accounts[username] = account
            return account

    @asynccontextmanager
    async def _turn(self, username: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(username, DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(username, None)


def _insert(cursor: Any, name_key: str, sealed: bytes) -> bool:
    cursor.execute(
        "INSERT INTO accounts (name_key, sealed) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name_key, sealed),
    )
    return bool(cursor.rowcount == 1)


def _update(cursor: Any, name_key: str, sealed: bytes) -> None:
    cursor.execute("UPDATE accounts SET sealed = %s WHERE name_key = %s", (sealed, name_key))


def _delete(cursor: Any, name_key: str) -> None:
    cursor.execute("DELETE FROM accounts WHERE name_key = %s", (name_key,))
