"""Several nodes serving the same users from one database: what this node tells the others,
and what it does with what they tell it.

The events travel through the database (:mod:`pychat.store.pg.events`): a change's event is
written in the transaction that makes it, a push with no change behind it (typing, a user's
first login here) on its own, in order, one transaction at a time.  Another node's events are
read after NOTIFY wakes this one (and every :data:`SAFETY_READ` seconds whatever happens), in
the order their transactions committed, and applied one after another:

- a changed account, conversation, read marker or file is read again from the database, so
  what this node holds in memory follows what the others changed;
- messages another node stored are read and pushed to their readers' connections here (after
  their COMMIT, as this node's own are);
- a push is pushed to the connections here; a login or logout there moves presence here;
- a failed login, a device token's failure or a signup there counts here as well (the limits
  that protect accounts hold across nodes; a starting node first replays the last hour of
  them, which covers every limit's memory);
- every node says who is logged in on it every :data:`HEARTBEAT` seconds; a node silent for
  :data:`SILENT_FOR` seconds (killed, cut off) is taken to have nobody logged in.

While the database cannot be reached the listening connection retries every second; once it
is back this node reads everything after the last position it read (nothing lost, nothing
twice), and requests meanwhile are answered ``storage_error`` by the store.

:class:`PushBus` is all the rest of the server sees; another transport (Redis, NATS) could
stand in for the database's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.server.cluster_bus import PushBus
from pychat.server.presence import Presence
from pychat.server.ratelimit import Tell
from pychat.store.accounts_record import Account
from pychat.store.conversation import Conversation
from pychat.store.pg.accounts import PgAccountStore
from pychat.store.pg.conversations import PgConversationStore
from pychat.store.pg.database import Database
from pychat.store.pg.events import (
    KEEP_EVENTS,
    EventLog,
    ReadEvents,
    limits_before,
    prune,
    read_after,
    start_position,
)
from pychat.store.pg.files import SWEEP_LOCK, PgFileStore
from pychat.store.pg.listener import EventListener
from pychat.wire.shapes import StoredMessage

if TYPE_CHECKING:
    from pychat.server.handlers.common import HandlerDeps
    from pychat.store.server_store import ServerStore

log = Logger(namespace="pychat.cluster")

#: Seconds between a node's "these users are logged in here".
HEARTBEAT = 10.0
#: A node not heard from for this long has nobody logged in (seconds).
SILENT_FOR = 3 * HEARTBEAT
#: Seconds between reads of the stream that no notification woke.
SAFETY_READ = 2.0
#: Seconds before reading again when rows were there that could not be read yet.
AGAIN_SOON = 0.05
#: Seconds between sweeps of old events.
PRUNE_EVERY = 300.0
#: A node that has not read the stream for this long may have missed swept events: it reads
#: everything again instead (seconds).
FELL_BEHIND = KEEP_EVENTS - 2 * PRUNE_EVERY


@dataclass
class NodeParts:
    """What the events of other nodes change on this one."""

    accounts: PgAccountStore
    conversations: PgConversationStore
    files: PgFileStore
    presence: Presence
    #: An account another node changed: (as it was here, as it is now).
    account_changed: Callable[[Account | None, Account | None], None]
    #: Close a user's connections here: (username, reason, message).
    close_sessions: Callable[[str, str, str], None]
    #: Push messages another node stored to their readers here.
    deliver: Callable[[Conversation, list[StoredMessage]], Awaitable[None]]
    #: The limits that protect accounts, by name: shared with the other nodes.
    limits: Mapping[str, SharedLimit]


class SharedLimit(Protocol):
    """A limit whose changes are told to the other nodes, and made as they tell theirs."""

    tell: Tell | None

    def apply(self, op: str, key: str, n: int, at: float) -> None:
        """Make a change another node told of."""


class DatabaseBus(PushBus):
    """A :class:`PushBus` over the shared database: events written in transactions, woken by
    LISTEN/NOTIFY, read in commit order from the last position seen."""

    def __init__(
        self,
        database: Database,
        events: EventLog,
        parts: NodeParts,
        clock: IReactorTime,
        call_from_thread: Callable[..., Any],
    ) -> None:
        self._db, self._events, self._parts, self._clock = database, events, parts, clock
        self.node = events.node
        self.position = events.start
        self._outbox: list[dict[str, Any]] = []
        self._writing: defer.Deferred[None] | None = None
        self._all_written: list[defer.Deferred[None]] = []
        self._reading = False
        self._read_again = False
        self._soon: Any = None
        self._heard: dict[str, float] = {}
        self._down_since: str | None = None
        self._loops: list[task.LoopingCall] = []
        self._replayed = False
        self._stopped = False
        #: When the stream was last read (None: not yet).
        self._last_read: float | None = None
        #: The messages the events of the read under way name, by conversation key.
        self._fetched: dict[str, list[tuple[int, bytes]]] = {}
        for name, limit in parts.limits.items():
            limit.tell = self._teller(name)
        self._listener = EventListener(
            database.url, self.node, call_from_thread, self._up, self.read, self._down
        )

    # -- telling ---------------------------------------------------------------------------

    def publish(self, body: dict[str, Any]) -> None:
        """Write ``body`` after everything published before it (together with whatever
        else is waiting, in one transaction)."""
        self._outbox.append(body)
        if self._writing is None:
            self._write()

    def _write(self) -> None:
        bodies, self._outbox = self._outbox, []
        d: defer.Deferred[None] = self._db.run(self._events.write_all, bodies)
        self._writing = d

        def done(result: Failure | None) -> None:
            if isinstance(result, Failure):
                log.warn(
                    "{n} event(s) for the other nodes were not written: {e}",
                    n=len(bodies),
                    e=result.value,
                )
            self._writing = None
            if self._outbox:
                self._write()
                return
            waiting, self._all_written = self._all_written, []
            for waiter in waiting:
                waiter.callback(None)

        d.addBoth(done)

    def _teller(self, name: str) -> Tell:
        def tell(op: str, key: str, n: int, at: float) -> None:
            self.publish({"k": "limit", "name": name, "op": op, "key": key, "n": n, "at": at})

        return tell

    def _written(self) -> defer.Deferred[None]:
        """Fires once everything published so far is written (or failed)."""
        if self._writing is None:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._all_written.append(waiter)
        return waiter

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen, read what came since the start position, and say who is logged in here
        every :data:`HEARTBEAT` seconds."""
        self._listener.start()
        for work, every in (
            (self._heartbeat, HEARTBEAT),
            (self.read, SAFETY_READ),
            (self._prune, PRUNE_EVERY),
        ):
            loop = task.LoopingCall(work)
            loop.clock = self._clock
            loop.start(every, now=True)
            self._loops.append(loop)

    def stop(self) -> defer.Deferred[None]:
        """Tell the others this node is going, stop listening and reading."""
        self._stopped = True
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        self._listener.stop()
        self.publish({"k": "down"})
        return self._written()

    def _heartbeat(self) -> None:
        self.publish({"k": "alive", "users": self._parts.presence.here()})
        now = self._clock.seconds()
        for node, heard in list(self._heard.items()):
            if heard < now - SILENT_FOR:
                log.warn("node {node} has been silent for {s:.0f} s", node=node, s=now - heard)
                self._gone(node)

    def _gone(self, node: str) -> None:
        self._heard.pop(node, None)
        self._parts.presence.node_has(node, set())

    def _prune(self) -> defer.Deferred[None]:
        d = self._db.run(_prune_once)
        d.addCallback(lambda gone: log.info("swept {n} old event(s)", n=gone) if gone else None)
        d.addErrback(lambda f: log.warn("old events were not swept: {e}", e=f.value))
        return d.addCallback(lambda _: None)

    # -- the listening connection ------------------------------------------------------------

    def _up(self) -> None:
        if self._down_since is not None:
            log.info("listening to the other nodes again; catching up")
            self._down_since = None
        self.read()

    def _down(self, reason: str) -> None:
        if self._down_since is None:
            log.warn("lost the database's notifications: {why}", why=reason)
            self._down_since = reason

    # -- reading ------------------------------------------------------------------------------

    def read(self) -> None:
        """Read and apply the events after the last position (once more after the read
        under way, when one is)."""
        if self._stopped:
            return
        if self._reading:
            self._read_again = True
            return
        self._reading = True
        self._read_again = False
        d = defer.ensureDeferred(self._read_once())

        def done(more: bool | Failure) -> None:
            self._reading = False
            if isinstance(more, Failure):
                log.warn("reading the other nodes' events failed: {e}", e=more.value)
                return
            if self._read_again:
                self.read()
            elif more and (self._soon is None or not self._soon.active()):
                self._soon = self._clock.callLater(AGAIN_SOON, self.read)

        d.addBoth(done)

    async def _replay_limits(self) -> None:
        """The limits' changes of the last hour, made before this node started."""
        rows = await self._db.run(limits_before, self._events.start)
        for sealed in rows:
            try:
                await self._apply("", self._events.open(sealed))
            except (InvalidTag, ValueError, KeyError):
                log.warn("a limit's change from before the start does not open: skipped")
        self._replayed = True
        if rows:
            log.info("replayed {n} change(s) to the limits that protect accounts", n=len(rows))

    async def _read_everything_again(self) -> None:
        """This node was away from the database longer than events are kept: what changed
        meanwhile may be gone from the stream, so every account, conversation and file is
        read again (from a position taken first, so nothing after it is missed)."""
        log.warn("away from the database too long to catch up from its events: reading all")
        self.position = await self._db.run(start_position)
        parts = self._parts
        for name in await parts.accounts.names():
            parts.account_changed(*await parts.accounts.refresh(name))
        for conversation_id, conv_key in (await parts.conversations.keys()).items():
            await parts.conversations.refresh(conv_key, conversation_id)
        for file_id in await parts.files.ids():
            await parts.files.refresh(file_id)

    async def _read_once(self) -> bool:
        if not self._replayed:
            await self._replay_limits()
        now = self._clock.seconds()
        if self._last_read is not None and now - self._last_read > FELL_BEHIND:
            await self._read_everything_again()
        found: ReadEvents = await self._db.run(read_after, self.position, self.node)
        events: list[tuple[str, dict[str, Any]]] = []
        for writer, sealed in found.rows:
            try:
                events.append((writer, self._events.open(sealed)))
            except (InvalidTag, ValueError):
                log.warn("an event from node {node} does not open: skipped", node=writer)
        # The messages every event of this read names, in one query.
        ranges = [(b["key"], b["first"], b["last"]) for _, b in events if b.get("k") == "messages"]
        self._fetched = await self._parts.conversations.fetch_ranges(ranges) if ranges else {}
        for writer, body in events:
            if self._stopped:  # nothing more is applied once the node is stopping
                break
            try:
                await self._apply(writer, body)
            except Exception:
                log.failure("an event from node {node} was not applied", node=writer)
        self._fetched = {}
        self.position = found.position
        self._last_read = now
        return found.more

    async def _apply(self, writer: str, body: dict[str, Any]) -> None:
        parts, kind = self._parts, body.get("k")
        if kind == "limit":
            limit = parts.limits.get(body["name"])
            if limit is not None:
                limit.apply(body["op"], body["key"], int(body["n"]), float(body["at"]))
            return
        if kind in ("alive", "online"):  # a node (the admin tool writes events too)
            if writer not in self._heard:  # a new node: say who is here at once
                self.publish({"k": "alive", "users": parts.presence.here()})
            self._heard[writer] = self._clock.seconds()
        if kind == "messages":
            landed = await parts.conversations.landed_elsewhere(
                body["key"], body["id"], body["first"], body["last"], self._fetched.get(body["key"])
            )
            if landed is not None:
                await parts.deliver(*landed)
        elif kind == "push":
            parts.presence.push_here(body["to"], body["event"], body["payload"])
        elif kind == "read":
            parts.conversations.read_elsewhere(body["id"], body["user"], body["seq"])
        elif kind == "conversation":
            await parts.conversations.refresh(body["key"], body["id"])
        elif kind == "account":
            parts.account_changed(*await parts.accounts.refresh(body["name"]))
        elif kind == "file":
            await parts.files.refresh(body["id"])
        elif kind == "online":
            parts.presence.node_says(writer, body["user"], bool(body["online"]))
        elif kind == "alive":
            parts.presence.node_has(writer, set(body["users"]))
        elif kind == "down":
            self._gone(writer)
        elif kind == "close":
            parts.close_sessions(body["user"], body["reason"], body["message"])
        else:
            log.info("an event of a kind this node does not know: {kind!r}", kind=kind)


