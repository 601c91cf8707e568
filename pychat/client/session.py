"""The client library: one logged-in user on one server, with end-to-end encryption.

:class:`ChatClient` connects over TLS (pinning the server's certificate on first use, or
checking it against a CA), logs in with SRP, keeps the keystore, checks every peer key against
its pin, encrypts and signs what it sends, and verifies what it receives.  Slow work (KDF,
RSA key generation) runs in threads, never on the reactor.  If the connection drops, it
reconnects with backoff, logs in again and fetches what it missed.

Nothing is ever shown as verified unless every check passed: a message that fails one comes
out with ``status="rejected"`` and the reason.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
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
from pychat.client.keystore import (
    KeystoreData,
    KeystoreFile,
    WrongPassword,
    make_key_backup,
    open_key_backup,
)
from pychat.client.pins import ServerPins
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from pychat.crypto.e2e import (
    LATEST_TIME,
    E2EError,
    b64d,
    make_envelope,
    open_envelope,
    open_message,
    safety_number,
    seal_message,
)
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

log = Logger(namespace="pychat.client")

#: Seconds a request may take before the client gives up on it.
REQUEST_TIMEOUT = 30.0
#: The longest key backup the server takes (docs/protocol.md, set_key_backup).
KEY_BACKUP_LIMIT = 16384
#: Reconnect delays: 1 s, doubling, at most this.
RECONNECT_MAX_DELAY = 30.0


class ClientError(Exception):
    """A client-side failure with a message for the user."""


class ConnectError(ClientError):
    """No usable connection: TCP connect or the TLS handshake failed or timed out."""


class NotPyChatServer(ConnectError):
    """The TLS server did not answer ``hello`` as a pyChat server does."""


class MessageTooLong(ClientError):
    """The message is larger than the server's ``max_ciphertext`` allows (the limit is said)."""


class UnsendableText(ClientError):
    """The text cannot be sent as it is (it is not valid Unicode text); nothing was sent."""


def check_sendable(text: str) -> None:
    """Refuse text that is not valid Unicode (lone surrogates, e.g. from bytes that were not
    UTF-8): it could not be encoded, and would otherwise fail deep inside the encryption.

    :raises UnsendableText: naming the first bad position.
    """
    for index, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            raise UnsendableText(
                f"the message is not valid text: position {index} holds a lone surrogate "
                f"<U+{ord(ch):04X}> (was the input valid UTF-8?); nothing was sent"
            )


class ReplyTimeout(ClientError):
    """The server did not answer a request in time."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a TCP connection, the TLS handshake, and each reply."""

    connect: float = 10.0
    handshake: float = 10.0
    request: float = REQUEST_TIMEOUT


class TrustError(ClientError):
    """A certificate or key does not match what was pinned."""


class CertificateChanged(TrustError):
    """The server presented another certificate than the pinned one; nothing was sent."""

    def __init__(self, server: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"DANGER: the certificate of {server} has CHANGED.\n"
            f"  pinned:    {pinned}\n"
            f"  presented: {presented}\n"
            "Someone may be impersonating the server, or its operator replaced the certificate.\n"
            "Nothing was sent. Ask the operator for the new fingerprint (printed when the server\n"
            "starts) and, only if it matches, accept it with:\n"
            f"  pychat accept-server {server} {presented}"
        )
        self.server, self.pinned, self.presented = server, pinned, presented


class PeerKeyChanged(TrustError):
    """A peer's identity key differs from the pinned one; sending is blocked until accepted."""

    def __init__(self, peer: str, pinned: str, current: str, chain_ok: bool) -> None:
        how = (
            "the change is signed by their previous key"
            if chain_ok
            else "the change is NOT signed by their previous key"
        )
        super().__init__(
            f"WARNING: {peer}'s identity key has CHANGED ({how}).\n"
            f"  pinned:  {pinned}\n  current: {current}\n"
            f"Sending to {peer} is blocked. Compare safety numbers with {peer} "
            f"(pychat verify {peer}); if they match, accept the new key with: "
            f"pychat trust {peer}"
        )
        self.peer, self.pinned, self.current, self.chain_ok = peer, pinned, current, chain_ok


