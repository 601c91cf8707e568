"""Server memory per message in flight: received, stored, not yet durable (so not yet
acknowledged or pushed), and the bound the server's limits put on it.

Prints figures; asserts nothing.  Run from a checkout (it drives the server in-process, with
the test suite's helpers for accounts): ``.venv/bin/python bench/bench_inflight.py``.

``--pairs`` pairs sign up and log in to an in-process server; then its disk work is held back,
each sender pipelines ``--each`` messages in one read, and the growth of traced Python memory
is divided by the messages; then the disk work is released and every message must be
acknowledged.  Once with 300-byte ciphertexts and once with the largest the server accepts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, not an install

import argparse
import gc
import json
import tempfile
import tracemalloc
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from pychat import limits
from pychat.server.chat import ChatServer
from pychat.server.config import ServerConfig
from pychat.store.server_store import ServerStore
from tests.chat_helpers import envelope
from tests.store_helpers import logged_in


class Holding:
    """A blocking runner that runs work at once, or holds it while :attr:`held` is set."""

    def __init__(self) -> None:
        self.held = False
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        if not self.held:
            return defer.succeed(f(*args))
        d: defer.Deferred[Any] = defer.Deferred()
        self.jobs.append((f, args, d))
        return d

    def release(self) -> None:
        self.held = False
        while self.jobs:
            f, args, d = self.jobs.pop(0)
            d.callback(f(*args))


def measure(pairs: int, each: int, size: int) -> float:
    """Bytes of traced memory per message in flight."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        runner = Holding()
        config = ServerConfig(data_dir=data, signups_per_hour=0, max_connections_per_address=10_000)
        store = ServerStore.open(data, config.store_key_path, runner)
        server = ChatServer(config, MemoryReactorClock(), store)
        senders = []
        for i in range(pairs):
            alice = logged_in(server, f"alice{i}", 41000 + 2 * i)
            logged_in(server, f"bob{i}", 41001 + 2 * i)
            reply = alice.request("open_conversation", peer=f"bob{i}", envelope=envelope())
            senders.append((alice, reply["conversation"]))
        lines = []
        for n, (_, conv) in enumerate(senders):
            lines.append(
                b"".join(
                    json.dumps(
                        {"id": 1000 + k, "op": "send", "conversation": conv, "epoch": 1,
                         "ciphertext": "x" * size, "client_id": f"m{n}-{k}"}
                    ).encode() + b"\n"
                    for k in range(each)
                )
            )  # fmt: skip
        for alice, _ in senders:
            alice.transport.clear()
        runner.held = True
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for (alice, _), line in zip(senders, lines, strict=True):
            alice.proto.dataReceived(line)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        runner.release()
        acked = sum(
            1
            for alice, _ in senders
            for reply in alice.received()
            if reply.get("ok") and "seq" in reply
        )
        if acked != pairs * each:
            raise RuntimeError(f"{acked} of {pairs * each} messages acknowledged")
        return grown / (pairs * each)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--each", type=int, default=limits.MAX_PENDING_REQUESTS)
    args = parser.parse_args()
    largest = ServerConfig(data_dir=Path(tempfile.gettempdir())).max_ciphertext
    print(f"# {args.pairs} senders, {args.each} messages in flight each")
    small = measure(args.pairs, args.each, 300)
    big = measure(args.pairs, min(args.each, 8), largest)
    print(f"300-byte ciphertext: {small / 1024:6.1f} KiB per message in flight")
    print(f"{largest}-byte ciphertext: {big / 1024:6.1f} KiB per message in flight")
    # A connection is not read past MAX_PENDING_REQUESTS requests or MAX_PENDING_BYTES bytes
    # of them not yet answered; one read (at most 64 KiB of TLS records) can bring more.
    per_read = 64 * 1024
    worst = 0.0
    for size, each_bytes in ((300, small), (largest, big)):
        line = size + 200  # the envelope around a ciphertext
        held = min(limits.MAX_PENDING_REQUESTS, -(-limits.MAX_PENDING_BYTES // line))
        worst = max(worst, (held + -(-per_read // line)) * each_bytes)
    print(
        f"bound: {limits.MAX_CONNECTIONS} connections x {worst / 1024:.0f} KiB (at most "
        f"{limits.MAX_PENDING_REQUESTS} requests or {limits.MAX_PENDING_BYTES // 1024} KiB "
        f"of them, and one 64 KiB read) = {limits.MAX_CONNECTIONS * worst / 2**20:.0f} MiB "
        f"in flight at most (plus each connection's output queue, at most "
        f"{limits.MAX_OUTPUT_QUEUE // 1024} KiB)"
    )


if __name__ == "__main__":
    main()
