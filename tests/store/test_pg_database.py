"""The database connection pool across a database restart: nothing fails once it is back."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from pychat.store.errors import StorageFailure
from pychat.store.pg.database import POOL_MAX, Database
from tests.pg_server import start_cluster


def _select_one(cursor: Any) -> int:
    cursor.execute("SELECT 1")
    return int(cursor.fetchone()[0])


@pytest_twisted.ensureDeferred
async def test_every_dead_pooled_connection_is_replaced_without_a_failure() -> None:
    cluster = start_cluster()  # its own: this test restarts it
    assert cluster is not None
    database = Database.open(cluster.create_database("restarts"))
    try:
        many = POOL_MAX * 3
        assert (
            await defer.gatherResults([database.run(_select_one) for _ in range(many)])
            == [1] * many
        )  # the pool opened all its connections
        cluster.pause()
        with pytest.raises(StorageFailure, match="the database is unavailable"):
            await database.run(_select_one)
        cluster.resume()
        assert (
            await defer.gatherResults([database.run(_select_one) for _ in range(many)])
            == [1] * many
        )
    finally:
        database.close()
        cluster.stop()
