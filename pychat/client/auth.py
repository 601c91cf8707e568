"""Client side of signup, SRP login and password change over a :class:`ClientProtocol`.

The password never leaves this module: it is stretched into x with the account's KDF (in a
thread, since that is slow on purpose), and only the SRP values go on the wire.  Login checks
the server's proof M2 before it reports success, so a server that does not hold the user's
verifier cannot pretend the login worked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pychat.client.blocking import BlockingRunner, in_thread
from pychat.client.protocol import ClientProtocol
from pychat.crypto.kdf import KdfParams, KdfParamsError, default_params
from pychat.srp import (
    GROUPS,
    SrpAuthenticationError,
    SrpClientSession,
    SrpError,
    SrpParams,
    password_x,
    to_int,
    verifier,
)
from pychat.wire.encoding import b64decode, b64encode
from pychat.wire.usernames import normal_form

#: Groups and hashes a client accepts from a server: nothing under 2048 bits, SHA-256 only.
ACCEPTED_GROUPS = ("rfc5054-2048", "rfc5054-3072", "rfc5054-4096")
SALT_BYTES = 16


class AuthError(Exception):
    """Signup or login failed on the client's side of the checks; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    """A verified login: the account's normal-form name and the SRP session key K."""

    username: str
    session_key: bytes
    #: The device token the server gave for the next login (None from an older server).
    device_token: str | None = None


def srp_params_from_hello(hello: dict[str, Any]) -> SrpParams:
    """The SRP parameters a server announced, if the client finds them acceptable.

    :raises AuthError: an unknown or weak group, or a hash other than SHA-256.
    """
    srp = hello.get("srp")
    if not isinstance(srp, dict):
        raise AuthError("the server did not announce SRP parameters")
    group, hash_name = srp.get("group"), srp.get("hash")
    if group not in ACCEPTED_GROUPS or hash_name != "sha256":
        raise AuthError(f"the server's SRP parameters are not acceptable: {group}/{hash_name}")
    return SrpParams(GROUPS[group], "sha256")


async def make_credentials(
    params: SrpParams,
    username: str,
    password: str,
    kdf: KdfParams | None = None,
    run_blocking: BlockingRunner = in_thread,
) -> dict[str, Any]:
    """Salt, verifier and KDF parameters for ``username`` and ``password`` (signup fields)."""
    identity = normal_form(username).encode()
    kdf = kdf or default_params()
    salt = os.urandom(SALT_BYTES)
    x = await run_blocking(password_x, kdf, salt, identity, password.encode())
    v = verifier(params, x)
    return {"salt": b64encode(salt), "verifier": b64encode(params.pad(v)), "kdf": kdf.to_json()}


async def signup(
    proto: ClientProtocol,
    params: SrpParams,
    username: str,
    password: str,
    public_keys: dict[str, str],
    *,
    kdf: KdfParams | None = None,
    key_backup: str | None = None,
    invite: str | None = None,
    run_blocking: BlockingRunner = in_thread,
) -> str:
    """Create an account; return its normal-form name.  Raises RemoteError on refusal."""
    fields = await make_credentials(params, username, password, kdf, run_blocking)
    if key_backup is not None:
        fields["key_backup"] = key_backup
    if invite is not None:
        fields["invite"] = invite
    reply = await proto.request("signup", username=username, public_keys=public_keys, **fields)
    return str(reply["username"])


async def _prove(
    proto: ClientProtocol,
    params: SrpParams,
    identity: bytes,
    password: str,
    start_op: str,
    start_fields: dict[str, Any],
    run_blocking: BlockingRunner,
) -> tuple[SrpClientSession, bytes, dict[str, Any]]:
    session = SrpClientSession(params, identity)
    challenge = await proto.request(start_op, A=b64encode(params.pad(session.A)), **start_fields)
    try:
        kdf = KdfParams.from_json(challenge.get("kdf"))
        salt = b64decode(challenge["salt"])
        B = to_int(b64decode(challenge["B"]))
    except (KdfParamsError, KeyError, ValueError, TypeError) as exc:
        raise AuthError(f"the server's login challenge is not acceptable: {exc}") from None
    x = await run_blocking(password_x, kdf, salt, identity, password.encode())
    try:
        m1 = session.process_challenge(salt, B, x)
    except SrpError as exc:
        raise AuthError(f"the server's login challenge is not acceptable: {exc}") from None
    return session, m1, challenge


def _check_m2(session: SrpClientSession, reply: dict[str, Any]) -> bytes:
    try:
        return session.verify_server_proof(b64decode(reply["M2"]))
    except (SrpAuthenticationError, KeyError, ValueError, TypeError):
        raise AuthError(
            "the server could not prove it knows your password verifier: "
            "it may be an impostor; do not trust this connection"
        ) from None


async def login(
    proto: ClientProtocol,
    params: SrpParams,
    username: str,
    password: str,
    *,
    device_token: str | None = None,
    run_blocking: BlockingRunner = in_thread,
) -> LoginResult:
    """Log in; return the verified result.

    :raises RemoteError: the server refused (``auth_failed``, ``rate_limited``, ...).
    :raises AuthError: the server's answers failed the client's checks.
    """
    identity = normal_form(username)
    fields: dict[str, Any] = {"username": username}
    if device_token:
        fields["device_token"] = device_token
    session, m1, _ = await _prove(
        proto, params, identity.encode(), password, "login_start", fields, run_blocking
    )
    reply = await proto.request("login_finish", M1=b64encode(m1))
    key = _check_m2(session, reply)
    token = reply.get("device_token")
    return LoginResult(
        str(reply.get("username", identity)), key, token if isinstance(token, str) else None
    )


async def change_password(
    proto: ClientProtocol,
    params: SrpParams,
    username: str,
    old_password: str,
    new_password: str,
    *,
    kdf: KdfParams | None = None,
    key_backup: str | None = None,
    run_blocking: BlockingRunner = in_thread,
) -> None:
    """Prove the old password and set a new one (on an authenticated connection)."""
    identity = normal_form(username).encode()
    session, m1, _ = await _prove(
        proto, params, identity, old_password, "change_password_start", {}, run_blocking
    )
    fields = await make_credentials(params, username, new_password, kdf, run_blocking)
    if key_backup is not None:
        fields["key_backup"] = key_backup
    reply = await proto.request("change_password", M1=b64encode(m1), **fields)
    _check_m2(session, reply)
