"""Account ops: ``signup``, ``login_start``, ``login_finish``, ``change_password_start``,
``change_password`` and ``logout``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pychat import limits
from pychat.encoding import b64encode
from pychat.server.accounts import LoginChallenge, auth_failed
from pychat.server.ops import OpContext, OpRegistry
from pychat.server.state import Outcome, State, stay_in
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import b64_bytes, bounded

if TYPE_CHECKING:
    from pychat.server.chat import ChatServer

#: Longest username accepted on the wire before normalising (normal forms are at most 32).
RAW_USERNAME_MAX = 64
#: Base64 of a 4096-bit value is 684 characters; leave room, refuse anything absurd.
SRP_VALUE_MAX = 1024
PUBLIC_KEYS_MAX = 4096


@dataclass(frozen=True)
class SignupParams:
    """``signup``: a new account's SRP credentials and public keys."""

    username: str = bounded(max_len=RAW_USERNAME_MAX)
    salt: str = bounded(max_len=SRP_VALUE_MAX)
    verifier: str = bounded(max_len=SRP_VALUE_MAX)
    kdf: dict[str, Any] = bounded()
    public_keys: dict[str, Any] = bounded()
    key_backup: str | None = bounded(default=None, max_len=limits.KEY_BACKUP_MAX)


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


@dataclass(frozen=True)
class ChangePasswordParams:
    """``change_password``: proof of the old password and the new credentials."""

    M1: str = bounded(max_len=SRP_VALUE_MAX)
    salt: str = bounded(max_len=SRP_VALUE_MAX)
    verifier: str = bounded(max_len=SRP_VALUE_MAX)
    kdf: dict[str, Any] = bounded()
    key_backup: str | None = bounded(default=None, max_len=limits.KEY_BACKUP_MAX)


@dataclass(frozen=True)
class KeyBackupParams:
    """``set_key_backup``: the new opaque backup."""

    key_backup: str = bounded(max_len=limits.KEY_BACKUP_MAX)


@dataclass(frozen=True)
class NoParams:
    """An op without fields."""


LOGIN_KEY = "login"
REAUTH_KEY = "reauth"


def register(registry: OpRegistry, server: ChatServer) -> None:
    """Add the account ops to ``registry``."""
    service = server.account_service

    @registry.op("signup", SignupParams, stay_in(State.UNAUTHENTICATED))
    async def signup(ctx: OpContext, params: SignupParams) -> Mapping[str, Any]:
        if len(str(params.public_keys)) > PUBLIC_KEYS_MAX:
            raise ProtocolError(ErrorCode.BAD_KEYS, "public keys are too large")
        account = await service.signup(
            ctx.session.host,
            params.username,
            params.salt,
            params.verifier,
            params.kdf,
            params.public_keys,
            params.key_backup,
        )
        return {"username": account.username}

    login_start_rows = {
        State.UNAUTHENTICATED: Outcome(State.SRP_CHALLENGED, State.UNAUTHENTICATED),
        State.SRP_CHALLENGED: Outcome(State.SRP_CHALLENGED, State.UNAUTHENTICATED),
    }

    @registry.op("login_start", LoginStartParams, login_start_rows)
    async def login_start(ctx: OpContext, params: LoginStartParams) -> Mapping[str, Any]:
        ctx.session.scratch.pop(LOGIN_KEY, None)
        challenge, reply = service.start_login(
            ctx.session.host, params.username, params.A, params.device_token
        )
        ctx.session.scratch[LOGIN_KEY] = challenge
        return reply

    @registry.op(
        "login_finish",
        ProofParams,
        {State.SRP_CHALLENGED: Outcome(State.AUTHENTICATED, State.UNAUTHENTICATED)},
    )
    async def login_finish(ctx: OpContext, params: ProofParams) -> Mapping[str, Any]:
        challenge = ctx.session.scratch.pop(LOGIN_KEY)
        assert isinstance(challenge, LoginChallenge)  # noqa: S101 - the state table guarantees it
        m2 = service.finish_login(ctx.session.host, challenge, params.M1)
        server.user_logged_in(ctx, challenge.username)
        return {
            "M2": b64encode(m2),
            "username": challenge.username,
            "device_token": service.issue_device_token(challenge.username),
        }

    @registry.op("change_password_start", ReauthStartParams, stay_in(State.AUTHENTICATED))
    async def change_password_start(ctx: OpContext, params: ReauthStartParams) -> Mapping[str, Any]:
        username = ctx.session.username
        assert username is not None  # noqa: S101 - authenticated state
        challenge, reply = service.start_login(ctx.session.host, username, params.A)
        ctx.session.scratch[REAUTH_KEY] = challenge
        return reply

    @registry.op("change_password", ChangePasswordParams, stay_in(State.AUTHENTICATED))
    async def change_password(ctx: OpContext, params: ChangePasswordParams) -> Mapping[str, Any]:
        challenge = ctx.session.scratch.pop(REAUTH_KEY, None)
        if not isinstance(challenge, LoginChallenge):
            raise ProtocolError(
                ErrorCode.WRONG_STATE, "send change_password_start first, then change_password"
            )
        m2 = service.finish_login(ctx.session.host, challenge, params.M1)
        account = service.accounts.get(challenge.username)
        if account is None:  # deleted meanwhile by the operator
            raise auth_failed()
        await service.change_password(
            account, params.salt, params.verifier, params.kdf, params.key_backup
        )
        return {"M2": b64encode(m2)}

    @registry.op("get_key_backup", NoParams, stay_in(State.AUTHENTICATED))
    async def get_key_backup(ctx: OpContext, params: NoParams) -> Mapping[str, Any]:
        username = ctx.session.username
        account = service.accounts.get(username) if username else None
        if account is None:
            raise auth_failed()
        return {"key_backup": account.key_backup}

    @registry.op("set_key_backup", KeyBackupParams, stay_in(State.AUTHENTICATED))
    async def set_key_backup(ctx: OpContext, params: KeyBackupParams) -> Mapping[str, Any]:
        username = ctx.session.username
        account = service.accounts.get(username) if username else None
        if account is None:
            raise auth_failed()
        b64_bytes("key_backup", params.key_backup, min_len=1)
        await service.accounts.update(
            account.with_changes(key_backup=params.key_backup, updated=server.clock.seconds())
        )
        return {}

    @registry.op(
        "logout",
        NoParams,
        {State.AUTHENTICATED: Outcome(State.UNAUTHENTICATED, State.AUTHENTICATED)},
    )
    async def logout(ctx: OpContext, params: NoParams) -> Mapping[str, Any]:
        server.user_logged_out(ctx)
        ctx.session.scratch.clear()
        return {}
