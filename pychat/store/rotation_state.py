"""Whether a store-key rotation (:mod:`pychat.store.rotation`) was left unfinished: the names
of its leftovers, and the check that keeps a server from starting beside them."""

from __future__ import annotations

from pathlib import Path

from pychat.store.errors import StoreError

ROTATING = "rotating"
COMMIT = "rotation-commit.json"


def new_key_path(key_path: Path) -> Path:
    """Where the new key waits until the rotation is finished."""
    return key_path.with_name(key_path.name + ".new")


def check_no_rotation(data_dir: Path) -> None:
    """Refuse to serve a data dir with an unfinished rotation.

    :raises StoreError: saying what to run.
    """
    if (data_dir / COMMIT).exists() or (data_dir / ROTATING).exists():
        raise StoreError(
            data_dir,
            "a store-key rotation did not finish: run `pychat-admin rotate-store-key` again "
            "(it finishes a committed rotation, or removes an uncommitted one) before starting",
        )
