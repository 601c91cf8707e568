"""A peer's identity changes, and neither side is stranded: the client library's story.

An unsigned change (the operator reset bob's account and bob signed up again on a new machine)
blocks sending at once with both safety numbers, ``trust`` accepts it without marking it
verified, and both sides read and write again with no manual key rotation.  A signed rotation
(``rotate_identity``) is accepted with a notice and keeps the verified mark.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.session import PeerKeyChanged
from pychat.testing import MemoryServer
from tests.client_helpers import collect
from tests.trust_helpers import bob_reset_after, new_machine, reregister


@pytest_twisted.ensureDeferred
async def test_unsigned_change_blocks_then_trust_lets_both_sides_talk(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice = await server.signed_up(tmp_path / "alice", "alice")
    bob = await server.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "before the change")
    await bob.close()
    events = collect(alice)
    await reregister(server, "bob", "pw")
    (changed,) = [e for e in events if e.kind == "keys_changed"]
    assert changed.data["old_safety"] != changed.data["new_safety"]
    assert alice.peer_trust("bob") == (False, True)
    with pytest.raises(PeerKeyChanged):
        await alice.send("bob", "blocked")
    numbers = await alice.safety_numbers("bob")
    assert numbers.pending and numbers.pinned == changed.data["old_safety"]
    assert numbers.current == changed.data["new_safety"]

    new_bob = await new_machine(server, tmp_path / "bob-new", "bob")
    assert (await new_bob.safety_numbers("alice")).current == numbers.current
    # bob writes first: his device cannot open the old epoch, so it starts one itself
    await new_bob.send("alice", "it's me, new phone")
    await alice.trust("bob")
    assert alice.peer_trust("bob") == (False, False)  # accepted, not verified
    await alice.send("bob", "welcome back")
    seen = await new_bob.read("alice")
    assert seen[0].status == "rejected"
    assert seen[0].reason == "sent before bob's key change (unreadable on this device)"
    assert [m.text for m in seen[1:]] == ["it's me, new phone", "welcome back"]
    assert all(m.status == "verified" for m in seen[1:])
    on_alice = await alice.read("bob", since=1)
    assert [(m.text, m.status) for m in on_alice] == [
        ("it's me, new phone", "verified"),
        ("welcome back", "verified"),
    ]
    await alice.mark_verified("bob")
    assert alice.peer_trust("bob") == (True, False)
    await alice.close()
    await new_bob.close()


@pytest_twisted.ensureDeferred
async def test_trust_after_a_change_alone_lets_the_peer_read(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice = await bob_reset_after(server, tmp_path, "before")
    await alice.trust("bob")  # alice accepts first; her new epoch is wrapped for bob's new key
    await alice.send("bob", "after")
    new_bob = await new_machine(server, tmp_path / "bob-new", "bob")
    texts = [(m.text, m.status) for m in await new_bob.read("alice")]
    assert texts[1:] == [("after", "verified")] and texts[0][1] == "rejected"
    await new_bob.send("alice", "got it")
    assert [m.text for m in await alice.read("bob", since=2)] == ["got it"]
    await alice.close()
    await new_bob.close()


@pytest_twisted.ensureDeferred
async def test_signed_identity_rotation_is_a_notice_not_a_block(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice = await server.signed_up(tmp_path / "alice", "alice")
    bob = await server.signed_up(tmp_path / "bob", "bob")
    await alice.send("bob", "before the rotation")
    await alice.mark_verified("bob")
    events = collect(alice)
    old = bob.my_fingerprint()
    new = await bob.rotate_identity()
    assert new != old and bob.my_fingerprint() == new
    await alice.send("bob", "after the rotation")  # no block
    assert any(e.kind == "keys_rotated" and e.data["verified"] for e in events)
    assert alice.peer_trust("bob") == (True, False)  # still verified
    assert [m.text for m in await bob.read("alice")] == [
        "before the rotation",
        "after the rotation",
    ]
    # a new machine of bob's gets both identities from the key backup and reads everything
    other = await new_machine(server, tmp_path / "bob-2", "bob")
    assert [m.status for m in await other.read("alice")] == ["verified", "verified"]
    await alice.close()
    await bob.close()
    await other.close()


@pytest_twisted.ensureDeferred
async def test_mark_verified_is_refused_while_a_change_is_pending(
    server: MemoryServer, tmp_path: Path
) -> None:
    alice = await bob_reset_after(server, tmp_path, "hi")
    with pytest.raises(PeerKeyChanged):
        await alice.mark_verified("bob")
    assert alice.peer_trust("bob") == (False, True)
    await alice.close()


@pytest.fixture
def server(tmp_path: Path) -> MemoryServer:
    """These stories run on the in-memory server (no sockets, no polling)."""
    return MemoryServer(tmp_path / "data")
