"""The invite repository's contract, passed by every backend alike: one code makes one
account, a failed signup gives it back, an expired or unknown code is refused, and invites
outlast a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_twisted

from pychat.store.blocking import inline_runner
from pychat.store.interfaces import InviteRepository
from pychat.store.invites import FileInvites, InviteBook

Opener = Callable[[], InviteRepository]
NOW = 1_800_000_000.0


@pytest.fixture(params=["files", "postgresql"])
def open_invites(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the backend's invites (again and again: what a restart sees)."""
    if request.param == "files":
        return lambda: FileInvites(InviteBook.load(tmp_path), inline_runner)
    from pychat.store.pg.database import Database
    from pychat.store.pg.invites import PgInvites

    database = Database.open(request.getfixturevalue("pg_url"))
    request.addfinalizer(database.close)
    return lambda: PgInvites(database)


@pytest_twisted.ensureDeferred
async def test_a_code_makes_one_account_and_a_failed_signup_gives_it_back(
    open_invites: Opener,
) -> None:
    invites = open_invites()
    code, expires = await invites.create(NOW, 2.0)
    assert expires == NOW + 7200
    held = await invites.reserve(code, NOW)
    assert held is not None
    assert await invites.reserve(code, NOW) is None  # held by the signup under way
    await invites.release(held)
    again = await open_invites().reserve(code, NOW + 1)  # back, and after a restart too
    assert again is not None
    await invites.consume(again)
    await open_invites().consume(again)
    assert await open_invites().reserve(code, NOW + 2) is None  # used


@pytest_twisted.ensureDeferred
async def test_an_expired_or_unknown_code_is_refused(open_invites: Opener) -> None:
    invites = open_invites()
    code, _ = await invites.create(NOW, 1.0)
    assert await invites.reserve(code, NOW + 3600) is None  # expired
    assert await invites.reserve("no-such-code", NOW) is None
    with pytest.raises(ValueError):
        await invites.create(NOW, 0)
