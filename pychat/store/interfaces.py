"""What the protocol code needs of storage; a different backend implements these."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from pychat.store.accounts import Account


class AccountRepository(Protocol):
    """Accounts by normal-form username."""

    def get(self, username: str) -> Account | None:
        """The account, or None."""

    def __iter__(self) -> Iterator[Account]:
        """Every account."""

    def __len__(self) -> int:
        """How many accounts there are."""

    async def create(self, account: Account) -> None:
        """Store a new account durably; raise UsernameTaken if it exists."""

    async def update(self, account: Account) -> None:
        """Replace an existing account durably."""
