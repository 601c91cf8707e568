"""Proving a password: the SRP-6a login exchange (``login_start``, ``login_finish``), its
stand-in challenge for names that have no account, and the failed-login locks.

Login does not reveal whether an account exists: for an unknown name the server answers with
a salt, KDF parameters and B computed from a fake verifier that is derived (HMAC under a
store-key-derived secret) from the name, so repeated attempts agree and the exchange costs the
same; the failure at ``login_finish`` is the same ``auth_failed`` as a wrong password.  A
device that logged in before presents its device token and is held back only by its own
failures (OWASP: a lockout strangers cannot trigger against the owner).
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
from pychat.server.account_errors import auth_failed, rate_limited, username_or_error
from pychat.server.account_guards import AccountIndexes, DeviceTokens
from pychat.server.log_names import LogNames
from pychat.server.ratelimit import BackoffPolicy, TokenBucket
from pychat.srp import SrpAuthenticationError, SrpError, SrpParams, SrpServerSession, to_int
from pychat.srp.powers import VerifierPowers
from pychat.store.accounts import Account
from pychat.store.atrest import AtRestKey
from pychat.store.interfaces import AccountRepository
from pychat.wire.encoding import b64decode, b64encode
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import b64_bytes, bad_field
from pychat.wire.shapes import LoginChallengeReply

log = Logger(namespace="pychat.accounts")


def verifier_of(account: Account) -> int:
    """The account's SRP verifier as a number."""
    return to_int(b64decode(account.verifier))


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


class SrpLogins:
    """Logins by SRP-6a for one server's accounts, with their locks."""

    def __init__(
        self,
        accounts: AccountRepository,
        key: AtRestKey,
        clock: IReactorTime,
        srp_params: SrpParams,
        powers: VerifierPowers,
        indexes: AccountIndexes,
        log_name: LogNames,
        login_starts_per_minute: int,
    ) -> None:
        self.accounts = accounts
        self.srp_params = srp_params
        self.powers = powers
        self.indexes = indexes
        self.log_name = log_name
        self._fake_secret = key.subkey("fake-login")
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

    def _client_public(self, a_b64: str) -> int:
        return to_int(b64_bytes("A", a_b64, min_len=1, max_len=self.srp_params.group.length))

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

    def start_login(
        self, host: str, raw_username: str, a_b64: str, device_token: str | None = None
    ) -> tuple[LoginChallenge, LoginChallengeReply]:
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
        reply: LoginChallengeReply = {
            "username": username,
            "salt": b64encode(salt),
            "kdf": kdf,
            "B": b64encode(self.srp_params.pad(session.B)),
            "group": self.srp_params.group.name,
            "hash": self.srp_params.hash_name,
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
