"""Helpers shared by several test modules."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor, task

from pychat.client.cli import _run
from pychat.client.cli_parser import build_parser
from pychat.testing import RunningServer

ROOT = Path(__file__).resolve().parent.parent


SCRIPT = Path(sys.executable).parent / "pychat"


def command() -> list[str]:
    """The installed entry point when there is one, else ``python -m pychat``."""
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "pychat"]


@dataclass
class Result:
    code: int
    out: str
    err: str


class _Collect(protocol.ProcessProtocol):
    def __init__(self, stdin: bytes | None) -> None:
        self.stdin = stdin
        self.out = bytearray()
        self.err = bytearray()
        self.done: defer.Deferred[int] = defer.Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.stdin is not None:
            self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: object) -> None:
        self.done.callback(reason.value.exitCode)  # type: ignore[attr-defined]


class Cli:
    """Runs ``pychat`` for one user with their own home and password."""

    def __init__(
        self, server: RunningServer | None, home: Path, user: str, password: str, port: int = 0
    ) -> None:
        self.port = server.port if server else port
        self.home, self.user, self.password = home, user, password
        #: First contact without a terminal needs the fingerprint given; tests give the real one.
        self.accept = server.fingerprint if server else None
        #: Test passwords are short; the strength check has its own tests.
        self.weak_ok = True

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYCHAT_")}
        env.update(PYTHONPATH=str(ROOT), PYCHAT_PASSWORD=self.password, **extra)
        return env

    def argv(self, *args: str) -> list[str]:
        extra: list[str] = []
        if self.accept and args and args[0] != "accept-server":
            extra += ["--accept-server", self.accept]
        if self.weak_ok and args and args[0] in ("signup", "passwd"):
            extra.append("--allow-weak-password")
        return [
            *command(),
            *args,
            *extra,
            "--server",
            f"127.0.0.1:{self.port}",
            "--home",
            str(self.home),
            "--user",
            self.user,
        ]

    async def run(self, *args: str, stdin: bytes | None = None, **env: str) -> Result:
        """The command, run in this process (as ``pychat`` runs it, minus the interpreter
        start); ``listen`` and ``tui`` need their own process: :meth:`run_process`."""
        if args and args[0] in ("listen", "tui"):
            return await self.run_process(*args, stdin=stdin, **env)
        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        fake_stdin = _Stdin(stdin or b"")
        try:
            os.environ.clear()
            os.environ.update(self.env(**env))
            with redirect_stdout(out), redirect_stderr(err), _replaced_stdin(fake_stdin):
                try:
                    parsed = build_parser().parse_args(self.argv(*args)[len(command()) :])
                except SystemExit as exc:  # argparse's usage errors
                    return Result(int(exc.code or 0), out.getvalue(), err.getvalue())
                code = await _run(reactor, parsed)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return Result(code, out.getvalue(), err.getvalue())

    async def run_process(self, *args: str, stdin: bytes | None = None, **env: str) -> Result:
        """The installed ``pychat`` command in a subprocess."""
        proc = _Collect(stdin)
        argv = self.argv(*args)
        reactor.spawnProcess(proc, argv[0], argv, env=self.env(**env), path=str(ROOT))
        code = await proc.done
        return Result(code, proc.out.decode(), proc.err.decode())


class _Stdin(io.TextIOWrapper):
    """Standard input for an in-process run: not a terminal, holding ``data``."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")

    def isatty(self) -> bool:
        return False


@contextmanager
def _replaced_stdin(replacement: io.TextIOBase) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = replacement
    try:
        yield
    finally:
        sys.stdin = saved


async def listening(cli: Cli) -> tuple[_Collect, Any]:
    """``cli``'s ``listen --json`` in a process of its own, once it says it listens; the
    collected output and the process transport (stop it with SIGINT)."""
    proc = _Collect(None)
    argv = cli.argv("listen", "--json")
    transport = reactor.spawnProcess(proc, argv[0], argv, env=cli.env(), path=str(ROOT))
    for _ in range(1000):
        if b"listening as" in proc.err:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    return proc, transport


async def lines_out(proc: _Collect, count: int) -> None:
    """Wait (bounded) until ``proc`` printed ``count`` lines."""
    for _ in range(1000):
        if proc.out.count(b"\n") >= count:
            return
        await task.deferLater(reactor, 0.01, lambda: None)
