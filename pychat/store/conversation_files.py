"""A conversation's two sealed logs on disk: opened (or created), and read back at start.

:class:`ConversationFiles` opens ``<stem>.ctl`` and ``<stem>.msg`` for a pair, and at start
rebuilds a :class:`~pychat.store.conversation.Conversation` from them: its creation record,
epochs and read markers from the control log, its recent client ids from the tail of the
message log.  A torn tail (an unfinished last line) is cut; a record that fails to
authenticate is damage: the file is copied aside, kept, and the conversation is served
read-only up to it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from pychat.store.atrest import NameHasher, RecordSealer
from pychat.store.conversation import Conversation, apply_chain
from pychat.store.errors import StoreError
from pychat.store.journal import Journal
from pychat.store.recent_ids import RECENT_CLIENT_IDS
from pychat.store.sealed_log import SealedLog

log = Logger(namespace="pychat.store")


@dataclass
class LoggedConversation(Conversation):
    """A conversation of the flat files: its two sealed logs, from which its place and size
    are read."""

    messages: SealedLog = field(kw_only=True)
    control: SealedLog = field(kw_only=True)
    #: While its control log is being compacted: the records waiting for the new log.
    compacting: list[tuple[dict[str, Any], defer.Deferred[None]]] | None = field(
        default=None, kw_only=True
    )

    @property
    def position(self) -> int:
        """The seq of the newest message written to its log (durable or not yet)."""
        return len(self.messages)

    @property
    def stored_bytes(self) -> int:
        """The durable bytes of its two logs."""
        return self.messages.durable_end + self.control.durable_end


def report_cut(path: Path, cut: int) -> None:
    """Log a torn tail cut off a log at open."""
    log.warn("cut a torn record of {n} bytes off the end of {path}", n=cut, path=str(path))


class ConversationFiles:
    """Where each pair's two logs live, and how they are read back."""

    def __init__(
        self,
        directory: Path,
        sealer: RecordSealer,
        names: NameHasher,
        journal: Journal,
    ) -> None:
        self.directory = directory
        self._sealer = sealer
        self._names = names
        self._journal = journal

    def stem(self, parts: tuple[str, ...]) -> str:
        """The keyed-hash file name (without suffix) of a conversation's logs, from its
        :attr:`~pychat.store.conversation.Conversation.name_parts`."""
        return self._names(*parts)

    def logs(self, stem: str) -> tuple[SealedLog, SealedLog]:
        """The control and message logs of ``stem``, opened (created if new)."""
        opened = [
            SealedLog.open(
                self.directory / f"{stem}.{label}",
                self._sealer,
                label,
                on_cut=report_cut,
                journal=self._journal,
            )
            for label in ("ctl", "msg")
        ]
        return opened[0], opened[1]

    def load(self, ctl_path: Path) -> LoggedConversation | None:
        """The conversation whose control log is ``ctl_path``, or None when there is nothing
        to serve (created and crashed before its first record, or its creation unreadable).

        :raises StoreError: the logs are in another pair's file.
        """
        stem = ctl_path.stem
        ctl, msg = self.logs(stem)
        records = _readable(ctl, 0)
        if not records or records[0].get("t") != "open":
            if records or len(msg) or ctl.damaged_at is not None:
                log.error(
                    "{path}: the conversation's creation record is unreadable; it is not "
                    "served (its files are kept as they are)",
                    path=str(ctl_path),
                )
            ctl.close()
            msg.close()
            return None
        first = records[0]
        conv = LoggedConversation(
            first["id"], tuple(sorted(first["members"])), first["time"], messages=msg, control=ctl
        )
        if first.get("group"):
            apply_chain(conv, first["group"])
        if self._names(*conv.name_parts) != stem:
            raise StoreError(ctl_path, "conversation log is in the wrong file")
        conv.last_activity = first["time"]
        for record in records[1:]:
            apply_control(conv, record)
        _load_messages(conv)
        return conv


def _load_messages(conv: LoggedConversation) -> None:
    """The durable point, recent client ids, last activity and damage of ``conv``'s logs."""
    ctl, msg = conv.control, conv.messages
    tail = _readable(msg, max(0, len(msg) - RECENT_CLIENT_IDS))
    conv.durable_seq = len(msg) if msg.damaged_at is None else msg.damaged_at
    for record in tail:
        conv.remember(record)
    if tail:
        conv.last_activity = max(conv.last_activity, tail[-1]["time"])
    for damaged in (ctl, msg):
        if damaged.damaged_at is not None:
            conv.damaged = f"record {damaged.damaged_at} of its {damaged.label} log"
    if conv.damaged is None and not msg.used_index and len(msg):
        msg.write_index()  # a crash before the next clean stop then costs a tail scan only


def apply_control(conv: Conversation, record: dict[str, Any]) -> None:
    """Apply one control record (a key epoch, a read marker, a group's statement with the
    epoch it began) to ``conv``."""
    kind = record.get("t")
    if kind == "epoch":
        conv.epochs.append(record["envelope"])
    elif kind == "chain":
        apply_chain(conv, [record["statement"]])
        if record.get("envelope") is not None:
            conv.epochs.append(record["envelope"])
    elif kind == "read":
        conv.read[record["user"]] = max(conv.read.get(record["user"], 0), record["seq"])


def _readable(log_file: SealedLog, first: int) -> list[dict[str, Any]]:
    """Records from ``first`` on, or up to the first damaged one (then kept aside)."""
    if log_file.damaged_at is None:
        try:
            return log_file.read_range(first, len(log_file))
        except StoreError:
            log_file.find_damage()
    damaged = log_file.damaged_at
    assert damaged is not None  # noqa: S101 - found just above or at open
    aside = log_file.path.with_name(f"{log_file.path.name}.damaged-{int(time.time())}")
    shutil.copy2(log_file.path, aside)
    log.error(
        "record {n} of {path} does not authenticate: damage, not a crash; the "
        "conversation is read-only up to it and a copy of the file is kept at {aside}",
        n=damaged,
        path=str(log_file.path),
        aside=str(aside),
    )
    return log_file.read_range(first, damaged) if first < damaged else []
