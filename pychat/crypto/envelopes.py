"""Key envelopes: one per conversation epoch, the epoch's Fernet key wrapped for each member.

An envelope (stored by the server as given)::

    {"v": 2, "conversation": id, "epoch": n, "creator": "alice", "after": 41,
     "members": {"alice": {"fingerprint": fp, "wrapped": b64(RSA-OAEP-SHA256(key))},
                 "bob":   {"fingerprint": fp, "wrapped": ...}},
     "signature": b64(Ed25519 by the creator over envelope_statement(...))}

``after`` (version 2) is the sequence number of the conversation's last message when the
epoch began, signed by its creator: the epoch's place in the log, which the key-validity
rule (docs/e2e.md §3) reads and the server cannot move.  Version 1 had no ``after``; such
envelopes still open, and only fix no place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from pychat.crypto.canonical import MAX_SAFE_INTEGER
from pychat.crypto.errors import E2EError, b64d
from pychat.crypto.identity import IdentityKeyPair, PublicIdentity
from pychat.wire.encoding import b64encode

ENVELOPE_CONTEXTS = {1: b"pychat-envelope-v1", 2: b"pychat-envelope-v2"}
#: The version :func:`make_envelope` writes.
ENVELOPE_VERSION = 2
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def envelope_statement(
    conversation: str,
    epoch: int,
    creator: str,
    members: Mapping[str, Mapping[str, str]],
    *,
    after: int | None = None,
) -> bytes:
    """The bytes an envelope's creator signs: context, conversation, epoch, creator, (from
    version 2) ``after``, then each member's name, fingerprint and wrapped key, members sorted
    by name, all 0x00-separated.  ``after=None`` is the version-1 statement."""
    version = 1 if after is None else 2
    parts = [ENVELOPE_CONTEXTS[version], conversation.encode(), str(epoch).encode()]
    parts.append(creator.encode())
    if after is not None:
        parts.append(str(after).encode())
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
    *,
    after: int,
) -> dict[str, Any]:
    """Wrap the Fernet ``key`` for each recipient (both members) and sign the result as a
    version-2 envelope beginning after message ``after``."""
    members = {
        name: {
            "fingerprint": identity.fingerprint(),
            "wrapped": b64encode(identity.encryption_key.encrypt(key, OAEP)),
        }
        for name, identity in recipients.items()
    }
    statement = envelope_statement(conversation, epoch, creator, members, after=after)
    return {
        "v": ENVELOPE_VERSION,
        "conversation": conversation,
        "epoch": epoch,
        "creator": creator,
        "after": after,
        "members": members,
        "signature": b64encode(creator_keys.signing.sign(statement)),
    }


@dataclass(frozen=True)
class EnvelopeFacts:
    """What a verified envelope says: its epoch, who made it, where in the log it began
    (None for version 1), and the identity fingerprint it names for each member."""

    epoch: int
    creator: str
    after: int | None
    members: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """For the keystore."""
        return {"creator": self.creator, "after": self.after, "members": self.members}

    @classmethod
    def from_json(cls, epoch: int, obj: Mapping[str, Any]) -> EnvelopeFacts:
        """The inverse of :meth:`to_json`."""
        return cls(epoch, str(obj["creator"]), obj.get("after"), dict(obj["members"]))


@dataclass(frozen=True)
class OpenedEnvelope:
    """A verified envelope: its facts and the conversation key."""

    facts: EnvelopeFacts
    key: bytes

    @property
    def epoch(self) -> int:
        """The epoch's number."""
        return self.facts.epoch


def _checked_shape(
    envelope: Any, conversation: str, members: tuple[str, str]
) -> tuple[int, str, int | None, dict[str, dict[str, str]]]:
    """(epoch, creator, after, member entries) of a well-formed envelope."""
    if not isinstance(envelope, dict) or envelope.get("v") not in ENVELOPE_CONTEXTS:
        raise E2EError("key envelope is not a version-1 or version-2 envelope")
    epoch, creator, entries = (envelope.get(k) for k in ("epoch", "creator", "members"))
    after = envelope.get("after") if envelope["v"] == 2 else None
    if envelope.get("conversation") != conversation:
        raise E2EError("key envelope belongs to another conversation")
    if not _count(epoch) or not isinstance(creator, str) or not isinstance(entries, dict):
        raise E2EError("key envelope is malformed")
    if envelope["v"] == 2 and not _count(after):
        raise E2EError("key envelope has no valid 'after'")
    if set(entries) != set(members) or creator not in members:
        raise E2EError("key envelope names other members than this conversation's")
    for entry in entries.values():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("fingerprint", "wrapped")
        ):
            raise E2EError("key envelope entry is malformed")
    return int(epoch), creator, after, entries  # type: ignore[arg-type]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INTEGER


def verify_envelope(
    envelope: Any,
    *,
    conversation: str,
    members: tuple[str, str],
    creator_identity: PublicIdentity,
) -> EnvelopeFacts:
    """Check an envelope's shape and its creator's signature (nothing is unwrapped).

    :param creator_identity: an identity of the envelope's creator that the reader accepted.
    :raises E2EError: wrong shape, conversation or members, or a signature that does not
        verify under ``creator_identity``.
    """
    epoch, creator, after, entries = _checked_shape(envelope, conversation, members)
    if entries[creator]["fingerprint"] != creator_identity.fingerprint():
        raise E2EError(f"key envelope was made with keys {creator} no longer (or never) had")
    signature = b64d(envelope.get("signature"), "key envelope signature")
    statement = envelope_statement(conversation, epoch, creator, entries, after=after)
    try:
        creator_identity.signing_key.verify(signature, statement)
    except InvalidSignature:
        raise E2EError(f"key envelope signature does not verify as {creator}'s") from None
    fingerprints = {name: entry["fingerprint"] for name, entry in entries.items()}
    return EnvelopeFacts(epoch, creator, after, fingerprints)


def unwrap_envelope(envelope: dict[str, Any], me: str, my_keys: list[IdentityKeyPair]) -> bytes:
    """This user's copy of a verified envelope's key.

    :param my_keys: this user's identity keys, newest first (older ones open older envelopes).
    :raises E2EError: no key of ours unwraps it, or what it holds is no Fernet key.
    """
    entry = envelope["members"][me]
    wrapped = b64d(entry["wrapped"], "wrapped key")
    for keys in my_keys:
        if keys.public().fingerprint() != entry["fingerprint"]:
            continue
        try:
            key = keys.encryption.decrypt(wrapped, OAEP)
        except ValueError:
            break
        try:
            Fernet(key)
        except ValueError:
            raise E2EError("key envelope holds no Fernet key") from None
        return key
    raise E2EError("key envelope is not wrapped for any of my keys")


def open_envelope(
    envelope: Any,
    *,
    conversation: str,
    me: str,
    my_keys: list[IdentityKeyPair],
    members: tuple[str, str],
    creator_identity: PublicIdentity,
) -> OpenedEnvelope:
    """Check an envelope (:func:`verify_envelope`) and unwrap this user's copy of the key
    (:func:`unwrap_envelope`).

    :raises E2EError: as those two do.
    """
    facts = verify_envelope(
        envelope, conversation=conversation, members=members, creator_identity=creator_identity
    )
    return OpenedEnvelope(facts, unwrap_envelope(envelope, me, my_keys))
