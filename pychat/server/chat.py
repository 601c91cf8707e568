"""The chat server object shared by all connections, and its place in the service tree."""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogPublisher

from pychat import limits
from pychat.server.accounts import AccountService
from pychat.server.cluster_bus import PushBus
from pychat.server.config import ServerConfig
from pychat.server.handlers import (
    account_ops,
    conversation_ops,
    file_ops,
    group_ops,
    key_ops,
    report_ops,
    session_ops,
    signal_ops,
)
from pychat.server.handlers.common import HandlerDeps, register
from pychat.server.handlers.signal_ops import SIGNAL_BURST, SIGNAL_PERIOD
from pychat.server.hello import HelloFields
from pychat.server.ops import OpContext, OpRegistry
from pychat.server.presence import Presence
from pychat.server.protocol import ChatServerProtocol
from pychat.server.ratelimit import TokenBucket
from pychat.server.recent_log import RecentLog
from pychat.server.signup_gate import SignupGate
from pychat.store.server_store import ServerStore
from pychat.text.log import for_log

#: Expired files are looked for this often (seconds).
FILE_SWEEP_INTERVAL = 60.0

log = Logger(namespace="pychat.server")

#: Seconds between saves of an account's last login time.
LAST_LOGIN_EVERY = 3600.0


