"""Conversations: one pair of append-only sealed logs per pair of users.

For the pair (user1, user2) the files are ``conversations/<keyed hash of the pair>.msg`` (the
messages, in sequence order: record i is sequence number i + 1) and ``.ctl`` (the
conversation's creation, its key epochs and the members' read markers).  No username appears
in a file name or in clear inside a file.

Everything about a conversation except message bodies is held in memory (read from the
control logs at start); message bodies are read from disk by offset when paged, so appending
and paging cost the same at a hundred messages as at a million.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from pychat.crypto.group_chain import GroupState
from pychat.durable import ensure_private_dir, fsync_dir
from pychat.store.atrest import AtRestKey, SealedDirectory
from pychat.store.blocking import BlockingRunner
from pychat.store.control import ControlLogs, open_record
from pychat.store.conversation import (
    ChainChange,
    Conversation,
    GroupChain,
    NewMessage,
    check_place,
    group_name_parts,
    pair,
)
from pychat.store.conversation_files import ConversationFiles, LoggedConversation, report_cut
from pychat.store.conversation_index import ConversationIndex
from pychat.store.errors import LogDamaged, StorageFailure
from pychat.store.group_commit import GroupCommitter
from pychat.store.journal import Journal, recover
from pychat.wire.ids import conversation_id
from pychat.wire.message_text import MessageRecord
from pychat.wire.shapes import Duplicate, Envelope, StoredMessage

__all__ = ["Conversation", "ConversationStore", "Landed", "NewMessage"]

#: A stored message record (``seq``, ``sender``, ``epoch``, ``ciphertext``, ``client_id``,
#: ``time``, and a disappearing message's ``blob`` and ``expires``).
MessageRow = StoredMessage

log = Logger(namespace="pychat.store")


class ConversationStore:
    """All conversations of the data dir."""

    def __init__(self, place: SealedDirectory, journal: Journal) -> None:
        self.directory = place.directory
        self._run = place.run_blocking
        self.journal = journal
        self.files = ConversationFiles(place.directory, place.sealer, place.names, journal)
        self.committer = GroupCommitter(self._run, journal)
        self.control = ControlLogs(place.sealer, self._run, self.committer, report_cut)
        self._index: ConversationIndex[LoggedConversation] = ConversationIndex()

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, key: AtRestKey, run_blocking: BlockingRunner
    ) -> ConversationStore:
        """Replay the journal, then load every conversation under ``directory``, cutting
        torn tails.

        :raises StoreError: a damaged journal, a control log that does not open, or messages
            without control.
        """
        ensure_private_dir(directory)
        journal = recover(directory, on_cut=report_cut)
        store = cls(SealedDirectory.of(directory, key, "conversation", run_blocking), journal)
        for stale in directory.glob("*.compact"):
            stale.unlink()  # a compaction that did not finish; the original is intact
        for ctl_path in sorted(directory.glob("*.ctl")):
            conv = store.files.load(ctl_path)
            if conv is not None:
                store._index.add(conv)
                if conv.damaged is None:
                    store.control.compact_at_start(conv)
        return store

    async def close(self) -> None:
        """Sync every log and empty the journal (once everything is on disk), save each
        message log's index, and close the files."""
        convs = list(self._index)
        self.control.save_reads_soon()
        await self.committer.close([f for c in convs for f in (c.messages, c.control)])
        for conv in convs:
            try:
                conv.messages.write_index()
            except OSError as exc:
                log.warn("could not save the index of {p}: {e}", p=str(conv.messages.path), e=exc)
            conv.messages.close()
            conv.control.close()
        self._index.clear()

    # -- queries -------------------------------------------------------------------------------

    def get(self, conversation_id: str) -> LoggedConversation | None:
        """The conversation with this id, or None."""
        return self._index.get(conversation_id)

    def find(self, a: str, b: str) -> LoggedConversation | None:
        """The conversation of the pair, or None."""
        return self._index.find(a, b)

    def for_user(self, username: str) -> list[LoggedConversation]:
        """The user's conversations, most recently active first."""
        return self._index.for_user(username)

    def __iter__(self) -> Iterator[LoggedConversation]:
        return iter(self._index)

    async def last_stored(self, conv: Conversation) -> int:
        """The seq of the newest durable message (this process is the only writer)."""
        return conv.last_seq

    async def page(self, conv: Conversation, first_seq: int, stop_seq: int) -> list[StoredMessage]:
        """Messages with ``first_seq <= seq < stop_seq``."""
        log_file = _logged(conv).messages
        records = await self._run(log_file.read_range, first_seq - 1, stop_seq - 1)
        return cast(list[StoredMessage], records)  # what append_message wrote

    # -- changes (each durable before it returns) ---------------------------------------------

    async def create(self, a: str, b: str, envelope: Envelope, now: float) -> LoggedConversation:
        """A new conversation between ``a`` and ``b`` with its first key epoch."""
        members = pair(a, b)
        return await self._index.create_once(members, lambda: self._create(members, envelope, now))

    async def _create(
        self, members: tuple[str, str], envelope: Envelope, now: float
    ) -> LoggedConversation:
        # Opening (creating) the two files touches the disk: a thread's work.
        ctl, msg = await self._run(self.files.logs, self.files.stem(members))
        conv = LoggedConversation(
            conversation_id(*members), members, now, last_activity=now, messages=msg, control=ctl
        )
        ctl.append(open_record(conv))
        ctl.append({"t": "epoch", "envelope": envelope, "time": now})
        conv.epochs.append(envelope)
        self._index.add(conv)
        await self.committer.durable(ctl)
        return conv

    async def create_group(
        self, statement: dict[str, Any], state: GroupState, envelope: Envelope, now: float
    ) -> LoggedConversation:
        """A new group, from its checked create statement, with its first key epoch."""
        if self._index.get(state.group) is not None:
            raise ValueError("group exists")
        ctl, msg = await self._run(self.files.logs, self.files.stem(group_name_parts(state.group)))
        if self._index.get(state.group) is not None:  # the same create, twice at once
            raise ValueError("group exists")
        conv = LoggedConversation(
            state.group,
            tuple(sorted(state.members)),
            now,
            last_activity=now,
            group=GroupChain([statement], state),
            messages=msg,
            control=ctl,
        )
        ctl.append(open_record(conv))
        ctl.append({"t": "epoch", "envelope": envelope, "time": now})
        conv.epochs.append(envelope)
        self._index.add(conv)
        await self.committer.durable(ctl)
        return conv

    async def change_group(
        self,
        conv: Conversation,
        statement: dict[str, Any],
        state: GroupState,
        envelope: Envelope | None,
        now: float,
    ) -> None:
        """Append a checked statement to a group's chain (the next one), with the key epoch
        it begins when it comes with one (placed after the last message).

        :raises EpochRefused: the envelope is not the next epoch, or placed elsewhere.
        :raises ChainMoved: the statement is not the next one any more.
        """
        logged = _logged(conv)
        before = ChainChange.begin(conv, statement, state, envelope, logged.position)
        record = {"t": "chain", "statement": statement, "envelope": envelope, "time": now}
        self._index.regroup(conv, before.members_after)
        try:
            await self.control.append(logged, record)
        except (StorageFailure, LogDamaged):
            self._index.regroup(conv, before.members)
            before.undo(conv)  # not stored: not there
            raise

    async def add_epoch(self, conv: Conversation, envelope: Envelope, now: float) -> None:
        """Append a key epoch, the next one, placed after the last message.

        :raises EpochRefused: not the next number, or placed elsewhere.
        """
        logged = _logged(conv)
        check_place(envelope, len(conv.epochs), logged.position)
        conv.epochs.append(envelope)
        try:
            await self.control.append(logged, {"t": "epoch", "envelope": envelope, "time": now})
        except (StorageFailure, LogDamaged):
            conv.epochs.pop()  # not stored: not there
            raise

    async def set_read(self, conv: Conversation, username: str, seq: int) -> None:
        """Move ``username``'s read marker forward to ``seq``."""
        if seq <= conv.read.get(username, 0):
            return
        conv.read[username] = seq
        logged = _logged(conv)
        await self.control.append(logged, {"t": "read", "user": username, "seq": seq})
        self.control.maybe_compact(logged)

    def set_read_nowait(self, conv: Conversation, username: str, seq: int) -> None:
        """Move a read marker forward without waiting for disk: it is appended at the start
        of the next group commit, once however often it moved meanwhile."""
        if seq <= conv.read.get(username, 0):
            return
        conv.read[username] = seq
        self.control.read_moved(_logged(conv), username)

    async def delete(self, conv: Conversation) -> None:
        """Remove a conversation and its files for good (an account is being deleted)."""
        conv = _logged(conv)
        for log_file in (conv.messages, conv.control):
            await self.committer.durable(log_file)  # what was in flight lands first
        for log_file in (conv.messages, conv.control):
            await self.committer.marker(log_file.path.name, "deleted")
        self.control.forget(conv)
        self._index.remove(conv)
        await self._run(_remove_files, conv)

    def pace_read_markers(self, clock: IReactorTime, interval: float) -> None:
        """See :meth:`ControlLogs.pace_reads`."""
        self.control.pace_reads(clock, interval)

    def pace_telling(self, clock: IReactorTime, per_turn: int) -> None:
        """See :meth:`GroupCommitter.pace_telling`."""
        self.committer.pace_telling(clock, per_turn)

    def wait_durable(self, conv: Conversation) -> defer.Deferred[None]:
        """Fires once every message appended to ``conv`` so far is durable."""
        return self.committer.durable(_logged(conv).messages)

    def duplicate(self, conv: Conversation, sender: str, client_id: str) -> Duplicate | None:
        """The ``seq`` and ``time`` of the message this (sender, client id) already made, if
        it is recent."""
        found = conv.recent_ids.get(sender, client_id)
        return None if found is None else {"seq": found[0], "time": found[1]}

    def append_message(self, conv: Conversation, message: NewMessage, then: Landed) -> None:
        """Write a message.  ``then(record, None)`` is called with its record (``seq`` and
        ``time`` set) once it is durable (nobody may hear of the message before), or
        ``then(record, error)`` if it never will be (perhaps before this returns).  No
        Deferred: this is the busiest path of the server."""
        conv = _logged(conv)
        seq = len(conv.messages) + 1
        fields: dict[str, Any]
        if message.extra:
            fields = {
                "seq": seq,
                "sender": message.sender,
                "epoch": message.epoch,
                "ciphertext": message.ciphertext,
                "client_id": message.client_id,
                "time": message.time,
                **message.extra,
            }
        else:
            fields = MessageRecord.plain(
                seq,
                message.sender,
                message.epoch,
                message.ciphertext,
                message.client_id,
                message.time,
            )
        conv.messages.append(fields)
        record = cast(StoredMessage, fields)
        conv.recent_ids.remember(message.sender, message.client_id, seq, message.time)
        conv.last_activity = message.time
        self.committer.when_durable(conv.messages, _Landing(conv, record, then))


