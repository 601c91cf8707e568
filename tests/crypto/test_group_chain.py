"""A group's membership chain (pychat/crypto/group_chain.py): an honest history gives every
member the same state and safety number; a non-admin who adds, a removed member who goes on,
a statement out of order, altered or signed by a key not accepted, and a server that forks or
rewinds the chain are each refused with their reason."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from pychat.crypto.group_chain import (
    ChainFork,
    ChainRefused,
    GroupState,
    apply_statement,
    group_safety_number,
    sign_statement,
    statement_hash,
    verify_chain,
)

NAMES = ("alice", "bob", "carol", "dave", "erin")
KEYS = {
    name: ed25519.Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
    for i, name in enumerate(NAMES)
}


def fingerprint(name: str) -> str:
    raw = (
        KEYS[name]
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return hashlib.sha256(raw).hexdigest()


def key_of(name: str, fp: str) -> ed25519.Ed25519PublicKey | None:
    """The keys this client accepts: each user's one key."""
    return KEYS[name].public_key() if name in KEYS and fp == fingerprint(name) else None


class Chain:
    """Statements made one after another by honest (or not) members."""

    def __init__(self) -> None:
        self.statements: list[dict[str, Any]] = []

    def say(self, by: str, op: str, **fields: Any) -> dict[str, Any]:
        last = self.statements[-1] if self.statements else None
        body: dict[str, Any] = {
            "v": 1,
            "group": last["group"] if last else "",
            "n": len(self.statements) + 1,
            "prev": statement_hash(last) if last else "",
            "op": op,
            "by": by,
            "fingerprint": fingerprint(by),
            "time": 1_800_000_000_000 + len(self.statements),
            **fields,
        }
        statement = sign_statement(KEYS[by], body)
        self.statements.append(statement)
        return statement

    def create(self, by: str = "alice", *members: str, name: str = "Family") -> Chain:
        everyone = {m: fingerprint(m) for m in (by, *members)}
        self.say(
            by, "create", name=name, members=everyone, admins=[by], nonce="AAAAAAAAAAAAAAAAAAAAAA=="
        )
        return self


def state_of(statements: list[dict[str, Any]], seen: GroupState | None = None) -> GroupState:
    return verify_chain(statements, key_of, seen=seen)


def refused(statements: list[dict[str, Any]], seen: GroupState | None = None) -> str:
    with pytest.raises(ChainRefused) as info:
        state_of(statements, seen)
    return info.value.reason


def test_an_honest_history_gives_every_member_the_same_group() -> None:
    chain = Chain().create("alice", "bob")
    chain.say("alice", "add", member="carol", member_fingerprint=fingerprint("carol"))
    chain.say("alice", "admin", member="bob")
    chain.say("bob", "rename", name="The Smiths")
    chain.say("bob", "remove", member="alice")
    chain.say("carol", "leave")
    state = state_of(chain.statements)
    assert state.name == "The Smiths" and dict(state.members) == {"bob": fingerprint("bob")}
    assert state.admins == {"bob"} and state.n == 6
    assert state.head == statement_hash(chain.statements[-1])
    number = group_safety_number(state)
    assert len(number) == 71 and number == group_safety_number(state_of(list(chain.statements)))
    assert number != group_safety_number(state_of(chain.statements[:5]))


def test_only_an_admin_adds_removes_or_makes_admins_and_anyone_may_leave() -> None:
    for op, fields in (
        ("add", {"member": "dave", "member_fingerprint": fingerprint("dave")}),
        ("remove", {"member": "carol"}),
        ("admin", {"member": "bob"}),
    ):
        chain = Chain().create("alice", "bob", "carol")
        chain.say("bob", op, **fields)
        assert refused(chain.statements) == "not_admin"
    chain = Chain().create("alice", "bob")
    chain.say("bob", "leave")
    assert "bob" not in state_of(chain.statements).members


def test_a_removed_member_who_goes_on_is_refused() -> None:
    chain = Chain().create("alice", "bob")
    chain.say("alice", "remove", member="bob")
    chain.say("bob", "rename", name="ours now")
    assert refused(chain.statements) == "not_member"


def test_statements_out_of_order_altered_or_signed_by_another_key_are_refused() -> None:
    chain = Chain().create("alice", "bob", "carol")
    chain.say("alice", "rename", name="one")
    chain.say("alice", "rename", name="two")
    first, second, third = chain.statements
    assert refused([first, third]) == "order"  # one left out
    assert refused([first, third, second]) == "order"
    assert refused([second]) == "order"  # no create
    altered = {**second, "name": "three"}
    assert refused([first, altered]) == "signature"
    forged = sign_statement(KEYS["erin"], {k: v for k, v in second.items() if k != "signature"})
    assert refused([first, forged]) == "signature"  # erin's key, alice's name
    stranger = {**first, "fingerprint": "0" * 64}
    assert refused([stranger]) == "unknown_key"
    other_group = Chain().create("alice", "bob", name="Other")
    assert refused([other_group.statements[0], second]) == "group"  # another group's statement


