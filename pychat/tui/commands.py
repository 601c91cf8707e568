"""The TUI's slash commands, by a table from name to handler.

Each handler is ``async def (app, conv, rest)``: the running app, the conversation on screen
(None when there is none; commands that need one say so in the table), and the text after the
command name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet import defer

from pychat.client.disappearing import CHOICES
from pychat.client.files import human_size
from pychat.client.report import report_lines
from pychat.tui import search
from pychat.tui.help import HELP
from pychat.tui.model import ConversationState, Modal
from pychat.tui.password_prompt import open_prompt
from pychat.usernames import normal_form

if TYPE_CHECKING:
    from pychat.tui.app import TuiApp


Handler = Callable[["TuiApp", ConversationState | None, str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    """One slash command."""

    handler: Handler
    needs_conversation: bool = False


async def run_command(app: TuiApp, text: str) -> None:
    """Run ``/name rest`` (an unknown name, or a missing conversation, is said so)."""
    name, _, rest = text[1:].partition(" ")
    command = COMMANDS.get(name)
    conv = app.model.current_conversation
    if command is None:
        app.model.tell(f"unknown command /{name}; /help lists them", error=True)
    elif command.needs_conversation and conv is None:
        app.model.tell(f"/{name} needs an open conversation", error=True)
    else:
        await command.handler(app, conv, rest.strip())


async def _quit(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    app.quit()


async def _help(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    app.show_modal(Modal("Help", HELP))


async def _new(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None  # noqa: S101 - the main screen has a client
    if not rest:
        app.model.tell("usage: /new NAME", error=True)
        return
    await app.client.open_conversation(rest)
    peer = normal_form(rest)
    app.model.conversation(peer).last_activity = time.time()
    await app.load_conversations()  # the new one's summary: presence, counts
    await app.show(peer)
    app.model.tell(f"conversation with {peer} open")


async def _verify(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    """Show the safety number; y marks the peer verified.  While a change is pending it shows
    both numbers and how to accept the new key instead."""
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    peer = conv.peer
    info = await app.client.safety_numbers(peer)
    if info.pending and info.pinned:
        app.show_key_change(peer, info.pinned, info.current)
        return
    groups = info.current.split()
    lines = [" ".join(groups[:6]), " ".join(groups[6:]), ""]
    if info.verified:
        app.show_modal(Modal(f"Safety number with {peer}", [*lines, "marked verified ✓"]))
        return
    lines.append(f"Compare it with {peer} in person or on a call.")
    choice: defer.Deferred[bool] = app.ask(
        Modal(
            f"Safety number with {peer}",
            lines,
            prompt="(y: it matches, mark verified · n: not now)",
        )
    )
    if await choice:
        await app.client.mark_verified(peer)
        conv.verified, conv.key_changed = app.client.peer_trust(peer)
        app.model.tell(f"{peer} is marked verified ✓")


async def _trust(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    was_pending = conv.key_changed
    await app.client.trust(conv.peer)
    conv.verified, conv.key_changed = app.client.peer_trust(conv.peer)
    app.model.tell(
        f"accepted {conv.peer}'s new key; not verified: /verify to compare"
        if was_pending
        else f"{conv.peer}'s key is accepted; /verify compares safety numbers"
    )


async def _rekey(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None  # noqa: S101
    app.model.tell("making new identity keys…")
    app.redraw()
    fingerprint = await app.client.rotate_identity()
    app.model.tell(f"new identity keys {fingerprint[:16]}…, signed by the old ones")


async def _rotate(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    epoch = await app.client.rotate(conv.peer)
    app.model.tell(f"new conversation key: epoch {epoch}")


async def _search(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert conv is not None  # noqa: S101 - see the table
    await search.start(app, conv, rest)


async def _close(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert conv is not None  # noqa: S101 - see the table
    app.model.close(conv.peer)
    app.model.tell(f"closed {conv.peer} (a new message brings it back; /new {conv.peer} too)")


async def _clear(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    """Empty the screen's copy of the conversation (nothing is deleted; PgUp reloads)."""
    assert conv is not None  # noqa: S101 - see the table
    conv.messages.clear()
    conv.notices.clear()
    conv.has_older, conv.scroll = True, 0
    app.model.tell("cleared (PgUp loads the history again)")


