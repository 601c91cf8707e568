"""``signal``: an ephemeral, end-to-end encrypted event for the peer's open connections
(typing, read marks): relayed at once, never stored, small and rate-limited.

The server learns that a member sent the other something small, and when; not what (the
content is sealed like a message).  Nothing is queued for a peer who is not connected, and
the reply does not say whether anyone got it (presence stays as private as the peer set it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pychat.server.account_errors import rate_limited
from pychat.server.handlers.common import CONVERSATION_ID_MAX, HandlerDeps, OpDef, current_user
from pychat.server.handlers.summaries import member_conversation
from pychat.server.ops import OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.wire.schema import bounded
from pychat.wire.shapes import Nothing, SignalPush

#: The longest signal ciphertext: room for a small signed event, not for a message.
MAX_SIGNAL = 2048
#: Signals per user: this many at once, refilled over :data:`SIGNAL_PERIOD` seconds.
SIGNAL_BURST = 20
SIGNAL_PERIOD = 10.0


@dataclass(frozen=True)
class SignalParams:
    """``signal``: the conversation and the sealed event."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    ciphertext: str = bounded(max_len=MAX_SIGNAL, min_len=1)


async def signal(deps: HandlerDeps, ctx: OpContext, params: SignalParams) -> Nothing:
    """Relay the event to the other members' open connections (and this user's others)."""
    me = current_user(ctx)
    conv = member_conversation(deps, me, params.conversation)
    wait = deps.signal_limits.take(me)
    if wait > 0:
        raise rate_limited(wait, "signals")
    payload: SignalPush = {"conversation": conv.id, "sender": me, "ciphertext": params.ciphertext}
    deps.presence.push_to_users(conv.others(me), "signal", payload)
    return {}


OPS = (OpDef("signal", SignalParams, stay_in(*LOGGED_IN), signal),)
