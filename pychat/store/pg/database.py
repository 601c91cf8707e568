"""A connection to PostgreSQL: opened and migrated at start (a blocking moment, like opening
the flat files), then every query in a named transaction function on a thread pool
(``twisted.enterprise.adbapi``, as Synapse does), so the reactor never waits on the database.

psycopg (version 3) is the driver: maintained, typed, DB-API 2.0 (which adbapi drives), with
binary wheels.  It is an optional dependency (``pip install 'pychat[postgresql]'``); the flat
files need none of this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.enterprise import adbapi
from twisted.enterprise.adbapi import ConnectionLost
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.store.errors import StorageFailure
from pychat.store.pg.events import Position, start_position
from pychat.store.pg.schema import SchemaTooNew, migrate

log = Logger(namespace="pychat.store")

T = TypeVar("T")

#: Connections a node keeps to the database (one per thread that runs a query).
POOL_MIN, POOL_MAX = 1, 4


class DatabaseUnavailable(Exception):
    """The database cannot be reached or used; the message is one line for the operator."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise DatabaseUnavailable(
            "a postgresql:// database needs psycopg: pip install 'pychat[postgresql]'"
        ) from None
    return psycopg


def _unavailable(failure: Failure) -> Failure:
    """A lost or refused connection as the store's :class:`StorageFailure`; anything else
    (our own refusals, a bug) as it is."""
    psycopg = _psycopg()
    if failure.check(psycopg.OperationalError, psycopg.InterfaceError, ConnectionLost):
        first = str(failure.value).strip().splitlines()[0] if str(failure.value).strip() else ""
        log.warn("the database is unavailable: {e}", e=first or repr(failure.value))
        return Failure(StorageFailure(None, f"the database is unavailable: {first}"))
    return failure


def _where(url: str) -> str:
    """The URL without a password, for messages."""
    head, at, tail = url.rpartition("@")
    return f"postgresql://…@{tail}" if at and ":" in head.split("//", 1)[-1] else url


class Database:
    """One node's way to the database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: adbapi.ConnectionPool | None = None

    @classmethod
    def open(cls, url: str) -> Database:
        """Connect, bring the schema up to date, and return the database.

        :raises DatabaseUnavailable: unreachable, refused, or a schema newer than this code.
        """
        psycopg = _psycopg()
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                migrate(conn)
        except SchemaTooNew as exc:
            raise DatabaseUnavailable(f"{_where(url)}: {exc}") from None
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseUnavailable(f"cannot use the database {_where(url)}: {first}") from None
        return cls(url)

    def query_now(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query, at once (at start, before the reactor runs)."""
        psycopg = _psycopg()
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            return list(conn.execute(sql, args).fetchall())

    def start_position(self) -> Position:
        """A position in the event stream before every event that may still commit: a node
        takes it before it loads what the database holds, so whatever changes after the
        load is read again (:mod:`.events`)."""
        psycopg = _psycopg()
        with psycopg.connect(self.url, connect_timeout=10) as conn, conn.cursor() as cursor:
            return start_position(cursor)

    @property
    def pool(self) -> adbapi.ConnectionPool:
        if self._pool is None:
            self._pool = adbapi.ConnectionPool(
                "psycopg", self.url, cp_min=POOL_MIN, cp_max=POOL_MAX, cp_reconnect=True
            )
        return self._pool

    def run(self, work: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """``work(cursor, *args)`` in one transaction on a pool thread (committed when it
        returns, rolled back when it raises).  A database that cannot be reached, or a
        connection lost on the way, fails it with :class:`StorageFailure` (nothing was
        stored: the client is told to try again, and the pool connects anew)."""
        d: defer.Deferred[T] = self.pool.runInteraction(work, *args)
        for _ in range(POOL_MAX):
            d.addErrback(self._on_a_fresh_connection, work, args)
        d.addErrback(_unavailable)
        return d

    def _on_a_fresh_connection(
        self, failure: Failure, work: Callable[..., T], args: tuple[Any, ...]
    ) -> defer.Deferred[T]:
        """Run ``work`` again when its connection had gone (the database restarted since it
        was opened): adbapi has dropped that connection by then, so the next try gets a new
        one.  Every transaction here may run twice without harm: an append finds its first
        copy by client id, an epoch finds its number taken, the rest write the same rows."""
        psycopg = _psycopg()
        failure.trap(ConnectionLost, psycopg.OperationalError, psycopg.InterfaceError)
        d: defer.Deferred[T] = self.pool.runInteraction(work, *args)
        return d

    def close(self) -> None:
        """Close the pool's connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class InlineDatabase(Database):
    """The database for tools without a reactor (``pychat-admin``): each transaction runs at
    once on one connection, and its Deferred has fired when :meth:`run` returns (drive the
    store's coroutines with :func:`~pychat.store.blocking.run_inline`)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._conn: Any = None

    def run(self, work: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """``work(cursor, *args)`` in one transaction, now."""
        psycopg = _psycopg()
        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            with self._conn.transaction(), self._conn.cursor() as cursor:
                result = work(cursor, *args)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return defer.fail(StorageFailure(None, f"the database failed: {first}"))
        except Exception:
            return defer.fail()
        return defer.succeed(result)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
