"""What the TUI does with each event from the client library, by a table from event kind to
handler; every field of an event that came from the server is checked before it is used."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pychat.client.events import ChatMessage, ClientEvent
from pychat.client.files import FileError, FileOffer
from pychat.client.group_actions import statement_text
from pychat.client.outbox import OutboxEntry
from pychat.tui.model import MessageItem
from pychat.wire.ids import GROUP_MARK, conversation_of

#: How long "bob is typing…" stays after bob's last typing signal (seconds).
TYPING_SHOWN = 6.0

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext


def message_item(message: ChatMessage) -> MessageItem:
    """A checked message as the model holds it."""
    ref = message.reference
    file_name, file_size = _file_of(message)
    return MessageItem(
        message.seq,
        message.sender,
        message.time,
        message.status,
        message.text,
        message.reason,
        message.action,
        message.kind,
        ref.seq if ref is not None else None,
        ref.quote if ref is not None else None,
        message.expires,
        message.sender_time if message.clock_differs else None,
        file_name,
        file_size,
    )


def _file_of(message: ChatMessage) -> tuple[str | None, int]:
    """A verified file message's (name, size); (None, 0) for any other."""
    if message.kind != "file" or message.status != "verified":
        return None, 0
    try:
        offer = FileOffer.from_data(message.data)
    except FileError:
        return None, 0
    return offer.name, offer.size


def handle_event(ctx: TuiContext, event: ClientEvent) -> None:
    """Update the model for ``event`` (unknown kinds are ignored)."""
    handler = EVENTS.get(event.kind)
    if handler is not None:
        handler(ctx, event)


def _message(ctx: TuiContext, event: ClientEvent) -> None:
    model, m = ctx.model, event.message
    if m is None or (m.expires is not None and m.expires <= ctx.now()):
        return
    if m.kind == "disappear":
        model.conversation(m.peer).timer = ctx.client.disappearing.timer(m.peer)
    current = model.current_conversation
    on_screen = current is not None and current.peer == m.peer
    following = on_screen and current is not None and current.scroll == 0
    is_new = model.add_message(m.peer, message_item(m), on_screen=following)
    conv = model.conversation(m.peer)
    if is_new:  # a message already shown (from a history page) is no new activity
        received = ctx.now() if m.sender != model.me else 0
        conv.last_activity = max(conv.last_activity, m.time, received)
    if is_new and m.sender != model.me and not on_screen:
        if not conv.muted or mentions(m.text or "", model.me):
            ctx.notify(conv.label if not conv.is_group else f"{m.sender} in {conv.label}")


def mentions(text: str, me: str) -> bool:
    """Whether ``text`` names ``me`` as ``@me`` (a whole word): it rings even when muted."""
    return re.search(rf"(?<![\w@])@{re.escape(me)}(?![\w-])", text, re.IGNORECASE) is not None


def _group(ctx: TuiContext, event: ClientEvent) -> None:
    """A group made or changed: its buffer named as its verified chain names it, the change
    shown inline."""
    group, name = event.data.get("group"), event.data.get("name")
    if not isinstance(group, str):
        return
    conv = ctx.model.conversation(GROUP_MARK + group)
    if "statement" not in event.data and isinstance(event.data.get("problem"), str):
        ctx.model.note(conv.peer, f"⚠ {event.data['problem']}")  # a fork: shown, loudly
        ctx.model.tell(f"{conv.label}: {event.data['problem']}", error=True)
        return
    if isinstance(name, str):
        conv.title = f"#{name}"
    if event.data.get("removed"):
        conv.notices.append((conv.last_seq, "you are no longer a member of this group"))
        return
    members = event.data.get("members")
    if isinstance(members, list):
        conv.members = [str(m) for m in members]
    statement = event.data.get("statement")
    if isinstance(statement, dict):
        conv.notices.append((conv.last_seq, statement_text(statement)))
        conv.last_activity = max(conv.last_activity, ctx.now())
    problem = event.data.get("problem")
    if isinstance(problem, str):
        conv.notices.append((conv.last_seq, problem))


def _presence(ctx: TuiContext, event: ClientEvent) -> None:
    user = str(event.data.get("user"))
    if user in ctx.model.conversations:
        ctx.model.conversations[user].online = bool(event.data.get("online"))


def _read(ctx: TuiContext, event: ClientEvent) -> None:
    model = ctx.model
    for conv in model.conversations.values():
        if event.data.get("conversation") and conv.last_seq:
            if conversation_of(model.me, conv.peer) == event.data["conversation"]:
                conv.set_unread(int(event.data.get("unread", 0)))


def _conversation(ctx: TuiContext, event: ClientEvent) -> None:
    """A conversation someone opened with us: in the list at once, with the peer's presence
    (the side that did not open it learns it here)."""
    summary = event.data.get("conversation")
    peer = summary.get("peer") if isinstance(summary, dict) else None
    if not isinstance(peer, str) or not isinstance(summary, dict):
        return
    conv = ctx.model.conversation(peer)
    active = summary.get("last_activity")
    if isinstance(active, int | float) and not isinstance(active, bool):
        conv.last_activity = max(conv.last_activity, float(active))
    online = summary.get("peer_online")
    if online is None or isinstance(online, bool):
        conv.online = online