#: Told that an appended message is durable: ``(record, None)``, or ``(record, error)``.
Landed = Callable[[StoredMessage, BaseException | None], None]


class _Landing:
    """What happens when a message's batch is done: the conversation's durable point moves,
    or (rolled back, never acknowledged) its client id is forgotten so a retry is new."""

    __slots__ = ("conv", "record", "then")

    def __init__(self, conv: Conversation, record: StoredMessage, then: Landed) -> None:
        self.conv, self.record, self.then = conv, record, then

    def __call__(self, error: BaseException | None) -> None:
        conv, record = self.conv, self.record
        if error is None:
            conv.durable_seq = max(conv.durable_seq, record["seq"])
        else:
            conv.recent_ids.forget(record["sender"], record["client_id"], record["seq"])
        self.then(record, error)


def _remove_files(conv: LoggedConversation) -> None:
    """Close and unlink a deleted conversation's logs and index, and sync the directory."""
    for log_file in (conv.messages, conv.control):
        log_file.close()
        log_file.path.unlink(missing_ok=True)
        log_file.path.with_name(log_file.path.name + ".idx").unlink(missing_ok=True)
    fsync_dir(conv.messages.path.parent)


def _logged(conv: Conversation) -> LoggedConversation:
    """``conv`` as the flat files hold it (every conversation this store gives out is)."""
    if not isinstance(conv, LoggedConversation):
        raise TypeError(f"conversation {conv.id} is not one of this store's")
    return conv
