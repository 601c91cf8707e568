"""Conversation ops: ``open_conversation``, ``add_epoch``, ``epochs``, ``conversations``,
``send``, ``history`` and ``mark_read``.

Every op that names a conversation checks that the caller is one of its two members; to
anyone else the conversation does not exist (``unknown_conversation``), so ids cannot be
probed.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.python.failure import Failure

from pychat import limits
from pychat.server.handlers.common import (
    CONVERSATION_ID_MAX,
    RAW_USERNAME_MAX,
    HandlerDeps,
    NoParams,
    OpDef,
    current_user,
)
from pychat.server.handlers.envelope_checks import check_envelope, refused_epoch
from pychat.server.handlers.group_checks import check_group_envelope
from pychat.server.handlers.summaries import member_conversation, pair_summary, summary
from pychat.server.ops import Later, OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.store.conversation import (
    Conversation,
    EpochRefused,
    EpochsMoved,
    NewMessage,
)
from pychat.store.errors import Resent
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.message_text import message_push_line
from pychat.wire.schema import bad_field, bounded
from pychat.wire.shapes import (
    AddEpochReply,
    ConversationPush,
    ConversationsReply,
    EpochPush,
    EpochsReply,
    HistoryReply,
    Message,
    OpenReply,
    ReadReply,
    SendReply,
    StoredMessage,
)
from pychat.wire.usernames import normal_form


@dataclass(frozen=True)
class OpenParams:
    """``open_conversation``: the peer, and the first key envelope when it is new."""

    peer: str = bounded(max_len=RAW_USERNAME_MAX)
    envelope: dict[str, Any] | None = None


@dataclass(frozen=True)
class EpochParams:
    """``add_epoch``: a new key envelope."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    envelope: dict[str, Any] = bounded()


@dataclass(frozen=True)
class ConversationParams:
    """An op about one conversation."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)


@dataclass(frozen=True)
class SendParams:
    """``send``: one encrypted message."""

    epoch: int = bounded(min=1)
    ciphertext: str = bounded()
    client_id: str = bounded(max_len=limits.MAX_CLIENT_ID, min_len=1)
    conversation: str | None = bounded(default=None, max_len=CONVERSATION_ID_MAX)
    peer: str | None = bounded(default=None, max_len=RAW_USERNAME_MAX)
    #: A disappearing message: when the server deletes it (seconds since the epoch).
    expires: int | None = bounded(default=None, min=0)


@dataclass(frozen=True)
class HistoryParams:
    """``history``: a page of messages."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    before: int | None = bounded(default=None, min=1)
    after: int | None = bounded(default=None, min=0)
    limit: int = bounded(default=limits.HISTORY_DEFAULT, min=1, max=limits.HISTORY_MAX)


