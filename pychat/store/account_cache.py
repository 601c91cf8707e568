"""Accounts held in memory and written through to a backend, one change at a time per
account: what the flat files and PostgreSQL share (the server reads an account on every
login, so every backend keeps them all in memory)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet.defer import DeferredLock

from pychat.store.accounts_record import Account
from pychat.store.errors import UsernameTaken


class AccountCache(ABC):
    """An :class:`~pychat.store.interfaces.AccountRepository` over a backend that writes one
    account durably (:meth:`_write_new`, :meth:`_write`, :meth:`_remove`)."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._reserved: set[str] = set()
        self._locks: dict[str, DeferredLock] = {}

    @abstractmethod
    async def _write_new(self, account: Account) -> bool:
        """Store a new account durably; False when the backend already holds one by that
        name (another node made it)."""

    @abstractmethod
    async def _write(self, account: Account) -> None:
        """Store a changed account durably in place of the old."""

    @abstractmethod
    async def _remove(self, username: str) -> None:
        """Remove an account durably."""

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
            if not await self._write_new(account):
                raise UsernameTaken(name)
            self._accounts[name] = account
        finally:
            self._reserved.discard(name)

    async def delete(self, username: str) -> None:
        """Remove an account durably, after any change to it already under way."""
        async with self._turn(username):
            if username not in self._accounts:
                raise KeyError(username)
            await self._remove(username)
            del self._accounts[username]

    async def update(self, username: str, **changes: Any) -> Account:
        """Change fields of an existing account durably; return the account as changed (the
        memory copy changes once it is stored).

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
            await self._write(account)
            self._accounts[username] = account
            return account

    @asynccontextmanager
    async def _turn(self, username: str) -> AsyncIterator[None]:
        """One change to ``username`` at a time, in the order they were asked for."""
        lock = self._locks.setdefault(username, DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(username, None)
