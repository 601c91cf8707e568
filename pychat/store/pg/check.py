"""Read every row of a PostgreSQL store and open it with the at-rest key: what
``pychat-admin --database URL check`` reports (and what a migration is verified against).
Nothing is changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from cryptography.exceptions import InvalidTag

from pychat.store.atrest import AtRestKey
from pychat.store.pg.accounts import PgAccountStore
from pychat.store.pg.database import Database, DatabaseUnavailable


def _rows(database: Database, sql: str) -> Iterator[tuple[Any, ...]]:
    yield from database.query_now(sql)


def _open(sealer: Any, sealed: bytes, aad: str) -> Any:
    return json.loads(sealer.open(bytes(sealed), aad.encode()))


#: What :func:`check_database` counts.
KINDS = (
    "accounts",
    "conversations",
    "epochs",
    "group statements",
    "read markers",
    "messages",
    "files",
    "blobs",
)


class _Check:
    """One pass over the rows: counts of what opened, a line for each row that did not."""

    def __init__(self, database: Database, key: AtRestKey) -> None:
        self.database, self.key = database, key
        self.counts = dict.fromkeys(KINDS, 0)
        self.problems: list[str] = []
        self.ids: dict[str, str] = {}  # conversation key -> id
        self.last: dict[str, int] = {}  # conversation key -> last seq
        self.blobs: list[tuple[str, str]] = []  # (conversation id, blob name) messages name

    def accounts(self) -> None:
        accounts = PgAccountStore(self.database, self.key)
        for name_key, sealed in _rows(self.database, "SELECT name_key, sealed FROM accounts"):
            try:
                accounts._unseal(name_key, bytes(sealed))
                self.counts["accounts"] += 1
            except DatabaseUnavailable as exc:
                self.problems.append(str(exc))

    def conversations(self) -> None:
        conv = self.key.sealer("conversation")
        sql = "SELECT conv_key, sealed, last_seq FROM conversations"
        for conv_key, sealed, last_seq in _rows(self.database, sql):
            try:
                self.ids[conv_key] = _open(conv, sealed, f"pychat-pg/conversation/{conv_key}")["id"]
                self.last[conv_key] = int(last_seq)
                self.counts["conversations"] += 1
            except (InvalidTag, ValueError, KeyError):
                self.problems.append(f"the conversation row {conv_key[:12]}… does not open")
        for table, what, sql in (
            ("epochs", "epoch", "SELECT conv_key, epoch, sealed FROM conversation_epochs"),
            ("read markers", "read", "SELECT conv_key, member_key, sealed FROM conversation_reads"),
            ("group statements", "statement", "SELECT conv_key, n, sealed FROM group_statements"),
        ):
            for conv_key, where, sealed in _rows(self.database, sql):
                try:
                    _open(conv, sealed, f"pychat-pg/{what}/{conv_key}/{where}")
                    self.counts[table] += 1
                except (InvalidTag, ValueError):
                    self.problems.append(f"a {what} row of {conv_key[:12]}… does not open")

    def messages(self) -> None:
        conv = self.key.sealer("conversation")
        seqs: dict[str, list[int]] = {}
        sql = "SELECT conv_key, seq, sealed FROM messages ORDER BY conv_key, seq"
        for conv_key, seq, sealed in _rows(self.database, sql):
            try:
                record = _open(conv, sealed, f"pychat-pg/message/{conv_key}/{seq}")
            except (InvalidTag, ValueError):
                self.problems.append(f"message {seq} of {conv_key[:12]}… does not open")
                continue
            self.counts["messages"] += 1
            seqs.setdefault(conv_key, []).append(int(seq))
            if "blob" in record and conv_key in self.ids:
                self.blobs.append((self.ids[conv_key], record["blob"]))
        for conv_key, last in self.last.items():
            if seqs.get(conv_key, []) != list(range(1, last + 1)):
                self.problems.append(f"the messages of {conv_key[:12]}… are not 1..{last}")

    def files_and_blobs(self) -> None:
        files = self.key.sealer("files")
        for file_id, sealed in _rows(self.database, "SELECT file_id, sealed FROM files"):
            try:
                files.open(bytes(sealed), f"pychat-file-record\0{file_id}".encode())
                self.counts["files"] += 1
            except (InvalidTag, ValueError):
                self.problems.append(f"the record of file {file_id[:12]}… does not open")
        ephemeral = self.key.sealer("ephemeral")
        stored = dict(_rows(self.database, "SELECT name, sealed FROM blobs"))
        for conversation, name in self.blobs:
            if name not in stored:
                continue  # expired and swept
            try:
                aad = f"pychat-ephemeral\0{conversation}\0{name}".encode()
                ephemeral.open(bytes(stored[name]), aad)
                self.counts["blobs"] += 1
            except (InvalidTag, ValueError):
                self.problems.append(f"the blob {name[:12]}… does not open")


def check_database(database: Database, key: AtRestKey) -> tuple[dict[str, int], list[str]]:
    """Counts of what opened, and a line for each row that does not (or is out of place)."""
    check = _Check(database, key)
    check.accounts()
    check.conversations()
    check.messages()
    check.files_and_blobs()
    return check.counts, check.problems
