"""The vectors of docs/e2e.md checked by a client in another language: Node.js's built-in
``crypto`` (``tests/e2e_vectors.mjs``), so canonical JSON, the number rule, Fernet, RSA-OAEP,
Ed25519 and the key-validity rule are what JavaScript computes too."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.paths import TESTS

SCRIPT = TESTS / "e2e_vectors.mjs"


def test_node_checks_every_vector() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the vectors were not checked with Node.js here")
    done = subprocess.run(
        [node, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "all vectors hold" in done.stdout
