"""Ops about the connection itself: ``hello`` and ``ping``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pychat import PROTOCOL_VERSION, __version__
from pychat.server.handlers.common import HandlerDeps, OpDef
from pychat.server.ops import OpContext
from pychat.server.state import AFTER_HELLO, Outcome, State, stay_in
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.shapes import PingReply


@dataclass(frozen=True)
class HelloParams:
    """``hello``: the protocol version the client speaks."""

    version: int
    client: str | None = None


@dataclass(frozen=True)
class PingParams:
    """``ping`` takes nothing."""


def hello(deps: HandlerDeps, ctx: OpContext, params: HelloParams) -> Mapping[str, Any]:
    """The protocol version, limits, ops and SRP parameters of this server (a plain call, as
    are ``ping`` and the login ops: no coroutine or Deferred per connection)."""
    if params.version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"this server speaks protocol version {PROTOCOL_VERSION}, not {params.version}",
            details={"supported": [PROTOCOL_VERSION]},
        )
    ctx.session.client = params.client
    return {
        "server": deps.config.server_name,
        "server_version": __version__,
        "protocol": PROTOCOL_VERSION,
        **deps.hello_fields(),
    }


def ping(deps: HandlerDeps, ctx: OpContext, params: PingParams) -> PingReply:
    """The server's time: a keep-alive and a round-trip measure."""
    return {"time": deps.clock.seconds()}


OPS = (
    OpDef(
        "hello",
        HelloParams,
        {State.AWAITING_HELLO: Outcome(State.UNAUTHENTICATED, State.AWAITING_HELLO)},
        hello,
    ),
    OpDef("ping", PingParams, stay_in(*AFTER_HELLO), ping),
)
