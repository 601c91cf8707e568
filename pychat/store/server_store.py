"""Opens everything the server keeps in its data dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pychat.store.accounts import AccountStore
from pychat.store.atrest import AtRestKey
from pychat.store.blocking import BlockingRunner
from pychat.store.conversations import ConversationStore
from pychat.store.ephemeral import EPHEMERAL_DIR, EphemeralStore
from pychat.store.files import FILES_DIR, FileStore
from pychat.store.interfaces import (
    AccountRepository,
    BlobRepository,
    ConversationRepository,
    FileRepository,
    InviteRepository,
)
from pychat.store.invites import FileInvites, InviteBook

if TYPE_CHECKING:
    from pychat.store.pg.database import Database
    from pychat.store.pg.events import EventLog
from pychat.store.rotation_state import check_no_rotation

ACCOUNTS_DIR = "accounts"
CONVERSATIONS_DIR = "conversations"


@dataclass
class ServerStore:
    """The opened store: accounts, conversations and the at-rest key's derived secrets."""

    key: AtRestKey
    accounts: AccountRepository
    conversations: ConversationRepository
    invites: InviteRepository
    #: Encrypted files users send each other.
    files: FileRepository
    #: The ciphertext of disappearing messages (deleted when they expire).
    ephemeral: BlobRepository
    #: Where the store's blocking work runs (a thread pool, or inline in tests and tools).
    run_blocking: BlockingRunner
    #: The database, when the store is PostgreSQL rather than the flat files.
    database: Database | None = None
    #: The events this node and the others sharing the database tell each other.
    events: EventLog | None = None

    @property
    def logs(self) -> ConversationStore:
        """The conversations as the flat files hold them, logs and all (for the tools that
        work on the files themselves: rotation, backup, checks).

        :raises TypeError: the store is not the flat files.
        """
        if not isinstance(self.conversations, ConversationStore):
            raise TypeError("these conversations are not kept in flat files")
        return self.conversations

    async def delete_account(self, username: str) -> int:
        """Delete an account, its key history and every pair's conversation it is in; return
        how many conversations went.  Its groups stay (the server cannot sign statements:
        an admin removes the name, and no epoch can be wrapped for it meanwhile).

        :raises KeyError: there is no such account.
        """
        if self.accounts.get(username) is None:
            raise KeyError(username)
        convs = [c for c in self.conversations.for_user(username) if not c.is_group]
        for conv in convs:
            await self.conversations.delete(conv)
        for record in [f for f in self.files.records() if f.conversation in {c.id for c in convs}]:
            await self.files.delete(record)
        await self.accounts.delete(username)
        return len(convs)

    async def close(self) -> None:
        """Flush what is pending and close the files, or the database (at a clean stop)."""
        await self.conversations.close()
        if self.database is not None:
            self.database.close()

    @classmethod
    def open_database(
        cls, url: str, key_path: Path, run_blocking: BlockingRunner, *, inline: bool = False
    ) -> ServerStore:
        """Open the store in the PostgreSQL database at ``url`` (migrated to this code's
        schema first), with the key at ``key_path``; ``inline``: for a tool without a
        reactor (every query done when its call returns).

        :raises DatabaseUnavailable: unreachable, refused, or a schema newer than this code.
        :raises StoreError: a missing key with data in the database.
        """
        from pychat.store.pg.accounts import PgAccountStore
        from pychat.store.pg.conversations import PgConversationStore
        from pychat.store.pg.database import Database, InlineDatabase
        from pychat.store.pg.events import EventLog
        from pychat.store.pg.files import PgBlobStore, PgFileStore
        from pychat.store.pg.invites import PgInvites

        database = Database.open(url)
        if inline:
            database = InlineDatabase(url)
        start = database.start_position()  # before the load: what changes after is read again
        data_exists = bool(
            database.query_now(
                "SELECT 1 FROM accounts UNION ALL SELECT 1 FROM conversations LIMIT 1"
            )
        )
        key = AtRestKey.load_or_create(key_path, data_exists=data_exists)
        events = EventLog(key, start=start)
        return cls(
            key,
            PgAccountStore.open(database, key, events),
            PgConversationStore.open(database, key, events),
            PgInvites(database),
            PgFileStore.open(database, key, events),
            PgBlobStore(database, key),
            run_blocking,
            database,
            events,
        )

    @classmethod
    def open(cls, data_dir: Path, key_path: Path, run_blocking: BlockingRunner) -> ServerStore:
        """Open (or create) the store in ``data_dir`` with the key at ``key_path``.

        :raises StoreError: a missing key with existing data, or any file that does not open.
        """
        check_no_rotation(data_dir)
        dirs = [data_dir / ACCOUNTS_DIR, data_dir / CONVERSATIONS_DIR]
        data_exists = any(d.is_dir() and any(d.iterdir()) for d in dirs)
        key = AtRestKey.load_or_create(key_path, data_exists=data_exists)
        accounts = AccountStore.open(dirs[0], key, run_blocking)
        conversations = ConversationStore.open(dirs[1], key, run_blocking)
        invites = FileInvites(InviteBook.load(data_dir), run_blocking)
        files = FileStore.open(data_dir / FILES_DIR, key.sealer("files"), run_blocking)
        ephemeral = EphemeralStore.open(
            data_dir / EPHEMERAL_DIR, key.sealer("ephemeral"), run_blocking
        )
        return cls(key, accounts, conversations, invites, files, ephemeral, run_blocking)