@dataclass(frozen=True)
class MarkReadParams:
    """``mark_read``: everything up to ``seq`` has been read."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    seq: int = bounded(min=0)


#: The longest a message may be set to last (a week, and a day for clocks that differ).
MAX_EXPIRY = 8 * 24 * 3600


def message_json(
    conv: Conversation, record: StoredMessage, ciphertext: str | None = None
) -> Message:
    """A stored message as clients see it (a disappearing one's ciphertext from its blob)."""
    out: Message = {
        "conversation": conv.id,
        "seq": record["seq"],
        "sender": record["sender"],
        "epoch": record["epoch"],
        "ciphertext": record["ciphertext"] if ciphertext is None else ciphertext,
        "client_id": record["client_id"],
        "time": record["time"],
    }
    if "expires" in record:
        out["expires"] = record["expires"]
    return out


async def _served(
    deps: HandlerDeps, conv: Conversation, records: list[StoredMessage]
) -> list[Message]:
    """The records of a page as clients see them; expired ones are left out."""
    now, out = deps.clock.seconds(), list[Message]()
    for record in records:
        if "expires" not in record:
            out.append(message_json(conv, record))
        elif record["expires"] > now and "blob" in record:
            text = await deps.ephemeral.get(conv.id, record["blob"])
            if text is not None:
                out.append(message_json(conv, record, text))
    return out


async def open_conversation(deps: HandlerDeps, ctx: OpContext, params: OpenParams) -> OpenReply:
    """The conversation with a peer, created (with its first envelope) if new."""
    me = current_user(ctx)
    peer = normal_form(params.peer)
    if peer == me:
        raise ProtocolError(
            ErrorCode.SELF_CONVERSATION, "you cannot open a conversation with yourself"
        )
    if deps.accounts.get(peer) is None:
        raise ProtocolError(ErrorCode.UNKNOWN_USER, f"no user called {params.peer!r}")
    conv = deps.conversations.find(me, peer)
    created = False
    if conv is None:
        if params.envelope is None:
            raise bad_field("envelope", "is required to start a new conversation")
        envelope = check_envelope(params.envelope, first=True)
        conv = await deps.conversations.create(me, peer, envelope, deps.clock.seconds())
        created = True
        payload: ConversationPush = {
            "conversation": pair_summary(deps, conv, peer),
            "envelope": envelope,
        }
        deps.presence.push_to_user(peer, "conversation", payload)
        mine: ConversationPush = {**payload, "conversation": pair_summary(deps, conv, me)}
        deps.presence.push_to_user(me, "conversation", mine, skip=ctx)
    return {**pair_summary(deps, conv, me), "created": created, "envelopes": conv.epochs}


async def add_epoch(deps: HandlerDeps, ctx: OpContext, params: EpochParams) -> AddEpochReply:
    """A new key epoch, told to every member."""
    me = current_user(ctx)
    conv = member_conversation(deps, me, params.conversation)
    if conv.group is None:
        envelope = check_envelope(params.envelope, first=False)
    else:
        envelope = check_group_envelope(deps, me, conv.group.state, params.envelope, first=False)
    try:
        await deps.conversations.add_epoch(conv, envelope, deps.clock.seconds())
    except EpochRefused as exc:
        raise refused_epoch(exc) from None
    event: EpochPush = {"conversation": conv.id, "epoch": len(conv.epochs), "envelope": envelope}
    deps.presence.push_to_users(conv.others(me), "epoch", event)
    deps.presence.push_to_user(me, "epoch", event, skip=ctx)
    return {"conversation": conv.id, "epoch": len(conv.epochs)}


async def epochs(deps: HandlerDeps, ctx: OpContext, params: ConversationParams) -> EpochsReply:
    """Every key envelope of a conversation (and a group's chain)."""
    conv = member_conversation(deps, current_user(ctx), params.conversation)
    reply: EpochsReply = {"conversation": conv.id, "envelopes": conv.epochs, "after": conv.position}
    if conv.group is not None:
        reply["statements"] = conv.group.statements
    return reply


async def conversations(deps: HandlerDeps, ctx: OpContext, params: NoParams) -> ConversationsReply:
    """The caller's conversations, most recent first."""
    me = current_user(ctx)
    return {"conversations": [summary(deps, c, me) for c in deps.conversations.for_user(me)]}


def _send_target(deps: HandlerDeps, me: str, params: SendParams) -> Conversation:
    if (params.conversation is None) == (params.peer is None):
        raise bad_field("conversation", "give either 'conversation' or 'peer'")
    if params.conversation is not None:
        return member_conversation(deps, me, params.conversation)
    assert params.peer is not None  # noqa: S101 - checked just above
    found = deps.conversations.find(me, normal_form(params.peer))
    if found is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_CONVERSATION,
            "no conversation with that user yet: open_conversation first",
        )
    return found


def _check_group_epoch(conv: Conversation, epoch: int) -> None:
    """In a group only the newest epoch speaks, and none while the group awaits one made for
    its members as they are (docs/e2e.md §7, "Which epoch a group message uses")."""
    if conv.awaits_epoch:
        raise ProtocolError(
            ErrorCode.BAD_EPOCH,
            "the group's members changed: it waits for a new key epoch from an admin's client",
            details={"awaits_epoch": True},
        )
    if epoch != len(conv.epochs):
        raise ProtocolError(
            ErrorCode.BAD_EPOCH,
            f"the group's newest epoch is {len(conv.epochs)}: fetch the epochs and send in it",
        )


