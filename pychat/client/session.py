"""The client library: one logged-in user on one server, with end-to-end encryption.

:class:`ChatClient` is the facade scripts, the CLI and the TUI use.  It owns the connection
(TLS with the certificate pinned on first use or checked against a CA, ``hello``, SRP login,
reconnecting with backoff on the injected reactor's clock) and the keystore, and hands the
rest to collaborators that see only a small :class:`~pychat.client.context.ClientContext`:
:class:`~pychat.client.peer_trust.PeerTrust` (peers' keys),
:class:`~pychat.client.epochs.ConversationKeys` (epoch keys) and
:class:`~pychat.client.messaging.Messaging` (send and read).  Pushes are dispatched by a table.
Slow work (KDF, RSA key generation) runs in threads, never on the reactor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor as default_reactor
from twisted.logger import Logger

from pychat.client.account import AccountActions
from pychat.client.address import ServerAddress
from pychat.client.blocking import BlockingRunner, in_thread
from pychat.client.disappearing import Disappearing
from pychat.client.epochs import ConversationKeys
from pychat.client.errors import (
    CertificateChanged,
    ClientError,
    ConnectError,
    MessageTooLong,
    NotPyChatServer,
    PeerKeyChanged,
    ReplyTimeout,
    TrustError,
    UnsendableText,
    check_sendable,
)
from pychat.client.events import ChatMessage, ClientEvent, SafetyNumbers
from pychat.client.files import Files
from pychat.client.games import Games
from pychat.client.group_actions import GroupActions
from pychat.client.keystore import (
    KeystoreData,
    KeystoreFile,
)
from pychat.client.link import ServerLink, Timeouts
from pychat.client.messaging import Messaging
from pychat.client.peer_trust import PeerTrust
from pychat.client.pins import ServerPins
from pychat.client.protocol import ClientProtocol
from pychat.client.pushes import PushDispatcher
from pychat.client.reconnect import Reconnector
from pychat.client.sending import Sender
from pychat.client.server_session import ServerSession
from pychat.client.signals import Signals
from pychat.crypto.identity import (
    PublicIdentity,
)
from pychat.crypto.kdf import KdfParams
from pychat.wire.ids import conversation_id, group_of
from pychat.wire.usernames import normal_form

__all__ = [
    "CertificateChanged",
    "ChatClient",
    "ChatMessage",
    "ClientError",
    "ClientEvent",
    "ConnectError",
    "MessageTooLong",
    "NotPyChatServer",
    "PeerKeyChanged",
    "ReplyTimeout",
    "SafetyNumbers",
    "Timeouts",
    "TrustError",
    "UnsendableText",
    "check_sendable",
]

log = Logger(namespace="pychat.client")

#: The longest key backup the server takes (docs/protocol.md, set_key_backup).
KEY_BACKUP_LIMIT = 16384


class ChatClient:
    """One user's connection to one server.

    :param address: the server.
    :param home: the client's data dir (keystores, known servers).
    :param ca: a CA certificate (PEM) to verify the server with instead of pinning.
    :param on_new_server: asked with ``(server, fingerprint)`` on first contact; False
        refuses.  ``run_blocking`` and ``connector`` replace threads and TLS in memory.
    """

    def __init__(
        self,
        address: ServerAddress,
        home: Path,
        *,
        ca: Path | None = None,
        on_new_server: Callable[[str, str], bool | Awaitable[bool]] | None = None,
        timeouts: Timeouts | None = None,
        reactor: Any = None,
        run_blocking: BlockingRunner = in_thread,
        connector: Callable[[], Awaitable[ClientProtocol]] | None = None,
    ) -> None:
        self.address = address
        self.home = home
        self.ca = ca
        self.on_new_server = on_new_server or (lambda server, fp: True)
        self.reactor = reactor or default_reactor
        #: Where slow work runs (threads; :func:`~pychat.client.blocking.inline` in memory).
        self.run_blocking = run_blocking
        self.pins = ServerPins(home)
        self.username: str | None = None
        self.keystore: KeystoreFile | None = None
        self.data: KeystoreData | None = None
        self.listeners: list[Callable[[ClientEvent], None]] = []
        self.password: str | None = None
        self.timeouts = timeouts or Timeouts()
        self.account = AccountActions(self)
        self.pushes = PushDispatcher(self)
        link = ServerLink(
            address,
            self.pins,
            ca=ca,
            on_new_server=self.on_new_server,
            timeouts=self.timeouts,
            reactor=self.reactor,
            emit=self.emit,
            connector=connector,
        )
        #: The connection as it comes and goes (TLS, hello, state, keepalive).
        self.connection = ServerSession(
            address,
            link,
            timeouts=self.timeouts,
            reactor=self.reactor,
            emit=self.emit,
            on_push=self.pushes.on_push,
            on_lost=self._lost,
        )
        self.reconnector = Reconnector(self, self.reactor, lambda: link.watch.route())
        self.trust_store = PeerTrust(self)
        self.keys = ConversationKeys(self, self.trust_store)
        self.messaging = Messaging(self, self.trust_store, self.keys)
        #: Groups: made, changed, sent to and read (pychat.client.group_actions).
        self.groups = GroupActions(self, self.trust_store, self.messaging)
        self.sender = Sender(self, self.messaging, lambda: self.keystore)
        #: Fair flips and rolls (:mod:`~pychat.client.games`), typing and read signals, files.
        self.games, self.signals = Games(self), Signals(self, self.trust_store)
        self.files, self.disappearing = Files(self, self.messaging, self.sender), Disappearing(self)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The server's name for keystores and display: the ``host:port`` its certificate was
        first pinned under (so another address of the same server finds the same keystore)."""
        return self.connection.server_name or str(self.address)

    def emit(self, event: ClientEvent) -> None:
        """Tell every listener (exceptions in one are logged, never raised here)."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.failure("event listener failed")

    def set_state(self, state: str, **extra: Any) -> None:
        """Record the connection state and tell the listeners (see :class:`ServerSession`)."""
        self.connection.set_state(state, **extra)

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request with a timeout; raises RemoteError, ConnectionClosed or TimeoutError."""
        return await self.connection.request(op, **fields)

    def require_login(self) -> tuple[str, KeystoreData]:
        """(this user's name, the open keystore).

        :raises ClientError: not logged in.
        """
        if self.username is None or self.data is None:
            raise ClientError("not logged in")
        return self.username, self.data

    async def save(self) -> None:
        """Write the keystore, in a thread."""
        if self.keystore is not None and self.data is not None:
            await self.run_blocking(self.keystore.save, self.data)

    # -- connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the TLS connection, check the certificate, say hello (see
        :meth:`ServerSession.connect`)."""
        await self.connection.connect()

    def drop_connection(self) -> None:
        """Close the current connection (reconnecting follows if logged in)."""
        self.connection.drop()

    def stop_reconnecting(self) -> None:
        """Do not reconnect when the connection drops (the program is ending)."""
        self.connection.closing = True

    async def close(self) -> None:
        """Close the connection; no reconnecting after this."""
        await self.connection.close()

    def _lost(self) -> None:
        if self.password is None:
            self.set_state("disconnected")
            return
        self.reconnector.start()

    @property
    def closing(self) -> bool:
        """Whether the program asked for no more reconnecting."""
        return self.connection.closing

    async def relogin(self) -> None:
        """Connect and log in again with the credentials of the last login (reconnecting)."""
        await self.connect()
        assert self.username is not None and self.password is not None  # noqa: S101
        await self.account.srp_login(self.username, self.password)
        self.set_state("online")

    async def catch_up(self) -> None:
        """Fetch what arrived while disconnected (as message events); send the outbox."""
        await self.messaging.catch_up()
        await self.groups.catch_up()
        await self.sender.flush()

    # -- accounts (AccountActions) -------------------------------------------------------------

    async def signup(self, username: str, password: str, **options: Any) -> str:
        """Create an account (keys, keystore); ``kdf=``, ``invite=``; return its name."""
        return await self.account.signup(username, password, **options)

    async def login(self, username: str, password: str) -> None:
        """Log in, open (or rebuild from the server's key backup) the local keystore, and send
        what waits in the outbox."""
        await self.account.login(username, password)
        await self.sender.flush()

    async def change_password(self, old: str, new: str, *, kdf: KdfParams | None = None) -> None:
        """Change the password on the server, the key backup and the local keystore."""
        await self.account.change_password(old, new, kdf=kdf)

    async def rotate_identity(self) -> str:
        """New identity keys signed by the old ones; returns the new fingerprint."""
        return await self.account.rotate_identity()

    # -- ClientContext --------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """The server's ``hello`` reply."""
        return self.connection.hello_reply

    def now(self) -> float:
        """Seconds since the epoch, from the reactor's clock (a fake one in tests)."""
        return float(self.reactor.seconds())

    # -- peers and trust (PeerTrust) -----------------------------------------------------------

    async def peer_identity(self, peer: str) -> PublicIdentity:
        """The peer's current identity, checked against its pin (see :class:`PeerTrust`)."""
        return await self.trust_store.peer_identity(peer)

    async def trust(self, peer: str) -> str:
        """Accept the peer's current key after a change, *without* marking it verified, and
        start a new conversation key wrapped for it so both sides can read at once.  Returns
        the accepted fingerprint."""
        fingerprint, changed = await self.trust_store.accept(peer)
        me, data = self.require_login()
        if changed and conversation_id(me, normal_form(peer)) in data.conversation_keys:
            await self.keys.rotate(normal_form(peer))
        return fingerprint

    async def mark_verified(self, peer: str) -> None:
        """Mark the peer verified (after comparing safety numbers)."""
        await self.trust_store.mark_verified(peer)

    def peer_trust(self, peer: str) -> tuple[bool, bool]:
        """(marked verified, key change pending) for ``peer``."""
        return self.trust_store.peer_trust(peer)

    def my_fingerprint(self) -> str:
        """This user's identity fingerprint."""
        return self.trust_store.my_fingerprint()

    async def safety_number(self, peer: str) -> tuple[str, bool]:
        """The pair's safety number and whether the peer is marked verified."""
        return await self.trust_store.safety_number(peer)

    async def safety_numbers(self, peer: str) -> SafetyNumbers:
        """Both safety numbers while a change is pending (see :class:`PeerTrust`)."""
        return await self.trust_store.safety_numbers(peer)

    # -- conversations (ConversationKeys, Messaging) -------------------------------------------

    async def open_conversation(self, peer: str) -> str:
        """The conversation with ``peer`` (created if new; a group as ``#`` and its id,
        loaded); its keys loaded."""
        group = group_of(peer)
        if group is not None:
            await self.groups.view(group)
            return group
        return await self.keys.open_conversation(peer)

    async def rotate(self, peer: str) -> int:
        """Start a new key epoch with ``peer``; return its number."""
        return await self.keys.rotate(peer)

    async def send(
        self,
        peer: str,
        text: str,
        *,
        action: bool = False,
        queue: bool = False,
        reply_to: int | None = None,
    ) -> int | None:
        """Encrypt, sign and send ``text`` (an emote if ``action``, a reply to ``reply_to``);
        return its seq (None if ``queue`` and it waits: :class:`Sender`)."""
        return await self.sender.send(peer, text, action=action, queue=queue, reply_to=reply_to)

    async def react(self, peer: str, seq: int, emoji: str, *, queue: bool = False) -> int | None:
        """React to ``peer``'s message ``seq`` with ``emoji`` (empty takes it back)."""
        return await self.sender.react(peer, seq, emoji, queue=queue)

    async def read(
        self, peer: str, *, since: int = 0, limit: int | None = None
    ) -> list[ChatMessage]:
        """Messages with seq > ``since``, checked."""
        return await self.messaging.read(peer, since=since, limit=limit)

    async def older(
        self, peer: str, before: int, limit: int = 50
    ) -> tuple[list[ChatMessage], bool]:
        """Messages older than ``before``, and whether older ones exist."""
        return await self.messaging.older(peer, before, limit)

    async def mark_read(self, peer: str, seq: int) -> None:
        """Everything up to ``seq`` with ``peer`` has been read (on every device)."""
        await self.messaging.mark_read(peer, seq)

    async def conversations(self) -> list[dict[str, Any]]:
        """Summaries of this user's conversations, most recent first."""
        return await self.messaging.conversations()
