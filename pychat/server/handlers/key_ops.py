"""The key directory: ``get_keys``, ``key_history``, ``rotate_keys``, ``set_presence``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from twisted.logger import Logger

from pychat.crypto.identity import IdentityKeyError, parse_public_identity, rotation_statement
from pychat.log_text import for_log
from pychat.server.ops import OpContext, OpRegistry
from pychat.server.state import State, stay_in
from pychat.store.accounts import Account
from pychat.usernames import normal_form
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bounded

if TYPE_CHECKING:
    from pychat.server.chat import ChatServer

log = Logger(namespace="pychat.keys")

RAW_USERNAME_MAX = 64
SIGNATURE_MAX = 128


@dataclass(frozen=True)
class UserParams:
    """An op about one user."""

    username: str = bounded(max_len=RAW_USERNAME_MAX)


@dataclass(frozen=True)
class RotateKeysParams:
    """``rotate_keys``: the new public identity, signed by the old signing key."""

    public_keys: dict[str, Any] = bounded()
    signature: str = bounded(max_len=SIGNATURE_MAX)


@dataclass(frozen=True)
class PresenceParams:
    """``set_presence``: whether peers may see when this user is online."""

    share: bool


def current_user(ctx: OpContext) -> str:
    """The username of an authenticated connection."""
    username = ctx.session.username
    if username is None:  # the state table keeps this from happening
        raise ProtocolError(ErrorCode.WRONG_STATE, "log in first")
    return username


def keys_reply(account: Account) -> dict[str, Any]:
    """The directory entry of ``account``."""
    latest = account.key_history[-1] if account.key_history else {}
    return {
        "username": account.username,
        "public_keys": account.public_keys,
        "fingerprint": latest.get("fingerprint"),
        "key_version": account.key_version,
    }


def register(registry: OpRegistry, server: ChatServer) -> None:
    """Add the key directory ops to ``registry``."""
    accounts = server.store.accounts
    accounts_service = server.account_service

    def lookup(raw: str) -> Account:
        account = accounts.get(normal_form(raw))
        if account is None:
            raise ProtocolError(ErrorCode.UNKNOWN_USER, f"no user called {raw!r}")
        return account

    @registry.op("get_keys", UserParams, stay_in(State.AUTHENTICATED))
    async def get_keys(ctx: OpContext, params: UserParams) -> Mapping[str, Any]:
        return keys_reply(lookup(params.username))

    @registry.op("key_history", UserParams, stay_in(State.AUTHENTICATED))
    async def key_history(ctx: OpContext, params: UserParams) -> Mapping[str, Any]:
        account = lookup(params.username)
        return {"username": account.username, "history": account.key_history}

    @registry.op("rotate_keys", RotateKeysParams, stay_in(State.AUTHENTICATED))
    async def rotate_keys(ctx: OpContext, params: RotateKeysParams) -> Mapping[str, Any]:
        username = current_user(ctx)
        account = lookup(username)
        try:
            new = parse_public_identity(params.public_keys)
            old = parse_public_identity(account.public_keys)
        except IdentityKeyError as exc:
            raise ProtocolError(ErrorCode.BAD_KEYS, str(exc)) from None
        if accounts_service.key_owner(new, besides=username) is not None:
            raise ProtocolError(
                ErrorCode.BAD_KEYS,
                "these public keys are already another account's; make new ones",
            )
        version = account.key_version + 1
        fingerprint = new.fingerprint()
        try:
            signature = base64.b64decode(params.signature, validate=True)
            old.signing_key.verify(signature, rotation_statement(username, version, fingerprint))
        except (binascii.Error, ValueError, InvalidSignature):
            raise ProtocolError(
                ErrorCode.BAD_SIGNATURE,
                "the new keys must be signed by your current signing key",
            ) from None
        entry = {
            "key_version": version,
            "public_keys": new.to_json(),
            "fingerprint": fingerprint,
            "signature": params.signature,
            "time": server.clock.seconds(),
        }
        updated = account.with_changes(
            public_keys=new.to_json(),
            key_version=version,
            key_history=[*account.key_history, entry],
            updated=server.clock.seconds(),
        )
        await accounts.update(updated)
        accounts_service.remember_keys(username, new)
        log.info("{user} rotated keys to version {v}", user=for_log(username), v=version)
        event = {"user": username, "key_version": version, "fingerprint": fingerprint}
        notified = {c.peer_of(username) for c in server.store.conversations.for_user(username)}
        for peer in notified:
            server.presence.push_to_user(peer, "keys_changed", event)
        server.presence.push_to_user(username, "keys_changed", event, skip=ctx)
        return keys_reply(updated)

    @registry.op("set_presence", PresenceParams, stay_in(State.AUTHENTICATED))
    async def set_presence(ctx: OpContext, params: PresenceParams) -> Mapping[str, Any]:
        username = current_user(ctx)
        account = lookup(username)
        if account.share_presence != params.share:
            if not params.share:
                server.presence.announce(username, False)  # last word before going quiet
            await accounts.update(account.with_changes(share_presence=params.share))
            if params.share:
                server.presence.announce(username, True)
        return {"share": params.share}
