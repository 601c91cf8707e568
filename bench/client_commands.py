"""The ``pychat`` commands' own work, beyond the network and the password KDF (the second part
of ``python -m bench.client_start --commands``; see there)."""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task

from bench.relay import pin, scratch_dir, start_pychat

#: The commands timed, after alice and bob signed up and alice made a group with bob.
COMMANDS = (
    ("conversations",),
    ("send", "bob", "hello from the benchmark"),
    ("read", "bob"),
    ("group", "list"),
)


class Split:
    """Where a command's time went: waiting for replies, in the KDF, and the rest."""

    def __init__(self) -> None:
        self.waiting = 0.0
        self.kdf = 0.0

    def timed_kdf(self, derive: Callable[..., bytes]) -> Callable[..., bytes]:
        def timed(*args: Any, **kwargs: Any) -> bytes:
            start = time.perf_counter()
            try:
                return derive(*args, **kwargs)
            finally:
                self.kdf += time.perf_counter() - start

        return timed

    def timed_request(self, request: Callable[..., Any]) -> Callable[..., Any]:
        def timed(proto: Any, op: str, **fields: Any) -> Any:
            start = time.perf_counter()
            d = request(proto, op, **fields)

            def done(result: Any) -> Any:
                self.waiting += time.perf_counter() - start
                return result

            return d.addBoth(done)

        return timed


def load_cost(runs: int) -> float:
    """Median seconds to start Python and import the client (a process of its own)."""
    probe = "import pychat.client.cli, pychat.client.session"
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


async def _commands(port: int, fingerprint: str, home: str, runs: int) -> None:
    from pychat import srp
    from pychat.client import cli, keystore
    from pychat.client.cli_parser import build_parser
    from pychat.client.protocol import ClientProtocol

    split = Split()
    for module in (srp, keystore):  # where the password KDF is called from
        setattr(module, "derive", split.timed_kdf(getattr(module, "derive")))  # noqa: B009, B010
    setattr(ClientProtocol, "request", split.timed_request(ClientProtocol.request))  # noqa: B010

    async def pychat(user: str, *argv: str) -> float:
        os.environ["PYCHAT_PASSWORD"] = f"{user} benchmark: quiet lantern"
        common = ["--server", f"127.0.0.1:{port}", "--home", home, "--user", user]
        args = build_parser().parse_args([*argv, *common, "--accept-server", fingerprint])
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # what the command prints: not ours
            code = await cli._run(None, args)
        if code:
            raise SystemExit(f"pychat {' '.join(argv)} failed ({code})")
        return time.perf_counter() - start

    for user in ("alice", "bob"):
        await pychat(user, "signup")
    await pychat("alice", "group", "create", "Bench", "bob")
    for argv in COMMANDS:
        rows = []
        for _ in range(runs):
            split.waiting = split.kdf = 0.0
            total = await pychat("alice", *argv)
            rows.append((total, split.waiting, split.kdf))
        total, waiting, kdf = (statistics.median(r[i] for r in rows) for i in range(3))
        own = total - waiting - kdf
        print(
            f"client    pychat {' '.join(argv[:2]):<14} {total * 1000:6.1f} ms: replies "
            f"{waiting * 1000:6.1f} ms, KDF {kdf * 1000:6.1f} ms, own work {own * 1000:6.1f} ms"
        )


def time_commands(runs: int) -> None:
    """Start a server, time the commands in this process, print a line each."""
    from pychat.tls import CERT_FILE, certificate_fingerprint

    work = scratch_dir("pychat-client-")
    server, port = start_pychat(work)
    pin(1)
    try:
        fingerprint = certificate_fingerprint((work / "data" / CERT_FILE).read_bytes())
        print(
            f"client    loading the client (a process of its own) {load_cost(runs) * 1000:6.1f} ms"
        )
        task.react(
            lambda _reactor: defer.ensureDeferred(
                _commands(port, fingerprint, str(work / "home"), runs)
            )
        )
    except SystemExit as done:
        if done.code:
            raise
    finally:
        server.terminate()
        server.wait()