@dataclass(frozen=True)
class ChatMessage:
    """A message as the user sees it.  ``text`` is None unless ``status`` is ``verified``."""

    conversation: str
    peer: str
    seq: int
    sender: str
    time: float
    status: str  # "verified" or "rejected"
    text: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """For ``pychat read --json``."""
        return {
            "conversation": self.conversation,
            "peer": self.peer,
            "seq": self.seq,
            "sender": self.sender,
            "time": self.time,
            "status": self.status,
            "text": self.text,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SafetyNumbers:
    """What ``/verify`` shows: the number with the peer's current key and, while a key change
    is pending, the number with the key pinned before it."""

    current: str
    pinned: str | None
    verified: bool
    pending: bool


@dataclass
class ClientEvent:
    """Something that happened: ``kind`` is ``message``, ``presence``, ``read``,
    ``keys_changed`` (an unsigned change: ``user``, ``warning``, ``old_safety``,
    ``new_safety``), ``keys_rotated`` (a signed rotation: ``user``, ``verified``), ``notice``
    (``text``), ``connection`` (state changes) or ``conversation``."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    message: ChatMessage | None = None


def _message_fields(message: Any) -> tuple[str, str, int, float]:
    """(conversation, sender, seq, time) of a message object from the server, with harmless
    stand-ins for whatever is missing or of the wrong type (it is then shown as rejected)."""
    if not isinstance(message, dict):
        message = {}
    conv, sender, seq, sent = (message.get(k) for k in ("conversation", "sender", "seq", "time"))
    return (
        conv if isinstance(conv, str) else "?",
        sender if isinstance(sender, str) else "?",
        seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        float(sent)
        if isinstance(sent, int | float) and not isinstance(sent, bool) and 0 <= sent <= LATEST_TIME
        else 0.0,
    )


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
        self.hello: dict[str, Any] = {}
        self.srp: SrpParams | None = None
        self.username: str | None = None
        self.keystore: KeystoreFile | None = None
        self.data: KeystoreData | None = None
        self.server_fingerprint: str | None = None
        self.listeners: list[Callable[[ClientEvent], None]] = []
        self.last_seen: dict[str, int] = {}
        self._password: str | None = None
        self._closing = False
        self._reconnecting = False
        self.state = "disconnected"
        self.timeouts = timeouts or Timeouts(request=request_timeout)
        self._server_name: str | None = None
        #: Highest epoch seen on the server per conversation, and epochs whose envelope is
        #: wrapped only for identity keys this device does not have.
        self._epochs_on_server: dict[str, int] = {}
        self._unreadable: set[tuple[str, str]] = set()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The server's name for keystores and display: the ``host:port`` its certificate was
        first pinned under (so another address of the same server finds the same keystore)."""
        return self._server_name or str(self.address)

    def _emit(self, event: ClientEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.failure("event listener failed")

    def _set_state(self, state: str, **extra: Any) -> None:
        self.state = state
        self._emit(ClientEvent("connection", {"state": state, **extra}))

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

    def _require_login(self) -> tuple[str, KeystoreData]:
        if self.username is None or self.data is None:
            raise ClientError("not logged in")
        return self.username, self.data

    async def _save(self) -> None:
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
            self.hello = await self.request("hello", version=1, client="pychat")
            self.srp = auth.srp_params_from_hello(self.hello)
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
                self._emit(ClientEvent("notice", {"text": notice}))
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
            since = self.last_seen.get(conv["conversation"])
            if since is None or conv["last_seq"] <= since:
                continue
            for message in await self.read(conv["peer"], since=since):
                self._emit(ClientEvent("message", message=message))

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
                aside = keystore.path.with_suffix(f".old-{int(time.time())}")
                keystore.path.rename(aside)
                log.warn("keystore locked with an older password moved to {p}", p=str(aside))
                self.data = await self._recover(keystore, password)
        else:
            self.data = await self._recover(keystore, password)
        self.keystore = keystore
        self._password = password
        self._set_state("online")
        await self.check_peer_keys()

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
        me, data = self._require_login()
        assert self.srp is not None and self.keystore is not None  # noqa: S101
        backup = await threads.deferToThread(make_key_backup, data.identities, me, new, kdf)
        try:
            await auth.change_password(
                self._need_proto(), self.srp, me, old, new, kdf=kdf, key_backup=backup
            )
        except auth.AuthError as exc:
            raise TrustError(str(exc)) from None
        await threads.deferToThread(self.keystore.set_password, new, kdf)
        await self._save()
        self._password = new

    async def rotate_identity(self) -> str:
        """New identity keys, published signed by the current signing key (so peers see a
        signed rotation, not an unexplained change), kept in the keystore and the key backup
        beside the old ones (old messages stay readable), then a new conversation key in
        every conversation.  Returns the new fingerprint.
        """
        me, data = self._require_login()
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
        await self._save()
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
        limit = int(self.hello.get("limits", {}).get("max_key_backup", 0) or KEY_BACKUP_LIMIT)
        keep = list(identities)
        while True:
            backup = await threads.deferToThread(make_key_backup, keep, me, password, None)
            if len(backup) <= limit or len(keep) == 1:
                if len(keep) < len(identities):
                    log.warn("the key backup keeps the {n} newest identities", n=len(keep))
                return backup
            keep.pop()

    # -- peers and trust -----------------------------------------------------------------------

    def _accepted(self, data: KeystoreData, peer: str) -> list[PublicIdentity]:
        pin = data.pins.get(peer)
        if not pin:
            return []
        return [parse_public_identity(k) for k in pin["accepted"].values()]

    async def peer_identity(self, peer: str) -> PublicIdentity:
        """The peer's current identity, checked against its pin (pinned on first use).

        A change signed by the pinned key (a valid ``key_history`` chain) is accepted at once,
        keeps the verified mark, and emits ``keys_rotated``.  Any other change becomes a
        pending change (``keys_changed`` with both safety numbers is emitted the first time
        it is seen) and raises.

        :raises PeerKeyChanged: the directory shows another key, not signed by the pinned one;
            sending stays blocked until :meth:`trust` accepts it.
        """
        _, data = self._require_login()
        peer = normal_form(peer)
        entry = await self.request("get_keys", username=peer)
        try:
            current = parse_public_identity(entry["public_keys"])
        except (IdentityKeyError, KeyError, TypeError) as exc:
            raise TrustError(f"the server lists malformed keys for {peer}: {exc}") from None
        fingerprint = current.fingerprint()
        pin = data.pins.get(peer)
        if pin is None:
            data.pins[peer] = {
                "fingerprint": fingerprint,
                "key_version": entry.get("key_version", 1),
                "verified": False,
                "accepted": {fingerprint: current.to_json()},
                "pending": None,
            }
            await self._save()
            return current
        if pin["fingerprint"] == fingerprint:
            return current
        pinned = pin["fingerprint"]
        if await self._chain_ok(peer, pinned, fingerprint):
            pin["accepted"][fingerprint] = current.to_json()
            pin["fingerprint"], pin["pending"] = fingerprint, None
            pin["key_version"] = entry.get("key_version", pin.get("key_version", 1))
            await self._save()
            self._emit(
                ClientEvent("keys_rotated", {"user": peer, "verified": bool(pin.get("verified"))})
            )
            return current
        first_sight = (pin.get("pending") or {}).get("fingerprint") != fingerprint
        if first_sight:
            pin["pending"] = {
                "fingerprint": fingerprint,
                "public_keys": current.to_json(),
                "chain_ok": False,
            }
            await self._save()
        change = PeerKeyChanged(peer, pinned, fingerprint, False)
        if first_sight:
            mine = self.my_fingerprint()
            self._emit(
                ClientEvent(
                    "keys_changed",
                    {
                        "user": peer,
                        "warning": str(change),
                        "old_safety": safety_number(mine, pinned),
                        "new_safety": safety_number(mine, fingerprint),
                    },
                )
            )
        raise change

    async def check_peer_keys(self) -> None:
        """Look up every pinned peer's key now (at login), so a change shows before anyone
        types; each change found is emitted as an event."""
        _, data = self._require_login()
        for peer in list(data.pins):
            try:
                await self.peer_identity(peer)
            except PeerKeyChanged:
                pass
            except (RemoteError, TrustError) as exc:
                log.info("checking {p}'s key: {e}", p=peer, e=exc)

    async def _chain_ok(self, peer: str, pinned: str, current: str) -> bool:
        """Whether key_history links ``pinned`` to ``current`` by signatures of each old key."""
        history = (await self.request("key_history", username=peer)).get("history", [])
        try:
            start = next(i for i, h in enumerate(history) if h["fingerprint"] == pinned)
        except (StopIteration, KeyError, TypeError):
            return False
        previous = parse_public_identity(history[start]["public_keys"])
        for entry in history[start + 1 :]:
            try:
                identity = parse_public_identity(entry["public_keys"])
                statement = rotation_statement(peer, entry["key_version"], identity.fingerprint())
                previous.signing_key.verify(
                    b64d(entry["signature"], "rotation signature"), statement
                )
            except (IdentityKeyError, E2EError, InvalidSignature, KeyError, TypeError):
                return False
            previous = identity
        return previous.fingerprint() == current

    async def _pin_if_new(self, peer: str) -> None:
        """Pin a peer seen for the first time (receiving never blocks on a changed key)."""
        _, data = self._require_login()
        if peer not in data.pins:
            try:
                await self.peer_identity(peer)
            except PeerKeyChanged:
                pass

    async def trust(self, peer: str) -> str:
        """Accept the peer's current key after a change, *without* marking it verified (compare
        safety numbers, then :meth:`mark_verified`), and start a new conversation key wrapped
        for the new key so both sides can read at once.  Returns the accepted fingerprint.
        """
        _, data = self._require_login()
        peer = normal_form(peer)
        try:
            current = await self.peer_identity(peer)
        except PeerKeyChanged as exc:
            pin = data.pins[peer]
            pending = pin["pending"]
            pin["accepted"][pending["fingerprint"]] = pending["public_keys"]
            pin["fingerprint"] = exc.current
            pin["pending"] = None
            pin["verified"] = False
            await self._save()
            current = parse_public_identity(pending["public_keys"])
            if conversation_id(self._require_login()[0], peer) in data.conversation_keys:
                await self.rotate(peer)
        return current.fingerprint()

    async def mark_verified(self, peer: str) -> None:
        """Mark the peer verified (after the user compared safety numbers).

        :raises PeerKeyChanged: a key change is pending: accept it with :meth:`trust` first.
        """
        _, data = self._require_login()
        peer = normal_form(peer)
        await self.peer_identity(peer)
        data.pins[peer]["verified"] = True
        await self._save()

    def peer_trust(self, peer: str) -> tuple[bool, bool]:
        """(marked verified, key changed and not yet accepted) for ``peer``, from the pins."""
        _, data = self._require_login()
        pin = data.pins.get(normal_form(peer)) or {}
        return bool(pin.get("verified")), bool(pin.get("pending"))

    def my_fingerprint(self) -> str:
        """This user's identity fingerprint."""
        _, data = self._require_login()
        return data.identity.public().fingerprint()

    async def safety_number(self, peer: str) -> tuple[str, bool]:
        """The pair's safety number and whether the peer is marked verified.

        :raises PeerKeyChanged: while a change is pending (use :meth:`safety_numbers`).
        """
        info = await self.safety_numbers(peer)
        if info.pending:
            await self.peer_identity(peer)  # raises PeerKeyChanged
        return info.current, info.verified

    async def safety_numbers(self, peer: str) -> SafetyNumbers:
        """The safety number with the peer's current key, and while a change is pending, the
        one with the key pinned before it; never raises for a pending change."""
        _, data = self._require_login()
        peer = normal_form(peer)
        try:
            await self.peer_identity(peer)
        except PeerKeyChanged:
            pass
        pin = data.pins[peer]
        mine = self.my_fingerprint()
        pending = pin.get("pending")
        current = pending["fingerprint"] if pending else pin["fingerprint"]
        return SafetyNumbers(
            current=safety_number(mine, current),
            pinned=safety_number(mine, pin["fingerprint"]) if pending else None,
            verified=bool(pin.get("verified")),
            pending=bool(pending),
        )

    # -- conversations -------------------------------------------------------------------------

    def _members(self, peer: str) -> tuple[str, str]:
        me, _ = self._require_login()
        low, high = sorted((me, peer))
        return (low, high)

    async def _open_envelopes(self, conv: str, peer: str, envelopes: list[Any]) -> None:
        me, data = self._require_login()
        keys = data.conversation_keys.setdefault(conv, {})
        changed = False
        for envelope in envelopes:
            epoch = str(envelope.get("epoch")) if isinstance(envelope, dict) else "?"
            if epoch.isdigit():
                self._epochs_on_server[conv] = max(self._epochs_on_server.get(conv, 0), int(epoch))
            if epoch in keys:
                continue
            creator = envelope.get("creator") if isinstance(envelope, dict) else None
            if creator == me:
                candidates = [k.public() for k in data.identities]
            else:
                candidates = self._accepted(data, peer)
            last_error: E2EError | None = None
            for identity in candidates:
                try:
                    opened = open_envelope(
                        envelope,
                        conversation=conv,
                        me=me,
                        my_keys=data.identities,
                        members=self._members(peer),
                        creator_identity=identity,
                    )
                except E2EError as exc:
                    last_error = exc
                    continue
                keys[str(opened.epoch)] = opened.key.decode()
                changed = True
                break
            else:
                if last_error is not None and "not wrapped for any of my keys" in str(last_error):
                    self._unreadable.add((conv, epoch))
                log.warn("refused key envelope {e} of {c}: {r}", e=epoch, c=conv, r=last_error)
        if changed:
            await self._save()

    async def open_conversation(self, peer: str) -> str:
        """The conversation with ``peer`` (created, with epoch 1, if new); its keys loaded.

        If no key envelope of the conversation can be opened here (this device's keys are
        newer than every epoch, after a re-registration), a new epoch is started for both
        sides' current keys, so the conversation goes on.
        """
        me, data = self._require_login()
        peer = normal_form(peer)
        identity = await self.peer_identity(peer)
        conv = conversation_id(me, peer)
        if data.conversation_keys.get(conv):
            return conv
        key = Fernet.generate_key()
        envelope = make_envelope(
            conv, 1, me, data.identity, {me: data.identity.public(), peer: identity}, key
        )
        reply = await self.request("open_conversation", peer=peer, envelope=envelope)
        await self._open_envelopes(conv, peer, reply["envelopes"])
        if not data.conversation_keys.get(conv):
            await self._start_epoch(conv, peer, identity)
            self._emit(
                ClientEvent(
                    "notice",
                    {
                        "user": peer,
                        "text": f"started a new key with {peer}: the earlier ones are not "
                        "readable on this device",
                    },
                )
            )
        return conv

    async def _refresh_epochs(self, conv: str, peer: str) -> None:
        await self._pin_if_new(peer)
        reply = await self.request("epochs", conversation=conv)
        await self._open_envelopes(conv, peer, reply["envelopes"])

    async def _start_epoch(self, conv: str, peer: str, identity: PublicIdentity) -> int:
        """Add the next epoch, wrapped for both current keys; retry once if the peer added
        one at the same moment."""
        me, data = self._require_login()
        for attempt in (1, 2):
            epoch = self._epochs_on_server.get(conv, 0) + 1
            key = Fernet.generate_key()
            envelope = make_envelope(
                conv, epoch, me, data.identity, {me: data.identity.public(), peer: identity}, key
            )
            try:
                await self.request("add_epoch", conversation=conv, envelope=envelope)
            except RemoteError as exc:
                if exc.code != "bad_epoch" or attempt == 2:
                    raise
                await self._refresh_epochs(conv, peer)
                continue
            self._epochs_on_server[conv] = epoch
            data.conversation_keys.setdefault(conv, {})[str(epoch)] = key.decode()
            await self._save()
            return epoch
        raise AssertionError("not reached")  # pragma: no cover

    async def rotate(self, peer: str) -> int:
        """Start a new key epoch in the conversation with ``peer``; return its number."""
        peer = normal_form(peer)
        conv = await self.open_conversation(peer)
        identity = await self.peer_identity(peer)
        await self._refresh_epochs(conv, peer)
        return await self._start_epoch(conv, peer, identity)

    async def send(self, peer: str, text: str) -> int:
        """Encrypt, sign and send ``text`` to ``peer``; return its sequence number.

        :raises PeerKeyChanged: the peer's key changed and was not accepted yet.
        """
        me, data = self._require_login()
        check_sendable(text)
        peer = normal_form(peer)
        conv = await self.open_conversation(peer)
        await self.peer_identity(peer)
        keys = data.conversation_keys[conv]
        epoch = max(int(e) for e in keys)
        counter, reserved = data.next_counter()
        if reserved:
            await self._save()  # the block is on disk before any counter of it is used
        inner = {
            "v": 1,
            "sender": me,
            "device": data.device_id,
            "recipient": peer,
            "conversation": conv,
            "epoch": epoch,
            "counter": counter,
            "time": time.time(),
            "body": text,
        }
        ciphertext = seal_message(keys[str(epoch)].encode(), data.identity, inner)
        max_len = int(self.hello.get("limits", {}).get("max_ciphertext", 0) or 0)
        if max_len and len(ciphertext) > max_len:
            about = len(text) * max_len // len(ciphertext)
            raise MessageTooLong(
                f"message too long: {len(text)} characters make {len(ciphertext)} bytes of "
                f"ciphertext; this server takes at most {max_len} bytes of ciphertext, "
                f"about {about} characters like these"
            )
        reply = await self.request(
            "send",
            conversation=conv,
            epoch=epoch,
            ciphertext=ciphertext,
            client_id=f"{data.device_id}-{counter}",
        )
        seq = int(reply["seq"])
        self.last_seen[conv] = max(self.last_seen.get(conv, 0), seq)
        return seq

    async def _decrypt(self, peer: str, message: Any) -> ChatMessage:
        me, data = self._require_login()
        fields = _message_fields(message)
        conv, sender, seq, sent = fields

        def rejected(reason: str) -> ChatMessage:
            return ChatMessage(conv, peer, seq, sender, sent, "rejected", None, reason)

        if not isinstance(message, dict) or not isinstance(message.get("ciphertext"), str):
            return rejected("the server sent a malformed message")
        if not isinstance(message.get("epoch"), int) or isinstance(message.get("epoch"), bool):
            return rejected("the server sent a message without a valid epoch")
        if sender not in (me, peer):
            return rejected(f"sender {sender!r} is not a member of this conversation")
        epoch = message.get("epoch")
        keys = data.conversation_keys.get(conv, {})
        if (conv, str(epoch)) in self._unreadable:
            return rejected(f"sent before {me}'s key change (unreadable on this device)")
        if str(epoch) not in keys:
            await self._refresh_epochs(conv, peer)
            keys = data.conversation_keys.get(conv, {})
            if str(epoch) not in keys:
                if (conv, str(epoch)) in self._unreadable:
                    return rejected(f"sent before {me}'s key change (unreadable on this device)")
                return rejected(f"no trusted key for epoch {epoch}")
        if sender == me:
            identities = [k.public() for k in data.identities]
        else:
            identities = self._accepted(data, peer)
        recipient = peer if sender == me else me
        opened = None
        reason = "no trusted key of the sender"
        for identity in identities:
            try:
                opened = open_message(
                    message["ciphertext"],
                    keys[str(epoch)].encode(),
                    sender=sender,
                    sender_identity=identity,
                    recipient=recipient,
                    conversation=conv,
                    epoch=int(epoch),  # type: ignore[arg-type]
                )
                break
            except E2EError as exc:
                reason = str(exc)
        if opened is None:
            pending = (data.pins.get(peer) or {}).get("pending") if sender == peer else None
            if pending:
                reason += (
                    f" ({peer}'s key changed: compare safety numbers, then pychat trust {peer})"
                )
            return rejected(reason)
        problem = data.check_counter(conv, sender, opened.device, seq, opened.counter)
        if problem:
            return rejected(problem)
        return ChatMessage(conv, peer, seq, sender, opened.time, "verified", opened.body, None)

    async def _decrypt_all(self, peer: str, messages: list[dict[str, Any]]) -> list[ChatMessage]:
        out = [await self._decrypt(peer, m) for m in messages]
        if out:
            conv = out[0].conversation
            self.last_seen[conv] = max(self.last_seen.get(conv, 0), max(m.seq for m in out))
            await self._save()
        return out

    async def read(
        self, peer: str, *, since: int = 0, limit: int | None = None
    ) -> list[ChatMessage]:
        """Messages with seq > ``since`` (all of them, or the first ``limit``), checked."""
        me, _ = self._require_login()
        peer = normal_form(peer)
        conv = conversation_id(me, peer)
        try:
            await self._refresh_epochs(conv, peer)
        except RemoteError as exc:
            if exc.code == "unknown_conversation":
                return []
            raise
        collected: list[dict[str, Any]] = []
        after = since
        while limit is None or len(collected) < limit:
            page_size = 100 if limit is None else min(100, limit - len(collected))
            page = await self.request("history", conversation=conv, after=after, limit=page_size)
            collected += page["messages"]
            if not page["has_more"] or not page["messages"]:
                break
            after = page["messages"][-1]["seq"]
        return await self._decrypt_all(peer, collected)

    async def older(
        self, peer: str, before: int, limit: int = 50
    ) -> tuple[list[ChatMessage], bool]:
        """Messages older than ``before`` (the newest if 0), and whether older ones exist."""
        me, _ = self._require_login()
        peer = normal_form(peer)
        conv = conversation_id(me, peer)
        fields: dict[str, Any] = {"conversation": conv, "limit": limit}
        if before:
            fields["before"] = before
        try:
            page = await self.request("history", **fields)
        except RemoteError as exc:
            if exc.code == "unknown_conversation":
                return [], False
            raise
        return await self._decrypt_all(peer, page["messages"]), bool(page["has_more"])

    async def mark_read(self, peer: str, seq: int) -> None:
        """Everything up to ``seq`` with ``peer`` has been read (on every device)."""
        me, _ = self._require_login()
        await self.request(
            "mark_read", conversation=conversation_id(me, normal_form(peer)), seq=seq
        )

    async def conversations(self) -> list[dict[str, Any]]:
        """Summaries of this user's conversations, most recent first."""
        return list((await self.request("conversations"))["conversations"])

    # -- pushes --------------------------------------------------------------------------------

    def _on_push(self, event: dict[str, Any]) -> None:
        def failed(failure: Failure) -> None:
            if failure.check(ConnectionClosed):
                return  # the connection went while we were handling it; catch-up will redo it
            log.failure("handling a push failed", failure=failure)

        defer.ensureDeferred(self._handle_push(event)).addErrback(failed)

    async def _handle_push(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "message" and self.username is not None:
            sender = event.get("sender")
            conv = event.get("conversation")
            peer = sender if sender != self.username else None
            if peer is None:
                peer = next(
                    (c["peer"] for c in await self.conversations() if c["conversation"] == conv),
                    None,
                )
            if peer is None:
                return
            (message,) = await self._decrypt_all(str(peer), [event])
            self._emit(ClientEvent("message", dict(event), message))
        elif kind == "keys_changed":
            peer = event.get("user")
            if not isinstance(peer, str) or peer == self.username:
                return
            with suppress(PeerKeyChanged):  # peer_identity emitted what the user must see
                await self.peer_identity(peer)
        elif kind == "closing":
            self._emit(ClientEvent("connection", {"state": "closing", **event}))
        elif isinstance(kind, str):
            self._emit(ClientEvent(kind, dict(event)))
