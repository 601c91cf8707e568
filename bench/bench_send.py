"""Server throughput over loopback TLS: many clients sending pipelined messages.

Prints figures; asserts nothing.  Run:
``.venv/bin/python bench/bench_send.py [--pairs 10] [--messages 500] [--window 20]``.

Each pair is two logged-in users in one conversation; one of them sends ``--messages``
opaque ciphertexts with up to ``--window`` unacknowledged at a time (the server acknowledges
each only after its fsync), while the other receives the pushes.  The figures: messages per
second through the server, acknowledgement latency percentiles, and messages per fsync.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, not an install

import argparse
import statistics
import tempfile
import time
from functools import partial
from typing import Any

from twisted.internet import defer, task

from pychat.client import auth
from pychat.client.protocol import ClientProtocol
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.store.conversations import ConversationStore
from pychat.testing import start_server

BODY = "c" * 400


def _count_messages(got: list[int], event: dict[str, Any]) -> None:
    if event.get("event") == "message":
        got.append(1)


def _took(_: object, latencies: list[float], sent: float) -> None:
    latencies.append(time.perf_counter() - sent)


async def main(reactor: Any, pairs: int, messages: int, window: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Every benchmark user signs up from 127.0.0.1: no per-address signup limit.
        server = await start_server(Path(tmp) / "data", signups_per_hour=0)
        # Every account publishes keys of its own (the server refuses another's): Ed25519
        # keys differ per user, the RSA key is made fresh for each (a few seconds in all).
        senders, receivers = [], []
        try:
            for i in range(pairs):
                users = []
                for name in (f"send{i}", f"recv{i}"):
                    proto = await server.connect(hello=False)
                    params = auth.srp_params_from_hello(await proto.request("hello", version=1))
                    keys = IdentityKeyPair.generate().public().to_json()
                    await auth.signup(proto, params, name, "pw", keys, kdf=minimum_params())
                    await auth.login(proto, params, name, "pw")
                    users.append(proto)
                sender, receiver = users
                got: list[int] = []
                receiver.on_event = partial(_count_messages, got)
                conv = (
                    await sender.request(
                        "open_conversation", peer=f"recv{i}", envelope={"epoch": 1}
                    )
                )["conversation"]
                senders.append((sender, conv))
                receivers.append(got)

            latencies: list[float] = []
            conversations = server.chat.store.conversations
            assert isinstance(conversations, ConversationStore)
            committer = conversations.committer
            batches0, synced0 = committer.batches, committer.synced

            async def run(sender: ClientProtocol, conv: str, tag: int) -> None:
                for start in range(0, messages, window):
                    wave = []
                    for j in range(start, min(messages, start + window)):
                        sent = time.perf_counter()
                        d = sender.request(
                            "send",
                            conversation=conv,
                            epoch=1,
                            ciphertext=BODY,
                            client_id=f"{tag}-{j}",
                        )
                        d.addCallback(_took, latencies, sent)
                        wave.append(d)
                    await defer.gatherResults(wave)

            began = time.perf_counter()
            await defer.gatherResults(
                [defer.ensureDeferred(run(s, c, i)) for i, (s, c) in enumerate(senders)]
            )
            elapsed = time.perf_counter() - began
            for _ in range(500):
                if all(len(g) >= messages for g in receivers):
                    break
                await task.deferLater(reactor, 0.01, lambda: None)
            total = pairs * messages
            latencies.sort()
            batches = committer.batches - batches0
            print(f"pairs={pairs} messages/pair={messages} window={window}")
            print(
                f"throughput      {total / elapsed:10.0f} messages/s ({total} in {elapsed:.2f} s)"
            )
            print(f"ack latency p50 {statistics.median(latencies) * 1000:10.2f} ms")
            print(f"ack latency p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:10.2f} ms")
            per_fsync = (committer.synced - synced0) / max(1, batches)
            print(f"group commit    {per_fsync:10.1f} messages/fsync")
            print(f"delivered       {sum(len(g) for g in receivers):10d} pushes")
        finally:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--window", type=int, default=20)
    a = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, a.pairs, a.messages, a.window)))
