"""SRP-6a (RFC 5054) with the proofs of RFC 2945: the math, and client and server sessions.

No I/O.  Everything works on Python integers; byte strings are big-endian.  The public
functions reproduce RFC 5054 Appendix B when used with :data:`RFC5054_TEST_PARAMS`
(1024-bit group, SHA-1) and :func:`rfc5054_x`::

    params = RFC5054_TEST_PARAMS
    k = multiplier(params)                                   # H(N | PAD(g))
    x = rfc5054_x(params, salt, b"alice", b"password123")   # H(s | H(I ":" P))
    v = verifier(params, x)                                  # g^x mod N
    A = client_public(params, a)                             # g^a mod N
    B = server_public(params, v, b)                          # (k*v + g^b) mod N
    u = scrambler(params, A, B)                              # H(PAD(A) | PAD(B))
    S = server_premaster(params, A, v, u, b)                 # (A * v^u)^b mod N
    S == client_premaster(params, x, a, B, u)                # (B - k*g^x)^(a + u*x) mod N

Then K = H(S), M1 = H(H(N) XOR H(PAD(g)) | H(I) | s | A | B | K) and M2 = H(A | M1 | K), with
S, A and B as minimal big-endian bytes and I the username's normal form in UTF-8: the form that
common SRP libraries (e.g. PyPI ``srp`` with ``rfc5054_enable()``) use, so they interoperate.

Production uses :data:`DEFAULT_PARAMS` (3072-bit group, SHA-256) and derives x with
:func:`password_x` (Argon2id or scrypt over the per-user salt), so a stolen verifier costs an
expensive guess per password.

Safety checks (RFC 5054 §2.5.4 and §2.6): the server refuses A with A mod N == 0, the client
refuses B with B mod N == 0, both refuse u == 0, proofs are compared with
``hmac.compare_digest``, and the client trusts the session only after checking M2.

Modular exponentiation goes through :func:`powmod`: ``gmpy2.powmod_sec`` (constant time, and
much faster than ``pow`` at 3072 bits) when gmpy2 is importable, ``pow`` otherwise.  The one
exponent that is public, the scrambler ``u`` (a hash of A and B, both sent in the clear), goes
through :func:`powmod_public`: GMP's ordinary ``powmod``, whose running time depends on the
exponent only, and which costs two thirds of ``powmod_sec`` (a login's ``v^u``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes

from pychat.crypto.kdf import KdfParams, derive
from pychat.srp.groups import N_1024, N_2048, N_3072, N_4096

try:
    import gmpy2
except ImportError:  # pragma: no cover - gmpy2 is a dependency; this keeps pow as a fallback
    gmpy2 = None

#: Bits of the secret exponents a and b: RFC 5054 §3.1 asks for at least 256.
EPHEMERAL_BITS = 256


class SrpError(Exception):
    """A protocol value is unacceptable (A or B is 0 mod N, u is 0, a length is wrong)."""


class SrpAuthenticationError(SrpError):
    """A proof did not match: wrong password, or a peer that does not know the verifier."""


# -- modular exponentiation ------------------------------------------------------------------

_backend = "gmpy2" if gmpy2 is not None else "python"


def powmod_backend() -> str:
    """The active backend: ``"gmpy2"`` or ``"python"``."""
    return _backend


def set_powmod_backend(name: str) -> None:
    """Choose ``"gmpy2"`` or ``"python"`` (tests run both)."""
    global _backend
    if name not in ("gmpy2", "python") or (name == "gmpy2" and gmpy2 is None):
        raise ValueError(f"powmod backend {name!r} is not available")
    _backend = name


def powmod(base: int, exponent: int, modulus: int) -> int:
    """``base ** exponent % modulus`` for an odd modulus and a positive exponent."""
    if _backend == "gmpy2" and exponent > 0:
        return int(gmpy2.powmod_sec(base, exponent, modulus))
    return pow(base, exponent, modulus)


def powmod_public(base: int, exponent: int, modulus: int) -> int:
    """:func:`powmod` for an exponent that is no secret (its timing may depend on it)."""
    if _backend == "gmpy2" and exponent > 0:
        return int(gmpy2.powmod(base, exponent, modulus))
    return pow(base, exponent, modulus)


# -- groups and parameters -------------------------------------------------------------------


@dataclass(frozen=True)
class SrpGroup:
    """A group of RFC 5054 Appendix A: safe prime N and generator g."""

    name: str
    N: int = field(repr=False)
    g: int

    @property
    def length(self) -> int:
        """Bytes of N: the width of PAD()."""
        return (self.N.bit_length() + 7) // 8


GROUPS: dict[str, SrpGroup] = {
    g.name: g
    for g in (
        SrpGroup("rfc5054-1024", N_1024, 2),
        SrpGroup("rfc5054-2048", N_2048, 2),
        SrpGroup("rfc5054-3072", N_3072, 5),
        SrpGroup("rfc5054-4096", N_4096, 5),
    )
}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


@dataclass(frozen=True)
class SrpParams:
    """A group and a hash function."""

    group: SrpGroup
    hash_name: str = "sha256"

    def __post_init__(self) -> None:
        if self.hash_name not in _HASHES:
            raise ValueError(f"unsupported SRP hash {self.hash_name!r}")

    def H(self, *parts: bytes) -> bytes:
        """The hash of the concatenation of ``parts``."""
        digest = hashes.Hash(_HASHES[self.hash_name]())
        for part in parts:
            digest.update(part)
        return digest.finalize()

    @property
    def digest_size(self) -> int:
        """Bytes of H's output: the length of M1 and M2."""
        return _HASHES[self.hash_name]().digest_size

    def pad(self, n: int) -> bytes:
        """PAD(n): big-endian, left-padded with zeros to the length of N."""
        return n.to_bytes(self.group.length, "big")

    def to_json(self) -> dict[str, str]:
        """How ``hello`` announces the parameters."""
        return {"group": self.group.name, "hash": self.hash_name}


