"""The README's "Trying it", pasted into a shell in a pty as a newcomer would, against a real
server: two accounts made, a message each way, then the full-screen client showing the
chat.  Only what cannot be the same here is changed: the server's port (a test's own), its
data dir, and ``pychat`` run with the tests' cheap password stretching and pooled keys
(tests/tui_main.py)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, protocol, reactor

from pychat.testing import RunningServer
from tests.paths import ROOT
from tests.tui_scenes import log_in
from tests.tui_terminal import Terminal


def readme_steps(section: str = "## Trying it") -> tuple[str, str]:
    """The pasted block (the one that signs up) and the full-screen line after it."""
    text = (ROOT / "README.md").read_text()
    part = text[text.index(section) :]
    blocks = re.findall(r"```sh\n(.*?)```", part, re.DOTALL)
    pasted = next(b for b in blocks if "signup" in b)
    last = next(b for b in blocks[blocks.index(pasted) + 1 :] if "pychat" in b)
    return pasted, last.strip()


class Shell(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = bytearray()
        self.done: defer.Deferred[int] = defer.Deferred()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason: object) -> None:
        self.done.callback(reason.value.exitCode)  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_the_readme_pasted_top_to_bottom_ends_with_two_users_who_chatted(
    server: RunningServer, tmp_path: Path
) -> None:
    pasted, tui_line = readme_steps()
    assert tui_line.endswith("pychat --user alice")  # the full-screen client comes last
    bin_dir = Path(sys.executable).parent
    admin = f"{bin_dir}/pychat-admin --data-dir {server.config.data_dir}"
    script = (
        pasted.replace("=localhost", f"=127.0.0.1:{server.port}")
        .replace(".venv/bin/pychat-admin --data-dir pychat-data", admin)
        .replace(".venv/bin/pychat ", "pychat ")
    )
    assert "localhost" not in script and "pychat-data" not in script
    prelude = (
        "set -euo pipefail\nslot=28\n"
        f'pychat() {{ slot=$((slot+2)); PYCHAT_TEST_KEY_SLOT=$slot "{sys.executable}" '
        f'"{ROOT}/tests/tui_main.py" "$@"; }}\n'
    )
    data_home = tmp_path / "xdg-data"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(data_home),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
    }
    shell = Shell()
    reactor.spawnProcess(
        shell,
        "/bin/bash",
        ["bash", "-c", prelude + script],
        env=env,
        path=str(tmp_path),
        usePTY=True,
    )
    code = await shell.done
    out = shell.out.decode(errors="replace")
    assert code == 0, out
    assert "created account alice" in out and "created account bob" in out
    assert re.search(r"#1 alice: hello bob", out), out
    assert "error" not in out.lower() and "warning" not in out.lower(), out
    term = Terminal(data_home / "pychat", f"127.0.0.1:{server.port}", "alice")
    try:
        await log_in(term, "alice trial: amber kettle", "bob: hi alice")
    finally:
        await term.quit()
