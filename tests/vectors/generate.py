"""Write the end-to-end test vectors (``tests/vectors/*.json``) from the reference code.

Run once when the format is meant to change (``python -m tests.vectors.generate``); the tests
then hold the code to these bytes.  Every random input (keys, salts, nonces, IVs, times) is
fixed here or stored in the vector, so each expected value can be rebuilt from its inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pychat import srp
from pychat.client.keystore import _backup_context, _derive, identity_to_json
from pychat.crypto.e2e import OAEP, canonical, envelope_statement, safety_number
from pychat.crypto.identity import IdentityKeyPair, rotation_statement
from pychat.crypto.kdf import KdfParams
from pychat.encoding import b64encode
from pychat.wire.ids import conversation_id

HERE = Path(__file__).parent
KDF = KdfParams("argon2id", time_cost=2, memory_kib=19 * 1024, parallelism=1)
SEEDS = {"alice": "a1" * 32, "bob": "b0" * 32, "alice-next": "a2" * 32}


def _rsa(name: str) -> rsa.RSAPrivateKey:
    path = HERE / f"rsa-{name}.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def identity(name: str) -> IdentityKeyPair:
    """The fixed identity of ``name`` (RSA from a stored PEM, Ed25519 from a fixed seed)."""
    return IdentityKeyPair(
        _rsa(name), ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEEDS[name]))
    )


def _write(name: str, obj: dict[str, Any]) -> None:
    (HERE / f"{name}.json").write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    alice, bob, nxt = identity("alice"), identity("bob"), identity("alice-next")
    fa, fb = alice.public().fingerprint(), bob.public().fingerprint()
    conv = conversation_id("alice", "bob")
    statement = rotation_statement("alice", 2, nxt.public().fingerprint())
    _write(
        "identity",
        {
            "alice": {
                "ed25519_seed": SEEDS["alice"],
                "public_keys": alice.public().to_json(),
                "fingerprint": fa,
            },
            "bob": {
                "ed25519_seed": SEEDS["bob"],
                "public_keys": bob.public().to_json(),
                "fingerprint": fb,
            },
            "safety_number": safety_number(fa, fb),
            "conversation_id": conv,
            "rotation": {
                "username": "alice",
                "key_version": 2,
                "new_public_keys": nxt.public().to_json(),
                "new_fingerprint": nxt.public().fingerprint(),
                "statement_hex": statement.hex(),
                "signature": b64encode(alice.signing.sign(statement)),
            },
        },
    )

    fernet_key = "qNbUOBs2vXb6kH2CqHGkXcY7y6mZr0m1kH9CmWAmmKc="
    members = {
        name: {
            "fingerprint": ident.public().fingerprint(),
            "wrapped": b64encode(ident.public().encryption_key.encrypt(fernet_key.encode(), OAEP)),
        }
        for name, ident in (("alice", alice), ("bob", bob))
    }
    env_statement = envelope_statement(conv, 1, "alice", members)
    envelope = {
        "v": 1,
        "conversation": conv,
        "epoch": 1,
        "creator": "alice",
        "members": members,
        "signature": b64encode(alice.signing.sign(env_statement)),
    }
    _write(
        "envelope",
        {"fernet_key": fernet_key, "statement_hex": env_statement.hex(), "envelope": envelope},
    )

    inner = {
        "v": 1,
        "sender": "alice",
        "device": "0123456789abcdef",
        "recipient": "bob",
        "conversation": conv,
        "epoch": 1,
        "counter": 7,
        "time": 1764254400.25,
        "body": 'héllo "bob" 👋\nline two \x1b[0m',
    }
    signature = alice.signing.sign(canonical(inner))
    plaintext = canonical({"m": inner, "sig": b64encode(signature)})
    iv, fernet_time = bytes(range(16)), 1764254401
    token = Fernet(fernet_key.encode())._encrypt_from_parts(plaintext, fernet_time, iv).decode()
    _write(
        "message",
        {
            "fernet_key": fernet_key,
            "inner": inner,
            "canonical_inner_hex": canonical(inner).hex(),
            "signature": b64encode(signature),
            "plaintext_hex": plaintext.hex(),
            "fernet_iv_hex": iv.hex(),
            "fernet_time": fernet_time,
            "ciphertext": token,
            "client_id": "0123456789abcdef-7",
        },
    )

    salt, nonce, password = bytes(range(16, 32)), bytes(range(32, 44)), "correct horse battery"
    context = _backup_context("alice")
    key = _derive(password, salt, KDF, context)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps([identity_to_json(alice)]).encode()
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, context)
    body = {
        "format": "pychat-key-backup",
        "v": 1,
        "kdf": KDF.to_json(),
        "salt": b64encode(salt),
        "sealed": b64encode(sealed),
    }
    _write(
        "key_backup",
        {
            "username": "alice",
            "password": password,
            "key_hex": key.hex(),
            "plaintext": plain.decode(),
            "key_backup": b64encode(json.dumps(body).encode()),
        },
    )

    srp_salt = bytes(range(48, 64))
    x = srp.password_x(KDF, srp_salt, b"alice", password.encode())
    _write(
        "srp_x",
        {
            "identity": "alice",
            "password": password,
            "kdf": KDF.to_json(),
            "salt": b64encode(srp_salt),
            "x_hex": f"{x:x}",
            "verifier_hex": f"{srp.verifier(srp.DEFAULT_PARAMS, x):x}",
        },
    )


if __name__ == "__main__":
    main()
