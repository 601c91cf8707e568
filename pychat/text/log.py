"""Client-supplied strings in server log lines: escaped and bounded.

Whoever tails the server's log reads it in a terminal, so a string a client chose (an op name,
a username, the ``client`` of ``hello``) must not carry escape sequences, CR, bidi overrides or
newlines into it, nor fill it.  :func:`for_log` gives Python's ``repr`` of the first
:data:`LOG_FIELD_MAX` characters: quotes mark where it starts and ends, and every control or
invisible character becomes a ``\\x1b``/``\\u202e``-style escape.
"""

from __future__ import annotations

#: Characters of one client string kept in a log line; enough for any legitimate value.
LOG_FIELD_MAX = 64


def for_log(value: object) -> str:
    """``value`` as a quoted, escaped, bounded string for a log line."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > LOG_FIELD_MAX
    shown = repr(text[:LOG_FIELD_MAX])
    # repr leaves printable non-ASCII as it is; bidi controls and the like are not printable,
    # so repr escapes them too.
    return shown + ("…" if cut else "")
