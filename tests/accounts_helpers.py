"""Test helpers for accounts: keys made once per run, and SRP done synchronously."""

from __future__ import annotations

import base64
import os
from functools import cache
from typing import Any

from pychat import srp
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.usernames import normal_form
from tests.helpers import FakeConn

KDF = minimum_params()


@cache
def keypair() -> IdentityKeyPair:
    """One identity for every test account (the server does not care whose keys they are)."""
    return IdentityKeyPair.generate()


def public_keys() -> dict[str, str]:
    return keypair().public().to_json()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signup_fields(
    username: str, password: str, params: srp.SrpParams = srp.DEFAULT_PARAMS
) -> dict[str, Any]:
    salt = os.urandom(16)
    x = srp.password_x(KDF, salt, normal_form(username).encode(), password.encode())
    return {
        "username": username,
        "salt": b64(salt),
        "verifier": b64(params.pad(srp.verifier(params, x))),
        "kdf": KDF.to_json(),
        "public_keys": public_keys(),
    }


def login_sync(conn: FakeConn, username: str, password: str) -> dict[str, Any]:
    """Run login_start and login_finish on a fake connection; return the finish reply."""
    params = srp.DEFAULT_PARAMS
    client = srp.SrpClientSession(params, normal_form(username).encode())
    start = conn.request("login_start", username=username, A=b64(params.pad(client.A)))
    if not start["ok"]:
        return start
    salt = base64.b64decode(start["salt"])
    x = srp.password_x(KDF, salt, normal_form(username).encode(), password.encode())
    m1 = client.process_challenge(salt, srp.to_int(base64.b64decode(start["B"])), x)
    reply = conn.request("login_finish", M1=b64(m1))
    if reply["ok"]:
        client.verify_server_proof(base64.b64decode(reply["M2"]))
    return reply