def send(
    deps: HandlerDeps, ctx: OpContext, params: SendParams
) -> Mapping[str, Any] | Later | Coroutine[Any, Any, Later]:
    """Store a message; answer (and push it) only once it is durable.

    A plain call, not a coroutine: the busiest op takes no coroutine and no Deferred of its
    own; only a disappearing message waits (for its blob) before it is appended."""
    me = current_user(ctx)
    conv = _send_target(deps, me, params)
    limit = deps.config.max_ciphertext
    if len(params.ciphertext) > limit:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"ciphertext is longer than {limit} characters",
            details={"max_ciphertext": limit},
        )
    if params.epoch > len(conv.epochs):
        raise ProtocolError(
            ErrorCode.BAD_EPOCH, f"epoch {params.epoch} does not exist in this conversation"
        )
    if conv.group is not None:
        _check_group_epoch(conv, params.epoch)
    newer = conv.newer_epoch_by(me, params.epoch)
    if newer is not None:
        raise ProtocolError(
            ErrorCode.BAD_EPOCH,
            f"you began epoch {newer}: messages in epoch {params.epoch} would be refused by "
            "your peer; fetch the epochs and send in the newest",
        )
    store = deps.conversations
    earlier = store.duplicate(conv, me, params.client_id)
    if earlier is not None:
        # Answer a retry with the first copy's number, once that copy is on disk.
        reply = {"conversation": conv.id, "seq": earlier["seq"], "time": earlier["time"]}
        return Later(store.wait_durable(conv).addCallback(lambda _: {**reply, "duplicate": True}))
    now = deps.clock.seconds()
    if params.expires is not None:
        if not now < params.expires <= now + MAX_EXPIRY:
            raise bad_field("expires", "must be a time in the next 8 days")
        return _send_disappearing(deps, ctx, me, conv, params, now)
    return _append(deps, ctx, me, conv, params, now, params.ciphertext, None)


async def _send_disappearing(
    deps: HandlerDeps, ctx: OpContext, me: str, conv: Conversation, params: SendParams, now: float
) -> Later:
    """A disappearing message: its ciphertext goes to a blob first, the record names it."""
    assert params.expires is not None  # noqa: S101 - the caller checked
    blob = await deps.ephemeral.put(conv.id, params.ciphertext, params.expires)
    return _append(deps, ctx, me, conv, params, now, "", {"blob": blob, "expires": params.expires})


def _append(
    deps: HandlerDeps,
    ctx: OpContext,
    me: str,
    conv: Conversation,
    params: SendParams,
    now: float,
    ciphertext: str,
    extra: dict[str, Any] | None,
) -> Later:
    delivery = _Delivery(deps, ctx, me, conv, params.ciphertext)
    message = NewMessage(
        me, params.epoch, ciphertext, params.client_id, now, extra, len(conv.epochs)
    )
    deps.conversations.append_message(conv, message, delivery)
    return delivery


