"""The account service: signup and password change, with their limits; SRP logins are its
:class:`~pychat.server.srp_login.SrpLogins`.

It sits between the op handlers (which know connections) and the account store (which knows
files), and knows neither.  Every refusal is a :class:`ProtocolError` with a documented code.

Login does not reveal whether an account exists: for an unknown name the server answers with
a salt, KDF parameters and B computed from a fake verifier that is derived (HMAC under a
store-key-derived secret) from the name, so repeated attempts agree and the exchange costs the
same; the failure at ``login_finish`` is the same ``auth_failed`` as a wrong password.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from pychat import limits
from pychat.crypto.identity import IdentityKeyError, PublicIdentity, parse_public_identity
from pychat.crypto.kdf import KdfParams, KdfParamsError
from pychat.server.account_errors import rate_limited, username_or_error
from pychat.server.account_guards import AccountIndexes
from pychat.server.log_names import LogNames
from pychat.server.ratelimit import TokenBucket
from pychat.server.srp_login import SrpLogins, verifier_of
from pychat.srp import (
    DEFAULT_PARAMS,
    SrpParams,
    to_int,
)
from pychat.srp.powers import VerifierPowers
from pychat.store.accounts import Account
from pychat.store.atrest import AtRestKey
from pychat.store.errors import UsernameTaken
from pychat.store.interfaces import AccountRepository
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import b64_bytes
from pychat.wire.usernames import skeleton

log = Logger(namespace="pychat.accounts")


class AccountService:
    """Accounts and authentication for the chat server."""

    def __init__(
        self,
        accounts: AccountRepository,
        key: AtRestKey,
        clock: IReactorTime,
        srp_params: SrpParams = DEFAULT_PARAMS,
        signups_per_hour: int = limits.SIGNUPS_PER_ADDRESS_PER_HOUR,
        login_starts_per_minute: int = limits.LOGIN_STARTS_PER_ADDRESS,
    ) -> None:
        self.accounts = accounts
        self.clock = clock
        self.srp_params = srp_params
        #: How log lines name accounts (a keyed pseudonym, not the username).
        self.log_name = LogNames(key)
        self.indexes = AccountIndexes(accounts)
        #: Tables of each verifier's powers, for a login's v^u (and a decoy for unknown names).
        self.powers = VerifierPowers(srp_params.group.N, 8 * srp_params.digest_size)
        self.powers.hold(verifier_of(account) for account in accounts)
        #: SRP logins, their fake challenges for unknown names, and the failed-login locks.
        self.logins = SrpLogins(
            accounts,
            key,
            clock,
            srp_params,
            self.powers,
            self.indexes,
            self.log_name,
            login_starts_per_minute,
        )
        max_keys = limits.RATE_LIMIT_MAX_KEYS
        #: None when the operator turned the signup limit off (``--signups-per-hour 0``).
        self.signups = (
            TokenBucket(clock, capacity=signups_per_hour, period=3600.0, max_keys=max_keys)
            if signups_per_hour > 0
            else None
        )

    # -- checks shared by several ops ----------------------------------------------------------

    def _srp_credentials(
        self, salt_b64: str, verifier_b64: str, kdf: object
    ) -> tuple[str, str, KdfParams]:
        b64_bytes("salt", salt_b64, min_len=limits.SRP_SALT_MIN, max_len=limits.SRP_SALT_MAX)
        length = self.srp_params.group.length
        raw_v = b64_bytes("verifier", verifier_b64, min_len=1, max_len=length)
        v = to_int(raw_v)
        if not 1 < v < self.srp_params.group.N:
            raise ProtocolError(ErrorCode.BAD_SRP_VALUE, "verifier must be in 2..N-1")
        try:
            params = KdfParams.from_json(kdf)
        except KdfParamsError as exc:
            raise ProtocolError(ErrorCode.BAD_KDF, str(exc)) from None
        return salt_b64, verifier_b64, params

    # -- signup ----------------------------------------------------------------------------

    async def signup(
        self,
        host: str,
        raw_username: str,
        salt: str,
        verifier: str,
        kdf: object,
        public_keys: object,
        key_backup: str | None = None,
    ) -> Account:
        """Create an account; return it.

        :raises ProtocolError: ``bad_username``, ``username_taken``, ``bad_field``, ``bad_kdf``,
            ``bad_keys``, ``bad_srp_value`` or ``rate_limited``.
        """
        username = username_or_error(raw_username)
        salt, verifier, kdf_params = self._srp_credentials(salt, verifier, kdf)
        identity = self._new_account_checks(host, username, public_keys, key_backup)
        now = self.clock.seconds()
        account = Account(
            username=username,
            salt=salt,
            verifier=verifier,
            kdf=kdf_params.to_json(),
            public_keys=identity.to_json(),
            created=now,
            updated=now,
            key_backup=key_backup,
            key_history=[
                {
                    "key_version": 1,
                    "public_keys": identity.to_json(),
                    "fingerprint": identity.fingerprint(),
                    "signature": None,
                    "time": now,
                }
            ],
        )
        self.powers.add(verifier_of(account))  # ready before the first login can need it
        try:
            await self.accounts.create(account)
        except UsernameTaken:
            self.powers.discard(verifier_of(account))
            raise ProtocolError(
                ErrorCode.USERNAME_TAKEN, f"the username {username!r} is taken"
            ) from None
        except BaseException:
            self.powers.discard(verifier_of(account))
            raise
        self.indexes.account_created(account, identity)
        log.info("account created: {user}", user=self.log_name(username))
        return account

    def _new_account_checks(
        self, host: str, username: str, public_keys: object, key_backup: str | None
    ) -> PublicIdentity:
        """The parsed public keys, if the name is free and unlike others', the keys nobody
        else's, and the address within its signup limit."""
        try:
            identity = parse_public_identity(public_keys)
        except IdentityKeyError as exc:
            raise ProtocolError(ErrorCode.BAD_KEYS, str(exc)) from None
        if key_backup is not None:
            b64_bytes("key_backup", key_backup, min_len=1)
        if self.accounts.get(username) is not None:
            raise ProtocolError(ErrorCode.USERNAME_TAKEN, f"the username {username!r} is taken")
        if self.indexes.key_owner(identity) is not None:
            raise ProtocolError(
                ErrorCode.BAD_KEYS,
                "these public keys are already another account's; every account makes its own",
            )
        look_alike = self.indexes.look_alikes().get(skeleton(username))
        if look_alike is not None and look_alike != username:
            raise ProtocolError(
                ErrorCode.BAD_USERNAME,
                f"the username {username!r} looks like the existing account {look_alike!r}; "
                "choose a name that cannot be mistaken for another",
            )
        wait = self.signups.take(host) if self.signups is not None else 0.0
        if wait:
            raise rate_limited(wait, "new accounts from your address")
        return identity

    # -- password change ---------------------------------------------------------------------

    async def change_password(
        self,
        account: Account,
        salt: str,
        verifier: str,
        kdf: object,
        key_backup: str | None = None,
    ) -> Account:
        """Replace the SRP credentials of ``account`` (the caller checked the old password).

        A new ``key_backup`` (re-wrapped under the new password) replaces the old one; without
        one the old backup is dropped, since it opens only with the old password.
        """
        salt, verifier, kdf_params = self._srp_credentials(salt, verifier, kdf)
        if key_backup is not None:
            b64_bytes("key_backup", key_backup, min_len=1)
        changes = {
            "salt": salt,
            "verifier": verifier,
            "kdf": kdf_params.to_json(),
            "key_backup": key_backup,
            "updated": self.clock.seconds(),
        }
        updated = account.with_changes(**changes)
        self.powers.add(verifier_of(updated))
        try:
            await self.accounts.update(account.username, **changes)
        except BaseException:
            self.powers.discard(verifier_of(updated))
            raise
        self.powers.discard(verifier_of(account))
        log.info("password changed: {user}", user=self.log_name(account.username))
        return updated

    def changed_elsewhere(self, old: Account | None, new: Account | None) -> None:
        """Another node stored ``new`` in place of ``old`` (either None: made, or removed):
        keep the indexes and the verifier tables in step."""
        if old is not None and (new is None or verifier_of(new) != verifier_of(old)):
            self.powers.discard(verifier_of(old))
        if new is not None:
            self.indexes.account_seen(new, made=old is None)

    def account_removed(self, account: Account) -> None:
        """``account`` is gone (deleted, or reset by the operator): drop what was kept for it."""
        self.powers.discard(verifier_of(account))
