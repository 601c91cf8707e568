"""Password-based key derivation: Argon2id (or scrypt where Argon2id is unavailable).

Parameters travel as JSON (``{"name": "argon2id", "time_cost": 3, "memory_kib": 65536,
"parallelism": 4}`` or ``{"name": "scrypt", "log2_n": 17, "r": 8, "p": 1}``).  The server stores
them per user and hands them back at login; both sides check them against :data:`MINIMUM` and
:data:`MAXIMUM`, so a server cannot talk a client into a weak derivation (a cheap verifier to
crack) or an absurd one (a client that hangs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

try:  # cryptography >= 44 has Argon2id when its OpenSSL does
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
except ImportError:  # pragma: no cover - depends on the build
    Argon2id = None  # type: ignore[assignment,misc]


class KdfParamsError(ValueError):
    """KDF parameters that are malformed, unknown, too weak or too costly."""


@dataclass(frozen=True)
class KdfParams:
    """One KDF choice with its cost settings; unused fields are 0."""

    name: str
    time_cost: int = 0
    memory_kib: int = 0
    parallelism: int = 0
    log2_n: int = 0
    r: int = 0
    p: int = 0

    def to_json(self) -> dict[str, Any]:
        """The parameters as sent on the wire and stored with the account."""
        if self.name == "argon2id":
            return {
                "name": "argon2id",
                "time_cost": self.time_cost,
                "memory_kib": self.memory_kib,
                "parallelism": self.parallelism,
            }
        return {"name": "scrypt", "log2_n": self.log2_n, "r": self.r, "p": self.p}

    @classmethod
    def from_json(cls, obj: Any) -> KdfParams:
        """Parse and check parameters received from the network or read from disk.

        :raises KdfParamsError: wrong shape, unknown name, or outside the allowed range.
        """
        if not isinstance(obj, dict):
            raise KdfParamsError("KDF parameters must be an object")
        name = obj.get("name")
        fields = {
            "argon2id": ("time_cost", "memory_kib", "parallelism"),
            "scrypt": ("log2_n", "r", "p"),
        }
        if name not in fields:
            raise KdfParamsError(f"unknown KDF {name!r}; use argon2id or scrypt")
        expected = {"name", *fields[name]}
        if set(obj) != expected:
            raise KdfParamsError(f"{name} parameters are exactly {sorted(expected)}")
        values = {}
        for key in fields[name]:
            value = obj[key]
            if not isinstance(value, int) or isinstance(value, bool):
                raise KdfParamsError(f"KDF parameter {key} must be an integer")
            values[key] = value
        params = cls(name=name, **values)
        params.check()
        return params

    def check(self) -> None:
        """Refuse parameters below :data:`MINIMUM` or above :data:`MAXIMUM`."""
        low, high = MINIMUM[self.name], MAXIMUM[self.name]
        for key, floor in low.items():
            value = getattr(self, key)
            if value < floor:
                raise KdfParamsError(f"{self.name} {key}={value} is below the minimum {floor}")
            if value > high[key]:
                raise KdfParamsError(f"{self.name} {key}={value} is above the maximum {high[key]}")
        if self.name == "argon2id" and self.memory_kib < 8 * self.parallelism:
            raise KdfParamsError("argon2id needs memory_kib >= 8 * parallelism")


#: The weakest settings accepted: OWASP's 2023 floor for Argon2id (19 MiB, 2 passes) and
#: scrypt N=2^15, r=8.
MINIMUM: dict[str, dict[str, int]] = {
    "argon2id": {"time_cost": 2, "memory_kib": 19 * 1024, "parallelism": 1},
    "scrypt": {"log2_n": 15, "r": 8, "p": 1},
}
#: The costliest settings accepted, so a hostile server cannot make a client spend minutes or
#: gigabytes on one login.
MAXIMUM: dict[str, dict[str, int]] = {
    "argon2id": {"time_cost": 10, "memory_kib": 1024 * 1024, "parallelism": 16},
    "scrypt": {"log2_n": 20, "r": 16, "p": 16},
}


def argon2id_available() -> bool:
    """Whether this ``cryptography`` build can run Argon2id."""
    if Argon2id is None:
        return False
    try:
        Argon2id(salt=b"\0" * 16, length=32, iterations=1, lanes=1, memory_cost=8).derive(b"x")
    except UnsupportedAlgorithm:
        return False
    return True


def default_params() -> KdfParams:
    """What a new account uses: Argon2id 64 MiB x 3 passes x 4 lanes, else scrypt 2^17."""
    if argon2id_available():
        return KdfParams("argon2id", time_cost=3, memory_kib=64 * 1024, parallelism=4)
    return KdfParams("scrypt", log2_n=17, r=8, p=1)


def minimum_params() -> KdfParams:
    """The cheapest accepted settings (for tests and very small clients)."""
    if argon2id_available():
        return KdfParams("argon2id", **MINIMUM["argon2id"])
    return KdfParams("scrypt", **MINIMUM["scrypt"])


def derive(params: KdfParams, secret: bytes, salt: bytes, length: int = 32) -> bytes:
    """Stretch ``secret`` with ``salt`` into ``length`` bytes (slow on purpose: use a thread)."""
    if params.name == "argon2id":
        if Argon2id is None:
            raise KdfParamsError("this cryptography build has no Argon2id")
        return Argon2id(
            salt=salt,
            length=length,
            iterations=params.time_cost,
            lanes=params.parallelism,
            memory_cost=params.memory_kib,
        ).derive(secret)
    return Scrypt(salt=salt, length=length, n=2**params.log2_n, r=params.r, p=params.p).derive(
        secret
    )
