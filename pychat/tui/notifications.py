"""Telling the user of a message that is not on screen: the terminal bell and a desktop
notification (OSC 9 and OSC 777, passed through tmux when inside it)."""

from __future__ import annotations

import os

from pychat.text.safe import visible
from pychat.tui.view import to_terminal


def notify(peer: str) -> None:
    """Bell plus an OSC 9 / 777 notification naming ``peer`` (a user, or a member in a group
    whose name its members chose: made visible, so nothing in it ends the sequence or
    starts another).

    It names the sender only: the message text stays off the notification, which other
    programs and the lock screen may show.
    """
    body = f"message from {osc_safe(peer)}"
    sequences = [f"\x1b]9;pyChat: {body}\x07", f"\x1b]777;notify;pyChat;{body}\x07"]
    if os.environ.get("TMUX"):
        # tmux passes a sequence to the outer terminal when wrapped in its DCS, with every
        # ESC inside doubled.
        sequences = [f"\x1bPtmux;{seq.replace(chr(27), chr(27) * 2)}\x1b\\" for seq in sequences]
    osc = "".join(sequences)
    try:
        to_terminal(b"\a" + osc.encode())
    except OSError:
        pass


def osc_safe(text: str) -> str:
    """``text`` fit to stand inside an OSC sequence: every control character as a visible
    escape (no BEL or ESC can end it), ``;`` (OSC 777's separator) as ``,``, at most 80
    characters."""
    return visible(text).replace(";", ",")[:80]
