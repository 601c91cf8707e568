"""Links in messages: found in the text as it is shown, drawn as OSC 8 hyperlinks whose
target is exactly the text on screen (so a link cannot pretend to go elsewhere), listed by
``/links`` and opened with the local opener where there is a display; and the OSC 52
sequence ``/copy`` writes (docs/tui.md, "Links and copying").

Only ``http``, ``https`` and ``mailto`` links, made of the characters a URL may hold
(RFC 3986): nothing in one can end the escape sequence around it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

#: A link as it may appear in shown text; trailing punctuation is the sentence's, not the link's.
_LINK = re.compile(r"(?:https?://|mailto:)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_TRAILING = ".,;:!?'\")]"
#: The longest link drawn or opened (longer ones are text only).
MAX_LINK = 2000
#: The largest text /copy puts on the clipboard (terminals refuse longer OSC 52 payloads).
MAX_COPY = 74_000


@dataclass(frozen=True)
class Link:
    """A link at characters ``start`` to ``end`` of a text."""

    start: int
    end: int
    url: str


def find_links(text: str) -> list[Link]:
    """The links in ``text`` (shown text: made visible already)."""
    found = []
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_TRAILING)
        if url.endswith("://") or url == "mailto:" or len(url) > MAX_LINK:
            continue
        found.append(Link(match.start(), match.start() + len(url), url))
    return found


def hyperlink(url: str) -> bytes:
    """``url`` drawn as an OSC 8 hyperlink to itself (``url`` is one :func:`find_links`
    found: ASCII, no control character)."""
    raw = url.encode("ascii")
    return b"\x1b]8;;" + raw + b"\x1b\\" + raw + b"\x1b]8;;\x1b\\"


def row_links(y: int, row_text: str) -> bytes:
    """The bytes that make the links of screen row ``y`` (0-based, its text as drawn, every
    character one cell up to the link: the caller passes the cells' text) hyperlinks, with
    the cursor moved to each."""
    out = b""
    for link in find_links(row_text):
        out += f"\x1b[{y + 1};{link.start + 1}H".encode() + hyperlink(link.url)
    return out


def clipboard(text: str) -> bytes:
    """OSC 52: put ``text`` on the terminal's clipboard (through SSH, and through tmux with
    its ``set-clipboard`` on)."""
    payload = base64.b64encode(text.encode("utf-8")[:MAX_COPY]).decode("ascii")
    return f"\x1b]52;c;{payload}\x07".encode("ascii")


def has_display() -> bool:
    """Whether a browser could open here: a graphical session, not a bare SSH login."""
    if sys.platform == "darwin":
        return not os.environ.get("SSH_CONNECTION")
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_link(url: str) -> bool:
    """Open ``url`` with ``$BROWSER`` or the desktop's opener, detached; False when there is
    none here (then the link is shown for copying)."""
    if not has_display():
        return False
    opener = os.environ.get("BROWSER") or ("open" if sys.platform == "darwin" else "xdg-open")
    path = shutil.which(opener)
    if path is None:
        return False
    subprocess.Popen(
        [path, url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return True
