"""Copy a flat-file store into an empty PostgreSQL database, and verify the copy.

Every record is read through the repository interfaces of the flat files and written in the
rows :mod:`pychat.store.pg` keeps (sealed with the same at-rest key, keyed by the same
pseudonyms), in one transaction: an interrupted migration leaves an empty database.  Then the
database is opened as a server opens it, and :func:`fingerprint` (a count and a SHA-256 over
every record of each kind, read through the same interfaces) must be the same on both sides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from pychat.store.blocking import run_inline
from pychat.store.conversation import Conversation
from pychat.store.files_record import StoredFile
from pychat.store.invites import FileInvites
from pychat.store.pg.accounts import account_row
from pychat.store.pg.conversations import seal_row
from pychat.store.pg.database import Database
from pychat.store.pg.files import sealed_file_record
from pychat.store.server_store import ServerStore

#: What the fingerprint covers, in the order it is printed.
KINDS = ("accounts", "conversations", "messages", "files", "file chunks", "blobs", "invites")


class NotEmpty(Exception):
    """The database already holds a store."""


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _messages(store: ServerStore, conv: Conversation) -> list[dict[str, Any]]:
    return [dict(r) for r in run_inline(store.conversations.page(conv, 1, conv.last_seq + 1))]


def _file_body(record: StoredFile) -> dict[str, Any]:
    return {k: v for k, v in asdict(record).items() if k != "received"}


def fingerprint(store: ServerStore, invites: list[str]) -> dict[str, tuple[int, str]]:
    """For each kind of record: how many, and the SHA-256 of them all in a fixed order, read
    through the repository interfaces (so the flat files and the database compare)."""
    hashes = {kind: hashlib.sha256() for kind in KINDS}
    counts = dict.fromkeys(KINDS, 0)

    def add(kind: str, data: bytes) -> None:
        hashes[kind].update(hashlib.sha256(data).digest())
        counts[kind] += 1

    for account in sorted(store.accounts, key=lambda a: a.username):
        add("accounts", _canon(asdict(account)))
    for conv in sorted(store.conversations, key=lambda c: c.id):
        body = {"id": conv.id, "members": conv.members, "created": conv.created}
        if conv.group is not None:
            body["chain"] = conv.group.statements
        add("conversations", _canon({**body, "epochs": conv.epochs, "read": conv.read}))
        for record in _messages(store, conv):
            add("messages", _canon(record))
            if "blob" in record:
                text = run_inline(store.ephemeral.get(conv.id, record["blob"]))
                if text is not None:
                    add("blobs", _canon([conv.id, record["blob"], text]))
    for stored in sorted(store.files.records(), key=lambda f: f.id):
        add("files", _canon(_file_body(stored)))
        for index in range(stored.received):
            add("file chunks", run_inline(store.files.get(stored, index)))
    for digest in sorted(invites):
        add("invites", digest.encode())
    return {kind: (counts[kind], hashes[kind].hexdigest()) for kind in KINDS}


def file_invites(store: ServerStore) -> list[str]:
    """The digests of the flat files' open invites."""
    assert isinstance(store.invites, FileInvites)  # noqa: S101
    return list(store.invites.book.invites)


def database_invites(database: Database) -> list[str]:
    """The digests of the database's open invites."""
    return [str(d) for (d,) in database.query_now("SELECT digest FROM invites")]


def copy_into(source: ServerStore, database: Database) -> None:
    """Write every record of ``source`` (the flat files) into the empty ``database``, in one
    transaction.

    :raises NotEmpty: the database holds accounts or conversations already.
    """
    if database.query_now("SELECT 1 FROM accounts UNION ALL SELECT 1 FROM conversations LIMIT 1"):
        raise NotEmpty("the database already holds a store: migrate into an empty one")
    rows = _rows(source)
    d = database.run(_insert_all, rows)
    failures: list[Any] = []
    d.addErrback(failures.append)
    if failures:
        failures[0].raiseException()


