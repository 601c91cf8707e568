"""Trust in peers' identity keys: pins on first use, signed rotations, unsigned changes.

A peer's key is pinned the first time it is seen.  Later keys are checked against the pin:
a change the pinned key signed (a valid ``key_history`` chain) is accepted with a
``keys_rotated`` event; any other change becomes *pending*, blocks sending, and emits
``keys_changed`` with both safety numbers until the user accepts it (:meth:`PeerTrust.accept`),
which never marks the peer verified by itself (:meth:`PeerTrust.mark_verified` does).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from twisted.logger import Logger

from pychat.client.context import ClientContext
from pychat.client.errors import KeysReplaced, PeerKeyChanged, TrustError
from pychat.client.events import ClientEvent, SafetyNumbers
from pychat.client.keystore import KeystoreData
from pychat.client.protocol import RemoteError
from pychat.crypto.e2e import safety_number
from pychat.crypto.errors import E2EError, b64d
from pychat.crypto.identity import (
    IdentityKeyError,
    PublicIdentity,
    parse_public_identity,
    rotation_statement,
)
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")


class PeerTrust:
    """The pins of one logged-in user's peers."""

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx
        #: Why this device must not speak for its account (its keys were replaced, seen at
        #: login by :func:`~pychat.client.own_keys.check_own_keys`), or None.
        self.replaced: str | None = None

    def require_own_keys(self) -> None:
        """:raises KeysReplaced: this device's keys are no longer the account's."""
        if self.replaced is not None:
            raise KeysReplaced(self.replaced)

    def accepted(self, data: KeystoreData, peer: str) -> list[PublicIdentity]:
        """Every identity of ``peer`` this user accepted (old ones open old messages)."""
        pin = data.pins.get(peer)
        if not pin:
            return []
        return [parse_public_identity(k) for k in pin["accepted"].values()]

    def accepted_order(self, data: KeystoreData, peer: str) -> list[str]:
        """``peer``'s accepted fingerprints, oldest first (the last accepted is current; each
        earlier one is retired by every later one: docs/e2e.md §3, key validity)."""
        pin = data.pins.get(peer)
        return list(pin["accepted"]) if pin else []

    def accepted_identity(self, data: KeystoreData, peer: str, fingerprint: str) -> PublicIdentity:
        """The accepted identity of ``peer`` with ``fingerprint``."""
        return parse_public_identity(data.pins[peer]["accepted"][fingerprint])

    def current(self, data: KeystoreData, peer: str) -> list[PublicIdentity]:
        """The identity of ``peer`` pinned now (none before first use): the only one whose
        signals (typing, read marks) count."""
        pin = data.pins.get(peer)
        return [self.accepted_identity(data, peer, pin["fingerprint"])] if pin else []

    async def peer_identity(self, peer: str) -> PublicIdentity:
        """The peer's current identity, checked against its pin (pinned on first use).

        A change signed by the pinned key (a valid ``key_history`` chain) is accepted at once,
        keeps the verified mark, and emits ``keys_rotated``.  Any other change becomes a
        pending change (``keys_changed`` with both safety numbers is emitted the first time
        it is seen) and raises.

        :raises PeerKeyChanged: the directory shows another key, not signed by the pinned one;
            sending stays blocked until :meth:`trust` accepts it.
        """
        _, data = self._ctx.require_login()
        peer = normal_form(peer)
        entry = await self._ctx.request("get_keys", username=peer)
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
            await self._ctx.save()
            return current
        if pin["fingerprint"] == fingerprint:
            if pin.get("pending"):
                await self._withdrawn(peer, pin)
            return current
        if await self.chain_ok(peer, pin["fingerprint"], fingerprint):
            return await self._rotated(peer, pin, current, entry)
        await self._changed(peer, pin, current)
        raise AssertionError("not reached")  # pragma: no cover - _changed raises

    async def _withdrawn(self, peer: str, pin: dict[str, Any]) -> None:
        """The server lists the pinned key again: the change it showed is gone (it was
        withdrawn, or a lie told once), so nothing is pending and nothing is blocked."""
        pin["pending"] = None
        await self._ctx.save()
        self._ctx.emit(
            ClientEvent(
                "keys_withdrawn",
                {
                    "user": peer,
                    "text": f"the server lists {peer}'s pinned key again: the key change it "
                    "showed before is withdrawn, nothing is blocked",
                },
            )
        )

    async def _rotated(
        self, peer: str, pin: dict[str, Any], current: PublicIdentity, entry: dict[str, Any]
    ) -> PublicIdentity:
        """A change the pinned key signed: accepted, the verified mark kept, a notice."""
        fingerprint = current.fingerprint()
        _accept_last(pin, fingerprint, current.to_json())
        pin["fingerprint"], pin["pending"] = fingerprint, None
        pin["key_version"] = entry.get("key_version", pin.get("key_version", 1))
        await self._ctx.save()
        verified = bool(pin.get("verified"))
        mine = self.my_fingerprint()
        self._ctx.emit(
            ClientEvent(
                "keys_rotated",
                {
                    "user": peer,
                    "verified": verified,
                    "fingerprint": fingerprint,
                    "safety": safety_number(mine, fingerprint),
                },
            )
        )
        return current

    async def _changed(self, peer: str, pin: dict[str, Any], current: PublicIdentity) -> None:
        """A change the pinned key did not sign: pending, announced once, and refused.

        :raises PeerKeyChanged: always.
        """
        pinned, fingerprint = pin["fingerprint"], current.fingerprint()
        first_sight = (pin.get("pending") or {}).get("fingerprint") != fingerprint
        if first_sight:
            pending = {"fingerprint": fingerprint, "public_keys": current.to_json()}
            pin["pending"] = {**pending, "chain_ok": False}
            await self._ctx.save()
            mine = self.my_fingerprint()
            self._ctx.emit(
                ClientEvent(
                    "keys_changed",
                    {
                        "user": peer,
                        "warning": str(PeerKeyChanged(peer, pinned, fingerprint, False)),
                        "old_safety": safety_number(mine, pinned),
                        "new_safety": safety_number(mine, fingerprint),
                    },
                )
            )
        raise PeerKeyChanged(peer, pinned, fingerprint, False)

    async def check_peer_keys(self) -> None:
        """Look up every pinned peer's key now (at login), so a change shows before anyone
        types; each change found is emitted as an event."""
        _, data = self._ctx.require_login()
        for peer in list(data.pins):
            try:
                await self.peer_identity(peer)
            except PeerKeyChanged:
                pass
            except (RemoteError, TrustError) as exc:
                log.info("checking {p}'s key: {e}", p=peer, e=exc)

    async def chain_ok(self, peer: str, pinned: str, current: str) -> bool:
        """Whether key_history links ``pinned`` to ``current`` by signatures of each old key."""
        history = (await self._ctx.request("key_history", username=peer)).get("history", [])
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

    async def pin_if_new(self, peer: str) -> None:
        """Pin a peer seen for the first time (receiving never blocks on a changed key)."""
        _, data = self._ctx.require_login()
        if peer not in data.pins:
            try:
                await self.peer_identity(peer)
            except PeerKeyChanged:
                pass

    async def accept(self, peer: str) -> tuple[str, bool]:
        """Accept the peer's current key after a change, *without* marking it verified (compare
        safety numbers, then :meth:`mark_verified`).  Returns the accepted fingerprint and
        whether a pending change was accepted (then the caller starts a new epoch).
        """
        _, data = self._ctx.require_login()
        peer = normal_form(peer)
        try:
            current = await self.peer_identity(peer)
        except PeerKeyChanged as exc:
            pin = data.pins[peer]
            pending = pin["pending"]
            _accept_last(pin, pending["fingerprint"], pending["public_keys"])
            pin["fingerprint"] = exc.current
            pin["pending"] = None
            pin["verified"] = False
            await self._ctx.save()
            return parse_public_identity(pending["public_keys"]).fingerprint(), True
        return current.fingerprint(), False

    async def mark_verified(self, peer: str) -> None:
        """Mark the peer verified (after the user compared safety numbers).

        :raises PeerKeyChanged: a key change is pending: accept it with :meth:`trust` first.
        """
        _, data = self._ctx.require_login()
        peer = normal_form(peer)
        await self.peer_identity(peer)
        data.pins[peer]["verified"] = True
        await self._ctx.save()

    def peer_trust(self, peer: str) -> tuple[bool, bool]:
        """(marked verified, key changed and not yet accepted) for ``peer``, from the pins."""
        _, data = self._ctx.require_login()
        pin = data.pins.get(normal_form(peer)) or {}
        return bool(pin.get("verified")), bool(pin.get("pending"))

    def my_fingerprint(self) -> str:
        """This user's identity fingerprint."""
        _, data = self._ctx.require_login()
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
        _, data = self._ctx.require_login()
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


def _accept_last(pin: dict[str, Any], fingerprint: str, public_keys: dict[str, str]) -> None:
    """Accept ``fingerprint`` as the peer's newest key: last in the order, so every key
    accepted before it counts as retired by it (even one accepted once before and again now)."""
    pin["accepted"].pop(fingerprint, None)
    pin["accepted"][fingerprint] = public_keys
