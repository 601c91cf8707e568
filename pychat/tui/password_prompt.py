"""``/passwd`` inside the TUI: a box with three masked fields (the current password, the new
one, the new one again) over the main screen.

Typing goes to the field marked ``>``; Tab or Enter moves on, Enter on the last field changes
the password (on the server, in the key backup and in the local keystore), Esc cancels.  A
wrong current password, a weak new one or two that differ are said in the box, and the fields
that must be typed again are cleared; nothing typed is shown, only one mark per character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pychat.client.password_strength import WeakPassword, check_password
from pychat.client.protocol import RemoteError
from pychat.tui.input_line import InputLine
from pychat.tui.keys import Key
from pychat.tui.model import Modal

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext

MASK = "•"
FOCUS = ">"
LABELS = ("Current password", "New password", "New password again")


@dataclass
class PasswordPrompt(Modal):
    """The box's state; :attr:`lines` is redrawn from it after every key."""

    fields: list[InputLine] = field(default_factory=lambda: [InputLine() for _ in LABELS])
    focus: int = 0
    message: str = ""
    busy: bool = False

    def refresh(self) -> None:
        """Rebuild the lines the box shows."""
        rows = [
            f"{FOCUS if i == self.focus else ' '} {label:>18}: {MASK * len(line.text)}"
            for i, (label, line) in enumerate(zip(LABELS, self.fields, strict=True))
        ]
        note = "changing…" if self.busy else self.message
        self.lines = [*rows, "", note] if note else rows


def open_prompt() -> PasswordPrompt:
    """A fresh box."""
    prompt = PasswordPrompt(
        "Change your password", [], prompt="(Tab/Enter: next · Enter on the last: change · Esc)"
    )
    prompt.refresh()
    return prompt


def prompt_key(ctx: TuiContext, prompt: PasswordPrompt, key: Key) -> None:
    """One key pressed while the box is up."""
    line = prompt.fields[prompt.focus]
    if prompt.busy:
        return
    if key.name == "escape":
        ctx.model.modals.remove(prompt)
        ctx.model.tell("password not changed")
        return
    if key.name in ("char", "paste"):
        line.insert(key.text.replace("\n", ""))
    elif key.name == "backspace":
        line.backspace()
    elif key.name in ("tab", "down"):
        prompt.focus = (prompt.focus + 1) % len(prompt.fields)
    elif key.name in ("btab", "up"):
        prompt.focus = (prompt.focus - 1) % len(prompt.fields)
    elif key.name == "enter":
        if prompt.focus < len(prompt.fields) - 1:
            prompt.focus += 1
        else:
            ctx.guard(lambda: _submit(ctx, prompt))
    prompt.refresh()


def _problem(ctx: TuiContext, prompt: PasswordPrompt) -> str | None:
    old, new, again = (line.text for line in prompt.fields)
    if not old or not new:
        return "type the current password and a new one"
    if new != again:
        return "the new passwords do not match"
    try:
        check_password(new, username=ctx.model.me)
    except WeakPassword as exc:
        return str(exc)
    return None


async def _submit(ctx: TuiContext, prompt: PasswordPrompt) -> None:
    problem = _problem(ctx, prompt)
    if problem is not None:
        _retry(prompt, problem, focus=1 if prompt.fields[0].text else 0)
        return
    old, new, _ = (line.take() for line in prompt.fields)
    prompt.busy = True
    prompt.refresh()
    ctx.redraw()
    try:
        await ctx.client.change_password(old, new)
    except RemoteError as exc:
        prompt.busy = False
        wrong = exc.code == "auth_failed"
        _retry(prompt, "the current password is wrong" if wrong else exc.message, focus=0)
        return
    except Exception as exc:
        prompt.busy = False
        _retry(prompt, f"not changed: {exc}", focus=0)
        raise
    finally:
        prompt.busy = False
    if prompt in ctx.model.modals:
        ctx.model.modals.remove(prompt)
    ctx.model.tell("password changed (your other devices log in again with it)")


def _retry(prompt: PasswordPrompt, message: str, *, focus: int) -> None:
    """Say what is wrong, clear what must be typed again, and put the focus there."""
    for line in prompt.fields[focus:]:
        line.take()
    prompt.focus, prompt.message = focus, message
    prompt.refresh()
