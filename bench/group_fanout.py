"""Group fan-out benchmark: one message to a group of M members costs one append and M-1
pushes; beside it, in the same run, the same messages to one peer.

    python -m bench.group_fanout [--members 10,50] [--messages 1000] [--window 16] [--runs 3]

The server (``twistd pychat`` on its flat files, syncing every commit) runs pinned to core 0,
the clients in this process on core 1.  For each group size a group is made with real signed
statements and a real key envelope (the server checks them), then one member pipelines
``--messages`` messages of 300 bytes with at most ``--window`` unacknowledged, and every other
member counts the pushes it receives.  Printed per line: messages stored per second,
deliveries (pushes received) per second, the server's CPU per stored message and per
delivery, and this process's CPU (near 100 % means the clients, not the server, set the pace).
The ``pair`` line is the same sender and messages to one peer: the cost of a delivery with no
sharing.  Traffic stays on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.internet import defer, reactor, task

from bench.relay import (
    ENVELOPE,
    PAYLOAD,
    ROOT,
    identity,
    own_cpu,
    pin,
    pychat_user,
    scratch_dir,
    server_cpu,
    start_pychat,
)
from pychat.client.protocol import ClientProtocol
from pychat.crypto.group_chain import apply_statement, next_statement
from pychat.crypto.group_envelopes import make_group_envelope
from pychat.crypto.identity import IdentityKeyPair


def keypair(index: int) -> IdentityKeyPair:
    """The private keys behind ``bench.relay.identity(index)``."""
    identity(index)  # makes (and keeps) the RSA key when the pool has none for it
    pool = sorted((ROOT / "tests" / "keys").glob("rsa-*.pem"))
    path = (
        pool[index]
        if index < len(pool)
        else Path(tempfile.gettempdir()) / "pychat-bench-keys" / f"rsa-{index}.pem"
    )
    enc = serialization.load_pem_private_key(
        path.read_bytes(), None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(enc, rsa.RSAPrivateKey)
    return IdentityKeyPair(
        enc, ed25519.Ed25519PrivateKey.from_private_bytes(index.to_bytes(32, "big"))
    )


class Counter:
    """Pushes received, by all the members of one line."""

    def __init__(self) -> None:
        self.count = 0

    def pushed(self, event: dict[str, Any]) -> None:
        if event.get("event") == "message":
            self.count += 1


async def _members(
    port: int, tag: str, first: int, count: int, counter: Counter
) -> list[ClientProtocol]:
    users = []
    for i in range(count):
        proto = await pychat_user(port, f"{tag}{i}", first + i)
        proto.on_event = counter.pushed
        users.append(proto)
    return users


async def make_group(
    port: int, tag: str, first: int, size: int, counter: Counter
) -> tuple[ClientProtocol, str]:
    """``size`` members signed up and logged in, and their group made by the first; the
    first member's connection and the group's id."""
    users = await _members(port, tag, first, size, counter)
    keys = {f"{tag}{i}": keypair(first + i) for i in range(size)}
    creator = f"{tag}0"
    statement = next_statement(
        None, "create", by=creator, fingerprint=keys[creator].public().fingerprint(),
        time_ms=int(time.time() * 1000), signing=keys[creator].signing, name=f"bench {size}",
        members={n: k.public().fingerprint() for n, k in keys.items()}, admins=[creator],
    )  # fmt: skip
    state = apply_statement(None, statement, lambda n, fp: keys[n].public().signing_key)
    envelope, _ = make_group_envelope(
        state, epoch=1, after=0, creator=creator, creator_keys=keys[creator],
        identities={n: k.public() for n, k in keys.items()},
    )  # fmt: skip
    await users[0].request("group_create", statement=statement, envelope=envelope)
    return users[0], state.group


async def make_pair(
    port: int, tag: str, first: int, counter: Counter
) -> tuple[ClientProtocol, str]:
    sender, _ = await _members(port, tag, first, 2, counter)
    conv = await sender.request("open_conversation", peer=f"{tag}1", envelope=ENVELOPE)
    return sender, str(conv["conversation"])


async def timed(
    sender: ClientProtocol,
    conv: str,
    messages: int,
    window: int,
    expected: int,
    counter: Counter,
    server: Any,
    run: int,
) -> dict[str, float]:
    counter.count = 0
    cpu0, own0, t0 = server_cpu(server), own_cpu(), time.perf_counter()
    wave: list[defer.Deferred[Any]] = []
    for n in range(messages):
        if len(wave) >= window:
            await wave.pop(0)
        wave.append(
            sender.request(
                "send", conversation=conv, epoch=1, ciphertext=PAYLOAD, client_id=f"{run}-{n}"
            )
        )
    for d in wave:
        await d
    for _ in range(3000):  # every push in (bounded: 30 s)
        if counter.count >= expected:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    elapsed = time.perf_counter() - t0
    used = server_cpu(server) - cpu0
    return {
        "stored": messages / elapsed,
        "delivered": counter.count / elapsed,
        "complete": counter.count / expected,
        "us_per_message": used / messages * 1e6,
        "us_per_delivery": used / max(counter.count, 1) * 1e6,
        "server_cpu": used / elapsed * 100,
        "client_cpu": (own_cpu() - own0) / elapsed * 100,
    }


def show(name: str, f: dict[str, float]) -> None:
    print(
        f"{name:<11} {f['stored']:7.0f} msg/s stored  {f['delivered']:8.0f} deliveries/s  "
        f"server {f['us_per_message']:6.0f} µs/msg, {f['us_per_delivery']:5.0f} µs/delivery, "
        f"CPU {f['server_cpu']:3.0f} %  clients CPU {f['client_cpu']:3.0f} %"
        + ("" if f["complete"] >= 1 else f"  INCOMPLETE {f['complete']:.2%}"),
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    work = scratch_dir("pychat-fanout-")
    server, port = start_pychat(work, "--max-group-members", str(max(args.members)))
    try:
        lines: dict[str, tuple[ClientProtocol, str, int, Counter]] = {}
        counter = Counter()
        sender, conv = await make_pair(port, "pair", 0, counter)
        lines["pair"] = (sender, conv, 1, counter)
        first = 2
        for size in args.members:
            counter = Counter()
            sender, group = await make_group(port, f"g{size}m", first, size, counter)
            lines[f"group M={size}"] = (sender, group, size - 1, counter)
            first += size
        print(
            f"# {args.messages} messages of 300 bytes, window {args.window}, the median of "
            f"{args.runs} rounds by deliveries/s; server on core 0, clients on core 1",
            flush=True,
        )
        results: dict[str, list[dict[str, float]]] = {name: [] for name in lines}
        for round_ in range(args.runs):
            for name, (sender, conv, fan, counter) in lines.items():
                figures = await timed(
                    sender,
                    conv,
                    args.messages,
                    args.window,
                    args.messages * fan,
                    counter,
                    server,
                    round_,
                )
                results[name].append(figures)
        for name, runs in results.items():
            show(name, sorted(runs, key=lambda f: f["delivered"])[len(runs) // 2])
        pair = statistics.median(f["us_per_delivery"] for f in results["pair"])
        for name in results:
            if name != "pair":
                cost = statistics.median(f["us_per_delivery"] for f in results[name])
                ratio = f"{cost / pair:.2f}" if pair > 0 else "? (a run too short to time)"
                print(f"{name}: a delivery costs the server {ratio} of one to a peer")
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="10,50", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pin(1)
    task.react(lambda _reactor: defer.ensureDeferred(run(args)))


if __name__ == "__main__":
    main()
