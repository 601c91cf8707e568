"""Shared fixtures: a real server on an ephemeral loopback port, and connected clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted

from pychat.testing import RunningServer, start_server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak and install runs are marked slow and run only with PYCHAT_SLOW=1."""
    if os.environ.get("PYCHAT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set PYCHAT_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest_twisted.async_yield_fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A running server with its data dir under the test's tmp_path."""
    running = await start_server(tmp_path / "data")
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """New keystores and accounts made in this process use the cheapest accepted KDF (the
    default costs a few hundred milliseconds per password; its own tests keep it)."""
    from pychat.client import auth, keystore
    from pychat.crypto.kdf import minimum_params

    monkeypatch.setattr(auth, "default_params", minimum_params)
    monkeypatch.setattr(keystore, "default_params", minimum_params)
