"""Durability: a server killed with SIGKILL while clients send loses no acknowledged message."""

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
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions

from pychat.client import auth
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from pychat.srp import SrpParams
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope

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


async def _connect(port: int) -> tuple[ClientProtocol, SrpParams]:
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions())
    proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
    params = auth.srp_params_from_hello(await proto.request("hello", version=1))
    return proto, params


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


@pytest_twisted.ensureDeferred
async def test_sigkill_while_sending_loses_no_acknowledged_message(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data)
    processes.append(first)
    port = await first.started()
    for name in ("alice", "bob"):
        proto, params = await _connect(port)
        await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
        proto.close()

    senders = []
    for name in ("alice", "bob"):
        proto, params = await _connect(port)
        await auth.login(proto, params, name, "pw")
        senders.append((name, proto))
    conv = (await senders[0][1].request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]

    acked: dict[str, int] = {}  # client id -> acknowledged seq

    async def pump(name: str, proto: ClientProtocol) -> None:
        for batch in range(200):
            wave = []
            for i in range(10):
                cid = f"{name}-{batch}-{i}"
                d = proto.request(
                    "send", conversation=conv, epoch=1, ciphertext=f"body {cid}", client_id=cid
                )
                d.addCallback(_acked, acked, cid)
                wave.append(d)
            try:
                await defer.gatherResults(wave, consumeErrors=True)
            except (defer.FirstError, ConnectionClosed, RemoteError):
                return

    pumps = [defer.ensureDeferred(pump(name, proto)) for name, proto in senders]
    for _ in range(1000):  # kill once a good number of messages are acknowledged
        if len(acked) >= 300:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    first.kill()
    await defer.DeferredList(pumps)
    assert len(acked) >= 300

    second = ServerProcess(data)
    processes.append(second)
    port = await second.started()
    proto, params = await _connect(port)
    await auth.login(proto, params, "bob", "pw")
    stored = await history_of(proto, conv)
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    ids = [m["client_id"] for m in stored]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    by_id = {m["client_id"]: m for m in stored}
    for cid, seq in acked.items():
        assert cid in by_id, f"acknowledged message {cid} is lost"
        assert by_id[cid]["seq"] == seq and by_id[cid]["ciphertext"] == f"body {cid}"
    # A retry of an acknowledged message after the restart is recognised, not stored again.
    cid, seq = next(iter(acked.items()))
    proto2, params = await _connect(port)
    await auth.login(proto2, params, cid.split("-")[0], "pw")
    retry = await proto2.request(
        "send", conversation=conv, epoch=1, ciphertext=f"body {cid}", client_id=cid
    )
    assert retry["duplicate"] is True and retry["seq"] == seq
    proto.close()
    proto2.close()
    await second.stop()
    assert "Traceback" not in second.log.read_text()


def _acked(reply: dict[str, Any], acked: dict[str, int], cid: str) -> None:
    acked[cid] = reply["seq"]
