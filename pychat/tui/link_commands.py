"""``/links`` (the links of the buffer on screen, and opening one) and ``/copy`` (a message's
text to the terminal's clipboard with OSC 52).  Every link and text comes from a peer: a
link is only ever one :func:`~pychat.tui.links.find_links` found in the text as shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pychat.text.safe import visible
from pychat.tui.command_types import InConversation
from pychat.tui.links import clipboard, find_links, open_link
from pychat.tui.model import ConversationState, Modal

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext


def buffer_links(conv: ConversationState) -> list[str]:
    """The links of the loaded messages, oldest first, each once."""
    seen: dict[str, None] = {}
    for item in conv.sorted_messages():
        if item.status == "verified" and item.text:
            for link in find_links(visible(item.text)):
                seen.setdefault(link.url, None)
    return list(seen)


async def _links(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    links = buffer_links(conv)
    if not links:
        ctx.model.tell("no links in the messages loaded here", error=True)
        return
    if not rest:
        lines = [f"{n:>3}  {url}" for n, url in enumerate(links, 1)]
        ctx.show_modal(Modal(f"Links in {conv.label}", [*lines, "", "/links N opens one"]))
        return
    if not rest.isdigit() or not 1 <= int(rest) <= len(links):
        ctx.model.tell(f"usage: /links [1-{len(links)}]", error=True)
        return
    url = links[int(rest) - 1]
    if open_link(url):
        ctx.model.tell(f"opened {url}")
        return
    ctx.host.to_terminal(clipboard(url))
    ctx.show_modal(
        Modal(
            f"Link {rest}",
            [
                url,
                "",
                "No display here to open it: it is on your clipboard (OSC 52),",
                "or select it above to copy it.",
            ],
        )
    )


def _message_to_copy(conv: ConversationState, rest: str) -> int | None:
    """``#SEQ``, else the message /search selected, else the newest."""
    if rest.startswith("#") and rest[1:].isdigit():
        return int(rest[1:])
    if conv.selected is not None:
        return conv.selected
    shown = [m.seq for m in conv.sorted_messages() if m.status == "verified" and m.text]
    return shown[-1] if shown else None


async def _copy(ctx: TuiContext, conv: ConversationState, rest: str) -> None:
    seq = _message_to_copy(conv, rest)
    item = conv.messages.get(seq) if seq is not None else None
    if item is None or item.status != "verified" or not item.text:
        ctx.model.tell("usage: /copy [#SEQ] (a message shown here)", error=True)
        return
    ctx.host.to_terminal(clipboard(item.text))
    ctx.model.tell(f"message #{seq} is on your clipboard (if your terminal allows OSC 52)")


LINK_COMMANDS: dict[str, InConversation] = {
    "links": InConversation(_links),
    "copy": InConversation(_copy),
}