def outbox_item(ctx: TuiContext, entry: OutboxEntry, state: str, reason: str | None = None) -> None:
    """Show one of our messages the server has not acknowledged (``pending``/``failed``)."""
    conv = ctx.model.conversation(entry.peer)
    conv.pending[entry.client_id] = _entry_item(ctx, entry, 0, state, reason)


def _entry_item(
    ctx: TuiContext, entry: OutboxEntry, seq: int, status: str, reason: str | None = None
) -> MessageItem:
    data = entry.data or {}
    ref, quote = data.get("seq"), data.get("quote")
    return MessageItem(
        seq,
        ctx.model.me,
        entry.time,
        status,
        entry.text,
        reason,
        entry.action,
        entry.kind,
        ref if isinstance(ref, int) else None,
        quote if isinstance(quote, str) else None,
    )


def _outbox(ctx: TuiContext, event: ClientEvent) -> None:
    """Our message queued, acknowledged (it becomes a message with its seq) or refused."""
    entry, state = event.data.get("entry"), event.data.get("state")
    if not isinstance(entry, OutboxEntry):
        return
    model = ctx.model
    if state == "queued":
        outbox_item(ctx, entry, "pending")
    elif state == "failed":
        outbox_item(ctx, entry, "failed", str(event.data.get("reason", "")))
        model.tell(f"not sent to {entry.peer}: {event.data.get('reason', '')}", error=True)
    elif state == "sent":
        model.conversation(entry.peer).pending.pop(entry.client_id, None)
        seq = int(str(event.data.get("seq")))
        item = _entry_item(ctx, entry, seq, "verified")
        timer = model.conversation(entry.peer).timer
        if timer and entry.kind != "disappear":  # ours go when theirs do
            item = replace(item, expires=ctx.now() + timer)
        model.add_message(entry.peer, item, on_screen=True)


def _game(ctx: TuiContext, event: ClientEvent) -> None:
    """A flip or roll came out (or was spoiled): say so in the status line."""
    ctx.model.tell(
        str(event.data.get("text", "")), error=str(event.data.get("text")).startswith("✗")
    )


def _signal(ctx: TuiContext, event: ClientEvent) -> None:
    """The peer is typing (shown for a few seconds), or read up to a message."""
    peer = event.data.get("peer")
    if not isinstance(peer, str) or peer not in ctx.model.conversations:
        return
    conv = ctx.model.conversations[peer]
    if event.data.get("kind") == "typing":
        conv.typing_until = ctx.now() + TYPING_SHOWN
        conv.typing_who = str(event.data.get("sender") or peer)
        ctx.host.call_later(TYPING_SHOWN + 0.1, ctx.redraw)
    elif conv.is_group:
        return  # read marks of a group's members are not shown one by one
    elif event.data.get("kind") == "read" and isinstance(event.data.get("seq"), int):
        conv.peer_read = max(conv.peer_read, int(event.data["seq"]))


def _keys_changed(ctx: TuiContext, event: ClientEvent) -> None:
    user = str(event.data.get("user"))
    ctx.model.conversation(user).key_changed = True
    ctx.show_key_change(user, str(event.data.get("old_safety")), str(event.data.get("new_safety")))


def _keys_rotated(ctx: TuiContext, event: ClientEvent) -> None:
    user = str(event.data.get("user"))
    still = "still verified" if event.data.get("verified") else "not verified"
    ctx.model.note(user, f"{user} rotated keys (signed by the old ones); {still}")


def _keys_withdrawn(ctx: TuiContext, event: ClientEvent) -> None:
    """The server lists the pinned key again: the change it showed is gone."""
    user = str(event.data.get("user"))
    ctx.model.conversation(user).key_changed = False
    ctx.model.note(user, str(event.data.get("text", "")))


def _notice(ctx: TuiContext, event: ClientEvent) -> None:
    about = event.data.get("user")
    text = str(event.data.get("text", ""))
    if isinstance(about, str):
        ctx.model.note(about, text)
    else:
        ctx.model.tell(text)


def _connection(ctx: TuiContext, event: ClientEvent) -> None:
    model = ctx.model
    state = str(event.data.get("state"))
    model.connection = state
    if state == "reconnecting":
        model.reconnect_at = ctx.now() + float(event.data.get("delay", 0))
    elif state == "online" and model.notice_is_error:
        model.tell("")  # an error from while it was offline is stale now
    elif state == "refused":
        model.warn("CONNECTION REFUSED", str(event.data.get("reason", "")).splitlines())


EVENTS: dict[str, Callable[[TuiContext, ClientEvent], None]] = {
    "message": _message,
    "group": _group,
    "presence": _presence,
    "read": _read,
    "conversation": _conversation,
    "keys_changed": _keys_changed,
    "keys_rotated": _keys_rotated,
    "keys_withdrawn": _keys_withdrawn,
    "notice": _notice,
    "connection": _connection,
    "outbox": _outbox,
    "game": _game,
    "signal": _signal,
}
