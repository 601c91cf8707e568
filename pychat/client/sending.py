"""Sending through the outbox: in order, once, across dropped connections and restarts.

Every message is given its counter and ``client_id`` when it is written.  A *queued* send
(the TUI, ``pychat send --queue``) puts it in the durable outbox first
(:mod:`pychat.client.outbox`), then sends the outbox in order; what the server does not
acknowledge stays there, shown as pending, and goes out with the same ``client_id`` on the
next login or reconnect.  A plain send sends what is waiting first, then the message, and
raises if it cannot: nothing is kept.

One send runs at a time (a lock), so messages leave in the order they were written and their
counters rise with their sequence numbers, as receivers require.

Events (:class:`~pychat.client.events.ClientEvent` of kind ``outbox``): ``queued`` (written,
not acknowledged yet), ``sent`` (with ``seq``) and ``failed`` (refused for good, with
``reason``; it left the outbox), each with the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from pychat.client.context import ClientContext
from pychat.client.errors import ClientError, ConnectError, ReplyTimeout
from pychat.client.events import ClientEvent
from pychat.client.keystore import KeystoreFile
from pychat.client.messaging import Messaging
from pychat.client.outbox import OutboxEntry, OutboxFile, OutboxUnreadable
from pychat.client.protocol import ConnectionClosed, RemoteError
from pychat.client.references import check_reaction

log = Logger(namespace="pychat.client")

#: Server error codes after which the same message may succeed later (protocol.md §errors).
RETRY_CODES = frozenset(
    {"rate_limited", "storage_full", "storage_error", "internal_error", "wrong_state"}
)


def is_transient(exc: BaseException) -> bool:
    """Whether sending may work later: no connection, no answer, or a server that asks for a
    retry.  Anything else (an unknown peer, a changed key, a message too long) is for good."""
    if isinstance(exc, RemoteError):
        return exc.code in RETRY_CODES
    return isinstance(exc, ConnectionClosed | ReplyTimeout | ConnectError)


class Sender:
    """One logged-in user's sending, through the outbox.

    :param keystore: the logged-in user's keystore (the outbox lies beside it).
    """

    def __init__(
        self,
        ctx: ClientContext,
        messaging: Messaging,
        keystore: Callable[[], KeystoreFile | None],
    ) -> None:
        self._ctx = ctx
        self._messaging = messaging
        self._keystore = keystore
        self._lock = defer.DeferredLock()

    async def send(
        self,
        peer: str,
        text: str,
        *,
        action: bool = False,
        queue: bool = False,
        reply_to: int | None = None,
    ) -> int | None:
        """Send ``text`` to ``peer`` (an emote with ``action``, a reply to message
        ``reply_to``) after what is waiting in the outbox; return its seq.

        With ``queue``, the message is in the outbox before it is first sent, and None is
        returned when the server did not acknowledge it (it stays queued).

        :raises ClientError: the message was refused for good (for a queued one: it left the
            outbox).  Without ``queue`` also when it could not be sent now.
        """
        if reply_to is None:
            return await self.send_kind(peer, text, "action" if action else "text", None, queue)
        reference = await self._messaging.reference_to(peer, reply_to, quote=True)
        return await self.send_kind(peer, text, "reply", reference.to_json(), queue)

    async def react(self, peer: str, seq: int, emoji: str, *, queue: bool = False) -> int | None:
        """React to message ``seq`` with ``emoji`` (empty: take the reaction back)."""
        check_reaction(emoji)
        reference = await self._messaging.reference_to(peer, seq, quote=False)
        return await self.send_kind(peer, emoji, "reaction", reference.to_json(), queue)

    async def send_kind(
        self, peer: str, text: str, kind: str, data: dict[str, Any] | None, queue: bool = False
    ) -> int | None:
        """Send a message of a structured ``kind`` with its signed ``data`` (as :meth:`send`)."""
        async with self._lock:
            if not queue:
                await self._drain(raise_transient=True)
                entry = await self._messaging.new_entry(peer, text, kind=kind, data=data)
                return await self._messaging.deliver(entry)
            entry = await self._messaging.new_entry(peer, text, kind=kind, data=data)
            outbox = await self._file()
            entries = self._load(outbox)
            entries.append(entry)
            outbox.save(entries)
            self._emit("queued", entry)
            sent = await self._drain(must_raise=entry.client_id)
            return sent.get(entry.client_id)

    async def flush(self) -> None:
        """Send what is waiting, in order, until the server stops acknowledging."""
        async with self._lock:
            await self._drain()

    async def pending(self) -> list[OutboxEntry]:
        """The messages waiting in the outbox, oldest first."""
        return self._load(await self._file())

    async def _file(self) -> OutboxFile:
        me, data = self._ctx.require_login()
        keystore = self._keystore()
        if keystore is None:
            raise ClientError("not logged in")
        key, made = data.local_files_key()
        if made:
            await self._ctx.save()  # the key is kept before anything is sealed with it
        return OutboxFile(keystore.path, key, data.server, me)

    def _load(self, outbox: OutboxFile) -> list[OutboxEntry]:
        try:
            return outbox.load()
        except OutboxUnreadable as exc:
            log.warn("{e}", e=str(exc))
            self._ctx.emit(ClientEvent("notice", {"text": str(exc)}))
            return []

    async def _drain(
        self, *, raise_transient: bool = False, must_raise: str | None = None
    ) -> dict[str, int]:
        """Send the outbox in order; return the seq of each message acknowledged.  Stops at
        the first message that may go later (raising it with ``raise_transient``); one refused
        for good leaves the outbox with a ``failed`` event, and is raised if it is the
        ``must_raise`` message."""
        outbox = await self._file()
        entries = self._load(outbox)
        sent: dict[str, int] = {}
        while entries:
            entry = entries[0]
            try:
                seq = await self._messaging.deliver(entry)
            except (ClientError, ConnectionClosed, RemoteError) as exc:
                if is_transient(exc):
                    if raise_transient:
                        raise
                    return sent
                del entries[0]
                outbox.save(entries)
                self._emit("failed", entry, reason=_reason(exc))
                if entry.client_id == must_raise:
                    raise
                continue
            del entries[0]
            outbox.save(entries)
            sent[entry.client_id] = seq
            self._emit("sent", entry, seq=seq)
        return sent

    def _emit(self, state: str, entry: OutboxEntry, **extra: object) -> None:
        self._ctx.emit(ClientEvent("outbox", {"state": state, "entry": entry, **extra}))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return f"{exc.message or exc.code} ({exc.code})"
    return str(exc)
