"""An independent reader of pyChat's end-to-end format, written from docs/e2e.md alone.

Nothing here comes from ``pychat.crypto`` or the keystore: only the standard library and the
primitives of ``cryptography`` (RSA-OAEP, Ed25519, AES-CBC, HMAC, AES-GCM, Argon2id, hashes),
composed as the page says.  It reads the vectors the reference code wrote, and a message the
reference client sends through a real server; if the code and the page drift apart, this fails.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from tests.paths import TESTS

VECTORS = TESTS / "vectors"


def vector(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return loaded


def b64(text: str) -> bytes:
    """Standard base64 with padding, strictly."""
    return base64.b64decode(text, validate=True)


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sep(*parts: str | bytes) -> bytes:
    return b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)


def fingerprint(public_keys: dict[str, str]) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"pychat-identity-v1")
    for part in (b64(public_keys["encryption"]), b64(public_keys["signing"])):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.finalize().hex()


def signing_key(public_keys: dict[str, str]) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(b64(public_keys["signing"]))


def safety(fp_a: str, fp_b: str) -> str:
    low, high = sorted((fp_a, fp_b))
    digest = hashes.Hash(hashes.SHA512())
    digest.update(sep("pychat-safety-v1", low, high))
    raw = digest.finalize()
    return " ".join(
        f"{int.from_bytes(raw[5 * i : 5 * i + 5], 'big') % 100000:05d}" for i in range(12)
    )


def conversation(a: str, b: str) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(sep("pychat-conversation-v1", *sorted((a, b))))
    return digest.finalize().hex()[:32]


def oaep() -> asym_padding.OAEP:
    return asym_padding.OAEP(
        mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )


def unwrap(envelope: dict[str, Any], me: str, private: rsa.RSAPrivateKey) -> tuple[bytes, bytes]:
    """The envelope's statement (what its creator signed) and my copy of the epoch key."""
    head = [f"pychat-envelope-v{envelope['v']}", envelope["conversation"], str(envelope["epoch"])]
    head.append(envelope["creator"])
    if envelope["v"] == 2:
        head.append(str(envelope["after"]))
    statement = sep(
        *head,
        *(
            part
            for name in sorted(envelope["members"])
            for part in (
                name,
                envelope["members"][name]["fingerprint"],
                envelope["members"][name]["wrapped"],
            )
        ),
    )
    key = private.decrypt(b64(envelope["members"][me]["wrapped"]), oaep())
    assert len(key) == 44 and len(base64.urlsafe_b64decode(key)) == 32
    return statement, key


def fernet_open(key_text: bytes, token: str) -> bytes:
    """Fernet by its spec: 0x80 | time | IV | AES-128-CBC | HMAC-SHA256."""
    key = base64.urlsafe_b64decode(key_text)
    raw = base64.urlsafe_b64decode(token)
    assert raw[0] == 0x80
    body, tag = raw[:-32], raw[-32:]
    mac = crypto_hmac.HMAC(key[:16], hashes.SHA256())
    mac.update(body)
    assert hmac.compare_digest(mac.finalize(), tag)
    iv, ciphertext = body[9:25], body[25:]
    decryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _no_float(text: str) -> Any:
    raise ValueError(f"the number rule: {text} is not an integer")


def _integers_in_range(obj: Any) -> None:
    """The number rule: every number an integer within 2^53-1."""
    if isinstance(obj, dict):
        for value in obj.values():
            _integers_in_range(value)
    elif isinstance(obj, list):
        for value in obj:
            _integers_in_range(value)
    elif isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > 2**53 - 1:
        raise ValueError(f"the number rule: {obj} is beyond 2^53-1")


def read_message(
    token: str, epoch_key: bytes, sender_keys: dict[str, str], expect: dict[str, Any]
) -> dict[str, Any]:
    plain = fernet_open(epoch_key, token)
    outer = json.loads(plain)
    inner = outer["m"]
    if inner["v"] == 2:  # no fractions or exponents, and no integer beyond 2^53-1
        _integers_in_range(json.loads(plain, parse_float=_no_float))
    signing_key(sender_keys).verify(b64(outer["sig"]), canonical(inner))
    for field, value in expect.items():
        assert inner[field] == value, field
    return dict(inner)


