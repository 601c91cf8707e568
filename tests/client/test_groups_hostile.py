"""A hostile server against groups (docs/e2e.md §7): what it serves is rewritten on its way to
one client, and each lie is detected or refused, never silently accepted:

- adds a member no admin added: the chain does not hold (``not_admin``, ``signature``);
- drops a removal: the remover sees a rewound history, the others another group number and
  the new epoch's messages unreadable;
- forks the chain: ``GroupForked`` (test_groups_client.py);
- serves an old epoch after a removal: nothing is sent (the newest key predates the change);
- withholds one member's wrapped key: that epoch is refused for them, with the reason;
- lets a removed member keep sending: rejected, an old key speaking (test_groups_client.py);
- swaps a member's key: making the group's next epoch blocks until ``trust``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from pychat.client.errors import ClientError, PeerKeyChanged
from pychat.client.group_keys import GroupForked
from pychat.client.session import ChatClient
from pychat.crypto.group_chain import next_statement
from pychat.testing import MemoryServer
from tests.client_helpers import collect
from tests.trust_helpers import reregister

Reply = dict[str, Any]


def lie(client: ChatClient, op: str, change: Callable[[Reply], Reply]) -> None:
    """From now on, ``client`` gets ``change(reply)`` for every ``op`` it asks (the server
    lying to it alone)."""
    honest = client.request

    async def request(name: str, **fields: Any) -> Reply:
        reply = await honest(name, **fields)
        return change(copy.deepcopy(reply)) if name == op else reply

    client.request = request  # type: ignore[method-assign,assignment]


async def _club(memory: MemoryServer, tmp_path: Path, *names: str) -> tuple[str, list[ChatClient]]:
    people = [await memory.signed_up(tmp_path / name, name) for name in names]
    group = await people[0].groups.create("Club", list(names[1:]))
    for person in people[1:]:
        await person.groups.keys.load(group)
    return group, people


@pytest_twisted.ensureDeferred
async def test_a_member_no_admin_added_is_refused(memory: MemoryServer, tmp_path: Path) -> None:
    group, (alice, bob, carol) = await _club(memory, tmp_path, "alice", "bob", "carol")
    # The server puts in an add made by bob (no admin), signed by him (a non-admin who
    # tries, and a server that takes it): every other member refuses the chain.
    view = await bob.groups.keys.load(group)
    _, bob_data = bob.require_login()
    added = next_statement(
        view.state,
        "add",
        by="bob",
        fingerprint=bob_data.identity.public().fingerprint(),
        time_ms=1,
        signing=bob_data.identity.signing,
        member="mallory",
        member_fingerprint="00" * 32,
    )
    lie(alice, "epochs", lambda r: {**r, "statements": [*r["statements"], added]})
    with pytest.raises(ClientError, match="only an admin may add"):
        await alice.groups.read(group)
    # And one with a signature that is not the author's (the server's own): refused too.
    forged = {**added, "by": "alice", "fingerprint": carol_fingerprint(alice, "alice")}
    lie(carol, "epochs", lambda r: {**r, "statements": [*r["statements"], forged]})
    with pytest.raises(ClientError, match="not signed by its author"):
        await carol.groups.read(group)


def carol_fingerprint(client: ChatClient, name: str) -> str:
    """``name``'s fingerprint as ``client`` accepted it (its own, for itself)."""
    _, data = client.require_login()
    if name == data.username:
        return data.identity.public().fingerprint()
    return str(data.pins[name]["fingerprint"])


@pytest_twisted.ensureDeferred
async def test_a_dropped_removal_shows_as_a_rewind_and_another_group_number(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, bob, _) = await _club(memory, tmp_path, "alice", "bob", "carol")
    # To bob the server serves the chain and epochs as they were before the removal.
    lie(
        bob,
        "epochs",
        lambda r: {**r, "statements": r["statements"][:1], "envelopes": r["envelopes"][:1]},
    )
    await alice.groups.change(group, "remove", member="carol")
    await alice.groups.send(group, "carol is out")
    number_bob, _ = await bob.groups.verify(group)
    number_alice, _ = await alice.groups.verify(group)
    assert number_bob != number_alice  # found when they compare
    (message,) = await bob.groups.read(group)
    assert message.status == "rejected" and "no key of epoch 2" in (message.reason or "")
    # To alice, who made the removal, the same lie is a rewind.
    lie(alice, "epochs", lambda r: {**r, "statements": r["statements"][:1]})
    with pytest.raises(GroupForked, match="rewound"):
        await alice.groups.read(group)


