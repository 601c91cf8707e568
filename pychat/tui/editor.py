"""Composing in ``$EDITOR`` (``Ctrl-X Ctrl-E`` as in bash, and ``/edit``): the draft goes to a
private temporary file (mode 0600, removed after), the full screen is suspended while the
editor runs in the terminal and comes back whole after (docs/tui.md, "Composing in your
editor").  The editor has the terminal to itself: the client waits for it (its connection
is kept by the server for its idle timeout, five minutes, and is opened again after)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Tried in order when neither ``$VISUAL`` nor ``$EDITOR`` is set.
FALLBACKS = ("editor", "nano", "vi")


class NoEditor(Exception):
    """No editor to run: ``$VISUAL``/``$EDITOR`` unset and none of the usual ones found."""


def editor_command() -> list[str]:
    """The editor to run, as an argument list (``$VISUAL``, ``$EDITOR``, then the usual).

    :raises NoEditor: none is set or found.
    """
    for name in ("VISUAL", "EDITOR"):
        value = os.environ.get(name, "").strip()
        if value:
            return shlex.split(value)
    for fallback in FALLBACKS:
        found = shutil.which(fallback)
        if found is not None:
            return [found]
    raise NoEditor("no editor: set $EDITOR (for example export EDITOR=nano)")


def edit(
    draft: str, suspended: Callable[[Callable[[], None]], None], where: Path | None = None
) -> str:
    """Let the user edit ``draft`` in their editor; the text they saved (without the one
    newline editors end a file with).  ``suspended(run)`` calls ``run`` with the full screen
    put away (curses ended) and brings it back after, whatever happens.

    :raises NoEditor: there is no editor.
    :raises OSError: the file could not be written or read back.
    """
    command = editor_command()
    fd, name = tempfile.mkstemp(prefix="pychat-draft-", suffix=".txt", dir=where)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp made it 0600
            out.write(draft)
        failed: list[str] = []

        def run() -> None:
            try:
                subprocess.run([*command, str(path)], check=False)
            except OSError as exc:
                failed.append(f"{command[0]}: {exc.strerror}")

        suspended(run)
        if failed:
            raise NoEditor(failed[0])
        text = path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
    return text[:-1] if text.endswith("\n") else text
