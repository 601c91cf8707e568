"""Everything the server keeps about one user, as a frozen record (any backend stores it
sealed)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

#: The format name and version of a sealed account (bound into its seal).
FORMAT = "pychat-account"
VERSION = 1


@dataclass(frozen=True)
class Account:
    """Everything the server keeps about one user.  Nothing here is secret from the server:
    the verifier proves a password without revealing it, and the keys are public.

    :ivar username: the normal form.
    :ivar salt: the SRP salt (b64).
    :ivar verifier: the SRP verifier (b64, big-endian).
    :ivar kdf: the KDF parameters the client uses to derive x.
    :ivar public_keys: the user's current public identity (JSON form).
    :ivar key_version: 1 at signup, +1 per key rotation.
    :ivar key_backup: the client's encrypted private-key backup (opaque), if any.
    :ivar share_presence: whether peers are told when this user comes and goes.
    :ivar key_history: every public identity the user has had, oldest first; entries are
        ``{"key_version", "public_keys", "fingerprint", "signature", "time"}`` (the signature,
        by the previous signing key, is null for the first).  Only ever appended to.
    :ivar disabled: the operator disabled the account (``pychat-admin disable``): its logins
        are refused.
    :ivar last_login: when the user last logged in (saved at most once an hour), or None.
    """

    username: str
    salt: str
    verifier: str
    kdf: dict[str, Any]
    public_keys: dict[str, str]
    created: float
    updated: float
    key_version: int = 1
    key_backup: str | None = None
    share_presence: bool = True
    key_history: list[dict[str, Any]] = field(default_factory=list)
    disabled: bool = False
    last_login: float | None = None

    def with_changes(self, **changes: Any) -> Account:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)
