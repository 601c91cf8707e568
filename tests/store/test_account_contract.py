"""The account repository's contract, passed by every backend alike: the flat files and
PostgreSQL run the same tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer

from pychat.store.accounts import AccountStore
from pychat.store.atrest import AtRestKey
from pychat.store.blocking import inline_runner
from pychat.store.errors import UsernameTaken
from pychat.store.interfaces import AccountRepository
from tests.store_helpers import account_named

Opener = Callable[[], AccountRepository]


@pytest.fixture(params=["files", "postgresql"])
def open_accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the backend's account repository (again and again: what a restart sees)."""
    key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
    if request.param == "files":
        return lambda: AccountStore.open(tmp_path / "accounts", key, inline_runner)
    from pychat.store.pg.accounts import PgAccountStore
    from pychat.store.pg.database import Database

    database = Database.open(request.getfixturevalue("pg_url"))
    request.addfinalizer(database.close)
    return lambda: PgAccountStore.open(database, key)


@pytest_twisted.ensureDeferred
async def test_an_account_created_is_there_after_a_restart(open_accounts: Opener) -> None:
    accounts = open_accounts()
    await accounts.create(account_named("alice"))
    await accounts.create(account_named("bob"))
    again = open_accounts()
    assert sorted(a.username for a in again) == ["alice", "bob"] and len(again) == 2
    alice = again.get("alice")
    assert alice is not None and alice == account_named("alice")
    assert again.get("carol") is None


@pytest_twisted.ensureDeferred
async def test_a_name_is_taken_once(open_accounts: Opener) -> None:
    accounts = open_accounts()
    await accounts.create(account_named("alice"))
    with pytest.raises(UsernameTaken):
        await accounts.create(account_named("alice"))
    both = [
        defer.ensureDeferred(accounts.create(account_named("bob"))),
        defer.ensureDeferred(accounts.create(account_named("bob"))),
    ]
    results = await defer.DeferredList(both, consumeErrors=True)
    assert sorted(ok for ok, _ in results) == [False, True]  # one of two at once
    assert len(open_accounts()) == 2


@pytest_twisted.ensureDeferred
async def test_changes_made_at_once_both_hold(open_accounts: Opener) -> None:
    accounts = open_accounts()
    await accounts.create(account_named("alice"))
    await defer.gatherResults(
        [
            defer.ensureDeferred(accounts.update("alice", disabled=True)),
            defer.ensureDeferred(accounts.update("alice", last_login=5.0)),
        ]
    )
    for seen in (accounts.get("alice"), open_accounts().get("alice")):
        assert seen is not None and seen.disabled and seen.last_login == 5.0


@pytest_twisted.ensureDeferred
async def test_no_such_account_is_a_key_error_and_a_deletion_lasts(open_accounts: Opener) -> None:
    accounts = open_accounts()
    with pytest.raises(KeyError):
        await accounts.update("ghost", disabled=True)
    with pytest.raises(KeyError):
        await accounts.delete("ghost")
    await accounts.create(account_named("alice"))
    await accounts.delete("alice")
    assert accounts.get("alice") is None and open_accounts().get("alice") is None


@pytest_twisted.ensureDeferred
async def test_the_database_holds_no_name_and_no_verifier_in_clear(
    pg_url: str, tmp_path: Path
) -> None:
    """What a dump of the table shows: pseudonyms and sealed bytes."""
    import psycopg

    from pychat.store.pg.accounts import PgAccountStore
    from pychat.store.pg.database import Database

    key = AtRestKey.load_or_create(
        Path(pg_url.split("host=")[1]).parent / "k.key", data_exists=False
    )
    database = Database.open(pg_url)
    try:
        account = account_named("alice-in-clear")
        await PgAccountStore.open(database, key).create(account)
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT name_key, sealed FROM accounts").fetchall()
        dump = b"".join(str(k).encode() + bytes(v) for k, v in rows)
        for secret in (account.username, account.verifier, account.salt):
            assert secret.encode() not in dump
    finally:
        database.close()
