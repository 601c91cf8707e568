"""Re-encrypting the whole store under a new at-rest key, safe against a crash at any point.

With the server stopped (the caller holds the data dir's lock):

1. the store is opened with the old key (the journal is replayed);
2. a new key is written beside the old one (``store.key.new``);
3. every account and every conversation log is written again under the new key into
   ``DATA_DIR/rotating/`` (new file names too: they are keyed hashes), one conversation at a
   time and its records streamed, each file synced; the old store is closed cleanly;
4. ``rotation-commit.json`` is written atomically: **the commit point**;
5. the new directories are renamed into place, the new key over the old one, and what is left
   of the old store is removed; last, the commit file.

A crash before step 4 leaves the old store and the old key as they were (the leftovers are
removed by the next run); a crash after it is finished by the next run, from whatever step it
reached, since every step of 5 can be done again.  A server never starts beside leftovers:
:func:`check_no_rotation` refuses with what to do.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.accounts import AccountStore
from pychat.store.atrest import AtRestKey, SealedDirectory
from pychat.store.blocking import inline_runner, run_inline
from pychat.store.files import FileStore
from pychat.store.rotation_state import COMMIT, ROTATING, check_no_rotation, new_key_path
from pychat.store.sealed_log import SealedLog
from pychat.store.server_store import ServerStore

__all__ = ["check_no_rotation", "rotate", "settle"]

PARTS = ("accounts", "conversations", "files", "ephemeral")


def settle(data_dir: Path, key_path: Path) -> str | None:
    """Finish a committed rotation, or remove an uncommitted one; say which (None: neither)."""
    if (data_dir / COMMIT).exists():
        _finish(data_dir, key_path)
        return "finished an interrupted rotation (the new key is in place)"
    leftovers = (data_dir / ROTATING).exists() or new_key_path(key_path).exists()
    if leftovers:
        shutil.rmtree(data_dir / ROTATING, ignore_errors=True)
        new_key_path(key_path).unlink(missing_ok=True)
        fsync_dir(data_dir)
        return "removed an interrupted rotation that had not committed (the old key stays)"
    return None


def rotate(data_dir: Path, key_path: Path) -> dict[str, int]:
    """Re-encrypt the store in ``data_dir`` (its key at ``key_path``) under a new key."""
    store = ServerStore.open(data_dir, key_path, inline_runner)
    try:
        new_key = AtRestKey.create(new_key_path(key_path))
        target = data_dir / ROTATING
        shutil.rmtree(target, ignore_errors=True)
        for part in PARTS:
            ensure_private_dir(target / part)
        fresh = AccountStore(
            SealedDirectory.of(target / "accounts", new_key, "account", inline_runner)
        )
        accounts = list(store.accounts)
        for account in accounts:
            run_inline(fresh.create(account))
        place = SealedDirectory.of(target / "conversations", new_key, "conversation", inline_runner)
        conversations = messages = 0
        for conv in store.logs:  # one at a time, its records streamed
            stem = place.names(*conv.name_parts)
            for label, log_file, stop in (
                ("ctl", conv.control, len(conv.control)),
                ("msg", conv.messages, conv.last_seq),
            ):
                path = target / "conversations" / f"{stem}.{label}"
                SealedLog.write_fresh(
                    path, place.sealer, label, log_file.iter_records(stop), at=path
                )
            conversations += 1
            messages += conv.last_seq
        _rotate_files(store, target / "files", new_key)
        _rotate_ephemeral(store, target / "ephemeral", new_key)
    finally:
        run_inline(store.close())  # logs synced, journal emptied
    for part in PARTS:
        fsync_dir(target / part)
    fsync_dir(target)
    body = {"format": "pychat-rotation", "v": 1, "new_key": new_key_path(key_path).name}
    write_atomic(data_dir / COMMIT, json.dumps(body).encode() + b"\n", mode=0o600)
    _finish(data_dir, key_path)
    return {"accounts": len(accounts), "conversations": conversations, "messages": messages}


def _rotate_files(store: Any, target: Path, new_key: AtRestKey) -> None:
    """File records sealed again under the new key; the data (the clients' ciphertext, not
    sealed by the store key) is hard-linked, not copied."""
    fresh = FileStore(target, new_key.sealer("files"), inline_runner)
    for record in store.files.records():
        os.link(store.files.data_path(record.id), target / f"{record.id}.data")
        fresh.write_record(record)


def _rotate_ephemeral(store: Any, target: Path, new_key: AtRestKey) -> None:
    """Disappearing messages' blobs sealed again under the new key (the conversation each
    belongs to is in its record, so the records are read to find it)."""
    sealer = new_key.sealer("ephemeral")
    for conv in store.conversations:
        for record in conv.messages.iter_records(conv.last_seq):
            name = record.get("blob")
            if not name:
                continue
            text = run_inline(store.ephemeral.get(conv.id, name))
            if text is not None:
                aad = f"pychat-ephemeral\0{conv.id}\0{name}".encode()
                write_atomic(target / f"{name}.blob", sealer.seal(text.encode(), aad), mode=0o600)


def _finish(data_dir: Path, key_path: Path) -> None:
    """Step 5; every part of it may be done again after a crash."""
    rotating = data_dir / ROTATING
    for part in PARTS:
        if (rotating / part).exists():
            if (data_dir / part).exists():
                os.replace(data_dir / part, data_dir / f"old-{part}")
            os.replace(rotating / part, data_dir / part)
    fsync_dir(data_dir)
    if new_key_path(key_path).exists():
        os.replace(new_key_path(key_path), key_path)
        fsync_dir(key_path.parent)
    for part in PARTS:
        shutil.rmtree(data_dir / f"old-{part}", ignore_errors=True)
    if rotating.exists():
        rotating.rmdir()
    (data_dir / COMMIT).unlink(missing_ok=True)
    fsync_dir(data_dir)
