"""Previews of the images received in the conversation on screen: the file fetched (checked
like any download) into a private temporary directory, decoded and scaled by
:mod:`pychat.tui.image_worker` in a child process with limits, then removed: only the few
hundred bytes of the preview stay, in memory. One at a time, newest first; off with
``images = "off"`` in the settings (docs/tui.md, "Image previews").
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, protocol
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger

import pychat
from pychat.client.errors import ClientError
from pychat.tui.model import ConversationState, MessageItem, Preview
from pychat.tui.pictures import MAX_COLS, MAX_ROWS, Picture
from pychat.tui.render import PREVIEW_INDENT as INDENT

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

log = Logger(namespace="pychat.tui.previews")

#: What a preview is made of, by the file's name (the worker checks the content itself).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
#: The largest file fetched for a preview.
MAX_FILE = 10 * 1000 * 1000
#: The worker's answer, at most (a preview is small), and its time.
MAX_ANSWER = 4 * 1000 * 1000
WORKER_SECONDS = 20.0

_numbers = itertools.count(1)
#: The worker: isolated from the environment and the current directory (``-I``), with the
#: pyChat this TUI runs first on its path.
_WORKER = (
    "import runpy, sys; "
    f"sys.path.insert(0, {str(Path(pychat.__file__).resolve().parent.parent)!r}); "
    "runpy.run_module('pychat.tui.image_worker', run_name='__main__')"
)


def wanted(item: MessageItem) -> bool:
    """Whether ``item`` is a file a preview is made of."""
    name = (item.file_name or "").lower()
    return (
        item.status == "verified"
        and name.endswith(IMAGE_SUFFIXES)
        and 0 < item.file_size <= MAX_FILE
    )


class WorkerFailed(Exception):
    """The worker gave no usable answer; the message says why."""


class _Worker(protocol.ProcessProtocol):
    """Collects one worker's answer; a worker past its time is killed."""

    def __init__(self, done: defer.Deferred[bytes]) -> None:
        self.done = done
        self.out = bytearray()

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > MAX_ANSWER:
            self.out.clear()
            _kill(self.transport)

    def processEnded(self, reason: Any) -> None:
        if not self.done.called:
            self.done.callback(bytes(self.out))


class Previews:
    """Makes the previews of one logged-in TUI."""

    def __init__(self, ctx: TuiContext, mode: str, cell: tuple[int, int]) -> None:
        self.ctx = ctx
        #: ``blocks``, ``kitty``, ``sixel``, or ``off``.
        self.mode = mode
        self.cell = cell
        self._queue: list[tuple[ConversationState, int]] = []
        self._running = False
        self._width = MAX_COLS + INDENT + 1

    def look_at(self, conv: ConversationState | None, width: int) -> None:
        """Queue the previews ``conv``'s loaded messages want (newest first), for a pane
        ``width`` cells wide; one made for a wider pane is made again to fit."""
        if self.mode == "off" or conv is None or width < INDENT + 5:
            return
        self._width = width
        files = [m for m in conv.messages.values() if m.kind == "file"]  # on every frame: cheap
        for item in sorted(files, key=lambda m: -m.seq):
            made = conv.previews.get(item.seq)
            if (made is None or _too_wide(made, width)) and wanted(item):
                conv.previews[item.seq] = Preview("loading")
                self._queue.append((conv, item.seq))
        if self._queue and not self._running:
            self._running = True
            self.ctx.guard(self._run)

    async def _run(self) -> None:
        try:
            while self._queue:
                conv, seq = self._queue.pop(0)
                made = await self._make(conv, seq)
                if seq in conv.messages:  # not gone meanwhile (a disappearing message)
                    conv.previews[seq] = made
                else:
                    conv.previews.pop(seq, None)
                self.ctx.redraw()
        finally:
            self._running = False

    async def _make(self, conv: ConversationState, seq: int) -> Preview:
        folder = Path(tempfile.mkdtemp(prefix="pychat-preview-"))  # mode 0700
        try:
            path = await self.ctx.client.files.fetch(conv.peer, seq, folder)
            cols = max(4, min(MAX_COLS, self._width - INDENT - 1))
            picture = await self._decode(path, cols)
        except (ClientError, WorkerFailed, OSError) as exc:
            return Preview("failed", reason=str(exc))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Preview("ready", picture)

    async def _decode(self, path: Path, cols: int) -> Picture:
        """The worker's preview of the image at ``path``."""
        done: defer.Deferred[bytes] = defer.Deferred()
        worker = _Worker(done)
        args = [sys.executable, "-I", "-c", _WORKER, self.mode]
        args += [str(cols), str(MAX_ROWS), str(self.cell[0]), str(self.cell[1]), str(path)]
        reactor = self.ctx.client.reactor
        process = reactor.spawnProcess(worker, sys.executable, args, env={"LC_ALL": "C.UTF-8"})
        timer = reactor.callLater(WORKER_SECONDS, _kill, process)
        try:
            out = await done
        finally:
            if timer.active():
                timer.cancel()
        return self.picture_from(out)

    def picture_from(self, out: bytes) -> Picture:
        """The worker's printed answer as a picture.

        :raises WorkerFailed: an error, or not the answer of a worker.
        """
        try:
            answer = json.loads(out)
            if "error" in answer:
                raise WorkerFailed(str(answer["error"])[:200])
            cols, rows = int(answer["cols"]), int(answer["rows"])
            data = base64.b64decode(answer["data"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise WorkerFailed("the image could not be decoded") from None
        if not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
            raise WorkerFailed("the image could not be decoded")
        if self.mode == "blocks" and len(data) != cols * rows * 2 * 3:
            raise WorkerFailed("the image could not be decoded")
        return Picture(self.mode, cols, rows, data, next(_numbers))


def _too_wide(preview: Preview, width: int) -> bool:
    """Whether ``preview``'s picture no longer fits a pane ``width`` cells wide."""
    return preview.picture is not None and INDENT + preview.picture.cols > width


def _kill(process: Any) -> None:
    try:
        process.signalProcess("KILL")
    except ProcessExitedAlready:
        pass
