"""The records of the files a store holds, in memory: what every file backend shares (the
records are few and small; the chunks stay in the backend)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pychat.store.files_record import StoredFile


class FileRecords(ABC):
    """Files by id, by owner, and what each owner's take; expiry by :meth:`sweep`."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    @abstractmethod
    async def delete(self, record: StoredFile) -> None:
        """Remove a file, data and record."""

    def record(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None."""
        return self.files.get(file_id)

    async def lookup(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None (a backend shared with other nodes looks further
        than its memory)."""
        return self.files.get(file_id)

    def records(self) -> list[StoredFile]:
        """Every file."""
        return list(self.files.values())

    def bytes_of(self, owner: str) -> int:
        """What ``owner``'s files take (their declared sizes)."""
        return sum(f.size for f in self.files.values() if f.owner == owner)

    def of_user(self, owner: str) -> list[StoredFile]:
        """``owner``'s files."""
        return [f for f in self.files.values() if f.owner == owner]

    async def sweep(self, now: float) -> int:
        """Delete every expired file; return how many went."""
        gone = [f for f in self.files.values() if f.expires <= now]
        for record in gone:
            await self.delete(record)
        return len(gone)