class _Delivery(Later):
    """A sent message's reply, settled when its batch is durable: only then is the message
    pushed to its readers and acknowledged (after a crash it will still be there).  One
    object per message in flight, and no Deferred."""

    __slots__ = ("ciphertext", "conv", "ctx", "deps", "me")

    def __init__(
        self, deps: HandlerDeps, ctx: OpContext, me: str, conv: Conversation, ciphertext: str
    ) -> None:
        super().__init__()
        self.deps, self.ctx, self.me, self.conv, self.ciphertext = deps, ctx, me, conv, ciphertext

    def __call__(self, record: StoredMessage, error: BaseException | None) -> None:
        if isinstance(error, Resent):  # its first copy landed meanwhile: answered as a retry
            first = error.record
            self.answer(
                {
                    "conversation": self.conv.id,
                    "seq": first["seq"],
                    "time": first["time"],
                    "duplicate": True,
                }
            )
            return
        if isinstance(error, EpochsMoved):
            self.refuse(
                Failure(
                    ProtocolError(
                        ErrorCode.BAD_EPOCH,
                        "the conversation has a new key epoch: fetch the epochs and send again",
                    )
                )
            )
            return
        if error is not None:
            self.refuse(Failure(error))
            return
        try:
            reply = self._deliver(record)
        except Exception:  # a bug of ours: an internal_error reply, never a reply that hangs
            self.refuse(Failure())
            return
        self.answer(reply)

    def _deliver(self, record: StoredMessage) -> SendReply:
        deps, conv, me = self.deps, self.conv, self.me
        deps.conversations.set_read_nowait(conv, me, record["seq"])  # you read what you sent
        readers = conv.members
        # A plain message's push is put together from its record's sealed text; a
        # disappearing one's record holds no ciphertext: its push is built the general way.
        # Readers on other nodes are pushed by their node, told by the append's own event.
        line = message_push_line(conv.id, record)
        if line is None:
            event = message_json(conv, record, self.ciphertext)
            deps.presence.push_here(readers, "message", event, skip=self.ctx)
        else:
            deps.presence.push_line_to_users(readers, line, skip=self.ctx)
        return {
            "conversation": conv.id,
            "seq": record["seq"],
            "time": record["time"],
            "duplicate": False,
        }


async def push_stored_elsewhere(
    deps: HandlerDeps, conv: Conversation, records: list[StoredMessage]
) -> None:
    """Messages another node stored (and committed): pushed to their readers' connections
    on this node."""
    for message in await _served(deps, conv, records):
        deps.presence.push_here(conv.members, "message", message)


async def history(deps: HandlerDeps, ctx: OpContext, params: HistoryParams) -> HistoryReply:
    """A page of stored messages, after or before a sequence number."""
    conv = member_conversation(deps, current_user(ctx), params.conversation)
    last = await deps.conversations.last_stored(conv)
    if params.before is not None and params.after is not None:
        raise bad_field("before", "give 'before' or 'after', not both")
    if params.after is not None:
        first, stop = params.after + 1, min(last, params.after + params.limit) + 1
        has_more = stop <= last
    else:
        end = last + 1 if params.before is None else min(params.before, last + 1)
        first, stop = max(1, end - params.limit), end
        has_more = first > 1
    records = await deps.conversations.page(conv, first, stop) if first < stop else []
    return {
        "conversation": conv.id,
        "messages": await _served(deps, conv, records),
        "last_seq": last,
        "has_more": has_more,
    }


async def mark_read(deps: HandlerDeps, ctx: OpContext, params: MarkReadParams) -> ReadReply:
    """Move the caller's read marker; their other connections hear of it."""
    me = current_user(ctx)
    conv = member_conversation(deps, me, params.conversation)
    seq = min(params.seq, conv.last_seq)
    if seq > conv.read.get(me, 0):
        await deps.conversations.set_read(conv, me, seq)
        event = {"conversation": conv.id, "read": seq, "unread": conv.unread(me)}
        deps.presence.push_to_user(me, "read", event, skip=ctx)
    return {"conversation": conv.id, "read": conv.read.get(me, 0), "unread": conv.unread(me)}


_LOGGED_IN = stay_in(*LOGGED_IN)

OPS = (
    OpDef("open_conversation", OpenParams, _LOGGED_IN, open_conversation),
    OpDef("add_epoch", EpochParams, _LOGGED_IN, add_epoch),
    OpDef("epochs", ConversationParams, _LOGGED_IN, epochs),
    OpDef("conversations", NoParams, _LOGGED_IN, conversations),
    OpDef("send", SendParams, _LOGGED_IN, send),
    OpDef("history", HistoryParams, _LOGGED_IN, history),
    OpDef("mark_read", MarkReadParams, _LOGGED_IN, mark_read),
)
