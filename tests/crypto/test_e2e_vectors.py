"""The reference code against ``tests/vectors/*.json``, in both directions: what it builds
from the fixed inputs is byte for byte the vector, and what it opens from the vector is the
fixed input.  A change of format fails here until docs/e2e.md and the vectors change too."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pychat import srp
from pychat.client.keystore import make_key_backup, open_key_backup
from pychat.client.validity import message_rule
from pychat.crypto.canonical import canonical
from pychat.crypto.e2e import open_message, safety_number, seal_message
from pychat.crypto.envelopes import EnvelopeFacts, envelope_statement, open_envelope
from pychat.crypto.errors import E2EError
from pychat.crypto.identity import parse_public_identity, rotation_statement
from pychat.crypto.kdf import KdfParams
from pychat.wire.ids import conversation_id
from tests.paths import TESTS
from tests.vectors.generate import identity

VECTORS = TESTS / "vectors"


def vector(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return loaded


def test_identity_fingerprints_safety_number_and_conversation_id() -> None:
    v = vector("identity")
    for name in ("alice", "bob"):
        public = identity(name).public()
        assert public.to_json() == v[name]["public_keys"]
        assert public.fingerprint() == v[name]["fingerprint"]
        assert parse_public_identity(v[name]["public_keys"]).fingerprint() == v[name]["fingerprint"]
    assert safety_number(v["alice"]["fingerprint"], v["bob"]["fingerprint"]) == v["safety_number"]
    assert safety_number(v["bob"]["fingerprint"], v["alice"]["fingerprint"]) == v["safety_number"]
    assert conversation_id("bob", "alice") == v["conversation_id"]


def test_rotation_statement_and_signature() -> None:
    r = vector("identity")["rotation"]
    statement = rotation_statement(r["username"], r["key_version"], r["new_fingerprint"])
    assert statement.hex() == r["statement_hex"]
    signature = identity("alice").signing.sign(statement)
    assert base64.b64encode(signature).decode() == r["signature"]


@pytest.mark.parametrize("name", ["envelope", "envelope_v1"])
def test_envelope_builds_the_same_statement_and_signature_and_opens(name: str) -> None:
    v = vector(name)
    env = v["envelope"]
    after = env.get("after")
    statement = envelope_statement(env["conversation"], 1, "alice", env["members"], after=after)
    assert statement.hex() == v["statement_hex"]
    assert base64.b64encode(identity("alice").signing.sign(statement)).decode() == env["signature"]
    for me in ("alice", "bob"):
        opened = open_envelope(
            env,
            conversation=env["conversation"],
            me=me,
            my_keys=[identity(me)],
            members=("alice", "bob"),
            creator_identity=identity("alice").public(),
        )
        assert opened.key.decode() == v["fernet_key"] and opened.epoch == 1
        assert opened.facts.after == after


def _opened(v: dict[str, Any]) -> Any:
    return open_message(
        v["ciphertext"],
        v["fernet_key"].encode(),
        sender="alice",
        sender_identity=identity("alice").public(),
        recipient="bob",
        conversation=v["inner"]["conversation"],
        epoch=1,
    )


@pytest.mark.parametrize("name", ["message", "message_v1", "numbers"])
def test_message_builds_the_same_bytes_and_opens(name: str) -> None:
    v = vector(name)
    v = v.get("message", v)
    key = v["fernet_key"].encode()
    assert canonical(v["inner"]).hex() == v["canonical_inner_hex"]
    token = seal_message(key, identity("alice"), v["inner"])
    assert Fernet(key).decrypt(token.encode()).hex() == v["plaintext_hex"]
    rebuilt = Fernet(key)._encrypt_from_parts(
        bytes.fromhex(v["plaintext_hex"]), v["fernet_time"], bytes.fromhex(v["fernet_iv_hex"])
    )
    assert rebuilt.decode() == v["ciphertext"]
    opened = _opened(v)
    seconds = v["inner"]["time"] / (1000 if v["inner"]["v"] == 2 else 1)
    assert (opened.body, opened.counter, opened.time, opened.version) == (
        v["inner"]["body"],
        v["inner"]["counter"],
        seconds,
        v["inner"]["v"],
    )


def test_whole_number_times_are_written_without_a_fraction() -> None:
    inner = vector("message")["inner"]
    assert b'"time":1764254400000,' in canonical(inner)


@pytest.mark.parametrize("case", vector("numbers")["refused"], ids=lambda c: c["why"])
def test_signed_texts_breaking_the_number_rule_are_refused(case: dict[str, Any]) -> None:
    v = vector("numbers")["message"]
    signed = case["inner_json"].encode()
    signature = base64.b64encode(identity("alice").signing.sign(signed)).decode()
    plaintext = b'{"m":' + signed + b',"sig":"' + signature.encode() + b'"}'
    token = Fernet(v["fernet_key"].encode()).encrypt(plaintext).decode()
    with pytest.raises(E2EError):
        _opened({**v, "ciphertext": token})


@pytest.mark.parametrize("case", vector("validity")["cases"], ids=str)
def test_the_key_validity_rule_gives_each_case_its_verdict(case: dict[str, Any]) -> None:
    v = vector("validity")
    epochs = {int(n): EnvelopeFacts.from_json(int(n), f) for n, f in v["epochs"].items()}
    rule = message_rule(
        epochs,
        sender=case["sender"],
        keys=v["keys"][case["sender"]],
        signer=case["signer"],
        seq=case["seq"],
        epoch=case["epoch"],
    )
    assert (rule[0] if rule else "valid") == case["rule"]


def test_key_backup_opens_and_a_new_one_opens_the_same_way() -> None:
    v = vector("key_backup")
    (keys,) = open_key_backup(v["key_backup"], v["username"], v["password"])
    assert keys.public().fingerprint() == identity("alice").public().fingerprint()
    kdf = KdfParams.from_json(json.loads(base64.b64decode(v["key_backup"]))["kdf"])
    again = make_key_backup([identity("alice")], "alice", v["password"], kdf)
    (reopened,) = open_key_backup(again, "alice", v["password"])
    assert reopened.public() == identity("alice").public()


def test_srp_x_and_verifier() -> None:
    v = vector("srp_x")
    x = srp.password_x(
        KdfParams.from_json(v["kdf"]),
        base64.b64decode(v["salt"]),
        v["identity"].encode(),
        v["password"].encode(),
    )
    assert f"{x:x}" == v["x_hex"]
    assert f"{srp.verifier(srp.DEFAULT_PARAMS, x):x}" == v["verifier_hex"]
