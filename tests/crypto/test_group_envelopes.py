"""Group epochs (pychat/crypto/group_envelopes.py): an epoch's key reaches exactly the members
the chain has at the epoch's point, from an admin; a removed member gets nothing, and an
envelope for other members, another history, by a non-admin, with an altered entry or by a
key not accepted is refused."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from pychat.crypto.errors import E2EError
from pychat.crypto.group_chain import GroupState, sign_statement, statement_hash, verify_chain
from pychat.crypto.group_envelopes import (
    make_group_envelope,
    unwrap_group_envelope,
    verify_group_envelope,
)
from pychat.crypto.identity import IdentityKeyPair
from tests.key_pool import pool_key

NAMES = ("alice", "bob", "carol", "dave")
KEYS = {
    name: IdentityKeyPair(
        pool_key(i), ed25519.Ed25519PrivateKey.from_private_bytes(bytes([i + 9]) * 32)
    )
    for i, name in enumerate(NAMES)
}
FPS = {name: keys.public().fingerprint() for name, keys in KEYS.items()}


def key_of(name: str, fp: str) -> ed25519.Ed25519PublicKey | None:
    return KEYS[name].public().signing_key if FPS.get(name) == fp else None


def chain_states(*steps: tuple[str, str, dict[str, Any]]) -> list[GroupState]:
    """The group after each statement: alice creates it with bob, then ``steps``."""
    statements: list[dict[str, Any]] = []

    def say(by: str, op: str, **fields: Any) -> None:
        last = statements[-1] if statements else None
        body = {
            "v": 1, "group": last["group"] if last else "", "n": len(statements) + 1,
            "prev": statement_hash(last) if last else "", "op": op, "by": by,
            "fingerprint": FPS[by], "time": 1_800_000_000_000, **fields,
        }  # fmt: skip
        statements.append(sign_statement(KEYS[by].signing, body))

    say("alice", "create", name="Club", members={n: FPS[n] for n in ("alice", "bob")},
        admins=["alice"], nonce="AAAAAAAAAAAAAAAAAAAAAA==")  # fmt: skip
    for by, op, fields in steps:
        say(by, op, **fields)
    return [verify_chain(statements[: i + 1], key_of) for i in range(len(statements))]


IDENTITIES = {name: keys.public() for name, keys in KEYS.items()}


def test_each_member_at_the_epochs_point_and_no_one_else_gets_its_key() -> None:
    states = chain_states(
        ("alice", "add", {"member": "carol", "member_fingerprint": FPS["carol"]}),
        ("alice", "remove", {"member": "bob"}),
    )
    now = states[-1]
    envelope, key = make_group_envelope(
        now, epoch=3, after=12, creator="alice", creator_keys=KEYS["alice"], identities=IDENTITIES
    )
    facts = verify_group_envelope(envelope, state=now, creator_identity=IDENTITIES["alice"])
    assert (facts.epoch, facts.after, facts.chain) == (3, 12, 3)
    assert set(facts.fingerprints) == {"alice", "carol"}
    for member in ("alice", "carol"):
        assert unwrap_group_envelope(envelope, member, [KEYS[member]]) == key
    with pytest.raises(E2EError, match="not a member"):
        unwrap_group_envelope(envelope, "bob", [KEYS["bob"]])  # removed: nothing for bob


def test_an_envelope_for_other_members_another_history_or_a_non_admin_is_refused() -> None:
    states = chain_states(("alice", "add", {"member": "carol", "member_fingerprint": FPS["carol"]}))
    before, now = states
    stale, _ = make_group_envelope(
        before, epoch=2, after=0, creator="alice", creator_keys=KEYS["alice"], identities=IDENTITIES
    )
    with pytest.raises(E2EError, match="another history"):
        verify_group_envelope(stale, state=now, creator_identity=IDENTITIES["alice"])
    made, _ = make_group_envelope(
        now, epoch=2, after=0, creator="alice", creator_keys=KEYS["alice"], identities=IDENTITIES
    )
    fewer = {**made, "members": {k: v for k, v in made["members"].items() if k != "carol"}}
    with pytest.raises(E2EError, match="exactly the group's members"):
        verify_group_envelope(fewer, state=now, creator_identity=IDENTITIES["alice"])
    with pytest.raises(E2EError, match="may not start"):
        make_group_envelope(
            now, epoch=2, after=0, creator="bob", creator_keys=KEYS["bob"], identities=IDENTITIES
        )
    by_bob = {**made, "creator": "bob"}
    with pytest.raises(E2EError, match="may not start"):
        verify_group_envelope(by_bob, state=now, creator_identity=IDENTITIES["bob"])


def test_an_altered_envelope_or_one_by_a_key_not_accepted_is_refused() -> None:
    (now,) = chain_states()
    made, _ = make_group_envelope(
        now, epoch=1, after=0, creator="alice", creator_keys=KEYS["alice"], identities=IDENTITIES
    )
    swapped = dict(made["members"])
    swapped["bob"] = {**swapped["bob"], "wrapped": made["members"]["alice"]["wrapped"]}
    with pytest.raises(E2EError, match="signature does not verify"):
        verify_group_envelope(
            {**made, "members": swapped}, state=now, creator_identity=IDENTITIES["alice"]
        )
    with pytest.raises(E2EError, match="signature does not verify"):
        verify_group_envelope({**made, "after": 5}, state=now, creator_identity=IDENTITIES["alice"])
    with pytest.raises(E2EError, match="keys alice does not have"):
        verify_group_envelope(made, state=now, creator_identity=IDENTITIES["dave"])


def test_a_group_with_no_admin_left_lets_any_member_start_an_epoch() -> None:
    states = chain_states(("alice", "leave", {}))
    now = states[-1]
    assert not now.admins
    envelope, key = make_group_envelope(
        now, epoch=2, after=3, creator="bob", creator_keys=KEYS["bob"], identities=IDENTITIES
    )
    verify_group_envelope(envelope, state=now, creator_identity=IDENTITIES["bob"])
    assert unwrap_group_envelope(envelope, "bob", [KEYS["bob"]]) == key


def test_the_vector_holds() -> None:
    """tests/vectors/group_envelope.json: an epoch of group_chain.json's group at statement 2,
    verified against that chain, its statement bytes, and bob's copy of the key."""
    import json

    from cryptography.hazmat.primitives import serialization

    from pychat.crypto.group_envelopes import group_envelope_statement
    from pychat.crypto.identity import parse_public_identity
    from pychat.wire.encoding import b64encode
    from tests.paths import TESTS

    vectors = TESTS / "vectors"
    chain = json.loads((vectors / "group_chain.json").read_text())
    v = json.loads((vectors / "group_envelope.json").read_text())
    identities = {n: parse_public_identity(e["public_keys"]) for n, e in chain["keys"].items()}

    def vector_key_of(name: str, fp: str) -> ed25519.Ed25519PublicKey | None:
        return identities[name].signing_key if identities[name].fingerprint() == fp else None

    state = verify_chain(chain["statements"][: v["chain_statements"]], vector_key_of)
    envelope = v["envelope"]
    facts = verify_group_envelope(envelope, state=state, creator_identity=identities["alice"])
    assert (facts.epoch, facts.after, facts.chain) == (2, 5, 2)
    assert b64encode(group_envelope_statement(envelope)) == v["statement_b64"]
    bob_rsa = serialization.load_pem_private_key((vectors / "rsa-bob.pem").read_bytes(), None)
    seed = bytes.fromhex(chain["keys"]["bob"]["ed25519_seed"])
    bob = IdentityKeyPair(bob_rsa, ed25519.Ed25519PrivateKey.from_private_bytes(seed))  # type: ignore[arg-type]
    assert unwrap_group_envelope(envelope, "bob", [bob]) == v["fernet_key"].encode()


