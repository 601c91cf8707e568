"""A user's account from the client's side: sign up, log in (opening or rebuilding the local
keystore), change the password, rotate the identity keys.

:class:`AccountActions` works on a :class:`ConnectedClient` (the
:class:`~pychat.client.session.ChatClient` is one): the open connection and SRP parameters,
and the logged-in state it fills in (username, keystore, password).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from twisted.logger import Logger

from pychat.client import auth
from pychat.client.blocking import BlockingRunner
from pychat.client.device_tokens import DeviceTokens
from pychat.client.errors import ClientError, PeerKeyChanged, TrustError
from pychat.client.events import ClientEvent
from pychat.client.keystore import (
    KeystoreData,
    KeystoreFile,
    WrongPassword,
    make_key_backup,
    open_key_backup,
)
from pychat.client.own_keys import check_own_keys
from pychat.client.peer_trust import PeerTrust
from pychat.client.pins import ServerPins
from pychat.client.protocol import RemoteError
from pychat.client.server_session import ServerSession
from pychat.crypto.identity import (
    IdentityKeyError,
    IdentityKeyPair,
    parse_public_identity,
    rotation_statement,
)
from pychat.crypto.kdf import KdfParams
from pychat.wire.encoding import b64encode
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")

#: The longest key backup the server takes (docs/protocol.md, set_key_backup).
KEY_BACKUP_LIMIT = 16384


class ConnectedClient(Protocol):
    """What account operations use of the client."""

    home: Path
    connection: ServerSession
    username: str | None
    data: KeystoreData | None
    keystore: KeystoreFile | None
    password: str | None
    trust_store: PeerTrust
    run_blocking: BlockingRunner
    pins: ServerPins

    @property
    def server(self) -> str: ...
    async def connect(self) -> None: ...
    def set_state(self, state: str, **extra: Any) -> None: ...
    async def request(self, op: str, **fields: Any) -> dict[str, Any]: ...
    async def save(self) -> None: ...
    def require_login(self) -> tuple[str, KeystoreData]: ...
    def now(self) -> float: ...
    async def conversations(self) -> list[dict[str, Any]]: ...
    async def rotate(self, peer: str) -> int: ...
    def emit(self, event: ClientEvent) -> None: ...
    def hello(self) -> dict[str, Any]: ...


class AccountActions:
    """Account operations of one client."""

    def __init__(self, client: ConnectedClient) -> None:
        self._client = client

    async def signup(
        self,
        username: str,
        password: str,
        *,
        kdf: KdfParams | None = None,
        invite: str | None = None,
    ) -> str:
        """Create an account with new identity keys and a local keystore; return its name."""
        if self._client.connection.proto is None or self._client.connection.srp is None:
            await self._client.connect()
        assert self._client.connection.srp is not None  # noqa: S101
        name = normal_form(username)
        keystore = KeystoreFile(self._client.home, self._client.server, name)
        if keystore.exists():
            raise ClientError(
                f"a keystore for {name} on {self._client.server} already exists: {keystore.path}"
            )
        identity = await self._client.run_blocking(IdentityKeyPair.generate)
        backup = await self._client.run_blocking(make_key_backup, [identity], name, password, kdf)
        name = await auth.signup(
            self._client.connection.need_proto(),
            self._client.connection.srp,
            username,
            password,
            identity.public().to_json(),
            kdf=kdf,
            key_backup=backup,
            invite=invite,
            run_blocking=self._client.run_blocking,
        )
        data = KeystoreData(server=self._client.server, username=name, identities=[identity])
        await self._client.run_blocking(keystore.set_password, password, kdf)
        await self._client.run_blocking(keystore.save, data)
        return name

    async def srp_login(self, username: str, password: str) -> None:
        assert self._client.connection.srp is not None  # noqa: S101
        tokens = DeviceTokens(self._client.home)
        name = normal_form(username)
        try:
            result = await auth.login(
                self._client.connection.need_proto(),
                self._client.connection.srp,
                username,
                password,
                device_token=tokens.get(self._client.server, name),
                run_blocking=self._client.run_blocking,
            )
        except auth.AuthError as exc:
            raise TrustError(str(exc)) from None
        self._client.username = result.username
        if result.device_token:
            tokens.put(self._client.server, result.username, result.device_token)

    async def login(self, username: str, password: str) -> None:
        """Log in and open (or rebuild from the server's key backup) the local keystore.

        :raises RemoteError: ``auth_failed``, ``rate_limited`` ...
        :raises TrustError: the server failed mutual authentication, or offers keys for this
            user that are not the user's.
        :raises KeystoreError: the local keystore is damaged (it is left untouched).
        """
        if self._client.connection.proto is None or self._client.connection.srp is None:
            await self._client.connect()
        await self.srp_login(username, password)
        assert self._client.username is not None  # noqa: S101
        keystore = KeystoreFile(self._client.home, self._client.server, self._client.username)
        if keystore.exists():
            try:
                self._client.data = await self._client.run_blocking(keystore.unlock, password)
            except WrongPassword:
                # The password changed on another device: rebuild from the server's backup
                # and keep the old file aside (it opens with the old password).
                aside = keystore.path.with_suffix(f".old-{int(self._client.now())}")
                keystore.path.rename(aside)
                log.warn("keystore locked with an older password moved to {p}", p=str(aside))
                self._client.data = await self.recover(keystore, password)
        else:
            self._client.data = await self.recover(keystore, password)
        self._client.keystore = keystore
        self._client.password = password
        self._client.set_state("online")
        await check_own_keys(
            self._client,
            self._client.trust_store,
            password,
            self._client.run_blocking,
            str(keystore.path),
        )
        await self._client.trust_store.check_peer_keys()

    async def open_offline(self, username: str, password: str) -> None:
        """Open this machine's keystore without the server (it is away), so messages can be
        queued in the outbox; the next login sends them.  Nothing reaches the network.

        :raises KeystoreError: no keystore here for this user, or it does not open with
            ``password`` (:class:`WrongPassword`).
        """
        name = normal_form(username)
        server = self._client.pins.canonical(self._client.server)
        keystore = KeystoreFile(self._client.home, server, name)
        self._client.data = await self._client.run_blocking(keystore.unlock, password)
        self._client.keystore = keystore
        self._client.username = name

    async def recover(self, keystore: KeystoreFile, password: str) -> KeystoreData:
        """A new keystore from the server's key backup (a new machine)."""
        assert self._client.username is not None  # noqa: S101
        blob = (await self._client.request("get_key_backup")).get("key_backup")
        if not blob:
            raise ClientError(
                "this account has no key backup on the server; use the machine you signed up on"
            )
        identities = await self._client.run_blocking(
            open_key_backup, blob, self._client.username, password
        )
        mine = await self._client.request("get_keys", username=self._client.username)
        try:
            listed = parse_public_identity(mine["public_keys"])
        except IdentityKeyError as exc:
            raise TrustError(f"the server lists malformed keys for you: {exc}") from None
        if listed.fingerprint() != identities[0].public().fingerprint():
            raise TrustError(
                "the server lists keys for you that are not the ones in your key backup"
            )
        data = KeystoreData(
            server=self._client.server, username=self._client.username, identities=identities
        )
        await self._client.run_blocking(keystore.set_password, password, None)
        await self._client.run_blocking(keystore.save, data)
        return data

    async def change_password(self, old: str, new: str, *, kdf: KdfParams | None = None) -> None:
        """Change the password on the server, the key backup and the local keystore."""
        me, data = self._client.require_login()
        assert self._client.connection.srp is not None and self._client.keystore is not None  # noqa: S101
        backup = await self._client.run_blocking(make_key_backup, data.identities, me, new, kdf)
        try:
            await auth.change_password(
                self._client.connection.need_proto(),
                self._client.connection.srp,
                me,
                old,
                new,
                kdf=kdf,
                run_blocking=self._client.run_blocking,
                key_backup=backup,
            )
        except auth.AuthError as exc:
            raise TrustError(str(exc)) from None
        await self._client.run_blocking(self._client.keystore.set_password, new, kdf)
        await self._client.save()
        self._client.password = new

    async def rotate_identity(self) -> str:
        """New identity keys, published signed by the current signing key (so peers see a
        signed rotation, not an unexplained change), kept in the keystore and the key backup
        beside the old ones (old messages stay readable), then a new conversation key in
        every conversation.  Returns the new fingerprint.
        """
        me, data = self._client.require_login()
        assert self._client.password is not None  # noqa: S101 - set by login
        new = await self._client.run_blocking(IdentityKeyPair.generate)
        entry = await self._client.request("get_keys", username=me)
        version = int(entry.get("key_version", 1)) + 1
        fingerprint = new.public().fingerprint()
        signature = data.identity.signing.sign(rotation_statement(me, version, fingerprint))
        identities = [new, *data.identities]
        backup = await self.backup_that_fits(identities, me, self._client.password)
        await self._client.request(
            "rotate_keys", public_keys=new.public().to_json(), signature=b64encode(signature)
        )
        data.identities = identities
        await self._client.save()
        await self._client.request("set_key_backup", key_backup=backup)
        for conv in await self._client.conversations():
            peer = conv.get("peer")
            if not isinstance(peer, str):
                continue
            try:
                await self._client.rotate(peer)
            except (PeerKeyChanged, RemoteError, TrustError) as exc:
                log.info("no new key with {p} after the rotation: {e}", p=peer, e=exc)
        return fingerprint

    async def backup_that_fits(
        self, identities: list[IdentityKeyPair], me: str, password: str
    ) -> str:
        """The key backup of as many identities (newest first) as the server's limit takes."""
        limit = int(
            self._client.hello().get("limits", {}).get("max_key_backup", 0) or KEY_BACKUP_LIMIT
        )
        keep = list(identities)
        while True:
            backup = await self._client.run_blocking(make_key_backup, keep, me, password, None)
            if len(backup) <= limit or len(keep) == 1:
                if len(keep) < len(identities):
                    log.warn("the key backup keeps the {n} newest identities", n=len(keep))
                return backup
            keep.pop()
