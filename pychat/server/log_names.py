"""How the server's log names an account: a keyed pseudonym, never the username.

``user-`` and 12 hex digits of an HMAC of the username under a key derived from the store key
(docs/security.md): lines about one account can be followed through the log, and
``pychat-admin users`` shows which name is which, but a copy of the log (journald keeps it for
as long as it is told, often shipped elsewhere) does not say who talked when.
"""

from __future__ import annotations

from pychat.store.atrest import AtRestKey


class LogNames:
    """Pseudonyms of usernames for log lines."""

    def __init__(self, key: AtRestKey) -> None:
        self._hash = key.name_hasher("log-name")

    def __call__(self, username: str) -> str:
        """The pseudonym of ``username``."""
        return f"user-{self._hash(username)[:12]}"
