"""Errors of the store."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any


class StoreError(Exception):
    """Data on disk cannot be used.  The message names the file and the cause.

    Raised at start-up, where it stops the server, and the file is left as it is.
    """

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


class UsernameTaken(Exception):
    """An account with this normal form already exists."""


class StorageFailure(Exception):
    """A write or fsync failed; nothing of it was acknowledged, and the log was rolled back
    to its last good end.  ``full`` is true for a full disk (or quota), which clears by itself
    when space comes back; anything else (EIO) is a failing disk for the operator."""

    def __init__(self, errno_value: int | None, cause: str) -> None:
        super().__init__(cause)
        self.full = errno_value in (errno.ENOSPC, errno.EDQUOT)
        self.errno = errno_value


class Resent(Exception):
    """The message was stored before, by an earlier copy with the same sender and client id
    (a resend whose first copy was still on its way when it came): ``record`` is that first
    copy's.  Told to ``then`` in place of a new record; nothing new was stored."""

    def __init__(self, record: Any) -> None:
        super().__init__(f"already stored as message {record['seq']}")
        self.record = record


class LogDamaged(Exception):
    """A conversation's log holds a complete record that does not authenticate: it is kept
    read-only up to the damage, and nothing more is appended to it."""
