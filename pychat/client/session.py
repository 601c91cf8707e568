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

import inspect
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, task, threads
from twisted.internet import reactor as default_reactor
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import Certificate, CertificateOptions, optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.client import auth
from pychat.client.address import ServerAddress
from pychat.client.device_tokens import DeviceTokens
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
from pychat.client.keystore import (
    KeystoreData,
    KeystoreFile,
    WrongPassword,
    make_key_backup,
    open_key_backup,
)
from pychat.client.messaging import Messaging
from pychat.client.peer_trust import PeerTrust
from pychat.client.pins import ServerPins
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from pychat.crypto.identity import (
    IdentityKeyError,
    IdentityKeyPair,
    PublicIdentity,
    parse_public_identity,
    rotation_statement,
)
from pychat.crypto.kdf import KdfParams
from pychat.encoding import b64encode
from pychat.srp import SrpParams
from pychat.tls import certificate_fingerprint
from pychat.usernames import normal_form
from pychat.wire.ids import conversation_id

__all__ = [
    "CertificateChanged", "ChatClient", "ChatMessage", "ClientError", "ClientEvent",
    "ConnectError", "MessageTooLong", "NotPyChatServer", "PeerKeyChanged", "ReplyTimeout",
    "SafetyNumbers", "Timeouts", "TrustError", "UnsendableText", "check_sendable",
]  # fmt: skip

log = Logger(namespace="pychat.client")

