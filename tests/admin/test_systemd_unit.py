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
import pytest_twisted
from twisted.scripts._twistd_unix import ServerOptions

from pychat.admin.cli import main as admin
from pychat.server.tap import StartupError
from pychat.store.blocking import inline_runner
from pychat.store.server_store import ServerStore
from pychat.testing import start_server
from tests.paths import ROOT
from tests.pg_server import PASSWORD_ROLE, PgCluster

UNITS = ROOT / "contrib" / "systemd"
TWISTD = Path(sys.executable).parent / "twistd"


def _drop_in(unit: Path, credentials: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A drop-in's ``Environment=`` (with ``%d``, the credentials directory, filled in) and
    its ``LoadCredential=`` (name to source file)."""
    environment, loaded = {}, {}
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, setting = value.partition("=")
            environment[name] = setting.replace("%d", str(credentials))
        elif key == "LoadCredential":
            name, _, source = value.partition(":")
            loaded[name] = source
    return environment, loaded


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


@pytest_twisted.ensureDeferred
async def test_the_postgresql_drop_in_reaches_a_database_with_the_password_as_a_credential(
    pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "creds"
    environment, loaded = _drop_in(UNITS / "postgresql.conf", credentials)
    assert environment["PYCHAT_DATABASE"].startswith("postgresql://")
    assert ":" not in environment["PYCHAT_DATABASE"].split("//", 1)[1].split("@")[0]  # no password
    assert Path(environment["PGPASSFILE"]).parent == credentials
    assert Path(environment["PGPASSFILE"]).name in loaded  # a credential systemd hands in
    url = pg_cluster.create_password_database("dropin", "s3cret pass")
    for name, value in environment.items():
        monkeypatch.setenv(name, url if name == "PYCHAT_DATABASE" else value)
    argv = [
        a.replace("${STATE_DIRECTORY}", str(tmp_path / "state"))
        for a in _exec_start(UNITS / "pychat.service")[1:]
    ]
    argv = [a.replace("${CREDENTIALS_DIRECTORY}", str(credentials)) for a in argv]
    options = ServerOptions()
    options.parseOptions(argv)
    config = options.subOptions.config
    assert config.database == url  # the unit's command line takes the drop-in's database

    with pytest.raises(StartupError) as refused:  # no password file yet: one clear line
        await start_server(config.data_dir, database=config.database)
    assert "cannot use the database" in str(refused.value) and "password" in str(refused.value)
    assert "\n" not in str(refused.value).strip()

    credentials.mkdir()
    pgpass = Path(environment["PGPASSFILE"])
    pgpass.write_text(f"*:*:dropin:{PASSWORD_ROLE}:s3cret pass\n")
    pgpass.chmod(0o400)  # as systemd hands a credential over
    server = await start_server(config.data_dir, database=config.database)
    await server.stop()