def _prune_once(cursor: Any) -> int:
    """Sweep old events, on one node at a time."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (SWEEP_LOCK + 1,))
    (ours,) = cursor.fetchone()
    return prune(cursor) if ours else 0


def database_bus(
    store: ServerStore, deps: HandlerDeps, close_sessions: Callable[..., None]
) -> DatabaseBus:
    """The bus of a node whose store is a database shared with other nodes;
    ``close_sessions(user, reason, message, everywhere=False)`` closes a user's connections
    on this node."""
    from twisted.internet import reactor

    from pychat.server.handlers.conversation_ops import push_stored_elsewhere

    assert store.database is not None and store.events is not None  # noqa: S101
    assert isinstance(store.accounts, PgAccountStore)  # noqa: S101
    assert isinstance(store.conversations, PgConversationStore)  # noqa: S101
    assert isinstance(store.files, PgFileStore)  # noqa: S101

    async def deliver(conv: Conversation, records: list[StoredMessage]) -> None:
        await push_stored_elsewhere(deps, conv, records)

    logins = deps.account_service.logins
    limits: dict[str, SharedLimit] = {
        "account": logins.account_failures,
        "address": logins.address_failures,
        "device": logins.token_failures,
    }
    if deps.account_service.signups is not None:
        limits["signups"] = deps.account_service.signups
    parts = NodeParts(
        store.accounts,
        store.conversations,
        store.files,
        deps.presence,
        deps.account_service.changed_elsewhere,
        lambda user, reason, message: close_sessions(user, reason, message, everywhere=False),
        deliver,
        limits,
    )
    call_from_thread = getattr(reactor, "callFromThread")  # noqa: B009 - typed loosely
    return DatabaseBus(store.database, store.events, parts, deps.clock, call_from_thread)
