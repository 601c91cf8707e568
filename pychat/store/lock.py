"""One process at a time owns a data dir: the server while it runs, or ``pychat-admin``.

The owner holds an exclusive ``flock`` on ``DATA_DIR/server.lock`` for as long as it runs; the
kernel drops it when the process ends, however it ends, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"


class DataDirBusy(Exception):
    """Another process holds the data dir."""


def lock_data_dir(data_dir: Path) -> int:
    """Take the data dir's lock; return the descriptor that holds it (keep it open).

    :raises DataDirBusy: another process (a running server, or ``pychat-admin``) holds it.
    """
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirBusy(
            f"{data_dir} is in use by another process (a running server, or pychat-admin)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def unlock_data_dir(fd: int) -> None:
    """Give the lock back."""
    os.close(fd)
