"""The file and blob repositories' contract, passed by the flat files and PostgreSQL alike:
uploads resume where the stored chunks end, chunks come back as stored, expiry deletes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_twisted

from pychat.store.atrest import AtRestKey
from pychat.store.blocking import inline_runner
from pychat.store.ephemeral import EphemeralStore
from pychat.store.files import CHUNK_BYTES, FileStore
from pychat.store.interfaces import BlobRepository, FileRepository

Openers = tuple[Callable[[], FileRepository], Callable[[], BlobRepository]]


@pytest.fixture(params=["files", "postgresql"])
def open_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Openers:
    key = AtRestKey.load_or_create(tmp_path / "store.key", data_exists=False)
    if request.param == "files":
        return (
            lambda: FileStore.open(tmp_path / "files", key.sealer("files"), inline_runner),
            lambda: EphemeralStore.open(
                tmp_path / "ephemeral", key.sealer("ephemeral"), inline_runner
            ),
        )
    from pychat.store.pg.database import Database
    from pychat.store.pg.files import PgBlobStore, PgFileStore

    database = Database.open(request.getfixturevalue("pg_url"))
    request.addfinalizer(database.close)
    return (lambda: PgFileStore.open(database, key), lambda: PgBlobStore(database, key))


@pytest_twisted.ensureDeferred
async def test_an_upload_resumes_where_its_stored_chunks_end(open_stores: Openers) -> None:
    files = open_stores[0]()
    size = CHUNK_BYTES * 2 + 10
    record = await files.start("alice", "c0ffee", size, 3, 10.0, 3600.0)
    chunks = [bytes([i]) * record.chunk_length(i) for i in range(3)]
    for index in (0, 1):
        await files.put(record, index, chunks[index])
    again = open_stores[0]()  # a restart in the middle of the upload
    resumed = again.record(record.id)
    assert resumed is not None and resumed.received == 2 and not resumed.complete
    await again.put(resumed, 2, chunks[2])
    assert resumed.complete and again.bytes_of("alice") == size
    assert [await again.get(resumed, i) for i in range(3)] == chunks
    assert [f.id for f in again.of_user("alice")] == [record.id] and again.of_user("bob") == []


@pytest_twisted.ensureDeferred
async def test_expired_files_and_blobs_are_deleted(open_stores: Openers) -> None:
    files, blobs = open_stores[0](), open_stores[1]()
    old = await files.start("alice", "c0ffee", 5, 1, 10.0, 60.0)
    young = await files.start("alice", "c0ffee", 5, 1, 10.0, 3600.0)
    assert await files.sweep(100.0) == 1
    assert files.record(old.id) is None and files.record(young.id) is not None
    assert open_stores[0]().record(old.id) is None
    soon = await blobs.put("c0ffee", "vanishing", 50.0)
    later = await blobs.put("c0ffee", "lasting", 5000.0)
    assert await blobs.get("c0ffee", soon) == "vanishing"
    assert await blobs.sweep(100.0) == 1
    assert await blobs.get("c0ffee", soon) is None
    assert await open_stores[1]().get("c0ffee", later) == "lasting"


@pytest_twisted.ensureDeferred
async def test_a_blob_opens_only_in_its_own_conversation(open_stores: Openers) -> None:
    blobs = open_stores[1]()
    name = await blobs.put("c0ffee", "for one pair", 5000.0)
    assert await blobs.get("another", name) is None  # as if it were not there
    assert await blobs.get("c0ffee", name) == "for one pair"
