"""End-to-end encryption of messages, and safety numbers.

Everything here is a composition of primitives from ``cryptography``; nothing does I/O, and
nothing trusts the server.  Key envelopes are in :mod:`pychat.crypto.envelopes`, the
canonical JSON that signatures cover in :mod:`pychat.crypto.canonical`.

**Message ciphertext** (the opaque ``ciphertext`` of ``send``): a Fernet token under the
epoch's key, of the canonical JSON ``{"m": inner, "sig": b64}`` where ``inner`` holds ``v,
sender, device, recipient, conversation, epoch, counter, time, body`` and ``sig`` is the
sender's Ed25519 signature over the canonical JSON of ``inner``.  Version 2 (what is written
now) holds integers only: ``time`` in milliseconds, every number within 2^53-1.  Version 1
(a float ``time`` in seconds) is still read.

A receiver accepts a message only if it decrypts, the signature verifies under an accepted
key of the sender, the sender matches who the server says sent it, the recipient is the other
member, and the conversation and epoch match; the client then applies the replay rule and
the key-validity rule (:mod:`pychat.client.validity`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes

from pychat.crypto.canonical import MAX_SAFE_INTEGER, NotPortable, canonical, check_portable
from pychat.crypto.errors import E2EError, b64d
from pychat.crypto.identity import IdentityKeyPair, PublicIdentity
from pychat.wire.encoding import b64encode

SAFETY_CONTEXT = b"pychat-safety-v1"
#: The last second a message time may name (the end of year 9999, what datetime can show).
LATEST_TIME = 253402300799
#: The version :func:`seal_message` is given by the client (docs/e2e.md §3).
MESSAGE_VERSION = 2


def time_ms(seconds: float) -> int:
    """A version-2 message time: whole milliseconds since the epoch."""
    return int(seconds * 1000)


def seal_message(key: bytes, signer: IdentityKeyPair, inner: dict[str, Any]) -> str:
    """Sign ``inner`` and encrypt it with the epoch key; return the ciphertext text.

    :raises NotPortable: a version-2 ``inner`` holds a float or an integer beyond 2^53-1.
    """
    if inner.get("v") == 2:
        check_portable(inner)
    signature = signer.signing.sign(canonical(inner))
    return Fernet(key).encrypt(canonical({"m": inner, "sig": b64encode(signature)})).decode()


@dataclass(frozen=True)
class OpenedMessage:
    """A message that passed every check of its own (the client adds replay and validity)."""

    sender: str
    device: str
    recipient: str
    counter: int
    #: The sender's signed time, in seconds (their clock: shown beside the server's only when
    #: the two differ by more than a few minutes).
    time: float
    body: str
    #: The signed ``kind`` (``text`` when absent): ``action`` is an emote (``/me waves``);
    #: others (``reaction``, ``reply``, ...) carry ``data``, checked by the client.
    kind: str = "text"
    #: The signed ``data`` object of a structured kind (None when absent).
    data: dict[str, Any] | None = None
    #: A disappearing message: when it is to be deleted everywhere (None: it stays).
    expires: float | None = None
    #: The message format's version (1: float times; 2: integers only).
    version: int = MESSAGE_VERSION

    @property
    def action(self) -> bool:
        """An emote: shown as ``* alice waves``."""
        return self.kind == "action"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any, high: int = MAX_SAFE_INTEGER) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def _checked_time(version: int, sent: Any) -> float:
    """The signed time in seconds: a number of seconds in version 1, whole milliseconds in
    version 2, within years 1970-9999."""
    if version == 1 and _is_number(sent) and 0 <= sent <= LATEST_TIME:
        return float(sent)
    if version == 2 and _is_count(sent, LATEST_TIME * 1000 + 999):
        return int(sent) / 1000
    raise E2EError("decrypted message has no valid time")


def _optional_fields(inner: dict[str, Any]) -> tuple[str, Any, float | None]:
    """``kind``, ``data`` and ``expires`` of an inner message, checked for their types."""
    kind, data, expires = inner.get("kind", "text"), inner.get("data"), inner.get("expires")
    if not isinstance(kind, str) or (data is not None and not isinstance(data, dict)):
        raise E2EError("decrypted message is malformed")
    if expires is None:
        return kind, data, None
    if not (_is_number(expires) and 0 <= expires <= LATEST_TIME):
        raise E2EError("decrypted message has no valid expiry")
    return kind, data, float(expires)


def _signed_part(plain: bytes) -> tuple[dict[str, Any], Any, int]:
    """(inner, signature, version) of a decrypted token, its shape and numbers checked."""
    try:
        outer = json.loads(plain)
        inner, sig = outer["m"], outer["sig"]
        version = inner["v"]
        fields = [inner[k] for k in ("sender", "device", "recipient", "conversation", "body")]
        counter, epoch = inner["counter"], inner["epoch"]
    except (ValueError, KeyError, TypeError):
        raise E2EError("decrypted message is malformed") from None
    if version not in (1, 2):
        raise E2EError(f"decrypted message is of version {version!r}, which this client lacks")
    if not all(isinstance(f, str) for f in fields) or not isinstance(counter, int):
        raise E2EError("decrypted message is malformed")
    if version == 2:
        try:
            check_portable(inner)
        except NotPortable as exc:
            raise E2EError(f"decrypted message breaks the number rule: {exc}") from None
        if not _is_count(counter) or not _is_count(epoch):
            raise E2EError("decrypted message is malformed")
    return inner, sig, version


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
    inner, sig, version = _signed_part(plain)
    kind, data, expires = _optional_fields(inner)
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
    if inner["conversation"] != conversation or inner["epoch"] != epoch:
        raise E2EError("belongs to another conversation or epoch")
    sent = _checked_time(version, inner["time"])
    return OpenedMessage(
        sender=sender,
        device=inner["device"],
        recipient=recipient,
        counter=inner["counter"],
        time=sent,
        body=inner["body"],
        kind=kind,
        data=data,
        expires=expires,
        version=version,
    )


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
