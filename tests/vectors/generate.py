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
from pychat.client.validity import message_rule
from pychat.crypto.canonical import MAX_SAFE_INTEGER, canonical
from pychat.crypto.e2e import safety_number
from pychat.crypto.envelopes import OAEP, EnvelopeFacts, envelope_statement
from pychat.crypto.group_chain import (
    group_safety_number,
    sign_statement,
    statement_hash,
    verify_chain,
)
from pychat.crypto.group_envelopes import group_envelope_statement, make_group_envelope
from pychat.crypto.identity import IdentityKeyPair, rotation_statement
from pychat.crypto.kdf import KdfParams
from pychat.wire.encoding import b64encode
from pychat.wire.ids import conversation_id

HERE = Path(__file__).parent
KDF = KdfParams("argon2id", time_cost=2, memory_kib=19 * 1024, parallelism=1)
SEEDS = {"alice": "a1" * 32, "bob": "b0" * 32, "alice-next": "a2" * 32, "carol": "c3" * 32}


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
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


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
    for name, after in (("envelope", 0), ("envelope_v1", None)):
        _write(name, _envelope(conv, fernet_key, alice, bob, after))
    body = 'héllo "bob" 👋\nline two \x1b[0m'
    base: dict[str, Any] = {"sender": "alice", "device": "0123456789abcdef", "recipient": "bob"}
    base |= {"conversation": conv, "epoch": 1, "counter": 7, "body": body}
    _write("message", _message(fernet_key, alice, {"v": 2, **base, "time": 1764254400000}))
    _write("message_v1", _message(fernet_key, alice, {"v": 1, **base, "time": 1764254400.25}))
    _write("numbers", _numbers(fernet_key, alice, base))
    _write("validity", _validity(fa, fb, nxt.public().fingerprint()))

    salt, nonce, password = bytes(range(16, 32)), bytes(range(32, 44)), "correct horse battery"
    context = _backup_context("alice")
    key = _derive(password, salt, KDF, context)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps([identity_to_json(alice)]).encode()
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, context)
    backup = {
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
            "key_backup": b64encode(json.dumps(backup).encode()),
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


def _envelope(
    conv: str, fernet_key: str, alice: IdentityKeyPair, bob: IdentityKeyPair, after: int | None
) -> dict[str, Any]:
    """An envelope of epoch 1 by alice (version 2 with ``after``, else version 1)."""
    members = {
        name: {
            "fingerprint": ident.public().fingerprint(),
            "wrapped": b64encode(ident.public().encryption_key.encrypt(fernet_key.encode(), OAEP)),
        }
        for name, ident in (("alice", alice), ("bob", bob))
    }
    statement = envelope_statement(conv, 1, "alice", members, after=after)
    envelope: dict[str, Any] = {"v": 1 if after is None else 2, "conversation": conv}
    envelope |= {"epoch": 1, "creator": "alice"}
    if after is not None:
        envelope["after"] = after
    envelope |= {"members": members, "signature": b64encode(alice.signing.sign(statement))}
    return {"fernet_key": fernet_key, "statement_hex": statement.hex(), "envelope": envelope}


def _message(fernet_key: str, signer: IdentityKeyPair, inner: dict[str, Any]) -> dict[str, Any]:
    """A message with every intermediate value, its Fernet IV and time fixed."""
    signature = signer.signing.sign(canonical(inner))
    plaintext = canonical({"m": inner, "sig": b64encode(signature)})
    iv, fernet_time = bytes(range(16)), 1764254401
    token = Fernet(fernet_key.encode())._encrypt_from_parts(plaintext, fernet_time, iv).decode()
    return {
        "fernet_key": fernet_key,
        "inner": inner,
        "canonical_inner_hex": canonical(inner).hex(),
        "signature": b64encode(signature),
        "plaintext_hex": plaintext.hex(),
        "fernet_iv_hex": iv.hex(),
        "fernet_time": fernet_time,
        "ciphertext": token,
        "client_id": f"{inner['device']}-{inner['counter']}",
    }


def _numbers(fernet_key: str, alice: IdentityKeyPair, base: dict[str, Any]) -> dict[str, Any]:
    """The number rule: a whole-second time and a counter at the bound, written the same in
    every language; and signed texts that break the rule, which readers refuse."""
    at_bound = {"v": 2, **base, "counter": MAX_SAFE_INTEGER, "time": 1764254400000}
    at_bound["data"] = {"seq": 12, "size": 0}
    refused = []
    for why, field, text in (
        ("a counter above 2^53-1", "counter", "9007199254740992"),
        ("a time written as a float", "time", "1764254400000.0"),
        ("a fractional time", "time", "1764254400000.5"),
        ("an exponent", "time", "1.7642544e12"),
    ):
        inner = (
            canonical({**at_bound, field: 0}).decode().replace(f'"{field}":0', f'"{field}":{text}')
        )
        refused.append({"why": why, "inner_json": inner})
    return {"message": _message(fernet_key, alice, at_bound), "refused": refused}


def _validity(alice: str, bob: str, alice_next: str) -> dict[str, Any]:
    """The key-validity rule on one conversation: alice rotated to a new key, whose first
    epoch (3) began after message 20; bob began epoch 4 after message 30."""
    epochs = {
        1: EnvelopeFacts(1, "alice", 0, {"alice": alice, "bob": bob}),
        2: EnvelopeFacts(2, "bob", 10, {"alice": alice, "bob": bob}),
        3: EnvelopeFacts(3, "alice", 20, {"alice": alice_next, "bob": bob}),
        4: EnvelopeFacts(4, "bob", 30, {"alice": alice_next, "bob": bob}),
    }
    keys = {"alice": [alice, alice_next], "bob": [bob]}
    cases = []
    for sender, signer, seq, epoch in (
        ("alice", alice, 5, 1),
        ("alice", alice, 15, 2),
        ("alice", alice, 20, 2),
        ("alice", alice, 21, 2),
        ("alice", alice, 25, 3),
        ("alice", alice_next, 25, 3),
        ("alice", alice_next, 35, 3),
        ("alice", alice_next, 35, 4),
        ("alice", alice_next, 15, 3),
        ("alice", alice, 35, 4),
        ("bob", bob, 25, 2),
        ("bob", bob, 35, 3),
        ("bob", bob, 35, 4),
    ):
        rule = message_rule(
            epochs, sender=sender, keys=keys[sender], signer=signer, seq=seq, epoch=epoch
        )
        cases.append(
            {
                "sender": sender,
                "signer": signer,
                "seq": seq,
                "epoch": epoch,
                "rule": rule[0] if rule else "valid",
            }
        )
    return {
        "epochs": {str(n): f.to_json() | {"epoch": n} for n, f in epochs.items()},
        "keys": keys,
        "cases": cases,
    }


def _group_chain() -> dict[str, Any]:
    """A group's membership chain: six statements by alice, bob and carol, the state they
    make, its safety number, and chains refused with their reasons (docs/e2e.md §7)."""
    names = ("alice", "bob", "carol")
    keys = {n: identity(n) for n in names}
    fps = {n: keys[n].public().fingerprint() for n in names}

    def say(after: dict[str, Any] | None, by: str, op: str, **fields: Any) -> dict[str, Any]:
        n = after["n"] + 1 if after else 1
        body = {
            "v": 1, "group": after["group"] if after else "", "n": n,
            "prev": statement_hash(after) if after else "", "op": op, "by": by,
            "fingerprint": fps[by], "time": 1764254400000 + 1000 * n, **fields,
        }  # fmt: skip
        return sign_statement(keys[by].signing, body)

    everyone = {"alice": fps["alice"], "bob": fps["bob"]}
    chain = [say(None, "alice", "create", name="Family", members=everyone, admins=["alice"],
                 nonce=b64encode(bytes(range(16))))]  # fmt: skip
    chain.append(say(chain[-1], "alice", "add", member="carol", member_fingerprint=fps["carol"]))
    chain.append(say(chain[-1], "alice", "admin", member="bob"))
    chain.append(say(chain[-1], "bob", "rename", name="The Smiths 🏡"))
    chain.append(say(chain[-1], "bob", "remove", member="alice"))
    chain.append(say(chain[-1], "carol", "leave"))
    state = verify_chain(
        chain, lambda n, fp: keys[n].signing.public_key() if fps.get(n) == fp else None
    )
    bob_adds = say(chain[0], "bob", "add", member="carol", member_fingerprint=fps["carol"])
    return {
        "keys": {
            n: {
                "ed25519_seed": SEEDS[n],
                "public_keys": keys[n].public().to_json(),
                "fingerprint": fps[n],
            }
            for n in names
        },
        "statements": chain,
        "hashes": [statement_hash(s) for s in chain],
        "state": {
            "group": state.group,
            "name": state.name,
            "members": dict(state.members),
            "admins": sorted(state.admins),
            "n": state.n,
            "head": state.head,
        },
        "safety_number": group_safety_number(state),
        "refused": [
            {
                "why": "bob is no admin yet",
                "reason": "not_admin",
                "statements": [chain[0], bob_adds],
            },
            {"why": "a statement left out", "reason": "order", "statements": [chain[0], chain[2]]},
            {
                "why": "altered after signing",
                "reason": "signature",
                "statements": [chain[0], {**chain[1], "member": "mallory"}],
            },
            {
                "why": "alice goes on after her removal",
                "reason": "not_member",
                "statements": [*chain, say(chain[-1], "alice", "rename", name="mine")],
            },
        ],
        "fork": {
            "why": "a device that saw all six is served another statement 2",
            "statements": [chain[0], say(chain[0], "alice", "rename", name="no carol")],
        },
    }


def _group_envelope() -> dict[str, Any]:
    """An epoch of the group of ``group_chain.json`` as its statement 2 leaves it (alice,
    bob and carol; alice the admin): the key wrapped for the three, signed by alice."""
    chain = json.loads((HERE / "group_chain.json").read_text())
    keys = {n: identity(n) for n in ("alice", "bob", "carol")}
    fps = {n: k.public().fingerprint() for n, k in keys.items()}
    state = verify_chain(
        chain["statements"][:2],
        lambda n, fp: keys[n].signing.public_key() if fps.get(n) == fp else None,
    )
    fernet_key = b"Z3JvdXAtZXBvY2gta2V5LWZvci10ZXN0LXZlY3Rvcj0="
    envelope, _ = make_group_envelope(
        state, epoch=2, after=5, creator="alice", creator_keys=keys["alice"],
        identities={n: k.public() for n, k in keys.items()}, key=fernet_key,
    )  # fmt: skip
    return {
        "chain_statements": 2,
        "fernet_key": fernet_key.decode(),
        "envelope": envelope,
        "statement_b64": b64encode(group_envelope_statement(envelope)),
    }


def _group_message() -> dict[str, Any]:
    """bob's message in epoch 2 of ``group_envelope.json``'s group (placed at seq 6, after the
    epoch began at 5), and what readers refuse of messages sealed in the same key."""
    v = json.loads((HERE / "group_envelope.json").read_text())
    group, bob = v["envelope"]["group"], identity("bob")
    inner = {
        "v": 2, "sender": "bob", "device": "b0b0b0b0b0b0b0b0", "recipient": group,
        "conversation": group, "epoch": 2, "counter": 7, "time": 1764254400000,
        "body": "hello, group",
    }  # fmt: skip
    to_alice = {**inner, "recipient": "alice", "counter": 8}
    return {
        "seq": 6,
        "message": _message(v["fernet_key"], bob, inner),
        "refused": [
            {
                "why": "addressed to one member, not the group",
                "seq": 7,
                "message": _message(v["fernet_key"], bob, to_alice),
                "reason": "recipient",
            },
            {
                "why": "placed before its epoch began",
                "seq": 5,
                "message": _message(v["fernet_key"], bob, {**inner, "counter": 9}),
                "reason": "placed",
            },
        ],
    }


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["group_chain"]:  # only this one (the others hold random OAEP padding)
        _write("group_chain", _group_chain())
    elif sys.argv[1:] == ["group_envelope"]:
        _write("group_envelope", _group_envelope())
    elif sys.argv[1:] == ["group_message"]:
        _write("group_message", _group_message())
    else:
        main()