def test_a_create_whose_id_does_not_follow_from_it_is_refused() -> None:
    chain = Chain().create("alice", "bob")
    body = {k: v for k, v in chain.statements[0].items() if k != "signature"}
    body["group"] = "f" * 32
    forged = dict(body, signature=sign_statement(KEYS["alice"], body)["signature"])
    forged["group"] = "f" * 32  # sign_statement would have put the true id back
    assert refused([forged]) in ("group", "signature")


def test_a_server_that_forks_or_rewinds_the_chain_is_caught() -> None:
    chain = Chain().create("alice", "bob", "carol")
    chain.say("alice", "remove", member="carol")
    seen = state_of(chain.statements)  # what bob's device saw
    fork = Chain()
    fork.statements = [chain.statements[0]]
    fork.say("alice", "rename", name="no removal here")  # validly signed, another history
    with pytest.raises(ChainFork) as info:
        state_of(fork.statements, seen)
    assert info.value.reason == "fork"
    with pytest.raises(ChainFork) as info:
        state_of(chain.statements[:1], seen)
    assert info.value.reason == "rewound"
    chain.say("alice", "rename", name="later")
    assert state_of(chain.statements, seen).n == 3  # a longer chain that extends it is fine


def test_a_member_is_added_once_and_the_size_limit_holds() -> None:
    chain = Chain().create("alice", "bob")
    chain.say("alice", "add", member="bob", member_fingerprint=fingerprint("bob"))
    assert refused(chain.statements) == "already_member"
    chain = Chain().create("alice", "bob")
    chain.say("alice", "add", member="carol", member_fingerprint=fingerprint("carol"))
    with pytest.raises(ChainRefused) as info:
        verify_chain(chain.statements, key_of, max_members=2)
    assert info.value.reason == "too_many"


OPS = st.sampled_from(["add", "remove", "admin", "rename", "leave"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(OPS, st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=8), st.data()
)
def test_any_change_to_any_statement_of_a_valid_chain_is_refused(
    steps: list[tuple[str, str, str]], data: st.DataObject
) -> None:
    chain = Chain().create("alice", "bob")
    state = state_of(chain.statements)
    for op, actor, member in steps:  # only the statements the rules allow
        if actor not in state.members:
            continue
        fields: dict[str, Any] = {}
        if op == "add":
            if actor not in state.admins or member in state.members:
                continue
            fields = {"member": member, "member_fingerprint": fingerprint(member)}
        elif op in ("remove", "admin"):
            if actor not in state.admins or member not in state.members or member == actor:
                continue
            fields = {"member": member}
        elif op == "rename":
            fields = {"name": f"name {len(chain.statements)}"}
        chain.say(actor, op, **fields)
        state = apply_statement(state, chain.statements[-1], key_of)
    assert state_of(chain.statements) == state
    index = data.draw(st.integers(0, len(chain.statements) - 1))
    target = chain.statements[index]
    name = data.draw(st.sampled_from(sorted(k for k in target if k != "signature")))
    changed = dict(chain.statements[index])
    changed[name] = data.draw(st.sampled_from(["x", 7, "", "alice", None]))
    if changed[name] == target[name]:
        return
    statements = [*chain.statements[:index], changed, *chain.statements[index + 1 :]]
    with pytest.raises(ChainRefused):
        state_of(statements)


def _vector_key_of(v: dict[str, Any]) -> Any:
    from pychat.crypto.identity import parse_public_identity

    def key_of(name: str, fp: str) -> ed25519.Ed25519PublicKey | None:
        entry = v["keys"].get(name)
        if entry is None or entry["fingerprint"] != fp:
            return None
        identity = parse_public_identity(entry["public_keys"])
        assert identity.fingerprint() == fp
        return ed25519.Ed25519PublicKey.from_public_bytes(identity.signing_raw)

    return key_of


def test_the_vectors_hold() -> None:
    """tests/vectors/group_chain.json: the statements, hashes, state, safety number, and the
    refused chains with their reasons (the reference code reproduces every signature)."""
    import json
    from pathlib import Path

    v = json.loads((Path(__file__).parent.parent / "vectors" / "group_chain.json").read_text())
    key_of_v = _vector_key_of(v)
    state = verify_chain(v["statements"], key_of_v)
    assert [statement_hash(s) for s in v["statements"]] == v["hashes"]
    want = v["state"]
    assert (state.group, state.name, dict(state.members), sorted(state.admins)) == (
        want["group"], want["name"], want["members"], want["admins"],
    )  # fmt: skip
    assert (state.n, state.head) == (want["n"], want["head"])
    assert group_safety_number(state) == v["safety_number"]
    for statement in v["statements"]:
        seed = bytes.fromhex(v["keys"][statement["by"]]["ed25519_seed"])
        signing = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        assert sign_statement(signing, statement) == statement
    for case in v["refused"]:
        with pytest.raises(ChainRefused) as info:
            verify_chain(case["statements"], key_of_v)
        assert info.value.reason == case["reason"], case["why"]
    with pytest.raises(ChainFork):
        verify_chain(v["fork"]["statements"], key_of_v, seen=state)
