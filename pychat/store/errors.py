"""Errors of the store."""

from __future__ import annotations

from pathlib import Path


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
