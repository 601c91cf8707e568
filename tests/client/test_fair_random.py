"""Fair flips and rolls: the commit-reveal protocol alone (cheating initiators and peers
included), then between two live clients."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st

from pychat.client.fair_random import (
    REVEAL_TIMEOUT,
    GameBook,
    GameError,
    GameRequest,
    new_game,
    outcome,
)
from pychat.testing import MemoryServer
from pychat.wire.encoding import b64encode
from tests.client_helpers import collect, memory_pair


def _played(
    what: str = "flip", dice: str | None = None
) -> tuple[GameBook, GameBook, dict[str, Any], bytes]:
    """alice starts a game, bob answers: both books, and alice's reveal data (honest)."""
    request, nonce_a, start = new_game(what, dice, "alice", "bob")
    alice, bob = GameBook("alice", "bob"), GameBook("bob", "alice")
    for book in (alice, bob):
        book.on_message("alice", 1, 100.0, start)
    nonce_b = secrets.token_bytes(32)
    answer = {"game": request.game, "step": "answer", "nonce": b64encode(nonce_b), "commit_seq": 1}
    for book in (alice, bob):
        book.on_message("bob", 2, 110.0, answer)
    reveal = {
        "game": request.game, "step": "reveal", "nonce": b64encode(nonce_a),
        "commit_seq": 1, "answer_seq": 2,
    }  # fmt: skip
    return alice, bob, reveal, nonce_b


def test_an_honest_flip_gives_both_sides_the_same_fair_result() -> None:
    alice, bob, reveal, _ = _played()
    seen_by_bob = bob.on_message("alice", 3, 120.0, reveal)
    seen_by_alice = alice.on_message("alice", 3, 120.0, reveal)
    assert seen_by_bob == seen_by_alice
    assert seen_by_bob.startswith(("🪙 heads — fair", "🪙 tails — fair"))


def test_a_reveal_that_does_not_match_the_commitment_is_shown_as_cheating() -> None:
    _, bob, reveal, _ = _played()
    forged = {**reveal, "nonce": b64encode(secrets.token_bytes(32))}  # chosen after the answer
    assert bob.on_message("alice", 3, 120.0, forged) == (
        "✗ alice's reveal does not match the commitment: not fair"
    )


def test_an_initiator_who_never_reveals_is_named_after_the_timeout() -> None:
    _, bob, reveal, _ = _played()
    game = reveal["game"]
    assert bob.describe(game, 110.0 + REVEAL_TIMEOUT - 1) == "🪙 waiting for alice to reveal"
    assert bob.describe(game, 110.0 + REVEAL_TIMEOUT + 1) == (
        "✗ alice did not reveal: the flip does not count"
    )


def test_a_cheating_peer_cannot_answer_twice_or_for_the_other_side() -> None:
    _, bob, reveal, nonce_b = _played()
    game = reveal["game"]
    second = {"game": game, "step": "answer", "nonce": b64encode(b"\0" * 32), "commit_seq": 1}
    assert "first answer counts" in bob.on_message("bob", 4, 111.0, second)
    assert bob.games[game].nonce_b == nonce_b
    with pytest.raises(GameError, match="only bob may answer"):
        bob.on_message("alice", 5, 112.0, second)
    with pytest.raises(GameError, match="only alice may reveal"):
        bob.on_message("bob", 6, 113.0, reveal)
    with pytest.raises(GameError, match="another answer"):
        bob.on_message("alice", 7, 114.0, {**reveal, "answer_seq": 4})


def test_steps_out_of_order_or_malformed_are_refused() -> None:
    request, _, start = new_game("flip", None, "alice", "bob")
    book = GameBook("bob", "alice")
    reveal = {"game": request.game, "step": "reveal", "nonce": b64encode(b"x" * 32)}
    with pytest.raises(GameError, match="start is not known"):
        book.on_message("alice", 2, 1.0, reveal)
    book.on_message("alice", 1, 1.0, start)
    with pytest.raises(GameError, match="before the answer"):
        book.on_message("alice", 2, 1.0, {**reveal, "answer_seq": None})
    with pytest.raises(GameError, match="second start"):
        book.on_message("alice", 9, 1.0, start)
    for bad in (
        {**start, "game": "../etc"},
        {**start, "commitment": "short"},
        {**start, "what": "poker"},
        {**start, "what": "roll", "dice": "100d1"},
        {"game": request.game, "step": "answer", "nonce": "AAAA", "commit_seq": 1},
        "not an object",
    ):
        with pytest.raises(GameError):
            GameBook("bob", "alice").on_message("alice", 1, 1.0, bad)
    with pytest.raises(GameError):
        new_game("roll", "0d6", "alice", "bob")


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
       st.integers(1, 10), st.integers(2, 100))  # fmt: skip
def test_dice_always_land_in_range(nonce_a: bytes, nonce_b: bytes, count: int, sides: int) -> None:
    request = GameRequest("0" * 32, "roll", f"{count}d{sides}", "alice", "bob")
    result = outcome(request, nonce_a, nonce_b)
    values = [int(v) for v in result.split(" = ")[0].split(" + ")]
    assert len(values) == count and all(1 <= v <= sides for v in values)


def test_every_face_of_a_die_comes_up() -> None:
    request = GameRequest("0" * 32, "roll", "1d6", "alice", "bob")
    faces = {outcome(request, i.to_bytes(32, "big"), b"\0" * 32) for i in range(300)}
    assert faces == {"1", "2", "3", "4", "5", "6"}


@pytest_twisted.ensureDeferred
async def test_two_live_clients_flip_and_see_the_same_result(tmp_path: Path) -> None:
    memory = MemoryServer(tmp_path / "data")
    alice, bob = await memory_pair(memory, tmp_path)
    await alice.send("bob", "shall we settle it?")
    alice_events, bob_events = collect(alice), collect(bob)
    game = await alice.games.start("bob", "roll", "2d6")
    for _ in range(5):
        memory.advance(0)  # the answer and the reveal go out as their turns come
    (mine,) = [e.data["text"] for e in alice_events if e.kind == "game"]
    (theirs,) = [e.data["text"] for e in bob_events if e.kind == "game"]
    assert mine == theirs and mine.startswith("🎲 ") and "— fair" in mine
    assert all(e.data["game"] == game for e in alice_events if e.kind == "game")
    texts = [m.text for m in await bob.read("alice")]
    assert texts[-1] == mine  # bob's own reading of alice's reveal: from the book, not her words
