"""Crash-safe file writes: write to a temporary file, fsync, rename, fsync the directory.

After a crash at any instant the target holds either its old or its new content, never a mix,
and once :func:`write_atomic` returns the new content survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename or a new file) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fchmod(fd, mode)  # the umask may have narrowed or widened O_CREAT's mode
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def ensure_private_dir(path: Path) -> bool:
    """Create ``path`` (mode 0700) or narrow an existing one to 0700.

    :returns: True when an existing directory's permissions had to be narrowed.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    current = path.stat().st_mode & 0o777
    if current != 0o700:
        os.chmod(path, 0o700)
        return True
    return False
