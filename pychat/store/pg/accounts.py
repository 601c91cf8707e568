"""Accounts in PostgreSQL: one row per user, keyed by the pseudonym of the name, the account
sealed exactly as in a flat file.  All accounts are held in memory (the server reads them on
every login), loaded at start and written through."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cryptography.exceptions import InvalidTag

from pychat.store.account_cache import AccountCache
from pychat.store.accounts_record import FORMAT, VERSION, Account
from pychat.store.atrest import AtRestKey
from pychat.store.pg.database import Database, DatabaseUnavailable
from pychat.store.pg.events import EventLog


class PgAccountStore(AccountCache):
    """The accounts of one database (an :class:`~pychat.store.interfaces.AccountRepository`)."""

    def __init__(self, database: Database, key: AtRestKey, events: EventLog | None = None) -> None:
        super().__init__()
        self._db = database
        self._events = events
        self._key = key
        self._sealer = key.sealer("account")
        self._names = key.name_hasher("account")

    @classmethod
    def open(
        cls, database: Database, key: AtRestKey, events: EventLog | None = None
    ) -> PgAccountStore:
        """Load every account; with ``events``, each change is told to the other nodes.

        :raises DatabaseUnavailable: a row that does not open (damage, or another store key).
        """
        store = cls(database, key, events)
        for name_key, sealed in database.query_now("SELECT name_key, sealed FROM accounts"):
            account = store._unseal(name_key, bytes(sealed))
            store._accounts[account.username] = account
        return store

    def _seal(self, account: Account) -> tuple[str, bytes]:
        return account_row(self._key, account)

    def _unseal(self, name_key: str, sealed: bytes) -> Account:
        try:
            account = Account(**json.loads(self._sealer.open(sealed, _aad(name_key))))
        except (InvalidTag, ValueError, TypeError) as exc:
            why = str(exc) or "altered, or a different store key"
            raise DatabaseUnavailable(
                f"the account row {name_key[:12]}… does not open ({why})"
            ) from None
        if self._names(account.username) != name_key:
            raise DatabaseUnavailable(f"the account row {name_key[:12]}… is in the wrong row")
        return account

    # -- writing one account (AccountCache) -----------------------------------------------

    async def _write_new(self, account: Account) -> bool:
        name_key, sealed = self._seal(account)
        told = self._told(account.username)
        inserted: bool = await self._db.run(_insert, name_key, sealed, told)
        return inserted

    async def _write(self, account: Account) -> None:
        name_key, sealed = self._seal(account)
        await self._db.run(_update, name_key, sealed, self._told(account.username))

    async def _remove(self, username: str) -> None:
        await self._db.run(_delete, self._names(username), self._told(username))

    def _told(self, username: str) -> Told:
        """Writes the event that tells the other nodes the account changed."""
        events = self._events
        if events is None:
            return None
        return lambda cursor: events.write(cursor, {"k": "account", "name": username})

    # -- what another node changed ----------------------------------------------------------

    async def names(self) -> set[str]:
        """Every username the database holds now (and this node's), to read each again."""
        rows = await self._db.run(_all)
        return {self._unseal(k, s).username for k, s in rows} | set(self._accounts)

    async def refresh(self, username: str) -> tuple[Account | None, Account | None]:
        """Read the account again (another node changed it): (as it was here, as it is).

        :raises DatabaseUnavailable: its row does not open.
        """
        async with self._turn(username):
            name_key = self._names(username)
            sealed = await self._db.run(_select, name_key)
            old = self._accounts.get(username)
            if sealed is None:
                self._accounts.pop(username, None)
                return old, None
            new = self._unseal(name_key, sealed)
            self._accounts[username] = new
            return old, new


def _aad(name_key: str) -> bytes:
    return f"{FORMAT}/{VERSION}/{name_key}".encode()


def account_row(key: AtRestKey, account: Account) -> tuple[str, bytes]:
    """An account's row: the pseudonym of its name, and the account sealed with ``key``."""
    name_key = key.name_hasher("account")(account.username)
    plain = json.dumps(asdict(account), separators=(",", ":")).encode()
    return name_key, key.sealer("account").seal(plain, _aad(name_key))


def _all(cursor: Any) -> list[tuple[str, bytes]]:
    cursor.execute("SELECT name_key, sealed FROM accounts")
    return [(str(k), bytes(s)) for k, s in cursor.fetchall()]


#: Adds the event of a change to the transaction that makes it (None: no other nodes told).
Told = Callable[[Any], None] | None


def _insert(cursor: Any, name_key: str, sealed: bytes, told: Told) -> bool:
    """Whether the account is now ours: inserted, or already there with these very bytes
    (this insert's own first try, run again after a lost connection)."""
    cursor.execute(
        "INSERT INTO accounts (name_key, sealed) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name_key, sealed),
    )
    if cursor.rowcount == 1:
        if told is not None:
            told(cursor)
        return True
    cursor.execute("SELECT sealed FROM accounts WHERE name_key = %s", (name_key,))
    row = cursor.fetchone()
    return row is not None and bytes(row[0]) == sealed


def _update(cursor: Any, name_key: str, sealed: bytes, told: Told) -> None:
    cursor.execute("UPDATE accounts SET sealed = %s WHERE name_key = %s", (sealed, name_key))
    if told is not None:
        told(cursor)


def _delete(cursor: Any, name_key: str, told: Told) -> None:
    cursor.execute("DELETE FROM accounts WHERE name_key = %s", (name_key,))
    if told is not None:
        told(cursor)


def _select(cursor: Any, name_key: str) -> bytes | None:
    cursor.execute("SELECT sealed FROM accounts WHERE name_key = %s", (name_key,))
    row = cursor.fetchone()
    return None if row is None else bytes(row[0])
