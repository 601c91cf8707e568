"""The server's recent log lines, kept in memory so a user can see those that mention them
(``whatdoyouknow``).  Only the last :data:`KEPT_LINES` lines since the start are kept; the
operator's log store (journald, a file) may keep more, for as long as the operator chooses.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

#: How many of the newest log lines are kept.
KEPT_LINES = 5000


@implementer(ILogObserver)
class RecentLog:
    """A ``twisted.logger`` observer of pyChat's own log lines (``pychat.*`` namespaces)."""

    def __init__(self, kept: int = KEPT_LINES) -> None:
        self._lines: deque[tuple[float, str]] = deque(maxlen=kept)

    def __call__(self, event: dict[str, Any]) -> None:
        if not str(event.get("log_namespace", "")).startswith("pychat."):
            return
        try:
            text = formatEvent(event)
        except Exception:
            return
        self._lines.append((float(event.get("log_time") or 0.0), text))

    def about(self, username: str) -> list[dict[str, Any]]:
        """The kept lines that name ``username`` as a whole word, oldest first."""
        word = re.compile(rf"(?<![\w.-]){re.escape(username)}(?![\w-])")
        return [{"time": t, "text": line} for t, line in self._lines if word.search(line)]