DEFAULT_PARAMS = SrpParams(GROUPS["rfc5054-3072"], "sha256")
RFC5054_TEST_PARAMS = SrpParams(GROUPS["rfc5054-1024"], "sha1")


def to_bytes(n: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (at least one byte)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def to_int(data: bytes) -> int:
    """The integer of big-endian bytes."""
    return int.from_bytes(data, "big")


# -- the RFC 5054 functions ------------------------------------------------------------------


def multiplier(params: SrpParams) -> int:
    """k = H(N | PAD(g))."""
    return to_int(params.H(to_bytes(params.group.N), params.pad(params.group.g)))


def scrambler(params: SrpParams, A: int, B: int) -> int:
    """u = H(PAD(A) | PAD(B))."""
    return to_int(params.H(params.pad(A), params.pad(B)))


def rfc5054_x(params: SrpParams, salt: bytes, identity: bytes, password: bytes) -> int:
    """x = H(s | H(I ":" P)), RFC 5054's derivation; kept for the test vectors and interop."""
    return to_int(params.H(salt, params.H(identity + b":" + password)))


def password_x(kdf: KdfParams, salt: bytes, identity: bytes, password: bytes) -> int:
    """x as pyChat derives it: the KDF (Argon2id/scrypt) of ``I ":" P`` over the salt.

    Slow on purpose (that is the point): run it off the reactor thread.
    """
    return to_int(derive(kdf, identity + b":" + password, salt, 32))


def verifier(params: SrpParams, x: int) -> int:
    """v = g^x mod N."""
    return powmod(params.group.g, x, params.group.N)


def client_public(params: SrpParams, a: int) -> int:
    """A = g^a mod N."""
    return powmod(params.group.g, a, params.group.N)


def server_public(params: SrpParams, v: int, b: int) -> int:
    """B = (k*v + g^b) mod N."""
    N = params.group.N
    return (multiplier(params) * v + powmod(params.group.g, b, N)) % N


def server_premaster(params: SrpParams, A: int, v: int, u: int, b: int) -> int:
    """S = (A * v^u)^b mod N (``u`` is public: it is a hash of A and B)."""
    return premaster_from_power(params, A, powmod_public(v, u, params.group.N), b)


def premaster_from_power(params: SrpParams, A: int, v_u: int, b: int) -> int:
    """S = (A * v_u)^b mod N, given ``v_u`` = v^u mod N worked out elsewhere (a table of v's
    powers: :mod:`pychat.srp.powers`)."""
    N = params.group.N
    return powmod(A * v_u % N, b, N)


def client_premaster(params: SrpParams, x: int, a: int, B: int, u: int) -> int:
    """S = (B - k*g^x)^(a + u*x) mod N."""
    N = params.group.N
    base = (B - multiplier(params) * powmod(params.group.g, x, N)) % N
    return powmod(base, a + u * x, N)


def session_key(params: SrpParams, S: int) -> bytes:
    """K = H(S)."""
    return params.H(to_bytes(S))


def client_proof(
    params: SrpParams,
    identity: bytes,
    salt: bytes,
    A: int,
    B: int,
    K: bytes,
) -> bytes:
    """M1 = H(H(N) XOR H(PAD(g)) | H(I) | s | A | B | K)."""
    hn = params.H(to_bytes(params.group.N))
    hg = params.H(params.pad(params.group.g))
    n_xor_g = bytes(x ^ y for x, y in zip(hn, hg, strict=True))
    return params.H(n_xor_g, params.H(identity), salt, to_bytes(A), to_bytes(B), K)


def server_proof(params: SrpParams, A: int, M1: bytes, K: bytes) -> bytes:
    """M2 = H(A | M1 | K)."""
    return params.H(to_bytes(A), M1, K)


def _ephemeral() -> int:
    return secrets.randbits(EPHEMERAL_BITS) | (1 << (EPHEMERAL_BITS - 1))


# -- sessions --------------------------------------------------------------------------------


class SrpServerSession:
    """The server's side of one login: B out, A and M1 in, M2 out.

    :param identity: I, the username's normal form in UTF-8.
    :param salt: the user's salt.
    :param v: the user's verifier.
    :param b: the secret ephemeral (random unless a test fixes it).
    :param v_power: u -> v^u mod N, if something faster than an exponentiation knows it.
    """

    def __init__(
        self,
        params: SrpParams,
        identity: bytes,
        salt: bytes,
        v: int,
        *,
        b: int | None = None,
        v_power: Callable[[int], int] | None = None,
    ) -> None:
        self.params = params
        self.identity = identity
        self.salt = salt
        self._v = v
        self._v_power = v_power
        self._b = b if b is not None else _ephemeral()
        self.B = server_public(params, v, self._b)
        self._A: int | None = None
        self._K: bytes | None = None

    def accept_client_public(self, A: int) -> None:
        """Take the client's A and derive the session key.

        :raises SrpError: A mod N == 0 (RFC 5054 §2.5.4), A not below N, or u == 0.
        """
        N = self.params.group.N
        if A <= 0 or A >= N or A % N == 0:
            raise SrpError("A must be in 1..N-1 and not 0 mod N")
        u = scrambler(self.params, A, self.B)
        if u == 0:
            raise SrpError("u is 0")
        if self._v_power is None:
            S = server_premaster(self.params, A, self._v, u, self._b)
        else:
            S = premaster_from_power(self.params, A, self._v_power(u), self._b)
        self._A = A
        self._K = session_key(self.params, S)

    def verify_client_proof(self, M1: bytes) -> bytes:
        """Check M1; return M2 for the client.

        :raises SrpAuthenticationError: M1 does not match (wrong password or unknown user).
        :raises SrpError: called before :meth:`accept_client_public`.
        """
        if self._A is None or self._K is None:
            raise SrpError("no client public value yet")
        expected = client_proof(self.params, self.identity, self.salt, self._A, self.B, self._K)
        if not hmac.compare_digest(expected, M1):
            raise SrpAuthenticationError("client proof does not match")
        return server_proof(self.params, self._A, M1, self._K)

    @property
    def key(self) -> bytes:
        """K, once the client's public value was accepted."""
        if self._K is None:
            raise SrpError("no session key yet")
        return self._K


class SrpClientSession:
    """The client's side of one login: A out, salt and B in, M1 out, M2 in.

    :param identity: I, the username's normal form in UTF-8.
    :param a: the secret ephemeral (random unless a test fixes it).
    """

    def __init__(self, params: SrpParams, identity: bytes, *, a: int | None = None) -> None:
        self.params = params
        self.identity = identity
        self._a = a if a is not None else _ephemeral()
        self.A = client_public(params, self._a)
        self._M1: bytes | None = None
        self._K: bytes | None = None

    def process_challenge(self, salt: bytes, B: int, x: int) -> bytes:
        """Take the server's salt and B and the password-derived x; return M1.

        :raises SrpError: B mod N == 0 (RFC 5054 §2.6), B not below N, or u == 0.
        """
        N = self.params.group.N
        if B <= 0 or B >= N or B % N == 0:
            raise SrpError("server's B must be in 1..N-1 and not 0 mod N")
        u = scrambler(self.params, self.A, B)
        if u == 0:
            raise SrpError("u is 0")
        S = client_premaster(self.params, x, self._a, B, u)
        self._K = session_key(self.params, S)
        self._M1 = client_proof(self.params, self.identity, salt, self.A, B, self._K)
        return self._M1

    def verify_server_proof(self, M2: bytes) -> bytes:
        """Check the server's M2 (mutual authentication); return K.

        :raises SrpAuthenticationError: the server does not know the verifier.
        """
        if self._M1 is None or self._K is None:
            raise SrpError("no challenge processed yet")
        expected = server_proof(self.params, self.A, self._M1, self._K)
        if not hmac.compare_digest(expected, M2):
            raise SrpAuthenticationError("server proof does not match")
        return self._K