def _rows(source: ServerStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row to insert, by table, sealed as the database keeps them."""
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _INSERTS}
    rows["accounts"] = [account_row(source.key, a) for a in source.accounts]
    for conv in source.conversations:
        _conversation_rows(source, conv, rows)
    files = source.key.sealer("files")
    for record in source.files.records():
        rows["files"].append((record.id, record.expires, sealed_file_record(files, record)))
        for index in range(record.received):
            chunk = run_inline(source.files.get(record, index))
            rows["file_chunks"].append((record.id, index, chunk))
    assert isinstance(source.invites, FileInvites)  # noqa: S101
    for digest, invite in source.invites.book.invites.items():
        rows["invites"].append((digest, invite["created"], invite["expires"]))
    return rows


def _conversation_rows(
    source: ServerStore, conv: Conversation, rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    """A conversation's rows: its own, its epochs, read markers, messages and blobs."""
    key = source.key
    sealer, names, ephemeral = (
        key.sealer("conversation"),
        key.name_hasher("conversation"),
        key.sealer("ephemeral"),
    )
    ck = names(*conv.name_parts)
    meta: dict[str, Any] = {"id": conv.id, "members": list(conv.members), "time": conv.created}
    if conv.group is not None:
        meta["group"] = True
        for n, statement in enumerate(conv.group.statements, start=1):
            sealed = seal_row(
                sealer, {"statement": statement, "time": conv.created}, "statement", ck, str(n)
            )
            rows["group_statements"].append((ck, n, sealed))
    rows["conversations"].append((ck, seal_row(sealer, meta, "conversation", ck), conv.last_seq))
    for n, envelope in enumerate(conv.epochs, start=1):
        epoch = {"envelope": envelope, "time": conv.created}
        rows["conversation_epochs"].append((ck, n, seal_row(sealer, epoch, "epoch", ck, str(n))))
    for user, seq in conv.read.items():
        mk = names(conv.id, user)
        marker = seal_row(sealer, {"user": user, "seq": seq}, "read", ck, mk)
        rows["conversation_reads"].append((ck, mk, seq, marker))
    for record in _messages(source, conv):
        seq = record["seq"]
        client_key = names(conv.id, record["sender"], record["client_id"])
        rows["messages"].append(
            (ck, seq, client_key, seal_row(sealer, record, "message", ck, str(seq)))
        )
        name = record.get("blob")
        text = run_inline(source.ephemeral.get(conv.id, name)) if name is not None else None
        if name is not None and text is not None:
            aad = f"pychat-ephemeral\0{conv.id}\0{name}".encode()
            expires = int(name.split("-", 1)[0])
            rows["blobs"].append((name, expires, ephemeral.seal(text.encode(), aad)))


_INSERTS = {
    "accounts": "INSERT INTO accounts (name_key, sealed) VALUES (%s, %s)",
    "conversations": "INSERT INTO conversations (conv_key, sealed, last_seq) VALUES (%s, %s, %s)",
    "conversation_epochs": (
        "INSERT INTO conversation_epochs (conv_key, epoch, sealed) VALUES (%s, %s, %s)"
    ),
    "group_statements": "INSERT INTO group_statements (conv_key, n, sealed) VALUES (%s, %s, %s)",
    "conversation_reads": (
        "INSERT INTO conversation_reads (conv_key, member_key, seq, sealed) VALUES (%s, %s, %s, %s)"
    ),
    "messages": "INSERT INTO messages (conv_key, seq, client_key, sealed) VALUES (%s, %s, %s, %s)",
    "files": "INSERT INTO files (file_id, expires, sealed) VALUES (%s, %s, %s)",
    "file_chunks": "INSERT INTO file_chunks (file_id, n, data) VALUES (%s, %s, %s)",
    "blobs": "INSERT INTO blobs (name, expires, sealed) VALUES (%s, %s, %s)",
    "invites": "INSERT INTO invites (digest, created, expires) VALUES (%s, %s, %s)",
}


def _insert_all(cursor: Any, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, sql in _INSERTS.items():  # in this order: every reference before its rows
        if rows[table]:
            cursor.executemany(sql, rows[table])