def test_the_group_message_vector_opens_and_its_refusals_hold() -> None:
    """docs/e2e.md §7, group messages: bob's message in epoch 2 opens for a member; one
    addressed to a single member, or placed before its epoch began, is refused."""
    import json

    from pychat.client.validity import message_problem
    from pychat.crypto.e2e import open_message
    from pychat.crypto.envelopes import EnvelopeFacts
    from pychat.crypto.identity import parse_public_identity
    from tests.paths import TESTS

    vectors = TESTS / "vectors"
    epoch = json.loads((vectors / "group_envelope.json").read_text())
    v = json.loads((vectors / "group_message.json").read_text())
    keys = json.loads((vectors / "group_chain.json").read_text())["keys"]
    group, key = epoch["envelope"]["group"], epoch["fernet_key"].encode()
    bob = parse_public_identity(keys["bob"]["public_keys"])
    facts = {2: EnvelopeFacts(2, "alice", epoch["envelope"]["after"], {})}

    def read(message: dict[str, Any], seq: int) -> str:
        opened = open_message(
            message["ciphertext"], key, sender="bob", sender_identity=bob,
            recipient=group, conversation=group, epoch=2,
        )  # fmt: skip
        problem = message_problem(facts, sender="bob", keys=[], signer="", seq=seq, epoch=2)
        if problem is not None:
            raise E2EError(problem)
        return opened.body

    assert read(v["message"], v["seq"]) == "hello, group"
    said = {"recipient": "addressed to alice", "placed": "placed"}  # the reference's words
    for case in v["refused"]:
        with pytest.raises(E2EError, match=said[case["reason"]]):
            read(case["message"], case["seq"])
