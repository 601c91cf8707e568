"""End-to-end encryption of conversations: key envelopes, signed messages, safety numbers.

Everything here is a composition of primitives from ``cryptography``; nothing does I/O, and
nothing trusts the server.

**Envelope** (one per conversation epoch; stored by the server as given)::

    {"v": 1, "conversation": id, "epoch": n, "creator": "alice",
     "members": {"alice": {"fingerprint": fp, "wrapped": b64(RSA-OAEP-SHA256(key))},
                 "bob":   {"fingerprint": fp, "wrapped": ...}},
     "signature": b64(Ed25519 by the creator over envelope_statement(...))}

**Message ciphertext** (the opaque ``ciphertext`` of ``send``): a Fernet token under the
epoch's key, of the JSON ``{"m": inner, "sig": b64}`` where ``inner`` holds ``v, sender,
device, recipient, conversation, epoch, counter, time, body`` and ``sig`` is the sender's
Ed25519 signature over the canonical JSON of ``inner`` (sorted keys, no spaces, UTF-8).

A receiver accepts a message only if it decrypts, the signature verifies under the sender's
pinned key, the sender matches who the server says sent it, the recipient is the other
member, the conversation and epoch match, and the (device, counter) is not a replay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from pychat.crypto.identity import IdentityKeyPair, PublicIdentity
from pychat.encoding import b64decode, b64encode

ENVELOPE_CONTEXT = b"pychat-envelope-v1"
SAFETY_CONTEXT = b"pychat-safety-v1"
#: The last second a message time may name (the end of year 9999, what datetime can show).
LATEST_TIME = 253402300799
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class E2EError(Exception):
    """Something a peer or the server sent fails a check; the message says which."""


def b64d(text: Any, what: str) -> bytes:
    """Decode base64 or raise :class:`E2EError` naming ``what``."""
    try:
        return b64decode(text)
    except ValueError:
        raise E2EError(f"{what} is missing or not valid base64") from None


# -- envelopes -------------------------------------------------------------------------------


def envelope_statement(
    conversation: str, epoch: int, creator: str, members: dict[str, dict[str, str]]
) -> bytes:
    """The bytes an envelope's creator signs: context, conversation, epoch, creator, and each
    member's name, fingerprint and wrapped key, members sorted by name, all 0x00-separated."""
    parts = [ENVELOPE_CONTEXT, conversation.encode(), str(epoch).encode(), creator.encode()]
    for name in sorted(members):
        entry = members[name]
        parts += [name.encode(), entry["fingerprint"].encode(), entry["wrapped"].encode()]
    return b"\0".join(parts)


