"""A user's public identity: an RSA-3072 key for OAEP key transport and an Ed25519 key for
signatures, with the fingerprint over both.

On the wire and on disk the pair is ``{"encryption": b64(DER SubjectPublicKeyInfo),
"signing": b64(32 raw bytes)}``.  :func:`parse_public_identity` checks it (the server does so
at signup and key rotation, clients on every key they fetch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pychat.wire.encoding import b64decode, b64encode

#: Smallest RSA modulus accepted: 3072 bits, ~128-bit security like the rest of the design.
MIN_RSA_BITS = 3072
MAX_RSA_BITS = 8192
FINGERPRINT_CONTEXT = b"pychat-identity-v1"


class IdentityKeyError(ValueError):
    """Public keys that are malformed or too weak; the message says which and why."""


@dataclass(frozen=True)
class PublicIdentity:
    """The two public keys of one user."""

    encryption_der: bytes
    signing_raw: bytes

    @property
    def encryption_key(self) -> rsa.RSAPublicKey:
        """The RSA key that conversation keys are wrapped for."""
        key = serialization.load_der_public_key(self.encryption_der)
        assert isinstance(key, rsa.RSAPublicKey)  # noqa: S101 - checked at parse time
        return key

    @property
    def signing_key(self) -> ed25519.Ed25519PublicKey:
        """The Ed25519 key that verifies this user's signatures."""
        return ed25519.Ed25519PublicKey.from_public_bytes(self.signing_raw)

    def fingerprint(self) -> str:
        """SHA-256 over a context label and both keys, length-prefixed, as 64 hex digits."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(FINGERPRINT_CONTEXT)
        for part in (self.encryption_der, self.signing_raw):
            digest.update(len(part).to_bytes(4, "big") + part)
        return digest.finalize().hex()

    def to_json(self) -> dict[str, str]:
        """The wire and storage form."""
        return {
            "encryption": b64encode(self.encryption_der),
            "signing": b64encode(self.signing_raw),
        }


def _b64(value: Any, name: str) -> bytes:
    try:
        return b64decode(value)
    except ValueError:
        raise IdentityKeyError(f"public key '{name}' must be a base64 string") from None


def parse_public_identity(obj: Any) -> PublicIdentity:
    """Check and load ``{"encryption": ..., "signing": ...}``.

    :raises IdentityKeyError: a field is missing or extra, not base64, not a key of the right
        type, or an RSA key outside 3072..8192 bits or with an exponent other than 65537.
    """
    if not isinstance(obj, dict) or set(obj) != {"encryption", "signing"}:
        raise IdentityKeyError("public keys are an object with exactly 'encryption' and 'signing'")
    enc = _b64(obj["encryption"], "encryption")
    sig = _b64(obj["signing"], "signing")
    try:
        key = serialization.load_der_public_key(enc)
    except ValueError:
        raise IdentityKeyError("'encryption' is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise IdentityKeyError("'encryption' must be an RSA public key")
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise IdentityKeyError(f"'encryption' must be RSA of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if key.public_numbers().e != 65537:
        raise IdentityKeyError("'encryption' must use the public exponent 65537")
    if len(sig) != 32:
        raise IdentityKeyError("'signing' must be a raw 32-byte Ed25519 public key")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(sig)
    except ValueError:
        raise IdentityKeyError("'signing' is not an Ed25519 public key") from None
    # Re-encode so equal keys always have equal bytes (and fingerprints).
    canonical = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicIdentity(canonical, sig)


@dataclass(frozen=True)
class IdentityKeyPair:
    """A user's private keys: RSA-3072 for unwrapping conversation keys, Ed25519 for signing."""

    encryption: rsa.RSAPrivateKey
    signing: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        """New keys (RSA generation takes a moment: call it off the UI/reactor thread)."""
        return cls(
            rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS),
            ed25519.Ed25519PrivateKey.generate(),
        )

    def public(self) -> PublicIdentity:
        """The public half."""
        der = self.encryption.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        raw = self.signing.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return PublicIdentity(der, raw)


ROTATION_CONTEXT = b"pychat-key-rotation-v1"


def rotation_statement(username: str, new_version: int, new_fingerprint: str) -> bytes:
    """The bytes a user signs with the *old* signing key to announce new keys.

    ``context 0x00 username 0x00 version 0x00 fingerprint`` in UTF-8; the server checks it at
    ``rotate_keys`` and every client re-checks it in ``key_history``, so a key change the
    user's old key did not sign stands out.
    """
    return b"\0".join(
        [ROTATION_CONTEXT, username.encode(), str(new_version).encode(), new_fingerprint.encode()]
    )
