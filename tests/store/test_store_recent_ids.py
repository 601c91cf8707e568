"""The recent client ids of a conversation are those of the last N messages stored, through
sends, repeated ids and rollbacks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pychat.store.recent_ids import RecentIds

CAPACITY = 8

# 0..25: a send by alice or bob with one of 13 client ids; 26..29: a rollback of 1..4 sends
ops = st.lists(st.integers(0, 29), min_size=10, max_size=80)


@settings(max_examples=300)
@given(ops)
def test_recent_ids_match_the_last_messages_of_a_simple_model(script: list[int]) -> None:
    recent = RecentIds(CAPACITY)
    live: list[tuple[str, str, int, float]] = []  # (sender, client id, seq, time) in order
    inserted: list[tuple[str, str, int, float] | None] = []  # every remember(), None if gone
    for op in script:
        if op < 26:
            seq = len(live) + 1
            entry = ("alice" if op % 2 else "bob", f"c{op // 2}", seq, seq * 1.5)
            live.append(entry)
            inserted = [None if m is not None and m[:2] == entry[:2] else m for m in inserted]
            inserted.append(entry)
            recent.remember(*entry)
        else:
            for _ in range(min(op - 25, len(live))):
                sender, client_id, seq, _time = live.pop()
                recent.forget(sender, client_id, seq)
                inserted = [None if m is not None and m[:3] == (sender, client_id, seq) else m
                            for m in inserted]  # fmt: skip
        model = [m for m in inserted[-CAPACITY:] if m is not None]  # the last N stored
        for sender in ("alice", "bob"):
            for n in range(13):
                want = [(m[2], m[3]) for m in model if m[:2] == (sender, f"c{n}")]
                assert recent.get(sender, f"c{n}") == (want[0] if want else None)
        assert len(recent) == len(model)
