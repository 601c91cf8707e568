"""Output back-pressure of one connection: the transport pauses us when its send buffer is
full; what is written while paused is counted, and past the cap the reader is cut off."""

from __future__ import annotations


class OutputGate:
    """Counts bytes written while the peer is not reading; says when the cap is passed."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.paused = False
        self.queued = 0

    def pause(self) -> None:
        """The peer is not keeping up with what we send."""
        self.paused = True

    def resume(self) -> None:
        """The peer caught up."""
        self.paused = False
        self.queued = 0

    def admit(self, size: int) -> bool:
        """Whether ``size`` more bytes may be written (False: the peer must be cut off)."""
        if self.paused:
            self.queued += size
            return self.queued <= self.cap
        return True
