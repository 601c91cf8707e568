"""``twistd pychat`` that cannot start says why in one line and exits non-zero (systemd then
reports or restarts it); it never prints a traceback or runs on without a listener."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pychat.tls import make_self_signed


def twistd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
    argv += ["--nodaemon", "--pidfile=", "pychat", *args]
    return subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )


def one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "pychat: cannot start:" in line]
    assert lines, output
    for word in words:
        assert word in lines[0], lines[0]


LOOPBACK = ("--listen", "ssl:0:interface=127.0.0.1")


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    one_clear_line(twistd(tmp_path, "--data-dir", "afile", *LOOPBACK), "--data-dir", "afile")


def test_a_data_dir_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    one_clear_line(twistd(tmp_path, "--data-dir", "afile/sub", *LOOPBACK), "--data-dir")


@pytest.mark.parametrize("listen", ["bogus:123", "ssl:notaport"])
def test_a_bad_listen_string(tmp_path: Path, listen: str) -> None:
    one_clear_line(twistd(tmp_path, "--data-dir", "d", "--listen", listen), "--listen", listen)


def test_a_tls_key_that_does_not_match_the_certificate(tmp_path: Path) -> None:
    cert, _ = make_self_signed()
    _, other_key = make_self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(other_key)
    result = twistd(
        tmp_path, "--data-dir", "d", *LOOPBACK, "--tls-cert", "c.pem", "--tls-key", "k.pem"
    )
    one_clear_line(result, "--tls-key", "does not match")


def test_a_store_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    from pychat.store.atrest import AtRestKey

    AtRestKey.load_or_create(tmp_path / "d" / "store.key", data_exists=False)
    (tmp_path / "d" / "store.key").chmod(0o644)
    one_clear_line(twistd(tmp_path, "--data-dir", "d", *LOOPBACK), "readable by other", "chmod 600")


def test_a_port_in_use_ends_the_process_with_a_failure(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = twistd(tmp_path, "--data-dir", "d", "--listen", f"ssl:{port}:interface=127.0.0.1")
    one_clear_line(result, "cannot listen", str(port))
