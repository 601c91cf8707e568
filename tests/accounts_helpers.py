"""Test helpers for accounts: keys made once per run, and SRP done synchronously."""

from __future__ import annotations

import base64
import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pychat import srp
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.wire.usernames import normal_form
from tests.helpers import FakeConn

KDF = minimum_params()


KEYS = Path(__file__).parent / "keys"
_assigned: dict[str, int] = {}


@cache
def keypair(name: str = "alice") -> IdentityKeyPair:
    """An identity of its own for each account name (the server refuses keys that another
    account uses).  RSA keys come from a pool of test keys made once (``tests/keys``, test
    material only), so tests do not pay for RSA generation; Ed25519 keys from the name."""
    normal = normal_form(name)
    if normal != name:
        return keypair(normal)
    index = _assigned.setdefault(normal, len(_assigned))
    pool = sorted(KEYS.glob("rsa-*.pem"))
    if index < len(pool):
        loaded = serialization.load_pem_private_key(
            pool[index].read_bytes(), None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(loaded, rsa.RSAPrivateKey)
        encryption = loaded
    else:
        encryption = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    seed = hashlib.sha256(b"pychat-test-identity\0" + normal.encode()).digest()
    return IdentityKeyPair(encryption, ed25519.Ed25519PrivateKey.from_private_bytes(seed))


def public_keys(name: str = "alice") -> dict[str, str]:
    return keypair(name).public().to_json()


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
        "public_keys": public_keys(username),
    }


def login_sync(
    conn: FakeConn, username: str, password: str, device_token: str | None = None
) -> dict[str, Any]:
    """Run login_start and login_finish on a fake connection; return the finish reply (or the
    refused login_start's)."""
    params = srp.DEFAULT_PARAMS
    client = srp.SrpClientSession(params, normal_form(username).encode())
    extra = {"device_token": device_token} if device_token else {}
    start = conn.request("login_start", username=username, A=b64(params.pad(client.A)), **extra)
    if not start["ok"]:
        return start
    salt = base64.b64decode(start["salt"])
    x = srp.password_x(KDF, salt, normal_form(username).encode(), password.encode())
    m1 = client.process_challenge(salt, srp.to_int(base64.b64decode(start["B"])), x)
    reply = conn.request("login_finish", M1=b64(m1))
    if reply["ok"]:
        client.verify_server_proof(base64.b64decode(reply["M2"]))
    return reply
