"""The account service: signup, SRP login and password change, with their rate limits.

It sits between the op handlers (which know connections) and the account store (which knows
files), and knows neither.  Every refusal is a :class:`ProtocolError` with a documented code.

Login does not reveal whether an account exists: for an unknown name the server answers with
a salt, KDF parameters and B computed from a fake verifier that is derived (HMAC under a
store-key-derived secret) from the name, so repeated attempts agree and the exchange costs the
same; the failure at ``login_finish`` is the same ``auth_failed`` as a wrong password.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from pychat import limits
from pychat.crypto.identity import IdentityKeyError, PublicIdentity, parse_public_identity
from pychat.crypto.kdf import KdfParams, KdfParamsError
from pychat.encoding import b64decode, b64encode
from pychat.server.account_guards import AccountIndexes, DeviceTokens
from pychat.server.log_names import LogNames
from pychat.server.ratelimit import BackoffPolicy, TokenBucket
from pychat.srp import (
    DEFAULT_PARAMS,
    SrpAuthenticationError,
    SrpError,
    SrpParams,
    SrpServerSession,
    to_int,
)
from pychat.srp_powers import VerifierPowers
from pychat.store.accounts import Account
from pychat.store.atrest import AtRestKey
from pychat.store.errors import UsernameTaken
from pychat.store.interfaces import AccountRepository
from pychat.usernames import UsernameError, normalize, skeleton
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import b64_bytes, bad_field

log = Logger(namespace="pychat.accounts")


def rate_limited(retry_after: float, what: str) -> ProtocolError:
    """The ``rate_limited`` error with its ``retry_after`` (whole seconds, rounded up)."""
    seconds = max(1, int(retry_after + 0.999))
    return ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"too many {what}; try again in {seconds} s",
        details={"retry_after": seconds},
    )


def auth_failed() -> ProtocolError:
    """The one error for a wrong password and an unknown user alike."""
    return ProtocolError(ErrorCode.AUTH_FAILED, "wrong username or password")


def username_or_error(raw: str) -> str:
    """The normal form of ``raw``, or ``bad_username``."""
    try:
        return normalize(raw)
    except UsernameError as exc:
        raise ProtocolError(ErrorCode.BAD_USERNAME, str(exc)) from None


@dataclass
class LoginChallenge:
    """A login in progress on one connection, between ``login_start`` and ``login_finish``."""

    username: str
    srp: SrpServerSession
    known: bool
    #: The id of the valid device token this attempt came with, or None.
    token_id: str | None = None


#: The lockout policies (numbers and reasons in pychat.limits).
ACCOUNT_LOCK = BackoffPolicy(
    limits.ACCOUNT_FREE_FAILURES,
    limits.ACCOUNT_LOCK_BASE,
    limits.ACCOUNT_LOCK_MAX,
    limits.ACCOUNT_FORGET_AFTER,
)
ADDRESS_LOCK = BackoffPolicy(
    limits.ADDRESS_FREE_FAILURES,
    limits.ADDRESS_LOCK_BASE,
    limits.ADDRESS_LOCK_MAX,
    limits.ADDRESS_FORGET_AFTER,
)
DEVICE_TOKEN_LOCK = BackoffPolicy(
    limits.DEVICE_TOKEN_FREE_FAILURES,
    limits.DEVICE_TOKEN_LOCK_BASE,
    limits.DEVICE_TOKEN_LOCK_MAX,
    limits.DEVICE_TOKEN_FORGET_AFTER,
)


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
        self._fake_secret = key.subkey("fake-login")
        #: How log lines name accounts (a keyed pseudonym, not the username).
        self.log_name = LogNames(key)
        self.indexes = AccountIndexes(accounts)
        #: Tables of each verifier's powers, for a login's v^u (and a decoy for unknown names).
        self.powers = VerifierPowers(srp_params.group.N, 8 * srp_params.digest_size)
        self.powers.hold(_verifier(account) for account in accounts)
        self.tokens = DeviceTokens(key.subkey("device-token"), accounts)
        max_keys = limits.RATE_LIMIT_MAX_KEYS
        self.account_failures = ACCOUNT_LOCK.limiter(clock, max_keys)
        self.address_failures = ADDRESS_LOCK.limiter(clock, max_keys)
        self.token_failures = DEVICE_TOKEN_LOCK.limiter(clock, max_keys)
        self.login_starts = TokenBucket(
            clock,
            capacity=login_starts_per_minute,
            period=limits.LOGIN_STARTS_PERIOD,
            max_keys=max_keys,
        )
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

    def _client_public(self, a_b64: str) -> int:
        return to_int(b64_bytes("A", a_b64, min_len=1, max_len=self.srp_params.group.length))

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
        self.powers.add(_verifier(account))  # ready before the first login can need it
        try:
            await self.accounts.create(account)
        except UsernameTaken:
            self.powers.discard(_verifier(account))
            raise ProtocolError(
                ErrorCode.USERNAME_TAKEN, f"the username {username!r} is taken"
            ) from None
        except BaseException:
            self.powers.discard(_verifier(account))
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

    # -- login -----------------------------------------------------------------------------

    def _check_not_locked(self, host: str, username: str) -> None:
        wait = max(
            self.address_failures.retry_after(host), self.account_failures.retry_after(username)
        )
        if wait:
            raise rate_limited(wait, "failed logins")

    def _fake_verifier(self, username: str) -> int:
        """A stand-in verifier: HKDF of the fake-login key and the name, reduced below N."""
        length = self.srp_params.group.length + 16  # extra bytes make the reduction unbiased
        okm = HKDF(
            algorithm=hashes.SHA256(), length=length, salt=None, info=b"pychat-fake-verifier"
        ).derive(self._fake_value("x", username))
        return to_int(okm) % (self.srp_params.group.N - 1) + 1

    def _fake_value(self, label: str, username: str) -> bytes:
        mac = hmac.HMAC(self._fake_secret, hashes.SHA256())
        mac.update(label.encode() + b"\0" + username.encode())
        return mac.finalize()

    # -- device tokens (OWASP: lockout that strangers cannot trigger against the owner) --------

    def start_login(
        self, host: str, raw_username: str, a_b64: str, device_token: str | None = None
    ) -> tuple[LoginChallenge, dict[str, object]]:
        """Begin an SRP login; return the challenge to keep and the reply fields.

        :raises ProtocolError: ``bad_username``, ``bad_field``, ``bad_srp_value``,
            ``rate_limited``.
        """
        username = username_or_error(raw_username)
        A = self._client_public(a_b64)
        account = self.accounts.get(username)
        token_id = self.tokens.token_id(account, device_token)
        if token_id is not None:
            # A device that logged in before: only its own failures can hold it back.
            wait = self.token_failures.retry_after(token_id)
            if wait:
                raise rate_limited(wait, "failed logins from this device")
        else:
            wait = self.login_starts.take(host)
            if wait:
                raise rate_limited(wait, "login attempts from your address")
            self._check_not_locked(host, username)
        # The same work whether the account exists or not (timing must not tell): both paths
        # derive the stand-in values, and neither computes g^x (a stand-in verifier needs no
        # exponentiation: any number below N that nobody can predict looks alike once B =
        # kv + g^b hides it).  Unknown names get the KDF settings of the newest real account.
        fake_salt = self._fake_value("salt", username)[:16]
        fake_v = self._fake_verifier(username)
        if account is not None:
            salt = b64decode(account.salt)
            v = to_int(b64decode(account.verifier))
            kdf = account.kdf
        else:
            salt, v, kdf = fake_salt, fake_v, self.indexes.newest_kdf()
        v_power: Callable[[int], int]
        if account is not None:
            v_power = partial(self.powers.power, v)
        else:
            v_power = self.powers.decoy_power
        session = SrpServerSession(self.srp_params, username.encode(), salt, v, v_power=v_power)
        try:
            session.accept_client_public(A)
        except SrpError as exc:
            raise ProtocolError(ErrorCode.BAD_SRP_VALUE, f"A is not acceptable: {exc}") from None
        reply: dict[str, object] = {
            "username": username,
            "salt": b64encode(salt),
            "kdf": kdf,
            "B": b64encode(self.srp_params.pad(session.B)),
            **self.srp_params.to_json(),
        }
        return LoginChallenge(username, session, account is not None, token_id), reply

    def finish_login(self, host: str, challenge: LoginChallenge, m1_b64: str) -> bytes:
        """Check the client's proof; return M2.

        :raises ProtocolError: ``bad_field`` (M1 of the wrong length) or ``auth_failed``.
        """
        m1 = b64_bytes("M1", m1_b64)
        if len(m1) != self.srp_params.digest_size:
            raise bad_field("M1", f"must decode to exactly {self.srp_params.digest_size} bytes")
        try:
            m2 = challenge.srp.verify_client_proof(m1)
        except SrpAuthenticationError:
            if challenge.token_id is not None:
                self.token_failures.record_failure(challenge.token_id)
            else:
                self.account_failures.record_failure(challenge.username)
                self.address_failures.record_failure(host)
            log.info(
                "failed login for {user} from {host}",
                user=self.log_name(challenge.username),
                host=host,
            )
            raise auth_failed() from None
        if not challenge.known:  # cannot happen without breaking SRP; refuse all the same
            raise auth_failed()
        account = self.accounts.get(challenge.username)
        if account is not None and account.disabled:  # told only to who knows the password
            log.info(
                "refused a login to the disabled account {user}",
                user=self.log_name(account.username),
            )
            raise ProtocolError(
                ErrorCode.ACCOUNT_DISABLED, "this account is disabled by the server's operator"
            )
        if challenge.token_id is not None:
            self.token_failures.record_success(challenge.token_id)
        else:
            self.account_failures.record_success(challenge.username)
        return m2

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
        self.powers.add(_verifier(updated))
        try:
            await self.accounts.update(account.username, **changes)
        except BaseException:
            self.powers.discard(_verifier(updated))
            raise
        self.powers.discard(_verifier(account))
        log.info("password changed: {user}", user=self.log_name(account.username))
        return updated

    def account_removed(self, account: Account) -> None:
        """``account`` is gone (deleted, or reset by the operator): drop what was kept for it."""
        self.powers.discard(_verifier(account))


def _verifier(account: Account) -> int:
    return to_int(b64decode(account.verifier))