class ChatServer(Service):
    """Holds the op table and the open connections; closes them all on stop.

    :param config: the server settings.
    :param clock: the reactor (or a ``Clock`` in tests) for timeouts.
    :param store: the opened data dir.
    """

    def __init__(self, config: ServerConfig, clock: IReactorTime, store: ServerStore) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        store.conversations.pace_read_markers(clock, limits.READ_MARKER_SAVE_INTERVAL)
        store.conversations.pace_telling(clock, limits.DURABLE_TELLS_PER_TURN)
        self.account_service = AccountService(
            store.accounts,
            store.key,
            clock,
            signups_per_hour=config.signups_per_hour,
            login_starts_per_minute=config.login_starts_per_minute,
        )
        self.signup_gate = SignupGate(config.signup, store.invites)
        #: The newest log lines, while the service runs (``whatdoyouknow``).
        self.recent_log = RecentLog()
        self._sweeper: task.LoopingCall | None = None
        self.registry = OpRegistry()
        self.connections: set[ChatServerProtocol] = set()
        self._per_host: dict[str, int] = {}
        self.presence = Presence(self._peers_of, self._shares_presence)
        #: Logged-in connections by username (a user may be logged in on several devices).
        self.users = self.presence.connections
        self._all_closed: list[defer.Deferred[None]] = []
        #: Called once the store is closed at a stop (the data dir's lock is given back).
        self.after_close: list[Callable[[], None]] = []
        #: SHA-256 fingerprint of the served certificate, for logs and the admin tool.
        self.tls_fingerprint: str | None = None
        self.deps = deps = HandlerDeps(
            config=config,
            clock=clock,
            accounts=store.accounts,
            conversations=store.conversations,
            account_service=self.account_service,
            presence=self.presence,
            logged_in=self.user_logged_in,
            logged_out=self.user_logged_out,
            hello_fields=HelloFields(config, self.account_service, self.signup_gate, self.registry),
            signup_gate=self.signup_gate,
            recent_log=self.recent_log,
            signal_limits=TokenBucket(
                clock, capacity=SIGNAL_BURST, period=SIGNAL_PERIOD, max_keys=100_000
            ),
            files=store.files,
            ephemeral=store.ephemeral,
        )
        for module in (
            session_ops,
            account_ops,
            key_ops,
            conversation_ops,
            group_ops,
            report_ops,
            signal_ops,
            file_ops,
        ):
            register(self.registry, deps, module.OPS)
        #: How this node and the others on the same database tell each other (None alone).
        self.bus: PushBus | None = self._join_other_nodes()

    def _join_other_nodes(self) -> PushBus | None:
        """The bus to the other nodes on the same database (None: the flat files)."""
        if self.store.database is None:
            return None
        from pychat.server.cluster import database_bus

        bus = database_bus(self.store, self.deps, self.close_sessions)
        self.presence.publish = bus.publish
        return bus

    # -- who is logged in ----------------------------------------------------------------------

    def _peers_of(self, username: str) -> list[str]:
        convs = self.store.conversations.for_user(username)
        return sorted({peer for c in convs for peer in c.others(username)})

    def _shares_presence(self, username: str) -> bool:
        account = self.store.accounts.get(username)
        return account is not None and account.share_presence

    def log_name_of(self, username: str | None) -> str:
        """How the log names the account (a pseudonym), or ``not logged in``."""
        return self.account_service.log_name(username) if username else "not logged in"

    def user_logged_in(self, conn: OpContext, username: str) -> None:
        """Record that ``conn`` is now authenticated as ``username``."""
        conn.session.username = username
        self.presence.logged_in(conn, username)
        self._note_login(username)
        log.info(
            "{user} logged in from {peer} (client {client})",
            user=self.account_service.log_name(username),
            peer=conn.session.peer,
            client=for_log(conn.session.client) if conn.session.client else "unnamed",
        )

    def _note_login(self, username: str) -> None:
        """Save the login time, at most once an hour per account (a login costs no write)."""
        account = self.store.accounts.get(username)
        now = self.clock.seconds()
        if account is None or (account.last_login or 0) > now - LAST_LOGIN_EVERY:
            return
        saved = defer.ensureDeferred(self.store.accounts.update(username, last_login=now))
        saved.addErrback(lambda f: log.warn("last login not saved: {e}", e=f.value))

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """Disable or enable an account; a disabled user's connections are closed at once.

        :returns: False when there is no such account.
        """
        account = self.store.accounts.get(username)
        if account is None:
            return False
        if account.disabled != disabled:
            await self.store.accounts.update(username, disabled=disabled)
        log.info(
            "account {user} {what} by the operator",
            user=self.account_service.log_name(username),
            what="disabled" if disabled else "enabled",
        )
        if disabled:
            self.close_sessions(username, "account_disabled", "the operator disabled this account")
        return True

    async def reset_account(self, username: str) -> bool:
        """Remove an account so that its owner can sign up again under the same name (a
        forgotten password); its sessions are closed.  Conversations stay: the new account's
        keys reach its peers as an unsigned key change.

        :returns: False when there is no such account.
        """
        account = self.store.accounts.get(username)
        if account is None:
            return False
        self.close_sessions(username, "account_reset", "the operator reset this account")
        await self.store.accounts.delete(username)
        self.account_service.account_removed(account)
        log.info(
            "account {user} reset by the operator", user=self.account_service.log_name(username)
        )
        return True

    async def delete_account(self, username: str) -> int | None:
        """Delete an account with its key history and every conversation it is in; its
        sessions are closed.  Its peers find the conversations and the user gone.

        :returns: how many conversations went, or None when there is no such account.
        """
        account = self.store.accounts.get(username)
        if account is None:
            return None
        self.close_sessions(username, "account_deleted", "the operator deleted this account")
        gone = await self.store.delete_account(username)
        self.account_service.account_removed(account)
        log.info(
            "account {user} deleted by the operator", user=self.account_service.log_name(username)
        )
        return gone

    def close_sessions(
        self, username: str, reason: str, message: str, *, everywhere: bool = True
    ) -> None:
        """Close ``username``'s connections with a ``closing`` push, here (and on the other
        nodes, ``everywhere``)."""
        if everywhere and self.bus is not None:
            self.bus.publish({"k": "close", "user": username, "reason": reason, "message": message})
        for conn in [c for c in self.connections if c.session.username == username]:
            conn.push("closing", {"reason": reason, "message": message})
            conn.close(grace=limits.SHUTDOWN_GRACE)

    def user_logged_out(self, conn: OpContext) -> None:
        """Record that ``conn`` is no longer authenticated (logout or close)."""
        username = conn.session.username
        if username is None:
            return
        conn.session.username = None
        self.presence.logged_out(conn, username)

    # -- connections -------------------------------------------------------------------------

    def factory(self) -> Factory:
        """A protocol factory whose connections belong to this server."""
        return Factory.forProtocol(lambda: ChatServerProtocol(self))

    def connection_opened(self, conn: ChatServerProtocol) -> str | None:
        """Called by a connection once it is up; returns why it must be refused (the
        connection caps, checked before any TLS work), or None when it is admitted."""
        host = conn.session.host
        if len(self.connections) >= self.config.max_connections:
            return f"{len(self.connections)} connections are open (--max-connections)"
        if self._per_host.get(host, 0) >= self.config.max_connections_per_address:
            return (
                f"{self._per_host[host]} connections from {host} are open "
                "(--max-connections-per-address)"
            )
        self.connections.add(conn)
        self._per_host[host] = self._per_host.get(host, 0) + 1
        return None

    def connection_closed(self, conn: ChatServerProtocol) -> None:
        """Called by a connection once it is gone."""
        if conn not in self.connections:
            return  # refused at the door
        self.user_logged_out(conn)
        self.connections.discard(conn)
        host = conn.session.host
        left = self._per_host.get(host, 1) - 1
        if left > 0:
            self._per_host[host] = left
        else:
            self._per_host.pop(host, None)
        if not self.connections:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    # -- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        """Start keeping the newest log lines, and deleting expired files and disappearing
        messages every minute."""
        super().startService()
        globalLogPublisher.addObserver(self.recent_log)
        self._sweeper = task.LoopingCall(self._sweep_files)
        self._sweeper.clock = self.clock
        self._sweeper.start(FILE_SWEEP_INTERVAL, now=True)
        if self.bus is not None:
            self.bus.start()

    def _sweep_files(self) -> defer.Deferred[None]:
        async def sweep() -> None:
            now = self.clock.seconds()
            gone = await self.store.files.sweep(now)
            if gone:
                log.info("deleted {n} expired file(s)", n=gone)
            gone = await self.store.ephemeral.sweep(now)
            if gone:
                log.info("deleted {n} expired message(s)", n=gone)

        d = defer.ensureDeferred(sweep())
        d.addErrback(lambda f: log.failure("deleting expired files failed", failure=f))
        return d

    def stopService(self) -> defer.Deferred[None]:
        """Tell every client the server is going away, close, wait until all are gone, then
        close the store (saving the log indexes)."""
        super().stopService()
        globalLogPublisher.removeObserver(self.recent_log)
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        return defer.ensureDeferred(self._shut_down())

    async def _shut_down(self) -> None:
        if self.connections:
            log.info("closing {n} connection(s) for shutdown", n=len(self.connections))
            done: defer.Deferred[None] = defer.Deferred()
            self._all_closed.append(done)
            for conn in list(self.connections):
                conn.push("closing", {"reason": "shutdown", "message": "server is shutting down"})
                conn.close(grace=limits.SHUTDOWN_GRACE)
            await done
        if self.bus is not None:
            await self.bus.stop()
        await self.store.close()
        for hook in self.after_close:
            hook()
