"""The TUI's group commands: ``/group new NAME USER...``, and in a group's buffer
``/invite``, ``/kick``, ``/leave``, ``/rename``, ``/admin``, ``/members`` and ``/verify``;
``/mute`` in any buffer.  Every name shown came from a peer and is drawn through the screen's
safe rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pychat.client.group_actions import statement_text
from pychat.tui.command_types import Command, InConversation
from pychat.tui.model import ConversationState, Modal
from pychat.wire.ids import GROUP_MARK, group_of
from pychat.wire.usernames import normal_form

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext


async def _group(ctx: TuiContext, rest: str) -> None:
    words = rest.split()
    if len(words) < 3 or words[0] != "new":
        ctx.model.tell("usage: /group new NAME USER...", error=True)
        return
    group = await ctx.client.groups.create(words[1], words[2:])
    conv = ctx.model.conversation(GROUP_MARK + group)
    conv.title, conv.last_activity = f"#{words[1]}", ctx.now()
    await ctx.load_conversations()
    await ctx.show(conv.peer)
    ctx.model.tell(f"group #{words[1]} made")


def _group_id(ctx: TuiContext, conv: ConversationState) -> str | None:
    group = group_of(conv.peer)
    if group is None:
        ctx.model.tell("that works in a group's buffer", error=True)
    return group


async def _change(ctx: TuiContext, conv: ConversationState, op: str, rest: str) -> None:
    group = _group_id(ctx, conv)
    if group is None:
        return
    if op in ("add", "remove", "admin", "rename") and not rest:
        ctx.model.tell(f"/{_NAMES[op]} needs a {'name' if op == 'rename' else 'user'}", error=True)
        return
    groups = ctx.client.groups
    if op == "add":
        view = await groups.add(group, rest)
    elif op == "rename":
        view = await groups.change(group, "rename", name=rest)
        conv.title = f"#{view.state.name}"
    elif op == "leave":
        await groups.change(group, "leave")
        conv.notices.append((conv.last_seq, "you left this group"))
        ctx.model.close(conv.peer)
        return
    else:
        view = await groups.change(group, op, member=normal_form(rest))
    conv.members = sorted(view.state.members)
    # Your own change: the server tells the others; here it is shown as theirs are.
    conv.notices.append((conv.last_seq, statement_text(view.statements[-1])))


async def _invite(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await _change(ctx, conv, "add", rest)


async def _kick(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await _change(ctx, conv, "remove", rest)


async def _leave(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await _change(ctx, conv, "leave", rest)


async def _rename(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await _change(ctx, conv, "rename", rest)


async def _admin(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await _change(ctx, conv, "admin", rest)


async def _members(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    group = _group_id(ctx, conv)
    if group is None:
        return
    view = await ctx.client.groups.keys.load(group)
    lines = []
    for name in sorted(view.state.members):
        if name == ctx.model.me:
            trust = "you"
        else:
            verified, changed = ctx.client.peer_trust(name)
            trust = "KEY CHANGED" if changed else ("verified ✓" if verified else "not verified")
        admin = " · admin" if name in view.state.admins else ""
        lines.append(f"{name:<20} {trust}{admin}")
    conv.members = sorted(view.state.members)
    ctx.show_modal(Modal(f"{conv.label}: {len(lines)} members", lines))


async def group_verify(ctx: TuiContext, conv: ConversationState) -> None:
    """The group safety number, to compare with the other members."""
    group = _group_id(ctx, conv)
    if group is None:
        return
    number, view = await ctx.client.groups.verify(group)
    digits = number.split()
    lines = [" ".join(digits[:6]), " ".join(digits[6:]), ""]
    lines.append(f"after statement {view.state.n} of the group's history.")
    lines.append("Every member who holds the same history sees the same number.")
    ctx.show_modal(Modal(f"Safety number of {conv.label}", lines))


async def _mute(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    conv.muted = not conv.muted
    said = "muted: no bell unless you are @mentioned" if conv.muted else "no longer muted"
    ctx.model.tell(f"{conv.label} {said}")


_NAMES = {"add": "invite", "remove": "kick", "admin": "admin", "rename": "rename"}

GROUP_COMMANDS: dict[str, Command | InConversation] = {
    "group": Command(_group),
    "invite": InConversation(_invite),
    "kick": InConversation(_kick),
    "leave": InConversation(_leave),
    "rename": InConversation(_rename),
    "admin": InConversation(_admin),
    "members": InConversation(_members),
    "mute": InConversation(_mute),
}
