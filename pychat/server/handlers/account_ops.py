"""Account ops: ``signup``, ``login_start``, ``login_finish``, ``change_password_start``,
``change_password`` and ``logout``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pychat import limits
from pychat.server.account_errors import auth_failed
from pychat.server.handlers.common import (
    RAW_USERNAME_MAX,
    SRP_VALUE_MAX,
    HandlerDeps,
    NoParams,
    OpDef,
    current_user,
)
from pychat.server.ops import OpContext
from pychat.server.srp_login import LoginChallenge
from pychat.server.state import LOGGED_IN, Outcome, State, stay_in
from pychat.store.accounts import Account
from pychat.wire.encoding import b64encode
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import b64_bytes, bounded
from pychat.wire.shapes import (
    KeyBackupReply,
    LoginChallengeReply,
    LoginReply,
    Nothing,
    ProofReply,
    SignupReply,
)

PUBLIC_KEYS_MAX = 4096


@dataclass(frozen=True, kw_only=True)
class NewCredentials:
    """The SRP credentials of an account, at signup and at a password change."""

    salt: str = bounded(max_len=SRP_VALUE_MAX)
    verifier: str = bounded(max_len=SRP_VALUE_MAX)
    kdf: dict[str, Any] = bounded()
    key_backup: str | None = bounded(default=None, max_len=limits.KEY_BACKUP_MAX)


@dataclass(frozen=True, kw_only=True)
class SignupParams(NewCredentials):
    """``signup``: a new account's name, SRP credentials and public keys."""

    username: str = bounded(max_len=RAW_USERNAME_MAX)
    public_keys: dict[str, Any] = bounded()
    invite: str | None = bounded(max_len=64, default=None)


@dataclass(frozen=True)
class LoginStartParams:
    """``login_start``: who, and the client's SRP public value A."""

    username: str = bounded(max_len=RAW_USERNAME_MAX)
    A: str = bounded(max_len=SRP_VALUE_MAX)
    device_token: str | None = bounded(max_len=limits.DEVICE_TOKEN_MAX, default=None)


@dataclass(frozen=True)
class ProofParams:
    """``login_finish``: the client's proof M1."""

    M1: str = bounded(max_len=SRP_VALUE_MAX)


@dataclass(frozen=True)
class ReauthStartParams:
    """``change_password_start``: the client's SRP public value A."""

    A: str = bounded(max_len=SRP_VALUE_MAX)


@dataclass(frozen=True, kw_only=True)
class ChangePasswordParams(NewCredentials):
    """``change_password``: proof of the old password, and the new credentials."""

    M1: str = bounded(max_len=SRP_VALUE_MAX)


@dataclass(frozen=True)
class KeyBackupParams:
    """``set_key_backup``: the new opaque backup."""

    key_backup: str = bounded(max_len=limits.KEY_BACKUP_MAX)


LOGIN_KEY = "login"
REAUTH_KEY = "reauth"


async def signup(deps: HandlerDeps, ctx: OpContext, params: SignupParams) -> SignupReply:
    """Create an account from SRP credentials and public keys."""
    if len(str(params.public_keys)) > PUBLIC_KEYS_MAX:
        raise ProtocolError(ErrorCode.BAD_KEYS, "public keys are too large")
    invite = await deps.signup_gate.admit(params.invite, deps.clock.seconds())
    try:
        account = await deps.account_service.signup(
            ctx.session.host,
            params.username,
            params.salt,
            params.verifier,
            params.kdf,
            params.public_keys,
            params.key_backup,
        )
    except BaseException:
        await deps.signup_gate.release(invite)
        raise
    await deps.signup_gate.spend(invite)
    return {"username": account.username}


def login_start(deps: HandlerDeps, ctx: OpContext, params: LoginStartParams) -> LoginChallengeReply:
    """The server's SRP challenge (the same shape whether the account exists or not)."""
    ctx.session.scratch.pop(LOGIN_KEY, None)
    challenge, reply = deps.account_service.logins.start_login(
        ctx.session.host, params.username, params.A, params.device_token
    )
    ctx.session.scratch[LOGIN_KEY] = challenge
    return reply