@pytest_twisted.ensureDeferred
async def test_an_old_epoch_served_after_a_removal_sends_nothing(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, bob, _) = await _club(memory, tmp_path, "alice", "bob", "carol")
    # bob (no admin) is served the new chain but only the epoch carol still holds.
    lie(bob, "epochs", lambda r: {**r, "envelopes": r["envelopes"][:1]})
    await alice.groups.change(group, "remove", member="carol")
    with pytest.raises(ClientError, match="made before its members last changed"):
        await bob.groups.send(group, "for alice only")
    assert memory.chat.store.conversations.get(group).last_seq == 0  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_a_withheld_wrapped_key_is_refused_and_said(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, bob, _) = await _club(memory, tmp_path, "alice", "bob", "carol")

    def without_bob(reply: Reply) -> Reply:
        if len(reply["envelopes"]) > 1:
            del reply["envelopes"][1]["members"]["bob"]
        return reply

    lie(bob, "epochs", without_bob)
    await alice.groups.change(group, "remove", member="carol")  # epoch 2
    await alice.groups.send(group, "in epoch 2")
    (message,) = await bob.groups.read(group)
    assert message.status == "rejected"
    assert "epoch 2 refused" in (message.reason or "") and "exactly" in (message.reason or "")


@pytest_twisted.ensureDeferred
async def test_a_changed_member_key_blocks_until_trust(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, _, _) = await _club(memory, tmp_path, "alice", "bob", "carol")
    await reregister(memory, "bob", "pw")  # bob's keys replaced, not signed by the old ones
    with pytest.raises(PeerKeyChanged):  # alice cannot wrap the next epoch for the new key
        await alice.groups.change(group, "remove", member="carol")
    await alice.trust("bob")
    await alice.groups.change(group, "remove", member="carol")
    assert (await alice.groups.keys.load(group)).epochs == 2


@pytest_twisted.ensureDeferred
async def test_a_fork_seen_live_is_shown_and_a_message_of_another_group_or_sender_refused(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, bob, carol) = await _club(memory, tmp_path, "alice", "bob", "carol")
    other = await alice.groups.create("Other", ["bob"])
    await alice.groups.send(other, "in the other group")
    await alice.groups.send(group, "in the club")
    view = await bob.groups.view(group, fresh=True)
    (mine,) = (await bob.request("history", conversation=group))["messages"]
    (theirs,) = (await bob.request("history", conversation=other))["messages"]
    # Served as the club's: a message of another group, and alice's as carol's.
    wrong_group = await bob.groups.check(group, view, {**theirs, "conversation": group, "seq": 9})
    assert wrong_group.status == "rejected" and "decrypt" in (wrong_group.reason or "")
    as_carol = await bob.groups.check(group, view, {**mine, "sender": "carol", "seq": 10})
    assert as_carol.status == "rejected" and "verify as carol's" in (as_carol.reason or "")
    # The server forks the chain bob saw; he hears of it with the next change and message.
    heard = collect(bob)
    _, data = bob.require_login()
    data.groups[group]["hashes"][0] = "0" * 64
    await alice.groups.change(group, "rename", name="Renamed")
    await carol.groups.send(group, "after the fork")
    told = [e.data for e in heard if e.kind == "group"]
    assert told and "forked" in told[-1]["problem"]
    (message,) = [e.message for e in heard if e.kind == "message" and e.message]
    assert message.status == "rejected" and "forked" in (message.reason or "")


@pytest_twisted.ensureDeferred
async def test_a_forked_group_stays_in_the_list_with_its_problem_and_a_gone_member_is_said(
    memory: MemoryServer, tmp_path: Path
) -> None:
    group, (alice, bob, _) = await _club(memory, tmp_path, "alice", "bob", "carol")
    other = await alice.groups.create("Other", ["bob"])
    _, data = bob.require_login()
    data.groups[group]["hashes"] = ["0" * 64]  # what bob saw is not what is served
    await alice.groups.change(group, "rename", name="Renamed")  # the list must load again
    listed = {g["conversation"]: g for g in await bob.groups.summaries()}
    assert "forked" in listed[group]["problem"] and "problem" not in listed[other]
    await memory.signed_up(tmp_path / "dave", "dave")
    await memory.chat.store.delete_account("carol")
    with pytest.raises(ClientError, match="carol has no account any more"):
        await alice.groups.add(group, "dave")
