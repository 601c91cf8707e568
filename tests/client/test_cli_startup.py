"""``pychat --version`` and ``--help`` (a command's too) answer with only ``argparse`` loaded:
no Twisted, no client library, nothing that costs a start (docs/client.md; the time is in
``make bench``'s client line)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import ROOT

PROBE = """
import sys
from pychat.entry import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("twisted", "cryptography", "OpenSSL")
               or m in ("pychat.client.cli", "pychat.client.session", "pychat.tui.app"))
print("CODE", code, "HEAVY", ",".join(heavy) or "-")
"""


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["send", "--help"], ["group", "--help"]]
)
def test_version_and_help_load_nothing_heavy(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    last = result.stdout.strip().splitlines()[-1]
    assert last == "CODE 0 HEAVY -", result.stdout + result.stderr
