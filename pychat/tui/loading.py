"""Loading conversations into the TUI's model: the list, the newest page of one, older pages
on demand, and marking what is on screen as read."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from pychat.tui.client_events import message_item
from pychat.wire.ids import GROUP_MARK

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

log = Logger(namespace="pychat.tui")

#: Messages fetched per page (the first page of a conversation, and each older one).
PAGE = 50


async def load_conversations(ctx: TuiContext) -> None:
    """Refresh the list from the server's summaries; show the first if none is."""
    for summary in await ctx.client.conversations():
        conv = ctx.model.conversation(summary["peer"])
        conv.set_unread(summary["unread"])
        conv.last_seq = summary["last_seq"]
        conv.last_activity = summary["last_activity"]
        conv.online = summary["peer_online"]
        conv.verified, conv.key_changed = ctx.client.peer_trust(conv.peer)
        conv.timer = ctx.client.disappearing.timer(conv.peer)
    for summary in await ctx.client.groups.summaries():
        conv = ctx.model.conversation(GROUP_MARK + summary["conversation"])
        conv.title, conv.members = f"#{summary['name']}", list(summary["members"])
        conv.set_unread(summary["unread"])
        conv.last_seq = summary["last_seq"]
        conv.last_activity = summary["last_activity"]
        conv.timer = ctx.client.disappearing.timer(conv.peer)
    order = ctx.model.ordered()
    if order and ctx.model.current is None:
        await show(ctx, order[0].peer)


async def show(ctx: TuiContext, peer: str) -> None:
    """Put ``peer``'s conversation on screen, loading its newest page the first time."""
    conv = ctx.model.select(peer)
    if not conv.is_group:
        conv.verified, conv.key_changed = ctx.client.peer_trust(peer)
    if not conv.loaded:
        conv.loaded = True
        messages, more = await ctx.client.older(peer, 0, PAGE)
        for m in messages:
            ctx.model.add_message(peer, message_item(m), on_screen=True)
        conv.has_older = more
    conv.timer = ctx.client.disappearing.timer(peer)
    ctx.redraw()


async def load_older(ctx: TuiContext, peer: str) -> None:
    """The page before the oldest loaded message (one load at a time)."""
    conv = ctx.model.conversation(peer)
    if not conv.has_older or not conv.messages:
        return
    conv.has_older = False  # one load at a time
    messages, more = await ctx.client.older(peer, conv.oldest_loaded, PAGE)
    for m in messages:
        ctx.model.add_message(peer, message_item(m), on_screen=True)
    conv.has_older = more
    ctx.model.tell(f"loaded {len(messages)} older messages")


def maybe_mark_read(ctx: TuiContext) -> None:
    """Mark the conversation on screen read when its newest message is in view (while online:
    the next draw after a reconnect does it)."""
    conv = ctx.model.current_conversation
    if conv is None or conv.scroll or not conv.unread or ctx.model.modals:
        return
    if ctx.model.connection != "online":
        return
    if ctx.mark_read_pending:
        return
    ctx.mark_read_pending = True
    last = conv.last_seq

    async def mark() -> None:
        try:
            await ctx.client.mark_read(conv.peer, last)
            conv.unread = 0
            quietly(ctx.client.signals.send(conv.peer, "read", last))
        finally:
            ctx.mark_read_pending = False

    ctx.guard(mark)


def quietly(work: Coroutine[Any, Any, Any]) -> None:
    """Best-effort work (a signal): run for its side effect; a failure is only logged."""
    d: defer.Deferred[Any] = defer.ensureDeferred(work)
    d.addErrback(lambda f: log.info("a signal was not sent: {e}", e=f.value))
