"""``/search TEXT`` in the TUI: step through the matching messages of the conversation on
screen, newest first, bringing each into view; ``n`` goes to the next older match (loading
older pages of history until one turns up or the history ends), ``N`` to the next newer one;
Esc, or any other key, ends the search (that key then does what it always does).

Only decrypted, verified messages are searched, on this device: the server cannot search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pychat.tui.keys import Key
from pychat.tui.loading import load_older
from pychat.tui.model import ConversationState, Search

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

#: Pages of older history one step may load while looking for a match.
MAX_PAGES_PER_STEP = 40


def matches(conv: ConversationState, needle: str) -> list[int]:
    """Sequence numbers of the loaded messages whose text holds ``needle`` (any case)."""
    folded = needle.casefold()
    return [m.seq for m in conv.sorted_messages() if m.text and folded in m.text.casefold()]


async def start(ctx: TuiContext, conv: ConversationState, needle: str) -> None:
    """Begin a search at the newest match (loading older history if none is loaded)."""
    if not needle:
        ctx.model.tell("usage: /search TEXT", error=True)
        return
    hits = matches(conv, needle) or await _older_hits(ctx, conv, needle, [])
    if not hits:
        ctx.model.search = None
        ctx.model.tell(f"no message holds {needle!r}")
        return
    ctx.model.search = Search(conv.peer, needle, hits, len(hits) - 1)
    _show(ctx, conv)


async def step(ctx: TuiContext, older: bool) -> None:
    """To the next older (n) or newer (N) match."""
    search = ctx.model.search
    conv = ctx.model.current_conversation
    if search is None or conv is None or conv.peer != search.peer:
        ctx.model.search = None
        return
    if not older:
        if search.index + 1 < len(search.hits):
            search.index += 1
            _show(ctx, conv)
        else:
            ctx.model.tell(f"no newer message holds {search.needle!r} · n: older · Esc: done")
        return
    if search.index > 0:
        search.index -= 1
        _show(ctx, conv)
        return
    found = await _older_hits(ctx, conv, search.needle, search.hits)
    if not found:
        ctx.model.tell(f"no older message holds {search.needle!r} · N: newer · Esc: done")
        return
    search.index = len(found) - len(search.hits) - 1
    search.hits = found
    _show(ctx, conv)


async def _older_hits(
    ctx: TuiContext, conv: ConversationState, needle: str, known: list[int]
) -> list[int]:
    """Load older pages until a match older than ``known`` turns up; all matches, or [] when
    the history ends first."""
    for _ in range(MAX_PAGES_PER_STEP):
        if not conv.has_older:
            return []
        await load_older(ctx, conv.peer)
        hits = matches(conv, needle)
        if len(hits) > len(known):
            return hits
    return []


def _show(ctx: TuiContext, conv: ConversationState) -> None:
    search = ctx.model.search
    assert search is not None  # noqa: S101 - callers set it
    seq = search.hits[search.index]
    conv.jump_to = conv.selected = seq
    ctx.model.tell(
        f"{search.needle!r}: #{seq}, match {len(search.hits) - search.index} of "
        f"{len(search.hits)} from the newest · n: older · N: newer · Esc: done · "
        "/react, /reply: to this one"
    )


def search_key(ctx: TuiContext, key: Key) -> bool:
    """Handle a key while a search is on; False when the key ends it and acts as usual."""
    if key.name == "char" and key.text in ("n", "N"):
        ctx.guard(step(ctx, older=key.text == "n"))
        return True
    ctx.model.search = None
    if key.name == "escape":
        ctx.model.tell("search done")
        return True
    return False
