"""Indexes and tokens the account service keeps beside the accounts themselves.

:class:`AccountIndexes` answers "which account published this public key", "which account
does this name look like" and "what KDF settings did the newest account choose" (built from
the accounts on first use, kept up to date at signup and key rotation).
:class:`DeviceTokens` issues and checks the device tokens that let a known device log in
past the account and address locks.
"""

from __future__ import annotations

import os
from hmac import compare_digest
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from pychat.crypto.identity import PublicIdentity
from pychat.crypto.kdf import default_params
from pychat.store.accounts import Account
from pychat.store.interfaces import AccountRepository
from pychat.wire.encoding import b64decode, b64encode
from pychat.wire.usernames import skeleton


class AccountIndexes:
    """Look-ups over all accounts that signup and key rotation need."""

    def __init__(self, accounts: AccountRepository) -> None:
        self.accounts = accounts
        self._skeletons: dict[str, str] | None = None
        self._key_owners: dict[str, str] | None = None
        self._latest_kdf: dict[str, Any] | None = None

    def _owners(self) -> dict[str, str]:
        """Each public key (RSA DER and Ed25519 bytes, as b64) -> the account that published it,
        over every account's whole key history (built on first use, kept up to date)."""
        if self._key_owners is None:
            self._key_owners = {}
            for account in self.accounts:
                for entry in account.key_history or [{"public_keys": account.public_keys}]:
                    for key in entry["public_keys"].values():
                        self._key_owners.setdefault(key, account.username)
        return self._key_owners

    def key_owner(self, identity: PublicIdentity, *, besides: str | None = None) -> str | None:
        """The account (other than ``besides``) that has published either key, or None."""
        owners = self._owners()
        for key in identity.to_json().values():
            owner = owners.get(key)
            if owner is not None and owner != besides:
                return owner
        return None

    def remember_keys(self, username: str, identity: PublicIdentity) -> None:
        """Record that ``username`` published ``identity`` (signup, key rotation)."""
        for key in identity.to_json().values():
            self._owners().setdefault(key, username)

    def look_alikes(self) -> dict[str, str]:
        """Skeleton -> username of every account (built on first use, kept up to date)."""
        if self._skeletons is None:
            self._skeletons = {skeleton(a.username): a.username for a in self.accounts}
        return self._skeletons

    def newest_kdf(self) -> dict[str, Any]:
        """The KDF settings of the most recently created account (the defaults when none):
        what an unknown name is told, so its settings do not stand out."""
        if self._latest_kdf is None:
            newest = max(self.accounts, key=lambda a: a.created, default=None)
            self._latest_kdf = (
                dict(newest.kdf) if newest is not None else default_params().to_json()
            )
        return dict(self._latest_kdf)

    def account_created(self, account: Account, identity: PublicIdentity) -> None:
        """Index a new account: its name's skeleton, its keys, its KDF settings."""
        self.look_alikes()[skeleton(account.username)] = account.username
        self.remember_keys(account.username, identity)
        self._latest_kdf = dict(account.kdf)

    def account_seen(self, account: Account, *, made: bool) -> None:
        """Index an account another node made or changed: its name's skeleton, every key it
        has published, and (``made``) its KDF settings as the newest."""
        self.look_alikes()[skeleton(account.username)] = account.username
        owners = self._owners()
        for entry in account.key_history or [{"public_keys": account.public_keys}]:
            for key in entry["public_keys"].values():
                owners.setdefault(key, account.username)
        if made:
            self._latest_kdf = dict(account.kdf)


class DeviceTokens:
    """Device tokens: nonce + HMAC over the account name and its SRP salt (nothing stored)."""

    def __init__(self, key: bytes, accounts: AccountRepository) -> None:
        self._token_key = key
        self.accounts = accounts

    def _token_mac(self, account: Account, nonce: bytes) -> bytes:
        mac = hmac.HMAC(self._token_key, hashes.SHA256())
        # Bound to the account's SRP salt, which a password change renews: old tokens end.
        mac.update(
            b"\0".join(
                [b"pychat-device-token", account.username.encode(), account.salt.encode(), nonce]
            )
        )
        return mac.finalize()

    def issue(self, username: str) -> str:
        """A new device token for ``username`` (given with every successful login)."""
        account = self.accounts.get(username)
        assert account is not None  # noqa: S101 - just logged in
        nonce = os.urandom(16)
        return b64encode(nonce + self._token_mac(account, nonce))

    def token_id(self, account: Account | None, token: str | None) -> str | None:
        """The id of ``token`` if it is a valid device token of ``account``, else None."""
        if account is None or not token:
            return None
        try:
            raw = b64decode(token)
        except ValueError:
            return None
        nonce, tag = raw[:16], raw[16:]
        if len(nonce) != 16 or not compare_digest(tag, self._token_mac(account, nonce)):
            return None
        return nonce.hex()
