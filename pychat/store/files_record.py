"""One file's record as every file backend keeps it."""

from __future__ import annotations

from dataclasses import dataclass

#: Ciphertext bytes of every chunk but the last (32 KiB of content and a 16-byte tag): a
#: base64 chunk fits a request under the smallest line limit.
CHUNK_BYTES = 32 * 1024 + 16


@dataclass
class StoredFile:
    """One file's record."""

    id: str
    owner: str
    conversation: str
    size: int
    chunks: int
    created: float
    expires: float
    received: int = 0

    @property
    def complete(self) -> bool:
        """Whether every chunk is on disk."""
        return self.received == self.chunks

    def chunk_length(self, index: int) -> int:
        """The ciphertext bytes chunk ``index`` must have."""
        if index < self.chunks - 1:
            return CHUNK_BYTES
        return self.size - CHUNK_BYTES * (self.chunks - 1)
