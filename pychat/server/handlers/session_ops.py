"""Ops about the connection itself: ``hello`` and ``ping``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from pychat import PROTOCOL_VERSION, __version__, limits
from pychat.log_text import for_log
from pychat.server.ops import OpContext, OpRegistry
from pychat.server.state import AFTER_HELLO, Outcome, State, stay_in
from pychat.wire.errors import ErrorCode, ProtocolError

log = Logger(namespace="pychat.server")

if TYPE_CHECKING:
    from pychat.server.chat import ChatServer


@dataclass(frozen=True)
class HelloParams:
    """``hello``: the protocol version the client speaks."""

    version: int
    client: str | None = None


@dataclass(frozen=True)
class PingParams:
    """``ping`` takes nothing."""


def register(registry: OpRegistry, server: ChatServer) -> None:
    """Add ``hello`` and ``ping`` to ``registry``."""

    @registry.op(
        "hello",
        HelloParams,
        {State.AWAITING_HELLO: Outcome(State.UNAUTHENTICATED, State.AWAITING_HELLO)},
    )
    async def hello(ctx: OpContext, params: HelloParams) -> Mapping[str, Any]:
        if params.version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"this server speaks protocol version {PROTOCOL_VERSION}, not {params.version}",
                details={"supported": [PROTOCOL_VERSION]},
            )
        ctx.session.client = params.client
        log.info(
            "{peer} says hello as {client}",
            peer=ctx.session.peer,
            client=for_log(params.client) if params.client is not None else "an unnamed client",
        )
        return {
            "server": server.config.server_name,
            "server_version": __version__,
            "protocol": PROTOCOL_VERSION,
            "limits": {
                "max_line": server.config.max_line,
                "idle_timeout": server.config.idle_timeout,
                "max_pending": limits.MAX_PENDING_REQUESTS,
                **server.extra_limits(),
            },
            "ops": registry.names(),
            **server.hello_extras(),
        }

    @registry.op("ping", PingParams, stay_in(*AFTER_HELLO))
    async def ping(ctx: OpContext, params: PingParams) -> Mapping[str, Any]:
        return {"time": server.clock.seconds()}
