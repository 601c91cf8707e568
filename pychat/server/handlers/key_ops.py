"""The key directory: ``get_keys``, ``key_history``, ``rotate_keys``, ``set_presence``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from twisted.logger import Logger

from pychat.crypto.identity import (
    IdentityKeyError,
    PublicIdentity,
    parse_public_identity,
    rotation_statement,
)
from pychat.server.handlers.common import RAW_USERNAME_MAX, HandlerDeps, OpDef, current_user
from pychat.server.ops import OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.store.accounts import Account
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bounded
from pychat.wire.shapes import KeyHistoryReply, KeysChangedPush, KeysReply, PresenceReply
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.keys")

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


def keys_reply(account: Account) -> KeysReply:
    """The directory entry of ``account``."""
    latest = account.key_history[-1] if account.key_history else {}
    return {
        "username": account.username,
        "public_keys": account.public_keys,
        "fingerprint": latest.get("fingerprint"),
        "key_version": account.key_version,
    }


def lookup(deps: HandlerDeps, raw: str) -> Account:
    """The account called ``raw`` (any form of the name), or ``unknown_user``."""
    account = deps.accounts.get(normal_form(raw))
    if account is None:
        raise ProtocolError(ErrorCode.UNKNOWN_USER, f"no user called {raw!r}")
    return account


async def get_keys(deps: HandlerDeps, ctx: OpContext, params: UserParams) -> KeysReply:
    """A user's current public keys."""
    return keys_reply(lookup(deps, params.username))


async def key_history(deps: HandlerDeps, ctx: OpContext, params: UserParams) -> KeyHistoryReply:
    """Every public identity a user has had, with the rotation signatures."""
    account = lookup(deps, params.username)
    return {"username": account.username, "history": account.key_history}


def _checked_rotation(
    deps: HandlerDeps, username: str, account: Account, params: RotateKeysParams
) -> PublicIdentity:
    """The new identity, if it is well formed, nobody else's, and signed by the old key."""
    try:
        new = parse_public_identity(params.public_keys)
        old = parse_public_identity(account.public_keys)
    except IdentityKeyError as exc:
        raise ProtocolError(ErrorCode.BAD_KEYS, str(exc)) from None
    if deps.account_service.indexes.key_owner(new, besides=username) is not None:
        raise ProtocolError(
            ErrorCode.BAD_KEYS, "these public keys are already another account's; make new ones"
        )
    statement = rotation_statement(username, account.key_version + 1, new.fingerprint())
    try:
        old.signing_key.verify(base64.b64decode(params.signature, validate=True), statement)
    except (binascii.Error, ValueError, InvalidSignature):
        raise ProtocolError(
            ErrorCode.BAD_SIGNATURE, "the new keys must be signed by your current signing key"
        ) from None
    return new


async def rotate_keys(deps: HandlerDeps, ctx: OpContext, params: RotateKeysParams) -> KeysReply:
    """Publish new keys signed by the old ones; everyone who talks with the user is told."""
    username = current_user(ctx)
    account = lookup(deps, username)
    new = _checked_rotation(deps, username, account, params)
    version, fingerprint = account.key_version + 1, new.fingerprint()
    entry = {
        "key_version": version,
        "public_keys": new.to_json(),
        "fingerprint": fingerprint,
        "signature": params.signature,
        "time": deps.clock.seconds(),
    }
    updated = await deps.accounts.update(
        username,
        public_keys=new.to_json(),
        key_version=version,
        key_history=[*account.key_history, entry],
        updated=deps.clock.seconds(),
    )
    deps.account_service.indexes.remember_keys(username, new)
    log.info(
        "{user} rotated keys to version {v}",
        user=deps.account_service.log_name(username),
        v=version,
    )
    event: KeysChangedPush = {"user": username, "key_version": version, "fingerprint": fingerprint}
    peers = {p for c in deps.conversations.for_user(username) for p in c.others(username)}
    deps.presence.push_to_users(sorted(peers), "keys_changed", event)
    deps.presence.push_to_user(username, "keys_changed", event, skip=ctx)
    return keys_reply(updated)


async def set_presence(deps: HandlerDeps, ctx: OpContext, params: PresenceParams) -> PresenceReply:
    """Whether peers may see when this user is online."""
    username = current_user(ctx)
    account = lookup(deps, username)
    if account.share_presence != params.share:
        if not params.share:
            deps.presence.announce(username, False, everywhere=True)  # last word
        await deps.accounts.update(username, share_presence=params.share)
        if params.share:
            deps.presence.announce(username, True, everywhere=True)
    return {"share": params.share}


_LOGGED_IN = stay_in(*LOGGED_IN)

OPS = (
    OpDef("get_keys", UserParams, _LOGGED_IN, get_keys),
    OpDef("key_history", UserParams, _LOGGED_IN, key_history),
    OpDef("rotate_keys", RotateKeysParams, _LOGGED_IN, rotate_keys),
    OpDef("set_presence", PresenceParams, _LOGGED_IN, set_presence),
)
