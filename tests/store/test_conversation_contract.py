"""The conversation repository's contract, passed by every backend alike: the flat files and
PostgreSQL run the same tests (numbering, order, durability, epochs and their places, read
markers, deletion, and what a restart finds)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.python.failure import Failure

from pychat.store.atrest import AtRestKey
from pychat.store.blocking import inline_runner
from pychat.store.conversation import EpochRefused
from pychat.store.conversations import ConversationStore
from pychat.store.interfaces import ConversationRepository
from tests.chat_helpers import envelope
from tests.store_helpers import appended


@dataclass
class Backend:
    """Opens the backend's conversations; ``restart`` closes them and opens them again."""

    open: Callable[[], ConversationRepository]
    repo: ConversationRepository

    async def restart(self) -> ConversationRepository:
        await self.repo.close()
        self.repo = self.open()
        return self.repo


@pytest.fixture(params=["files", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
    opener: Callable[[], Any]
    if request.param == "files":

        def opener() -> ConversationRepository:
            return ConversationStore.open(tmp_path / "conversations", key, inline_runner)

    else:
        from pychat.store.pg.conversations import PgConversationStore
        from pychat.store.pg.database import Database

        database = Database.open(request.getfixturevalue("pg_url"))
        request.addfinalizer(database.close)

        def opener() -> ConversationRepository:
            return PgConversationStore.open(database, key)

    return Backend(opener, opener())


def _placed(epoch: int, after: int) -> dict[str, Any]:
    return {**envelope(epoch), "v": 2, "after": after}


async def _send_all(repo: ConversationRepository, conv: Any, texts: list[str]) -> list[Any]:
    waits: list[Awaitable[Any]] = [
        appended(repo, conv, "alice", 1, text, f"id-{text}", 2.0 + i)
        for i, text in enumerate(texts)
    ]
    return list(await defer.gatherResults(waits))  # type: ignore[arg-type]


@pytest_twisted.ensureDeferred
async def test_a_conversation_is_found_by_id_pair_and_member_after_a_restart(
    backend: Backend,
) -> None:
    conv = await backend.repo.create("bob", "alice", envelope(1), 1.0)
    assert conv.members == ("alice", "bob") and conv.epochs == [envelope(1)]
    repo = await backend.restart()
    again = repo.get(conv.id)
    assert again is not None and repo.find("bob", "alice") is again
    assert [c.id for c in repo.for_user("alice")] == [conv.id] and repo.for_user("carol") == []
    assert again.epochs == [envelope(1)] and again.last_seq == 0


@pytest_twisted.ensureDeferred
async def test_a_pair_asked_twice_at_once_gets_one_conversation(backend: Backend) -> None:
    results = await defer.DeferredList(
        [
            defer.ensureDeferred(backend.repo.create("alice", "bob", envelope(1), 1.0)),
            defer.ensureDeferred(backend.repo.create("bob", "alice", envelope(1), 1.0)),
        ],
        consumeErrors=True,
    )
    (conv,) = list(backend.repo)
    for ok, result in results:  # the same conversation, or told it exists already
        assert result is conv if ok else cast(Failure, result).check(ValueError)


@pytest_twisted.ensureDeferred
async def test_messages_are_numbered_in_the_order_sent_without_gaps(backend: Backend) -> None:
    conv = await backend.repo.create("alice", "bob", envelope(1), 1.0)
    texts = [f"m{i}" for i in range(12)]
    records = await _send_all(backend.repo, conv, texts)  # pipelined: none waited for
    assert [r["seq"] for r in records] == list(range(1, 13))
    assert [r["ciphertext"] for r in records] == texts
    assert conv.last_seq == conv.position == 12
    page = await backend.repo.page(conv, 4, 8)
    assert [(r["seq"], r["ciphertext"]) for r in page] == [(s, f"m{s - 1}") for s in range(4, 8)]
    repo = await backend.restart()
    again = repo.get(conv.id)
    assert again is not None and again.last_seq == 12
    assert [r["ciphertext"] for r in await repo.page(again, 1, 13)] == texts
    assert repo.duplicate(again, "alice", "id-m3") == {"seq": 4, "time": 5.0}
    more = await appended(repo, again, "bob", 1, "after the restart", "b1", 9.0)
    assert more["seq"] == 13


@pytest_twisted.ensureDeferred
async def test_an_epoch_is_the_next_one_placed_after_the_last_message(backend: Backend) -> None:
    conv = await backend.repo.create("alice", "bob", envelope(1), 1.0)
    await _send_all(backend.repo, conv, ["one", "two"])
    with pytest.raises(EpochRefused) as info:
        await backend.repo.add_epoch(conv, _placed(2, 1), 3.0)
    assert info.value.after == 2
    with pytest.raises(EpochRefused):
        await backend.repo.add_epoch(conv, _placed(3, 2), 3.0)
    await backend.repo.add_epoch(conv, _placed(2, 2), 3.0)
    assert [e["epoch"] for e in conv.epochs] == [1, 2]
    repo = await backend.restart()
    again = repo.get(conv.id)
    assert again is not None and [e.get("after") for e in again.epochs] == [None, 2]


@pytest_twisted.ensureDeferred
async def test_read_markers_only_move_forward_and_last(backend: Backend) -> None:
    conv = await backend.repo.create("alice", "bob", envelope(1), 1.0)
    await _send_all(backend.repo, conv, ["a", "b", "c"])
    await backend.repo.set_read(conv, "bob", 2)
    await backend.repo.set_read(conv, "bob", 1)
    backend.repo.set_read_nowait(conv, "alice", 3)
    await backend.repo.wait_durable(conv)
    assert conv.read == {"bob": 2, "alice": 3} and conv.unread("bob") == 1
    repo = await backend.restart()
    again = repo.get(conv.id)
    assert again is not None and again.read["bob"] == 2


@pytest_twisted.ensureDeferred
async def test_a_deleted_conversation_is_gone_after_a_restart(backend: Backend) -> None:
    conv = await backend.repo.create("alice", "bob", envelope(1), 1.0)
    kept = await backend.repo.create("alice", "carol", envelope(1), 1.0)
    await _send_all(backend.repo, conv, ["x"])
    await backend.repo.delete(conv)
    assert backend.repo.get(conv.id) is None
    repo = await backend.restart()
    assert repo.get(conv.id) is None and repo.get(kept.id) is not None
