"""Watching the log in tests: a plain function or a list's ``append`` as a log observer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.logger import ILogObserver


def as_observer(observe: Callable[..., Any]) -> ILogObserver:
    """``observe`` (called with each event dict) as an :class:`ILogObserver`; the same object
    comes back each time, so removing it works with the same expression."""
    return cast(ILogObserver, observe)
