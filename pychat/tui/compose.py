"""``/edit`` and ``Ctrl-X Ctrl-E``: the input line's draft composed in ``$EDITOR``; one line
comes back to the input line, several are sent as one message after a confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pychat.tui.editor import NoEditor, edit
from pychat.tui.model import Modal

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

#: Lines of a long message shown in the confirmation box.
PREVIEW = 8


async def compose(ctx: TuiContext) -> None:
    """Edit the draft in the user's editor; what comes back is the new draft, or (several
    lines, confirmed) a message sent in the conversation on screen."""
    conv = ctx.model.current_conversation
    draft = ctx.model.input.text
    try:
        text = edit(draft, ctx.host.suspended)
    except (NoEditor, OSError) as exc:
        ctx.model.tell(str(exc), error=True)
        return
    if text == draft:
        return
    ctx.model.input.text, ctx.model.input.cursor = "", 0
    lines = text.split("\n")
    if conv is None or len(lines) == 1 or not text.strip():
        ctx.model.input.insert(text)
        return
    shown = lines[:PREVIEW] + (
        [f"… and {len(lines) - PREVIEW} more lines"] if len(lines) > PREVIEW else []
    )
    send = await ctx.ask(
        Modal(
            f"Send these {len(lines)} lines to {conv.label} as one message?",
            shown,
            prompt="(y: send · n: keep it in the input line)",
        )
    )
    if send:
        await ctx.send_text(conv, text)
    else:
        ctx.model.input.insert(text)