#: Seconds a request may take before the client gives up on it.
REQUEST_TIMEOUT = 30.0
#: The longest key backup the server takes (docs/protocol.md, set_key_backup).
KEY_BACKUP_LIMIT = 16384
#: Reconnect delays: 1 s, doubling, at most this.
RECONNECT_MAX_DELAY = 30.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a TCP connection, the TLS handshake, and each reply."""

    connect: float = 10.0
    handshake: float = 10.0
    request: float = REQUEST_TIMEOUT


class ChatClient:
    """One user's connection to one server.

    :param address: the server.
    :param home: the client's data dir (keystores, known servers).
    :param ca: a CA certificate (PEM) to verify the server with instead of pinning.
    :param on_new_server: asked with ``(server, fingerprint)`` on first contact; return
        False to refuse (the TUI asks the user; the CLI accepts and reports it).
    """

    def __init__(
        self,
        address: ServerAddress,
        home: Path,
        *,
        ca: Path | None = None,
        on_new_server: Callable[[str, str], bool | Awaitable[bool]] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        timeouts: Timeouts | None = None,
        reactor: Any = None,
    ) -> None:
        self.address = address
        self.home = home
        self.ca = ca
        self.on_new_server = on_new_server or (lambda server, fp: True)
        self.reactor = reactor or default_reactor
        self.pins = ServerPins(home)
        self.proto: ClientProtocol | None = None
        self.hello_reply: dict[str, Any] = {}
        self.srp: SrpParams | None = None
        self.username: str | None = None
        self.keystore: KeystoreFile | None = None
        self.data: KeystoreData | None = None
        self.server_fingerprint: str | None = None
        self.listeners: list[Callable[[ClientEvent], None]] = []
        self._password: str | None = None
        self._closing = False
        self._reconnecting = False
        self.state = "disconnected"
        self.timeouts = timeouts or Timeouts(request=request_timeout)
        self._server_name: str | None = None
        self.trust_store = PeerTrust(self)
        self.keys = ConversationKeys(self, self.trust_store)
        self.messaging = Messaging(self, self.trust_store, self.keys)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The server's name for keystores and display: the ``host:port`` its certificate was
        first pinned under (so another address of the same server finds the same keystore)."""
        return self._server_name or str(self.address)

    def emit(self, event: ClientEvent) -> None:
        """Tell every listener (exceptions in one are logged, never raised here)."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.failure("event listener failed")

    def _set_state(self, state: str, **extra: Any) -> None:
        self.state = state
        self.emit(ClientEvent("connection", {"state": state, **extra}))

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request with a timeout; raises RemoteError, ConnectionClosed or TimeoutError."""
        if self.proto is None or self.proto.is_closed:
            raise ConnectionClosed("not connected")
        d = self.proto.request(op, **fields)
        d.addTimeout(self.timeouts.request, self.reactor)
        try:
            return await d
        except defer.TimeoutError:
            raise ReplyTimeout(
                f"the server did not answer {op} within {self.timeouts.request:g} s"
            ) from None

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
            await threads.deferToThread(self.keystore.save, self.data)

    # -- connecting ----------------------------------------------------------------------------

    def _tls_options(self) -> Any:
        if self.ca is not None:
            try:
                root = Certificate.loadPEM(self.ca.read_bytes())
            except OSError as exc:
                raise ClientError(f"cannot read CA certificate {self.ca}: {exc.strerror}") from None
            return optionsForClientTLS(self.address.host, trustRoot=root)
        return CertificateOptions()  # verified below, by pin

    async def connect(self) -> None:
        """Open the TLS connection, check the certificate, say hello.

        Nothing is sent before the certificate is checked (and, on first contact, accepted).

        :raises CertificateChanged: the pinned certificate differs (nothing was sent).
        :raises TrustError: the user (or ``on_new_server``) refused a new server.
        :raises ConnectError: no TCP connection, no TLS handshake, or no pyChat ``hello``
            within the timeouts.
        """
        self._set_state("connecting")
        try:
            proto = await self._open_tls()
        except Exception:
            self._set_state("disconnected")
            raise
        try:
            fingerprint = self._peer_fingerprint(proto)
            if self.ca is None:
                await self._check_pin(proto, fingerprint)
        except Exception:
            proto.close()
            self._set_state("disconnected")
            raise
        self.server_fingerprint = fingerprint
        self.proto = proto
        proto.on_event = self._on_push
        proto.closed_d.addCallback(lambda _: self._lost(proto))
        try:
            self.hello_reply = await self.request("hello", version=1, client="pychat")
            self.srp = auth.srp_params_from_hello(self.hello_reply)
        except (ClientError, ConnectionClosed, RemoteError, auth.AuthError) as exc:
            proto.close()
            self._set_state("disconnected")
            raise NotPyChatServer(
                f"{self.address} is not a pyChat server (or not a compatible version): "
                f"its answer to hello was unusable ({exc})"
            ) from None
        self._set_state("connected")

    async def _open_tls(self) -> ClientProtocol:
        endpoint = SSL4ClientEndpoint(
            self.reactor,
            self.address.host,
            self.address.port,
            self._tls_options(),
            timeout=max(1, int(self.timeouts.connect + 0.5)),
        )
        try:
            proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
        except Exception as exc:
            raise ConnectError(f"cannot connect to {self.address}: {exc}") from None
        handshake = proto.handshake_d
        handshake.addTimeout(self.timeouts.handshake, self.reactor)
        try:
            await handshake
        except defer.TimeoutError:
            proto.close()
            raise ConnectError(
                f"cannot connect to {self.address}: the TLS handshake did not finish within "
                f"{self.timeouts.handshake:g} s (is it a TLS server?)"
            ) from None
        except Exception as exc:
            proto.close()
            raise ConnectError(f"cannot connect to {self.address}: {exc}") from None
        return proto

    @staticmethod
    def _peer_fingerprint(proto: ClientProtocol) -> str:
        cert = proto.transport.getPeerCertificate()  # type: ignore[union-attr]
        der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
        return certificate_fingerprint(der)

    async def _check_pin(self, proto: ClientProtocol, fingerprint: str) -> None:
        """Compare with the pin of the address typed; on first contact, recognise the server
        by its certificate or ask ``on_new_server``."""
        typed = str(self.address)
        pinned = self.pins.get(typed)
        if pinned is None:
            known_as = self.pins.server_with(fingerprint)
            if known_as is not None:
                self.pins.pin(typed, fingerprint, same_as=known_as)
                notice = f"{typed} is the same server as {known_as}"
                self.emit(ClientEvent("notice", {"text": notice}))
            else:
                decision = self.on_new_server(typed, fingerprint)
                if inspect.isawaitable(decision):
                    decision = await decision
                if not decision:
                    proto.close()
                    raise TrustError(
                        f"the certificate of {typed} was not accepted; nothing was sent"
                    )
                self.pins.pin(typed, fingerprint)
        elif pinned != fingerprint:
            proto.close()
            raise CertificateChanged(typed, pinned, fingerprint)
        self._server_name = self.pins.canonical(typed)

    def stop_reconnecting(self) -> None:
        """Do not reconnect when the connection drops (the program is ending)."""
        self._closing = True

    async def close(self) -> None:
        """Close the connection; no reconnecting after this."""
        self._closing = True
        if self.proto is not None and not self.proto.is_closed:
            self.proto.close()
            await self.proto.closed_d
        self._set_state("disconnected")

    def _lost(self, proto: ClientProtocol) -> None:
        if proto is not self.proto:
            return
        if self._closing or self._password is None:
            self._set_state("disconnected")
            return
        if not self._reconnecting:
            defer.ensureDeferred(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        self._reconnecting = True
        delay = 1.0
        try:
            while not self._closing:
                self._set_state("reconnecting", delay=delay)
                await task.deferLater(self.reactor, delay, lambda: None)
                if self._closing:
                    return
                try:
                    await self.connect()
                    assert self.username is not None and self._password is not None  # noqa: S101
                    await self._srp_login(self.username, self._password)
                    self._set_state("online")
                    await self.catch_up()
                    return
                except TrustError as exc:
                    self._set_state("refused", reason=str(exc))
                    return
                except Exception as exc:  # try again later
                    log.info("reconnect failed: {e}", e=exc)
                    delay = min(RECONNECT_MAX_DELAY, delay * 2)
        finally:
            self._reconnecting = False

    async def catch_up(self) -> None:
        """Fetch what arrived while disconnected and emit it as message events."""
        for conv in await self.conversations():
            since = self.messaging.last_seen.get(conv["conversation"])
            if since is None or conv["last_seq"] <= since:
                continue
            for message in await self.read(conv["peer"], since=since):
                self.emit(ClientEvent("message", message=message))

    # -- accounts ------------------------------------------------------------------------------

    async def signup(self, username: str, password: str, *, kdf: KdfParams | None = None) -> str:
        """Create an account with new identity keys and a local keystore; return its name."""
        if self.proto is None or self.srp is None:
            await self.connect()
        assert self.srp is not None  # noqa: S101
        name = normal_form(username)
        keystore = KeystoreFile(self.home, self.server, name)
        if keystore.exists():
            raise ClientError(
                f"a keystore for {name} on {self.server} already exists: {keystore.path}"
            )
        identity = await threads.deferToThread(IdentityKeyPair.generate)
        backup = await threads.deferToThread(make_key_backup, [identity], name, password, kdf)
        name = await auth.signup(
            self._need_proto(),
            self.srp,
            username,
            password,
            identity.public().to_json(),
            kdf=kdf,
            key_backup=backup,
        )
        data = KeystoreData(server=self.server, username=name, identities=[identity])
        await threads.deferToThread(keystore.set_password, password, kdf)
        await threads.deferToThread(keystore.save, data)
        return name

    def _need_proto(self) -> ClientProtocol:
        if self.proto is None:
            raise ClientError("not connected")
        return self.proto

    async def _srp_login(self, username: str, password: str) -> None:
        assert self.srp is not None  # noqa: S101
        tokens = DeviceTokens(self.home)
        name = normal_form(username)
        try:
            result = await auth.login(
                self._need_proto(),
                self.srp,
                username,
                password,
                device_token=tokens.get(self.server, name),
            )
        except auth.AuthError as exc:
            raise TrustError(str(exc)) from None
        self.username = result.username
        if result.device_token:
            tokens.put(self.server, result.username, result.device_token)

    async def login(self, username: str, password: str) -> None:
        """Log in and open (or rebuild from the server's key backup) the local keystore.

        :raises RemoteError: ``auth_failed``, ``rate_limited`` ...
        :raises TrustError: the server failed mutual authentication, or offers keys for this
            user that are not the user's.
        :raises KeystoreError: the local keystore is damaged (it is left untouched).
        """
        if self.proto is None or self.srp is None:
            await self.connect()
        await self._srp_login(username, password)
        assert self.username is not None  # noqa: S101
        keystore = KeystoreFile(self.home, self.server, self.username)
        if keystore.exists():
            try:
                self.data = await threads.deferToThread(keystore.unlock, password)
            except WrongPassword:
                # The password changed on another device: rebuild from the server's backup
                # and keep the old file aside (it opens with the old password).
                aside = keystore.path.with_suffix(f".old-{int(self.now())}")
                keystore.path.rename(aside)
                log.warn("keystore locked with an older password moved to {p}", p=str(aside))
                self.data = await self._recover(keystore, password)
        else:
            self.data = await self._recover(keystore, password)
        self.keystore = keystore
        self._password = password
        self._set_state("online")
        await self.trust_store.check_peer_keys()

    async def _recover(self, keystore: KeystoreFile, password: str) -> KeystoreData:
        """A new keystore from the server's key backup (a new machine)."""
        assert self.username is not None  # noqa: S101
        blob = (await self.request("get_key_backup")).get("key_backup")
        if not blob:
            raise ClientError(
                "this account has no key backup on the server; use the machine you signed up on"
            )
        identities = await threads.deferToThread(open_key_backup, blob, self.username, password)
        mine = await self.request("get_keys", username=self.username)
        try:
            listed = parse_public_identity(mine["public_keys"])
        except IdentityKeyError as exc:
            raise TrustError(f"the server lists malformed keys for you: {exc}") from None
        if listed.fingerprint() != identities[0].public().fingerprint():
            raise TrustError(
                "the server lists keys for you that are not the ones in your key backup"
            )
        data = KeystoreData(server=self.server, username=self.username, identities=identities)
        await threads.deferToThread(keystore.set_password, password, None)
        await threads.deferToThread(keystore.save, data)
        return data

    async def change_password(self, old: str, new: str, *, kdf: KdfParams | None = None) -> None:
        """Change the password on the server, the key backup and the local keystore."""
        me, data = self.require_login()
        assert self.srp is not None and self.keystore is not None  # noqa: S101
        backup = await threads.deferToThread(make_key_backup, data.identities, me, new, kdf)
        try:
            await auth.change_password(
                self._need_proto(), self.srp, me, old, new, kdf=kdf, key_backup=backup
            )
        except auth.AuthError as exc:
            raise TrustError(str(exc)) from None
        await threads.deferToThread(self.keystore.set_password, new, kdf)
        await self.save()
        self._password = new

    async def rotate_identity(self) -> str:
        """New identity keys, published signed by the current signing key (so peers see a
        signed rotation, not an unexplained change), kept in the keystore and the key backup
        beside the old ones (old messages stay readable), then a new conversation key in
        every conversation.  Returns the new fingerprint.
        """
        me, data = self.require_login()
        assert self._password is not None  # noqa: S101 - set by login
        new = await threads.deferToThread(IdentityKeyPair.generate)
        entry = await self.request("get_keys", username=me)
        version = int(entry.get("key_version", 1)) + 1
        fingerprint = new.public().fingerprint()
        signature = data.identity.signing.sign(rotation_statement(me, version, fingerprint))
        identities = [new, *data.identities]
        backup = await self._backup_that_fits(identities, me, self._password)
        await self.request(
            "rotate_keys", public_keys=new.public().to_json(), signature=b64encode(signature)
        )
        data.identities = identities
        await self.save()
        await self.request("set_key_backup", key_backup=backup)
        for conv in await self.conversations():
            peer = conv.get("peer")
            if not isinstance(peer, str):
                continue
            try:
                await self.rotate(peer)
            except (PeerKeyChanged, RemoteError, TrustError) as exc:
                log.info("no new key with {p} after the rotation: {e}", p=peer, e=exc)
        return fingerprint

    async def _backup_that_fits(
        self, identities: list[IdentityKeyPair], me: str, password: str
    ) -> str:
        """The key backup of as many identities (newest first) as the server's limit takes."""
        limit = int(self.hello_reply.get("limits", {}).get("max_key_backup", 0) or KEY_BACKUP_LIMIT)
        keep = list(identities)
        while True:
            backup = await threads.deferToThread(make_key_backup, keep, me, password, None)
            if len(backup) <= limit or len(keep) == 1:
                if len(keep) < len(identities):
                    log.warn("the key backup keeps the {n} newest identities", n=len(keep))
                return backup
            keep.pop()

    # -- ClientContext --------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """The server's ``hello`` reply."""
        return self.hello_reply

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
        """The conversation with ``peer`` (created if new); its keys loaded."""
        return await self.keys.open_conversation(peer)

    async def rotate(self, peer: str) -> int:
        """Start a new key epoch with ``peer``; return its number."""
        return await self.keys.rotate(peer)

    async def send(self, peer: str, text: str) -> int:
        """Encrypt, sign and send ``text`` to ``peer``; return its sequence number."""
        return await self.messaging.send(peer, text)

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

    # -- pushes --------------------------------------------------------------------------------

    def _on_push(self, event: dict[str, Any]) -> None:
        def failed(failure: Failure) -> None:
            if failure.check(ConnectionClosed):
                return  # the connection went while we were handling it; catch-up will redo it
            log.failure("handling a push failed", failure=failure)

        defer.ensureDeferred(self._handle_push(event)).addErrback(failed)

    async def _handle_push(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        handler = self._PUSHES.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            await handler(self, event)
        elif isinstance(kind, str):
            self.emit(ClientEvent(kind, dict(event)))

    async def _push_message(self, event: dict[str, Any]) -> None:
        if self.username is None:
            return
        sender, conv = event.get("sender"), event.get("conversation")
        peer = sender if sender != self.username else None
        if peer is None:
            summaries = await self.conversations()
            peer = next((c["peer"] for c in summaries if c["conversation"] == conv), None)
        if peer is None:
            return
        (message,) = await self.messaging.decrypt_all(str(peer), [event])
        self.emit(ClientEvent("message", dict(event), message))

    async def _push_keys_changed(self, event: dict[str, Any]) -> None:
        peer = event.get("user")
        if not isinstance(peer, str) or peer == self.username:
            return
        with suppress(PeerKeyChanged):  # peer_identity emitted what the user must see
            await self.trust_store.peer_identity(peer)

    async def _push_closing(self, event: dict[str, Any]) -> None:
        self.emit(ClientEvent("connection", {"state": "closing", **event}))

    _PUSHES: ClassVar[dict[str, Callable[[ChatClient, dict[str, Any]], Awaitable[None]]]] = {
        "message": _push_message,
        "keys_changed": _push_keys_changed,
        "closing": _push_closing,
    }
