"""The two kinds of slash command: about the screen or the account, and about the
conversation on screen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pychat.tui.model import ConversationState

if TYPE_CHECKING:
    from pychat.tui.context import TuiContext


@dataclass(frozen=True)
class Command:
    """A slash command about the screen or the account: ``handler(ctx, rest)``."""

    handler: Callable[[TuiContext, str], Awaitable[None]]


@dataclass(frozen=True)
class InConversation:
    """A slash command about the conversation on screen (refused, and said so, when none is
    open): ``handler(ctx, conversation, rest)``."""

    handler: Callable[[TuiContext, ConversationState, str], Awaitable[None]]
