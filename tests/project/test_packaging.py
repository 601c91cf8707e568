"""The package installs so that ``twistd pychat`` works without the source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.paths import ROOT


def test_wheel_ships_the_plugin_but_no_twisted_package_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pychat-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/pychat_plugin.py" in names
    # An __init__.py there would shadow Twisted's own plugin package.
    assert not any(n in names for n in ("twisted/__init__.py", "twisted/plugins/__init__.py"))
    assert "pychat/server/tap.py" in names


def test_installed_twistd_knows_pychat_outside_the_checkout(tmp_path: Path) -> None:
    # From an empty directory the checkout is not on sys.path: only the installed copy counts.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "pychat", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--listen" in out.stdout and "--data-dir" in out.stdout


@pytest.mark.slow
def test_pip_install_into_a_new_venv_then_twistd_pychat_help(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(ROOT)], check=True)
    out = subprocess.run(
        [tmp_path / "venv" / "bin" / "twistd", "pychat", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--listen" in out.stdout
    admin = subprocess.run(
        [tmp_path / "venv" / "bin" / "pychat-admin", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rotate-store-key" in admin.stdout and "backup" in admin.stdout
    assert "--signup" in out.stdout