def make_envelope(
    conversation: str,
    epoch: int,
    creator: str,
    creator_keys: IdentityKeyPair,
    recipients: dict[str, PublicIdentity],
    key: bytes,
) -> dict[str, Any]:
    """Wrap the Fernet ``key`` for each recipient (both members) and sign the result."""
    members = {
        name: {
            "fingerprint": identity.fingerprint(),
            "wrapped": b64encode(identity.encryption_key.encrypt(key, OAEP)),
        }
        for name, identity in recipients.items()
    }
    signature = creator_keys.signing.sign(envelope_statement(conversation, epoch, creator, members))
    return {
        "v": 1,
        "conversation": conversation,
        "epoch": epoch,
        "creator": creator,
        "members": members,
        "signature": b64encode(signature),
    }


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified envelope: its epoch, creator and the conversation key."""

    epoch: int
    creator: str
    key: bytes


def open_envelope(
    envelope: Any,
    *,
    conversation: str,
    me: str,
    my_keys: list[IdentityKeyPair],
    members: tuple[str, str],
    creator_identity: PublicIdentity,
) -> OpenedEnvelope:
    """Check an envelope and unwrap this user's copy of the key.

    :param my_keys: this user's identity keys, newest first (older ones open older envelopes).
    :param creator_identity: the pinned identity of the envelope's creator.
    :raises E2EError: wrong shape, wrong conversation or members, a signature that does not
        verify under the creator's pinned key, or no key of ours that unwraps it.
    """
    if not isinstance(envelope, dict) or envelope.get("v") != 1:
        raise E2EError("key envelope is not a version-1 envelope")
    epoch, creator, entries = (
        envelope.get("epoch"),
        envelope.get("creator"),
        envelope.get("members"),
    )
    if envelope.get("conversation") != conversation:
        raise E2EError("key envelope belongs to another conversation")
    if not isinstance(epoch, int) or not isinstance(creator, str) or not isinstance(entries, dict):
        raise E2EError("key envelope is malformed")
    if set(entries) != set(members) or creator not in members:
        raise E2EError("key envelope names other members than this conversation's")
    for entry in entries.values():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("fingerprint", "wrapped")
        ):
            raise E2EError("key envelope entry is malformed")
    if entries[creator]["fingerprint"] != creator_identity.fingerprint():
        raise E2EError(f"key envelope was made with keys {creator} no longer (or never) had")
    signature = b64d(envelope.get("signature"), "key envelope signature")
    try:
        creator_identity.signing_key.verify(
            signature, envelope_statement(conversation, epoch, creator, entries)
        )
    except InvalidSignature:
        raise E2EError(f"key envelope signature does not verify as {creator}'s") from None
    wrapped = b64d(entries[me]["wrapped"], "wrapped key")
    for keys in my_keys:
        if keys.public().fingerprint() != entries[me]["fingerprint"]:
            continue
        try:
            key = keys.encryption.decrypt(wrapped, OAEP)
        except ValueError:
            break
        try:
            Fernet(key)
        except ValueError:
            raise E2EError("key envelope holds no Fernet key") from None
        return OpenedEnvelope(epoch, creator, key)
    raise E2EError("key envelope is not wrapped for any of my keys")


# -- messages --------------------------------------------------------------------------------


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal_message(key: bytes, signer: IdentityKeyPair, inner: dict[str, Any]) -> str:
    """Sign ``inner`` and encrypt it with the epoch key; return the ciphertext text."""
    signature = signer.signing.sign(canonical(inner))
    return Fernet(key).encrypt(canonical({"m": inner, "sig": b64encode(signature)})).decode()


@dataclass(frozen=True)
class OpenedMessage:
    """A message that passed every check."""

    sender: str
    device: str
    recipient: str
    counter: int
    time: float
    body: str
    #: The signed ``kind`` (``text`` when absent): ``action`` is an emote (``/me waves``);
    #: others (``reaction``, ``reply``, ...) carry ``data``, checked by the client.
    kind: str = "text"
    #: The signed ``data`` object of a structured kind (None when absent).
    data: dict[str, Any] | None = None
    #: A disappearing message: when it is to be deleted everywhere (None: it stays).
    expires: float | None = None

    @property
    def action(self) -> bool:
        """An emote: shown as ``* alice waves``."""
        return self.kind == "action"


def _optional_fields(inner: dict[str, Any]) -> tuple[str, dict[str, Any] | None, Any]:
    """``kind``, ``data`` and ``expires`` of an inner message, checked for their types."""
    kind, data, expires = inner.get("kind", "text"), inner.get("data"), inner.get("expires")
    if not isinstance(kind, str) or (data is not None and not isinstance(data, dict)):
        raise E2EError("decrypted message is malformed")
    if expires is not None and (
        not isinstance(expires, int | float) or isinstance(expires, bool)
        or not 0 <= expires <= LATEST_TIME
    ):  # fmt: skip
        raise E2EError("decrypted message has no valid expiry")
    return kind, data, expires


def open_message(
    ciphertext: str,
    key: bytes,
    *,
    sender: str,
    sender_identity: PublicIdentity,
    recipient: str,
    conversation: str,
    epoch: int,
) -> OpenedMessage:
    """Decrypt and verify a message the server says ``sender`` sent in ``conversation``.

    :raises E2EError: with the reason shown to the user.
    """
    try:
        plain = Fernet(key).decrypt(ciphertext.encode())
    except (InvalidToken, ValueError):
        raise E2EError(
            "cannot decrypt: altered in transit or storage, or not for this epoch"
        ) from None
    try:
        outer = json.loads(plain)
        inner, sig = outer["m"], outer["sig"]
        fields = (inner["sender"], inner["device"], inner["recipient"], inner["conversation"])
        counter, epoch_in, sent, body = (
            inner["counter"],
            inner["epoch"],
            inner["time"],
            inner["body"],
        )
    except (ValueError, KeyError, TypeError):
        raise E2EError("decrypted message is malformed") from None
    kind, data, expires = _optional_fields(inner)
    if not all(isinstance(f, str) for f in (*fields, body)) or not isinstance(counter, int):
        raise E2EError("decrypted message is malformed")
    try:
        signed = canonical(inner)
    except UnicodeEncodeError:  # a lone surrogate: JSON allows "\ud800", UTF-8 does not
        raise E2EError("decrypted message is not valid Unicode text") from None
    try:
        sender_identity.signing_key.verify(b64d(sig, "message signature"), signed)
    except InvalidSignature:
        raise E2EError(f"signature does not verify as {sender}'s") from None
    if inner["sender"] != sender:
        raise E2EError(f"signed by {inner['sender']} but delivered as from {sender}")
    if inner["recipient"] != recipient:
        raise E2EError(f"addressed to {inner['recipient']}, not to this conversation's {recipient}")
    if inner["conversation"] != conversation or epoch_in != epoch:
        raise E2EError("belongs to another conversation or epoch")
    if not isinstance(sent, int | float) or not 0 <= sent <= LATEST_TIME:
        raise E2EError("decrypted message has no valid time")
    return OpenedMessage(
        sender, inner["device"], inner["recipient"], counter, float(sent), body, kind, data,
        float(expires) if expires is not None else None,
    )  # fmt: skip


# -- safety numbers --------------------------------------------------------------------------


def safety_number(fingerprint_a: str, fingerprint_b: str) -> str:
    """Sixty digits in twelve groups of five, the same for both users of a pair.

    SHA-512 over the context and the two fingerprints sorted; each group is five bytes of the
    digest read as a number, modulo 100000.
    """
    low, high = sorted((fingerprint_a, fingerprint_b))
    digest = hashes.Hash(hashes.SHA512())
    digest.update(b"\0".join([SAFETY_CONTEXT, low.encode(), high.encode()]))
    raw = digest.finalize()
    groups = [int.from_bytes(raw[i * 5 : i * 5 + 5], "big") % 100000 for i in range(12)]
    return " ".join(f"{g:05d}" for g in groups)
