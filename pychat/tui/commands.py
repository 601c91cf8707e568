"""The TUI's slash commands, by a table from name to handler.

Each handler is ``async def (ctx, conv, rest)``: the running ctx, the conversation on screen
(None when there is none; commands that need one say so in the table), and the text after the
command name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet import defer

from pychat.client.disappearing import CHOICES
from pychat.client.files import human_size
from pychat.client.report import report_lines
from pychat.tui import search
from pychat.tui.command_types import Command, InConversation
from pychat.tui.compose import compose
from pychat.tui.group_commands import GROUP_COMMANDS, group_verify
from pychat.tui.help import HELP
from pychat.tui.link_commands import LINK_COMMANDS
from pychat.tui.model import ConversationState, Modal
from pychat.tui.password_prompt import open_prompt
from pychat.wire.ids import GROUP_MARK
from pychat.wire.usernames import normal_form

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext


async def run_command(ctx: TuiContext, text: str) -> None:
    """Run ``/name rest`` (an unknown name, or a missing conversation, is said so)."""
    name, _, rest = text[1:].partition(" ")
    command = COMMANDS.get(name)
    conv = ctx.model.current_conversation
    if command is None:
        ctx.model.tell(f"unknown command /{name}; /help lists them", error=True)
    elif isinstance(command, Command):
        await command.handler(ctx, rest.strip())
    elif conv is None:
        ctx.model.tell(f"/{name} needs an open conversation", error=True)
    else:
        await command.handler(ctx, conv, rest.strip())


async def _edit(ctx: TuiContext, rest: str) -> None:
    if rest:
        ctx.model.input.insert(rest)
    await compose(ctx)


async def _quit(ctx: TuiContext, rest: str) -> None:
    ctx.host.quit()


async def _help(ctx: TuiContext, rest: str) -> None:
    ctx.show_modal(Modal("Help", HELP))


async def _new(ctx: TuiContext, rest: str) -> None:
    if not rest:
        ctx.model.tell("usage: /new NAME", error=True)
        return
    if rest.startswith(GROUP_MARK):  # a group of yours, by name (or the start of its id)
        peer = GROUP_MARK + await ctx.client.groups.find(rest[1:])
        await ctx.load_conversations()
        await ctx.show(peer)
        return
    await ctx.client.open_conversation(rest)
    peer = normal_form(rest)
    ctx.model.conversation(peer).last_activity = ctx.now()
    await ctx.load_conversations()  # the new one's summary: presence, counts
    await ctx.show(peer)
    ctx.model.tell(f"conversation with {peer} open")


async def _verify(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    """Show the safety number; y marks the peer verified.  While a change is pending it shows
    both numbers and how to accept the new key instead.  In a group: the group's number."""
    if conv.is_group:
        await group_verify(ctx, conv)
        return
    peer = conv.peer
    info = await ctx.client.safety_numbers(peer)
    if info.pending and info.pinned:
        ctx.show_key_change(peer, info.pinned, info.current)
        return
    groups = info.current.split()
    lines = [" ".join(groups[:6]), " ".join(groups[6:]), ""]
    if info.verified:
        ctx.show_modal(Modal(f"Safety number with {peer}", [*lines, "marked verified ✓"]))
        return
    lines.append(f"Compare it with {peer} in person or on a call.")
    choice: defer.Deferred[bool] = ctx.ask(
        Modal(
            f"Safety number with {peer}",
            lines,
            prompt="(y: it matches, mark verified · n: not now)",
        )
    )
    if await choice:
        await ctx.client.mark_verified(peer)
        conv.verified, conv.key_changed = ctx.client.peer_trust(peer)
        ctx.model.tell(f"{peer} is marked verified ✓")