def login_finish(deps: HandlerDeps, ctx: OpContext, params: ProofParams) -> LoginReply:
    """Check the client's proof; the connection is logged in and gets a device token."""
    challenge = ctx.session.scratch.pop(LOGIN_KEY)
    assert isinstance(challenge, LoginChallenge)  # noqa: S101 - the state table guarantees it
    m2 = deps.account_service.logins.finish_login(ctx.session.host, challenge, params.M1)
    deps.logged_in(ctx, challenge.username)
    return {
        "M2": b64encode(m2),
        "username": challenge.username,
        "device_token": deps.account_service.logins.tokens.issue(challenge.username),
    }


async def change_password_start(
    deps: HandlerDeps, ctx: OpContext, params: ReauthStartParams
) -> LoginChallengeReply:
    """A fresh SRP challenge for the logged-in user (the state becomes reauth_challenged)."""
    username = current_user(ctx)
    challenge, reply = deps.account_service.logins.start_login(ctx.session.host, username, params.A)
    ctx.session.scratch[REAUTH_KEY] = challenge
    return reply


async def change_password(
    deps: HandlerDeps, ctx: OpContext, params: ChangePasswordParams
) -> ProofReply:
    """Prove the old password (the challenge of change_password_start), set new credentials."""
    challenge = ctx.session.scratch.pop(REAUTH_KEY)
    assert isinstance(challenge, LoginChallenge)  # noqa: S101 - the state table guarantees it
    service = deps.account_service
    m2 = service.logins.finish_login(ctx.session.host, challenge, params.M1)
    account = deps.accounts.get(challenge.username)
    if account is None:  # deleted meanwhile by the operator
        raise auth_failed()
    await service.change_password(
        account, params.salt, params.verifier, params.kdf, params.key_backup
    )
    return {"M2": b64encode(m2)}


def _own_account(deps: HandlerDeps, ctx: OpContext) -> Account:
    account = deps.accounts.get(current_user(ctx))
    if account is None:  # deleted meanwhile by the operator
        raise auth_failed()
    return account


async def get_key_backup(deps: HandlerDeps, ctx: OpContext, params: NoParams) -> KeyBackupReply:
    """The opaque key backup this account stored."""
    return {"key_backup": _own_account(deps, ctx).key_backup}


async def set_key_backup(deps: HandlerDeps, ctx: OpContext, params: KeyBackupParams) -> Nothing:
    """Replace the opaque key backup."""
    account = _own_account(deps, ctx)
    b64_bytes("key_backup", params.key_backup, min_len=1)
    await deps.accounts.update(
        account.username, key_backup=params.key_backup, updated=deps.clock.seconds()
    )
    return {}


async def logout(deps: HandlerDeps, ctx: OpContext, params: NoParams) -> Nothing:
    """Back to unauthenticated on this connection."""
    deps.logged_out(ctx)
    ctx.session.scratch.clear()
    return {}


# Where each op is legal, and the state after it succeeds / fails (see pychat.server.state).
_LOGGED_IN = stay_in(*LOGGED_IN)
_CHALLENGE = Outcome(State.SRP_CHALLENGED, State.UNAUTHENTICATED)
_REAUTH = Outcome(State.REAUTH_CHALLENGED, State.AUTHENTICATED)
_SIGNUP = stay_in(State.UNAUTHENTICATED)
_LOGIN_START = {State.UNAUTHENTICATED: _CHALLENGE, State.SRP_CHALLENGED: _CHALLENGE}
_LOGIN_FINISH = {State.SRP_CHALLENGED: Outcome(State.AUTHENTICATED, State.UNAUTHENTICATED)}
_REAUTH_START = {State.AUTHENTICATED: _REAUTH, State.REAUTH_CHALLENGED: _REAUTH}
_REAUTH_FINISH = {State.REAUTH_CHALLENGED: Outcome(State.AUTHENTICATED, State.AUTHENTICATED)}
_LOGOUT = {state: Outcome(State.UNAUTHENTICATED, state) for state in LOGGED_IN}

OPS = (
    OpDef("signup", SignupParams, _SIGNUP, signup),
    OpDef("login_start", LoginStartParams, _LOGIN_START, login_start),
    OpDef("login_finish", ProofParams, _LOGIN_FINISH, login_finish),
    OpDef("change_password_start", ReauthStartParams, _REAUTH_START, change_password_start),
    OpDef("change_password", ChangePasswordParams, _REAUTH_FINISH, change_password),
    OpDef("get_key_backup", NoParams, _LOGGED_IN, get_key_backup),
    OpDef("set_key_backup", KeyBackupParams, _LOGGED_IN, set_key_backup),
    OpDef("logout", NoParams, _LOGOUT, logout),
)