async def _info(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    """What this device knows of the peer's keys and the trust in them."""
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    _, data = app.client.require_login()
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
    lines.append(f"your fingerprint: {app.client.my_fingerprint()}")
    app.show_modal(Modal(f"About {conv.peer}", lines))


async def _me(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert conv is not None  # noqa: S101 - see the table
    if not rest:
        app.model.tell("usage: /me TEXT (shown as * you TEXT)", error=True)
        return
    await app.send_text(conv, rest, action=True)


def _target(conv: ConversationState, rest: str) -> tuple[int | None, str]:
    """The message /react or /reply goes to (``#SEQ`` first in ``rest``, else the one /search
    selected, else the peer's newest), and the rest of the text."""
    first, _, after = rest.partition(" ")
    if first.startswith("#") and first[1:].isdigit():
        return int(first[1:]), after.strip()
    if conv.selected is not None:
        return conv.selected, rest
    theirs = [
        m.seq for m in conv.sorted_messages() if m.sender == conv.peer and m.kind != "reaction"
    ]
    return (theirs[-1] if theirs else None), rest


async def _react(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    emoji, _, more = rest.partition(" ")
    seq, _ = _target(conv, more.strip())
    if seq is None or not emoji:
        app.model.tell("usage: /react EMOJI [#SEQ] (- takes yours back)", error=True)
        return
    await app.client.react(conv.peer, seq, "" if emoji == "-" else emoji, queue=True)
    conv.selected = None


async def _reply(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    seq, text = _target(conv, rest)
    if seq is None or not text:
        app.model.tell(
            "usage: /reply [#SEQ] TEXT (to the /search hit, or their newest)", error=True
        )
        return
    conv.scroll = 0
    await app.client.send(conv.peer, text, queue=True, reply_to=seq)
    conv.selected = None


async def _flip(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    await app.client.games.start(conv.peer, "flip")
    app.model.tell(f"🪙 flipping with {conv.peer}: their client answers, then yours reveals")


async def _roll(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    await app.client.games.start(conv.peer, "roll", rest or "1d6")
    app.model.tell(
        f"🎲 rolling {rest or '1d6'} with {conv.peer}: their client answers, then yours reveals"
    )


async def _signals(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None  # noqa: S101
    if rest not in ("on", "off"):
        state = "on" if app.client.signals.enabled else "off"
        app.model.tell(
            f"typing and read signals are {state}; /signals on|off", error=not rest == ""
        )
        return
    app.client.signals.enabled = rest == "on"
    app.model.tell(
        "typing and read signals on: your peers see them if theirs are on too"
        if rest == "on"
        else "typing and read signals off: none sent, none shown"
    )


def _progress(app: TuiApp, what: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        app.model.tell(f"{what}: {done * 100 // max(1, total)}% of {human_size(total)}")
        app.redraw()

    return show


async def _send_file(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    path = Path(rest).expanduser()
    if not rest or not path.is_file():
        app.model.tell("usage: /send-file PATH (a file)", error=True)
        return
    await app.client.files.send(conv.peer, path, _progress(app, f"sending {path.name}"))
    app.model.tell(f"sent {path.name} to {conv.peer}")


async def _get_file(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    seq, where = _target_file(conv, rest)
    if seq is None:
        app.model.tell("usage: /get-file [#SEQ] [DIR] (their newest file otherwise)", error=True)
        return
    directory = Path(where).expanduser() if where else app.home / "downloads"
    saved = await app.client.files.fetch(conv.peer, seq, directory, _progress(app, f"#{seq}"))
    app.model.tell(f"saved {saved}")


def _target_file(conv: ConversationState, rest: str) -> tuple[int | None, str]:
    first, _, after = rest.partition(" ")
    if first.startswith("#") and first[1:].isdigit():
        return int(first[1:]), after.strip()
    files = [m.seq for m in conv.sorted_messages() if m.kind == "file" and m.sender == conv.peer]
    return (files[-1] if files else None), rest


async def _disappear(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None and conv is not None  # noqa: S101 - see the table
    if rest not in CHOICES:
        app.model.tell(f"usage: /disappear {'|'.join(CHOICES)}", error=True)
        return
    await app.client.disappearing.set(conv.peer, rest)
    conv.timer = app.client.disappearing.timer(conv.peer)
    app.model.tell(
        f"messages with {conv.peer} now disappear after {rest}; a screenshot or a modified "
        "client can still keep them"
        if conv.timer
        else "messages stay again"
    )


async def _whatdoyouknow(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    assert app.client is not None  # noqa: S101
    report = await app.client.request("whatdoyouknow")
    lines = report_lines(report, app.client.server)
    height, _ = app.view.size()
    room = max(3, height - 6)
    if len(lines) > room:
        cut = len(lines) - room + 1
        lines = [*lines[: room - 1], f"… {cut} more lines: pychat whatdoyouknow prints them all"]
    app.show_modal(Modal("What the server knows about you", lines))


async def _passwd(app: TuiApp, conv: ConversationState | None, rest: str) -> None:
    app.model.modals.append(open_prompt())


COMMANDS: dict[str, Command] = {
    "quit": Command(_quit),
    "help": Command(_help),
    "new": Command(_new),
    "query": Command(_new),
    "close": Command(_close, needs_conversation=True),
    "clear": Command(_clear, needs_conversation=True),
    "info": Command(_info, needs_conversation=True),
    "rekey": Command(_rekey),
    "verify": Command(_verify, needs_conversation=True),
    "trust": Command(_trust, needs_conversation=True),
    "rotate": Command(_rotate, needs_conversation=True),
    "search": Command(_search, needs_conversation=True),
    "passwd": Command(_passwd),
    "me": Command(_me, needs_conversation=True),
    "react": Command(_react, needs_conversation=True),
    "reply": Command(_reply, needs_conversation=True),
    "whatdoyouknow": Command(_whatdoyouknow),
    "signals": Command(_signals),
    "disappear": Command(_disappear, needs_conversation=True),
    "send-file": Command(_send_file, needs_conversation=True),
    "get-file": Command(_get_file, needs_conversation=True),
    "flip": Command(_flip, needs_conversation=True),
    "roll": Command(_roll, needs_conversation=True),
}
