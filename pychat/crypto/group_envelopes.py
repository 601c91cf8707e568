"""Group epochs: one envelope per epoch of a group, its Fernet key wrapped for each member of
the group as a point of its membership chain leaves it (docs/e2e.md §7).

::

    {"v": 1, "group": id, "epoch": 2, "creator": "alice", "after": 17, "chain": 4,
     "head": hex SHA-256 of chain statement 4,
     "members": {"alice": {"fingerprint": fp, "wrapped": b64(RSA-OAEP-SHA256(key))}, ...},
     "signature": b64(Ed25519 by the creator over group_envelope_statement(...))}

``chain`` and ``head`` pin the membership the epoch was made for: the members are exactly
those of the chain after statement ``chain``, so a member the chain removed gets nothing, and
a server that serves another history than the reader verified is caught.  The creator is an
admin at that point (any member, when the group has no admin left).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet

from pychat.crypto.canonical import MAX_SAFE_INTEGER
from pychat.crypto.envelopes import OAEP, unwrap_envelope
from pychat.crypto.errors import E2EError, b64d
from pychat.crypto.group_chain import GroupState
from pychat.crypto.identity import IdentityKeyPair, PublicIdentity
from pychat.wire.encoding import b64encode

GROUP_ENVELOPE_CONTEXT = b"pychat-group-envelope-v1"


def group_envelope_statement(envelope: Mapping[str, Any]) -> bytes:
    """What a group envelope's creator signs: context, group, epoch, creator, after, chain,
    head, then each member's name, fingerprint and wrapped key (members sorted by name), all
    0x00-separated."""
    parts = [GROUP_ENVELOPE_CONTEXT, envelope["group"].encode(), str(envelope["epoch"]).encode()]
    parts += [envelope["creator"].encode(), str(envelope["after"]).encode()]
    parts += [str(envelope["chain"]).encode(), envelope["head"].encode()]
    for name in sorted(envelope["members"]):
        entry = envelope["members"][name]
        parts += [name.encode(), entry["fingerprint"].encode(), entry["wrapped"].encode()]
    return b"\0".join(parts)


def may_make_epochs(state: GroupState, member: str) -> bool:
    """Whether ``member`` may make an epoch for the group as ``state`` leaves it: an admin,
    or any member of a group with no admin left."""
    return member in state.admins or (not state.admins and member in state.members)


def make_group_envelope(
    state: GroupState,
    *,
    epoch: int,
    after: int,
    creator: str,
    creator_keys: IdentityKeyPair,
    identities: Mapping[str, PublicIdentity],
    key: bytes | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A new epoch for the group as ``state`` leaves it, with a fresh key (or ``key``) wrapped
    for each member under ``identities`` (each member's current keys); the envelope and key.

    :raises E2EError: ``creator`` may not make epochs, or a member's identity is missing.
    """
    if not may_make_epochs(state, creator):
        raise E2EError(f"{creator} may not start an epoch of this group")
    missing = set(state.members) - set(identities)
    if missing:
        raise E2EError(f"no keys for {', '.join(sorted(missing))}")
    key = key or Fernet.generate_key()
    members = {
        name: {
            "fingerprint": identities[name].fingerprint(),
            "wrapped": b64encode(identities[name].encryption_key.encrypt(key, OAEP)),
        }
        for name in state.members
    }
    envelope: dict[str, Any] = {
        "v": 1,
        "group": state.group,
        "epoch": epoch,
        "creator": creator,
        "after": after,
        "chain": state.n,
        "head": state.head,
        "members": members,
    }
    signature = creator_keys.signing.sign(group_envelope_statement(envelope))
    envelope["signature"] = b64encode(signature)
    return envelope, key


@dataclass(frozen=True)
class GroupEnvelopeFacts:
    """What a verified group envelope says."""

    epoch: int
    creator: str
    after: int
    chain: int
    #: Member name -> the fingerprint their copy is wrapped for.
    fingerprints: Mapping[str, str]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INTEGER


def _checked_shape(envelope: Any, state: GroupState) -> dict[str, Any]:
    if not isinstance(envelope, dict) or envelope.get("v") != 1:
        raise E2EError("group key envelope is not a version-1 object")
    if envelope.get("group") != state.group:
        raise E2EError("group key envelope of another group")
    for name in ("epoch", "after", "chain"):
        if not _count(envelope.get(name)):
            raise E2EError(f"group key envelope's {name} is not a whole number")
    if envelope["epoch"] < 1 or not isinstance(envelope.get("creator"), str):
        raise E2EError("group key envelope without an epoch number or a creator")
    members = envelope.get("members")
    if not isinstance(members, dict) or not all(map(_entry, members.values())):
        raise E2EError("group key envelope's members are malformed")
    return envelope


def _entry(entry: Any) -> bool:
    """Whether a member's entry holds a fingerprint and a wrapped key (as text)."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("fingerprint"), str)
        and isinstance(entry.get("wrapped"), str)
    )


def verify_group_envelope(
    envelope: Any, *, state: GroupState, creator_identity: PublicIdentity
) -> GroupEnvelopeFacts:
    """Check a group envelope against the group as the reader's verified chain left it at
    the envelope's ``chain`` (``state``), and its creator's signature.

    :raises E2EError: another history, other members, a creator who may not make epochs, a
        creator key the reader did not accept, or a bad signature.
    """
    checked = _checked_shape(envelope, state)
    if checked["chain"] != state.n or checked.get("head") != state.head:
        raise E2EError("group key envelope made for another history of the group")
    if set(checked["members"]) != set(state.members):
        raise E2EError("group key envelope is not wrapped for exactly the group's members")
    creator = checked["creator"]
    if not may_make_epochs(state, creator):
        raise E2EError(f"{creator} may not start an epoch of this group")
    if checked["members"][creator]["fingerprint"] != creator_identity.fingerprint():
        raise E2EError(f"group key envelope was made with keys {creator} does not have")
    signature = b64d(checked.get("signature"), "group key envelope signature")
    try:
        creator_identity.signing_key.verify(signature, group_envelope_statement(checked))
    except InvalidSignature:
        raise E2EError(f"group key envelope signature does not verify as {creator}'s") from None
    fingerprints = {n: e["fingerprint"] for n, e in checked["members"].items()}
    return GroupEnvelopeFacts(
        checked["epoch"], creator, checked["after"], checked["chain"], fingerprints
    )


def unwrap_group_envelope(
    envelope: dict[str, Any], me: str, my_keys: list[IdentityKeyPair]
) -> bytes:
    """This member's copy of a verified group envelope's key.

    :raises E2EError: not wrapped for this user (not a member at that point), for none of
        their keys, or not a Fernet key.
    """
    if me not in envelope["members"]:
        raise E2EError("this epoch's key is not wrapped for you: you are not a member of it")
    return unwrap_envelope(envelope, me, my_keys)
