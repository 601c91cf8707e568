"""The server's recent log lines, kept in memory so a user can see those that mention them
(``whatdoyouknow``).  Only the last :data:`KEPT_LINES` lines since the start are kept; the
operator's log store (journald, a file) may keep more, for as long as the operator chooses.

A line is kept unformatted, as a copy of its event's fields, when they are all plain values
(strings, numbers, ``None``): it is formatted the first time someone asks, which is seldom,
rather than once more at every line the server writes (the log file's observer formats it
already; a login writes three lines).  An event holding anything else (a failure, an object
whose text may change) is formatted when it arrives, so no object is kept alive by this log.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

#: How many of the newest log lines are kept.
KEPT_LINES = 5000

#: Types of field values copied as they are (exactly these: a subclass may carry more); an
#: event with any other kind of value is formatted at once.
_PLAIN = frozenset({str, int, float, bool, type(None)})

#: Event keys Twisted adds that no pyChat format refers to, left out of a kept copy.
_SKIPPED = frozenset({"log_logger", "log_source", "log_level", "log_namespace", "log_time"})


@implementer(ILogObserver)
class RecentLog:
    """A ``twisted.logger`` observer of pyChat's own log lines (``pychat.*`` namespaces)."""

    def __init__(self, kept: int = KEPT_LINES) -> None:
        # Each entry: [time, text], the text either formatted or the event's plain fields.
        self._lines: deque[list[Any]] = deque(maxlen=kept)

    def __call__(self, event: dict[str, Any]) -> None:
        namespace = event.get("log_namespace")
        if not isinstance(namespace, str) or not namespace.startswith("pychat."):
            return
        when = float(event.get("log_time") or 0.0)
        fields = {k: v for k, v in event.items() if k not in _SKIPPED}
        if all(type(v) in _PLAIN for v in fields.values()):
            self._lines.append([when, fields])
            return
        text = _formatted(event)
        if text is not None:
            self._lines.append([when, text])

    def about(self, username: str) -> list[dict[str, Any]]:
        """The kept lines that name ``username`` as a whole word, oldest first."""
        word = re.compile(rf"(?<![\w.-]){re.escape(username)}(?![\w-])")
        found = []
        for entry in list(self._lines):
            if not isinstance(entry[1], str):
                entry[1] = _formatted(entry[1]) or ""
            if word.search(entry[1]):
                found.append({"time": entry[0], "text": entry[1]})
        return found


def _formatted(event: dict[str, Any]) -> str | None:
    """The event's text, or None if it cannot be formatted."""
    try:
        return formatEvent(event)
    except Exception:
        return None
