"""``whatdoyouknow``: everything the server holds about the logged-in user, for them to read.

It makes docs/security.md's promises checkable: the account record (the verifier only as its
size), the key history, every conversation with its counts, sizes and times, this user's read
markers, their sessions, the login-failure state kept in memory, and the recent log lines that
name them.  What the server holds about a *peer* (their read marker, their sessions) is not
in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pychat.crypto.identity import parse_public_identity
from pychat.server.handlers.common import HandlerDeps, NoParams, OpDef, current_user
from pychat.server.ops import OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.store.accounts import Account
from pychat.wire.encoding import b64decode

#: What the report says the server does not keep, so a reader need not wonder.
NOT_KEPT = [
    "your password, or anything from which it follows without guessing",
    "your private keys, except inside the key backup sealed by your password",
    "the text, kind or recipients' reactions of any message: only ciphertext and its size",
    "your IP address beyond the current sessions and the log lines below",
]


def _account(account: Account) -> dict[str, Any]:
    return {
        "username": account.username,
        "created": account.created,
        "updated": account.updated,
        "last_login": account.last_login,
        "key_version": account.key_version,
        "share_presence": account.share_presence,
        "disabled": account.disabled,
        "kdf": account.kdf,
        "srp_salt": account.salt,
        "srp_verifier": f"{len(b64decode(account.verifier)) * 8} bits (not shown)",
        "key_backup": len(account.key_backup) if account.key_backup else None,
    }


def _key_history(account: Account) -> list[dict[str, Any]]:
    out = []
    for entry in account.key_history:
        try:
            fingerprint = parse_public_identity(entry["public_keys"]).fingerprint()
        except (ValueError, KeyError, TypeError):
            fingerprint = "?"
        out.append(
            {
                "key_version": entry.get("key_version"),
                "fingerprint": fingerprint,
                "time": entry.get("time"),
                "signed_by_previous": entry.get("signature") is not None,
            }
        )
    return out


def _conversations(deps: HandlerDeps, me: str) -> list[dict[str, Any]]:
    out = []
    for conv in deps.conversations.for_user(me):
        who: dict[str, Any] = (
            {"peer": conv.peer_of(me)}
            if conv.group is None
            else {
                "group": True,
                "members": list(conv.members),
                "admins": sorted(conv.group.state.admins),
                "group_name": conv.group.state.name,
                "statements": len(conv.group.statements),
            }
        )
        out.append(
            {
                "conversation": conv.id,
                **who,
                "created": conv.created,
                "last_activity": conv.last_activity,
                "messages": conv.last_seq,
                "epochs": len(conv.epochs),
                "your_read_marker": conv.read.get(me, 0),
                "stored_bytes": conv.stored_bytes,
                "damaged": conv.damaged is not None,
            }
        )
    return out


async def whatdoyouknow(deps: HandlerDeps, ctx: OpContext, params: NoParams) -> Mapping[str, Any]:
    """The report (docs/protocol.md, ``whatdoyouknow``)."""
    me = current_user(ctx)
    account = deps.accounts.get(me)
    assert account is not None  # noqa: S101 - a logged-in user's account exists
    failures, last_failure = deps.account_service.logins.account_failures.failures(me)
    return {
        "server_time": deps.clock.seconds(),
        "account": _account(account),
        "key_history": _key_history(account),
        "conversations": _conversations(deps, me),
        "sessions": [
            {"address": c.session.peer, "client": c.session.client, "this_one": c is ctx}
            for c in deps.presence.connections.get(me, ())
        ],
        "login_failures": {
            "count": failures,
            "last": last_failure,
            "locked_for": deps.account_service.logins.account_failures.retry_after(me),
        },
        "files": [
            {
                "file": f.id,
                "conversation": f.conversation,
                "bytes": f.size,
                "complete": f.complete,
                "expires": f.expires,
            }
            for f in deps.files.of_user(me)
        ],
        "log_name": deps.account_service.log_name(me),
        "log": deps.recent_log.about(deps.account_service.log_name(me)),
        "not_kept": NOT_KEPT,
    }


OPS = (OpDef("whatdoyouknow", NoParams, stay_in(*LOGGED_IN), whatdoyouknow),)
