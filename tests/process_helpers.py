"""Helpers shared by several test modules."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions

from pychat.client import auth
from pychat.client.protocol import ClientProtocol
from pychat.srp import SrpParams

#: The checkout (the servers run from it).
ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``twistd -n pychat`` in a subprocess, on an ephemeral loopback port."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.log = data_dir.parent / "server.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "--nodaemon", "--pidfile=", "pychat", "--data-dir", str(data_dir),
             "--listen", "ssl:0:interface=127.0.0.1", *extra],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir.parent,
        )  # fmt: skip
        self.port = 0

    async def started(self) -> int:
        start = self.log.stat().st_size if self.log.exists() else 0
        for _ in range(1500):
            text = (
                self.log.read_bytes()[start:].decode(errors="replace") if self.log.exists() else ""
            )
            found = re.search(r"listening on IPv4Address\(.*port=(\d+)\)", text)
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            await task.deferLater(reactor, 0.02, lambda: None)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def stop(self) -> None:
        """SIGTERM, then wait with this process's reactor running, so that its clients can
        answer the server's goodbye (blocking here would hold the server for its whole
        shutdown grace)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            for _ in range(500):
                if self.proc.poll() is not None:
                    return
                await task.deferLater(reactor, 0.02, lambda: None)
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)


async def connect_srp(port: int) -> tuple[ClientProtocol, SrpParams]:
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions())
    proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
    params = auth.srp_params_from_hello(await proto.request("hello", version=1))
    return proto, params


async def logged_in(port: int, name: str, password: str = "pw") -> ClientProtocol:
    """A raw protocol connection logged in as ``name``."""
    proto, params = await connect_srp(port)
    await auth.login(proto, params, name, password)
    return proto


async def history_of(proto: ClientProtocol, conv: str) -> list[dict[str, Any]]:
    """Every stored message of ``conv``, page by page."""
    stored: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await proto.request("history", conversation=conv, after=after, limit=100)
        stored += page["messages"]
        if not page["has_more"]:
            return stored
        after = page["messages"][-1]["seq"]
