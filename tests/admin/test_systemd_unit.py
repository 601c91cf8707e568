"""The systemd units in contrib/systemd: systemd itself accepts them, their command lines
parse with the real ``twistd pychat``, and ``pychat-admin make-store-key`` makes the key the
unit hands the server."""

from __future__ import annotations

import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.scripts._twistd_unix import ServerOptions

from pychat.admin.cli import main as admin
from pychat.store.blocking import inline_runner
from pychat.store.server_store import ServerStore
from tests.paths import ROOT

UNITS = ROOT / "contrib" / "systemd"
TWISTD = Path(sys.executable).parent / "twistd"


def _exec_start(unit: Path) -> list[str]:
    lines = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    command = [line.split("=", 1)[1] for line in lines][-1]  # a drop-in resets, then sets
    return shlex.split(command)


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine, so the units are not verified here")
    for name in ("pychat.service", "pychat.socket"):
        text = (UNITS / name).read_text().replace("/opt/pychat/bin/twistd", str(TWISTD))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "./pychat.service", "./pychat.socket"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr  # unknown keys are only warnings there


@pytest.mark.parametrize("unit", ["pychat.service", "socket-activation.conf"])
def test_the_command_line_parses_with_twistd_pychat(tmp_path: Path, unit: str) -> None:
    argv = _exec_start(UNITS / unit)
    assert argv[0] == "/opt/pychat/bin/twistd"
    state, creds = tmp_path / "state", tmp_path / "creds"
    argv = [
        a.replace("${STATE_DIRECTORY}", str(state)).replace("${CREDENTIALS_DIRECTORY}", str(creds))
        for a in argv[1:]
    ]
    options = ServerOptions()
    options.parseOptions(argv)
    assert options["nodaemon"] and options["pidfile"] == ""
    assert options.subCommand == "pychat"
    config = options.subOptions.config
    assert config.data_dir == state
    assert config.store_key_path == creds / "store.key"  # the credential, not the data dir
    assert not config.store_key_path.is_relative_to(config.data_dir)


def test_make_store_key_writes_a_private_key_the_server_opens_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "etc" / "store.key"
    assert admin(["make-store-key", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert admin(["make-store-key", str(key)]) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert key.read_bytes() == before
    ServerStore.open(tmp_path / "data", key, inline_runner)  # the server takes it
