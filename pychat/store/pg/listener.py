"""A connection that LISTENs for the other nodes' events, on a thread of its own (psycopg
waits for notifications in a blocking call; the reactor never does).

It tells the reactor thread three things: the connection is up (read everything since the
last position: what happened while it was down), another node wrote events (read them), and
the connection was lost (it tries again every second until the database is back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from pychat.store.pg.database import _psycopg
from pychat.store.pg.events import CHANNEL

log = Logger(namespace="pychat.cluster")

#: How long one wait for a notification lasts (seconds): how soon a stop is noticed.
WAIT = 0.5

#: Seconds between attempts to reconnect.
RETRY = 1.0


class EventListener:
    """LISTEN on ``url`` for events of nodes other than ``node``.

    :param call: runs a function on the reactor thread (``reactor.callFromThread``).
    :param up: the connection is (again) listening.
    :param woken: another node wrote events.
    :param down: the connection was lost (with a one-line reason).
    """

    def __init__(
        self,
        url: str,
        node: str,
        call: Callable[..., Any],
        up: Callable[[], None],
        woken: Callable[[], None],
        down: Callable[[str], None],
    ) -> None:
        self._url, self._node, self._call = url, node, call
        self._up, self._woken, self._down = up, woken, down
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start listening (on a daemon thread)."""
        self._thread = threading.Thread(target=self._run, name="pychat-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; returns once the thread has ended (within :data:`WAIT`)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=WAIT * 4)
            self._thread = None

    def _run(self) -> None:
        psycopg = _psycopg()
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._call(self._up)
                    self._listen(conn)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                self._call(self._down, reason)
                self._stopping.wait(RETRY)

    def _listen(self, conn: Any) -> None:
        while not self._stopping.is_set():
            others = False
            for note in conn.notifies(timeout=WAIT, stop_after=1):
                others = others or note.payload != self._node
            if others:
                self._call(self._woken)
