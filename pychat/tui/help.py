"""The text of the TUI's help box (/help, F1): its commands and keys."""

from __future__ import annotations

HELP = [
    "Commands:",
    "  /new NAME      open a conversation with NAME (also /query NAME)",
    "  /close         leave this conversation out of the list",
    "  /clear         empty the screen (PgUp loads the history again)",
    "  /info          the peer's fingerprint, key version and trust",
    "  /verify        show the safety number (y marks the peer verified)",
    "  /trust         accept the peer's new key after a change (not verified)",
    "  /rotate        start a new conversation key",
    "  /rekey         new identity keys for you, signed by the old ones",
    "  /search TEXT   find messages (n: older match, N: newer, Esc: done)",
    "  /me TEXT       an action: shown as * you TEXT",
    "  /react EMOJI   react to their newest message, the /search hit, or #SEQ (- undoes)",
    "  /reply TEXT    reply, quoting their newest message, the /search hit or #SEQ",
    "  /send-file PATH  send a file · /get-file [#SEQ] [DIR] fetch their newest (or #SEQ)",
    "  /disappear 5m|1h|1d|1w|off  messages here vanish after that (for both of you)",
    "  /signals on|off  share typing and read marks (both sides need them on)",
    "  /flip, /roll 2d6  a coin or dice neither of you can bias (commit-reveal)",
    "  /whatdoyouknow what the server holds about you (pychat whatdoyouknow: all of it)",
    "  /passwd        change your password (here, on the server and in the key backup)",
    "  /help          this help      /quit   leave",
    "Keys:",
    "  Tab completes /commands and names (empty line: next conversation)",
    "  Shift-Tab, Alt-1..9         switch conversation · Alt-A next unread",
    "  PgUp / PgDn scroll (older messages load) · End twice, Ctrl-End: newest",
    "  Enter send · Alt-Enter new line · Up/Down history",
    "  Ctrl-A/E home/end · Ctrl-W delete word · Ctrl-U delete to start",
    "  Ctrl-L redraw · Ctrl-R reconnect now · Ctrl-C quit",
]
