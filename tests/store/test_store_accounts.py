"""The encrypted account store: round trips, and refusing to start on damaged files."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from pychat.server.config import ServerConfig
from pychat.server.tap import StartupError, makeService
from pychat.store.blocking import inline_runner
from pychat.store.errors import StoreError, UsernameTaken
from pychat.store.server_store import ServerStore
from tests.store_helpers import account_named


def _open(data: Path) -> ServerStore:
    return ServerStore.open(data, data / "store.key", inline_runner)


async def _populated(data: Path) -> Path:
    store = _open(data)
    await store.accounts.create(account_named("alice"))
    await store.accounts.create(account_named("bob"))
    (path,) = [p for p in (data / "accounts").glob("*.json")][:1]
    return path


@pytest_twisted.ensureDeferred
async def test_accounts_survive_a_reopen(tmp_path: Path) -> None:
    await _populated(tmp_path)
    store = _open(tmp_path)
    assert store.accounts.get("alice") == account_named("alice")
    assert len(store.accounts) == 2


@pytest_twisted.ensureDeferred
async def test_files_are_private_encrypted_and_not_named_after_users(tmp_path: Path) -> None:
    await _populated(tmp_path)
    assert stat.S_IMODE((tmp_path / "store.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "accounts").stat().st_mode) == 0o700
    for path in (tmp_path / "accounts").iterdir():
        assert "alice" not in path.name and "bob" not in path.name
        raw = path.read_bytes()
        assert b"alice" not in raw and b"argon2id" not in raw
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest_twisted.ensureDeferred
async def test_duplicate_create_is_refused(tmp_path: Path) -> None:
    store = _open(tmp_path)
    await store.accounts.create(account_named())
    with pytest.raises(UsernameTaken):
        await store.accounts.create(account_named())


@pytest_twisted.ensureDeferred
async def test_update_rewrites_only_that_account(tmp_path: Path) -> None:
    store = _open(tmp_path)
    await store.accounts.create(account_named("alice"))
    await store.accounts.create(account_named("bob"))
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "accounts").iterdir()}
    alice = store.accounts.get("alice")
    assert alice is not None
    await store.accounts.update("alice", key_version=2)
    changed = [p for p, m in files.items() if p.stat().st_mtime_ns != m]
    assert len(changed) == 1
    assert _open(tmp_path).accounts.get("alice").key_version == 2  # type: ignore[union-attr]


def _damage_truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _damage_flip(path: Path) -> None:
    body = json.loads(path.read_bytes())
    sealed = bytearray(body["sealed"].encode())
    sealed[20] = ord("A") if sealed[20] != ord("A") else ord("B")
    body["sealed"] = sealed.decode()
    path.write_text(json.dumps(body))


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_flip], ids=["truncated", "corrupted"])
@pytest_twisted.ensureDeferred
async def test_damaged_account_file_stops_start_and_is_left_untouched(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    path = await _populated(tmp_path)
    damage(path)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        _open(tmp_path)
    assert str(path) in str(info.value)
    # Through the real start-up path: a clean exit with the file named, nothing written.
    config = ServerConfig(data_dir=tmp_path, listen=("ssl:0:interface=127.0.0.1",))
    with pytest.raises(StartupError) as startup:
        makeService({"config": config}, reactor=MemoryReactorClock())
    assert path.name in str(startup.value)
    assert path.read_bytes() == before


@pytest_twisted.ensureDeferred
async def test_missing_store_key_with_data_is_refused_not_regenerated(tmp_path: Path) -> None:
    await _populated(tmp_path)
    os.unlink(tmp_path / "store.key")
    with pytest.raises(StoreError, match="missing"):
        _open(tmp_path)
    assert not (tmp_path / "store.key").exists()


@pytest_twisted.ensureDeferred
async def test_a_different_store_key_does_not_open_the_data(tmp_path: Path) -> None:
    await _populated(tmp_path)
    os.unlink(tmp_path / "store.key")
    other = tmp_path / "other"
    ServerStore.open(other, tmp_path / "store.key", inline_runner)  # makes a fresh key
    with pytest.raises(StoreError, match="does not decrypt"):
        _open(tmp_path)


def test_store_key_can_live_apart_from_the_data(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "pychat.key"
    ServerStore.open(tmp_path / "data", key, inline_runner)
    assert key.exists() and not (tmp_path / "data" / "store.key").exists()


class _HeldRunner:
    """Runs each blocking call only when the test says, in any order (as a thread pool may
    finish two writes)."""

    def __init__(self) -> None:
        self.held: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        done: defer.Deferred[Any] = defer.Deferred()
        self.held.append((f, args, done))
        return done

    def finish_newest(self) -> None:
        f, args, done = self.held.pop()
        done.callback(f(*args))


@pytest_twisted.ensureDeferred
async def test_two_changes_made_at_once_to_one_account_both_hold(tmp_path: Path) -> None:
    # A login's timestamp and the operator's disable, asked for together: whichever write
    # finishes last must not undo the other (the account came back enabled).
    store = _open(tmp_path)
    await store.accounts.create(account_named("alice"))
    runner = _HeldRunner()
    store.accounts._run = runner  # type: ignore[attr-defined]  # a slow disk, out of order
    login = defer.ensureDeferred(store.accounts.update("alice", last_login=5.0))
    disable = defer.ensureDeferred(store.accounts.update("alice", disabled=True))
    while runner.held:
        runner.finish_newest()
    await login
    assert (await disable).disabled
    for accounts in (store.accounts, _open(tmp_path).accounts):
        alice = accounts.get("alice")
        assert alice is not None
        assert alice.disabled and alice.last_login == 5.0