async def _trust(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    was_pending = conv.key_changed
    await ctx.client.trust(conv.peer)
    conv.verified, conv.key_changed = ctx.client.peer_trust(conv.peer)
    ctx.model.tell(
        f"accepted {conv.peer}'s new key; not verified: /verify to compare"
        if was_pending
        else f"{conv.peer}'s key is accepted; /verify compares safety numbers"
    )


async def _rekey(ctx: TuiContext, rest: str) -> None:
    ctx.model.tell("making new identity keys…")
    ctx.redraw()
    fingerprint = await ctx.client.rotate_identity()
    ctx.model.tell(f"new identity keys {fingerprint[:16]}…, signed by the old ones")


async def _rotate(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    epoch = await ctx.client.rotate(conv.peer)
    ctx.model.tell(f"new conversation key: epoch {epoch}")


async def _search(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await search.start(ctx, conv, rest)


async def _close(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    ctx.model.close(conv.peer)
    ctx.model.tell(f"closed {conv.peer} (a new message brings it back; /new {conv.peer} too)")


async def _clear(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    """Empty the screen's copy of the conversation (nothing is deleted; PgUp reloads)."""
    conv.messages.clear()
    conv.notices.clear()
    conv.has_older, conv.scroll = True, 0
    ctx.model.tell("cleared (PgUp loads the history again)")


async def _info(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    """What this device knows of the peer's keys and the trust in them."""
    _, data = ctx.client.require_login()
    pin = data.pins.get(conv.peer) or {}
    fingerprint = str(pin.get("fingerprint", "not looked up yet"))
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
    verified = "verified ✓" if pin.get("verified") else "not verified (/verify)"
    lines = [
        f"peer: {conv.peer}",
        f"fingerprint: {grouped}",
        f"key version: {pin.get('key_version', '?')}",
        f"keys accepted: {len(pin.get('accepted') or {})}",
        f"trust: {verified}",
    ]
    if pin.get("pending"):
        lines.append("KEY CHANGED and not accepted: /verify, then /trust")
    lines.append(f"your fingerprint: {ctx.client.my_fingerprint()}")
    ctx.show_modal(Modal(f"About {conv.peer}", lines))


async def _me(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    if not rest:
        ctx.model.tell("usage: /me TEXT (shown as * you TEXT)", error=True)
        return
    await ctx.send_text(conv, rest, action=True)


def _theirs(conv: ConversationState, sender: str, me: str) -> bool:
    """Whether ``sender`` is the other side: the peer, or in a group anyone but you."""
    return sender != me if conv.is_group else sender == conv.peer


def _target(conv: ConversationState, rest: str, me: str) -> tuple[int | None, str]:
    """The message /react or /reply goes to (``#SEQ`` first in ``rest``, else the one /search
    selected, else the peer's newest), and the rest of the text."""
    first, _, after = rest.partition(" ")
    if first.startswith("#") and first[1:].isdigit():
        return int(first[1:]), after.strip()
    if conv.selected is not None:
        return conv.selected, rest
    theirs = [
        m.seq
        for m in conv.sorted_messages()
        if _theirs(conv, m.sender, me) and m.kind != "reaction"
    ]
    return (theirs[-1] if theirs else None), rest


async def _react(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    emoji, _, more = rest.partition(" ")
    seq, _ = _target(conv, more.strip(), ctx.model.me)
    if seq is None or not emoji:
        ctx.model.tell("usage: /react EMOJI [#SEQ] (- takes yours back)", error=True)
        return
    await ctx.client.react(conv.peer, seq, "" if emoji == "-" else emoji, queue=True)
    conv.selected = None


async def _reply(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    seq, text = _target(conv, rest, ctx.model.me)
    if seq is None or not text:
        ctx.model.tell(
            "usage: /reply [#SEQ] TEXT (to the /search hit, or their newest)", error=True
        )
        return
    conv.scroll = 0
    await ctx.client.send(conv.peer, text, queue=True, reply_to=seq)
    conv.selected = None


async def _flip(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await ctx.client.games.start(conv.peer, "flip")
    ctx.model.tell(f"🪙 flipping with {conv.peer}: their client answers, then yours reveals")


async def _roll(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    await ctx.client.games.start(conv.peer, "roll", rest or "1d6")
    ctx.model.tell(
        f"🎲 rolling {rest or '1d6'} with {conv.peer}: their client answers, then yours reveals"
    )


async def _signals(ctx: TuiContext, rest: str) -> None:
    if rest not in ("on", "off"):
        state = "on" if ctx.client.signals.enabled else "off"
        ctx.model.tell(
            f"typing and read signals are {state}; /signals on|off", error=not rest == ""
        )
        return
    ctx.client.signals.enabled = rest == "on"
    ctx.model.tell(
        "typing and read signals on: your peers see them if theirs are on too"
        if rest == "on"
        else "typing and read signals off: none sent, none shown"
    )


def _progress(ctx: TuiContext, what: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        ctx.model.tell(f"{what}: {done * 100 // max(1, total)}% of {human_size(total)}")
        ctx.redraw()

    return show


async def _send_file(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    path = Path(rest).expanduser()
    if not rest or not path.is_file():
        ctx.model.tell("usage: /send-file PATH (a file)", error=True)
        return
    await ctx.client.files.send(conv.peer, path, _progress(ctx, f"sending {path.name}"))
    ctx.model.tell(f"sent {path.name} to {conv.peer}")


async def _get_file(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    seq, where = _target_file(conv, rest, ctx.model.me)
    if seq is None:
        ctx.model.tell("usage: /get-file [#SEQ] [DIR] (their newest file otherwise)", error=True)
        return
    directory = Path(where).expanduser() if where else ctx.host.home / "downloads"
    saved = await ctx.client.files.fetch(conv.peer, seq, directory, _progress(ctx, f"#{seq}"))
    ctx.model.tell(f"saved {saved}")


def _target_file(conv: ConversationState, rest: str, me: str) -> tuple[int | None, str]:
    first, _, after = rest.partition(" ")
    if first.startswith("#") and first[1:].isdigit():
        return int(first[1:]), after.strip()
    files = [
        m.seq for m in conv.sorted_messages() if m.kind == "file" and _theirs(conv, m.sender, me)
    ]
    return (files[-1] if files else None), rest


async def _disappear(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    if rest not in CHOICES:
        ctx.model.tell(f"usage: /disappear {'|'.join(CHOICES)}", error=True)
        return
    await ctx.client.disappearing.set(conv.peer, rest)
    conv.timer = ctx.client.disappearing.timer(conv.peer)
    ctx.model.tell(
        f"messages with {conv.peer} now disappear after {rest}; a screenshot or a modified "
        "client can still keep them"
        if conv.timer
        else "messages stay again"
    )


async def _whatdoyouknow(ctx: TuiContext, rest: str) -> None:
    report = await ctx.client.request("whatdoyouknow")
    lines = report_lines(report, ctx.client.server)
    height, _ = ctx.host.view_size()
    room = max(3, height - 6)
    if len(lines) > room:
        cut = len(lines) - room + 1
        lines = [*lines[: room - 1], f"… {cut} more lines: pychat whatdoyouknow prints them all"]
    ctx.show_modal(Modal("What the server knows about you", lines))


async def _passwd(ctx: TuiContext, rest: str) -> None:
    ctx.model.modals.append(open_prompt())


COMMANDS: dict[str, Command | InConversation] = {
    "quit": Command(_quit),
    "edit": Command(_edit),
    "help": Command(_help),
    "new": Command(_new),
    "query": Command(_new),
    "close": InConversation(_close),
    "clear": InConversation(_clear),
    "info": InConversation(_info),
    "rekey": Command(_rekey),
    "verify": InConversation(_verify),
    "trust": InConversation(_trust),
    "rotate": InConversation(_rotate),
    "search": InConversation(_search),
    "passwd": Command(_passwd),
    "me": InConversation(_me),
    "react": InConversation(_react),
    "reply": InConversation(_reply),
    "whatdoyouknow": Command(_whatdoyouknow),
    "signals": Command(_signals),
    "disappear": InConversation(_disappear),
    "send-file": InConversation(_send_file),
    "get-file": InConversation(_get_file),
    "flip": InConversation(_flip),
    "roll": InConversation(_roll),
    **GROUP_COMMANDS,
    **LINK_COMMANDS,
}
