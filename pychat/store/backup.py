"""Backups of a data dir while the server runs, restoring one, and checking a stopped store.

A backup is a directory holding copies of the account files, of every conversation log up to
the end of its last durable batch, and of the server's own TLS certificate and key when they
live in the data dir; ``pychat-backup.json`` (written last) lists every file with its size and
SHA-256.  Nothing in it is in clear that is not in clear in the data dir.  The at-rest key is
not in it: back it up apart (a backup that holds its key protects nothing).

Consistency without stopping anything: logs are append-only, so the prefix of each log up to
its durable end, taken on the reactor thread, is a state the store really was in, and every
message acknowledged before the backup began lies inside it.  The logs are opened on the
reactor thread as they are measured, so a control log compacted (renamed over) while the copy
runs is still read from the file that was measured.  Account files are replaced whole
(rename), so a copy is one version or the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pychat.durable import ensure_private_dir, fsync_dir, write_atomic
from pychat.store.atrest import AtRestKey
from pychat.store.errors import StoreError
from pychat.store.invites import InviteBook

MANIFEST = "pychat-backup.json"
FORMAT = "pychat-backup"
TLS_FILES = ("tls-cert.pem", "tls-key.pem")
_CHUNK = 1 << 20


@dataclass
class SnapshotPlan:
    """What to copy: (path inside the data dir, open descriptor, bytes to copy) and whole
    files; made on the reactor thread, copied in another."""

    data_dir: Path
    logs: list[tuple[str, int, int]] = field(default_factory=list)
    whole: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def release(self) -> None:
        """Close the descriptors opened for the copy."""
        for _, fd, _ in self.logs:
            os.close(fd)
        self.logs = []


def plan_snapshot(data_dir: Path, accounts: Any, conversations: Any) -> SnapshotPlan:
    """Measure the durable state of the store now (reactor thread: no disk reads).

    :param accounts: the account repository (only counted: its files are copied whole).
    :param conversations: the conversation store (its logs and their durable ends).
    """
    plan = SnapshotPlan(data_dir)
    messages = 0
    for conv in conversations:
        for log_file in (conv.messages, conv.control):
            rel = f"conversations/{log_file.path.name}"
            fd = os.open(log_file.path, os.O_RDONLY)  # the file measured, even if renamed over
            plan.logs.append((rel, fd, log_file.durable_end))
        messages += conv.last_seq
    plan.whole = sorted(f"accounts/{p.name}" for p in (data_dir / "accounts").glob("*.json")) + [
        name for name in TLS_FILES if (data_dir / name).exists()
    ]
    plan.counts = {
        "accounts": len(accounts),
        "conversations": len(plan.logs) // 2,
        "messages": messages,
    }
    return plan


def write_snapshot(plan: SnapshotPlan, dest: Path) -> dict[str, Any]:
    """Copy what ``plan`` measured into the new directory ``dest`` and write its manifest
    last (blocking: a thread).  Returns the manifest.

    :raises FileExistsError: ``dest`` exists and is not empty.
    """
    files: dict[str, dict[str, Any]] = {}
    try:
        if dest.exists() and any(dest.iterdir()):
            raise FileExistsError(f"{dest} exists and is not empty")
        for sub in ("accounts", "conversations"):
            ensure_private_dir(dest / sub)
        for rel, fd, length in plan.logs:
            files[rel] = _copy_prefix(fd, length, dest / rel)
        for rel in plan.whole:
            data = (plan.data_dir / rel).read_bytes()
            files[rel] = _write_new(dest / rel, data)
        for sub in ("accounts", "conversations"):
            fsync_dir(dest / sub)
    finally:
        plan.release()
    manifest = {"format": FORMAT, "v": 1, "time": time.time(), **plan.counts, "files": files}
    write_atomic(dest / MANIFEST, json.dumps(manifest, indent=1).encode() + b"\n", mode=0o600)
    return manifest


def _copy_prefix(fd: int, length: int, target: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        position = 0
        while position < length:
            chunk = os.pread(fd, min(_CHUNK, length - position), position)
            if not chunk:
                raise StoreError(target, f"the log ended at {position} of {length} bytes")
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
            position += len(chunk)
        os.fsync(out)
    finally:
        os.close(out)
    return {"size": length, "sha256": digest.hexdigest()}


def _write_new(target: Path, data: bytes) -> dict[str, Any]:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def read_manifest(backup: Path) -> dict[str, Any]:
    """The backup's manifest, checked against every file it lists.

    :raises StoreError: no manifest (an unfinished backup), or a file missing or altered.
    """
    try:
        manifest: dict[str, Any] = json.loads((backup / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        raise StoreError(backup / MANIFEST, f"not a finished pyChat backup ({exc})") from None
    if manifest.get("format") != FORMAT or manifest.get("v") != 1:
        raise StoreError(backup / MANIFEST, "not a pyChat backup manifest")
    for rel, meta in manifest["files"].items():
        path = backup / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise StoreError(path, "listed in the manifest but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            raise StoreError(path, "does not match the manifest (altered or truncated)")
    return manifest


def restore(backup: Path, data_dir: Path) -> dict[str, Any]:
    """Copy a checked backup into ``data_dir``, which must be empty or absent.

    :raises FileExistsError: ``data_dir`` holds anything.
    :raises StoreError: the backup is unfinished or damaged (nothing is copied then).
    """
    if data_dir.exists() and any(data_dir.iterdir()):
        raise FileExistsError(f"{data_dir} is not empty: restore only into an empty data dir")
    manifest = read_manifest(backup)
    ensure_private_dir(data_dir)
    for sub in ("accounts", "conversations"):
        ensure_private_dir(data_dir / sub)
    for rel in manifest["files"]:
        _write_new(data_dir / rel, (backup / rel).read_bytes())
        if rel == "tls-cert.pem":
            os.chmod(data_dir / rel, 0o644)
    for sub in ("accounts", "conversations", "."):
        fsync_dir(data_dir / sub)
    return manifest


def check(data_dir: Path, key: AtRestKey) -> tuple[dict[str, int], list[str]]:
    """Read every account and every record of every log; change nothing (blocking).

    :returns: (counts, problems): each problem names a file and what is wrong with it.
    """
    from pychat.store.accounts import AccountStore
    from pychat.store.atrest import SealedDirectory
    from pychat.store.blocking import inline_runner
    from pychat.store.sealed_log import check_log

    problems: list[str] = []
    counts = {"accounts": 0, "conversations": 0, "messages": 0, "journal records": 0}
    place = SealedDirectory.of(data_dir / "accounts", key, "account", inline_runner)
    accounts = AccountStore(place)
    for path in sorted((data_dir / "accounts").glob("*.json")):
        try:
            accounts.read_file(path)
            counts["accounts"] += 1
        except StoreError as exc:
            problems.append(str(exc))
    place = SealedDirectory.of(data_dir / "conversations", key, "conversation", inline_runner)
    for path in sorted((data_dir / "conversations").glob("*.ctl")):
        counts["conversations"] += 1
        for log_path in (path, path.with_suffix(".msg")):
            records, found = check_log(log_path, place.sealer, log_path.suffix[1:])
            problems += found
            if log_path.suffix == ".msg":
                counts["messages"] += records
    try:
        InviteBook.load(data_dir)
    except StoreError as exc:
        problems.append(str(exc))
    for journal in sorted((data_dir / "conversations").glob("journal-*.jnl")):
        counts["journal records"] += journal.read_bytes().count(b"\n")
    return counts, problems