def argon2id(kdf: dict[str, Any], secret: bytes, salt: bytes) -> bytes:
    assert kdf["name"] == "argon2id"
    return Argon2id(
        salt=salt,
        length=32,
        iterations=kdf["time_cost"],
        lanes=kdf["parallelism"],
        memory_cost=kdf["memory_kib"],
    ).derive(secret)


def private_rsa(name: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((VECTORS / f"rsa-{name}.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


# -- the vectors ---------------------------------------------------------------------------------


def test_fingerprints_safety_number_conversation_id_and_rotation() -> None:
    v = vector("identity")
    for name in ("alice", "bob"):
        assert fingerprint(v[name]["public_keys"]) == v[name]["fingerprint"]
    assert safety(v["alice"]["fingerprint"], v["bob"]["fingerprint"]) == v["safety_number"]
    assert conversation("bob", "alice") == v["conversation_id"]
    r = v["rotation"]
    assert fingerprint(r["new_public_keys"]) == r["new_fingerprint"]
    statement = sep("pychat-key-rotation-v1", "alice", str(r["key_version"]), r["new_fingerprint"])
    assert statement.hex() == r["statement_hex"]
    signing_key(v["alice"]["public_keys"]).verify(b64(r["signature"]), statement)


@pytest.mark.parametrize("name", ["envelope", "envelope_v1"])
def test_envelope_verifies_and_unwraps_for_bob(name: str) -> None:
    v, ids = vector(name), vector("identity")
    envelope = v["envelope"]
    statement, key = unwrap(envelope, "bob", private_rsa("bob"))
    assert statement.hex() == v["statement_hex"]
    assert envelope["members"]["alice"]["fingerprint"] == ids["alice"]["fingerprint"]
    signing_key(ids["alice"]["public_keys"]).verify(b64(envelope["signature"]), statement)
    assert key.decode() == v["fernet_key"]


@pytest.mark.parametrize("name", ["message", "message_v1", "numbers"])
def test_message_decrypts_and_its_signature_verifies(name: str) -> None:
    v, ids = vector(name), vector("identity")
    v = v.get("message", v)
    inner = read_message(
        v["ciphertext"],
        v["fernet_key"].encode(),
        ids["alice"]["public_keys"],
        {"sender": "alice", "recipient": "bob", "conversation": ids["conversation_id"], "epoch": 1},
    )
    assert inner == v["inner"]
    assert canonical(inner).hex() == v["canonical_inner_hex"]
    assert f"{inner['device']}-{inner['counter']}" == v["client_id"]


@pytest.mark.parametrize("case", vector("numbers")["refused"], ids=lambda c: c["why"])
def test_the_number_rule_refuses_what_other_languages_write_differently(
    case: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="the number rule"):
        inner = json.loads(case["inner_json"], parse_float=_no_float)
        _integers_in_range(inner)


def broken_rule(
    epochs: dict[str, Any], keys: list[str], sender: str, signer: str, seq: int, epoch: int
) -> str:
    """docs/e2e.md §3, "Key validity", rules 1-3 in order."""
    mine = epochs[str(epoch)]
    if mine["after"] is not None and seq <= mine["after"]:
        return "placed"
    for number, facts in epochs.items():
        if int(number) > epoch and facts["creator"] == sender and facts["after"] is not None:
            if facts["after"] < seq:
                return "newest_epoch"
    later = keys[keys.index(signer) + 1 :]
    places = [
        f["after"]
        for f in epochs.values()
        if f["after"] is not None and f["members"][sender] in later
    ]
    if places and seq > min(places):
        return "retired_key"
    return "valid"


def test_the_key_validity_rule_as_the_page_says() -> None:
    v = vector("validity")
    for case in v["cases"]:
        sender = case["sender"]
        found = broken_rule(
            v["epochs"], v["keys"][sender], sender, case["signer"], case["seq"], case["epoch"]
        )
        assert found == case["rule"], case


def test_key_backup_opens_to_alices_keys() -> None:
    v, ids = vector("key_backup"), vector("identity")
    body = json.loads(b64(v["key_backup"]))
    assert (body["format"], body["v"]) == ("pychat-key-backup", 1)
    context = sep("pychat-key-backup", v["username"])
    key = argon2id(body["kdf"], sep(context, v["password"]), b64(body["salt"]))
    assert key.hex() == v["key_hex"]
    sealed = b64(body["sealed"])
    plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], context)
    (entry,) = json.loads(plain)
    enc = serialization.load_der_private_key(b64(entry["encryption"]), None)
    sig = serialization.load_der_private_key(b64(entry["signing"]), None)
    assert isinstance(enc, rsa.RSAPrivateKey) and isinstance(sig, ed25519.Ed25519PrivateKey)
    public = {
        "encryption": base64.b64encode(
            enc.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode(),
        "signing": base64.b64encode(
            sig.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        ).decode(),
    }
    assert fingerprint(public) == ids["alice"]["fingerprint"]


def test_srp_x_from_argon2id() -> None:
    v = vector("srp_x")
    raw = argon2id(v["kdf"], f"{v['identity']}:{v['password']}".encode(), b64(v["salt"]))
    assert f"{int.from_bytes(raw, 'big'):x}" == v["x_hex"]


def test_strict_base64_is_what_the_page_says() -> None:
    try:
        b64("not base64!")
    except binascii.Error:
        return
    raise AssertionError("lenient base64")


# -- live: a message the reference client sends through a real server ------------------------------


@pytest_twisted.ensureDeferred
async def test_reads_a_message_the_reference_client_sent(server: Any, tmp_path: Path) -> None:
    from tests.client_helpers import signed_up

    alice = await signed_up(server, tmp_path / "alice", "alice")
    bob = await signed_up(server, tmp_path / "bob", "bob")
    await alice.send("bob", "from the reference client: héllo 👋\nsecond line")
    conv = conversation("alice", "bob")
    # what bob's device holds: his RSA private key; what the server gives: the rest
    assert bob.data is not None
    bob_rsa = bob.data.identity.encryption
    epochs = await bob.request("epochs", conversation=conv)
    (envelope,) = epochs["envelopes"]
    assert envelope["v"] == 2 and envelope["after"] == 0 and epochs["after"] == 1
    alice_keys = (await bob.request("get_keys", username="alice"))["public_keys"]
    statement, key = unwrap(envelope, "bob", bob_rsa)
    signing_key(alice_keys).verify(b64(envelope["signature"]), statement)
    (stored,) = (await bob.request("history", conversation=conv, after=0, limit=10))["messages"]
    inner = read_message(
        stored["ciphertext"],
        key,
        alice_keys,
        {"sender": stored["sender"], "recipient": "bob", "conversation": conv, "epoch": 1},
    )
    assert inner["body"] == "from the reference client: héllo 👋\nsecond line"
    assert inner["v"] == 2 and isinstance(inner["time"], int)
    assert abs(inner["time"] / 1000 - stored["time"]) < 60  # milliseconds, the server's clock
    await alice.close()
    await bob.close()


class Refused(Exception):
    """A statement the page's rules refuse (with the reason the page names)."""


def read_group_chain(chain: list[dict[str, Any]], keys: dict[str, Any]) -> dict[str, Any]:
    """§7 as the page says: each statement checked in order; the group it leaves."""
    group: dict[str, Any] = {}
    for s in chain:
        by, op = s["by"], s["op"]
        entry = keys.get(by)
        if entry is None or fingerprint(entry["public_keys"]) != s["fingerprint"]:
            raise Refused("unknown_key")
        unsigned = {k: v for k, v in s.items() if k != "signature"}
        try:
            signing_key(entry["public_keys"]).verify(
                b64(s["signature"]), b"pychat-group-v1\0" + canonical(unsigned)
            )
        except Exception:
            raise Refused("signature") from None
        digest = hashes.Hash(hashes.SHA256())
        if op == "create":
            body = {k: v for k, v in unsigned.items() if k != "group"}
            digest.update(b"pychat-group-id-v1\0" + canonical(body))
            if s["n"] != 1 or s["prev"] != "" or s["group"] != digest.finalize().hex()[:32]:
                raise Refused("group")
            if by not in s["admins"] or s["members"].get(by) != s["fingerprint"]:
                raise Refused("not_admin")
            group = {"group": s["group"], "name": s["name"], "members": dict(s["members"]),
                     "admins": set(s["admins"]), "n": 1}  # fmt: skip
        else:
            if s["group"] != group.get("group"):
                raise Refused("group")
            if s["n"] != group["n"] + 1 or s["prev"] != group["head"]:
                raise Refused("order")
            if by not in group["members"]:
                raise Refused("not_member")
            if op in ("add", "remove", "admin") and by not in group["admins"]:
                raise Refused("not_admin")
            if op == "add":
                group["members"][s["member"]] = s["member_fingerprint"]
            elif op == "remove":
                del group["members"][s["member"]]
                group["admins"].discard(s["member"])
            elif op == "admin":
                group["admins"].add(s["member"])
            elif op == "leave":
                del group["members"][by]
                group["admins"].discard(by)
            elif op == "rename":
                group["name"] = s["name"]
            group["n"] += 1
        whole = hashes.Hash(hashes.SHA256())
        whole.update(canonical(s))
        group["head"] = whole.finalize().hex()
        group.setdefault("hashes", []).append(group["head"])
    return group


def test_the_group_chain_as_the_page_says() -> None:
    v = vector("group_chain")
    group = read_group_chain(v["statements"], v["keys"])
    assert group["hashes"] == v["hashes"]
    want = v["state"]
    assert (group["group"], group["name"], group["members"], sorted(group["admins"])) == (
        want["group"], want["name"], want["members"], want["admins"],
    )  # fmt: skip
    assert (group["n"], group["head"]) == (want["n"], want["head"])
    digest = hashes.Hash(hashes.SHA512())
    digest.update(sep("pychat-group-safety-v1", group["group"], str(group["n"]), group["head"]))
    raw = digest.finalize()
    number = " ".join(
        f"{int.from_bytes(raw[5 * i : 5 * i + 5], 'big') % 100000:05d}" for i in range(12)
    )
    assert number == v["safety_number"]
    for case in v["refused"]:
        with pytest.raises(Refused) as info:
            read_group_chain(case["statements"], v["keys"])
        assert str(info.value) == case["reason"], case["why"]
    forked = read_group_chain(v["fork"]["statements"], v["keys"])
    assert forked["hashes"][1] != group["hashes"][1]  # another statement 2: a fork


def test_a_group_epoch_as_the_page_says() -> None:
    chain, v = vector("group_chain"), vector("group_envelope")
    group = read_group_chain(chain["statements"][: v["chain_statements"]], chain["keys"])
    e = v["envelope"]
    assert (e["group"], e["chain"], e["head"]) == (group["group"], group["n"], group["head"])
    assert set(e["members"]) == set(group["members"]) and e["creator"] in group["admins"]
    statement = sep(
        "pychat-group-envelope-v1", e["group"], str(e["epoch"]), e["creator"], str(e["after"]),
        str(e["chain"]), e["head"],
        *[part for name in sorted(e["members"])
          for part in (name, e["members"][name]["fingerprint"], e["members"][name]["wrapped"])],
    )  # fmt: skip
    assert base64.b64encode(statement).decode() == v["statement_b64"]
    creator = chain["keys"][e["creator"]]["public_keys"]
    assert e["members"][e["creator"]]["fingerprint"] == fingerprint(creator)
    signing_key(creator).verify(b64(e["signature"]), statement)
    wrapped = b64(e["members"]["bob"]["wrapped"])
    assert private_rsa("bob").decrypt(wrapped, oaep()) == v["fernet_key"].encode()


def test_a_group_message_as_the_page_says() -> None:
    """docs/e2e.md §7, group messages: sealed in the epoch's key, addressed to the group
    (``recipient`` and ``conversation`` its id), placed after the epoch began."""
    chain, epoch, v = vector("group_chain"), vector("group_envelope"), vector("group_message")
    group, after = epoch["envelope"]["group"], epoch["envelope"]["after"]
    bob = chain["keys"]["bob"]["public_keys"]
    expect = {"sender": "bob", "recipient": group, "conversation": group, "epoch": 2}

    def accepted(message: dict[str, Any], seq: int) -> str:
        inner = read_message(message["ciphertext"], epoch["fernet_key"].encode(), bob, {})
        for field, value in expect.items():
            if inner[field] != value:
                return field
        return "placed" if seq <= after else "ok"

    assert accepted(v["message"], v["seq"]) == "ok"
    assert (
        read_message(v["message"]["ciphertext"], epoch["fernet_key"].encode(), bob, expect)["body"]
        == "hello, group"
    )
    for case in v["refused"]:
        assert accepted(case["message"], case["seq"]) == case["reason"], case["why"]
