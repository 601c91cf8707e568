"""The timers that bound how slow one connection may be, beside the idle timeout: the TLS
handshake, and a line left unfinished (a slow drip)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall

from pychat import limits


class SlownessTimers:
    """Handshake and unfinished-line timers of one connection, on the server's clock."""

    def __init__(
        self,
        call_later: Callable[..., IDelayedCall],
        *,
        no_handshake: Callable[[], Any],
        line_too_old: Callable[[], Any],
    ) -> None:
        self._call_later = call_later
        self._no_handshake = no_handshake
        self._line_too_old = line_too_old
        self._handshake: IDelayedCall | None = None
        self._partial: IDelayedCall | None = None

    def expect_handshake(self) -> None:
        """A TLS connection opened: its handshake must finish within the limit."""
        self._handshake = self._call_later(limits.HANDSHAKE_TIMEOUT, self._no_handshake)

    def handshake_done(self) -> None:
        """The handshake finished in time."""
        _cancel(self._handshake)

    def partial_line(self, waiting: bool) -> None:
        """After each read: is an unfinished line waiting?  Its age counts from its first
        byte (more bytes of the same line do not reset it); a finished line stops it."""
        if waiting:
            if self._partial is None or not self._partial.active():
                self._partial = self._call_later(limits.PARTIAL_LINE_TIMEOUT, self._line_too_old)
        else:
            _cancel(self._partial)

    def stop(self) -> None:
        """The connection is gone."""
        _cancel(self._handshake)
        _cancel(self._partial)


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()
