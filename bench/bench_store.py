"""Conversation store: append and paging cost at growing log sizes, and group commit.

Prints figures; asserts nothing.  Run:
``.venv/bin/python bench/bench_store.py [--sizes 100,10000,100000]``.

For each size it fills one conversation log to that many messages (pipelined appends, as many
clients sending at once would).  Then ``--rounds`` rounds go through all the sizes in turn
(each round starting one size further on), so a slow moment of a shared machine hits every
size alike; each figure is the median over the rounds (of all their reads, for pages):
- append: mean time per message for a burst of 200 pipelined appends (fsync included), and how
  many fsyncs they needed at most (group commit); each round's burst adds 200 messages, so
  the smallest log ends some hundreds of messages longer than it started;
- page: median time to read a page of 50 messages at the start, the middle and the end, the
  reads going round every size and position one at a time (so every figure's samples are
  spread over the same moments);
- open: time to open the store after a crash (SIGKILL: the journal is replayed, the log's tail
  after its last saved index scanned), after a clean stop (from the saved index), and with no
  index at all (every line of the log is scanned);
- memory: what the store holds per open conversation once each has many messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, not an install

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from twisted.internet import defer, task

from pychat.store.blocking import thread_runner
from pychat.store.conversations import ConversationStore
from pychat.store.server_store import ServerStore
from tests.store_helpers import appended

BODY = "x" * 400  # a typical short message's ciphertext


async def fill(store: ServerStore, conv: object, count: int, batch: int = 500) -> None:
    done = 0
    while done < count:
        n = min(batch, count - done)
        waits = []
        for i in range(n):
            durable = appended(
                store.conversations, conv, "alice", 1, BODY, f"f{done + i}", time.time()
            )
            waits.append(durable)
        await defer.gatherResults(waits)
        done += n


async def append_burst(store: ServerStore, conv: object, tag: str) -> tuple[float, int]:
    """200 pipelined appends: microseconds a message (fsync included), and the syncs taken."""
    conversations = store.conversations
    assert isinstance(conversations, ConversationStore)
    committer = conversations.committer
    batches_before = committer.batches
    start = time.perf_counter()
    waits = []
    for i in range(200):
        durable = appended(store.conversations, conv, "alice", 1, BODY, f"{tag}-{i}", time.time())
        waits.append(durable)
    await defer.gatherResults(waits)
    return (time.perf_counter() - start) / 200 * 1e6, committer.batches - batches_before


POSITIONS = ("start", "mid", "end")


async def page_times(
    logs: list[tuple[int, ServerStore, Any]], reads: int = 20
) -> dict[int, dict[str, list[float]]]:
    """Milliseconds each to read 50 messages at the start, middle and end of each log.

    The reads go round every log and position one read at a time, ``reads`` times over, so
    each figure's samples are spread over the same moments: on a machine whose speed changes
    from one second to the next, timing 20 reads of one log in a row put a whole figure in
    one state of the machine (in one run, a page from the middle of the 10² log came to 0.99
    ms and one from its end to 1.34).
    """
    firsts = {
        size: {"start": 1, "mid": conv.last_seq // 2, "end": conv.last_seq - 49}
        for size, _, conv in logs
    }
    samples: dict[int, dict[str, list[float]]] = {
        size: {label: [] for label in POSITIONS} for size, _, _ in logs
    }
    for _ in range(reads):
        for size, store, conv in logs:
            for label in POSITIONS:
                first = firsts[size][label]
                t = time.perf_counter()
                await store.conversations.page(conv, first, first + 50)
                samples[size][label].append((time.perf_counter() - t) * 1000)
    return samples


async def open_times(reactor: object, path: Path, store: ServerStore) -> list[float]:
    """Milliseconds to open the store after a crash, after a clean stop, and with no index."""
    # a crash: the files as a SIGKILL leaves them; the start replays the journal
    for c in store.logs:
        c.messages.close()
        c.control.close()
    t = time.perf_counter()
    crashed = ServerStore.open(path, path / "store.key", thread_runner(reactor))  # type: ignore[arg-type]
    times = [(time.perf_counter() - t) * 1000]
    await crashed.close()
    for drop_index in (False, True):
        if drop_index:
            for idx in path.glob("conversations/*.idx"):
                idx.unlink()
        t = time.perf_counter()
        again = ServerStore.open(path, path / "store.key", thread_runner(reactor))  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
        await again.close()
    return times


async def main(reactor: object, sizes: list[int], rounds: int) -> None:
    """Fill one log of each size, then time appends and pages in ``rounds`` rounds that go
    through every size in turn (a noisy moment of the machine hits all sizes alike, rather
    than whichever size was being timed then); each figure is the median of its rounds."""
    columns = ["messages", "append µs/msg", "fsyncs/200", "page start ms", "page mid ms"]
    columns += ["page end ms", "open crash ms", "open idx ms", "open scan ms"]
    print(f"# appends and pages timed in {rounds} rounds through the sizes; medians")
    print(" ".join(f"{c:>14}" for c in columns))
    with tempfile.TemporaryDirectory() as tmp:
        logs = []
        for size in sizes:
            path = Path(tmp) / str(size)
            store = ServerStore.open(path, path / "store.key", thread_runner(reactor))  # type: ignore[arg-type]
            conv = await store.logs.create("alice", "bob", {"epoch": 1}, time.time())
            await fill(store, conv, size)
            logs.append((size, path, store, conv))
        appends: dict[int, list[tuple[float, int]]] = {size: [] for size in sizes}
        pages: dict[int, dict[str, list[float]]] = {
            size: {label: [] for label in POSITIONS} for size in sizes
        }
        for round_no in range(rounds):
            turn = logs[round_no % len(logs) :] + logs[: round_no % len(logs)]
            read = await page_times([(size, store, conv) for size, _, store, conv in turn])
            for size, by_label in read.items():
                for label, times in by_label.items():
                    pages[size][label] += times
            for size, _, store, conv in turn:
                appends[size].append(await append_burst(store, conv, f"r{round_no}"))
        for size, path, store, _ in logs:
            opened = await open_times(reactor, path, store)
            append_us = statistics.median(us for us, _ in appends[size])
            fsyncs = max(n for _, n in appends[size])
            figures = [f"{size}", f"{append_us:.1f}", f"{fsyncs}"]
            figures += [f"{statistics.median(pages[size][k]):.2f}" for k in POSITIONS]
            figures += [f"{ms:.1f}" for ms in opened]
            print(" ".join(f"{f:>14}" for f in figures))


async def memory(reactor: object, conversations: int, messages: int) -> None:
    """Memory the store holds per open conversation once each has ``messages`` messages."""
    import tracemalloc

    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        store = ServerStore.open(Path(tmp), Path(tmp) / "store.key", thread_runner(reactor))  # type: ignore[arg-type]
        base = tracemalloc.get_traced_memory()[0]
        for i in range(conversations):
            conv = await store.logs.create(f"a{i}", f"b{i}", {"epoch": 1}, time.time())
            await fill(store, conv, messages)
        held = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        await store.close()
    print(
        f"memory per open conversation ({messages} messages each, {conversations} open): "
        f"{held / conversations / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="comma-separated log sizes")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of appends and pages through the sizes"
    )
    parser.add_argument(
        "--memory", default="100x1000", help="CONVERSATIONSxMESSAGES for the memory figure"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    convs, msgs = (int(n) for n in args.memory.split("x"))
    print(f"# {os.cpu_count()} cores, data in {tempfile.gettempdir()}")

    async def both(reactor: object) -> None:
        await main(reactor, sizes, args.rounds)
        await memory(reactor, convs, msgs)

    task.react(lambda reactor: defer.ensureDeferred(both(reactor)))
